//! Bounds on how deeply a query nests, so that no input can overflow a stack.
//!
//! Every layer that walks a syntax tree recurses: the `promql-parser` crate's type checks (its
//! `value_type` follows parentheses, unary and binary operators), our validation, the
//! evaluator, and the compiler-generated `Drop` of a `Box`-nested tree. Prometheus, on Go's
//! growable stacks, answers 10,000 nested parentheses and slows down quadratically past that
//! (100,000 levels hang its parser); a fixed-size Rust stack would abort the whole process.
//! So:
//!
//! - [`nesting_depth`] scans the text before the parser sees it and bounds the depth of the tree
//!   it would build (groups, calls, subqueries and operator chains all count); a query over
//!   [`MAX_NESTING_DEPTH`] is refused with a clear error instead of being parsed.
//! - [`with_stack_for`] runs parsing and evaluation of a deep query on a thread whose stack is
//!   sized for its depth (shallow queries, nearly all of them, stay on the calling thread).
//! - [`ParsedExpr`] owns a parsed tree and takes it apart iteratively when dropped.

use std::ops::Deref;

use promql_parser::parser::Expr;

use crate::error::{Error, Result};

/// Deepest syntax tree accepted: 10,000 levels, enough for every query Prometheus 2.42 answers
/// in reasonable time (it takes seconds at this depth, and hangs at ten times it).
pub const MAX_NESTING_DEPTH: usize = 10_000;

/// Trees up to this depth are parsed and evaluated on the caller's stack.
const INLINE_DEPTH: usize = 64;

/// Stack reserved per level of nesting on a deep-query thread. The deepest per-level use is
/// the evaluator's (a binary operator node: `eval` -> `eval_node` -> `eval_binary` -> `eval`),
/// measured at about 14 KiB in unoptimised builds; this leaves room for that and more.
const STACK_PER_LEVEL: usize = 32 << 10;

/// Stack of a deep-query thread on top of the per-level share (the leaves' own work).
const STACK_BASE: usize = 8 << 20;

/// An upper bound of the depth of the syntax tree `query` parses into, from its text alone:
/// each group (`(...)`, a call's arguments, a subquery or range `[...]`) adds a level, and each
/// operator adds one to the expression it is part of (operator chains build trees as deep as
/// they are long). Unary signs directly before a number do not count (the parser folds them
/// into the number). String literals, comments and label matchers are skipped.
///
/// Stops scanning once the bound passes `stop_above` and returns a value above it, so that a
/// huge hostile query costs one partial pass and memory bounded by `stop_above`.
pub fn nesting_depth(query: &str, stop_above: usize) -> usize {
    Scanner::new(stop_above).scan(query.as_bytes())
}

/// One open group of the scan.
#[derive(Default)]
struct Level {
    /// Deepest finished argument of this group (arguments are separated by commas).
    best: usize,
    /// Operators of the current argument.
    ops: usize,
    /// Deepest group closed inside the current argument.
    child: usize,
}

impl Level {
    fn current(&self) -> usize {
        self.ops + self.child
    }

    fn depth(&self) -> usize {
        self.best.max(self.current())
    }
}

struct Scanner {
    levels: Vec<Level>,
    /// Operators of all open levels' current arguments (the part of the bound on the path).
    path_ops: usize,
    /// Unary signs waiting to see whether a number (folded) or an expression follows.
    pending_unary: usize,
    /// The next token starts an operand (so `+`/`-` are unary).
    expect_operand: bool,
    stop_above: usize,
}

impl Scanner {
    fn new(stop_above: usize) -> Self {
        Scanner {
            levels: vec![Level::default()],
            path_ops: 0,
            pending_unary: 0,
            expect_operand: true,
            stop_above,
        }
    }

    fn top(&mut self) -> &mut Level {
        if self.levels.is_empty() {
            self.levels.push(Level::default());
        }
        let last = self.levels.len() - 1;
        &mut self.levels[last]
    }

    /// The bound along the open path so far (a lower bound of the final result).
    fn path_bound(&self) -> usize {
        let child = self.levels.last().map_or(0, |level| level.child);
        self.path_ops + self.levels.len().saturating_sub(1) + child
    }

    fn add_ops(&mut self, n: usize) {
        self.top().ops += n;
        self.path_ops += n;
    }

    /// An operand starts: pending unary signs apply unless it is a number.
    fn operand(&mut self, is_number: bool) {
        let pending = std::mem::take(&mut self.pending_unary);
        if !is_number {
            self.add_ops(pending);
        }
        self.expect_operand = false;
    }

    fn binary_operator(&mut self) {
        self.add_ops(1);
        self.expect_operand = true;
    }

    fn open(&mut self) {
        self.operand(false);
        self.levels.push(Level::default());
        self.expect_operand = true;
    }

    fn close(&mut self) {
        if self.levels.len() <= 1 {
            // Unbalanced: the parser reports it; nothing nests here.
            self.expect_operand = false;
            return;
        }
        let Some(level) = self.levels.pop() else {
            return;
        };
        self.path_ops = self.path_ops.saturating_sub(level.ops);
        let depth = level.depth() + 1;
        let parent = self.top();
        parent.child = parent.child.max(depth);
        self.expect_operand = false;
    }

    fn comma(&mut self) {
        let ops = {
            let level = self.top();
            level.best = level.best.max(level.current());
            let ops = level.ops;
            level.ops = 0;
            level.child = 0;
            ops
        };
        self.path_ops = self.path_ops.saturating_sub(ops);
        self.expect_operand = true;
    }

    fn finish(mut self) -> usize {
        let pending = std::mem::take(&mut self.pending_unary);
        self.add_ops(pending);
        while self.levels.len() > 1 {
            self.close();
        }
        self.levels.first().map_or(0, Level::depth)
    }

    fn scan(mut self, text: &[u8]) -> usize {
        let mut i = 0;
        while let Some(&byte) = text.get(i) {
            if self.path_bound() > self.stop_above {
                return self.path_bound();
            }
            match byte {
                b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                b'#' => i = skip_until(text, i, b'\n'),
                b'"' | b'\'' | b'`' => {
                    i = skip_string(text, i);
                    self.operand(false);
                }
                b'{' => {
                    i = skip_braces(text, i);
                    self.operand(false);
                }
                b'(' => {
                    self.open();
                    i += 1;
                }
                b')' => {
                    self.close();
                    i += 1;
                }
                b',' => {
                    self.comma();
                    i += 1;
                }
                b'[' => {
                    // A range or subquery wraps the expression before it in one more node.
                    self.add_ops(1);
                    self.expect_operand = false;
                    i = skip_until(text, i, b']');
                }
                b'@' => {
                    // A modifier, not a node: its operand (a number, `start()`) is skipped.
                    self.expect_operand = true;
                    i += 1;
                }
                b'+' | b'-' if self.expect_operand => {
                    self.pending_unary += 1;
                    i += 1;
                }
                b'=' | b'!' | b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => {
                    self.binary_operator();
                    i += 1;
                    // Two-character operators (`==`, `!=`, `<=`, `>=`, `=~`, `!~`) are one.
                    if matches!(text.get(i), Some(b'=' | b'~')) {
                        i += 1;
                    }
                }
                b'0'..=b'9' | b'.' => {
                    i = skip_word(text, i);
                    self.operand(true);
                }
                byte if byte.is_ascii_alphabetic() || byte == b'_' || byte == b':' => {
                    let end = skip_word(text, i);
                    let word = text.get(i..end).unwrap_or_default();
                    i = end;
                    let is = |name: &str| word.eq_ignore_ascii_case(name.as_bytes());
                    if is("and") || is("or") || is("unless") || is("atan2") {
                        self.binary_operator();
                    } else if is("offset") || is("bool") {
                        // `offset -5m`: what follows is an operand of the modifier.
                        self.expect_operand = true;
                    } else if is("inf") || is("nan") {
                        self.operand(true);
                    } else if is("by")
                        || is("without")
                        || is("on")
                        || is("ignoring")
                        || is("group_left")
                        || is("group_right")
                    {
                        // Grouping clauses: their label list is a group of no depth.
                    } else {
                        self.operand(false);
                    }
                }
                _ => i += 1,
            }
        }
        self.finish()
    }
}

/// Index just past the end of a word (identifier, number, duration).
fn skip_word(text: &[u8], start: usize) -> usize {
    let mut i = start;
    while text
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.'))
    {
        i += 1;
    }
    i.max(start + 1)
}

/// Index just past the next `end` byte at or after `start + 1` (or the end of the text).
fn skip_until(text: &[u8], start: usize, end: u8) -> usize {
    match text
        .get(start + 1..)
        .and_then(|rest| rest.iter().position(|&b| b == end))
    {
        Some(offset) => start + 1 + offset + 1,
        None => text.len(),
    }
}

/// Index just past the string literal starting at `start` (backslash escapes except in
/// backtick strings).
fn skip_string(text: &[u8], start: usize) -> usize {
    let quote = text.get(start).copied().unwrap_or(b'"');
    let mut i = start + 1;
    while let Some(&byte) = text.get(i) {
        if byte == b'\\' && quote != b'`' {
            i += 2;
        } else if byte == quote {
            return i + 1;
        } else {
            i += 1;
        }
    }
    text.len()
}

/// Index just past the label matchers `{...}` starting at `start` (strings inside skipped).
fn skip_braces(text: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&byte) = text.get(i) {
        match byte {
            b'"' | b'\'' | b'`' => i = skip_string(text, i),
            b'}' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// The child expressions of a node, for the iterative walks below.
fn children(expr: &Expr) -> impl Iterator<Item = &Expr> {
    let (first, second, rest): (Option<&Expr>, Option<&Expr>, &[Box<Expr>]) = match expr {
        Expr::Aggregate(agg) => (Some(&agg.expr), agg.param.as_deref(), &[]),
        Expr::Unary(unary) => (Some(&unary.expr), None, &[]),
        Expr::Binary(binary) => (Some(&binary.lhs), Some(&binary.rhs), &[]),
        Expr::Paren(paren) => (Some(&paren.expr), None, &[]),
        Expr::Subquery(subquery) => (Some(&subquery.expr), None, &[]),
        Expr::Call(call) => (None, None, call.args.args.as_slice()),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => (None, None, &[]),
    };
    first
        .into_iter()
        .chain(second)
        .chain(rest.iter().map(|arg| &**arg))
}

/// Depth of a parsed tree (a leaf has depth 0), computed without recursion.
pub fn expr_depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(expr, 0usize)];
    while let Some((node, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        pending.extend(children(node).map(|child| (child, depth + 1)));
    }
    deepest
}

/// Runs `work` where `depth` levels of recursion over a syntax tree fit on the stack: on the
/// calling thread for shallow trees, else on a scoped thread with a stack sized for the depth.
/// A panic in `work` is propagated to the caller, as if it had run inline.
pub fn with_stack_for<R: Send>(depth: usize, work: impl FnOnce() -> Result<R> + Send) -> Result<R> {
    if depth <= INLINE_DEPTH {
        return work();
    }
    let stack_size = STACK_BASE.saturating_add(depth.saturating_mul(STACK_PER_LEVEL));
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("promql-deep".into())
            .stack_size(stack_size)
            .spawn_scoped(scope, work)
            .map_err(|source| Error::Thread { source })?;
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A parsed syntax tree. It dereferences to the parser's [`Expr`]; dropping it takes the tree
/// apart without recursion (the compiler's drop of a `Box`-nested tree recurses once per
/// level, which a deep tree would overflow).
#[derive(Debug)]
pub struct ParsedExpr(Option<Expr>);

impl ParsedExpr {
    /// Takes ownership of `expr`.
    pub fn new(expr: Expr) -> Self {
        ParsedExpr(Some(expr))
    }
}

impl Deref for ParsedExpr {
    type Target = Expr;

    fn deref(&self) -> &Expr {
        self.0.as_ref().unwrap_or(&PLACEHOLDER)
    }
}

/// What a taken-apart node is replaced by (never observed: only during drop).
const PLACEHOLDER: Expr = Expr::NumberLiteral(promql_parser::parser::NumberLiteral { val: 0.0 });

impl Drop for ParsedExpr {
    fn drop(&mut self) {
        if let Some(expr) = self.0.take() {
            dismantle(expr);
        }
    }
}

/// Drops `expr` level by level: each node's children are moved out onto a work list before the
/// node itself is dropped, so no drop recurses more than one level.
fn dismantle(expr: Expr) {
    let mut pending = vec![expr];
    let take = |slot: &mut Box<Expr>, pending: &mut Vec<Expr>| {
        pending.push(std::mem::replace(&mut **slot, PLACEHOLDER));
    };
    while let Some(mut node) = pending.pop() {
        match &mut node {
            Expr::Aggregate(agg) => {
                take(&mut agg.expr, &mut pending);
                if let Some(param) = agg.param.as_mut() {
                    take(param, &mut pending);
                }
            }
            Expr::Unary(unary) => take(&mut unary.expr, &mut pending),
            Expr::Binary(binary) => {
                take(&mut binary.lhs, &mut pending);
                take(&mut binary.rhs, &mut pending);
            }
            Expr::Paren(paren) => take(&mut paren.expr, &mut pending),
            Expr::Subquery(subquery) => take(&mut subquery.expr, &mut pending),
            Expr::Call(call) => {
                for arg in &mut call.args.args {
                    take(arg, &mut pending);
                }
            }
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
        drop(node);
    }
}

#[cfg(test)]
mod tests;
