//! The gRPC faces of [`BucketStore`]: `thanos.Store` (Series, LabelNames, LabelValues and the
//! legacy Info) and `thanos.info.Info`. Errors are classified once through
//! [`ClassifiedError`]; Series streams through a bounded channel fed by a producer task that
//! holds a slot of the series gate (`--store.grpc.series-max-concurrency`).

use std::sync::Arc;
use std::time::Instant;

use strata_common::error::ClassifiedError;
use strata_common::grpc_server::deadline::request_deadline;
use strata_common::grpc_server::{MAX_MESSAGE_SIZE, MAX_REQUEST_SIZE};
use strata_common::labels::labels_to_proto;
use strata_common::storeapi::streaming::{
    SeriesReceiver, frames_buffered, spawn_series_stream_until,
};
use strata_proto::thanos;
use strata_proto::thanos::info::info_server::{Info, InfoServer};
use strata_proto::thanos::store_server::{Store, StoreServer};
use tonic::{Request, Response, Status};

use super::BucketStore;
use crate::error::Error;

/// Decrements the in-flight gauge when dropped.
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `thanos.Store` over a [`BucketStore`].
#[derive(Debug, Clone)]
pub struct StoreService {
    store: Arc<BucketStore>,
}

/// `thanos.info.Info` over a [`BucketStore`].
#[derive(Debug, Clone)]
pub struct InfoService {
    store: Arc<BucketStore>,
}

impl StoreService {
    pub fn new(store: Arc<BucketStore>) -> Self {
        Self { store }
    }

    pub fn into_server(self) -> StoreServer<Self> {
        StoreServer::new(self)
            .max_decoding_message_size(MAX_REQUEST_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

impl InfoService {
    pub fn new(store: Arc<BucketStore>) -> Self {
        Self { store }
    }

    pub fn into_server(self) -> InfoServer<Self> {
        InfoServer::new(self)
            .max_decoding_message_size(MAX_REQUEST_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

fn status(err: &Error) -> Status {
    err.to_grpc_status()
}

#[tonic::async_trait]
impl Store for StoreService {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        if !self.store.is_ready() {
            return Err(status(&Error::NotReady));
        }
        let sets = self.store.label_sets();
        let (min_time, max_time) = time_range(&sets);
        Ok(Response::new(thanos::InfoResponse {
            labels: Vec::new(),
            min_time,
            max_time,
            store_type: thanos::StoreType::Store as i32,
            label_sets: sets
                .iter()
                .map(|(labels, _, _)| thanos::LabelSet {
                    labels: labels_to_proto(labels),
                })
                .collect(),
        }))
    }

    type SeriesStream = SeriesReceiver;

    async fn series(
        &self,
        request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let deadline = request_deadline(&request);
        let request = request.into_inner();
        let store = Arc::clone(&self.store);
        let stream_metrics = store.context.metrics.series_stream.clone();
        let frames = frames_buffered(request.response_batch_size);
        let stream = spawn_series_stream_until(
            &stream_metrics,
            deadline,
            frames,
            move |sender| async move {
                let metrics = store.context.metrics.clone();
                let waited = Instant::now();
                let Ok(_permit) = Arc::clone(&store.gate).acquire_owned().await else {
                    return Ok(());
                };
                metrics
                    .gate_duration
                    .observe(waited.elapsed().as_secs_f64());
                metrics.gate_queries_total.inc();
                metrics.gate_queries_in_flight.inc();
                // Decremented however the call ends, also when the client leaves mid-way.
                let _in_flight = InFlight(metrics.gate_queries_in_flight.clone());
                store
                    .series(request, &sender)
                    .await
                    .map_err(|err| status(&err))
            },
        );
        Ok(Response::new(stream))
    }

    async fn label_names(
        &self,
        request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        self.store
            .label_names(request.into_inner())
            .await
            .map(Response::new)
            .map_err(|err| status(&err))
    }

    async fn label_values(
        &self,
        request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        self.store
            .label_values(request.into_inner())
            .await
            .map(Response::new)
            .map_err(|err| status(&err))
    }
}

/// The union of the label sets' ranges; an empty store advertises an empty range.
fn time_range(sets: &[(strata_tsdb::labels::Labels, i64, i64)]) -> (i64, i64) {
    if sets.is_empty() {
        return (i64::MAX, i64::MIN);
    }
    let min = sets.iter().map(|s| s.1).min().unwrap_or(i64::MAX);
    let max = sets.iter().map(|s| s.2).max().unwrap_or(i64::MIN);
    (min, max)
}

#[tonic::async_trait]
impl Info for InfoService {
    async fn info(
        &self,
        _request: Request<thanos::info::InfoRequest>,
    ) -> Result<Response<thanos::info::InfoResponse>, Status> {
        if !self.store.is_ready() {
            return Err(status(&Error::NotReady));
        }
        let sets = self.store.label_sets();
        let (min_time, max_time) = time_range(&sets);
        Ok(Response::new(thanos::info::InfoResponse {
            label_sets: sets
                .iter()
                .map(|(labels, _, _)| thanos::ZLabelSet {
                    labels: labels_to_proto(labels),
                })
                .collect(),
            component_type: "store".to_owned(),
            store: Some(thanos::info::StoreInfo {
                min_time,
                max_time,
                supports_sharding: true,
                supports_without_replica_labels: true,
                tsdb_infos: sets
                    .iter()
                    .map(|(labels, min, max)| thanos::info::TsdbInfo {
                        labels: Some(thanos::ZLabelSet {
                            labels: labels_to_proto(labels),
                        }),
                        min_time: *min,
                        max_time: *max,
                    })
                    .collect(),
                supports_projections: false,
            }),
            ..Default::default()
        }))
    }
}
