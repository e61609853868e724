use strata_tsdb::meta::{BlockDesc, ThanosMeta};

use super::*;

const H: i64 = 3_600_000;

fn block(min: i64, max: i64) -> BlockMeta {
    let mut meta = BlockMeta::new(Ulid::new(), min, max);
    meta.thanos = Some(ThanosMeta {
        labels: [("cluster".to_owned(), "a".to_owned())].into(),
        ..Default::default()
    });
    meta
}

fn ranges(plan: &[BlockMeta]) -> Vec<(i64, i64)> {
    plan.iter()
        .map(|m| (m.min_time / H, m.max_time / H))
        .collect()
}

#[test]
fn two_hour_blocks_go_to_8h_then_2d_leaving_the_newest_alone() {
    // 3 days of 2h blocks from a 2d boundary.
    let blocks: Vec<BlockMeta> = (0..36).map(|i| block(i * 2 * H, (i + 1) * 2 * H)).collect();
    let none = HashSet::new();
    assert_eq!(
        ranges(&plan(&blocks, &none)),
        [(0, 2), (2, 4), (4, 6), (6, 8)]
    );
    // Simulate to the end: what stays is a 2d block, two 8h blocks and the last 2h blocks.
    let mut current = blocks;
    loop {
        let selected = plan(&current, &none);
        if selected.is_empty() {
            break;
        }
        let ids: HashSet<Ulid> = selected.iter().map(|m| m.ulid).collect();
        let metas: Vec<&BlockMeta> = selected.iter().collect();
        let merged =
            strata_tsdb::compact::merged_meta(Ulid::new(), &metas, current[0].thanos.clone());
        current.retain(|m| !ids.contains(&m.ulid));
        current.push(merged);
        sort_blocks(&mut current);
    }
    assert_eq!(
        ranges(&current),
        [
            (0, 48),
            (48, 56),
            (56, 64),
            (64, 66),
            (66, 68),
            (68, 70),
            (70, 72)
        ]
    );
}

#[test]
fn overlaps_come_first_and_no_compact_blocks_are_skipped() {
    let a = block(0, 2 * H);
    let b = block(H, 3 * H);
    let c = block(4 * H, 6 * H);
    let plan_ids: Vec<Ulid> = plan(&[a.clone(), b.clone(), c.clone()], &HashSet::new())
        .iter()
        .map(|m| m.ulid)
        .collect();
    assert_eq!(plan_ids, [a.ulid, b.ulid]);
    let marked: HashSet<Ulid> = [b.ulid].into();
    assert!(plan(&[a, b, c], &marked).is_empty());

    let blocks: Vec<BlockMeta> = (0..5).map(|i| block(i * 2 * H, (i + 1) * 2 * H)).collect();
    let marked: HashSet<Ulid> = [blocks[1].ulid].into();
    assert_eq!(ranges(&plan(&blocks, &marked)), [(4, 6), (6, 8)]);
}

#[test]
fn duplicates_by_sources_and_split_sets() {
    let a = block(0, 2 * H);
    let b = block(2 * H, 4 * H);
    let mut merged = strata_tsdb::compact::merged_meta(Ulid::new(), &[&a, &b], a.thanos.clone());
    merged.compaction.parents = vec![BlockDesc {
        ulid: a.ulid,
        min_time: 0,
        max_time: 2 * H,
    }];
    let mut dups = duplicates(&[a.clone(), b.clone(), merged.clone()]);
    dups.sort();
    let mut want = vec![a.ulid, b.ulid];
    want.sort();
    assert_eq!(dups, want);

    // Half of a split set covers nothing; the whole set covers its sources.
    let set = Ulid::new();
    let mut first = merged.clone();
    first.ulid = set;
    first.compaction.hints = vec![split_hint_text(set, 1, 2)];
    let mut second = merged.clone();
    second.ulid = Ulid::new();
    second.compaction.hints = vec![split_hint_text(set, 2, 2)];
    assert!(duplicates(&[a.clone(), b.clone(), first.clone()]).is_empty());
    let dups = duplicates(&[a.clone(), b.clone(), first.clone(), second.clone()]);
    assert_eq!(dups.len(), 2, "{dups:?}");
    assert!(!dups.contains(&first.ulid) && !dups.contains(&second.ulid));
    // An incomplete older set is garbage next to a complete newer one.
    let newer = Ulid::new();
    let mut third = merged.clone();
    third.ulid = newer;
    third.compaction.hints = vec![split_hint_text(newer, 1, 1)];
    let dups = duplicates(&[first.clone(), third.clone()]);
    assert_eq!(dups, [first.ulid]);
    assert_eq!(
        split_hint(&second).map(|s| (s.index, s.count)),
        Some((2, 2))
    );
}

#[test]
fn overlap_check_sees_a_split_set_as_one_block_and_skips_incomplete_sets() {
    let ids = |metas: Vec<&BlockMeta>| metas.iter().map(|m| m.ulid).collect::<Vec<_>>();
    let a = block(0, 2 * H);
    let b = block(2 * H, 4 * H);
    // Touching ranges are not overlaps (half-open, as Prometheus's OverlappingBlocks).
    assert!(overlapping(&[b.clone(), a.clone()]).is_empty());
    let c = block(H, 3 * H);
    assert_eq!(
        ids(overlapping(&[a.clone(), b.clone(), c.clone()])),
        [a.ulid, c.ulid, b.ulid]
    );

    // A complete split set over 4h..6h: its outputs share the range by construction.
    let set = Ulid::new();
    let mut first = block(4 * H, 6 * H);
    first.ulid = set;
    first.compaction.hints = vec![split_hint_text(set, 1, 2)];
    let mut second = block(4 * H, 6 * H);
    second.compaction.hints = vec![split_hint_text(set, 2, 2)];
    let complete = [a.clone(), b.clone(), first.clone(), second.clone()];
    assert!(overlapping(&complete).is_empty());
    // Half of another set beside its sources (a compaction killed mid-upload).
    let killed = Ulid::new();
    let mut half = block(0, 4 * H);
    half.compaction.hints = vec![split_hint_text(killed, 1, 2)];
    let mut with_half = complete.to_vec();
    with_half.push(half);
    assert!(overlapping(&with_half).is_empty());
    // A set that overlaps another block is an overlap, reported once.
    let d = block(5 * H, 7 * H);
    let mut with_d = complete.to_vec();
    with_d.push(d.clone());
    let found = ids(overlapping(&with_d));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&d.ulid));
}

#[test]
fn group_key_is_resolution_and_labels_hash() {
    let meta = block(0, H);
    let key = group_key(&meta);
    assert!(key.starts_with("0@"), "{key}");
    let other = {
        let mut m = block(0, H);
        m.thanos
            .as_mut()
            .unwrap()
            .labels
            .insert("cluster".into(), "b".into());
        m
    };
    assert_ne!(group_key(&other), key);
    assert_eq!(groups([meta, other]).len(), 2);
}
