//! Decoding Prometheus's remote-read answers into StoreAPI series (reference/prometheus.md
//! section 4, reference/thanos.md section 3.2).
//!
//! - `STREAMED_XOR_CHUNKS` (`application/x-streamed-protobuf`): frames of
//!   `uvarint(len) | BE u32 CRC32-Castagnoli(data) | data`, each a `ChunkedReadResponse`.
//!   [`FrameReader`] cuts frames out of the body as it arrives and checks every CRC; a frame
//!   longer than [`MAX_FRAME_BYTES`], a bad CRC or trailing bytes (Prometheus writes an error
//!   text after the frames when it fails mid-stream) are errors, never silently dropped data.
//!   Chunks are passed through untouched; only their encoding number changes (prom - 1).
//! - `SAMPLES` (`application/x-protobuf`, snappy block): samples re-encoded into XOR chunks of
//!   at most [`SAMPLES_PER_CHUNK`] samples, as Thanos's sidecar does.
//!
//! A series split over consecutive frames (same labels) is joined here.

use bytes::{Buf, Bytes, BytesMut};
use prost::Message;
use strata_proto::conversions::thanos_encoding_from_remote_read;
use strata_proto::{prometheus as prompb, thanos};
use strata_tsdb::chunkenc::XorAppender;
use strata_tsdb::labels::{Label, Labels, Matcher};

use crate::prometheus::PrometheusClient;

use crate::error::{Error, Result};

/// Prometheus 2.42's client-side frame limit (`DefaultChunkedReadLimit`).
pub const MAX_FRAME_BYTES: u64 = 50_000_000;
/// Samples per re-encoded XOR chunk in the SAMPLES fallback (Prometheus's head cuts at 120).
pub const SAMPLES_PER_CHUNK: usize = 120;

/// One series read from Prometheus, labels as Prometheus sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    pub labels: Labels,
    pub chunks: Vec<thanos::AggrChunk>,
}

/// Cuts length-prefixed, CRC-checked frames out of a byte stream.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: BytesMut,
    /// Bytes consumed so far, for error offsets.
    offset: u64,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the body.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>> {
        let Some((length, varint_len)) = read_uvarint(&self.buffer) else {
            if self.buffer.len() >= 10 {
                return Err(self.error("frame length is not a valid uvarint"));
            }
            return Ok(None);
        };
        if length > MAX_FRAME_BYTES {
            return Err(self.error(&format!(
                "frame of {length} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes"
            )));
        }
        // Bounded by MAX_FRAME_BYTES above, so this fits in usize.
        let length = length as usize;
        let total = varint_len + 4 + length;
        if self.buffer.len() < total {
            return Ok(None);
        }
        let mut frame = self.buffer.split_to(total);
        frame.advance(varint_len);
        let expected = frame.get_u32();
        let data = frame.freeze();
        let actual = crc32c::crc32c(&data);
        if actual != expected {
            let mut reason =
                format!("checksum mismatch: frame says {expected:#010x}, data has {actual:#010x}");
            // Prometheus reports a failure after the first frames as plain text; show it.
            let mut raw = expected.to_be_bytes().to_vec();
            raw.extend_from_slice(&data);
            raw.extend_from_slice(&self.buffer[..self.buffer.len().min(256)]);
            if raw
                .iter()
                .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            {
                reason.push_str(&format!(
                    "; the stream reads as text: {:?}",
                    String::from_utf8_lossy(&raw).trim()
                ));
            }
            return Err(self.error(&reason));
        }
        self.offset += total as u64;
        Ok(Some(data))
    }

    /// Checks that the stream ended on a frame boundary.
    pub fn finish(&self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // Prometheus reports a failure after the first frames as plain text.
        let text = String::from_utf8_lossy(&self.buffer[..self.buffer.len().min(256)]);
        Err(self.error(&format!(
            "{} bytes after the last complete frame: {:?}",
            self.buffer.len(),
            text.trim()
        )))
    }

    fn error(&self, reason: &str) -> Error {
        Error::RemoteReadFrame {
            offset: self.offset,
            reason: reason.to_owned(),
        }
    }
}

/// `(value, bytes used)` of a uvarint at the start of `bytes`, `None` if incomplete or invalid.
fn read_uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().take(10).enumerate() {
        let low = u64::from(byte & 0x7f);
        if index == 9 && *byte > 1 {
            return None;
        }
        value |= low << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

/// Joins the series of decoded frames: a series split over consecutive frames (same labels)
/// becomes one, and a series is complete once the next label set starts (or the stream ends).
#[derive(Debug, Default)]
pub struct SeriesCollector {
    /// Complete series not yet taken.
    complete: std::collections::VecDeque<RawSeries>,
    /// The last series, which the next frame may continue.
    open: Option<RawSeries>,
    /// Labels of `open` in wire form, to join split series without re-parsing.
    open_wire_labels: Vec<prompb::Label>,
}

impl SeriesCollector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the series of one `ChunkedReadResponse` frame.
    pub fn push_frame(&mut self, frame: Bytes) -> Result<()> {
        let response =
            prompb::ChunkedReadResponse::decode(frame).map_err(|err| Error::RemoteReadFrame {
                offset: 0,
                reason: format!("decode ChunkedReadResponse: {err}"),
            })?;
        for chunked in response.chunked_series {
            let chunks = convert_chunks(&chunked)?;
            match self.open.as_mut() {
                Some(open) if self.open_wire_labels == chunked.labels => open.chunks.extend(chunks),
                _ => {
                    let labels = labels_from_prom(&chunked.labels);
                    self.open_wire_labels = chunked.labels;
                    let previous = self.open.replace(RawSeries { labels, chunks });
                    self.complete.extend(previous);
                }
            }
        }
        Ok(())
    }

    /// The next complete series, if any.
    pub fn pop_complete(&mut self) -> Option<RawSeries> {
        self.complete.pop_front()
    }

    /// At the end of the stream: the last series is complete too.
    pub fn finish(&mut self) {
        self.complete.extend(self.open.take());
    }

    /// Everything collected, for callers that read a whole answer.
    pub fn into_series(mut self) -> Vec<RawSeries> {
        self.finish();
        self.complete.into()
    }
}

fn labels_from_prom(labels: &[prompb::Label]) -> Labels {
    Labels::new(
        labels
            .iter()
            .map(|label| Label::new(label.name.clone(), label.value.clone()))
            .collect(),
    )
}

fn convert_chunks(series: &prompb::ChunkedSeries) -> Result<Vec<thanos::AggrChunk>> {
    series
        .chunks
        .iter()
        .map(|chunk| {
            let encoding = thanos_encoding_from_remote_read(chunk.r#type).ok_or_else(|| {
                Error::UnsupportedChunkEncoding {
                    encoding: chunk.r#type,
                    series: labels_from_prom(&series.labels).to_string(),
                }
            })?;
            Ok(thanos::AggrChunk {
                min_time: chunk.min_time_ms,
                max_time: chunk.max_time_ms,
                raw: Some(thanos::Chunk {
                    r#type: encoding as i32,
                    hash: xxhash_rust::xxh64::xxh64(&chunk.data, 0),
                    data: chunk.data.clone(),
                }),
                ..Default::default()
            })
        })
        .collect()
}

/// Decodes a SAMPLES answer (snappy block of `ReadResponse`) into series of XOR chunks.
pub fn decode_samples_response(body: &[u8]) -> Result<Vec<RawSeries>> {
    let decoded = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|err| Error::RemoteReadFrame {
            offset: 0,
            reason: format!("snappy-decode ReadResponse: {err}"),
        })?;
    let response =
        prompb::ReadResponse::decode(decoded.as_slice()).map_err(|err| Error::RemoteReadFrame {
            offset: 0,
            reason: format!("decode ReadResponse: {err}"),
        })?;
    let mut series = Vec::new();
    for result in response.results {
        for timeseries in result.timeseries {
            let labels = labels_from_prom(&timeseries.labels);
            if !timeseries.histograms.is_empty() {
                // Histogram samples would need histogram chunks; refuse rather than drop them.
                return Err(Error::UnsupportedChunkEncoding {
                    encoding: prompb::chunk::Encoding::Histogram as i32,
                    series: labels.to_string(),
                });
            }
            let samples: Vec<(i64, f64)> = timeseries
                .samples
                .iter()
                .map(|sample| (sample.timestamp, sample.value))
                .collect();
            let chunks = encode_xor_chunks(&labels, &samples)?;
            series.push(RawSeries { labels, chunks });
        }
    }
    Ok(series)
}

/// One remote-read query for `[start, end]` (ms, inclusive) and `matchers`, asking for
/// streamed chunks first, then samples; the answer's content type says how to decode it.
/// Collects the whole answer: [`SeriesReader`] streams it.
pub async fn read(
    client: &PrometheusClient,
    start: i64,
    end: i64,
    matchers: &[Matcher],
) -> Result<Vec<RawSeries>> {
    let mut reader = SeriesReader::open(client, start, end, matchers).await?;
    let mut series = Vec::new();
    while let Some(next) = reader.next().await? {
        series.push(next);
    }
    Ok(series)
}

/// A remote-read answer read series by series as its bytes arrive: memory holds the frames
/// not yet taken, not the answer. Dropping the reader closes the connection, which stops
/// Prometheus's work too.
#[derive(Debug)]
pub struct SeriesReader {
    body: Body,
    frames: FrameReader,
    collector: SeriesCollector,
}

#[derive(Debug)]
enum Body {
    /// STREAMED_XOR_CHUNKS still arriving.
    Streamed(reqwest::Response),
    /// A SAMPLES answer (one message: decoded whole) or a finished stream.
    Done,
}

impl SeriesReader {
    /// Sends the query and reads the answer's headers.
    pub async fn open(
        client: &PrometheusClient,
        start: i64,
        end: i64,
        matchers: &[Matcher],
    ) -> Result<Self> {
        let request = prompb::ReadRequest {
            queries: vec![prompb::Query {
                start_timestamp_ms: start,
                end_timestamp_ms: end,
                matchers: matchers.iter().map(matcher_to_prom).collect(),
                // No hints: Prometheus would select by the hints' range instead of the query's.
                hints: None,
            }],
            accepted_response_types: vec![
                prompb::read_request::ResponseType::StreamedXorChunks as i32,
                prompb::read_request::ResponseType::Samples as i32,
            ],
        };
        let response = client.remote_read(&request).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut reader = SeriesReader {
            body: Body::Done,
            frames: FrameReader::new(),
            collector: SeriesCollector::new(),
        };
        if content_type.starts_with("application/x-streamed-protobuf") {
            reader.body = Body::Streamed(response);
        } else if content_type.starts_with("application/x-protobuf") {
            let body = response.bytes().await.map_err(read_error)?;
            let series = tokio::task::spawn_blocking(move || decode_samples_response(&body))
                .await
                .map_err(|err| Error::RemoteReadFrame {
                    offset: 0,
                    reason: format!("decode task failed: {err}"),
                })??;
            reader.collector.complete.extend(series);
        } else {
            return Err(Error::PrometheusResponse {
                path: "/api/v1/read",
                reason: format!("unexpected content type {content_type:?}"),
            });
        }
        Ok(reader)
    }

    /// The next complete series, `Ok(None)` at the end of the answer.
    pub async fn next(&mut self) -> Result<Option<RawSeries>> {
        loop {
            if let Some(series) = self.collector.pop_complete() {
                return Ok(Some(series));
            }
            let Body::Streamed(response) = &mut self.body else {
                return Ok(None);
            };
            match response.chunk().await.map_err(read_error)? {
                Some(bytes) => {
                    self.frames.push(&bytes);
                    while let Some(frame) = self.frames.next_frame()? {
                        self.collector.push_frame(frame)?;
                    }
                }
                None => {
                    self.frames.finish()?;
                    self.collector.finish();
                    self.body = Body::Done;
                }
            }
        }
    }
}

fn read_error(source: reqwest::Error) -> Error {
    Error::PrometheusRequest {
        path: "/api/v1/read",
        source,
    }
}

fn matcher_to_prom(matcher: &Matcher) -> prompb::LabelMatcher {
    let wire = strata_common::labels::matcher_to_proto(matcher);
    prompb::LabelMatcher::from(&wire)
}

/// Samples (in time order) as XOR chunks of at most [`SAMPLES_PER_CHUNK`] samples.
pub fn encode_xor_chunks(
    labels: &Labels,
    samples: &[(i64, f64)],
) -> Result<Vec<thanos::AggrChunk>> {
    let mut chunks = Vec::with_capacity(samples.len().div_ceil(SAMPLES_PER_CHUNK));
    for part in samples.chunks(SAMPLES_PER_CHUNK) {
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            continue;
        };
        let mut appender = XorAppender::new();
        for &(t, v) in part {
            appender.append(t, v).map_err(|source| Error::EncodeChunk {
                series: labels.to_string(),
                source,
            })?;
        }
        let data = appender.bytes();
        chunks.push(thanos::AggrChunk {
            min_time: first.0,
            max_time: last.0,
            raw: Some(thanos::Chunk {
                r#type: thanos::chunk::Encoding::Xor as i32,
                hash: xxhash_rust::xxh64::xxh64(&data, 0),
                data: data.into(),
            }),
            ..Default::default()
        });
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use strata_tsdb::chunkenc::XorIterator;

    use super::*;

    fn frame(message: &prompb::ChunkedReadResponse) -> Vec<u8> {
        let data = message.encode_to_vec();
        let mut out = Vec::new();
        let mut length = data.len() as u64;
        loop {
            let byte = (length & 0x7f) as u8;
            length >>= 7;
            if length == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(&crc32c::crc32c(&data).to_be_bytes());
        out.extend_from_slice(&data);
        out
    }

    fn chunked(name: &str, chunk_data: &[u8], encoding: i32) -> prompb::ChunkedReadResponse {
        prompb::ChunkedReadResponse {
            chunked_series: vec![prompb::ChunkedSeries {
                labels: vec![prompb::Label {
                    name: "__name__".into(),
                    value: name.into(),
                }],
                chunks: vec![prompb::Chunk {
                    min_time_ms: 10,
                    max_time_ms: 20,
                    r#type: encoding,
                    data: Bytes::copy_from_slice(chunk_data),
                }],
            }],
            query_index: 0,
        }
    }

    fn read_all(bytes: &[u8], piece: usize) -> Result<Vec<RawSeries>> {
        let mut reader = FrameReader::new();
        let mut collector = SeriesCollector::new();
        for part in bytes.chunks(piece) {
            reader.push(part);
            while let Some(frame) = reader.next_frame()? {
                collector.push_frame(frame)?;
            }
        }
        reader.finish()?;
        Ok(collector.into_series())
    }

    #[test]
    fn frames_split_anywhere_and_series_joined() {
        let mut body = frame(&chunked("a", b"\x00\x01xyz", 1));
        body.extend(frame(&chunked("a", b"\x00\x01uvw", 1)));
        body.extend(frame(&chunked("b", b"hist", 2)));
        for piece in [1, 3, 7, body.len()] {
            let series = read_all(&body, piece).expect("valid stream");
            assert_eq!(series.len(), 2, "piece {piece}");
            let a = &series[0];
            assert_eq!(a.labels.to_string(), r#"{__name__="a"}"#);
            assert_eq!(a.chunks.len(), 2);
            let raw = a.chunks[1].raw.as_ref().expect("raw chunk");
            assert_eq!(
                raw.data.as_ref(),
                b"\x00\x01uvw",
                "passed through unchanged"
            );
            assert_eq!(raw.r#type, thanos::chunk::Encoding::Xor as i32);
            assert_eq!(raw.hash, xxhash_rust::xxh64::xxh64(b"\x00\x01uvw", 0));
            let hist = series[1].chunks[0].raw.as_ref().expect("raw");
            assert_eq!(hist.r#type, thanos::chunk::Encoding::Histogram as i32);
        }
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let good = frame(&chunked("a", b"abc", 1));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        let err = read_all(&flipped, 4).expect_err("crc mismatch");
        assert!(err.to_string().contains("checksum"), "{err}");

        let mut trailing = good.clone();
        trailing.extend_from_slice(b"\nsomething failed badly\n");
        let err = read_all(&trailing, 100).expect_err("error text after frames");
        assert!(err.to_string().contains("something failed badly"), "{err}");

        let truncated = &good[..good.len() - 1];
        assert!(read_all(truncated, 5).is_err());

        let unknown = frame(&chunked("a", b"abc", 0));
        assert!(matches!(
            read_all(&unknown, 100),
            Err(Error::UnsupportedChunkEncoding { encoding: 0, .. })
        ));

        let mut huge = vec![0xff, 0xff, 0xff, 0xff, 0x7f];
        huge.extend_from_slice(&[0; 8]);
        assert!(read_all(&huge, 100).is_err());
    }

    proptest::proptest! {
        /// Any bytes: an error or series, never a panic; a valid stream cut anywhere reads
        /// the same.
        #[test]
        fn arbitrary_streams_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512), piece in 1usize..64) {
            let _ = read_all(&bytes, piece);
        }

        #[test]
        fn valid_streams_read_the_same_in_any_pieces(
            names in proptest::collection::vec("[a-c]{1,3}", 1..8),
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            piece in 1usize..97,
        ) {
            let mut body = Vec::new();
            for name in &names {
                body.extend(frame(&chunked(name, &payload, 1)));
            }
            let whole = read_all(&body, body.len().max(1)).expect("valid");
            let pieces = read_all(&body, piece).expect("valid");
            proptest::prop_assert_eq!(&whole, &pieces);
            let chunks: usize = whole.iter().map(|series| series.chunks.len()).sum();
            proptest::prop_assert_eq!(chunks, names.len());
        }
    }

    #[test]
    fn samples_fallback_reencodes_in_chunks_of_120() {
        let samples: Vec<prompb::Sample> = (0..250)
            .map(|i| prompb::Sample {
                value: f64::from(i) * 0.5,
                timestamp: 1000 + i64::from(i) * 15,
            })
            .collect();
        let response = prompb::ReadResponse {
            results: vec![prompb::QueryResult {
                timeseries: vec![prompb::TimeSeries {
                    labels: vec![prompb::Label {
                        name: "job".into(),
                        value: "x".into(),
                    }],
                    samples: samples.clone(),
                    ..Default::default()
                }],
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&response.encode_to_vec())
            .expect("snappy");
        let series = decode_samples_response(&body).expect("decode");
        assert_eq!(series.len(), 1);
        let chunks = &series[0].chunks;
        assert_eq!(chunks.len(), 3);
        let mut decoded = Vec::new();
        for chunk in chunks {
            let raw = chunk.raw.as_ref().expect("raw");
            let mut iter = XorIterator::new(&raw.data).expect("xor");
            let before = decoded.len();
            iter.decode_into(&mut decoded).expect("decode");
            let part = &decoded[before..];
            assert!(part.len() <= SAMPLES_PER_CHUNK);
            assert_eq!(part.first().map(|s| s.0), Some(chunk.min_time));
            assert_eq!(part.last().map(|s| s.0), Some(chunk.max_time));
        }
        let expected: Vec<(i64, f64)> = samples.iter().map(|s| (s.timestamp, s.value)).collect();
        assert_eq!(decoded, expected);
        assert!(decode_samples_response(b"not snappy").is_err());
    }
}
