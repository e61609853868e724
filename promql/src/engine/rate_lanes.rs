//! `rate`, `increase` and `delta` over several windows at once.
//!
//! Prometheus 2.42's `extrapolatedRate` is a chain of dependent divisions per window (the
//! durations to the window's edges, the average sample spacing, the zero point, the factor);
//! computed one window after the other the core waits on each division. Here up to [`LANES`]
//! windows go through the chain together, each step applied to every window before the next
//! step: the same operations in the same order per window, so the same bits as
//! [`super::window`]'s one-window version, with the divisions of different windows in flight at
//! once.

use crate::value::Point;

/// Windows computed together.
pub(super) const LANES: usize = 4;

/// One window of a rate-like function.
#[derive(Debug, Clone, Copy)]
pub(super) struct RateWindow<'p> {
    /// The output step.
    pub step: usize,
    /// The samples in the window, oldest first.
    pub points: &'p [Point],
    /// The window's bounds (range start and end) in ms.
    pub start: i64,
    pub end: i64,
    /// Whether a counter reset may lie among `points` (then the window is walked to add the
    /// resets up; false skips the walk).
    pub has_reset: bool,
}

/// Appends `(step, value)` for every window of `windows` (at most [`LANES`]) with at least two
/// samples, as Prometheus 2.42's `extrapolatedRate` computes it: `is_counter` for `rate` and
/// `increase`, `is_rate` for `rate` (per second over `range` ms).
pub(super) fn extrapolated_rates(
    windows: &[RateWindow<'_>],
    range: i64,
    is_counter: bool,
    is_rate: bool,
    out: &mut Vec<(usize, f64)>,
) {
    let mut valid = [false; LANES];
    let mut result = [0.0f64; LANES];
    let mut first_v = [0.0f64; LANES];
    // Milliseconds from the window's start to the first sample, from the last sample to the
    // window's end, and between the two: 2.42 subtracts the integer timestamps, then converts.
    let mut start_ms = [0i64; LANES];
    let mut end_ms = [0i64; LANES];
    let mut sampled_ms = [0i64; LANES];
    let mut intervals = [1.0f64; LANES];
    for (lane, window) in windows.iter().take(LANES).enumerate() {
        let (Some(first), Some(last)) = (window.points.first(), window.points.last()) else {
            continue;
        };
        if window.points.len() < 2 {
            continue;
        }
        let mut delta = last.v - first.v;
        if is_counter && window.has_reset {
            let mut prev = first.v;
            for p in window.points.iter().skip(1) {
                if p.v < prev {
                    delta += prev;
                }
                prev = p.v;
            }
        }
        valid[lane] = true;
        result[lane] = delta;
        first_v[lane] = first.v;
        start_ms[lane] = first.t.wrapping_sub(window.start);
        end_ms[lane] = window.end.wrapping_sub(last.t);
        sampled_ms[lane] = last.t.wrapping_sub(first.t);
        intervals[lane] = (window.points.len() - 1) as f64;
    }
    // In seconds, as 2.42's `float64(ms) / 1000`. When every one is whole seconds (samples
    // and steps on second boundaries: the common case) the quotients are integers below 2^53,
    // which the divisions would return exactly: three divisions per window saved, decided
    // once for all lanes so the divisions are not computed anyway.
    let whole = |ms: i64| ms % 1000 == 0 && ms.unsigned_abs() < 1 << 53;
    let all_whole = (0..LANES)
        .all(|lane| whole(start_ms[lane]) && whole(end_ms[lane]) && whole(sampled_ms[lane]));
    let mut to_start = [0.0f64; LANES];
    let mut to_end = [0.0f64; LANES];
    let mut sampled = [0.0f64; LANES];
    if all_whole {
        for lane in 0..LANES {
            to_start[lane] = (start_ms[lane] / 1000) as f64;
            to_end[lane] = (end_ms[lane] / 1000) as f64;
            sampled[lane] = (sampled_ms[lane] / 1000) as f64;
        }
    } else {
        for lane in 0..LANES {
            to_start[lane] = start_ms[lane] as f64 / 1000.0;
            to_end[lane] = end_ms[lane] as f64 / 1000.0;
            sampled[lane] = sampled_ms[lane] as f64 / 1000.0;
        }
    }
    let mut average = [0.0f64; LANES];
    for lane in 0..LANES {
        average[lane] = sampled[lane] / intervals[lane];
    }
    if is_counter {
        for lane in 0..LANES {
            if result[lane] > 0.0 && first_v[lane] >= 0.0 {
                let to_zero = sampled[lane] * (first_v[lane] / result[lane]);
                if to_zero < to_start[lane] {
                    to_start[lane] = to_zero;
                }
            }
        }
    }
    let range_seconds = range as f64 / 1000.0;
    let mut value = [0.0f64; LANES];
    for lane in 0..LANES {
        let threshold = average[lane] * 1.1;
        let mut interval = sampled[lane];
        interval += if to_start[lane] < threshold {
            to_start[lane]
        } else {
            average[lane] / 2.0
        };
        interval += if to_end[lane] < threshold {
            to_end[lane]
        } else {
            average[lane] / 2.0
        };
        let mut factor = interval / sampled[lane];
        if is_rate {
            factor /= range_seconds;
        }
        value[lane] = result[lane] * factor;
    }
    for (lane, window) in windows.iter().take(LANES).enumerate() {
        if valid[lane] {
            out.push((window.step, value[lane]));
        }
    }
}
