//! Hostile input: requests an attacker or an unlucky client sends, against the real binaries.
//! Every one must be answered (a result or a clear error), and every process must still answer
//! `/-/healthy` afterwards.
//!
//! - PromQL through the querier's HTTP API: 10,000 and 100,000 levels of parentheses, unary
//!   minus, binary chains, function calls and subqueries (10,000 levels are answered as
//!   Prometheus 2.42 answers them; past the limit a 400 `bad_data` names it), a 16 MiB query,
//!   and start/end/step at the int64 extremes.
//! - Malformed and oversized protobufs sent to every StoreAPI server (sidecar, store gateway,
//!   the querier's own StoreAPI): garbage bytes, truncated fields, groups nested 200,000 deep,
//!   and a 65 MiB request; each gets a gRPC error status.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::{Buf, BufMut};
use serde_json::Value;
use strata_tests::bins::{Service, StrataProcess};
use strata_tests::prom::DataSpec;
use strata_tests::sidecar::{http_get, start_backfilled_prometheus_async, start_sidecar};
use strata_tests::store_gateway::{filesystem_objstore_yaml, start};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

/// Passes request bytes through untouched, so malformed messages reach the server's decoder.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Protobuf bytes no StoreAPI request decodes from, with what each is.
fn malformed_messages() -> Vec<(&'static str, Vec<u8>)> {
    // Field 15, wire type 3 (start group), 200,000 times: nesting no decoder may follow.
    let deep_groups = std::iter::repeat_n(0x7bu8, 200_000).collect();
    // Field 100, length-delimited, 65 MiB: over the servers' request size limit.
    let mut oversized = vec![0xa2, 0x06];
    let size: u32 = 65 << 20;
    let mut length = size;
    while length >= 0x80 {
        oversized.push((length as u8 & 0x7f) | 0x80);
        length >>= 7;
    }
    oversized.push(length as u8);
    oversized.resize(oversized.len() + size as usize, 0);
    vec![
        ("garbage", vec![0xff; 64]),
        (
            "truncated length-delimited field",
            vec![0x1a, 0xff, 0xff, 0x03, 0x01],
        ),
        ("truncated varint", vec![0x08, 0xff, 0xff]),
        ("groups nested 200,000 deep", deep_groups),
        ("65 MiB request", oversized),
    ]
}

/// Sends `message` to `method` of the gRPC server at `address`; the error status it gets.
async fn send_raw(
    address: SocketAddr,
    method: &'static str,
    streaming: bool,
    message: Vec<u8>,
) -> anyhow::Result<tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))?
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("connect {address}"))?;
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    grpc.ready().await.context("grpc ready")?;
    let path = PathAndQuery::from_static(method);
    let request = tonic::Request::new(message);
    if streaming {
        match grpc.server_streaming(request, path, RawCodec).await {
            Err(status) => Ok(status),
            Ok(response) => match response.into_inner().message().await {
                Err(status) => Ok(status),
                Ok(frame) => bail!("{method}: answered with a frame: {frame:?}"),
            },
        }
    } else {
        match grpc.unary(request, path, RawCodec).await {
            Err(status) => Ok(status),
            Ok(response) => bail!("{method}: answered {:?}", response.into_inner()),
        }
    }
}

async fn post_query(
    client: &reqwest::Client,
    querier: &StrataProcess,
    path: &str,
    form: &[(&str, &str)],
) -> anyhow::Result<(u16, Value)> {
    let url = format!("{}{path}", querier.http_url());
    let response = client
        .post(&url)
        .form(form)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).with_context(|| {
        format!(
            "{path}: not JSON: {}",
            text.chars().take(200).collect::<String>()
        )
    })?;
    Ok((status, body))
}

async fn assert_healthy(process: &StrataProcess, after: &str) -> anyhow::Result<()> {
    let (status, body) = http_get(&format!("{}/-/healthy", process.http_url()))
        .await
        .with_context(|| format!("{:?} /-/healthy after {after}", process.service()))?;
    ensure!(
        status == 200,
        "{:?} not healthy after {after}: {status} {body}",
        process.service()
    );
    Ok(())
}

/// `depth` levels of `open` ... `close` around `leaf`.
fn nested(open: &str, leaf: &str, close: &str, depth: usize) -> String {
    format!("{}{leaf}{}", open.repeat(depth), close.repeat(depth))
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_is_refused_and_every_process_stays_up() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 10,
        duration_ms: 10 * 60 * 1000,
        ..DataSpec::default()
    };
    let prometheus = start_backfilled_prometheus_async(dir.path().join("prom"), spec).await?;
    let sidecar = start_sidecar(&prometheus.server.url(), &prometheus.data_dir, &[]).await?;
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket)?;
    let gateway = start(
        &filesystem_objstore_yaml(&bucket),
        &dir.path().join("store-data"),
        &[],
    )
    .await?;
    let endpoints: Vec<String> = [&sidecar, &gateway]
        .iter()
        .map(|process| {
            process
                .grpc_address
                .map(|address| format!("--endpoint={address}"))
                .context("grpc address")
        })
        .collect::<anyhow::Result<_>>()?;
    let endpoint_args: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    let mut querier = StrataProcess::start(Service::Querier, true, &endpoint_args).await?;
    querier.wait_ready(Duration::from_secs(60)).await?;
    let processes = [&sidecar, &gateway, &querier];
    let client = reqwest::Client::new();

    // PromQL: at 10,000 levels answered (as Prometheus 2.42 answers), past it refused.
    let shapes: [(&str, &str, &str, &str, &str); 5] = [
        ("parentheses", "(", "1", ")", "1"),
        ("unary minus", "-(", "1", ")", "1"),
        ("function calls", "abs(", "vector(-1)", ")", ""),
        ("subqueries", "last_over_time(", "vector(1)", "[1m:1m])", ""),
        ("binary chain", "1+", "1", "", "10001"),
    ];
    for (shape, open, leaf, close, want) in shapes {
        // Levels are tree nodes: `-(` is two (the sign and the parentheses), a subquery level
        // two (the call and the subquery) and its leaf call one more.
        let answered_depth = match shape {
            "subqueries" => 4_999,
            "function calls" => 9_999,
            "unary minus" => 5_000,
            _ => 10_000,
        };
        let query = nested(open, leaf, close, answered_depth);
        let (status, body) = post_query(&client, &querier, "/api/v1/query", &[("query", &query)])
            .await
            .with_context(|| format!("{shape} at depth {answered_depth}"))?;
        ensure!(
            status == 200,
            "{shape} at {answered_depth}: {status} {body}"
        );
        if !want.is_empty() {
            let got = &body["data"]["result"][1];
            ensure!(got == want, "{shape}: {got} != {want} in {body}");
        }
        for depth in [10_001, 100_000] {
            let query = nested(open, leaf, close, depth);
            for path in ["/api/v1/query", "/api/v1/query_range"] {
                let form = [
                    ("query", query.as_str()),
                    ("start", "0"),
                    ("end", "60"),
                    ("step", "15"),
                ];
                let (status, body) = post_query(&client, &querier, path, &form).await?;
                ensure!(
                    status == 400 && body["errorType"] == "bad_data",
                    "{shape} at {depth} on {path}: {status} {body}"
                );
                let error = body["error"].as_str().unwrap_or_default();
                ensure!(
                    error.contains("nested too deeply") && error.contains("10000 levels"),
                    "{shape} at {depth}: {error}"
                );
            }
        }
        assert_healthy(&querier, shape).await?;
    }
    // The reported crash: 50,000 terms.
    let chain = vec!["1"; 50_000].join("+");
    let (status, body) =
        post_query(&client, &querier, "/api/v1/query", &[("query", &chain)]).await?;
    ensure!(
        status == 400 && body["errorType"] == "bad_data",
        "{status} {body}"
    );
    // 100,000 unary minus signs before a number fold into it: answered, as by Prometheus.
    let signs = format!("{}1", "-".repeat(100_000));
    let (status, body) =
        post_query(&client, &querier, "/api/v1/query", &[("query", &signs)]).await?;
    ensure!(
        status == 200 && body["data"]["result"][1] == "1",
        "{status} {body}"
    );

    // A 16 MiB query: refused as bad input, not buffered into a crash.
    let huge = format!("1{}", " ".repeat(16 << 20));
    let (status, body) =
        post_query(&client, &querier, "/api/v1/query", &[("query", &huge)]).await?;
    ensure!(
        status == 400 && body["errorType"] == "bad_data",
        "16 MiB: {status} {body}"
    );

    // Times and steps at the int64 extremes: answered or refused as bad data, never a crash.
    let (min, max) = (i64::MIN.to_string(), i64::MAX.to_string());
    let extremes: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/api/v1/query", vec![("query", "1"), ("time", &min)]),
        ("/api/v1/query", vec![("query", "1"), ("time", &max)]),
        (
            "/api/v1/query",
            vec![("query", "up offset 1y"), ("time", "-9.2e15")],
        ),
        ("/api/v1/query", vec![("query", "up"), ("time", "9.2e15")]),
        (
            "/api/v1/query_range",
            vec![
                ("query", "1"),
                ("start", &min),
                ("end", &max),
                ("step", "1"),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up"),
                ("start", "-9.2e15"),
                ("end", "9.2e15"),
                ("step", "1"),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![("query", "1"), ("start", "0"), ("end", "1"), ("step", &max)],
        ),
        (
            "/api/v1/query_range",
            vec![("query", "1"), ("start", "0"), ("end", "1"), ("step", &min)],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "up"),
                ("start", "-9.2e15"),
                ("end", "9.2e15"),
                ("step", "9.2e15"),
            ],
        ),
        (
            "/api/v1/series",
            vec![("match[]", "up"), ("start", &min), ("end", &max)],
        ),
        (
            "/api/v1/series",
            vec![("match[]", "up"), ("start", "-9.2e15"), ("end", "9.2e15")],
        ),
        (
            "/api/v1/labels",
            vec![("start", "-9.2e15"), ("end", "9.2e15")],
        ),
    ];
    for (path, form) in &extremes {
        let (status, body) = post_query(&client, &querier, path, form).await?;
        ensure!(
            status == 200 || (status == 400 && body["errorType"] == "bad_data"),
            "{path} {form:?}: {status} {body}"
        );
    }
    assert_healthy(&querier, "int64 extremes").await?;

    // Malformed and oversized protobufs to every StoreAPI server.
    let methods = [
        ("/thanos.Store/Series", true),
        ("/thanos.Store/LabelNames", false),
        ("/thanos.Store/LabelValues", false),
        ("/thanos.info.Info/Info", false),
    ];
    for process in processes {
        let address = process.grpc_address.context("grpc address")?;
        for (what, message) in malformed_messages() {
            // Info's request has no fields: only nesting and size are wrong for it.
            for &(method, streaming) in &methods {
                if method == "/thanos.info.Info/Info"
                    && !what.contains("nested")
                    && !what.contains("MiB")
                {
                    continue;
                }
                let status = send_raw(address, method, streaming, message.clone()).await?;
                let code = status.code();
                ensure!(
                    code != tonic::Code::Ok && code != tonic::Code::Unknown,
                    "{:?} {method} {what}: {status:?}",
                    process.service()
                );
                ensure!(
                    !status.message().is_empty(),
                    "{:?} {method} {what}: no message in {status:?}",
                    process.service()
                );
                if what.contains("MiB") {
                    // tonic's status for a message over the decoding limit (grpc-go says
                    // ResourceExhausted); both name the limit.
                    ensure!(
                        matches!(
                            code,
                            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
                        ) && status.message().contains("limit"),
                        "{:?} {method} {what}: {status:?}",
                        process.service()
                    );
                }
            }
        }
    }
    for process in processes {
        assert_healthy(process, "malformed protobufs").await?;
    }
    // And the whole path still serves data.
    let (status, body) = post_query(
        &client,
        &querier,
        "/api/v1/query",
        &[("query", "count(up)")],
    )
    .await?;
    ensure!(status == 200, "{status} {body}");
    drop(prometheus);
    Ok(())
}
