//! `strata-tools store ...`: talk to any StoreAPI endpoint (Strata's or Thanos's sidecar,
//! store gateway or querier).
//!
//! `store series` calls `Series` and prints every sample in exactly the line format of
//! `promtool tsdb dump` (`<labels> <%g value> <ms timestamp>`), series in label order and
//! samples in time order, trimmed to `[--min-time, --max-time]`, so its output can be diffed
//! against `promtool tsdb dump` of the same data. Series split over frames are joined; a series
//! sent by several stores (a querier without dedup) is merged, keeping the first sample of each
//! timestamp, as Prometheus merges overlapping blocks. Like promtool 2.42, a series stops at its
//! first native-histogram chunk. Warnings from the endpoint go to stderr.
//!
//! `store series --stats` prints instead what the endpoint sent and how fast (series,
//! chunks, samples from the chunk headers, chunk bytes, seconds to the end of the stream):
//! the endpoint's throughput, measured without decoding or printing samples.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use strata_common::flags::GrpcClientFlags;
use strata_common::labels::{labels_from_proto, matchers_to_proto};
use strata_common::storeapi::{SeriesItem, StoreApiClient};
use strata_proto::thanos;
use strata_tsdb::chunkenc::XorIterator;
use strata_tsdb::dump::SampleFormatter;
use strata_tsdb::labels::{Labels, parse_selector};

#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// Call Series on a StoreAPI endpoint and print its samples like `promtool tsdb dump`.
    Series(SeriesArgs),
}

#[derive(clap::Args)]
pub struct SeriesArgs {
    /// StoreAPI endpoint, HOST:PORT (gRPC, usually port 10901).
    #[arg(long)]
    endpoint: String,

    /// Series selector; at least one matcher must not match the empty string.
    #[arg(long = "match", default_value = r#"{__name__=~".+"}"#)]
    selector: String,

    /// Minimum timestamp to dump, in milliseconds (inclusive).
    #[arg(long = "min-time", default_value_t = i64::MIN, allow_negative_numbers = true)]
    min_time: i64,

    /// Maximum timestamp to dump, in milliseconds (inclusive).
    #[arg(long = "max-time", default_value_t = i64::MAX, allow_negative_numbers = true)]
    max_time: i64,

    /// Print what the endpoint sent and how fast instead of the samples.
    #[arg(long)]
    stats: bool,

    #[command(flatten)]
    tls: GrpcClientFlags,
}

pub async fn run(command: StoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Series(args) => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            let result = if args.stats {
                stream_stats(&args, &mut out).await
            } else {
                dump_series(&args, &mut out).await
            };
            match result.and_then(|()| out.flush().map_err(anyhow::Error::from)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                // `strata-tools store series ... | head` is not an error.
                Err(err) if is_broken_pipe(&err) => Ok(ExitCode::SUCCESS),
                Err(err) => Err(err),
            }
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io_err| io_err.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Opens the Series stream that `args` ask for.
async fn open_series(args: &SeriesArgs) -> anyhow::Result<strata_common::storeapi::SeriesStream> {
    if args.min_time > args.max_time {
        bail!(
            "--min-time {} is after --max-time {}",
            args.min_time,
            args.max_time
        );
    }
    let matchers = parse_selector(&args.selector)
        .with_context(|| format!("parse --match {:?}", args.selector))?;
    let mut client = StoreApiClient::connect(&args.endpoint, &args.tls).await?;
    let request = thanos::SeriesRequest {
        min_time: args.min_time,
        max_time: args.max_time,
        matchers: matchers_to_proto(&matchers),
        ..Default::default()
    };
    Ok(client.series(request).await?)
}

/// Reads the whole Series stream, counting what arrives, and writes the totals and rates.
async fn stream_stats(args: &SeriesArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut stream = open_series(args).await?;
    let (mut series, mut chunks, mut samples, mut bytes, mut warnings) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    while let Some(item) = stream.next_item().await? {
        match item {
            SeriesItem::Series(frame) => {
                series += 1;
                for chunk in frame.chunks.iter().filter_map(|c| c.raw.as_ref()) {
                    chunks += 1;
                    bytes += chunk.data.len() as u64;
                    if let [high, low, ..] = chunk.data[..] {
                        samples += u64::from(u16::from_be_bytes([high, low]));
                    }
                }
            }
            SeriesItem::Warning(warning) => {
                warnings += 1;
                eprintln!("warning: {}: {warning}", args.endpoint);
            }
            SeriesItem::Hints(_) => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    writeln!(
        out,
        "series={series} chunks={chunks} samples={samples} chunk_bytes={bytes} warnings={warnings} \
         seconds={seconds:.3} series_per_second={:.0} samples_per_second={:.0} mb_per_second={:.2}",
        series as f64 / seconds,
        samples as f64 / seconds,
        bytes as f64 / seconds / 1e6
    )?;
    Ok(())
}

/// Calls Series as `args` say and writes the dump lines to `out`.
async fn dump_series(args: &SeriesArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut stream = open_series(args).await?;
    // Buffered (compressed chunks only) so that output is in label order even when the
    // endpoint sends the same series more than once.
    let mut series: BTreeMap<Labels, Vec<thanos::AggrChunk>> = BTreeMap::new();
    while let Some(item) = stream.next_item().await? {
        match item {
            SeriesItem::Series(frame) => {
                series
                    .entry(labels_from_proto(frame.labels))
                    .or_default()
                    .extend(frame.chunks);
            }
            SeriesItem::Warning(warning) => eprintln!("warning: {}: {warning}", args.endpoint),
            SeriesItem::Hints(_) => {}
        }
    }
    for (labels, chunks) in series {
        write_series(out, &labels, chunks, args.min_time, args.max_time)
            .with_context(|| format!("dump series {labels}"))?;
    }
    Ok(())
}

/// Writes the samples of one series in `[min_time, max_time]`.
fn write_series(
    out: &mut impl Write,
    labels: &Labels,
    mut chunks: Vec<thanos::AggrChunk>,
    min_time: i64,
    max_time: i64,
) -> anyhow::Result<()> {
    chunks.sort_by_key(|chunk| (chunk.min_time, chunk.max_time));
    chunks.dedup();
    let mut formatter = SampleFormatter::new(labels);
    let mut last_written: Option<i64> = None;
    for chunk in &chunks {
        let Some(raw) = &chunk.raw else {
            bail!(
                "chunk [{}, {}] has no raw data (downsampled-only data?)",
                chunk.min_time,
                chunk.max_time
            );
        };
        match thanos::chunk::Encoding::try_from(raw.r#type) {
            Ok(thanos::chunk::Encoding::Xor) => {}
            // promtool 2.42 stops a series at its first histogram sample.
            Ok(thanos::chunk::Encoding::Histogram | thanos::chunk::Encoding::FloatHistogram) => {
                break;
            }
            Err(_) => bail!(
                "chunk [{}, {}] has unknown encoding {}",
                chunk.min_time,
                chunk.max_time,
                raw.r#type
            ),
        }
        let samples = XorIterator::new(&raw.data)
            .with_context(|| format!("decode chunk [{}, {}]", chunk.min_time, chunk.max_time))?;
        for sample in samples {
            let (timestamp, value) = sample.with_context(|| {
                format!("decode chunk [{}, {}]", chunk.min_time, chunk.max_time)
            })?;
            if timestamp < min_time || timestamp > max_time {
                continue;
            }
            // Overlapping chunks (the same series from several stores): keep the first sample
            // of each timestamp and time order.
            if last_written.is_some_and(|last| timestamp <= last) {
                continue;
            }
            formatter.write(out, timestamp, value)?;
            last_written = Some(timestamp);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
