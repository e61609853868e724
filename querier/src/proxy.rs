//! The fan-out: one Series request sent to every store that may hold matching data, the
//! sorted answers merged into one sorted stream (reference/thanos.md 1.4 and 4.3):
//!
//! - each store is read by its own task, concurrently, every frame within
//!   `--store.response-timeout` (and within the query's deadline), into a small bounded
//!   channel, so a slow store costs memory for a few series only and a hanging one is cut off;
//! - replica labels are stripped (stores that do not advertise `without_replica_labels` are
//!   buffered and re-sorted here, as Thanos does);
//! - a k-way merge joins identical label sets across (and within) stores and drops chunks that
//!   several stores sent (same range and hash);
//! - a failing store becomes a warning naming it (partial response) or fails the query.
//!
//! Label names and values are fanned out the same way ([`Proxy::label_names`],
//! [`Proxy::label_values`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strata_common::error::{ClassifiedError, ErrorCode};
use strata_common::labels::{labels_from_proto, labels_to_proto, matchers_to_proto};
use strata_common::storeapi::SeriesItem;
use strata_common::storeapi::external::sort_by_labels;
use strata_proto::thanos;
use strata_tsdb::labels::{Label, Labels, Matcher};

use crate::dedup::dedup_chunks;
use crate::endpoints::{Endpoint, EndpointInfo, EndpointSet, SelectedStore};
use crate::error::{Error, Result};
use crate::metrics::ClientCall;
use crate::series_channel::{self, SeriesReceiver, SeriesSender};

/// Series buffered per store between its reader task and the merge (one batch).
const PER_STORE_BUFFER: usize = series_channel::BATCH;
/// Merged series buffered between the merge and the consumer (the PromQL engine).
const MERGED_BUFFER: usize = 64;
/// Series per frame asked of the stores (`response_batch_size`), Thanos's querier's value.
const RESPONSE_BATCH_SIZE: i64 = 64;

/// Warnings collected during one query, shared by all its selects.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    pub fn push(&self, warning: String) {
        let mut warnings = self.0.lock();
        if !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// One Series fan-out.
#[derive(Debug, Clone, Default)]
pub struct SeriesQuery {
    pub min_time: i64,
    pub max_time: i64,
    pub matchers: Vec<Matcher>,
    /// Replica labels to strip (empty when deduplication is off).
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    pub skip_chunks: bool,
    pub max_resolution_window: i64,
    pub aggregates: Vec<thanos::Aggr>,
    /// Query hints for the stores (step, function, range, grouping).
    pub query_hints: Option<thanos::QueryHints>,
    /// The query must be done by then; store reads are cut off at this instant.
    pub deadline: Option<Instant>,
}

/// One merged series.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedSeries {
    pub labels: Labels,
    pub chunks: Vec<thanos::AggrChunk>,
}

/// The fan-out over an endpoint set.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub endpoints: Arc<EndpointSet>,
    /// `--store.response-timeout` (zero: none).
    pub response_timeout: Duration,
}

/// How one store's failure is reported: a warning naming the store, or an error.
fn store_failure(address: &str, code: ErrorCode, message: String) -> Error {
    Error::Store {
        store: address.to_owned(),
        code,
        message,
    }
}

/// The failure of a selected store that is down (its last Info failed).
fn unhealthy_store(address: &str, error: &str) -> Error {
    store_failure(
        address,
        ErrorCode::Unavailable,
        format!("store endpoint is unhealthy: {error}"),
    )
}

/// Removes the replica labels from a series' labels.
fn strip_labels(labels: Labels, replica_labels: &[String]) -> Labels {
    if replica_labels.is_empty() {
        return labels;
    }
    let kept: Vec<Label> = labels
        .into_vec()
        .into_iter()
        .filter(|label| !replica_labels.contains(&label.name))
        .collect();
    Labels::from_sorted(kept)
}

impl Proxy {
    pub fn new(endpoints: Arc<EndpointSet>, response_timeout: Duration) -> Self {
        Self {
            endpoints,
            response_timeout,
        }
    }

    /// How long to wait for the next frame of a store.
    fn frame_timeout(&self, deadline: Option<Instant>) -> Option<Duration> {
        let per_frame = (!self.response_timeout.is_zero()).then_some(self.response_timeout);
        let remaining = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        match (per_frame, remaining) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn selected_stores(
        &self,
        min_time: i64,
        max_time: i64,
        matchers: &[Matcher],
        partial_response: bool,
    ) -> Result<Vec<SelectedStore>> {
        let stores = self.endpoints.stores_for(min_time, max_time, matchers);
        if stores.is_empty() && !partial_response && self.endpoints.usable().is_empty() {
            return Err(Error::NoStores);
        }
        Ok(stores)
    }

    /// Starts the fan-out and returns the merged stream. Failures of single stores arrive as
    /// warnings in `warnings` (partial response) or as an `Err` item ending the stream.
    pub fn series(
        &self,
        query: SeriesQuery,
        warnings: Warnings,
    ) -> Result<SeriesReceiver<MergedSeries>> {
        let fan_out = self.fan_out(query, warnings)?;
        let (sender, receiver) = series_channel::channel(MERGED_BUFFER);
        tokio::spawn(fan_out.run(sender));
        Ok(receiver)
    }

    /// The fan-out of `query` over the stores selected for it, to be run into a channel
    /// ([`FanOut::run`]).
    pub fn fan_out(&self, query: SeriesQuery, warnings: Warnings) -> Result<FanOut> {
        let stores = self.selected_stores(
            query.min_time,
            query.max_time,
            &query.matchers,
            query.partial_response,
        )?;
        Ok(FanOut {
            proxy: self.clone(),
            stores,
            query: Arc::new(query),
            warnings,
        })
    }

    /// Reads one store into `emitter`; failures become a warning or an error item.
    async fn read_store<T>(
        &self,
        store: SelectedStore,
        query: Arc<SeriesQuery>,
        mut emitter: Emitter<T>,
        warnings: Warnings,
    ) {
        let address = store.endpoint.address().to_owned();
        let result = match &store.unhealthy {
            Some(error) => Err(unhealthy_store(&address, error)),
            None => {
                let call = self.endpoints.metrics().grpc_client.start(
                    "thanos.Store",
                    "Series",
                    "server_stream",
                );
                let result = self
                    .read_store_inner(
                        &store.endpoint,
                        &store.info,
                        &query,
                        &mut emitter,
                        &warnings,
                        &call,
                    )
                    .await;
                call.finish(match &result {
                    Ok(()) => tonic::Code::Ok,
                    Err(err) => err.error_code().grpc_code(),
                });
                result
            }
        };
        // What was read before a failure goes on, as it would have through the merge.
        emitter.finish().await;
        if let Err(err) = result {
            if query.partial_response {
                tracing::debug!(store = %address, error = %err, "store failed; partial response");
                warnings.push(err.to_string());
            } else {
                let _ = emitter.sender.send_err(err).await;
            }
        }
        let _ = emitter.sender.flush().await;
    }

    async fn read_store_inner<T>(
        &self,
        endpoint: &Endpoint,
        info: &EndpointInfo,
        query: &SeriesQuery,
        emitter: &mut Emitter<T>,
        warnings: &Warnings,
        call: &ClientCall,
    ) -> Result<()> {
        let address = endpoint.address();
        let request = thanos::SeriesRequest {
            min_time: query.min_time,
            max_time: query.max_time,
            matchers: matchers_to_proto(&query.matchers),
            max_resolution_window: query.max_resolution_window,
            aggregates: query.aggregates.iter().map(|aggr| *aggr as i32).collect(),
            partial_response_strategy: if query.partial_response {
                thanos::PartialResponseStrategy::Warn as i32
            } else {
                thanos::PartialResponseStrategy::Abort as i32
            },
            skip_chunks: query.skip_chunks,
            query_hints: query.query_hints.clone(),
            without_replica_labels: query.replica_labels.clone(),
            // As Thanos's querier: stores that know the field send `SeriesBatch` frames (fewer
            // messages to frame, send and decode); others ignore it and send one per series.
            response_batch_size: RESPONSE_BATCH_SIZE,
            ..Default::default()
        };
        let timeout = self.frame_timeout(query.deadline);
        let with_timeout = |what: &'static str| {
            let address = address.to_owned();
            move |_| match timeout {
                Some(limit) => Error::StoreTimeout {
                    store: address.clone(),
                    timeout: limit,
                },
                None => store_failure(&address, ErrorCode::Timeout, what.to_owned()),
            }
        };
        let mut request = tonic::Request::new(request);
        if let Some(deadline) = query.deadline {
            // The store learns the caller's deadline too, so it can stop its own work.
            request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        let mut client = endpoint.client();
        let series_call = client.series(request);
        let mut stream = match timeout {
            Some(limit) => tokio::time::timeout(limit, series_call)
                .await
                .map_err(with_timeout("series call"))?,
            None => series_call.await,
        }
        .map_err(|err| store_failure(address, err.error_code(), store_error_text(&err)))?;
        // Stores that cannot strip replica labels themselves are buffered and re-sorted.
        let must_resort = !query.replica_labels.is_empty() && !info.supports_without_replica_labels;
        let mut buffered = Vec::new();
        loop {
            let next = async {
                match timeout {
                    Some(limit) => tokio::time::timeout(limit, stream.next_item())
                        .await
                        .map_err(with_timeout("series frame"))?,
                    None => stream.next_item().await,
                }
                .map_err(|err| store_failure(address, err.error_code(), store_error_text(&err)))
            };
            // Stop waiting for a slow store as soon as nobody wants the answer any more; what
            // is batched goes to the reader before this waits for the store.
            let Some(item) = emitter.sender.wait_for(next).await else {
                return Ok(());
            };
            let item = item?;
            let Some(item) = item else { break };
            call.received();
            match item {
                SeriesItem::Series(series) => {
                    let labels =
                        strip_labels(labels_from_proto(series.labels), &query.replica_labels);
                    let merged = MergedSeries {
                        labels,
                        chunks: series.chunks,
                    };
                    if must_resort {
                        buffered.push(merged);
                    } else if !emitter.push(merged).await {
                        // The consumer is gone (query finished or failed): stop reading.
                        return Ok(());
                    }
                }
                SeriesItem::Warning(warning) => {
                    if !query.partial_response {
                        return Err(store_failure(address, ErrorCode::Execution, warning));
                    }
                    warnings.push(format!("{address}: {warning}"));
                }
                SeriesItem::Hints(_) => {}
            }
        }
        sort_by_labels(&mut buffered, |series| &series.labels);
        for series in buffered {
            if !emitter.push(series).await {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Label names over all matching stores, sorted and unique.
    pub async fn label_names(
        &self,
        request: LabelsQuery,
        warnings: &Warnings,
    ) -> Result<Vec<String>> {
        let responses = self
            .fan_out_labels(
                "LabelNames",
                &request,
                warnings,
                |mut client, request| async move {
                    let response = client
                        .label_names(thanos::LabelNamesRequest {
                            partial_response_strategy: request.strategy(),
                            start: request.min_time,
                            end: request.max_time,
                            matchers: matchers_to_proto(&request.matchers),
                            without_replica_labels: request.replica_labels.clone(),
                            ..Default::default()
                        })
                        .await?;
                    Ok((response.names, response.warnings))
                },
            )
            .await?;
        Ok(responses
            .into_iter()
            .filter(|name| !request.replica_labels.contains(name))
            .collect())
    }

    /// Values of one label over all matching stores, sorted and unique.
    pub async fn label_values(
        &self,
        name: &str,
        request: LabelsQuery,
        warnings: &Warnings,
    ) -> Result<Vec<String>> {
        if request.replica_labels.iter().any(|replica| replica == name) {
            return Ok(Vec::new());
        }
        let label = name.to_owned();
        self.fan_out_labels(
            "LabelValues",
            &request,
            warnings,
            move |mut client, request| {
                let label = label.clone();
                async move {
                    let response = client
                        .label_values(thanos::LabelValuesRequest {
                            label,
                            partial_response_strategy: request.strategy(),
                            start: request.min_time,
                            end: request.max_time,
                            matchers: matchers_to_proto(&request.matchers),
                            without_replica_labels: request.replica_labels.clone(),
                            ..Default::default()
                        })
                        .await?;
                    Ok((response.values, response.warnings))
                }
            },
        )
        .await
    }

    async fn fan_out_labels<F, Fut>(
        &self,
        method: &'static str,
        request: &LabelsQuery,
        warnings: &Warnings,
        call: F,
    ) -> Result<Vec<String>>
    where
        F: Fn(strata_common::storeapi::StoreApiClient, Arc<LabelsQuery>) -> Fut,
        Fut: std::future::Future<Output = strata_common::error::Result<(Vec<String>, Vec<String>)>>,
    {
        let stores = self.selected_stores(
            request.min_time,
            request.max_time,
            &request.matchers,
            request.partial_response,
        )?;
        let shared = Arc::new(request.clone());
        let timeout = self.frame_timeout(request.deadline);
        let calls = stores.iter().map(|store| {
            let future = call(store.endpoint.client(), Arc::clone(&shared));
            let address = store.endpoint.address().to_owned();
            let unhealthy = store.unhealthy.clone();
            let metrics = self.endpoints.metrics().grpc_client.clone();
            async move {
                if let Some(error) = unhealthy {
                    return (address.clone(), Err(unhealthy_store(&address, &error)));
                }
                let call = metrics.start("thanos.Store", method, "unary");
                let result = match timeout {
                    Some(limit) => match tokio::time::timeout(limit, future).await {
                        Ok(result) => result.map_err(|err| {
                            store_failure(&address, err.error_code(), store_error_text(&err))
                        }),
                        Err(_) => Err(Error::StoreTimeout {
                            store: address.clone(),
                            timeout: limit,
                        }),
                    },
                    None => future.await.map_err(|err| {
                        store_failure(&address, err.error_code(), store_error_text(&err))
                    }),
                };
                call.finish(match &result {
                    Ok(_) => tonic::Code::Ok,
                    Err(err) => err.error_code().grpc_code(),
                });
                (address, result)
            }
        });
        let mut all = Vec::new();
        for (address, result) in futures::future::join_all(calls).await {
            match result {
                Ok((values, store_warnings)) => {
                    all.extend(values);
                    for warning in store_warnings {
                        warnings.push(format!("{address}: {warning}"));
                    }
                }
                Err(err) if request.partial_response => warnings.push(err.to_string()),
                Err(err) => return Err(err),
            }
        }
        all.sort();
        all.dedup();
        Ok(all)
    }
}

/// The gRPC status text of a store error, the way Go prints it.
fn store_error_text(err: &strata_common::error::Error) -> String {
    match err {
        strata_common::error::Error::Call { source, .. } => {
            format!(
                "rpc error: code = {:?} desc = {}",
                source.code(),
                source.message()
            )
        }
        other => strata_common::error::error_chain(other),
    }
}

/// A LabelNames or LabelValues fan-out.
#[derive(Debug, Clone, Default)]
pub struct LabelsQuery {
    pub min_time: i64,
    pub max_time: i64,
    pub matchers: Vec<Matcher>,
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    pub deadline: Option<Instant>,
}

impl LabelsQuery {
    fn strategy(&self) -> i32 {
        if self.partial_response {
            thanos::PartialResponseStrategy::Warn as i32
        } else {
            thanos::PartialResponseStrategy::Abort as i32
        }
    }
}

/// The head of one input of the merge.
struct Head {
    series: MergedSeries,
    input: usize,
}

/// K-way merge of sorted inputs: series with equal labels (from any input, or consecutive in
/// one input) become one, their chunks de-duplicated. An error item from any input ends the
/// merged stream with that error.
/// The fan-out of one Series query over its selected stores ([`Proxy::fan_out`]).
pub struct FanOut {
    proxy: Proxy,
    stores: Vec<SelectedStore>,
    query: Arc<SeriesQuery>,
    warnings: Warnings,
}

impl FanOut {
    /// Reads the stores into `output` in label order; returns when everything is sent or the
    /// reader went away.
    pub async fn run(self, output: SeriesSender<MergedSeries>) {
        self.run_into(output, Box::new(|series| series)).await;
    }

    /// [`FanOut::run`], each merged series passed through `convert` before it is sent (in
    /// this task, off the reader's thread). A single store is read in this task straight into
    /// `output` (joining equal label sets as the merge would); several are read each by its
    /// own task into the merge run here.
    pub async fn run_into<T>(self, output: SeriesSender<T>, convert: Convert<T>) {
        let FanOut {
            proxy,
            mut stores,
            query,
            warnings,
        } = self;
        if stores.len() == 1 {
            if let Some(store) = stores.pop() {
                let emitter = Emitter::new(output, true, convert);
                proxy.read_store(store, query, emitter, warnings).await;
            }
            return;
        }
        let mut inputs = Vec::with_capacity(stores.len());
        for store in stores {
            let (sender, receiver) = series_channel::channel(PER_STORE_BUFFER);
            inputs.push(receiver);
            let proxy = proxy.clone();
            let query = Arc::clone(&query);
            let warnings = warnings.clone();
            tokio::spawn(async move {
                let emitter = Emitter::new(sender, false, Box::new(|series| series));
                proxy.read_store(store, query, emitter, warnings).await;
            });
        }
        merge(inputs, output, convert).await;
    }
}

/// What a fan-out makes of each merged series before sending it on.
pub type Convert<T> = Box<dyn Fn(MergedSeries) -> T + Send + Sync>;

/// Where one store's series go: on to the merge as they come, or, for a store read without a
/// merge behind it, joined with the series after it when their labels are equal and their
/// chunks deduplicated, as the merge does.
struct Emitter<T> {
    sender: SeriesSender<T>,
    join: bool,
    pending: Option<MergedSeries>,
    convert: Convert<T>,
}

impl<T> Emitter<T> {
    fn new(sender: SeriesSender<T>, join: bool, convert: Convert<T>) -> Self {
        Emitter {
            sender,
            join,
            pending: None,
            convert,
        }
    }

    /// Passes `series` on; false when the reader went away.
    async fn push(&mut self, series: MergedSeries) -> bool {
        if !self.join {
            let series = (self.convert)(series);
            return self.sender.send(series).await;
        }
        if let Some(pending) = &mut self.pending
            && pending.labels == series.labels
        {
            pending.chunks.extend(series.chunks);
            return true;
        }
        match self.pending.replace(series) {
            Some(previous) => self.send_joined(previous).await,
            None => true,
        }
    }

    /// Passes on the series held for joining, if any.
    async fn finish(&mut self) -> bool {
        match self.pending.take() {
            Some(pending) => self.send_joined(pending).await,
            None => true,
        }
    }

    async fn send_joined(&mut self, mut series: MergedSeries) -> bool {
        dedup_chunks(&mut series.chunks);
        let series = (self.convert)(series);
        self.sender.send(series).await
    }
}

/// The merge's output is flushed whenever an input it needs has nothing ready, so the reader
/// never waits on a half-full batch while a store is slow.
async fn merge<T>(
    mut inputs: Vec<SeriesReceiver<MergedSeries>>,
    mut output: SeriesSender<T>,
    convert: Convert<T>,
) {
    let mut heads: Vec<Head> = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter_mut().enumerate() {
        let Some(next) = output.wait_for(input.recv()).await else {
            return;
        };
        match next {
            Some(Ok(series)) => heads.push(Head {
                series,
                input: index,
            }),
            Some(Err(err)) => {
                let _ = output.send_err(err).await;
                return;
            }
            None => {}
        }
    }
    // The number of stores is small (tens), so a linear scan for the minimum is as fast as a
    // heap and keeps the code obvious.
    loop {
        let Some(min_labels) = heads.iter().map(|head| &head.series.labels).min().cloned() else {
            let _ = output.flush().await;
            return;
        };
        let mut chunks = Vec::new();
        let mut index = 0;
        while index < heads.len() {
            if heads[index].series.labels != min_labels {
                index += 1;
                continue;
            }
            // Take this head and every following series of the same input with equal labels.
            let input = heads[index].input;
            chunks.append(&mut heads[index].series.chunks);
            let mut replaced = false;
            loop {
                let Some(next) = output.wait_for(inputs[input].recv()).await else {
                    return;
                };
                let Some(next) = next else { break };
                match next {
                    Ok(series) if series.labels == min_labels => {
                        chunks.extend(series.chunks);
                    }
                    Ok(series) => {
                        heads[index].series = series;
                        replaced = true;
                        break;
                    }
                    Err(err) => {
                        let _ = output.send_err(err).await;
                        return;
                    }
                }
            }
            if replaced {
                index += 1;
            } else {
                heads.swap_remove(index);
            }
        }
        dedup_chunks(&mut chunks);
        let merged = MergedSeries {
            labels: min_labels,
            chunks,
        };
        if !output.send(convert(merged)).await {
            return;
        }
    }
}

/// A merged series for the wire (the proxy StoreAPI).
pub fn merged_to_proto(series: MergedSeries) -> thanos::Series {
    thanos::Series {
        labels: labels_to_proto(&series.labels),
        chunks: series.chunks,
    }
}

#[cfg(test)]
pub(crate) mod tests;
