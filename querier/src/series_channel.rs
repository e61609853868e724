//! The channel a fan-out streams its series through, carrying them in batches.
//!
//! A fan-out makes series one at a time and its reader (the engine on its own thread, a merge,
//! the proxy StoreAPI) is often faster than the stores: with one series per message the reader
//! empties the channel, parks, and is woken again for the next series, a futex wake and two
//! context switches per series (measured: ~12% of the querier's CPU on a 10k-series select).
//! [`SeriesSender`] collects up to [`BATCH`] series and hands them over together; the producer
//! waits for its own input through [`SeriesSender::wait_for`], which flushes first, so a series never sits in a
//! half-full batch while the stores are slow. An error goes after the series before it.

use std::future::Future;

use futures::FutureExt;
use tokio::sync::mpsc;

use crate::error::Result;

/// Series per message.
pub const BATCH: usize = 32;

/// A channel holding up to `series` series (rounded up to whole batches).
pub fn channel<T>(series: usize) -> (SeriesSender<T>, SeriesReceiver<T>) {
    let (sender, receiver) = mpsc::channel(series.div_ceil(BATCH).max(1));
    (
        SeriesSender {
            inner: sender,
            batch: Vec::new(),
        },
        SeriesReceiver {
            inner: receiver,
            current: Vec::new().into_iter(),
        },
    )
}

/// The producing end. Dropping it with series still batched loses them: producers end with
/// [`SeriesSender::flush`] (or [`SeriesSender::send_err`]).
#[derive(Debug)]
pub struct SeriesSender<T> {
    inner: mpsc::Sender<Result<Vec<T>>>,
    batch: Vec<T>,
}

impl<T> SeriesSender<T> {
    /// Adds `series`, sending the batch when it is full; false when the reader went away.
    pub async fn send(&mut self, series: T) -> bool {
        if self.batch.capacity() == 0 {
            self.batch.reserve_exact(BATCH);
        }
        self.batch.push(series);
        if self.batch.len() >= BATCH {
            return self.flush().await;
        }
        true
    }

    /// Sends the series batched so far; false when the reader went away.
    pub async fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return !self.inner.is_closed();
        }
        let batch = std::mem::take(&mut self.batch);
        self.inner.send(Ok(batch)).await.is_ok()
    }

    /// Sends the batched series, then `err` (which ends the reader's stream).
    pub async fn send_err(&mut self, err: crate::error::Error) -> bool {
        self.flush().await && self.inner.send(Err(err)).await.is_ok()
    }

    /// Resolves when the reader went away.
    pub async fn closed(&self) {
        self.inner.closed().await;
    }

    /// `input`'s output, or `None` as soon as the reader went away. If `input` is not ready
    /// at once, the batch is flushed first: the reader gets what there is before this
    /// producer waits.
    pub async fn wait_for<F: Future>(&mut self, input: F) -> Option<F::Output> {
        let mut input = std::pin::pin!(input);
        if let Some(ready) = input.as_mut().now_or_never() {
            return Some(ready);
        }
        if !self.flush().await {
            return None;
        }
        tokio::select! {
            biased;
            () = self.inner.closed() => None,
            output = input => Some(output),
        }
    }
}

/// The reading end: series one at a time, from the current batch while it lasts.
#[derive(Debug)]
pub struct SeriesReceiver<T> {
    inner: mpsc::Receiver<Result<Vec<T>>>,
    current: std::vec::IntoIter<T>,
}

impl<T> SeriesReceiver<T> {
    /// The next series, an error (the stream's last item), or `None` at the end.
    pub async fn recv(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(series) = self.current.next() {
                return Some(Ok(series));
            }
            match self.inner.recv().await? {
                Ok(batch) => self.current = batch.into_iter(),
                Err(err) => return Some(Err(err)),
            }
        }
    }

    /// [`SeriesReceiver::recv`] for a thread outside the runtime.
    pub fn blocking_recv(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(series) = self.current.next() {
                return Some(Ok(series));
            }
            match self.inner.blocking_recv()? {
                Ok(batch) => self.current = batch.into_iter(),
                Err(err) => return Some(Err(err)),
            }
        }
    }

    /// Whether [`SeriesReceiver::recv`] would return without waiting (the tests' probe).
    #[cfg(test)]
    pub fn is_ready(&self) -> bool {
        self.current.len() > 0 || !self.inner.is_empty() || self.inner.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[tokio::test]
    async fn series_arrive_in_order_with_the_error_last() {
        let (mut sender, mut receiver) = channel::<u32>(2 * BATCH);
        let producer = tokio::spawn(async move {
            for i in 0..(3 * BATCH as u32 + 5) {
                assert!(sender.send(i).await);
            }
            assert!(sender.send_err(Error::NoStores).await);
        });
        let mut seen = Vec::new();
        let mut failed = false;
        while let Some(item) = receiver.recv().await {
            match item {
                Ok(i) => seen.push(i),
                Err(_) => failed = true,
            }
        }
        producer.await.expect("producer");
        assert!(failed, "the error arrives after the series");
        assert_eq!(seen, (0..(3 * BATCH as u32 + 5)).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_waiting_producer_hands_over_its_partial_batch() {
        let (mut sender, mut receiver) = channel::<u32>(BATCH);
        assert!(sender.send(7).await);
        assert!(!receiver.is_ready(), "one series waits in the batch");
        let (wake, input) = tokio::sync::oneshot::channel::<()>();
        let producer = tokio::spawn(async move {
            assert!(sender.wait_for(input).await.is_some());
            assert!(sender.send(8).await);
            assert!(sender.flush().await);
        });
        // The producer waits on its input, so the partial batch is sent.
        assert_eq!(receiver.recv().await.map(|r| r.ok()), Some(Some(7)));
        wake.send(()).expect("wake");
        assert_eq!(receiver.recv().await.map(|r| r.ok()), Some(Some(8)));
        producer.await.expect("producer");
        assert!(receiver.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_ready_input_does_not_flush() {
        let (mut sender, receiver) = channel::<u32>(BATCH);
        assert!(sender.send(1).await);
        assert_eq!(sender.wait_for(async { 5 }).await, Some(5));
        assert!(!receiver.is_ready(), "nothing was sent");
        drop(receiver);
        assert!(!sender.flush().await, "the reader went away");
    }
}
