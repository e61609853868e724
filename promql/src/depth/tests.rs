use super::*;
use crate::parser::parse;

fn nested(open: &str, leaf: &str, close: &str, n: usize) -> String {
    format!("{}{leaf}{}", open.repeat(n), close.repeat(n))
}

#[test]
fn bound_covers_the_tree_depth() {
    let queries = [
        "1",
        "foo",
        "-foo",
        "-1",
        "sum by (a) (rate(foo{a=\"(((\"}[5m]))",
        "a + b * c / d",
        "max_over_time(max_over_time(up[5m:1m])[5m:1m])",
        "topk(3, sum(rate(x[1m])) by (job)) or on(job) vector(1)",
        "label_replace(up offset -5m, \"a\", \"$1\", \"b\", \"(.*)\")",
        "-(-(-(1)))",
        "1 + -2 - -(3) ^ 4",
        "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m]))) # comment ((((",
        "x @ start() + y @ 100",
        "1e-5 * foo",
    ];
    for query in queries {
        let tree = parse(query).map_err(|e| e.to_string());
        let tree_depth = tree.as_ref().map(|t| expr_depth(t)).unwrap_or(0);
        let bound = nesting_depth(query, usize::MAX);
        assert!(tree.is_ok(), "{query}: {tree:?}");
        assert!(
            bound >= tree_depth,
            "{query}: bound {bound} < depth {tree_depth}"
        );
        assert!(
            bound <= tree_depth + 3,
            "{query}: bound {bound} far above {tree_depth}"
        );
    }
}

#[test]
fn folded_signs_do_not_count() {
    assert_eq!(nesting_depth(&format!("{}1", "-".repeat(100_000)), 10), 0);
    assert!(nesting_depth(&format!("{}foo", "-".repeat(100)), 1000) >= 100);
}

#[test]
fn scan_stops_early_on_huge_input() {
    let query = "(".repeat(16 << 20);
    let bound = nesting_depth(&query, MAX_NESTING_DEPTH);
    assert!(bound > MAX_NESTING_DEPTH && bound < MAX_NESTING_DEPTH + 10);
}

/// Every hostile shape at the limit parses, evaluates and drops; past it each is refused
/// before parsing with the limit named. These run on the test harness's small thread stacks.
#[test]
fn deep_queries_answer_or_are_refused() {
    let storage = crate::MemoryStorage::default();
    let engine = crate::Engine::default();
    let shapes: [(&str, &str, &str, &str); 6] = [
        ("parentheses", "(", "1", ")"),
        ("unary minus", "-(", "1", ")"),
        ("function calls", "abs(", "vector(1)", ")"),
        ("subqueries", "max_over_time(", "vector(1)", "[1m:1m])"),
        ("aggregations", "sum(", "vector(1)", ")"),
        ("unary on vectors", "-", "vector(1)", ""),
    ];
    for (name, open, leaf, close) in shapes {
        // 2 levels per repetition for subqueries (the call and the subquery).
        let per = if name == "subqueries" { 2 } else { 1 };
        let ok = nested(open, leaf, close, 2_000 / per);
        let answer = engine.instant_query(&storage, &ok, 1_000);
        assert!(answer.is_ok(), "{name}: {:?}", answer.err());
        let refused = nested(open, leaf, close, MAX_NESTING_DEPTH + 1);
        let err = engine.instant_query(&storage, &refused, 1_000).err();
        assert!(
            matches!(
                err,
                Some(crate::Error::TooDeep {
                    limit: MAX_NESTING_DEPTH
                })
            ),
            "{name}: {err:?}"
        );
    }
    let chain = vec!["1"; 2_000].join(" + ");
    let answer = engine
        .instant_query(&storage, &chain, 1_000)
        .map(|r| r.value);
    assert!(
        matches!(answer, Ok(crate::Value::Scalar { v, .. }) if v == 2000.0),
        "{answer:?}"
    );
    let chain = vec!["1"; 50_000].join("+");
    assert!(matches!(
        engine.instant_query(&storage, &chain, 1_000),
        Err(crate::Error::TooDeep { .. })
    ));
}

#[test]
fn deep_tree_drops_without_recursion() {
    // Built directly (no parse), 1M levels: a recursive drop would need far more than the
    // test thread's stack.
    let mut expr = Expr::from(1.0);
    for _ in 0..1_000_000 {
        expr = Expr::Paren(promql_parser::parser::ParenExpr {
            expr: Box::new(expr),
        });
    }
    let tree = ParsedExpr::new(expr);
    assert_eq!(expr_depth(&tree), 1_000_000);
    drop(tree);
}

#[test]
fn deep_stack_propagates_results_and_errors() {
    assert_eq!(with_stack_for(100_000, || Ok(7)).ok(), Some(7));
    let err = with_stack_for(100_000, || -> Result<()> {
        Err(Error::TooDeep { limit: 1 })
    });
    assert!(matches!(err, Err(Error::TooDeep { limit: 1 })));
}
