//! `avg_over_time` with AVX: eight windows folded in two 4-wide vectors.
//!
//! The mean takes two divisions per sample ([`super::Avg`]), and the scalar lanes are bound by
//! the divider's throughput, one double per division. AVX divides four doubles per
//! instruction at about the same cost, so eight windows in two vectors keep the divider and the
//! dependency chains (division, then the Kahan update) busy at once. Each lane still performs
//! 2.42's operations in 2.42's order: IEEE division, subtraction and addition are the same in a
//! vector lane as in a scalar register (no fused multiply-add is involved), the Kahan branch
//! and the infinity checks become per-lane masks with the same predicates (ordered compares, so
//! NaN takes the branches it takes in Go). Results are identical to the bit; the tests compare
//! them with the one-window reference.
//!
//! Only built for x86_64, and only called when the CPU has AVX ([`super::fold_all_avg`]).

use std::arch::x86_64::{
    __m256d, _CMP_EQ_OQ, _CMP_GE_OQ, _CMP_GT_OQ, _CMP_TRUE_UQ, _CMP_UNORD_Q, _mm_cvtsd_f64,
    _mm_unpackhi_pd, _mm256_add_pd, _mm256_and_pd, _mm256_andnot_pd, _mm256_blendv_pd,
    _mm256_castpd256_pd128, _mm256_cmp_pd, _mm256_div_pd, _mm256_extractf128_pd, _mm256_or_pd,
    _mm256_set_pd, _mm256_set1_pd, _mm256_setzero_pd, _mm256_sub_pd, _mm256_xor_pd,
};

use super::{Avg, AvgState, Fold};
use crate::value::Point;

/// Windows per group: two vectors of four.
const WIDTH: usize = 8;

/// Four running means, one per lane.
#[derive(Clone, Copy)]
struct Lanes {
    mean: __m256d,
    count: __m256d,
    c: __m256d,
}

impl Lanes {
    #[target_feature(enable = "avx")]
    fn new() -> Self {
        Lanes {
            mean: _mm256_setzero_pd(),
            count: _mm256_setzero_pd(),
            c: _mm256_setzero_pd(),
        }
    }

    /// [`Avg::step`] in every lane.
    #[target_feature(enable = "avx")]
    #[inline]
    fn step(&mut self, v: __m256d) {
        let sign = _mm256_set1_pd(-0.0);
        let infinity = _mm256_set1_pd(f64::INFINITY);
        let zero = _mm256_setzero_pd();
        self.count = _mm256_add_pd(self.count, _mm256_set1_pd(1.0));
        // A lane whose mean is infinite keeps it when `v` is the same infinity or a number.
        let mean_inf = _mm256_cmp_pd::<_CMP_EQ_OQ>(_mm256_andnot_pd(sign, self.mean), infinity);
        let v_inf = _mm256_cmp_pd::<_CMP_EQ_OQ>(_mm256_andnot_pd(sign, v), infinity);
        let v_nan = _mm256_cmp_pd::<_CMP_UNORD_Q>(v, v);
        let signs_differ = _mm256_xor_pd(
            _mm256_cmp_pd::<_CMP_GT_OQ>(self.mean, zero),
            _mm256_cmp_pd::<_CMP_GT_OQ>(v, zero),
        );
        let same_infinity = _mm256_andnot_pd(signs_differ, v_inf);
        let all = _mm256_cmp_pd::<_CMP_TRUE_UQ>(zero, zero);
        let number = _mm256_andnot_pd(_mm256_or_pd(v_inf, v_nan), all);
        let keep = _mm256_and_pd(mean_inf, _mm256_or_pd(same_infinity, number));
        // kahan_sum_inc(v / count - mean / count, mean, c)
        let inc = _mm256_sub_pd(
            _mm256_div_pd(v, self.count),
            _mm256_div_pd(self.mean, self.count),
        );
        let t = _mm256_add_pd(self.mean, inc);
        let mean_larger = _mm256_cmp_pd::<_CMP_GE_OQ>(
            _mm256_andnot_pd(sign, self.mean),
            _mm256_andnot_pd(sign, inc),
        );
        // |mean| >= |inc|: c + ((mean - t) + inc), else c + ((inc - t) + mean).
        let first = _mm256_blendv_pd(inc, self.mean, mean_larger);
        let second = _mm256_blendv_pd(self.mean, inc, mean_larger);
        let c = _mm256_add_pd(self.c, _mm256_add_pd(_mm256_sub_pd(first, t), second));
        self.mean = _mm256_blendv_pd(t, self.mean, keep);
        self.c = _mm256_blendv_pd(c, self.c, keep);
    }

    /// The four lanes as scalar states.
    #[target_feature(enable = "avx")]
    fn states(self) -> [AvgState; 4] {
        let mean = lanes(self.mean);
        let count = lanes(self.count);
        let c = lanes(self.c);
        std::array::from_fn(|j| AvgState {
            mean: mean[j],
            count: count[j],
            c: c[j],
        })
    }
}

/// The four doubles of `x`, lane 0 first.
#[target_feature(enable = "avx")]
fn lanes(x: __m256d) -> [f64; 4] {
    let low = _mm256_castpd256_pd128(x);
    let high = _mm256_extractf128_pd::<1>(x);
    [
        _mm_cvtsd_f64(low),
        _mm_cvtsd_f64(_mm_unpackhi_pd(low, low)),
        _mm_cvtsd_f64(high),
        _mm_cvtsd_f64(_mm_unpackhi_pd(high, high)),
    ]
}

/// The value of sample `k` of `w` (inside the common length, so always present).
#[inline(always)]
fn value(w: &[Point], k: usize) -> f64 {
    w.get(k).map_or(0.0, |p| p.v)
}

/// The averages of eight windows.
#[target_feature(enable = "avx")]
fn fold_group(windows: &[&[Point]; WIDTH]) -> [f64; WIDTH] {
    let common = windows.iter().map(|w| w.len()).min().unwrap_or(0);
    let w: [&[Point]; WIDTH] = windows.map(|w| w.get(..common).unwrap_or(&[]));
    let mut low = Lanes::new();
    let mut high = Lanes::new();
    for k in 0..common {
        low.step(_mm256_set_pd(
            value(w[3], k),
            value(w[2], k),
            value(w[1], k),
            value(w[0], k),
        ));
        high.step(_mm256_set_pd(
            value(w[7], k),
            value(w[6], k),
            value(w[5], k),
            value(w[4], k),
        ));
    }
    let [a, b, c, d] = low.states();
    let [e, f, g, h] = high.states();
    let mut states = [a, b, c, d, e, f, g, h];
    // The windows' last few samples (they differ in length by a sample or two), lane by lane.
    for (state, window) in states.iter_mut().zip(windows) {
        for p in window.get(common..).unwrap_or(&[]) {
            Avg::step(state, p.v);
        }
    }
    states.map(Avg::finish)
}

/// [`super::fold_all`] for [`Avg`], eight windows at a time.
#[target_feature(enable = "avx")]
pub(super) fn fold_all_avg(windows: &[(usize, &[Point])]) -> Vec<(usize, f64)> {
    let mut out = Vec::with_capacity(windows.len());
    let mut groups = windows.chunks_exact(WIDTH);
    for group in &mut groups {
        let lanes: [&[Point]; WIDTH] = std::array::from_fn(|j| {
            let window: &[Point] = group.get(j).map_or(&[], |g| g.1);
            window
        });
        let values = fold_group(&lanes);
        out.extend(group.iter().map(|g| g.0).zip(values));
    }
    out.extend(super::fold_all::<Avg>(groups.remainder()));
    out
}
