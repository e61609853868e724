//! The querier as a StoreAPI server (component type `query`), so a global querier can stack on
//! per-cluster queriers. Series, LabelNames and LabelValues go through the same fan-out as the
//! HTTP API; merged series are streamed as they are merged. The Info API advertises the union
//! of the healthy stores' label sets and time range, and `without_replica_labels` support (the
//! fan-out strips and re-sorts itself).
//!
//! `--selector-label`s (Thanos's proxy store selector labels) extend every advertised label set
//! (they win over a store's own value) and narrow requests: a request whose matchers exclude
//! them gets an empty answer, matchers on them are satisfied here and not sent on.
//!
//! The caller's gRPC deadline (`grpc-timeout`) bounds the whole fan-out: stores are asked with
//! what is left of it, and when it passes the stream ends with `DeadlineExceeded` and the
//! fan-out is dropped, so a stalled store cannot hold a stacked querier's call open forever.

use std::pin::Pin;

use futures::Stream;
use strata_common::error::ClassifiedError;
use strata_common::grpc_server::deadline::request_deadline;
use strata_common::labels::{labels_to_proto, matchers_from_proto};
use strata_proto::thanos;
use strata_proto::thanos::info::info_server::{Info, InfoServer};
use strata_proto::thanos::store_server::{Store, StoreServer};
use strata_tsdb::labels::{Labels, Matcher};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::proxy::{LabelsQuery, Proxy, SeriesQuery, Warnings, merged_to_proto};

/// Frames buffered between the fan-out and the gRPC stream.
const FRAME_BUFFER: usize = 64;

/// The proxy StoreAPI.
#[derive(Debug, Clone)]
pub struct ProxyStore {
    proxy: Proxy,
    selector: Labels,
}

impl ProxyStore {
    pub fn new(proxy: Proxy) -> Self {
        Self {
            proxy,
            selector: Labels::default(),
        }
    }

    /// Sets the `--selector-label`s.
    pub fn with_selector_labels(mut self, selector: Labels) -> Self {
        self.selector = selector;
        self
    }

    /// The matchers left to send on once the selector labels are applied, or `None` when the
    /// matchers exclude the selector labels (nothing here can match).
    fn narrow(&self, matchers: Vec<Matcher>) -> Option<Vec<Matcher>> {
        let mut rest = Vec::with_capacity(matchers.len());
        for matcher in matchers {
            match self.selector.get(&matcher.name) {
                Some(value) if matcher.matches(value) => {}
                Some(_) => return None,
                None => rest.push(matcher),
            }
        }
        Some(rest)
    }

    /// `set` extended with the selector labels, whose values win.
    fn extend(&self, set: &Labels) -> Labels {
        Labels::new(self.selector.iter().chain(set.iter()).cloned().collect())
    }

    pub fn into_servers(self) -> (StoreServer<Self>, InfoServer<Self>) {
        let max = strata_common::grpc_server::MAX_MESSAGE_SIZE;
        let max_request = strata_common::grpc_server::MAX_REQUEST_SIZE;
        (
            StoreServer::new(self.clone())
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(max),
            InfoServer::new(self)
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(max),
        )
    }

    /// Union of the healthy stores' label sets (sorted, unique) and time range.
    fn advertised(&self) -> (Vec<Labels>, i64, i64) {
        let usable = self.proxy.endpoints.usable();
        let mut sets: Vec<Labels> = usable
            .iter()
            .flat_map(|(_, info)| info.label_sets.iter().map(|set| self.extend(set)))
            .collect();
        if sets.is_empty() && !usable.is_empty() && !self.selector.is_empty() {
            // Stores without external labels: the selector labels alone describe us.
            sets.push(self.selector.clone());
        }
        sets.sort();
        sets.dedup();
        let min_time = usable.iter().map(|(_, info)| info.min_time).min();
        let max_time = usable.iter().map(|(_, info)| info.max_time).max();
        match (min_time, max_time) {
            (Some(min_time), Some(max_time)) => (sets, min_time, max_time),
            // No store yet: advertise an empty range so nobody selects us for data.
            _ => (sets, i64::MAX, i64::MIN),
        }
    }
}

fn partial_response(strategy: i32, disabled: bool) -> bool {
    !disabled && strategy != thanos::PartialResponseStrategy::Abort as i32
}

/// A late answer is no answer: stores cut at the deadline became warnings, but the caller
/// has given up by now.
fn check_deadline(deadline: Option<std::time::Instant>) -> Result<(), Status> {
    match deadline {
        Some(at) if std::time::Instant::now() >= at => Err(Status::deadline_exceeded(
            "deadline of the labels request exceeded",
        )),
        _ => Ok(()),
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<thanos::SeriesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Store for ProxyStore {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        let (sets, min_time, max_time) = self.advertised();
        Ok(Response::new(thanos::InfoResponse {
            labels: Vec::new(),
            min_time,
            max_time,
            store_type: thanos::StoreType::Query as i32,
            label_sets: sets
                .iter()
                .map(|set| thanos::LabelSet {
                    labels: labels_to_proto(set),
                })
                .collect(),
        }))
    }

    type SeriesStream = FrameStream;

    async fn series(
        &self,
        request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let deadline = request_deadline(&request);
        let request = request.into_inner();
        let matchers =
            matchers_from_proto(&request.matchers).map_err(|err| err.to_grpc_status())?;
        let Some(matchers) = self.narrow(matchers) else {
            return Ok(Response::new(Box::pin(futures::stream::empty())));
        };
        let partial = partial_response(
            request.partial_response_strategy,
            request.partial_response_disabled,
        );
        let query = SeriesQuery {
            min_time: request.min_time,
            max_time: request.max_time,
            matchers,
            replica_labels: request.without_replica_labels.clone(),
            partial_response: partial,
            skip_chunks: request.skip_chunks,
            max_resolution_window: request.max_resolution_window,
            aggregates: request
                .aggregates
                .iter()
                .filter_map(|aggr| thanos::Aggr::try_from(*aggr).ok())
                .collect(),
            query_hints: request.query_hints.clone(),
            deadline,
        };
        let warnings = Warnings::default();
        let mut merged = self
            .proxy
            .series(query, warnings.clone())
            .map_err(|err| err.to_grpc_status())?;
        let (sender, receiver) = tokio::sync::mpsc::channel(FRAME_BUFFER);
        tokio::spawn(async move {
            let expired = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let mut expired = std::pin::pin!(expired);
            loop {
                // A client that went away ends the fan-out at once, even mid-wait.
                let next = tokio::select! {
                    biased;
                    () = sender.closed() => return,
                    () = &mut expired => {
                        let _ = sender
                            .send(Err(Status::deadline_exceeded(
                                "deadline of the series request exceeded",
                            )))
                            .await;
                        return;
                    }
                    next = merged.recv() => next,
                };
                let Some(item) = next else { break };
                let frame = match item {
                    Ok(series) => Ok(thanos::SeriesResponse::from_series(merged_to_proto(series))),
                    Err(err) => Err(err.to_grpc_status()),
                };
                let failed = frame.is_err();
                if sender.send(frame).await.is_err() || failed {
                    return;
                }
            }
            // Warnings of failed stores are complete once the merged stream has ended.
            for warning in warnings.take() {
                if sender
                    .send(Ok(thanos::SeriesResponse::from_warning(warning)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn label_names(
        &self,
        request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        let deadline = request_deadline(&request);
        let request = request.into_inner();
        let matchers =
            matchers_from_proto(&request.matchers).map_err(|err| err.to_grpc_status())?;
        let Some(matchers) = self.narrow(matchers) else {
            return Ok(Response::new(thanos::LabelNamesResponse::default()));
        };
        let query = LabelsQuery {
            min_time: request.start,
            max_time: request.end,
            matchers,
            replica_labels: request.without_replica_labels,
            partial_response: partial_response(
                request.partial_response_strategy,
                request.partial_response_disabled,
            ),
            deadline,
        };
        let warnings = Warnings::default();
        let names = self
            .proxy
            .label_names(query, &warnings)
            .await
            .map_err(|err| err.to_grpc_status())?;
        check_deadline(deadline)?;
        Ok(Response::new(thanos::LabelNamesResponse {
            names,
            warnings: warnings.take(),
            hints: None,
        }))
    }

    async fn label_values(
        &self,
        request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        let deadline = request_deadline(&request);
        let request = request.into_inner();
        let matchers =
            matchers_from_proto(&request.matchers).map_err(|err| err.to_grpc_status())?;
        let Some(matchers) = self.narrow(matchers) else {
            return Ok(Response::new(thanos::LabelValuesResponse::default()));
        };
        let query = LabelsQuery {
            min_time: request.start,
            max_time: request.end,
            matchers,
            replica_labels: request.without_replica_labels,
            partial_response: partial_response(
                request.partial_response_strategy,
                request.partial_response_disabled,
            ),
            deadline,
        };
        let warnings = Warnings::default();
        let values = self
            .proxy
            .label_values(&request.label, query, &warnings)
            .await
            .map_err(|err| err.to_grpc_status())?;
        check_deadline(deadline)?;
        Ok(Response::new(thanos::LabelValuesResponse {
            values,
            warnings: warnings.take(),
            hints: None,
        }))
    }
}

#[tonic::async_trait]
impl Info for ProxyStore {
    async fn info(
        &self,
        _request: Request<thanos::info::InfoRequest>,
    ) -> Result<Response<thanos::info::InfoResponse>, Status> {
        let (sets, min_time, max_time) = self.advertised();
        Ok(Response::new(thanos::info::InfoResponse {
            label_sets: sets
                .iter()
                .map(|set| thanos::ZLabelSet {
                    labels: labels_to_proto(set),
                })
                .collect(),
            component_type: "query".to_owned(),
            store: Some(thanos::info::StoreInfo {
                min_time,
                max_time,
                supports_sharding: false,
                supports_without_replica_labels: true,
                tsdb_infos: Vec::new(),
                supports_projections: false,
            }),
            ..Default::default()
        }))
    }
}
