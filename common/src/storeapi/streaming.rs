//! Serving a Series answer as it is produced, the same way in every StoreAPI server.
//!
//! [`spawn_series_stream`] runs the producer on its own task feeding a bounded channel that
//! tonic drains: memory holds some [`FRAME_BUFFER`] series (in whole frames,
//! [`frames_buffered`]) beyond what the producer is working on, and a slow client slows the
//! producer instead of growing a buffer. When the
//! client goes away (cancelled call, dropped connection, deadline) the producer future is
//! dropped at once, whatever it is waiting on, which closes its upstream requests; the
//! cancellation is counted in `strata_storeapi_series_cancelled_total` and logged. The same
//! happens when the call's gRPC deadline passes ([`spawn_series_stream_until`]).
//! [`FrameBatcher`] groups series into `SeriesBatch` frames when the request asks for it.

use std::future::Future;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use strata_proto::thanos;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::telemetry::MetricsRegistry;

/// Series buffered between a Series producer and its client.
pub const FRAME_BUFFER: usize = 16;

/// Frames buffered for a call asking `response_batch_size` series per frame: [`FRAME_BUFFER`]
/// series, at least two frames (so one is sent while the next is made).
pub fn frames_buffered(response_batch_size: i64) -> usize {
    let per_frame = usize::try_from(response_batch_size).unwrap_or(1).max(1);
    (FRAME_BUFFER / per_frame).max(2)
}

/// Where a Series producer sends its frames.
pub type SeriesSender = mpsc::Sender<Result<thanos::SeriesResponse, Status>>;

/// The stream tonic sends for a Series call.
pub type SeriesReceiver = ReceiverStream<Result<thanos::SeriesResponse, Status>>;

/// Metrics of streamed Series calls.
#[derive(Debug, Clone, Default)]
pub struct SeriesStreamMetrics {
    /// Series calls whose client went away before the answer was complete.
    pub cancelled: Counter,
}

impl SeriesStreamMetrics {
    pub fn register(metrics: &MetricsRegistry) -> Self {
        let this = Self::default();
        metrics.with_registry(|registry| this.register_in(registry));
        this
    }

    /// Registers these metrics into a registry being filled.
    pub fn register_in(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "strata_storeapi_series_cancelled",
            "Series calls whose client went away before the answer was complete; their work was stopped",
            self.cancelled.clone(),
        );
    }
}

/// Runs `produce` on its own task and returns the channel it feeds. `produce` sends frames
/// into the sender it is given; an error it returns becomes the stream's last item. If the
/// receiver is dropped first, `produce` is dropped without being polled again.
pub fn spawn_series_stream<F, Fut>(metrics: &SeriesStreamMetrics, produce: F) -> SeriesReceiver
where
    F: FnOnce(SeriesSender) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    spawn_series_stream_until(metrics, None, FRAME_BUFFER, produce)
}

/// [`spawn_series_stream`] holding `frames` frames ([`frames_buffered`]), bounded by the call's deadline (from its `grpc-timeout`,
/// [`crate::grpc_server::deadline::request_deadline`]): when it passes, `produce` is dropped,
/// which closes its upstream requests, and the stream ends with `DeadlineExceeded`. tonic
/// itself stops watching the deadline once the handler has returned the stream.
pub fn spawn_series_stream_until<F, Fut>(
    metrics: &SeriesStreamMetrics,
    deadline: Option<Instant>,
    frames: usize,
    produce: F,
) -> SeriesReceiver
where
    F: FnOnce(SeriesSender) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(frames.max(1));
    let watch = sender.clone();
    let errors = sender.clone();
    let work = produce(sender);
    let cancelled = metrics.cancelled.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let report_cancelled = || {
            cancelled.inc();
            tracing::info!(after = ?started.elapsed(), "series call cancelled by the client; stopped its work");
        };
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = watch.closed() => report_cancelled(),
            () = expired => {
                tracing::info!(after = ?started.elapsed(), "series call deadline exceeded; stopped its work");
                let _ = errors
                    .send(Err(Status::deadline_exceeded(
                        "deadline of the series request exceeded",
                    )))
                    .await;
            }
            result = work => {
                // A producer also stops by itself when a send fails because the client left.
                if watch.is_closed() {
                    report_cancelled();
                } else if let Err(status) = result {
                    let _ = errors.send(Err(status)).await;
                }
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// Groups series into frames: one series per frame, or `SeriesBatch` frames of
/// `response_batch_size` series when the request asks for more than one.
#[derive(Debug)]
pub struct FrameBatcher {
    batch_size: usize,
    pending: Vec<thanos::Series>,
}

impl FrameBatcher {
    pub fn new(response_batch_size: i64) -> Self {
        let batch_size = usize::try_from(response_batch_size)
            .unwrap_or(0)
            .clamp(1, 100_000);
        FrameBatcher {
            batch_size,
            pending: Vec::new(),
        }
    }

    /// Adds a series; returns a frame when one is complete.
    pub fn push(&mut self, series: thanos::Series) -> Option<thanos::SeriesResponse> {
        if self.batch_size == 1 {
            return Some(thanos::SeriesResponse::from_series(series));
        }
        self.pending.push(series);
        if self.pending.len() < self.batch_size {
            return None;
        }
        Some(thanos::SeriesResponse::from_batch(std::mem::take(
            &mut self.pending,
        )))
    }

    /// The last, partial batch.
    pub fn finish(&mut self) -> Option<thanos::SeriesResponse> {
        if self.pending.is_empty() {
            return None;
        }
        Some(thanos::SeriesResponse::from_batch(std::mem::take(
            &mut self.pending,
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;

    fn series(name: &str) -> thanos::Series {
        thanos::Series {
            labels: vec![thanos::Label {
                name: "__name__".to_owned(),
                value: name.to_owned(),
            }],
            chunks: Vec::new(),
        }
    }

    #[test]
    fn buffered_frames_hold_about_the_same_series_at_any_batch_size() {
        assert_eq!(frames_buffered(0), FRAME_BUFFER);
        assert_eq!(frames_buffered(1), FRAME_BUFFER);
        assert_eq!(frames_buffered(-3), FRAME_BUFFER);
        assert_eq!(frames_buffered(4), FRAME_BUFFER / 4);
        assert_eq!(frames_buffered(64), 2);
    }

    #[test]
    fn batcher_groups_series_as_asked() {
        let mut single = FrameBatcher::new(0);
        assert!(single.push(series("a")).is_some());
        assert!(single.finish().is_none());
        let mut batched = FrameBatcher::new(2);
        assert!(batched.push(series("a")).is_none());
        assert!(batched.push(series("b")).is_some());
        assert!(batched.push(series("c")).is_none());
        assert!(batched.finish().is_some());
        assert!(batched.finish().is_none());
    }

    #[tokio::test]
    async fn a_dropped_client_stops_the_producer_at_once() {
        let metrics = SeriesStreamMetrics::default();
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let mut stream = spawn_series_stream(&metrics, move |sender| async move {
            // Dropped with the producer: tells the test the work is gone.
            let _guard = stopped_tx;
            sender
                .send(Ok(thanos::SeriesResponse::from_series(series("first"))))
                .await
                .map_err(|_| Status::cancelled("gone"))?;
            // Upstream that never answers.
            std::future::pending::<()>().await;
            Ok(())
        });
        assert!(stream.next().await.is_some());
        drop(stream);
        tokio::time::timeout(Duration::from_secs(1), stopped_rx)
            .await
            .expect("producer dropped within a second")
            .expect_err("sender dropped, never sent");
        assert_eq!(metrics.cancelled.get(), 1);
    }

    #[tokio::test]
    async fn the_deadline_stops_the_producer_and_ends_the_stream() {
        let metrics = SeriesStreamMetrics::default();
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let deadline = Instant::now() + Duration::from_millis(200);
        let stream = spawn_series_stream_until(
            &metrics,
            Some(deadline),
            FRAME_BUFFER,
            move |sender| async move {
                let _guard = stopped_tx;
                let _ = sender
                    .send(Ok(thanos::SeriesResponse::from_series(series("first"))))
                    .await;
                std::future::pending::<()>().await;
                Ok(())
            },
        );
        let items: Vec<_> = tokio::time::timeout(Duration::from_secs(5), stream.collect())
            .await
            .expect("the stream ends at the deadline");
        assert_eq!(items.len(), 2, "{items:?}");
        let status = items[1].as_ref().expect_err("last item is the deadline");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        stopped_rx.await.expect_err("producer dropped");
        assert_eq!(metrics.cancelled.get(), 0);
    }

    #[tokio::test]
    async fn a_producer_error_ends_the_stream() {
        let metrics = SeriesStreamMetrics::default();
        let stream = spawn_series_stream(&metrics, |sender| async move {
            let _ = sender
                .send(Ok(thanos::SeriesResponse::from_series(series("a"))))
                .await;
            Err(Status::resource_exhausted("limit"))
        });
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 2);
        assert!(
            matches!(items.last(), Some(Err(status)) if status.code() == tonic::Code::ResourceExhausted)
        );
        assert_eq!(metrics.cancelled.get(), 0);
    }
}
