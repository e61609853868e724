use strata_tsdb::index::IndexReader;

use super::*;
use crate::testutil::{bucket, numbered_series, write_block};

async fn built(count: usize) -> (tempfile::TempDir, Ulid, IndexHeader) {
    let dir = tempfile::tempdir().expect("tempdir");
    let block = write_block(dir.path(), &[("cluster", "a")], &numbered_series(count, 10));
    let size = std::fs::metadata(dir.path().join(format!("{block}/index")))
        .expect("index")
        .len();
    let bytes = build(&bucket(dir.path()), block, size)
        .await
        .expect("build");
    let header = IndexHeader::parse(block, Bytes::from(bytes)).expect("parse");
    (dir, block, header)
}

#[tokio::test]
async fn header_lookups_agree_with_the_full_index_reader() {
    let (dir, block, header) = built(200).await;
    let reader = IndexReader::open_file(&dir.path().join(format!("{block}/index"))).expect("index");
    assert_eq!(header.label_names(), ["__name__", "i", "mod"]);
    let index_bytes = std::fs::read(dir.path().join(format!("{block}/index"))).expect("read");
    for name in ["__name__", "i", "mod"] {
        let values = header.label_values(name);
        let expected: Vec<String> = reader.label_values(name).map(str::to_owned).collect();
        assert_eq!(values, expected, "values of {name}");
        for value in &values {
            let entry = header.entry(name, value).expect("entry exists");
            let start = entry.range.start as usize;
            let list = strata_tsdb::index::decode_postings(
                &index_bytes[start..entry.range.end as usize],
                entry.range.start,
            )
            .expect("postings decode from the header's range");
            assert_eq!(
                list,
                reader.postings(name, value).expect("postings").into_vec()
            );
        }
    }
    assert!(header.entry("i", "9999").is_none());
    assert!(header.entry("nope", "x").is_none());
    let prefixed = header.entries("i", Some("001"), |_| true);
    assert_eq!(prefixed.len(), 10);
    assert!(prefixed.iter().all(|e| e.value.starts_with("001")));
    assert_eq!(header.symbols().len(), reader.symbols().len());
}

#[tokio::test]
async fn corrupt_header_files_are_rejected() {
    let (dir, block, _) = built(50).await;
    let size = std::fs::metadata(dir.path().join(format!("{block}/index")))
        .expect("index")
        .len();
    let bytes = build(&bucket(dir.path()), block, size)
        .await
        .expect("build");
    for position in [0, 20, bytes.len() / 2, bytes.len() - 10, bytes.len() - 1] {
        let mut flipped = bytes.clone();
        flipped[position] ^= 0x10;
        assert!(
            IndexHeader::parse(block, Bytes::from(flipped)).is_err(),
            "flip at {position} of {}",
            bytes.len()
        );
    }
    // A bit flip in the index's postings offset table fails the build itself.
    let index_path = dir.path().join(format!("{block}/index"));
    let mut index = std::fs::read(&index_path).expect("index");
    let at = index.len() - 60;
    index[at] ^= 0x01;
    std::fs::write(&index_path, &index).expect("write");
    assert!(build(&bucket(dir.path()), block, size).await.is_err());
}
