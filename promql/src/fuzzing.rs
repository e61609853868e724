//! Random PromQL expressions for robustness testing (the fuzz example and the no-panic test).
//! Expressions are built from the grammar, mostly well-typed but with deliberate type errors,
//! odd numbers (NaN, ±Inf, huge), extreme offsets and `@` times, so both the parser and every
//! evaluator path are exercised. A tiny xorshift generator keeps this dependency-free.

/// A small deterministic pseudo-random generator.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced by a fixed non-zero seed).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items.get(self.below(items.len())).copied().unwrap_or("")
    }
}

const METRICS: &[&str] = &[
    "a",
    "b",
    "c_total",
    "h_bucket",
    "nonexistent",
    "{__name__=~\"a|b\"}",
    "{job=\"x\"}",
];
const RANGES: &[&str] = &["1s", "15s", "1m", "5m", "1h", "0s", "100y"];
const NUMBERS: &[&str] = &[
    "0", "1", "-1", "0.5", "2", "NaN", "Inf", "-Inf", "1e308", "-0", "0x10", "100",
];
const FUNCS_VEC: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "exp",
    "sqrt",
    "ln",
    "log2",
    "log10",
    "sgn",
    "sin",
    "acosh",
    "deg",
    "rad",
    "timestamp",
    "sort",
    "sort_desc",
    "absent",
    "scalar",
    "minute",
    "year",
    "days_in_month",
    "histogram_count",
];
const FUNCS_RANGE: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
];
const AGGS: &[&str] = &[
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
];
const BINOPS: &[&str] = &[
    "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=", "== bool", "> bool",
    "and", "or", "unless",
];

/// A random query string of nesting depth at most `depth`.
pub fn random_query(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return match rng.below(4) {
            0 => rng.pick(NUMBERS).to_string(),
            _ => selector(rng),
        };
    }
    match rng.below(14) {
        0 => rng.pick(NUMBERS).to_string(),
        1 | 2 => selector(rng),
        3 => format!("{}({})", rng.pick(FUNCS_VEC), random_query(rng, depth - 1)),
        4 => format!("{}({})", rng.pick(FUNCS_RANGE), range_arg(rng, depth)),
        5 => {
            let by = match rng.below(3) {
                0 => String::new(),
                1 => " by (job, le)".to_string(),
                _ => " without (job)".to_string(),
            };
            format!("{}{by} ({})", rng.pick(AGGS), random_query(rng, depth - 1))
        }
        6 => format!(
            "{}({}, {})",
            rng.pick(&["topk", "bottomk", "quantile"]),
            rng.pick(NUMBERS),
            random_query(rng, depth - 1)
        ),
        7 => format!(
            "count_values(\"{}\", {})",
            rng.pick(&["v", "__name__", "job", "1bad"]),
            random_query(rng, depth - 1)
        ),
        8 | 9 => {
            let modifier = match rng.below(5) {
                0 => " on(job)",
                1 => " ignoring(job)",
                2 => " on(job) group_left(le)",
                3 => " ignoring(le) group_right",
                _ => "",
            };
            format!(
                "({}) {}{modifier} ({})",
                random_query(rng, depth - 1),
                rng.pick(BINOPS),
                random_query(rng, depth - 1)
            )
        }
        10 => format!(
            "histogram_quantile({}, {})",
            rng.pick(NUMBERS),
            random_query(rng, depth - 1)
        ),
        11 => format!(
            "label_replace({}, \"{}\", \"$1-x\", \"job\", \"{}\")",
            random_query(rng, depth - 1),
            rng.pick(&["dst", "__name__", "job", "bad-name"]),
            rng.pick(&["(.*)", "x\\d+", "(", ".{2}", "a{b}"])
        ),
        12 => format!("-{}", random_query(rng, depth - 1)),
        _ => format!(
            "{}(({})[{}:{}])",
            rng.pick(FUNCS_RANGE),
            random_query(rng, depth - 1),
            rng.pick(RANGES),
            rng.pick(&["", "10s", "1m", "7s"])
        ),
    }
}

fn selector(rng: &mut Rng) -> String {
    let mut s = rng.pick(METRICS).to_string();
    if rng.below(4) == 0 {
        s.push_str(&format!(
            " offset {}{}",
            if rng.below(2) == 0 { "-" } else { "" },
            rng.pick(RANGES)
        ));
    }
    if rng.below(5) == 0 {
        s.push_str(&format!(
            " @ {}",
            rng.pick(&["0", "100", "-1e6", "start()", "end()", "1e12"])
        ));
    }
    s
}

fn range_arg(rng: &mut Rng, depth: usize) -> String {
    if rng.below(3) == 0 {
        format!(
            "({})[{}:{}]",
            random_query(rng, depth.saturating_sub(1)),
            rng.pick(RANGES),
            rng.pick(&["", "10s", "1m"])
        )
    } else {
        format!(
            "{}[{}]",
            rng.pick(&["a", "b", "c_total", "h_bucket", "nonexistent"]),
            rng.pick(RANGES)
        )
    }
}

/// A store with a few counters, gauges, classic histogram buckets, NaN/Inf values and stale
/// markers, for the random queries to run over.
pub fn sample_storage() -> crate::storage::memory::MemoryStorage {
    use crate::labels::Labels;
    let mut s = crate::storage::memory::MemoryStorage::new();
    for job in ["x", "y"] {
        for (name, kind) in [("a", 0), ("b", 1), ("c_total", 2)] {
            let l = Labels::from_pairs([("__name__", name), ("job", job)]);
            for t in 0..200i64 {
                let v = match (kind, t % 37) {
                    (_, 5) => f64::NAN,
                    (_, 11) => crate::value::stale_nan(),
                    (1, 13) => f64::INFINITY,
                    (0, _) => (t % 17) as f64 - 8.0,
                    (1, _) => t as f64 * 0.5,
                    _ => (t % 50) as f64 * 3.0,
                };
                s.append(&l, t * 15_000, v);
            }
        }
        for le in ["0.1", "1", "+Inf", "bad"] {
            let l = Labels::from_pairs([("__name__", "h_bucket"), ("job", job), ("le", le)]);
            for t in 0..200i64 {
                s.append(
                    &l,
                    t * 15_000,
                    t as f64 * if le == "0.1" { 1.0 } else { 2.0 },
                );
            }
        }
    }
    s
}
