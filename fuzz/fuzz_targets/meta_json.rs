//! Fuzz target: arbitrary bytes as a block's small files: meta.json (with Thanos's section)
//! and the tombstones file. What parses must serialize and parse back to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_tsdb::meta::BlockMeta;
use strata_tsdb::tombstones::Tombstones;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = BlockMeta::from_json(data) {
        let json = meta.to_json().expect("a parsed meta.json serializes");
        let again = BlockMeta::from_json(&json).expect("a written meta.json parses");
        assert_eq!(again, meta);
    }
    if let Ok(tombstones) = Tombstones::decode(data) {
        let again = Tombstones::decode(&tombstones.encode()).expect("written tombstones parse");
        assert_eq!(again, tombstones);
    }
});
