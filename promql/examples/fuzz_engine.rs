//! Robustness run: parses and evaluates random PromQL expressions (instant and range queries at
//! random times) over a small store for a given number of seconds, and fails if anything
//! panics. Usage: `fuzz_engine [SECONDS=600] [SEED]`.

use std::time::{Duration, Instant};

use strata_promql::fuzzing::{Rng, random_query, sample_storage};
use strata_promql::{Engine, EngineOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(600);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let storage = sample_storage();
    let engine = Engine::new(EngineOptions {
        max_samples: 200_000,
        timeout: Duration::from_secs(5),
        ..Default::default()
    });
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut ok, mut errors) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        let depth = 1 + rng.below(4);
        let query = random_query(&mut rng, depth);
        let t = (rng.below(4000) as i64 - 500) * 1000;
        let began = Instant::now();
        let result = if rng.below(2) == 0 {
            engine.instant_query(&storage, &query, t)
        } else {
            let step = [1_000, 15_000, 60_000, 7_000][rng.below(4)];
            engine.range_query(&storage, &query, t, t + step * rng.below(200) as i64, step)
        };
        runs += 1;
        if began.elapsed() > Duration::from_secs(1) {
            eprintln!("slow ({:?}): {query} at {t}", began.elapsed());
        }
        match result {
            Ok(_) => ok += 1,
            Err(_) => errors += 1,
        }
    }
    println!(
        "{runs} queries without a panic ({ok} answered, {errors} rejected with errors), seed {seed}"
    );
}
