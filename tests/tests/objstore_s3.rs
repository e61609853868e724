//! S3-specific behaviour against the real S3 server: credentials are checked (wrong ones get a
//! clear access-denied error that does not leak the secret), large uploads really are multipart,
//! and the harness's server enforces authentication.

use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use strata_common::objstore::conformance::pattern;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics, Operation};
use strata_tests::s3::S3Server;

fn open_bucket(yaml: &str) -> Result<Bucket> {
    let config = BucketConfig::parse(yaml)?;
    Ok(Bucket::from_config_with_metrics(
        &config,
        BucketMetrics::unregistered(),
    )?)
}

#[tokio::test]
async fn objstore_s3_wrong_credentials_are_rejected_clearly() -> Result<()> {
    let server = S3Server::start().await?;
    let good = open_bucket(&server.objstore_yaml())?;
    good.put("auth/object", Bytes::from_static(b"data")).await?;
    assert_eq!(good.get("auth/object").await?.as_ref(), b"data");

    let wrong_secret = "WRONGSECRETKEYVALUE0123456789abcdefghij";
    let cases = [
        (
            "right key id, wrong secret",
            server.access_key.clone(),
            wrong_secret.to_string(),
        ),
        (
            "unknown key id",
            "AKIAUNKNOWNKEY000000".to_string(),
            server.secret_key.clone(),
        ),
    ];
    for (case, access_key, secret_key) in cases {
        let bad = open_bucket(&server.objstore_yaml_for(&access_key, &secret_key, ""))?;
        let error = bad.get("auth/object").await.expect_err(case);
        assert!(error.is_access_denied(), "{case}: {error}");
        let message = error.to_string();
        assert!(message.contains("access denied"), "{case}: {message}");
        assert!(
            message.contains("auth/object"),
            "{case}: names the object: {message}"
        );
        assert!(
            !message.contains(&secret_key),
            "{case}: secret leaked: {message}"
        );
        let error = bad
            .put("auth/other", Bytes::from_static(b"x"))
            .await
            .expect_err(case);
        assert!(error.is_access_denied(), "{case}: {error}");
        let error = bad.list_with_delimiter("").await.expect_err(case);
        assert!(error.is_access_denied(), "{case}: {error}");
        // Rejections are permanent: no retries, one counted failure.
        assert_eq!(
            bad.metrics().failures_total(bad.name(), Operation::Get),
            1,
            "{case}"
        );
    }
    // Nothing was written with bad credentials.
    assert!(!good.exists("auth/other").await?);
    Ok(())
}

#[tokio::test]
async fn objstore_s3_server_enforces_authentication() -> Result<()> {
    let server = S3Server::start().await?;
    if !server.is_moto() {
        return Ok(()); // An external endpoint's policy is its own.
    }
    let good = open_bucket(&server.objstore_yaml())?;
    good.put("anon/object", Bytes::from_static(b"x")).await?;
    // An unsigned request is refused.
    let url = format!("http://{}/{}/anon/object", server.endpoint, server.bucket);
    let response = reqwest::get(&url).await?;
    assert_eq!(
        response.status().as_u16(),
        403,
        "anonymous GET must be refused"
    );
    Ok(())
}

#[tokio::test]
async fn objstore_s3_large_objects_are_uploaded_in_parts() -> Result<()> {
    let server = S3Server::start().await?;
    let bucket = open_bucket(&server.objstore_yaml_with("part_size: 5242880"))?;
    let data = pattern(12 * 1024 * 1024, 7);
    bucket.put("multipart/object", data.clone()).await?;
    let attributes = bucket.attributes("multipart/object").await?;
    assert_eq!(attributes.size, data.len() as u64);
    let e_tag = attributes.e_tag.unwrap_or_default();
    // S3's ETag of a multipart upload is "<md5 of part md5s>-<number of parts>".
    assert!(
        e_tag.trim_matches('"').ends_with("-3"),
        "expected a 3-part upload, ETag {e_tag}"
    );
    assert!(bucket.get("multipart/object").await? == data);

    // disable_multipart uploads the same object in one request.
    let single =
        open_bucket(&server.objstore_yaml_with("part_size: 5242880\ndisable_multipart: true"))?;
    single.put("multipart/single", data.clone()).await?;
    let e_tag = single
        .attributes("multipart/single")
        .await?
        .e_tag
        .unwrap_or_default();
    assert!(!e_tag.contains('-'), "single PUT expected, ETag {e_tag}");
    Ok(())
}

/// Latency of small GETs over a kept-alive connection: the figure that shows whether
/// TCP_NODELAY is on (with Nagle + delayed ACK each request stalls ~40 ms). A measurement, not
/// an assertion: run with `--ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn objstore_s3_small_get_latency() -> Result<()> {
    let server = S3Server::start().await?;
    let bucket = open_bucket(&server.objstore_yaml())?;
    bucket.put("latency/object", pattern(2000, 1)).await?;
    for _ in 0..20 {
        bucket.get("latency/object").await?;
    }
    let mut samples: Vec<Duration> = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        bucket.get_range("latency/object", 100..1100).await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "small ranged GET over keep-alive: p50 {:?} p90 {:?} p99 {:?}",
        samples[samples.len() / 2],
        samples[samples.len() * 9 / 10],
        samples[samples.len() * 99 / 100]
    );
    Ok(())
}
