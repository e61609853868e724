//! Grouping and planning, as Thanos does it (reference/thanos.md 6.2): blocks are grouped by
//! external labels (replica labels removed when deduplicating) and resolution; within a group
//! Thanos's planner (Prometheus's, plus no-compact marks) picks the next blocks to merge:
//! overlapping blocks first, then, leaving the newest block alone, the first aligned window of
//! 2h, 8h, 2d or 14d holding at least two blocks that either fills the window or ends before
//! the newest block starts.
//!
//! Also here: which blocks are duplicates (their sources are all inside another block of the
//! same group), the garbage the compactor marks for deletion after a compaction whose sources
//! were not marked yet (a crash in between). Outputs cut before the index limit carry the hint
//! `strata-index-split-I-of-N`; such a set covers its sources only once all N are present.

use std::collections::{BTreeMap, HashSet};

use strata_tsdb::meta::BlockMeta;
use ulid::Ulid;

/// Thanos's compaction levels: 1h, 2h, 8h, 2d, 14d. The planner's target ranges are all but
/// the first; the tombstone rule uses the middle one.
pub const LEVEL_RANGES: [i64; 5] = [
    3_600_000,
    2 * 3_600_000,
    8 * 3_600_000,
    2 * 86_400_000,
    14 * 86_400_000,
];

/// Prefix of the hint that marks one of several outputs of one compaction.
pub const SPLIT_HINT_PREFIX: &str = "strata-index-split-";

/// Prometheus's `labels.Hash`: xxhash64 of name, 0xff, value, 0xff for every label in order.
pub fn labels_hash(labels: &BTreeMap<String, String>) -> u64 {
    let mut bytes = Vec::with_capacity(128);
    for (name, value) in labels {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&bytes, 0)
}

/// Thanos's group key: `<resolution>@<labels hash>`.
pub fn group_key(meta: &BlockMeta) -> String {
    let labels = meta
        .thanos
        .as_ref()
        .map(|t| t.labels.clone())
        .unwrap_or_default();
    format!("{}@{}", meta.resolution(), labels_hash(&labels))
}

/// The blocks of one group.
#[derive(Debug, Clone)]
pub struct Group {
    pub key: String,
    pub resolution: i64,
    pub labels: BTreeMap<String, String>,
    /// Sorted by min time.
    pub blocks: Vec<BlockMeta>,
}

/// Groups `metas` by group key; blocks in each group sorted by (min time, ULID).
pub fn groups(metas: impl IntoIterator<Item = BlockMeta>) -> Vec<Group> {
    let mut by_key: BTreeMap<String, Group> = BTreeMap::new();
    for meta in metas {
        let key = group_key(&meta);
        let group = by_key.entry(key.clone()).or_insert_with(|| Group {
            key,
            resolution: meta.resolution(),
            labels: meta
                .thanos
                .as_ref()
                .map(|t| t.labels.clone())
                .unwrap_or_default(),
            blocks: Vec::new(),
        });
        group.blocks.push(meta);
    }
    let mut groups: Vec<Group> = by_key.into_values().collect();
    for group in &mut groups {
        sort_blocks(&mut group.blocks);
    }
    groups
}

pub fn sort_blocks(blocks: &mut [BlockMeta]) {
    blocks.sort_by_key(|m| (m.min_time, m.ulid));
}

/// The next blocks of a group to compact (sorted by min time), or none.
pub fn plan(blocks: &[BlockMeta], no_compact: &HashSet<Ulid>) -> Vec<BlockMeta> {
    if blocks.is_empty() {
        return Vec::new();
    }
    let not_excluded: Vec<&BlockMeta> = blocks
        .iter()
        .filter(|m| !no_compact.contains(&m.ulid))
        .collect();
    let overlapping = select_all_overlapping(&not_excluded);
    if !overlapping.is_empty() {
        return overlapping.into_iter().cloned().collect();
    }
    // Leave the newest block alone: it was just uploaded and a later one may join its range.
    let newest = &blocks[blocks.len() - 1];
    let mut not_excluded = not_excluded;
    if !no_compact.contains(&newest.ulid) {
        not_excluded.pop();
    }
    let candidates: Vec<&BlockMeta> = blocks[..blocks.len() - 1].iter().collect();
    let selected = select_metas(&candidates, no_compact);
    if !selected.is_empty() {
        return selected.into_iter().cloned().collect();
    }
    // A single big block with more than 5% tombstones.
    for meta in not_excluded.iter().rev() {
        if meta.max_time - meta.min_time < LEVEL_RANGES[LEVEL_RANGES.len() / 2] {
            break;
        }
        if meta.stats.num_tombstones as f64 / (meta.stats.num_series + 1) as f64 > 0.05 {
            return vec![(*meta).clone()];
        }
    }
    Vec::new()
}

/// Every block that overlaps another one (input sorted by min time). Thanos takes the first
/// overlapping run only; taking all at once merges the replicas of an HA pair in one pass, so
/// the penalty algorithm walks the whole range as the querier does at query time instead of
/// starting afresh at each block boundary (where it may pick the other replica).
pub fn select_all_overlapping<'a>(metas: &[&'a BlockMeta]) -> Vec<&'a BlockMeta> {
    let mut out: Vec<&BlockMeta> = Vec::new();
    let mut rest = metas;
    loop {
        let run = select_overlapping(rest);
        let Some(last) = run.last() else {
            return out;
        };
        let position = rest
            .iter()
            .position(|m| m.ulid == last.ulid)
            .map_or(rest.len(), |p| p + 1);
        out.extend(run);
        rest = &rest[position..];
    }
}

/// The blocks of a group that overlap another in time, sorted by min time: the input of
/// Thanos's pre-compaction overlap check (Prometheus's `OverlappingBlocks`, half-open ranges,
/// no-compact blocks included). The outputs of one split set share their time range by
/// construction and count as one block. An incomplete set (a compaction killed before its last
/// output was uploaded) is left out: its sources are still in the group, are compacted again,
/// and the new complete set then makes it a duplicate.
pub fn overlapping(blocks: &[BlockMeta]) -> Vec<&BlockMeta> {
    let splits: Vec<Option<Split>> = blocks.iter().map(split_hint).collect();
    let mut sets_seen = HashSet::new();
    let mut units: Vec<&BlockMeta> = blocks
        .iter()
        .zip(&splits)
        .filter(|(_, split)| match split {
            None => true,
            Some(split) => split_set_complete(split, &splits) && sets_seen.insert(split.set),
        })
        .map(|(meta, _)| meta)
        .collect();
    units.sort_by_key(|m| (m.min_time, m.ulid));
    select_all_overlapping(&units)
}

/// The first run of blocks that overlap in time (input sorted by min time).
pub fn select_overlapping<'a>(metas: &[&'a BlockMeta]) -> Vec<&'a BlockMeta> {
    let mut out: Vec<&BlockMeta> = Vec::new();
    let Some(first) = metas.first() else {
        return out;
    };
    let mut global_max = first.max_time;
    for (i, meta) in metas.iter().enumerate().skip(1) {
        if meta.min_time < global_max {
            if out.is_empty() {
                out.push(metas[i - 1]);
            }
            out.push(meta);
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(meta.max_time);
    }
    out
}

fn select_metas<'a>(metas: &[&'a BlockMeta], no_compact: &HashSet<Ulid>) -> Vec<&'a BlockMeta> {
    let Some(last) = metas.last() else {
        return Vec::new();
    };
    let high_time = last.min_time;
    for &range in &LEVEL_RANGES[1..] {
        'parts: for part in split_by_range(metas, range) {
            if part.iter().any(|m| m.compaction.failed) {
                continue 'parts;
            }
            if part.len() < 2 {
                continue;
            }
            let mint = part[0].min_time;
            let maxt = part[part.len() - 1].max_time;
            if maxt - mint != range && maxt > high_time {
                continue;
            }
            // No-compact blocks split the window without creating gaps.
            let mut last_excluded = 0;
            for (i, meta) in part.iter().enumerate() {
                if !no_compact.contains(&meta.ulid) {
                    continue;
                }
                if i - last_excluded > 1 {
                    return part[last_excluded..i].to_vec();
                }
                last_excluded = i + 1;
            }
            if part.len() - last_excluded > 1 {
                return part[last_excluded..].to_vec();
            }
        }
    }
    Vec::new()
}

/// Splits blocks into aligned windows of `range` (blocks that do not fit one are skipped).
fn split_by_range<'a>(metas: &[&'a BlockMeta], range: i64) -> Vec<Vec<&'a BlockMeta>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < metas.len() {
        let meta = metas[i];
        let t0 = if meta.min_time >= 0 {
            range * (meta.min_time / range)
        } else {
            range * ((meta.min_time - range + 1) / range)
        };
        if meta.max_time > t0 + range {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < metas.len() && metas[i].max_time <= t0 + range {
            group.push(metas[i]);
            i += 1;
        }
        if !group.is_empty() {
            out.push(group);
        }
    }
    out
}

/// A split output's place in its set: the set (the ULID of its first output), its 1-based
/// index and the set's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub set: Ulid,
    pub index: u32,
    pub count: u32,
}

/// The split hint of a block, if it has one (`strata-index-split-I-of-N-SET`).
pub fn split_hint(meta: &BlockMeta) -> Option<Split> {
    meta.compaction.hints.iter().find_map(|hint| {
        let rest = hint.strip_prefix(SPLIT_HINT_PREFIX)?;
        let (index, rest) = rest.split_once("-of-")?;
        let (count, set) = rest.split_once('-')?;
        Some(Split {
            set: Ulid::from_string(set).ok()?,
            index: index.parse().ok()?,
            count: count.parse().ok()?,
        })
    })
}

/// Whether every output of `split`'s set is among `splits`.
fn split_set_complete(split: &Split, splits: &[Option<Split>]) -> bool {
    (1..=split.count).all(|index| {
        splits.iter().flatten().any(|other| {
            other.set == split.set && other.count == split.count && other.index == index
        })
    })
}

/// The split hint of output `index` (1-based) of `count` in set `set`.
pub fn split_hint_text(set: Ulid, index: usize, count: usize) -> String {
    format!("{SPLIT_HINT_PREFIX}{index}-of-{count}-{set}")
}

fn sources_of(meta: &BlockMeta) -> Vec<Ulid> {
    if meta.compaction.sources.is_empty() {
        vec![meta.ulid]
    } else {
        let mut sources = meta.compaction.sources.clone();
        sources.sort();
        sources
    }
}

fn is_subset(small: &[Ulid], big: &[Ulid]) -> bool {
    small.iter().all(|s| big.binary_search(s).is_ok())
}

/// Blocks whose data another block of the same group already holds: their sources are a
/// subset of its sources. Equal source sets keep one block (a complete split set, or else
/// the oldest ULID). See the module header for split outputs.
pub fn duplicates(metas: &[BlockMeta]) -> Vec<Ulid> {
    let mut by_group: BTreeMap<String, Vec<&BlockMeta>> = BTreeMap::new();
    for meta in metas {
        by_group.entry(group_key(meta)).or_default().push(meta);
    }
    let mut out = Vec::new();
    for blocks in by_group.values() {
        let sources: Vec<Vec<Ulid>> = blocks.iter().map(|m| sources_of(m)).collect();
        let splits: Vec<Option<Split>> = blocks.iter().map(|m| split_hint(m)).collect();
        // A split output covers anything only when its whole set is present.
        let complete: Vec<bool> = splits
            .iter()
            .map(|split| {
                split
                    .as_ref()
                    .is_none_or(|split| split_set_complete(split, &splits))
            })
            .collect();
        for (b, block) in blocks.iter().enumerate() {
            let covered = blocks.iter().enumerate().any(|(a, other)| {
                if a == b || !complete[a] || !is_subset(&sources[b], &sources[a]) {
                    return false;
                }
                if sources[a] != sources[b] {
                    return true;
                }
                // Equal sources: one set of outputs stays.
                match (splits[b], splits[a]) {
                    (Some(mine), Some(theirs)) if mine.set == theirs.set => false,
                    (Some(mine), Some(theirs)) => !complete[b] || theirs.set < mine.set,
                    // A single output wins over a split set.
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => other.ulid < block.ulid,
                }
            });
            if covered {
                out.push(block.ulid);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
