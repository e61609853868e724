//! The object-storage conformance suite, written once and run against every backend
//! (FILESYSTEM and in-memory in unit tests; FILESYSTEM and a real S3 server in
//! `tests/tests/objstore_conformance.rs`). It checks the semantics [`Bucket`] promises to all
//! components, whatever the store underneath.
//!
//! Test-only code (behind `cfg(test)` or the `conformance` feature): it panics with a message
//! on the first mismatch. Everything it writes lives under a fresh random directory, which it
//! removes at the end, so it can run against a shared bucket.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;

use super::{Bucket, Operation};

/// What the suite needs to know about the bucket under test.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Size of the large object; it must exceed the bucket's part size so that the upload
    /// goes through the multipart path.
    pub large_object_size: usize,
    /// Objects written for the pagination check (S3 pages hold 1000 keys).
    pub paginated_objects: usize,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            large_object_size: 20 * 1024 * 1024 + 12_345,
            paginated_objects: 1_005,
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a mismatch is reproducible.
pub fn pattern(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Runs the whole suite against `bucket`.
pub async fn run(bucket: &Bucket, options: &SuiteOptions) {
    let root = format!("conformance-{:016x}", rand::random::<u64>());
    put_get_and_attributes(bucket, &root).await;
    missing_objects(bucket, &root).await;
    ranged_reads(bucket, &root).await;
    listing(bucket, &root).await;
    pagination(bucket, &root, options.paginated_objects).await;
    delete(bucket, &root).await;
    large_objects(bucket, &root, options.large_object_size).await;
    invalid_names(bucket).await;
    metrics(bucket);
    cleanup(bucket, &root).await;
}

async fn put_get_and_attributes(bucket: &Bucket, root: &str) {
    let path = format!("{root}/small/object.bin");
    let data = pattern(4321, 1);
    let before = SystemTime::now() - Duration::from_secs(300);
    bucket
        .put(&path, data.clone())
        .await
        .expect("put small object");
    let read = bucket.get(&path).await.expect("get small object");
    assert_eq!(read, data, "get returns what put wrote");

    assert!(
        bucket.exists(&path).await.expect("exists"),
        "object exists after put"
    );
    let attributes = bucket.attributes(&path).await.expect("attributes");
    assert_eq!(attributes.size, data.len() as u64, "attributes size");
    let after = SystemTime::now() + Duration::from_secs(300);
    assert!(
        attributes.last_modified > before && attributes.last_modified < after,
        "last_modified {:?} is not near now",
        attributes.last_modified
    );

    // Overwrite replaces the content, including with a shorter one.
    let shorter = Bytes::from_static(b"replaced");
    bucket.put(&path, shorter.clone()).await.expect("overwrite");
    assert_eq!(bucket.get(&path).await.expect("get overwritten"), shorter);

    // Empty objects exist and read back empty.
    let empty = format!("{root}/small/empty");
    bucket
        .put(&empty, Bytes::new())
        .await
        .expect("put empty object");
    assert_eq!(bucket.get(&empty).await.expect("get empty").len(), 0);
    assert_eq!(
        bucket
            .attributes(&empty)
            .await
            .expect("attributes empty")
            .size,
        0
    );

    // get_to_writer streams the same bytes.
    let mut sink = Vec::new();
    let written = bucket
        .get_to_writer(&path, &mut sink)
        .await
        .expect("get_to_writer");
    assert_eq!(written, shorter.len() as u64);
    assert_eq!(sink, shorter.as_ref());
}

async fn missing_objects(bucket: &Bucket, root: &str) {
    let missing = format!("{root}/does/not/exist");
    let failures_before = bucket
        .metrics()
        .failures_total(bucket.name(), Operation::Get);

    let error = bucket
        .get(&missing)
        .await
        .expect_err("get of a missing object");
    assert!(
        error.is_not_found(),
        "get of a missing object is NotFound, got: {error}"
    );
    assert!(
        error.to_string().contains(&missing),
        "error names the object: {error}"
    );
    let error = bucket
        .get_range(&missing, 0..10)
        .await
        .expect_err("get_range of a missing object");
    assert!(
        error.is_not_found(),
        "get_range of a missing object is NotFound, got: {error}"
    );
    let error = bucket
        .attributes(&missing)
        .await
        .expect_err("attributes of a missing object");
    assert!(
        error.is_not_found(),
        "attributes of a missing object is NotFound, got: {error}"
    );
    let mut sink = Vec::new();
    let error = bucket
        .get_to_writer(&missing, &mut sink)
        .await
        .expect_err("get_to_writer of a missing object");
    assert!(error.is_not_found(), "got: {error}");
    assert!(
        !bucket
            .exists(&missing)
            .await
            .expect("exists of a missing object")
    );

    // NotFound is an expected outcome, not a storage failure (Thanos's metric semantics).
    assert_eq!(
        bucket
            .metrics()
            .failures_total(bucket.name(), Operation::Get),
        failures_before,
        "a missing object must not count as a failed get"
    );
}

async fn ranged_reads(bucket: &Bucket, root: &str) {
    let path = format!("{root}/range/object.bin");
    let data = pattern(10_000, 2);
    bucket
        .put(&path, data.clone())
        .await
        .expect("put range object");
    let len = data.len() as u64;
    let cases: [(std::ops::Range<u64>, std::ops::Range<usize>); 7] = [
        (0..1, 0..1),
        (0..100, 0..100),
        (1234..5678, 1234..5678),
        (len - 1..len, 9_999..10_000),
        // Past the end: what exists.
        (len - 3..len + 100, 9_997..10_000),
        (0..u64::MAX, 0..10_000),
        (500..len, 500..10_000),
    ];
    for (range, expected) in cases {
        let read = bucket
            .get_range(&path, range.clone())
            .await
            .unwrap_or_else(|error| panic!("get_range {range:?}: {error}"));
        assert_eq!(read, data.slice(expected), "get_range {range:?}");
    }
    // Empty and reversed ranges are deliberate: callers compute ranges from index data.
    #[allow(clippy::reversed_empty_ranges)]
    let empty_ranges = [len..len + 10, len + 5..len + 10, 3..3, 7..2];
    for range in empty_ranges {
        let read = bucket
            .get_range(&path, range.clone())
            .await
            .unwrap_or_else(|error| panic!("get_range {range:?}: {error}"));
        assert!(
            read.is_empty(),
            "get_range {range:?} must be empty, got {} bytes",
            read.len()
        );
    }
}

async fn listing(bucket: &Bucket, root: &str) {
    let dir = format!("{root}/list/dir");
    let names = [
        format!("{dir}/a"),
        format!("{dir}/b.json"),
        format!("{dir}/sub/c"),
        format!("{dir}/sub/deeper/d"),
        format!("{dir}/sub2/e"),
        // Same string prefix, different directory: must not show up under `dir`.
        format!("{root}/list/dirx/f"),
    ];
    for (index, name) in names.iter().enumerate() {
        bucket
            .put(name, pattern(10 + index, index as u64))
            .await
            .expect("put listing object");
    }

    let listing = bucket
        .list_with_delimiter(&dir)
        .await
        .expect("list_with_delimiter");
    let objects: Vec<&str> = listing.objects.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(objects, vec![names[0].as_str(), names[1].as_str()]);
    assert_eq!(listing.objects[0].size, 10, "listed size");
    assert_eq!(
        listing.prefixes,
        vec![format!("{dir}/sub"), format!("{dir}/sub2")]
    );

    // A trailing slash names the same directory.
    let with_slash = bucket
        .list_with_delimiter(&format!("{dir}/"))
        .await
        .expect("list_with_delimiter with trailing slash");
    assert_eq!(with_slash, listing);

    let all = bucket.list_recursive(&dir).await.expect("list_recursive");
    let all: Vec<&str> = all.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        all,
        names[..5].iter().map(String::as_str).collect::<Vec<_>>()
    );

    let iter = bucket.iter(&dir).await.expect("iter");
    assert_eq!(
        iter,
        vec![
            names[0].clone(),
            names[1].clone(),
            format!("{dir}/sub/"),
            format!("{dir}/sub2/"),
        ]
    );

    let nothing = bucket
        .list_with_delimiter(&format!("{root}/list/nothing-here"))
        .await
        .expect("list of an empty directory");
    assert!(nothing.objects.is_empty() && nothing.prefixes.is_empty());

    // The bucket root lists our root directory among its prefixes.
    let top = bucket
        .list_with_delimiter("")
        .await
        .expect("list bucket root");
    assert!(
        top.prefixes.iter().any(|p| p == root),
        "root {root} missing from {:?}",
        top.prefixes
    );
}

async fn pagination(bucket: &Bucket, root: &str, count: usize) {
    let dir = format!("{root}/many");
    let names: Vec<String> = (0..count).map(|i| format!("{dir}/{i:05}/obj")).collect();
    let results: Vec<_> = futures::stream::iter(names.iter().map(|name| async move {
        bucket
            .put(name, Bytes::from(name.clone().into_bytes()))
            .await
    }))
    .buffer_unordered(16)
    .collect()
    .await;
    for result in results {
        result.expect("put pagination object");
    }
    let listing = bucket
        .list_with_delimiter(&dir)
        .await
        .expect("list many prefixes");
    assert!(listing.objects.is_empty());
    assert_eq!(
        listing.prefixes.len(),
        count,
        "every common prefix across pages"
    );
    let expected_prefixes: Vec<String> = (0..count).map(|i| format!("{dir}/{i:05}")).collect();
    assert_eq!(listing.prefixes, expected_prefixes);

    let all = bucket
        .list_recursive(&dir)
        .await
        .expect("list many objects");
    let paths: Vec<String> = all.into_iter().map(|o| o.path).collect();
    assert_eq!(paths, names, "every object across pages, sorted");
}

async fn delete(bucket: &Bucket, root: &str) {
    let path = format!("{root}/delete/me");
    bucket
        .put(&path, Bytes::from_static(b"x"))
        .await
        .expect("put");
    bucket.delete(&path).await.expect("delete");
    assert!(!bucket.exists(&path).await.expect("exists after delete"));
    assert!(
        bucket
            .get(&path)
            .await
            .expect_err("get after delete")
            .is_not_found()
    );
    // Idempotent: deleting again (or something never written) succeeds.
    bucket
        .delete(&path)
        .await
        .expect("delete of a missing object");
    // The emptied directory is gone from listings.
    let listing = bucket
        .list_with_delimiter(&format!("{root}/delete"))
        .await
        .expect("list after delete");
    assert!(listing.objects.is_empty(), "{listing:?}");
}

async fn large_objects(bucket: &Bucket, root: &str, size: usize) {
    assert!(
        size as u64 > bucket.options().part_size,
        "large object ({size} bytes) must exceed the part size ({}) to test multipart",
        bucket.options().part_size
    );
    let data = pattern(size, 3);
    let path = format!("{root}/large/from-memory");
    bucket
        .put(&path, data.clone())
        .await
        .expect("multipart put");
    assert_eq!(
        bucket.attributes(&path).await.expect("attributes").size,
        size as u64
    );
    let read = bucket.get(&path).await.expect("get large object");
    assert!(read == data, "large object read back differs");
    // A range across a part boundary.
    let part = bucket.options().part_size;
    let read = bucket
        .get_range(&path, part - 100..part + 100)
        .await
        .expect("range across parts");
    assert_eq!(read, data.slice(part as usize - 100..part as usize + 100));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("large.bin");
    let file_data = pattern(size + 1, 4);
    std::fs::write(&file, &file_data).expect("write local file");
    let path = format!("{root}/large/from-file");
    let uploaded = bucket.upload_file(&path, &file).await.expect("upload_file");
    assert_eq!(uploaded, file_data.len() as u64);
    let mut sink = Vec::new();
    bucket
        .get_to_writer(&path, &mut sink)
        .await
        .expect("download");
    assert!(
        sink == file_data.as_ref(),
        "uploaded file read back differs"
    );

    // A small file goes up in one request.
    let small = dir.path().join("small.bin");
    std::fs::write(&small, b"small file").expect("write small file");
    let path = format!("{root}/large/small-file");
    assert_eq!(
        bucket
            .upload_file(&path, &small)
            .await
            .expect("upload small"),
        10
    );
    assert_eq!(
        bucket.get(&path).await.expect("get small").as_ref(),
        b"small file"
    );
}

async fn invalid_names(bucket: &Bucket) {
    for name in ["a//b", "../escape", "a/./b"] {
        let error = bucket
            .put(name, Bytes::from_static(b"x"))
            .await
            .expect_err("invalid object name");
        assert!(
            matches!(error, super::Error::InvalidPath { .. }),
            "{name:?} must be an invalid name, got {error}"
        );
    }
}

fn metrics(bucket: &Bucket) {
    let metrics = bucket.metrics();
    for operation in [
        Operation::Get,
        Operation::GetRange,
        Operation::Upload,
        Operation::Exists,
        Operation::Delete,
        Operation::Iter,
        Operation::Attributes,
    ] {
        assert!(
            metrics.operations_total(bucket.name(), operation) > 0,
            "operation {operation} was counted"
        );
    }
    assert!(metrics.last_successful_upload_time(bucket.name()) > 1.6e9);
}

async fn cleanup(bucket: &Bucket, root: &str) {
    let objects = bucket.list_recursive(root).await.expect("list for cleanup");
    let results: Vec<_> = futures::stream::iter(objects.iter().map(|o| bucket.delete(&o.path)))
        .buffer_unordered(16)
        .collect()
        .await;
    for result in results {
        result.expect("delete during cleanup");
    }
    let left = bucket
        .list_recursive(root)
        .await
        .expect("list after cleanup");
    assert!(
        left.is_empty(),
        "objects left after cleanup: {}",
        left.len()
    );
}
