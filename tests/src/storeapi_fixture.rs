//! In-process StoreAPI servers for querier end-to-end tests: a store with external labels (like
//! a sidecar of one Prometheus replica) serving generated counter series through the real
//! tonic services (`thanos.Store` and `thanos.info.Info`), or a store that hangs on Series.
//! Series are served by `strata_common::storeapi::testing::InMemoryStore` (matchers, time
//! range, frames); this adds external labels and the Info API. The store does not advertise
//! `without_replica_labels`, so the querier's own stripping and re-sorting is exercised.

use std::net::SocketAddr;
use std::pin::Pin;

use futures::Stream;
use strata_common::storeapi::testing::InMemoryStore;
use strata_proto::thanos;
use strata_proto::thanos::info::info_server::{Info, InfoServer};
use strata_proto::thanos::store_server::{Store, StoreServer};
use strata_tsdb::chunkenc::XorAppender;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Samples per XOR chunk (Prometheus cuts at 120).
const SAMPLES_PER_CHUNK: usize = 120;

/// A counter series to serve: its own labels and `value(t_ms)` sampled every `interval_ms`.
pub struct CounterSeries {
    pub labels: Vec<(String, String)>,
    /// Value per second of the counter (its rate).
    pub per_second: f64,
}

/// What the store does with Series calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Serve,
    /// Accepts the call and never sends a frame.
    Hang,
}

/// A StoreAPI with external labels.
#[derive(Clone)]
pub struct FixtureStore {
    external: Vec<(String, String)>,
    inner: InMemoryStore,
    behaviour: Behaviour,
    min_time: i64,
    max_time: i64,
}

/// XOR chunks of `value(t)` sampled every `interval_ms` over `[from, to]`.
pub fn counter_chunks(
    from: i64,
    to: i64,
    interval_ms: i64,
    value: impl Fn(i64) -> f64,
) -> anyhow::Result<Vec<thanos::AggrChunk>> {
    let timestamps: Vec<i64> = (0..)
        .map(|i| from + i * interval_ms)
        .take_while(|t| *t <= to)
        .collect();
    let mut chunks = Vec::new();
    for part in timestamps.chunks(SAMPLES_PER_CHUNK) {
        let mut appender = XorAppender::new();
        for &t in part {
            appender.append(t, value(t))?;
        }
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            continue;
        };
        chunks.push(thanos::AggrChunk {
            min_time: *first,
            max_time: *last,
            raw: Some(thanos::Chunk {
                r#type: thanos::chunk::Encoding::Xor as i32,
                data: appender.bytes().into(),
                hash: 0,
            }),
            ..Default::default()
        });
    }
    Ok(chunks)
}

impl FixtureStore {
    /// A store with `external` labels serving `series` as counters scraped every
    /// `interval_ms` from `from` to `to` (ms), the first sample at `from + offset_ms`.
    pub fn counters(
        external: &[(&str, &str)],
        series: &[CounterSeries],
        from: i64,
        to: i64,
        interval_ms: i64,
        offset_ms: i64,
    ) -> anyhow::Result<Self> {
        let external: Vec<(String, String)> = external
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let mut all = Vec::new();
        for one in series {
            let mut labels: Vec<(String, String)> = one
                .labels
                .iter()
                .filter(|(name, _)| !external.iter().any(|(ext, _)| ext == name))
                .cloned()
                .collect();
            labels.extend(external.iter().cloned());
            labels.sort();
            let per_second = one.per_second;
            all.push(thanos::Series {
                labels: labels
                    .iter()
                    .map(|(name, value)| thanos::Label::new(name.clone(), value.clone()))
                    .collect(),
                chunks: counter_chunks(from + offset_ms, to, interval_ms, |t| {
                    (t - from) as f64 / 1000.0 * per_second
                })?,
            });
        }
        Ok(Self {
            external,
            inner: InMemoryStore::new(all).with_max_chunks_per_frame(2),
            behaviour: Behaviour::Serve,
            min_time: from,
            max_time: i64::MAX,
        })
    }

    /// A store serving downsampled data, as a store gateway serves 5m/1h blocks: for each
    /// series one aggregate chunk per `resolution_ms` window from `from` to `to` with all five
    /// aggregates filled and no raw data: count of raw samples (15 s interval), sum = count x
    /// `level`, min = `level - 2`, max = `level + 2`, and a counter growing `per_second`.
    pub fn downsampled(
        external: &[(&str, &str)],
        labels: &[(&str, &str)],
        from: i64,
        to: i64,
        resolution_ms: i64,
        level: f64,
        per_second: f64,
    ) -> anyhow::Result<Self> {
        let mut all_labels: Vec<(String, String)> = labels
            .iter()
            .chain(external)
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        all_labels.sort();
        let count = (resolution_ms / 15_000) as f64;
        let part = |value: &dyn Fn(i64) -> f64| -> anyhow::Result<Option<thanos::Chunk>> {
            let chunks = counter_chunks(from + resolution_ms, to, resolution_ms, value)?;
            Ok(chunks.into_iter().next().and_then(|chunk| chunk.raw))
        };
        let first = counter_chunks(from + resolution_ms, to, resolution_ms, |_| 0.0)?;
        let (Some(min_time), Some(max_time)) = (
            first.first().map(|chunk| chunk.min_time),
            first.first().map(|chunk| chunk.max_time),
        ) else {
            anyhow::bail!("no downsampling window between {from} and {to}");
        };
        let chunk = thanos::AggrChunk {
            min_time,
            max_time,
            raw: None,
            count: part(&|_| count)?,
            sum: part(&|_| count * level)?,
            min: part(&|_| level - 2.0)?,
            max: part(&|_| level + 2.0)?,
            counter: part(&|t| (t - from) as f64 / 1000.0 * per_second)?,
        };
        let series = thanos::Series {
            labels: all_labels
                .iter()
                .map(|(name, value)| thanos::Label::new(name.clone(), value.clone()))
                .collect(),
            chunks: vec![chunk],
        };
        Ok(Self {
            external: external
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            inner: InMemoryStore::new(vec![series]),
            behaviour: Behaviour::Serve,
            min_time: from,
            max_time: to,
        })
    }

    /// A store that answers Info with `external` labels but hangs on Series.
    pub fn hanging(external: &[(&str, &str)]) -> Self {
        Self {
            external: external
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            inner: InMemoryStore::new(Vec::new()),
            behaviour: Behaviour::Hang,
            min_time: i64::MIN,
            max_time: i64::MAX,
        }
    }

    fn label_set(&self) -> Vec<thanos::Label> {
        self.external
            .iter()
            .map(|(name, value)| thanos::Label::new(name.clone(), value.clone()))
            .collect()
    }

    /// Serves this store on a free 127.0.0.1 port until `shutdown` is cancelled.
    pub async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tonic::transport::Server::builder()
            .add_service(StoreServer::new(self.clone()))
            .add_service(InfoServer::new(self))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move { shutdown.cancelled().await },
            );
        tokio::spawn(server);
        Ok(address)
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<thanos::SeriesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Store for FixtureStore {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        Err(Status::unimplemented("use thanos.info.Info"))
    }

    type SeriesStream = FrameStream;

    async fn series(
        &self,
        request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        match self.behaviour {
            Behaviour::Hang => Ok(Response::new(Box::pin(futures::stream::pending()))),
            Behaviour::Serve => Store::series(&self.inner, request).await,
        }
    }

    async fn label_names(
        &self,
        request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        Store::label_names(&self.inner, request).await
    }

    async fn label_values(
        &self,
        request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        Store::label_values(&self.inner, request).await
    }
}

#[tonic::async_trait]
impl Info for FixtureStore {
    async fn info(
        &self,
        _request: Request<thanos::info::InfoRequest>,
    ) -> Result<Response<thanos::info::InfoResponse>, Status> {
        Ok(Response::new(thanos::info::InfoResponse {
            label_sets: vec![thanos::ZLabelSet {
                labels: self.label_set(),
            }],
            component_type: "sidecar".to_owned(),
            store: Some(thanos::info::StoreInfo {
                min_time: self.min_time,
                max_time: self.max_time,
                supports_sharding: false,
                supports_without_replica_labels: false,
                tsdb_infos: Vec::new(),
                supports_projections: false,
            }),
            ..Default::default()
        }))
    }
}
