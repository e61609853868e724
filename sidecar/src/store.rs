//! The sidecar's StoreAPI (`thanos.Store`) and Info API (`thanos.info.Info`) over the
//! Prometheus beside it (reference/thanos.md sections 1.4, 1.5 and 3.2).
//!
//! Series: matchers on external labels are settled against the external labels
//! (`strata_common::storeapi::external`), the rest go to Prometheus in one remote-read query
//! asking for `STREAMED_XOR_CHUNKS` first, then `SAMPLES`. The answer is streamed: each series
//! is given its final labels (external labels win, replica labels stripped) as it arrives and
//! sent as soon as no later series can sort before it
//! ([`strata_common::storeapi::final_order`]), so memory holds the frames in flight and the
//! few series whose order the label changes can move, not the answer. Chunks are passed
//! through. Series and sample limits are counted while reading and end the call with
//! ResourceExhausted; a client that goes away stops the remote read at once.
//! `skip_chunks` requests, LabelNames and LabelValues use Prometheus's HTTP API
//! (`/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values`); `/api/v1/series`
//! answers in no particular order, so those label sets are sorted whole. An unreachable
//! Prometheus is `Unavailable`.
//!
//! Sharding is not done here: Info says `supports_sharding: false`, so queriers filter
//! `shard_info` themselves.

use strata_common::error::ClassifiedError;
use strata_common::flags::TimeOrDuration;
use strata_common::grpc_server::deadline::request_deadline;
use strata_common::http_server::Prober;
use strata_common::labels::{labels_to_proto, matchers_from_proto};
use strata_common::storeapi::external;
use strata_common::storeapi::final_order::Resorter;
use strata_common::storeapi::streaming::{
    FrameBatcher, SeriesReceiver, SeriesSender, SeriesStreamMetrics, frames_buffered,
    spawn_series_stream_until,
};
use strata_proto::thanos;
use strata_proto::thanos::info::info_server::{Info, InfoServer};
use strata_proto::thanos::store_server::{Store, StoreServer};
use strata_tsdb::labels::{Labels, Matcher};
use tonic::{Request, Response, Status};

use crate::error::{Error, Result};
use crate::heartbeat::PrometheusMeta;
use crate::prometheus::PrometheusClient;
use crate::remote_read;

/// The component type the sidecar announces in Info.
const COMPONENT_TYPE: &str = "sidecar";

/// Per-request limits (`--store.limits.request-*`, 0 = none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub series: u64,
    pub samples: u64,
}

/// The StoreAPI and Info API of one sidecar.
#[derive(Debug, Clone)]
pub struct SidecarStore {
    client: PrometheusClient,
    meta: PrometheusMeta,
    prober: Prober,
    min_time: TimeOrDuration,
    limits: Limits,
    stream_metrics: SeriesStreamMetrics,
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SidecarStore {
    pub fn new(
        client: PrometheusClient,
        meta: PrometheusMeta,
        prober: Prober,
        min_time: TimeOrDuration,
        limits: Limits,
        stream_metrics: SeriesStreamMetrics,
    ) -> Self {
        Self {
            client,
            meta,
            prober,
            min_time,
            limits,
            stream_metrics,
        }
    }

    pub fn into_servers(self) -> (StoreServer<Self>, InfoServer<Self>) {
        use strata_common::grpc_server::{MAX_MESSAGE_SIZE, MAX_REQUEST_SIZE};
        (
            StoreServer::new(self.clone())
                .max_decoding_message_size(MAX_REQUEST_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            InfoServer::new(self)
                .max_decoding_message_size(MAX_REQUEST_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
    }

    /// The advertised minimum time: the oldest sample, but not before `--min-time`.
    pub fn min_time(&self) -> i64 {
        let flag = self.min_time.resolve(now_millis());
        self.meta.snapshot().lowest_timestamp.max(flag)
    }

    fn check_ready(&self) -> Result<(), Status> {
        if self.prober.is_ready() {
            return Ok(());
        }
        Err(Error::PrometheusNotReady {
            timeout: std::time::Duration::ZERO,
            reason: "sidecar is not ready: prometheus unreachable".to_owned(),
        }
        .to_grpc_status())
    }

    /// The Prometheus query of `request` after its external-label matchers are settled;
    /// `None` when this sidecar has nothing for it.
    fn plan(&self, request: &thanos::SeriesRequest) -> Result<Option<Plan>> {
        let matchers = matchers_from_proto(&request.matchers)?;
        let external = self.meta.external_labels();
        let Some(matchers) = external::matchers_for_store(&external, &matchers)? else {
            return Ok(None);
        };
        let min_time = request.min_time.max(self.min_time());
        if min_time > request.max_time {
            return Ok(None);
        }
        Ok(Some(Plan {
            matchers,
            min_time,
            max_time: request.max_time,
            external,
        }))
    }

    /// Answers `request` into `sender`, series by series in final-label order.
    async fn produce(
        self,
        request: thanos::SeriesRequest,
        plan: Plan,
        sender: SeriesSender,
    ) -> Result<()> {
        let mut output = Output {
            batcher: FrameBatcher::new(request.response_batch_size),
            remaining: usize::try_from(request.limit)
                .ok()
                .filter(|limit| *limit > 0)
                .unwrap_or(usize::MAX),
            sender,
        };
        let without_replica = &request.without_replica_labels;
        let mut counter = LimitCounter::new(self.limits);
        if request.skip_chunks {
            // Labels only: Prometheus's series API reads no chunk data, in no set order.
            let labels = self
                .client
                .series(plan.min_time, plan.max_time, &plan.matchers)
                .await?;
            let mut series: Vec<Labels> = Vec::with_capacity(labels.len());
            for labels in labels {
                counter.add_series(&[])?;
                series.push(external::finalize_labels(
                    &labels,
                    &plan.external,
                    without_replica,
                ));
            }
            series.sort();
            for labels in series {
                if !output.send(labels, Vec::new()).await {
                    return Ok(());
                }
            }
            output.finish().await;
            return Ok(());
        }
        let mut reader = remote_read::SeriesReader::open(
            &self.client,
            plan.min_time,
            plan.max_time,
            &plan.matchers,
        )
        .await?;
        let mut resorter = Resorter::new(&plan.external, without_replica);
        while let Some(raw) = reader.next().await? {
            counter.add_series(&raw.chunks)?;
            let labels = external::finalize_labels(&raw.labels, &plan.external, without_replica);
            resorter.push(&raw.labels, labels, raw.chunks);
            while let Some((labels, chunks)) = resorter.pop_ready() {
                if !output.send(labels, chunks).await {
                    return Ok(());
                }
            }
        }
        while let Some((labels, chunks)) = resorter.pop_finished() {
            if !output.send(labels, chunks).await {
                return Ok(());
            }
        }
        output.finish().await;
        Ok(())
    }

    fn info_response(&self) -> thanos::info::InfoResponse {
        let external_labels = self.meta.external_labels();
        let min_time = self.min_time();
        let label_set = thanos::ZLabelSet {
            labels: labels_to_proto(&external_labels),
        };
        thanos::info::InfoResponse {
            label_sets: vec![label_set.clone()],
            component_type: COMPONENT_TYPE.to_owned(),
            store: Some(thanos::info::StoreInfo {
                min_time,
                max_time: i64::MAX,
                // Sharding is left to the querier, which filters when a store says false.
                supports_sharding: false,
                supports_without_replica_labels: true,
                tsdb_infos: vec![thanos::info::TsdbInfo {
                    labels: Some(label_set),
                    min_time,
                    max_time: i64::MAX,
                }],
                supports_projections: false,
            }),
            ..Default::default()
        }
    }
}

fn status(err: Error) -> Status {
    err.to_grpc_status()
}

/// A Series request's Prometheus query.
#[derive(Debug)]
struct Plan {
    matchers: Vec<Matcher>,
    min_time: i64,
    max_time: i64,
    external: Labels,
}

/// The sending end of one Series call: frames, the request's series `limit`.
struct Output {
    batcher: FrameBatcher,
    remaining: usize,
    sender: SeriesSender,
}

impl Output {
    /// Sends one series (batched as asked); false once the limit is reached or the client left.
    async fn send(&mut self, labels: Labels, chunks: Vec<thanos::AggrChunk>) -> bool {
        if self.remaining == 0 {
            return false;
        }
        self.remaining -= 1;
        let series = thanos::Series {
            labels: labels_to_proto(&labels),
            chunks,
        };
        if let Some(frame) = self.batcher.push(series)
            && self.sender.send(Ok(frame)).await.is_err()
        {
            return false;
        }
        self.remaining > 0
    }

    /// Sends the last partial batch.
    async fn finish(&mut self) {
        if let Some(frame) = self.batcher.finish() {
            let _ = self.sender.send(Ok(frame)).await;
        }
    }
}

/// Counts series and samples against `--store.limits.request-*` while they are read.
struct LimitCounter {
    limits: Limits,
    series: u64,
    samples: u64,
}

impl LimitCounter {
    fn new(limits: Limits) -> Self {
        LimitCounter {
            limits,
            series: 0,
            samples: 0,
        }
    }

    fn add_series(&mut self, chunks: &[thanos::AggrChunk]) -> Result<()> {
        self.series += 1;
        if self.limits.series > 0 && self.series > self.limits.series {
            return Err(Error::LimitExceeded {
                what: "series",
                limit: self.limits.series,
            });
        }
        if self.limits.samples > 0 {
            let samples: u64 = chunks
                .iter()
                .filter_map(|chunk| chunk.raw.as_ref())
                // Every Prometheus chunk encoding starts with its sample count (BE u16).
                .map(|raw| match raw.data.get(..2) {
                    Some(&[high, low]) => u64::from(u16::from_be_bytes([high, low])),
                    _ => 0,
                })
                .sum();
            self.samples = self.samples.saturating_add(samples);
            if self.samples > self.limits.samples {
                return Err(Error::LimitExceeded {
                    what: "samples",
                    limit: self.limits.samples,
                });
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Store for SidecarStore {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        self.check_ready()?;
        let info = self.info_response();
        let labels = info
            .label_sets
            .first()
            .map(|set| set.labels.clone())
            .unwrap_or_default();
        Ok(Response::new(thanos::InfoResponse {
            labels,
            min_time: info.store.as_ref().map_or(i64::MIN, |store| store.min_time),
            max_time: i64::MAX,
            store_type: thanos::StoreType::Sidecar as i32,
            label_sets: info
                .label_sets
                .into_iter()
                .map(|set| thanos::LabelSet { labels: set.labels })
                .collect(),
        }))
    }

    type SeriesStream = SeriesReceiver;

    async fn series(
        &self,
        request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        // A Prometheus that stalls cannot hold the call past the caller's deadline; between
        // frames the remote-read client's idle timeout applies as well.
        let deadline = request_deadline(&request);
        let request = request.into_inner();
        let plan = self.plan(&request).map_err(status)?;
        let store = self.clone();
        let frames = frames_buffered(request.response_batch_size);
        let stream = spawn_series_stream_until(
            &self.stream_metrics,
            deadline,
            frames,
            move |sender| async move {
                match plan {
                    Some(plan) => store.produce(request, plan, sender).await.map_err(status),
                    None => Ok(()),
                }
            },
        );
        Ok(Response::new(stream))
    }

    async fn label_names(
        &self,
        request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        let request = request.into_inner();
        let matchers =
            matchers_from_proto(&request.matchers).map_err(|err| status(Error::from(err)))?;
        let external_labels = self.meta.external_labels();
        if !external::external_labels_match(&external_labels, &matchers) {
            return Ok(Response::new(thanos::LabelNamesResponse::default()));
        }
        let matchers = external::matchers_without_external(&external_labels, &matchers);
        let names = self
            .client
            .label_names(request.start, request.end, &matchers)
            .await
            .map_err(status)?;
        // As Thanos: external label names are added only when the data has any series.
        let mut names = if names.is_empty() {
            names
        } else {
            external::label_names_with_external(
                names,
                &external_labels,
                &request.without_replica_labels,
            )
        };
        truncate(&mut names, request.limit);
        Ok(Response::new(thanos::LabelNamesResponse {
            names,
            ..Default::default()
        }))
    }

    async fn label_values(
        &self,
        request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        let request = request.into_inner();
        if request.label.is_empty() {
            return Err(status(Error::InvalidRequest {
                reason: "label name parameter cannot be empty".to_owned(),
            }));
        }
        let matchers =
            matchers_from_proto(&request.matchers).map_err(|err| status(Error::from(err)))?;
        let external_labels = self.meta.external_labels();
        if !external::external_labels_match(&external_labels, &matchers) {
            return Ok(Response::new(thanos::LabelValuesResponse::default()));
        }
        let is_external = external_labels.get(&request.label).is_some();
        let is_replica = request.without_replica_labels.contains(&request.label);
        let values = if is_external || is_replica {
            Vec::new()
        } else {
            let matchers = external::matchers_without_external(&external_labels, &matchers);
            self.client
                .label_values(&request.label, request.start, request.end, &matchers)
                .await
                .map_err(status)?
        };
        let mut values = external::label_values_with_external(
            &request.label,
            values,
            &external_labels,
            &request.without_replica_labels,
        );
        truncate(&mut values, request.limit);
        Ok(Response::new(thanos::LabelValuesResponse {
            values,
            ..Default::default()
        }))
    }
}

fn truncate(values: &mut Vec<String>, limit: i64) {
    if let Ok(limit) = usize::try_from(limit)
        && limit > 0
    {
        values.truncate(limit);
    }
}

#[tonic::async_trait]
impl Info for SidecarStore {
    async fn info(
        &self,
        _request: Request<thanos::info::InfoRequest>,
    ) -> Result<Response<thanos::info::InfoResponse>, Status> {
        // Thanos fails Info until the sidecar is ready, so queriers do not use it yet.
        self.check_ready()?;
        Ok(Response::new(self.info_response()))
    }
}
