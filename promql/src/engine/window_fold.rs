//! `avg_over_time`, `sum_over_time`, `stdvar_over_time` and `stddev_over_time`, several
//! windows at a time.
//!
//! These follow Prometheus 2.42 operation by operation: Kahan-compensated incremental sums
//! whose result depends on the order of the window's samples from its first one, so a window
//! cannot slide from one step to the next and each window is one serial chain of dependent
//! floating-point operations (two divisions per sample for the mean). One chain at a time
//! leaves the core waiting on each result; folding [`LANES`] windows in lockstep keeps that
//! many independent chains in flight, which the core overlaps. Every window still sees the same
//! operations in the same order, so results are identical to the bit (tested against the
//! one-window fold, which is the reference implementation).

use super::window::kahan_sum_inc;
use crate::value::Point;

#[cfg(target_arch = "x86_64")]
mod avx;

/// Windows folded together.
pub(super) const LANES: usize = 4;

/// One running fold over a window's values.
pub(super) trait Fold {
    type State: Copy + Default;
    fn step(state: &mut Self::State, v: f64);
    fn finish(state: Self::State) -> f64;
}

/// 2.42's `avg_over_time`: Kahan-compensated incremental mean with infinity handling.
pub(super) struct Avg;

#[derive(Clone, Copy, Default)]
pub(super) struct AvgState {
    mean: f64,
    count: f64,
    c: f64,
}

impl Fold for Avg {
    type State = AvgState;

    #[inline(always)]
    fn step(s: &mut AvgState, v: f64) {
        s.count += 1.0;
        if s.mean.is_infinite() {
            if v.is_infinite() && (s.mean > 0.0) == (v > 0.0) {
                return;
            }
            if !v.is_infinite() && !v.is_nan() {
                return;
            }
        }
        (s.mean, s.c) = kahan_sum_inc(v / s.count - s.mean / s.count, s.mean, s.c);
    }

    fn finish(s: AvgState) -> f64 {
        if s.mean.is_infinite() {
            s.mean
        } else {
            s.mean + s.c
        }
    }
}

/// 2.42's `sum_over_time`: a Kahan-compensated sum.
pub(super) struct Sum;

#[derive(Clone, Copy, Default)]
pub(super) struct SumState {
    sum: f64,
    c: f64,
}

impl Fold for Sum {
    type State = SumState;

    #[inline(always)]
    fn step(s: &mut SumState, v: f64) {
        (s.sum, s.c) = kahan_sum_inc(v, s.sum, s.c);
    }

    fn finish(s: SumState) -> f64 {
        if s.sum.is_infinite() {
            s.sum
        } else {
            s.sum + s.c
        }
    }
}

/// 2.42's `stdvar_over_time`: Welford variance with Kahan-compensated accumulators.
pub(super) struct Stdvar;

/// `stddev_over_time`: the square root of [`Stdvar`].
pub(super) struct Stddev;

#[derive(Clone, Copy, Default)]
pub(super) struct VarState {
    count: f64,
    mean: f64,
    c_mean: f64,
    aux: f64,
    c_aux: f64,
}

impl Fold for Stdvar {
    type State = VarState;

    #[inline(always)]
    fn step(s: &mut VarState, v: f64) {
        s.count += 1.0;
        let delta = v - (s.mean + s.c_mean);
        (s.mean, s.c_mean) = kahan_sum_inc(delta / s.count, s.mean, s.c_mean);
        (s.aux, s.c_aux) = kahan_sum_inc(delta * (v - (s.mean + s.c_mean)), s.aux, s.c_aux);
    }

    fn finish(s: VarState) -> f64 {
        (s.aux + s.c_aux) / s.count
    }
}

impl Fold for Stddev {
    type State = VarState;

    #[inline(always)]
    fn step(s: &mut VarState, v: f64) {
        Stdvar::step(s, v);
    }

    fn finish(s: VarState) -> f64 {
        Stdvar::finish(s).sqrt()
    }
}

/// The fold of one window: the reference every lane must equal.
pub(super) fn fold<F: Fold>(w: &[Point]) -> f64 {
    let mut state = F::State::default();
    for p in w {
        F::step(&mut state, p.v);
    }
    F::finish(state)
}

/// The folds of [`LANES`] windows, computed in lockstep.
fn fold_lanes<F: Fold>(windows: &[&[Point]; LANES]) -> [f64; LANES] {
    let mut states = [F::State::default(); LANES];
    let common = windows.iter().map(|w| w.len()).min().unwrap_or(0);
    let heads: [&[Point]; LANES] = windows.map(|w| w.get(..common).unwrap_or(&[]));
    for k in 0..common {
        for (state, w) in states.iter_mut().zip(&heads) {
            if let Some(p) = w.get(k) {
                F::step(state, p.v);
            }
        }
    }
    for (state, w) in states.iter_mut().zip(windows) {
        for p in w.get(common..).unwrap_or(&[]) {
            F::step(state, p.v);
        }
    }
    states.map(F::finish)
}

/// The fold of every window in `windows` (`(step, window)` pairs), in order.
pub(super) fn fold_all<F: Fold>(windows: &[(usize, &[Point])]) -> Vec<(usize, f64)> {
    let mut out = Vec::with_capacity(windows.len());
    let mut groups = windows.chunks_exact(LANES);
    for group in &mut groups {
        let lanes: [&[Point]; LANES] = std::array::from_fn(|j| {
            let window: &[Point] = group.get(j).map_or(&[], |g| g.1);
            window
        });
        let values = fold_lanes::<F>(&lanes);
        out.extend(group.iter().map(|g| g.0).zip(values));
    }
    for &(step, w) in groups.remainder() {
        out.push((step, fold::<F>(w)));
    }
    out
}

/// [`fold_all`] for [`Avg`]: eight windows in two AVX vectors when the CPU has AVX (see
/// [`avx`]: the divisions bound the scalar lanes), the scalar lanes otherwise.
pub(super) fn fold_all_avg(windows: &[(usize, &[Point])]) -> Vec<(usize, f64)> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        #[expect(
            unsafe_code,
            reason = "calling an AVX function needs the CPU check just made"
        )]
        // SAFETY: `fold_all_avg` only needs AVX, which the CPU was just found to have.
        return unsafe { avx::fold_all_avg(windows) };
    }
    fold_all::<Avg>(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows of varied lengths and values, specials among them.
    fn windows() -> Vec<Vec<Point>> {
        let specials = [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e308,
            -1e308,
            0.0,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        (0..203)
            .map(|i| {
                let len = (next() % 60) as usize + usize::from(i % 5 != 0);
                (0..len)
                    .map(|k| {
                        let r = next();
                        let v = if r % 23 == 0 {
                            specials[(r / 23 % 6) as usize]
                        } else {
                            (r % 1_000_000) as f64 / 7.0 - 50_000.0
                        };
                        Point { t: k as i64, v }
                    })
                    .collect()
            })
            .collect()
    }

    fn same_bits<F: Fold>() {
        let all = windows();
        let pairs: Vec<(usize, &[Point])> = all.iter().map(Vec::as_slice).enumerate().collect();
        let folded = fold_all::<F>(&pairs);
        assert_eq!(folded.len(), pairs.len());
        for ((step, got), (want_step, w)) in folded.iter().zip(&pairs) {
            assert_eq!(step, want_step);
            let want = fold::<F>(w);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "window {step}: {got} != {want}"
            );
        }
    }

    /// Windows that walk every branch of 2.42's infinity handling.
    fn infinite_windows() -> Vec<Vec<Point>> {
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        let cases: [&[f64]; 10] = [
            &[1.0, inf, inf, 2.0],
            &[1.0, -inf, -inf, -3.0],
            &[inf, -inf, 5.0],
            &[-inf, inf, inf],
            &[inf, nan, 1.0],
            &[2.0, nan, inf],
            &[inf, 4.0, -inf, 1.0],
            &[1e308, 1e308, 1e308, -1e308],
            &[-inf, -2.0, nan],
            &[0.0, inf, 0.0, inf, -1.0],
        ];
        (0..40)
            .map(|i| {
                let case = cases[(i * 7) % cases.len()];
                case.iter()
                    .enumerate()
                    .map(|(t, &v)| Point { t: t as i64, v })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn avx_average_equals_one_window_at_a_time_to_the_bit() {
        let mut all = windows();
        all.extend(infinite_windows());
        // Every group boundary and remainder length (the AVX path takes eight at a time).
        for skip in 0..9 {
            let pairs: Vec<(usize, &[Point])> = all
                .iter()
                .skip(skip)
                .map(Vec::as_slice)
                .enumerate()
                .collect();
            let folded = fold_all_avg(&pairs);
            assert_eq!(folded.len(), pairs.len());
            for ((step, got), (want_step, w)) in folded.iter().zip(&pairs) {
                assert_eq!(step, want_step);
                let want = fold::<Avg>(w);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "window {step}: {got} != {want}"
                );
            }
        }
    }

    #[test]
    fn lanes_equal_one_window_at_a_time_to_the_bit() {
        same_bits::<Avg>();
        same_bits::<Sum>();
        same_bits::<Stdvar>();
        same_bits::<Stddev>();
    }

    #[test]
    fn folds_follow_prometheus() {
        let w: Vec<Point> = [1.0, 2.0, 3.0, 4.0]
            .iter()
            .enumerate()
            .map(|(t, &v)| Point { t: t as i64, v })
            .collect();
        assert_eq!(fold::<Avg>(&w), 2.5);
        assert_eq!(fold::<Sum>(&w), 10.0);
        assert_eq!(fold::<Stdvar>(&w), 1.25);
        let inf = [
            Point {
                t: 0,
                v: f64::INFINITY,
            },
            Point { t: 1, v: 1.0 },
        ];
        assert_eq!(fold::<Avg>(&inf), f64::INFINITY);
    }
}
