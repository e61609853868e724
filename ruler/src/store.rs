//! The ruler's StoreAPI (`thanos.Store`) and Info API over its local TSDB, with the `--label`
//! set as external labels (reference/thanos-ruler-deploy.md section 1.4): queriers add the
//! ruler as an endpoint and deduplicate on its replica label. The external-label rules are
//! `strata_common::storeapi::external`'s, shared with the sidecar and the store gateway.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use strata_common::error::{ClassifiedError, ErrorCode};
use strata_common::http_server::Prober;
use strata_common::labels::{labels_to_proto, matchers_from_proto};
use strata_common::storeapi::external;
use strata_proto::thanos;
use strata_proto::thanos::info::info_server::{Info, InfoServer};
use strata_proto::thanos::store_server::{Store, StoreServer};
use strata_tsdb::chunkenc::Encoding;
use strata_tsdb::labels::Labels;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::storage::LocalTsdb;

/// The component type announced in Info.
const COMPONENT_TYPE: &str = "rule";

#[derive(Debug, Clone)]
pub struct RulerStore {
    tsdb: Arc<LocalTsdb>,
    external_labels: Labels,
    prober: Prober,
}

fn status(err: impl ClassifiedError) -> Status {
    err.to_grpc_status()
}

impl RulerStore {
    pub fn new(tsdb: Arc<LocalTsdb>, external_labels: Labels, prober: Prober) -> Self {
        Self {
            tsdb,
            external_labels,
            prober,
        }
    }

    pub fn into_servers(self) -> (StoreServer<Self>, InfoServer<Self>) {
        use strata_common::grpc_server::MAX_MESSAGE_SIZE;
        (
            StoreServer::new(self.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            InfoServer::new(self)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
    }

    fn check_ready(&self) -> Result<(), Status> {
        if self.prober.is_ready() {
            Ok(())
        } else {
            Err(ErrorCode::Unavailable.to_status("ruler is not ready"))
        }
    }

    fn min_time(&self) -> i64 {
        self.tsdb.min_time().unwrap_or(i64::MAX)
    }

    /// Every series of the TSDB (all matchers dropped) in `[mint, maxt]`, final labels.
    async fn select(
        &self,
        matchers: Vec<strata_tsdb::labels::Matcher>,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<crate::storage::SeriesChunks>, Status> {
        let tsdb = Arc::clone(&self.tsdb);
        tokio::task::spawn_blocking(move || tsdb.select(&matchers, mint, maxt))
            .await
            .map_err(|err| ErrorCode::Internal.to_status(err.to_string()))?
            .map_err(status)
    }

    fn info_response(&self) -> thanos::info::InfoResponse {
        let label_set = thanos::ZLabelSet {
            labels: labels_to_proto(&self.external_labels),
        };
        let min_time = self.min_time();
        thanos::info::InfoResponse {
            label_sets: vec![label_set.clone()],
            component_type: COMPONENT_TYPE.to_owned(),
            store: Some(thanos::info::StoreInfo {
                min_time,
                max_time: i64::MAX,
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

type FrameStream =
    Pin<Box<dyn Stream<Item = Result<thanos::SeriesResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Store for RulerStore {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        self.check_ready()?;
        let info = self.info_response();
        Ok(Response::new(thanos::InfoResponse {
            labels: labels_to_proto(&self.external_labels),
            min_time: self.min_time(),
            max_time: i64::MAX,
            store_type: thanos::StoreType::Rule as i32,
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
        let matchers = matchers_from_proto(&request.matchers).map_err(status)?;
        let Some(matchers) =
            external::matchers_for_store(&self.external_labels, &matchers).map_err(status)?
        else {
            return Ok(Response::new(Box::pin(futures::stream::empty())));
        };
        let selected = self
            .select(matchers, request.min_time, request.max_time)
            .await?;
        let mut series: Vec<(Labels, Vec<thanos::AggrChunk>)> = selected
            .into_iter()
            .map(|series| {
                let labels = external::finalize_labels(
                    &series.labels,
                    &self.external_labels,
                    &request.without_replica_labels,
                );
                let chunks = if request.skip_chunks {
                    Vec::new()
                } else {
                    series
                        .chunks
                        .into_iter()
                        .filter(|chunk| chunk.chunk.encoding == Encoding::Xor)
                        .map(|chunk| thanos::AggrChunk {
                            min_time: chunk.min_time,
                            max_time: chunk.max_time,
                            raw: Some(thanos::Chunk {
                                r#type: thanos::chunk::Encoding::Xor as i32,
                                hash: xxhash_rust::xxh64::xxh64(&chunk.chunk.data, 0),
                                data: chunk.chunk.data,
                            }),
                            ..Default::default()
                        })
                        .collect()
                };
                (labels, chunks)
            })
            .collect();
        external::sort_by_labels(&mut series, |(labels, _)| labels);
        if let Ok(limit) = usize::try_from(request.limit)
            && limit > 0
        {
            series.truncate(limit);
        }
        let frames: Vec<Result<thanos::SeriesResponse, Status>> = series
            .into_iter()
            .map(|(labels, chunks)| {
                Ok(thanos::SeriesResponse::from_series(thanos::Series {
                    labels: labels_to_proto(&labels),
                    chunks,
                }))
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(frames))))
    }

    async fn label_names(
        &self,
        request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        let request = request.into_inner();
        let matchers = matchers_from_proto(&request.matchers).map_err(status)?;
        if !external::external_labels_match(&self.external_labels, &matchers) {
            return Ok(Response::new(thanos::LabelNamesResponse::default()));
        }
        let matchers = external::matchers_without_external(&self.external_labels, &matchers);
        let selected = self.select(matchers, request.start, request.end).await?;
        let mut names: Vec<String> = selected
            .iter()
            .flat_map(|series| series.labels.iter().map(|label| label.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        let mut names = if names.is_empty() {
            names
        } else {
            external::label_names_with_external(
                names,
                &self.external_labels,
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
        let matchers = matchers_from_proto(&request.matchers).map_err(status)?;
        if !external::external_labels_match(&self.external_labels, &matchers) {
            return Ok(Response::new(thanos::LabelValuesResponse::default()));
        }
        let is_external = self.external_labels.get(&request.label).is_some();
        let is_replica = request.without_replica_labels.contains(&request.label);
        let values = if is_external || is_replica {
            Vec::new()
        } else {
            let matchers = external::matchers_without_external(&self.external_labels, &matchers);
            let selected = self.select(matchers, request.start, request.end).await?;
            let mut values: Vec<String> = selected
                .iter()
                .filter_map(|series| series.labels.get(&request.label).map(str::to_owned))
                .collect();
            values.sort();
            values.dedup();
            values
        };
        let mut values = external::label_values_with_external(
            &request.label,
            values,
            &self.external_labels,
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
impl Info for RulerStore {
    async fn info(
        &self,
        _request: Request<thanos::info::InfoRequest>,
    ) -> Result<Response<thanos::info::InfoResponse>, Status> {
        self.check_ready()?;
        Ok(Response::new(self.info_response()))
    }
}
