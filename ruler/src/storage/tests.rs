//! The local TSDB: WAL replay, block cutting on window boundaries, retention, selection.

use strata_tsdb::labels::Matcher;

use super::*;

fn labels(name: &str, job: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", job)])
}

fn sample(name: &str, job: &str, t: i64, v: f64) -> Sample {
    Sample {
        labels: labels(name, job),
        t,
        v,
    }
}

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

#[test]
fn wal_replays_the_head_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let tsdb = LocalTsdb::open(dir.path(), 10 * MINUTE, 100 * MINUTE).expect("open");
        tsdb.append(
            &[sample("a", "x", 1_000, 1.0), sample("a", "y", 1_000, 2.0)],
            1_000,
        )
        .expect("append");
        tsdb.append(&[sample("a", "x", 2_000, stale_nan())], 2_000)
            .expect("append");
        // Same timestamp again: refused, not duplicated.
        tsdb.append(&[sample("a", "x", 2_000, 5.0)], 2_000)
            .expect("append");
        assert_eq!(
            tsdb.out_of_bounds
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        tsdb.close().expect("close");
    }
    // A torn record at the end is dropped at replay.
    let wal = dir.path().join("wal/head.wal");
    let mut bytes = std::fs::read(&wal).expect("wal");
    bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    std::fs::write(&wal, bytes).expect("write");
    let tsdb = LocalTsdb::open(dir.path(), 10 * MINUTE, 100 * MINUTE).expect("reopen");
    let selected = tsdb
        .select(&[Matcher::equal("__name__", "a")], 0, 10_000)
        .expect("select");
    assert_eq!(selected.len(), 2);
    let x: Vec<(i64, f64)> = selected[0].chunks[0]
        .chunk
        .xor_iter()
        .expect("xor")
        .map(|s| s.expect("sample"))
        .collect();
    assert_eq!(x.len(), 2);
    assert_eq!(x[0], (1_000, 1.0));
    assert!(is_stale_nan(x[1].1));
    assert_eq!(
        tsdb.last_sample(&labels("a", "y"), 0, 10_000)
            .expect("last"),
        Some((1_000, 2.0))
    );
}

#[test]
fn blocks_are_cut_per_window_and_deleted_after_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let block = 60_000;
    let tsdb = LocalTsdb::open(dir.path(), MINUTE, 3 * MINUTE).expect("open");
    // Samples every 10 s over 2.5 windows.
    for i in 0..15 {
        let t = i * 10_000;
        tsdb.append(&[sample("r", "x", t, i as f64)], t)
            .expect("append");
    }
    // max t = 140 s: windows [0,60) and [60,120) are due once 150 s... only [0,60) is cut
    // (140 - 30 = 110 -> boundary 60).
    let (_, blocks) = tsdb.stats();
    assert_eq!(blocks, 1);
    let block_dirs: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| Ulid::from_string(&e.file_name().to_string_lossy()).is_ok())
        .collect();
    assert_eq!(block_dirs.len(), 1);
    let opened = Block::open(&block_dirs[0].path()).expect("block opens");
    assert_eq!(opened.meta().min_time, 0);
    assert_eq!(opened.meta().max_time, block);
    assert_eq!(opened.meta().stats.num_samples, 6);
    // Older than the cut: refused.
    tsdb.append(&[sample("r", "y", 30_000, 1.0)], 140_000)
        .expect("append");
    assert_eq!(
        tsdb.out_of_bounds
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // Everything still selects, across block and head, in order.
    let selected = tsdb
        .select(&[Matcher::equal("job", "x")], 0, 1_000_000)
        .expect("select");
    let times: Vec<i64> = selected[0]
        .chunks
        .iter()
        .flat_map(|c| {
            c.chunk
                .xor_iter()
                .expect("xor")
                .map(|s| s.expect("s").0)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(times, (0..15).map(|i| i * 10_000).collect::<Vec<_>>());
    // Reopen: the block is loaded, the WAL holds only the head.
    drop(tsdb);
    let tsdb = LocalTsdb::open(dir.path(), MINUTE, 3 * MINUTE).expect("reopen");
    assert_eq!(tsdb.stats(), (1, 1));
    // Retention: 3 minutes after the block's end it goes.
    tsdb.maintain(block + 3 * 60_000 + 1).expect("maintain");
    assert_eq!(
        tsdb.stats(),
        (0, 2),
        "cut the last two windows, deleted the first"
    );
    assert!(!block_dirs[0].path().exists());
}

/// A slow evaluation whose samples carry its start time: the clock does not cut its window
/// while it runs, so none of its samples is refused; once it ends the window is cut.
#[test]
fn the_clock_never_cuts_the_window_of_an_evaluation_in_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tsdb = Arc::new(
        LocalTsdb::open(dir.path(), std::time::Duration::from_secs(4), 10 * MINUTE).expect("open"),
    );
    for t in (0..=9_000).step_by(1_000) {
        tsdb.append(&[sample("r", "x", t, 1.0)], t).expect("append");
    }
    let pending = tsdb.begin_write(10_000);
    // Seven seconds later the evaluation at 10 s is still running; the clock alone would cut
    // [8 s, 12 s) now, but only [4 s, 8 s) goes (with [0, 4 s) cut by the samples before).
    tsdb.maintain(17_000).expect("maintain");
    assert_eq!(tsdb.stats().1, 2);
    tsdb.append(&[sample("r", "x", 10_000, 2.0)], 17_000)
        .expect("append");
    drop(pending);
    assert_eq!(
        tsdb.out_of_bounds
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the slow evaluation's sample was refused"
    );
    tsdb.maintain(17_000).expect("maintain");
    assert_eq!(
        tsdb.stats(),
        (0, 3),
        "[8 s, 12 s) cut once the evaluation ended"
    );
    let selected = tsdb
        .select(&[Matcher::equal("job", "x")], 0, 20_000)
        .expect("select");
    let samples: usize = selected[0]
        .chunks
        .iter()
        .map(|c| c.chunk.xor_iter().expect("xor").count())
        .sum();
    assert_eq!(samples, 11);
}
