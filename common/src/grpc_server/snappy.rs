//! Accepts requests compressed with Thanos's `snappy` gRPC compressor. Thanos registers a gRPC
//! codec named `snappy` that uses the snappy *framed* (stream) format, and a Thanos querier
//! configured with `--grpc-compression=snappy` (or endpoint `compression: snappy`) sends
//! `grpc-encoding: snappy` requests. tonic knows only gzip/deflate/zstd, so this layer
//! decompresses such requests into plain gRPC frames before tonic sees them. Responses are sent
//! uncompressed, which every gRPC client accepts.
//!
//! StoreAPI requests are single small messages, so the request body is read whole, bounded by
//! [`MAX_REQUEST_BYTES`] before and after decompression.

use std::future::{Future, poll_fn};
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::Body as _;

use crate::error::ErrorCode;

/// The largest snappy-compressed request accepted, before and after decompression.
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

const SNAPPY: &str = "snappy";

/// The layer; add it inside the metrics layer so that its rejections are counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnappyRequestLayer;

impl<S> tower::Layer<S> for SnappyRequestLayer {
    type Service = SnappyRequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SnappyRequestService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct SnappyRequestService<S> {
    inner: S,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for SnappyRequestService<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let snappy = request
            .headers()
            .get("grpc-encoding")
            .is_some_and(|encoding| encoding == SNAPPY);
        if !snappy {
            return Box::pin(self.inner.call(request));
        }
        // The ready inner service is used for this call; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match decompress_body(body).await {
                Ok(plain) => {
                    parts.headers.remove("grpc-encoding");
                    let body = tonic::body::Body::new(axum::body::Body::from(plain));
                    inner.call(http::Request::from_parts(parts, body)).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// Reads the whole request body and rewrites every compressed gRPC message as a plain one.
async fn decompress_body(body: tonic::body::Body) -> Result<Bytes, tonic::Status> {
    let mut body = std::pin::pin!(body);
    let mut compressed = BytesMut::new();
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            if compressed.len() + data.len() > MAX_REQUEST_BYTES {
                return Err(
                    ErrorCode::ResourceExhausted.to_status("snappy request larger than 64 MiB")
                );
            }
            compressed.extend_from_slice(&data);
        }
    }
    decompress_messages(compressed.freeze())
}

/// gRPC length-prefixed messages: 1 byte compressed flag, 4 bytes big-endian length, message.
fn decompress_messages(mut input: Bytes) -> Result<Bytes, tonic::Status> {
    let malformed =
        |what: &str| ErrorCode::BadData.to_status(format!("malformed snappy grpc request: {what}"));
    let mut output = BytesMut::with_capacity(input.len() * 2);
    while input.has_remaining() {
        if input.remaining() < 5 {
            return Err(malformed("truncated message header"));
        }
        let flag = input.get_u8();
        let length = usize::try_from(input.get_u32()).map_err(|_| malformed("message length"))?;
        if input.remaining() < length {
            return Err(malformed("truncated message"));
        }
        let message = input.split_to(length);
        let plain = match flag {
            0 => message.to_vec(),
            1 => {
                let mut plain = Vec::new();
                let limit = u64::try_from(MAX_REQUEST_BYTES).unwrap_or(u64::MAX) + 1;
                snap::read::FrameDecoder::new(message.as_ref())
                    .take(limit)
                    .read_to_end(&mut plain)
                    .map_err(|err| malformed(&err.to_string()))?;
                if plain.len() > MAX_REQUEST_BYTES {
                    return Err(ErrorCode::ResourceExhausted
                        .to_status("decompressed request larger than 64 MiB"));
                }
                plain
            }
            _ => return Err(malformed("unknown compressed flag")),
        };
        let plain_length =
            u32::try_from(plain.len()).map_err(|_| malformed("message too large"))?;
        output.put_u8(0);
        output.put_u32(plain_length);
        output.extend_from_slice(&plain);
    }
    Ok(output.freeze())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn snappy_framed(payload: &[u8]) -> Vec<u8> {
        let mut encoder = snap::write::FrameEncoder::new(Vec::new());
        encoder.write_all(payload).expect("encode");
        encoder.into_inner().expect("flush")
    }

    #[test]
    fn compressed_messages_become_plain() {
        let mut input = frame(1, &snappy_framed(b"hello hello hello"));
        input.extend(frame(0, b"plain"));
        let output = decompress_messages(Bytes::from(input)).expect("valid");
        let mut expected = frame(0, b"hello hello hello");
        expected.extend(frame(0, b"plain"));
        assert_eq!(output.as_ref(), expected.as_slice());
    }

    #[test]
    fn malformed_input_is_invalid_argument() {
        for input in [
            vec![1u8, 0, 0],
            frame(1, b"not snappy"),
            frame(7, b""),
            vec![0, 0, 0, 0, 9, 1],
        ] {
            let status = decompress_messages(Bytes::from(input)).expect_err("malformed");
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
    }
}
