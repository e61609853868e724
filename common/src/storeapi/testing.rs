//! A small in-memory StoreAPI server for tests of StoreAPI clients (the querier's proxy,
//! `strata-tools store series`): it serves fixed series through the real tonic service, with
//! matcher filtering, time-range selection by chunk overlap, optional splitting of a series
//! over several frames and batching, like a real store. Not for production use.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use strata_proto::thanos;
use strata_proto::thanos::store_server::{Store, StoreServer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::error::ClassifiedError;
use crate::labels::{labels_from_proto, matchers_from_proto};

/// Fixed series served over the StoreAPI.
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    series: Arc<Vec<thanos::Series>>,
    /// At most this many chunks per frame; a longer series is split over frames (0 = no limit).
    max_chunks_per_frame: usize,
    /// Warnings sent before the series.
    warnings: Arc<Vec<String>>,
}

impl InMemoryStore {
    /// A store serving `series` (sorted by labels here, as the StoreAPI requires).
    pub fn new(mut series: Vec<thanos::Series>) -> Self {
        series.sort_by_cached_key(|series| labels_from_proto(series.labels.clone()));
        Self {
            series: Arc::new(series),
            max_chunks_per_frame: 0,
            warnings: Arc::default(),
        }
    }

    /// Split series with more than `chunks` chunks over several consecutive frames.
    pub fn with_max_chunks_per_frame(mut self, chunks: usize) -> Self {
        self.max_chunks_per_frame = chunks;
        self
    }

    /// Send these warning frames first.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = Arc::new(warnings);
        self
    }

    /// The tonic server for this store, without message size limits.
    pub fn into_server(self) -> StoreServer<Self> {
        StoreServer::new(self)
            .max_decoding_message_size(crate::grpc_server::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(crate::grpc_server::MAX_MESSAGE_SIZE)
    }

    /// Serves this store on a free 127.0.0.1 port until `shutdown` is cancelled; returns the
    /// address.
    pub async fn serve_on_loopback(
        self,
        shutdown: CancellationToken,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tonic::transport::Server::builder()
            .add_service(self.into_server())
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move {
                    shutdown.cancelled().await;
                },
            );
        tokio::spawn(server);
        Ok(address)
    }

    fn select(
        &self,
        request: &thanos::SeriesRequest,
    ) -> Result<Vec<thanos::SeriesResponse>, Status> {
        let matchers =
            matchers_from_proto(&request.matchers).map_err(|err| err.to_grpc_status())?;
        let mut frames: Vec<thanos::SeriesResponse> = self
            .warnings
            .iter()
            .map(|warning| thanos::SeriesResponse::from_warning(warning.clone()))
            .collect();
        let mut selected = Vec::new();
        for series in self.series.iter() {
            let labels = labels_from_proto(series.labels.clone());
            let matches = matchers
                .iter()
                .all(|matcher| matcher.matches(labels.get(&matcher.name).unwrap_or("")));
            if !matches {
                continue;
            }
            let chunks: Vec<thanos::AggrChunk> = if request.skip_chunks {
                Vec::new()
            } else {
                let overlapping = series.chunks.iter().filter(|chunk| {
                    chunk.max_time >= request.min_time && chunk.min_time <= request.max_time
                });
                let chunks: Vec<_> = overlapping.cloned().collect();
                if chunks.is_empty() {
                    continue;
                }
                chunks
            };
            selected.push(thanos::Series {
                labels: series.labels.clone(),
                chunks,
            });
        }
        let batch_size = usize::try_from(request.response_batch_size).unwrap_or(0);
        if batch_size > 1 {
            for batch in selected.chunks(batch_size) {
                frames.push(thanos::SeriesResponse::from_batch(batch.to_vec()));
            }
            return Ok(frames);
        }
        for series in selected {
            if self.max_chunks_per_frame == 0 || series.chunks.len() <= self.max_chunks_per_frame {
                frames.push(thanos::SeriesResponse::from_series(series));
                continue;
            }
            for part in series.chunks.chunks(self.max_chunks_per_frame) {
                frames.push(thanos::SeriesResponse::from_series(thanos::Series {
                    labels: series.labels.clone(),
                    chunks: part.to_vec(),
                }));
            }
        }
        Ok(frames)
    }
}

type FrameStream =
    Pin<Box<dyn Stream<Item = Result<thanos::SeriesResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Store for InMemoryStore {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        Ok(Response::new(thanos::InfoResponse {
            min_time: i64::MIN,
            max_time: i64::MAX,
            store_type: thanos::StoreType::Debug as i32,
            ..Default::default()
        }))
    }

    type SeriesStream = FrameStream;

    async fn series(
        &self,
        request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let frames = self.select(request.get_ref())?;
        Ok(Response::new(Box::pin(futures::stream::iter(
            frames.into_iter().map(Ok),
        ))))
    }

    async fn label_names(
        &self,
        _request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        let mut names: Vec<String> = self
            .series
            .iter()
            .flat_map(|series| series.labels.iter().map(|label| label.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(Response::new(thanos::LabelNamesResponse {
            names,
            ..Default::default()
        }))
    }

    async fn label_values(
        &self,
        request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        let name = &request.get_ref().label;
        let mut values: Vec<String> = self
            .series
            .iter()
            .flat_map(|series| {
                series
                    .labels
                    .iter()
                    .filter(|label| &label.name == name)
                    .map(|label| label.value.clone())
            })
            .collect();
        values.sort();
        values.dedup();
        Ok(Response::new(thanos::LabelValuesResponse {
            values,
            ..Default::default()
        }))
    }
}
