//! Random queries (from the crate's grammar-based generator) and random bytes must never panic
//! the parser or the engine; they either answer or return an error. The long-running version is
//! `cargo run --release --example fuzz_engine -- 600`.

use strata_promql::fuzzing::{Rng, random_query, sample_storage};
use strata_promql::{Engine, EngineOptions};

#[test]
fn random_queries_do_not_panic() {
    let storage = sample_storage();
    let engine = Engine::new(EngineOptions {
        max_samples: 200_000,
        ..Default::default()
    });
    let mut rng = Rng::new(7);
    let mut answered = 0;
    for _ in 0..1500 {
        let depth = 1 + rng.below(3);
        let query = random_query(&mut rng, depth);
        let t = (rng.below(3000) as i64 - 300) * 1000;
        if engine.instant_query(&storage, &query, t).is_ok() {
            answered += 1;
        }
        let _ = engine.range_query(&storage, &query, t, t + 600_000, 60_000);
    }
    // The generator is mostly well-typed: a fair share must evaluate successfully.
    assert!(answered > 300, "only {answered} queries answered");
}

#[test]
fn random_bytes_do_not_panic() {
    let storage = sample_storage();
    let engine = Engine::default();
    let mut rng = Rng::new(11);
    let alphabet: Vec<char> =
        "abc_{}()[]=~!\"'`,:@+-*/%^<>.0123456789 offsetbywithoutonignoringgroup_leftsumrate\\\n"
            .chars()
            .collect();
    for _ in 0..3000 {
        let len = rng.below(40);
        let q: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let _ = engine.instant_query(&storage, &q, 1_000_000);
    }
}
