//! The object-storage conformance suite (`strata_common::objstore::conformance`) against every
//! backend Strata's tests can reach: FILESYSTEM and a real S3 server (moto with authentication
//! on, or the endpoint named by `STRATA_TEST_S3_*`).

use anyhow::Result;
use strata_common::objstore::conformance::{self, SuiteOptions};
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics, BucketOptions, build};
use strata_tests::s3::S3Server;

/// Parts of 5 MiB (the S3 minimum) so that the suite's 20 MiB object is a 5-part upload.
const SMALL_PARTS: &str = "part_size: 5242880";

#[tokio::test]
async fn objstore_conformance_filesystem() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}/bucket\n",
        dir.path().display()
    );
    let config = BucketConfig::parse(&yaml)?;
    let built = build::build_store(&config)?;
    // FILESYSTEM has no part size in objstore.yml; the suite needs one below its 20 MiB object.
    let options = BucketOptions {
        part_size: 5 * 1024 * 1024,
        ..built.options
    };
    let bucket = Bucket::new(
        built.store,
        config.bucket_name(),
        options,
        BucketMetrics::unregistered(),
    );
    conformance::run(&bucket, &SuiteOptions::default()).await;
    Ok(())
}

#[tokio::test]
async fn objstore_conformance_s3() -> Result<()> {
    let server = S3Server::start().await?;
    let config = BucketConfig::parse(&server.objstore_yaml_with(SMALL_PARTS))?;
    let bucket = Bucket::from_config_with_metrics(&config, BucketMetrics::unregistered())?;
    assert_eq!(bucket.options().part_size, 5 * 1024 * 1024);
    conformance::run(&bucket, &SuiteOptions::default()).await;
    Ok(())
}

#[tokio::test]
async fn objstore_conformance_s3_with_prefix() -> Result<()> {
    let server = S3Server::start().await?;
    let yaml = format!(
        "{}prefix: tenant/a\n",
        server.objstore_yaml_with(SMALL_PARTS)
    );
    let config = BucketConfig::parse(&yaml)?;
    let bucket = Bucket::from_config_with_metrics(&config, BucketMetrics::unregistered())?;
    let options = SuiteOptions {
        paginated_objects: 1_001,
        ..SuiteOptions::default()
    };
    conformance::run(&bucket, &options).await;

    // The prefix really is a directory in the bucket: an unprefixed view sees the object
    // under `tenant/a/`.
    bucket
        .put("marker", bytes::Bytes::from_static(b"m"))
        .await?;
    let root = Bucket::from_config_with_metrics(
        &BucketConfig::parse(&server.objstore_yaml())?,
        BucketMetrics::unregistered(),
    )?;
    assert_eq!(root.get("tenant/a/marker").await?.as_ref(), b"m");
    bucket.delete("marker").await?;
    Ok(())
}
