//! The sidecar's StoreAPI (`thanos.Store`) and Info API (`thanos.info.Info`) over the
//! Prometheus beside it (reference/thanos.md sections 1.4, 1.5 and 3.2).
//!
//! Series: matchers on external labels are settled against the external labels
//! (`strata_common::storeapi::external`), the rest go to Prometheus in one remote-read query
//! asking for `STREAMED_XOR_CHUNKS` first, then `SAMPLES`. Chunks are passed through; series
//! are buffered, given their final labels (external labels win, replica labels stripped) and
//! re-sorted, because both changes can reorder them. `skip_chunks` requests, LabelNames and
//! LabelValues use Prometheus's HTTP API (`/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values`). An unreachable Prometheus is `Unavailable`.
//!
//! Sharding is not done here: Info says `supports_sharding: false`, so queriers filter
//! `shard_info` themselves.

use std::pin::Pin;

use futures::Stream;
use strata_common::error::ClassifiedError;
use strata_common::flags::TimeOrDuration;
use strata_common::http_server::Prober;
use strata_common::labels::{labels_to_proto, matchers_from_proto};
use strata_common::storeapi::external;
use strata_proto::thanos;
use strata_proto::thanos::info::info_server::{Info, InfoServer};
use strata_proto::thanos::store_server::{Store, StoreServer};
use strata_tsdb::labels::Labels;
use tonic::{Request, Response, Status};

use crate::error::{Error, Result};
use crate::heartbeat::PrometheusMeta;
use crate::prometheus::PrometheusClient;
use crate::remote_read::{self, RawSeries};

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
    ) -> Self {
        Self {
            client,
            meta,
            prober,
            min_time,
            limits,
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

    /// Reads and finalizes the series of `request`, sorted by final labels.
    pub async fn select(&self, request: &thanos::SeriesRequest) -> Result<Vec<thanos::Series>> {
        let matchers = matchers_from_proto(&request.matchers)?;
        let external_labels = self.meta.external_labels();
        let Some(matchers) = external::matchers_for_store(&external_labels, &matchers)? else {
            return Ok(Vec::new());
        };
        let min_time = request.min_time.max(self.min_time());
        if min_time > request.max_time {
            return Ok(Vec::new());
        }
        let raw = if request.skip_chunks {
            // Labels only: Prometheus's series API reads no chunk data at all.
            self.client
                .series(min_time, request.max_time, &matchers)
                .await?
                .into_iter()
                .map(|labels| RawSeries {
                    labels,
                    chunks: Vec::new(),
                })
                .collect()
        } else {
            remote_read::read(&self.client, min_time, request.max_time, &matchers).await?
        };
        self.check_limits(&raw)?;
        let mut series: Vec<(Labels, Vec<thanos::AggrChunk>)> = raw
            .into_iter()
            .map(|raw| {
                let labels = external::finalize_labels(
                    &raw.labels,
                    &external_labels,
                    &request.without_replica_labels,
                );
                (labels, raw.chunks)
            })
            .collect();
        external::sort_by_labels(&mut series, |(labels, _)| labels);
        if let Ok(limit) = usize::try_from(request.limit)
            && limit > 0
        {
            series.truncate(limit);
        }
        Ok(series
            .into_iter()
            .map(|(labels, chunks)| thanos::Series {
                labels: labels
                    .into_vec()
                    .into_iter()
                    .map(|label| thanos::Label {
                        name: label.name,
                        value: label.value,
                    })
                    .collect(),
                chunks,
            })
            .collect())
    }

    fn check_limits(&self, series: &[RawSeries]) -> Result<()> {
        if self.limits.series > 0 && series.len() as u64 > self.limits.series {
            return Err(Error::LimitExceeded {
                what: "series",
                limit: self.limits.series,
            });
        }
        if self.limits.samples > 0 {
            let samples: u64 = series
                .iter()
                .flat_map(|series| &series.chunks)
                .filter_map(|chunk| chunk.raw.as_ref())
                // Every Prometheus chunk encoding starts with its sample count (BE u16).
                .map(|raw| match raw.data.get(..2) {
                    Some(&[high, low]) => u64::from(u16::from_be_bytes([high, low])),
                    _ => 0,
                })
                .sum();
            if samples > self.limits.samples {
                return Err(Error::LimitExceeded {
                    what: "samples",
                    limit: self.limits.samples,
                });
            }
        }
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

type FrameStream =
    Pin<Box<dyn Stream<Item = Result<thanos::SeriesResponse, Status>> + Send + 'static>>;

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

    type SeriesStream = FrameStream;

    async fn series(
        &self,
        request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let request = request.into_inner();
        let series = self.select(&request).await.map_err(status)?;
        let batch_size = usize::try_from(request.response_batch_size).unwrap_or(0);
        let frames: Vec<Result<thanos::SeriesResponse, Status>> = if batch_size > 1 {
            let mut series = series.into_iter();
            let mut frames = Vec::new();
            loop {
                let batch: Vec<thanos::Series> = series.by_ref().take(batch_size).collect();
                if batch.is_empty() {
                    break;
                }
                frames.push(Ok(thanos::SeriesResponse::from_batch(batch)));
            }
            frames
        } else {
            series
                .into_iter()
                .map(|series| Ok(thanos::SeriesResponse::from_series(series)))
                .collect()
        };
        Ok(Response::new(Box::pin(futures::stream::iter(frames))))
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
