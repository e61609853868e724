//! Partitioning of byte ranges into few GET requests: ranges are sorted and two ranges whose
//! gap is at most `max_gap` bytes are fetched as one (Thanos's gap-based partitioner, 512 KiB),
//! trading a little over-read for far fewer round trips to the object store.

use std::ops::Range;

/// Thanos's default gap under which two ranges are fetched with one request.
pub const MAX_GAP: u64 = 512 * 1024;

/// A merged request: the byte range to fetch and the indexes (into the input) it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub range: Range<u64>,
    pub members: Vec<usize>,
}

/// Groups `ranges` (any order, may overlap) into parts whose inner gaps are `<= max_gap`.
pub fn partition(ranges: &[Range<u64>], max_gap: u64) -> Vec<Part> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| ranges.get(i).map_or((0, 0), |r| (r.start, r.end)));
    let mut parts: Vec<Part> = Vec::new();
    for i in order {
        let Some(range) = ranges.get(i) else { continue };
        match parts.last_mut() {
            Some(part) if range.start <= part.range.end.saturating_add(max_gap) => {
                part.range.end = part.range.end.max(range.end);
                part.members.push(i);
            }
            _ => parts.push(Part {
                range: range.clone(),
                members: vec![i],
            }),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_ranges_merge_and_far_ones_do_not() {
        let ranges = [100..200, 0..10, 250..300, 10_000..10_010, 150..400];
        let parts = partition(&ranges, 100);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].range, 0..400);
        assert_eq!(parts[0].members, vec![1, 0, 4, 2]);
        assert_eq!(parts[1].range, 10_000..10_010);
        assert_eq!(
            partition(&ranges, 0).len(),
            3,
            "0..10 and 100..200 stay apart"
        );
        assert!(partition(&[], MAX_GAP).is_empty());
    }
}
