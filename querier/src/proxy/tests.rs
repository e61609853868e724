use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::Stream;
use strata_common::flags::GrpcClientFlags;
use strata_common::storeapi::testing::InMemoryStore;
use strata_common::telemetry::MetricsRegistry;
use strata_proto::thanos::store_server::{Store, StoreServer};
use strata_tsdb::labels::parse_selector;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::*;
use crate::dedup::tests::xor_chunk;
use crate::endpoints::discovery::{Discovery, Target};
use crate::metrics::QuerierMetrics;

/// A store whose Series fails or never answers.
#[derive(Clone)]
enum BrokenStore {
    Failing,
    Hanging,
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<thanos::SeriesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Store for BrokenStore {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        Ok(Response::new(thanos::InfoResponse {
            min_time: i64::MIN,
            max_time: i64::MAX,
            store_type: thanos::StoreType::Store as i32,
            ..Default::default()
        }))
    }

    type SeriesStream = FrameStream;

    async fn series(
        &self,
        _request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        match self {
            Self::Failing => Err(Status::unavailable("bucket is down")),
            Self::Hanging => Ok(Response::new(Box::pin(futures::stream::pending()))),
        }
    }

    async fn label_names(
        &self,
        _request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        Err(Status::unavailable("bucket is down"))
    }

    async fn label_values(
        &self,
        _request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        Err(Status::unavailable("bucket is down"))
    }
}

async fn serve<S: Store>(store: S, shutdown: &CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = shutdown.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(StoreServer::new(store))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move { shutdown.cancelled().await },
            ),
    );
    address
}

pub(crate) async fn proxy_for(addresses: &[SocketAddr], response_timeout: Duration) -> Proxy {
    let metrics = QuerierMetrics::new(&MetricsRegistry::new());
    let discovery = Discovery::new(
        addresses
            .iter()
            .map(|address| Target {
                address: address.to_string(),
                strict: false,
            })
            .collect(),
        Vec::new(),
        Duration::from_secs(300),
        Duration::from_secs(30),
        strata_common::dns::Resolver::system(),
        metrics.clone(),
    );
    let endpoints = Arc::new(EndpointSet::new(
        discovery,
        GrpcClientFlags::default(),
        Duration::from_secs(300),
        metrics,
    ));
    endpoints.refresh().await;
    Proxy::new(endpoints, response_timeout)
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> thanos::Series {
    thanos::Series {
        labels: labels
            .iter()
            .map(|(name, value)| thanos::Label::new(*name, *value))
            .collect(),
        chunks: vec![xor_chunk(samples)],
    }
}

fn query(selector: &str, replica_labels: &[&str], partial_response: bool) -> SeriesQuery {
    SeriesQuery {
        min_time: 0,
        max_time: 1_000_000,
        matchers: parse_selector(selector).expect("selector"),
        replica_labels: replica_labels
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
        partial_response,
        ..Default::default()
    }
}

async fn collect(proxy: &Proxy, query: SeriesQuery) -> (Result<Vec<MergedSeries>>, Vec<String>) {
    let warnings = Warnings::default();
    let mut receiver = match proxy.series(query, warnings.clone()) {
        Ok(receiver) => receiver,
        Err(err) => return (Err(err), warnings.take()),
    };
    let mut all = Vec::new();
    while let Some(item) = receiver.recv().await {
        match item {
            Ok(series) => all.push(series),
            Err(err) => return (Err(err), warnings.take()),
        }
    }
    (Ok(all), warnings.take())
}

#[tokio::test]
async fn merges_sorted_streams_and_drops_duplicate_chunks() {
    let shutdown = CancellationToken::new();
    let shared = series(
        &[("__name__", "up"), ("job", "b")],
        &[(0, 1.0), (15_000, 1.0)],
    );
    let a = InMemoryStore::new(vec![
        series(&[("__name__", "up"), ("job", "a")], &[(0, 1.0)]),
        shared.clone(),
        series(&[("__name__", "up"), ("job", "d")], &[(0, 4.0)]),
    ])
    .with_max_chunks_per_frame(1);
    let b = InMemoryStore::new(vec![
        shared,
        series(&[("__name__", "up"), ("job", "c")], &[(0, 3.0)]),
        series(&[("__name__", "other"), ("job", "c")], &[(0, 3.0)]),
    ]);
    let addresses = [serve(a, &shutdown).await, serve(b, &shutdown).await];
    let proxy = proxy_for(&addresses, Duration::ZERO).await;
    assert_eq!(
        proxy.endpoints.usable().len(),
        2,
        "legacy Info is understood"
    );
    let (result, warnings) = collect(&proxy, query("up", &[], true)).await;
    let merged = result.expect("series");
    assert!(warnings.is_empty(), "{warnings:?}");
    let jobs: Vec<&str> = merged
        .iter()
        .map(|series| series.labels.get("job").unwrap_or(""))
        .collect();
    assert_eq!(jobs, vec!["a", "b", "c", "d"]);
    let job_b = merged.get(1).expect("job b");
    assert_eq!(
        job_b.chunks.len(),
        1,
        "identical chunk from two stores kept once"
    );
    shutdown.cancel();
}

/// One store is read without a merge task: a series split over several frames still comes out
/// as one, and a chunk it sent twice comes out once.
#[tokio::test]
async fn a_single_store_is_joined_and_deduplicated_like_a_merge() {
    let shutdown = CancellationToken::new();
    let mut split = series(&[("__name__", "up"), ("job", "a")], &[(0, 1.0)]);
    split.chunks.push(xor_chunk(&[(15_000, 2.0)]));
    split.chunks.push(xor_chunk(&[(30_000, 3.0)]));
    let mut doubled = series(&[("__name__", "up"), ("job", "b")], &[(0, 4.0)]);
    doubled.chunks.push(doubled.chunks[0].clone());
    let store = InMemoryStore::new(vec![
        split,
        doubled,
        series(&[("__name__", "up"), ("job", "c")], &[(0, 5.0)]),
    ])
    .with_max_chunks_per_frame(1);
    let addresses = [serve(store, &shutdown).await];
    let proxy = proxy_for(&addresses, Duration::ZERO).await;
    let (result, warnings) = collect(&proxy, query("up", &[], true)).await;
    let merged = result.expect("series");
    assert!(warnings.is_empty(), "{warnings:?}");
    let shape: Vec<(&str, usize)> = merged
        .iter()
        .map(|series| (series.labels.get("job").unwrap_or(""), series.chunks.len()))
        .collect();
    assert_eq!(shape, vec![("a", 3), ("b", 1), ("c", 1)]);
    shutdown.cancel();
}

#[tokio::test]
async fn replica_labels_are_stripped_and_replicas_merged() {
    let shutdown = CancellationToken::new();
    let replica_a = InMemoryStore::new(vec![
        series(
            &[("__name__", "up"), ("replica", "a"), ("zone", "1")],
            &[(0, 1.0)],
        ),
        series(
            &[("__name__", "up"), ("replica", "a"), ("zone", "2")],
            &[(0, 2.0)],
        ),
    ]);
    let replica_b = InMemoryStore::new(vec![series(
        &[("__name__", "up"), ("replica", "b"), ("zone", "1")],
        &[(5_000, 1.0)],
    )]);
    let addresses = [
        serve(replica_a, &shutdown).await,
        serve(replica_b, &shutdown).await,
    ];
    let proxy = proxy_for(&addresses, Duration::ZERO).await;
    let (deduplicated, _) = collect(&proxy, query("up", &["replica"], true)).await;
    let deduplicated = deduplicated.expect("series");
    assert_eq!(deduplicated.len(), 2);
    let zone_one = deduplicated.first().expect("zone 1");
    assert_eq!(zone_one.labels.get("replica"), None);
    assert_eq!(zone_one.chunks.len(), 2, "both replicas' chunks");
    let (raw, _) = collect(&proxy, query("up", &[], true)).await;
    assert_eq!(raw.expect("series").len(), 3);
    shutdown.cancel();
}

#[tokio::test]
async fn failing_store_is_a_warning_or_an_error() {
    let shutdown = CancellationToken::new();
    let good = InMemoryStore::new(vec![series(&[("__name__", "up")], &[(0, 1.0)])]);
    let addresses = [
        serve(good, &shutdown).await,
        serve(BrokenStore::Failing, &shutdown).await,
    ];
    let failing = addresses[1].to_string();
    let proxy = proxy_for(&addresses, Duration::ZERO).await;
    let (result, warnings) = collect(&proxy, query("up", &[], true)).await;
    assert_eq!(result.expect("partial").len(), 1);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&failing), "{warnings:?}");
    assert!(warnings[0].contains("bucket is down"), "{warnings:?}");

    let (result, _) = collect(&proxy, query("up", &[], false)).await;
    let err = result.expect_err("no partial response");
    assert!(err.to_string().contains(&failing), "{err}");
    assert_eq!(err.error_code(), ErrorCode::Unavailable);

    let names = proxy
        .label_names(
            LabelsQuery {
                min_time: 0,
                max_time: 10,
                partial_response: true,
                ..Default::default()
            },
            &Warnings::default(),
        )
        .await
        .expect("names");
    assert_eq!(names, vec!["__name__".to_owned()]);
    shutdown.cancel();
}

#[tokio::test]
async fn hanging_store_is_cut_at_the_response_timeout() {
    let shutdown = CancellationToken::new();
    let good = InMemoryStore::new(vec![series(&[("__name__", "up")], &[(0, 1.0)])]);
    let addresses = [
        serve(good, &shutdown).await,
        serve(BrokenStore::Hanging, &shutdown).await,
    ];
    let proxy = proxy_for(&addresses, Duration::from_millis(300)).await;
    let started = Instant::now();
    let (result, warnings) = collect(&proxy, query("up", &[], true)).await;
    let elapsed = started.elapsed();
    assert_eq!(result.expect("partial").len(), 1);
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(250), "took {elapsed:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&addresses[1].to_string())),
        "{warnings:?}"
    );
    let (result, _) = collect(&proxy, query("up", &[], false)).await;
    assert_eq!(
        result.expect_err("timeout").error_code(),
        ErrorCode::Timeout
    );
    shutdown.cancel();
}

/// Sets its flag when dropped: the server dropped the Series stream (the client left).
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A store whose Series hangs forever and reports when its stream is dropped.
#[derive(Clone)]
struct ObservedHangingStore(Arc<std::sync::atomic::AtomicBool>);

#[tonic::async_trait]
impl Store for ObservedHangingStore {
    async fn info(
        &self,
        request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        BrokenStore::Hanging.info(request).await
    }

    type SeriesStream = FrameStream;

    async fn series(
        &self,
        _request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let flag = DropFlag(Arc::clone(&self.0));
        let stream = futures::stream::unfold(flag, |flag| async move {
            futures::future::pending::<()>().await;
            Some((Ok(thanos::SeriesResponse::from_warning("never")), flag))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn label_names(
        &self,
        request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        BrokenStore::Hanging.label_names(request).await
    }

    async fn label_values(
        &self,
        request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        BrokenStore::Hanging.label_values(request).await
    }
}

#[tokio::test]
async fn a_consumer_that_leaves_releases_a_hanging_store() {
    let shutdown = CancellationToken::new();
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let address = serve(ObservedHangingStore(Arc::clone(&dropped)), &shutdown).await;
    // No response timeout and no deadline: only the consumer leaving can end the call.
    let proxy = proxy_for(&[address], Duration::ZERO).await;
    let receiver = proxy
        .series(query("up", &[], true), Warnings::default())
        .expect("series");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
    drop(receiver);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dropped.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the store call was never cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
}

/// A store that holds each Series call until `target` calls are in flight at once (or 10 s
/// pass), then 100 ms more so that any call beyond the target would be seen too; it records the
/// most calls it saw at once and answers one series named as the selector asks.
#[derive(Clone)]
struct CountingStore {
    active: Arc<std::sync::atomic::AtomicUsize>,
    most: Arc<std::sync::atomic::AtomicUsize>,
    target: usize,
}

#[tonic::async_trait]
impl Store for CountingStore {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        BrokenStore::Failing.info(_request).await
    }

    type SeriesStream = FrameStream;

    async fn series(
        &self,
        request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        use std::sync::atomic::Ordering;
        let name = request
            .get_ref()
            .matchers
            .iter()
            .find(|m| m.name == "__name__")
            .map(|m| m.value.clone())
            .unwrap_or_default();
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let give_up = Instant::now() + Duration::from_secs(10);
        while self.active.load(Ordering::SeqCst) < self.target && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.active.fetch_sub(1, Ordering::SeqCst);
        let frame = thanos::SeriesResponse {
            result: Some(thanos::series_response::Result::Series(series(
                &[("__name__", name.as_str()), ("job", "j")],
                &[(0, 1.0), (10_000, 2.0)],
            ))),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(frame)]))))
    }

    async fn label_names(
        &self,
        _request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        Err(Status::unimplemented("not here"))
    }

    async fn label_values(
        &self,
        _request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

/// `--query.max-concurrent-select`: the query's selects are fetched ahead of the engine, at
/// most that many at once; 0 fetches each only when the engine reads it. The answer is the
/// same either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_select_bounds_the_fan_outs_run_ahead() {
    use crate::queryable::{ProxyQueryable, QueryOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    for (limit, expected_most) in [(4, 4), (2, 2), (1, 1), (0, 1)] {
        let shutdown = CancellationToken::new();
        let store = CountingStore {
            active: Arc::new(AtomicUsize::new(0)),
            most: Arc::new(AtomicUsize::new(0)),
            target: expected_most,
        };
        let most = Arc::clone(&store.most);
        let address = serve(store, &shutdown).await;
        let proxy = proxy_for(&[address], Duration::ZERO).await;
        let queryable = ProxyQueryable::new(
            proxy,
            tokio::runtime::Handle::current(),
            QueryOptions {
                max_concurrent_select: limit,
                ..Default::default()
            },
            Warnings::default(),
        );
        let answer = tokio::task::spawn_blocking(move || {
            let engine = strata_promql::Engine::default();
            engine
                .instant_query(&queryable, "a + b + c + d", 10_000)
                .map(|result| format!("{:?}", result.value))
                .map_err(|err| err.to_string())
        })
        .await
        .expect("engine thread");
        let answer = answer.expect("query");
        assert!(answer.contains("v: 8.0"), "limit {limit}: {answer}");
        assert_eq!(
            most.load(Ordering::SeqCst),
            expected_most,
            "most Series calls at once with --query.max-concurrent-select={limit}"
        );
        shutdown.cancel();
    }
}

/// The querier as a store: a Series whose caller set a short deadline ends with
/// DeadlineExceeded soon after it, although the store behind never answers and no
/// `--store.response-timeout` is set.
#[tokio::test]
async fn store_server_honours_the_callers_deadline() {
    let shutdown = CancellationToken::new();
    let hanging = serve(BrokenStore::Hanging, &shutdown).await;
    let proxy = proxy_for(&[hanging], Duration::ZERO).await;
    let (store, _info) = crate::store_server::ProxyStore::new(proxy).into_servers();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let stopping = shutdown.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(store)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move { stopping.cancelled().await },
            ),
    );
    let mut client =
        strata_proto::thanos::store_client::StoreClient::connect(format!("http://{address}"))
            .await
            .expect("connect");
    let mut request = Request::new(thanos::SeriesRequest {
        min_time: 0,
        max_time: 1000,
        matchers: vec![thanos::LabelMatcher {
            r#type: thanos::label_matcher::Type::Eq as i32,
            name: "__name__".into(),
            value: "up".into(),
        }],
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        let mut frames = client.series(request).await?.into_inner();
        loop {
            match frames.message().await? {
                Some(_) => continue,
                None => return Ok::<_, Status>(()),
            }
        }
    })
    .await
    .expect("the call must end within the deadline, not hang");
    let status = outcome.expect_err("a hanging store cannot complete the call");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    shutdown.cancel();
}

/// `--selector-label`: the querier as a store advertises its stores' label sets extended with
/// the selector labels, answers nothing to matchers that exclude them, and satisfies matchers
/// on them itself (the stores behind never see those).
#[tokio::test]
async fn selector_labels_extend_label_sets_and_narrow_requests() {
    use futures::StreamExt;
    use strata_proto::thanos::info::info_server::Info;
    let shutdown = CancellationToken::new();
    let store = InMemoryStore::new(vec![series(
        &[("__name__", "up"), ("job", "a")],
        &[(0, 1.0)],
    )]);
    let proxy = proxy_for(&[serve(store, &shutdown).await], Duration::ZERO).await;
    let store = crate::store_server::ProxyStore::new(proxy)
        .with_selector_labels(strata_tsdb::labels::Labels::from_pairs([("region", "eu")]));
    let info = Info::info(&store, Request::new(Default::default()))
        .await
        .expect("info")
        .into_inner();
    assert!(!info.label_sets.is_empty(), "{info:?}");
    for set in &info.label_sets {
        assert!(
            set.labels
                .iter()
                .any(|label| label.name == "region" && label.value == "eu"),
            "{info:?}"
        );
    }
    let request = |region: &str| {
        Request::new(thanos::SeriesRequest {
            min_time: 0,
            max_time: 10_000,
            matchers: vec![
                thanos::LabelMatcher {
                    r#type: thanos::label_matcher::Type::Eq as i32,
                    name: "__name__".into(),
                    value: "up".into(),
                },
                thanos::LabelMatcher {
                    r#type: thanos::label_matcher::Type::Eq as i32,
                    name: "region".into(),
                    value: region.into(),
                },
            ],
            ..Default::default()
        })
    };
    for (region, expected) in [("eu", 1), ("us", 0)] {
        let frames: Vec<_> = Store::series(&store, request(region))
            .await
            .expect("series")
            .into_inner()
            .collect()
            .await;
        let series = frames
            .iter()
            .filter(|frame| {
                matches!(
                    frame,
                    Ok(thanos::SeriesResponse {
                        result: Some(thanos::series_response::Result::Series(_))
                    })
                )
            })
            .count();
        assert_eq!(series, expected, "region={region}: {frames:?}");
    }
    shutdown.cancel();
}
