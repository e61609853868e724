//! The StoreAPI conformance suite (`strata_common::storeapi::conformance`) against the real
//! store gateway binary, serving the suite's data set written by promtool 2.42 into a
//! FILESYSTEM bucket with external labels.

use strata_common::flags::GrpcClientFlags;
use strata_common::storeapi::StoreApiClient;
use strata_common::storeapi::conformance::{self, DataSet};
use strata_tests::prom::create_blocks;
use strata_tests::store_gateway::{filesystem_objstore_yaml, fill_filesystem_bucket, start};
use strata_tsdb::labels::Labels;

#[tokio::test]
async fn store_gateway_passes_the_storeapi_conformance_suite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = DataSet::standard();
    let blocks = create_blocks(&data.openmetrics(), &dir.path().join("prom"))?;
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let external = [("cluster", "c1"), ("replica", "r0")];
    let bucket_dir = dir.path().join("bucket");
    fill_filesystem_bucket(&blocks, &bucket_dir, &external)?;
    let gateway = start(
        &filesystem_objstore_yaml(&bucket_dir),
        &dir.path().join("store-data"),
        &[],
    )
    .await?;
    let endpoint = gateway.grpc_address.expect("grpc").to_string();
    let mut client = StoreApiClient::connect(&endpoint, &GrpcClientFlags::default()).await?;
    conformance::run(&mut client, &Labels::from_pairs(external), &data).await?;
    // The suite can fail: the same store judged against the wrong external labels does.
    let wrong = Labels::from_pairs([("cluster", "c2"), ("replica", "r0")]);
    assert!(conformance::run(&mut client, &wrong, &data).await.is_err());
    Ok(())
}
