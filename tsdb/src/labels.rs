//! Label sets, label matchers and series selectors with Prometheus 2.42 semantics.
//!
//! - [`Labels`] is a label set sorted by name; it orders like Prometheus `labels.Compare` (label
//!   by label, name then value, bytewise; a prefix sorts first) and prints like
//!   `labels.String()` (`{__name__="up", job="x"}`, values quoted as Go `%q`).
//! - [`Matcher`] matches one label value. Regex matchers are fully anchored (`^(?:re)$`), `.`
//!   does not match `\n` (2.42), and Go's ASCII-only `\d \w \s \b` are kept ASCII-only (Rust's
//!   `regex` makes them Unicode by default, so patterns are translated before compiling).
//! - [`parse_selector`] parses `metric{name="value", ...}` with Go-style quoted strings.

use std::fmt;

use crate::{Error, Result};

/// The label name holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// Label name.
    pub name: String,
    /// Label value.
    pub value: String,
}

impl Label {
    /// A label from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set, sorted by name with unique names. Ordering is Prometheus's `labels.Compare`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Build from labels in any order; later duplicates of a name are dropped.
    pub fn new(mut labels: Vec<Label>) -> Self {
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        labels.dedup_by(|later, earlier| later.name == earlier.name);
        Labels(labels)
    }

    /// Build from labels the caller guarantees are sorted by name and unique.
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Labels(labels)
    }

    /// Build from `(name, value)` pairs in any order.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Labels::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect())
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|l| l.value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Iterate labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels as a slice.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Consume into the sorted vector.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Append the `labels.String()` form to `out`.
    pub fn write_prometheus_string(&self, out: &mut String) {
        out.push('{');
        for (i, label) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&label.name);
            out.push('=');
            crate::gofmt::quote_into(out, &label.value);
        }
        out.push('}');
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(64);
        self.write_prometheus_string(&mut out);
        f.write_str(&out)
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The kind of a label matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchType {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }

    /// True for `!=` and `!~`.
    pub fn is_negative(self) -> bool {
        matches!(self, MatchType::NotEqual | MatchType::NotRegex)
    }
}

/// A label matcher: `name <op> "value"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Value or regex source (without anchors).
    pub value: String,
    /// Operator.
    pub kind: MatchType,
    regex: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value && self.kind == other.kind
    }
}
impl Eq for Matcher {}

impl Matcher {
    /// Build a matcher, compiling the regex for `=~` and `!~`.
    pub fn new(kind: MatchType, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let regex = match kind {
            MatchType::Regex | MatchType::NotRegex => Some(compile_anchored(&value)?),
            MatchType::Equal | MatchType::NotEqual => None,
        };
        Ok(Matcher {
            name,
            value,
            kind,
            regex,
        })
    }

    /// `name="value"` (cannot fail).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            value: value.into(),
            kind: MatchType::Equal,
            regex: None,
        }
    }

    /// Does the label value `value` satisfy this matcher? A missing label is the empty string.
    pub fn matches(&self, value: &str) -> bool {
        match (self.kind, &self.regex) {
            (MatchType::Equal, _) => value == self.value,
            (MatchType::NotEqual, _) => value != self.value,
            (MatchType::Regex, Some(re)) => re.is_match(value),
            (MatchType::NotRegex, Some(re)) => !re.is_match(value),
            // Unreachable through the constructors; treat as matching nothing rather than panic.
            (MatchType::Regex | MatchType::NotRegex, None) => false,
        }
    }

    /// The matcher with the opposite operator (`=` <-> `!=`, `=~` <-> `!~`).
    pub fn inverse(&self) -> Matcher {
        let kind = match self.kind {
            MatchType::Equal => MatchType::NotEqual,
            MatchType::NotEqual => MatchType::Equal,
            MatchType::Regex => MatchType::NotRegex,
            MatchType::NotRegex => MatchType::Regex,
        };
        Matcher {
            name: self.name.clone(),
            value: self.value.clone(),
            kind,
            regex: self.regex.clone(),
        }
    }

    /// For a regex that is an alternation of plain literals (`a|b|c`), the literals. Used to look
    /// up postings directly instead of scanning every value of the label.
    pub fn set_matches(&self) -> Option<Vec<String>> {
        if !matches!(self.kind, MatchType::Regex | MatchType::NotRegex) {
            return None;
        }
        let mut values = Vec::new();
        for alternative in split_top_level_alternation(&self.value)? {
            values.push(unescape_literal(alternative)?);
        }
        values.sort();
        values.dedup();
        Some(values)
    }

    /// A literal prefix every matching value must start with (for regex matchers), used to narrow
    /// a scan over sorted label values. Conservative: `None` whenever unsure.
    pub fn literal_prefix(&self) -> Option<String> {
        if self.kind != MatchType::Regex {
            return None;
        }
        let pattern = self.value.as_str();
        if split_top_level_alternation(pattern).is_none_or(|alts| alts.len() != 1) {
            return None;
        }
        let mut prefix = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let literal = match c {
                '\\' => match chars.next() {
                    Some(n) if n.is_ascii_punctuation() => n,
                    _ => break,
                },
                c if is_regex_meta(c) => break,
                c => c,
            };
            // A quantifier after the character makes it optional (or repeatable).
            if matches!(chars.peek(), Some('*' | '?' | '{' | '+')) {
                if chars.peek() == Some(&'+') {
                    prefix.push(literal);
                }
                break;
            }
            prefix.push(literal);
        }
        (!prefix.is_empty()).then_some(prefix)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.kind.as_str(),
            crate::gofmt::quote(&self.value)
        )
    }
}

fn is_regex_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

/// Split `a|b|c` at top-level `|`; `None` when the pattern has groups or classes (we only want
/// plain literal alternatives).
fn split_top_level_alternation(pattern: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in pattern.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' | ')' | '[' | ']' => return None,
            '|' => {
                parts.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&pattern[start..]);
    Some(parts)
}

/// The literal a regex alternative denotes, if it is a plain literal (meta characters escaped).
fn unescape_literal(alternative: &str) -> Option<String> {
    let mut out = String::with_capacity(alternative.len());
    let mut chars = alternative.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) if n.is_ascii_punctuation() => out.push(n),
                _ => return None,
            },
            c if is_regex_meta(c) => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Compile `^(?:pattern)$` with Go RE2's ASCII-only Perl classes.
fn compile_anchored(pattern: &str) -> Result<regex::Regex> {
    let translated = translate_go_regex(pattern);
    regex::Regex::new(&format!("^(?:{translated})$")).map_err(|source| Error::InvalidRegex {
        pattern: pattern.to_string(),
        source: Box::new(source),
    })
}

/// Rewrite Go RE2 syntax into Rust `regex` syntax with the same meaning:
/// `\d \w \s \b` (and negations) become their ASCII definitions, and characters that are literal
/// inside a Go class but special inside a Rust class (`[`, `&`, `~`, `-` runs) are escaped.
fn translate_go_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    // True right after `[` or `[^`, where `]` is a literal.
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let was_class_start = std::mem::replace(&mut class_start, false);
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let replacement = match (next, in_class) {
                    ('d', false) => "[0-9]",
                    ('D', false) => "[^0-9]",
                    ('w', false) => "[0-9A-Za-z_]",
                    ('W', false) => "[^0-9A-Za-z_]",
                    ('s', false) => "[\\t\\n\\f\\r ]",
                    ('S', false) => "[^\\t\\n\\f\\r ]",
                    ('b', false) => "(?-u:\\b)",
                    ('B', false) => "(?-u:\\B)",
                    ('d', true) => "0-9",
                    ('D', true) => "[^0-9]",
                    ('w', true) => "0-9A-Za-z_",
                    ('W', true) => "[^0-9A-Za-z_]",
                    ('s', true) => "\\t\\n\\f\\r ",
                    ('S', true) => "[^\\t\\n\\f\\r ]",
                    _ => {
                        out.push('\\');
                        out.push(next);
                        continue;
                    }
                };
                out.push_str(replacement);
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '[' => {
                // `[:alpha:]` is a class inside a class in both dialects; a lone `[` is literal in Go.
                if chars.peek() == Some(&':') {
                    out.push('[');
                    for inner in chars.by_ref() {
                        out.push(inner);
                        if inner == ']' {
                            break;
                        }
                    }
                } else {
                    out.push_str("\\[");
                }
            }
            ']' if in_class && !was_class_start => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '-' if in_class && chars.peek() == Some(&'-') => out.push_str("\\-"),
            c => out.push(c),
        }
    }
    out
}

/// Parse a series selector such as `up`, `http_requests_total{code="500"}` or
/// `{__name__=~"a.*", job!="x"}` into matchers (the metric name becomes `__name__="..."`).
///
/// Like Prometheus's `ParseMetricSelector` (used by `promtool tsdb dump --match`), this does
/// not require a non-empty matcher: `{__name__=~".*"}` is valid and selects everything. PromQL
/// and the HTTP API do require one; check with [`require_non_empty_matcher`] there.
/// The metric name may not be given twice.
pub fn parse_selector(selector: &str) -> Result<Vec<Matcher>> {
    let mut parser = SelectorParser {
        text: selector,
        pos: 0,
    };
    parser.parse()
}

/// PromQL's rule for vector selectors: at least one matcher must not match the empty string.
pub fn require_non_empty_matcher(selector: &str, matchers: &[Matcher]) -> Result<()> {
    if matchers.iter().all(|m| m.matches("")) {
        return Err(Error::InvalidSelector {
            selector: selector.to_string(),
            detail: "vector selector must contain at least one non-empty matcher".into(),
        });
    }
    Ok(())
}

struct SelectorParser<'a> {
    text: &'a str,
    pos: usize,
}

impl SelectorParser<'_> {
    fn error(&self, detail: impl Into<String>) -> Error {
        Error::InvalidSelector {
            selector: self.text.to_string(),
            detail: detail.into(),
        }
    }

    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn identifier(&mut self, allow_colon: bool) -> Option<&str> {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c == '_'
                    || c.is_ascii_alphabetic()
                    || (i > 0 && c.is_ascii_digit())
                    || (allow_colon && c == ':'))
            })
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return None;
        }
        let start = self.pos;
        self.pos += len;
        self.text.get(start..start + len)
    }

    fn parse(&mut self) -> Result<Vec<Matcher>> {
        let mut matchers = Vec::new();
        self.skip_space();
        let metric_name = self.identifier(true).map(str::to_string);
        if let Some(name) = &metric_name {
            matchers.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        self.skip_space();
        if self.peek() == Some('{') {
            self.pos += 1;
            loop {
                self.skip_space();
                if self.peek() == Some('}') {
                    self.pos += 1;
                    break;
                }
                let position = self.pos;
                let Some(name) = self.identifier(false).map(str::to_string) else {
                    return Err(self.error(format!("expected label name at position {position}")));
                };
                self.skip_space();
                let rest = self.rest();
                let kind = if rest.starts_with("=~") {
                    MatchType::Regex
                } else if rest.starts_with("!~") {
                    MatchType::NotRegex
                } else if rest.starts_with("!=") {
                    MatchType::NotEqual
                } else if rest.starts_with('=') {
                    MatchType::Equal
                } else {
                    return Err(self.error(format!("expected match operator after {name:?}")));
                };
                self.pos += kind.as_str().len();
                self.skip_space();
                let value = self.string()?;
                if name == METRIC_NAME && metric_name.is_some() {
                    return Err(self.error("metric name must not be set twice"));
                }
                matchers.push(Matcher::new(kind, name, value)?);
                self.skip_space();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some('}') => {}
                    _ => {
                        return Err(
                            self.error(format!("expected ',' or '}}' at position {}", self.pos))
                        );
                    }
                }
            }
        } else if metric_name.is_none() {
            return Err(self.error("expected metric name or '{'"));
        }
        self.skip_space();
        if !self.rest().is_empty() {
            return Err(self.error(format!(
                "unexpected {:?} at position {}",
                self.rest(),
                self.pos
            )));
        }
        Ok(matchers)
    }

    /// A Go-style string literal in `"`, `'` or `` ` `` quotes.
    fn string(&mut self) -> Result<String> {
        let quote = self
            .peek()
            .filter(|c| matches!(c, '"' | '\'' | '`'))
            .ok_or_else(|| {
                self.error(format!("expected quoted string at position {}", self.pos))
            })?;
        self.pos += 1;
        let mut bytes = Vec::new();
        let mut chars = self.rest().char_indices();
        loop {
            let Some((i, c)) = chars.next() else {
                return Err(self.error("unterminated string"));
            };
            if c == quote {
                self.pos += i + 1;
                break;
            }
            if quote == '`' || c != '\\' {
                if c == '\n' && quote != '`' {
                    return Err(self.error("newline in string"));
                }
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            let Some((_, escape)) = chars.next() else {
                return Err(self.error("unterminated escape"));
            };
            let simple = match escape {
                'a' => Some(0x07),
                'b' => Some(0x08),
                'f' => Some(0x0C),
                'n' => Some(b'\n'),
                'r' => Some(b'\r'),
                't' => Some(b'\t'),
                'v' => Some(0x0B),
                '\\' => Some(b'\\'),
                c if c == quote => Some(c as u8),
                _ => None,
            };
            if let Some(byte) = simple {
                bytes.push(byte);
                continue;
            }
            let (digits, radix) = match escape {
                'x' => (2, 16),
                'u' => (4, 16),
                'U' => (8, 16),
                '0'..='7' => (3, 8),
                _ => return Err(self.error(format!("unknown escape sequence \\{escape}"))),
            };
            let mut code = if radix == 8 {
                escape.to_digit(8).unwrap_or(0)
            } else {
                0
            };
            let remaining = if radix == 8 { digits - 1 } else { digits };
            for _ in 0..remaining {
                let digit = chars
                    .next()
                    .and_then(|(_, d)| d.to_digit(radix))
                    .ok_or_else(|| self.error("invalid escape sequence"))?;
                code = code * radix + digit;
            }
            match escape {
                'x' | '0'..='7' => {
                    let byte =
                        u8::try_from(code).map_err(|_| self.error("octal escape value > 255"))?;
                    bytes.push(byte);
                }
                _ => {
                    let c = char::from_u32(code).ok_or_else(|| {
                        self.error("escape sequence is an invalid Unicode code point")
                    })?;
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| self.error("string is not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchType, name: &str, value: &str) -> Matcher {
        Matcher::new(kind, name, value).unwrap()
    }

    #[test]
    fn labels_sort_compare_and_print() {
        let a = Labels::from_pairs([("job", "x"), ("__name__", "up")]);
        assert_eq!(a.to_string(), "{__name__=\"up\", job=\"x\"}");
        assert_eq!(a.get("job"), Some("x"));
        assert_eq!(a.get("nope"), None);
        let b = Labels::from_pairs([("__name__", "up")]);
        assert!(b < a, "a prefix sorts first");
        let c = Labels::from_pairs([("__name__", "up"), ("a", "z")]);
        assert!(c < a, "name a < job");
        let quoted = Labels::from_pairs([("a", "x\"y\n")]);
        assert_eq!(quoted.to_string(), "{a=\"x\\\"y\\n\"}");
    }

    #[test]
    fn regex_is_anchored_and_ascii() {
        let re = m(MatchType::Regex, "a", "fo+");
        assert!(re.matches("foo"));
        assert!(!re.matches("xfoo"));
        assert!(!re.matches("foox"));
        let alt = m(MatchType::Regex, "a", "a|b");
        assert!(alt.matches("a") && alt.matches("b") && !alt.matches("ab"));
        let digits = m(MatchType::Regex, "a", "\\d+");
        assert!(digits.matches("123"));
        assert!(
            !digits.matches("١٢٣"),
            "Arabic-Indic digits are not \\d in Go"
        );
        let word = m(MatchType::Regex, "a", "[\\w-]+");
        assert!(word.matches("a-b_c"));
        assert!(!word.matches("é"));
        let dot = m(MatchType::Regex, "a", ".*");
        assert!(dot.matches("") && !dot.matches("a\nb"));
        let dot_s = m(MatchType::Regex, "a", "(?s:.*)");
        assert!(dot_s.matches("a\nb"));
        let literal_bracket = m(MatchType::Regex, "a", "[a[]+");
        assert!(literal_bracket.matches("a[a"));
        let posix = m(MatchType::Regex, "a", "[[:alpha:]]+");
        assert!(posix.matches("abc") && !posix.matches("a1"));
        let not = m(MatchType::NotRegex, "a", "x.*");
        assert!(not.matches("") && !not.matches("xy"));
        assert!(Matcher::new(MatchType::Regex, "a", "(").is_err());
    }

    #[test]
    fn set_and_prefix_shortcuts() {
        let set = m(MatchType::Regex, "a", "b|a|c\\.d");
        assert_eq!(set.set_matches().unwrap(), ["a", "b", "c.d"]);
        assert!(m(MatchType::Regex, "a", "a.*").set_matches().is_none());
        assert_eq!(
            m(MatchType::Regex, "a", "foo.*")
                .literal_prefix()
                .as_deref(),
            Some("foo")
        );
        assert_eq!(
            m(MatchType::Regex, "a", "fo?x").literal_prefix().as_deref(),
            Some("f")
        );
        assert_eq!(
            m(MatchType::Regex, "a", "fo+x").literal_prefix().as_deref(),
            Some("fo")
        );
        assert_eq!(m(MatchType::Regex, "a", "a|b").literal_prefix(), None);
        assert_eq!(m(MatchType::Regex, "a", "(?i)abc").literal_prefix(), None);
    }

    #[test]
    fn parses_selectors() {
        let ms = parse_selector("up").unwrap();
        assert_eq!(ms, vec![Matcher::equal("__name__", "up")]);
        let ms =
            parse_selector(r#"{__name__=~"a.*", job!='x', path=`C:\d`, e="\x41\u00e9\101\n",}"#)
                .unwrap();
        assert_eq!(ms.len(), 4);
        assert_eq!(ms[0].kind, MatchType::Regex);
        assert_eq!(ms[1].value, "x");
        assert_eq!(ms[2].value, "C:\\d");
        assert_eq!(ms[3].value, "AéA\n");
        let ms = parse_selector(r#"{a=""}"#).unwrap();
        assert!(require_non_empty_matcher("", &ms).is_err());
        assert!(parse_selector("{}").unwrap().is_empty());
        let ms = parse_selector(r#" http_requests_total { code = "500" } "#).unwrap();
        assert!(require_non_empty_matcher("", &ms).is_ok());
        assert_eq!(ms[1], Matcher::equal("code", "500"));
        for bad in [
            "",
            r#"{a="b""#,
            r#"up{__name__="x"}"#,
            r#"{a~"b"}"#,
            r#"{a="\q"}"#,
            r#"{a="b"} x"#,
            r#"{a=~"("}"#,
        ] {
            assert!(parse_selector(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
