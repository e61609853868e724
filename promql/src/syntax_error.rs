//! Where a query stops being PromQL, for the syntax errors the `promql-parser` crate reports
//! only as "invalid promql query". A small recursive-descent recogniser of 2.42's grammar walks
//! the tokens and stops at the first one no expression can continue with, which is the token
//! Prometheus's yacc parser reports: `1:5: parse error: unexpected identifier "bar"`. Token
//! descriptions follow Prometheus's lexer (`identifier "x"`, `<op:==>`, `<aggr:sum>`, `<by>`,
//! `"{"`, `number "5"`, `end of input`). It only locates errors; it never accepts or rejects a
//! query on its own (the crate's parse decides that).

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ident,
    Number,
    Duration,
    Str,
    Op,
    Aggr,
    Keyword,
    Punct,
    Eof,
}

#[derive(Debug, Clone)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
}

const AGGREGATORS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
];
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
];
const WORD_OPERATORS: &[&str] = &["and", "or", "unless", "atan2"];
const SYMBOL_OPERATORS: &[&str] = &[
    "==", "!=", "<=", ">=", "=~", "!~", "+", "-", "*", "/", "%", "^", "<", ">", "=", "@",
];
const DURATION_UNITS: &[u8] = b"smhdwy";

/// Tokens of `query`, or `None` where Prometheus's lexer itself would fail (those errors are
/// worded by the lexer, not here).
fn tokens(query: &str) -> Option<Vec<Token<'_>>> {
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let kind = if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
            {
                i += 1;
            }
            let word = &query[start..i];
            let lower = word.to_ascii_lowercase();
            if lower == "inf" || lower == "nan" {
                Kind::Number
            } else if AGGREGATORS.contains(&lower.as_str()) {
                Kind::Aggr
            } else if KEYWORDS.contains(&lower.as_str()) {
                Kind::Keyword
            } else if WORD_OPERATORS.contains(&lower.as_str()) {
                Kind::Op
            } else {
                Kind::Ident
            }
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
            {
                i += 1;
            }
            let text = &query[start..i];
            if text.parse::<f64>().is_ok() || text.starts_with("0x") {
                Kind::Number
            } else if text
                .bytes()
                .last()
                .is_some_and(|b| DURATION_UNITS.contains(&b))
                || text.ends_with("ms")
            {
                Kind::Duration
            } else {
                return None;
            }
        } else if matches!(c, b'"' | b'\'' | b'`') {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            if i >= bytes.len() {
                return None;
            }
            i += 1;
            Kind::Str
        } else if matches!(c, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b':') {
            i += 1;
            Kind::Punct
        } else if let Some(op) = SYMBOL_OPERATORS
            .iter()
            .find(|op| query.get(i..).is_some_and(|rest| rest.starts_with(*op)))
        {
            i += op.len();
            if *op == "=" { Kind::Punct } else { Kind::Op }
        } else {
            return None;
        };
        out.push(Token {
            kind,
            text: &query[start..i],
            start,
        });
    }
    out.push(Token {
        kind: Kind::Eof,
        text: "",
        start: query.len(),
    });
    Some(out)
}

/// Prometheus's `Item.desc()` of a token.
fn describe(token: &Token<'_>) -> String {
    let quoted = |text: &str| {
        if text.chars().count() > 10 {
            let cut: String = text.chars().take(10).collect();
            format!("{cut:?}...")
        } else {
            format!("{text:?}")
        }
    };
    match token.kind {
        Kind::Eof => "end of input".to_string(),
        Kind::Ident => format!("identifier {:?}", token.text),
        Kind::Number => format!("number {}", quoted(token.text)),
        Kind::Duration => format!("duration {}", quoted(token.text)),
        Kind::Str => format!("string {}", quoted(token.text)),
        Kind::Op => format!("<op:{}>", token.text),
        Kind::Aggr => format!("<aggr:{}>", token.text),
        Kind::Keyword => format!("<{}>", token.text),
        Kind::Punct => format!("{:?}", token.text),
    }
}

struct Recogniser<'a> {
    tokens: Vec<Token<'a>>,
    pos: usize,
    /// Nesting of `expr`; past [`MAX_DEPTH`] the recogniser gives up rather than recurse on.
    depth: usize,
    gave_up: bool,
}

/// Deepest nesting the recogniser follows (the stack stays small whatever the input).
const MAX_DEPTH: usize = 200;

/// The first token no expression continues with, and what Prometheus's grammar says it was
/// reading there (`in label matching, expected string`), if anything.
type Fail = (usize, &'static str);

impl<'a> Recogniser<'a> {
    fn peek(&self) -> &Token<'a> {
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[self.pos.min(last)]
    }
    fn is(&self, text: &str) -> bool {
        self.peek().text == text && self.peek().kind != Kind::Str
    }
    fn fail(&self, context: &'static str) -> Fail {
        (self.pos, context)
    }
    fn expect(&mut self, text: &str) -> Result<(), Fail> {
        self.expect_in(text, "")
    }
    fn expect_in(&mut self, text: &str, context: &'static str) -> Result<(), Fail> {
        if self.is(text) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.fail(context))
        }
    }
    fn expect_kind(&mut self, kind: Kind, context: &'static str) -> Result<(), Fail> {
        if self.peek().kind == kind {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.fail(context))
        }
    }

    fn expr(&mut self) -> Result<(), Fail> {
        if self.depth >= MAX_DEPTH {
            self.gave_up = true;
            return Err(self.fail(""));
        }
        self.depth += 1;
        let result = self.expr_inner();
        self.depth -= 1;
        result
    }

    fn expr_inner(&mut self) -> Result<(), Fail> {
        self.unary()?;
        while self.peek().kind == Kind::Op && self.peek().text != "@" {
            self.pos += 1;
            if self.is("bool") {
                self.pos += 1;
            }
            if self.is("on") || self.is("ignoring") {
                self.pos += 1;
                self.label_list()?;
                if self.is("group_left") || self.is("group_right") {
                    self.pos += 1;
                    if self.is("(") {
                        self.label_list()?;
                    }
                }
            }
            self.unary()?;
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<(), Fail> {
        while self.is("+") || self.is("-") {
            self.pos += 1;
        }
        self.primary()?;
        self.postfix()
    }

    fn postfix(&mut self) -> Result<(), Fail> {
        loop {
            if self.is("[") {
                self.pos += 1;
                self.expect_kind(Kind::Duration, "")?;
                if self.is(":") {
                    self.pos += 1;
                    if self.peek().kind == Kind::Duration {
                        self.pos += 1;
                    }
                }
                self.expect("]")?;
            } else if self.is("offset") {
                self.pos += 1;
                if self.is("-") || self.is("+") {
                    self.pos += 1;
                }
                self.expect_kind(Kind::Duration, "")?;
            } else if self.is("@") {
                self.pos += 1;
                if self.is("-") || self.is("+") {
                    self.pos += 1;
                }
                if self.is("start") || self.is("end") {
                    self.pos += 1;
                    self.expect("(")?;
                    self.expect(")")?;
                } else {
                    self.expect_kind(Kind::Number, "in @, expected timestamp")?;
                }
            } else {
                return Ok(());
            }
        }
    }

    fn primary(&mut self) -> Result<(), Fail> {
        let token = self.peek().clone();
        match token.kind {
            Kind::Number | Kind::Str => {
                self.pos += 1;
                Ok(())
            }
            Kind::Punct if token.text == "(" => {
                self.pos += 1;
                self.expr()?;
                self.expect(")")
            }
            Kind::Punct if token.text == "{" => self.matchers(),
            Kind::Aggr => {
                self.pos += 1;
                if self.is("by") || self.is("without") {
                    self.pos += 1;
                    self.label_list()?;
                }
                // Failing at the aggregation's own tokens is "in aggregation".
                if !self.is("(") {
                    let at_end = self.peek().kind == Kind::Eof;
                    return Err(self.fail(if at_end { "in aggregation" } else { "" }));
                }
                let open = self.pos;
                self.args().map_err(|(at, context)| {
                    let own = at == open + 1
                        || self
                            .tokens
                            .get(at)
                            .is_some_and(|t| t.text == "," || t.kind == Kind::Eof);
                    (
                        at,
                        if context.is_empty() && own {
                            "in aggregation"
                        } else {
                            context
                        },
                    )
                })?;
                if self.is("by") || self.is("without") {
                    self.pos += 1;
                    self.label_list()?;
                }
                Ok(())
            }
            Kind::Ident => {
                self.pos += 1;
                if self.is("(") {
                    self.args()
                } else if self.is("{") {
                    self.matchers()
                } else {
                    Ok(())
                }
            }
            _ => Err(self.fail("")),
        }
    }

    fn args(&mut self) -> Result<(), Fail> {
        self.expect("(")?;
        if self.is(")") {
            self.pos += 1;
            return Ok(());
        }
        self.expr()?;
        while self.is(",") {
            self.pos += 1;
            self.expr()?;
        }
        self.expect(")")
    }

    fn label_name(&mut self, context: &'static str) -> Result<(), Fail> {
        match self.peek().kind {
            Kind::Ident | Kind::Keyword | Kind::Aggr => {
                self.pos += 1;
                Ok(())
            }
            Kind::Op if self.peek().text.chars().all(char::is_alphanumeric) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.fail(context)),
        }
    }

    fn label_list(&mut self) -> Result<(), Fail> {
        self.expect_in("(", "in grouping opts, expected \"(\"")?;
        while !self.is(")") {
            self.label_name("in grouping opts, expected label")?;
            if !self.is(",") {
                break;
            }
            self.pos += 1;
        }
        self.expect_in(")", "in grouping opts, expected \")\" or \",\"")
    }

    fn matchers(&mut self) -> Result<(), Fail> {
        self.expect("{")?;
        while !self.is("}") {
            self.label_name("in label matching, expected label")?;
            let op = self.peek().text;
            if !matches!(op, "=" | "!=" | "=~" | "!~") {
                return Err(self.fail("in label matching, expected label matching operator"));
            }
            self.pos += 1;
            self.expect_kind(Kind::Str, "in label matching, expected string")?;
            if !self.is(",") {
                break;
            }
            self.pos += 1;
        }
        self.expect_in("}", "in label matching, expected \",\" or \"}\"")
    }
}

/// The byte offset and Prometheus's message of the first unexpected token of `query`, or
/// `None` when the recogniser finds nothing wrong or cannot tokenise the query.
pub(crate) fn locate(query: &str) -> Option<(usize, String)> {
    let tokens = tokens(query)?;
    let mut recogniser = Recogniser {
        tokens,
        pos: 0,
        depth: 0,
        gave_up: false,
    };
    let result = recogniser.expr();
    if recogniser.gave_up {
        return None;
    }
    let (fail, context) = match result {
        Err(fail) => fail,
        Ok(()) if recogniser.peek().kind != Kind::Eof => (recogniser.pos, ""),
        Ok(()) => return None,
    };
    let token = recogniser.tokens.get(fail)?;
    let message = format!("unexpected {}", describe(token));
    Some((
        token.start,
        if context.is_empty() {
            message
        } else {
            format!("{message} {context}")
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_prometheus_reports() {
        let cases = [
            ("foo bar", 4, "unexpected identifier \"bar\""),
            ("sum(x) by (a) by (b)", 14, "unexpected <by>"),
            (
                "x + on(a) group_left(b) group_right(c) y",
                24,
                "unexpected <group_right>",
            ),
            ("x{a=\"b\"}{c=\"d\"}", 8, "unexpected \"{\""),
            ("x == == y", 5, "unexpected <op:==>"),
            ("1 +* 2", 3, "unexpected <op:*>"),
            ("1 +", 3, "unexpected end of input"),
            ("rate(x[5m] 1)", 11, "unexpected number \"1\""),
            (
                "sum by",
                6,
                "unexpected end of input in grouping opts, expected \"(\"",
            ),
            (
                "foo{a}",
                5,
                "unexpected \"}\" in label matching, expected label matching operator",
            ),
            (
                "foo{a=}",
                6,
                "unexpected \"}\" in label matching, expected string",
            ),
            (
                "foo{a=\"b\" c=\"d\"}",
                10,
                "unexpected identifier \"c\" in label matching, expected \",\" or \"}\"",
            ),
            ("topk(,x)", 5, "unexpected \",\" in aggregation"),
            ("max by (a)", 10, "unexpected end of input in aggregation"),
            ("sum x", 4, "unexpected identifier \"x\""),
            (
                "x @ foo()",
                4,
                "unexpected identifier \"foo\" in @, expected timestamp",
            ),
            (
                "x unless on y",
                12,
                "unexpected identifier \"y\" in grouping opts, expected \"(\"",
            ),
        ];
        for (query, offset, message) in cases {
            assert_eq!(
                locate(query),
                Some((offset, message.to_string())),
                "{query}"
            );
        }
        let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(99_999));
        assert_eq!(locate(&deep), None, "gives up on deep nesting");
        for valid in [
            "sum by (a) (rate(x{b=~\"c\"}[5m] offset 1m @ 100))",
            "-x ^ 2",
            "topk(3, x) and on() y",
        ] {
            assert_eq!(locate(valid), None, "{valid}");
        }
    }
}
