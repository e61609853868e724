//! Parsing through the `promql-parser` crate, adjusted to Prometheus 2.42's language:
//!
//! - `holt_winters` (2.x's name; the crate knows only 3.x's `double_exponential_smoothing`) is
//!   registered as an extra function with 2.42's signature.
//! - Functions that 2.42 does not have (`sort_by_label`, `limitk`, `info`, ...) and 3.x syntax
//!   (`or` inside label matchers) are rejected with 2.42's message.
//! - Errors carry a `line:column` position as Prometheus prints them (`1:5: parse error: ...`);
//!   the crate reports none, so the position is recovered from the message where possible.

use std::sync::Once;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, Function, register_extra_functions};

use crate::depth::{self, MAX_NESTING_DEPTH, ParsedExpr};
use crate::error::{Error, Result};

/// Every function Prometheus 2.42 knows.
pub const FUNCTIONS_2_42: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_sum",
    "histogram_fraction",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Aggregation operators of 2.42.
const AGGREGATORS_2_42: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

static REGISTER: Once = Once::new();

fn register_2x_functions() {
    REGISTER.call_once(|| {
        // Fails only if already registered by someone else, which is equally fine.
        let _ = register_extra_functions(vec![Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
}

/// Parses a PromQL 2.42 expression. This is the one entry point every component parses
/// PromQL through (the query API, rule files, tools): the text's nesting is bounded before the
/// parser sees it ([`crate::depth`]), deep queries are parsed on a stack sized for them, and
/// the tree drops without recursion.
pub fn parse(query: &str) -> Result<ParsedExpr> {
    let bound = depth::nesting_depth(query, MAX_NESTING_DEPTH);
    if bound > MAX_NESTING_DEPTH {
        return Err(Error::TooDeep {
            limit: MAX_NESTING_DEPTH,
        });
    }
    // Before the crate, which reads such numbers as seconds (and panics on huge ones).
    crate::bare_numbers::check(query)?;
    depth::with_stack_for(bound, || {
        register_2x_functions();
        let expr = crate_parse(query).map_err(|message| {
            let (position, message) = translate_error(query, &message);
            Error::Parse { position, message }
        })?;
        let expr = ParsedExpr::new(expr);
        // The text's bound is the parser's guide; the tree's own depth is what later walks see.
        let tree_depth = depth::expr_depth(&expr);
        if tree_depth > MAX_NESTING_DEPTH {
            return Err(Error::TooDeep {
                limit: MAX_NESTING_DEPTH,
            });
        }
        if tree_depth > bound {
            depth::with_stack_for(tree_depth, || validate(&expr, query))?;
        } else {
            validate(&expr, query)?;
        }
        Ok(expr)
    })
}

/// The crate's parser. It is third-party code: a panic in it must not take the process down.
/// A partial tree it drops on a syntax error is dropped recursively, which the caller's stack
/// (sized by [`depth::with_stack_for`]) holds.
fn crate_parse(query: &str) -> std::result::Result<Expr, String> {
    std::panic::catch_unwind(|| promql_parser::parser::parse(query))
        .unwrap_or_else(|_| Err("internal parser error".to_string()))
}

/// Rejects what 2.42 would not parse but the crate accepts.
fn validate(expr: &Expr, query: &str) -> Result<()> {
    match expr {
        Expr::Call(call) => {
            let name = call.func.name;
            if !FUNCTIONS_2_42.contains(&name) {
                return Err(Error::Parse {
                    position: position_of_call(query, name),
                    message: format!("unknown function with name {name:?}"),
                });
            }
            // Prometheus's checkAST: each argument checked (depth first), then its type.
            for (i, arg) in call.args.args.iter().enumerate() {
                validate(arg, query)?;
                let Some(want) = call.func.arg_types.get(i).or_else(|| {
                    (call.func.variadic != 0)
                        .then(|| call.func.arg_types.last())
                        .flatten()
                }) else {
                    break;
                };
                let got = arg.value_type();
                if got != *want {
                    return Err(Error::Parse {
                        position: argument_position(query, name, i),
                        message: format!(
                            "expected type {} in call to function {name:?}, got {}",
                            type_name(&want.to_string()),
                            type_name(&got.to_string())
                        ),
                    });
                }
            }
            Ok(())
        }
        Expr::Aggregate(agg) => {
            let op_string = agg.op.to_string();
            let op = op_string.as_str();
            if !AGGREGATORS_2_42.contains(&op) {
                return Err(Error::Parse {
                    position: position_of_call(query, op),
                    message: format!("unexpected identifier {op:?}"),
                });
            }
            validate(&agg.expr, query)?;
            agg.param.as_ref().map_or(Ok(()), |p| validate(p, query))
        }
        Expr::Binary(b) => {
            if b.modifier
                .as_ref()
                .is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return Err(Error::Parse {
                    position: "1:1".into(),
                    message: "fill modifiers are not supported by Prometheus 2.42".into(),
                });
            }
            validate(&b.lhs, query)?;
            validate(&b.rhs, query)
        }
        Expr::Unary(u) => validate(&u.expr, query),
        Expr::Paren(p) => validate(&p.expr, query),
        Expr::Subquery(s) => validate(&s.expr, query),
        Expr::VectorSelector(vs) => check_selector(vs, query),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs, query),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

fn check_selector(vs: &promql_parser::parser::VectorSelector, query: &str) -> Result<()> {
    if !vs.matchers.or_matchers.is_empty() {
        let position = query
            .find(" or ")
            .map(|i| offset_to_position(query, i + 1))
            .unwrap_or_else(|| "1:1".into());
        return Err(Error::Parse {
            position,
            message: "unexpected identifier \"or\" in label matching, expected \",\" or \"}\""
                .into(),
        });
    }
    Ok(())
}

/// `line:column` (1-based, columns in bytes like Go) of byte offset `offset`.
pub fn offset_to_position(query: &str, offset: usize) -> String {
    let before = query.get(..offset.min(query.len())).unwrap_or(query);
    let line = before.matches('\n').count() + 1;
    let col = match before.rfind('\n') {
        Some(nl) => offset - nl,
        None => offset + 1,
    };
    format!("{line}:{col}")
}

/// Position of the first call of `name` (an identifier followed by `(`).
fn position_of_call(query: &str, name: &str) -> String {
    let bytes = query.as_bytes();
    let mut search = 0;
    while let Some(rel) = query.get(search..).and_then(|s| s.find(name)) {
        let start = search + rel;
        let end = start + name.len();
        let boundary_before = start == 0
            || !bytes
                .get(start - 1)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let rest = query.get(end..).unwrap_or("").trim_start();
        if boundary_before && rest.starts_with('(') {
            return offset_to_position(query, start);
        }
        search = end;
    }
    "1:1".to_string()
}

/// Rewrites a message of the crate into Prometheus 2.42's wording and finds its position (the
/// crate reports none). Unrecognised messages keep their text and get a best-effort position.
fn translate_error(query: &str, message: &str) -> (String, String) {
    let end = offset_to_position(query, query.len());
    let quoted = |s: &str| s.replace('\'', "\"");
    if (message == "invalid promql query" || message.starts_with("invalid label matcher"))
        && let Some((offset, message)) = crate::syntax_error::locate(query)
    {
        return (offset_to_position(query, offset), message);
    }
    if message == "invalid promql query" {
        let trimmed = query.trim_end();
        let dangling = [
            "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "(", ",", " and",
            " or", " unless", " atan2",
        ];
        if trimmed.is_empty() || dangling.iter().any(|op| trimmed.ends_with(op)) {
            return (
                offset_to_position(
                    query,
                    trimmed.len() + usize::from(trimmed.len() < query.len()),
                ),
                "unexpected end of input".into(),
            );
        }
        return ("1:1".into(), "unexpected token in expression".into());
    }
    if message == "unexpected end of input inside brackets" {
        return (end, "unclosed left bracket".into());
    }
    if message.contains("end of input")
        || message.contains("unclosed")
        || message.contains("unterminated")
    {
        return (end, message.to_string());
    }
    if message.starts_with("unexpected second colon") {
        let second = query
            .char_indices()
            .filter(|&(_, c)| c == ':')
            .nth(1)
            .map(|(i, _)| offset_to_position(query, i))
            .unwrap_or(end);
        return (second, "unexpected colon ':'".into());
    }
    // "expected type matrix in call to function 'rate', got vector"
    if let Some(rest) = message.strip_prefix("expected type ")
        && let Some((want, rest)) = rest.split_once(" in call to function '")
        && let Some((func, got)) = rest.split_once("', got ")
    {
        let position = mismatched_argument_position(query, func, type_name(got));
        return (
            position,
            format!(
                "expected type {} in call to function \"{func}\", got {}",
                type_name(want),
                type_name(got)
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("expected type ")
        && let Some((want, got)) = rest.split_once(" in aggregation expression, got ")
    {
        let position = query
            .find('(')
            .map(|i| first_non_space(query, i + 1))
            .unwrap_or_else(|| "1:1".into());
        return (
            position,
            format!(
                "expected type {} in aggregation parameter, got {}",
                type_name(want),
                type_name(got)
            ),
        );
    }
    if message.starts_with("expected ") && message.contains(" argument(s) in call to '") {
        let func = message.split('\'').nth(1).unwrap_or("");
        return (position_of_call(query, func), quoted(message));
    }
    if let Some(name) = message.strip_prefix("unknown function with name ") {
        let name = name.trim_matches('\'');
        return (
            position_of_call(query, name),
            format!("unknown function with name {name:?}"),
        );
    }
    if message.starts_with("set operator '") {
        return ("1:1".into(), quoted(message));
    }
    if message.starts_with("comparisons between scalars") {
        let op = ["==", "!=", ">=", "<=", ">", "<"]
            .iter()
            .filter_map(|op| query.find(op))
            .min();
        return (
            op.map(|i| offset_to_position(query, i))
                .unwrap_or_else(|| "1:1".into()),
            message.to_string(),
        );
    }
    if message.starts_with("unexpected right parenthesis") {
        // Just past the first `)` that closes nothing (quoted strings skipped): Prometheus's
        // lexer reports it after emitting the parenthesis.
        let mut depth = 0usize;
        for (i, c) in unquoted(query) {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    return (offset_to_position(query, i + 1), message.to_string());
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
    }
    if message.starts_with("no grouping allowed for") {
        return ("1:1".into(), quoted(message));
    }
    if message.starts_with("ranges only allowed for vector selectors") {
        let position = query
            .rfind('[')
            .map(|i| offset_to_position(query, i))
            .unwrap_or_else(|| "1:1".into());
        return (position, message.to_string());
    }
    if message.starts_with("bool modifier can only be used on comparison operators") {
        // Prometheus points at the operator before `bool`.
        let position = query
            .find("bool")
            .and_then(|i| {
                let before = query.get(..i)?.trim_end();
                let op_len = before
                    .chars()
                    .rev()
                    .take_while(|c| !c.is_whitespace() && !c.is_alphanumeric() || c.is_alphabetic())
                    .count();
                Some(offset_to_position(
                    query,
                    before.len().saturating_sub(op_len),
                ))
            })
            .unwrap_or_else(|| "1:1".into());
        return (position, message.to_string());
    }
    // "unary expression only allowed on expressions of type scalar or vector, got: string"
    if let Some(got) = message
        .strip_prefix("unary expression only allowed on expressions of type scalar or vector, got")
    {
        let got = got.trim_start_matches(':').trim();
        return (
            "1:1".into(),
            format!(
                "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                type_name(got)
            ),
        );
    }
    if message.starts_with("metric name must not be set twice") {
        return (guess_position(query, message), quoted(message));
    }
    // "offset modifier must be preceded by an vector selector or matrix selector ..."
    let message = message.replace(
        "an vector selector or matrix selector",
        "an instant vector selector or range vector selector",
    );
    (guess_position(query, &message), message)
}

/// Prometheus's names of value types.
fn type_name(crate_name: &str) -> &str {
    match crate_name {
        "matrix" => "range vector",
        "vector" => "instant vector",
        other => other,
    }
}

/// Position of the first non-space character at or after byte `from`.
fn first_non_space(query: &str, from: usize) -> String {
    let rest = query.get(from..).unwrap_or("");
    let skipped = rest.len() - rest.trim_start().len();
    offset_to_position(query, from + skipped)
}

/// The characters of `text` outside quoted strings (with their byte offsets), so brackets
/// and commas inside string literals are not counted.
fn unquoted(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    text.char_indices().filter(move |&(_, c)| {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            return false;
        }
        if matches!(c, '"' | '\'' | '`') {
            quote = Some(c);
            return false;
        }
        true
    })
}

/// Byte ranges of the arguments of the first call of `func` (top-level commas split them;
/// brackets and quoted strings are skipped).
fn argument_spans(query: &str, func: &str) -> Vec<(usize, usize)> {
    let mut search = 0;
    while let Some(rel) = query.get(search..).and_then(|s| s.find(func)) {
        let after = search + rel + func.len();
        let rest = query.get(after..).unwrap_or("");
        let trimmed = rest.trim_start();
        if !trimmed.starts_with('(') {
            search = after;
            continue;
        }
        let open = after + (rest.len() - trimmed.len());
        let mut spans = Vec::new();
        let mut start = open + 1;
        let mut depth = 0usize;
        for (i, c) in unquoted(query.get(open + 1..).unwrap_or("")) {
            let at = open + 1 + i;
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => {
                        spans.push((start, at));
                        return spans;
                    }
                },
                ',' if depth == 0 => {
                    spans.push((start, at));
                    start = at + 1;
                }
                _ => {}
            }
        }
        spans.push((start, query.len()));
        return spans;
    }
    Vec::new()
}

/// Position of argument `index` of the first call of `func`.
fn argument_position(query: &str, func: &str, index: usize) -> String {
    match argument_spans(query, func).get(index) {
        Some(&(start, _)) => first_non_space(query, start),
        None => "1:1".to_string(),
    }
}

/// Position of the first argument of `func` whose own type is `got` (Prometheus's name), for
/// the crate's type errors, which do not say which argument.
fn mismatched_argument_position(query: &str, func: &str, got: &str) -> String {
    let spans = argument_spans(query, func);
    let index = spans.iter().position(|&(start, end)| {
        query.get(start..end).is_some_and(|text| {
            crate_parse(text).is_ok_and(|arg| type_name(&arg.value_type().to_string()) == got)
        })
    });
    argument_position(query, func, index.unwrap_or(0))
}

/// Best-effort position for a message quoting the offending text.
fn guess_position(query: &str, message: &str) -> String {
    for quote in ['\'', '"'] {
        let mut parts = message.split(quote);
        if let (Some(_), Some(token)) = (parts.next(), parts.next())
            && !token.is_empty()
            && let Some(i) = query.find(token)
        {
            return offset_to_position(query, i);
        }
    }
    "1:1".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holt_winters_parses() {
        assert!(parse("holt_winters(foo[5m], 0.5, 0.5)").is_ok());
    }

    #[test]
    fn functions_newer_than_2_42_are_rejected() {
        let err = parse("sort_by_label(foo, \"a\")")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("1:1: parse error: unknown function with name \"sort_by_label\"")
        );
        let err = parse("1 + double_exponential_smoothing(foo[5m], 0.5, 0.5)")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("1:5: parse error: unknown function with name \"double_exponential_smoothing\"")
        );
    }

    #[test]
    fn positions() {
        assert_eq!(offset_to_position("abc", 0), "1:1");
        assert_eq!(offset_to_position("a\nbc", 3), "2:2");
    }

    /// Messages observed from Prometheus 2.42's `/api/v1/query` for the same queries.
    #[test]
    fn errors_match_prometheus() {
        let cases = [
            ("sum(foo", "1:8: parse error: unclosed left parenthesis"),
            (
                "foo{",
                "1:5: parse error: unexpected end of input inside braces",
            ),
            ("foo[5m", "1:7: parse error: unclosed left bracket"),
            (
                "rate(foo)",
                "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            ("foo + ", "1:7: parse error: unexpected end of input"),
            (
                "1 > 2",
                "1:3: parse error: comparisons between scalars must use BOOL modifier",
            ),
            (
                "holt_winters(foo[5m], 0.5)",
                "1:1: parse error: expected 3 argument(s) in call to \"holt_winters\", got 2",
            ),
            (
                "abs(foo[5m])",
                "1:5: parse error: expected type instant vector in call to function \"abs\", got range vector",
            ),
            (
                "foo and 1",
                "1:1: parse error: set operator \"and\" not allowed in binary scalar expression",
            ),
            (
                "count_values(1, foo)",
                "1:14: parse error: expected type string in aggregation parameter, got scalar",
            ),
            (
                "topk(\"a\", foo)",
                "1:6: parse error: expected type scalar in aggregation parameter, got string",
            ),
            (
                "rate(foo[5m:1m:1m])",
                "1:15: parse error: unexpected colon ':'",
            ),
            (
                "unknownfunc(foo)",
                "1:1: parse error: unknown function with name \"unknownfunc\"",
            ),
            ("a\n+ b +", "2:6: parse error: unexpected end of input"),
            (
                "foo{a=\"b\" or c=\"d\"}",
                "1:11: parse error: unexpected identifier \"or\" in label matching, expected \",\" or \"}\"",
            ),
            (
                "ln(-1)",
                "1:4: parse error: expected type instant vector in call to function \"ln\", got scalar",
            ),
            (
                "label_replace(x, \"a\", 1, \"c\", \"d\")",
                "1:23: parse error: expected type string in call to function \"label_replace\", got scalar",
            ),
            (
                "time() offset 5m",
                "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
            ),
            ("x))", "1:3: parse error: unexpected right parenthesis ')'"),
            (
                "label_join(x, \"a,)\", 1, \"b\")",
                "1:22: parse error: expected type string in call to function \"label_join\", got scalar",
            ),
            (
                "x + bool y",
                "1:3: parse error: bool modifier can only be used on comparison operators",
            ),
            (
                "x and bool y",
                "1:3: parse error: bool modifier can only be used on comparison operators",
            ),
            (
                "rate(x[5m])[1m]",
                "1:12: parse error: ranges only allowed for vector selectors",
            ),
            (
                "x or ignoring(a) group_left y",
                "1:1: parse error: no grouping allowed for \"or\" operation",
            ),
            (
                "foo{a}",
                "1:6: parse error: unexpected \"}\" in label matching, expected label matching operator",
            ),
            (
                "-\"a\"",
                "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
            ),
            (
                "foo{__name__=\"bar\"}",
                "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"",
            ),
            (
                "{__name__=~\".*\"}",
                "1:1: parse error: vector selector must contain at least one non-empty matcher",
            ),
        ];
        for (query, want) in cases {
            let got = parse(query).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(want), "{query}");
        }
    }

    #[test]
    fn syntax_errors_are_parse_errors() {
        assert!(matches!(parse("sum(foo"), Err(Error::Parse { .. })));
    }
}
