//! Label matchers (`=`, `!=`, `=~`, `!~`) with Go RE2 semantics on top of Rust's `regex`.
//!
//! Prometheus regexes are fully anchored, and Go's `\d \w \s \b` classes are ASCII-only while
//! Rust's are Unicode, so patterns are rewritten before compiling. Go also accepts a `{` that does
//! not start a repetition as a literal; Rust rejects it, so such braces are escaped.

use regex::Regex;

use crate::error::{Error, Result};
use crate::labels::Labels;

/// The four matcher kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub match_type: MatchType,
    pub name: String,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher; regex kinds compile `value` with Go semantics.
    pub fn new(match_type: MatchType, name: &str, value: &str) -> Result<Self> {
        let regex = match match_type {
            MatchType::Regex | MatchType::NotRegex => Some(compile_anchored(value)?),
            MatchType::Equal | MatchType::NotEqual => None,
        };
        Ok(Matcher {
            match_type,
            name: name.to_string(),
            value: value.to_string(),
            regex,
        })
    }

    /// Whether the label value `v` (`""` for an absent label) matches.
    pub fn matches(&self, v: &str) -> bool {
        match (self.match_type, &self.regex) {
            (MatchType::Equal, _) => self.value == v,
            (MatchType::NotEqual, _) => self.value != v,
            (MatchType::Regex, Some(re)) => re.is_match(v),
            (MatchType::NotRegex, Some(re)) => !re.is_match(v),
            // Regex kinds always carry a compiled regex (see `new`).
            (MatchType::Regex | MatchType::NotRegex, None) => false,
        }
    }

    /// Whether the label set matches.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get_or_empty(&self.name))
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.match_type {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

/// Compiles a Go RE2 pattern anchored as Prometheus 2.42 does: `^(?:pattern)$`.
pub fn compile_anchored(pattern: &str) -> Result<Regex> {
    let translated = translate_go_regex(pattern);
    Regex::new(&format!("^(?:{translated})$"))
        .map_err(|err| Error::exec(format!("invalid regular expression {pattern:?}: {err}")))
}

/// Rewrites Go-specific regex syntax into equivalent Rust syntax.
pub fn translate_go_regex(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    out.push('\\');
                    i += 1;
                    continue;
                };
                let replacement = match (in_class, next) {
                    (false, 'd') => Some("[0-9]"),
                    (false, 'D') => Some("[^0-9]"),
                    (false, 'w') => Some("[0-9A-Za-z_]"),
                    (false, 'W') => Some("[^0-9A-Za-z_]"),
                    (false, 's') => Some("[\\t\\n\\f\\r ]"),
                    (false, 'S') => Some("[^\\t\\n\\f\\r ]"),
                    (true, 'd') => Some("0-9"),
                    (true, 'w') => Some("0-9A-Za-z_"),
                    (true, 's') => Some("\\t\\n\\f\\r "),
                    _ => None,
                };
                match replacement {
                    Some(r) => out.push_str(r),
                    None => {
                        out.push('\\');
                        out.push(next);
                    }
                }
                i += 2;
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                i += 1;
                // A `]` right after `[` or `[^` is a literal in both dialects.
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '[' if in_class => {
                // Go treats a nested `[` literally unless it starts `[:class:]`.
                if chars.get(i + 1) == Some(&':') {
                    out.push('[');
                } else {
                    out.push_str("\\[");
                }
                i += 1;
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
                i += 1;
            }
            '{' if !in_class => {
                let rest: String = chars
                    .get(i + 1..)
                    .map(|s| s.iter().collect())
                    .unwrap_or_default();
                match repetition_len(&rest) {
                    Some(len) => {
                        // Copy the whole `{n,m}` through unchanged.
                        out.push('{');
                        out.push_str(rest.get(..len).unwrap_or(""));
                        i += 1 + rest.get(..len).map(|s| s.chars().count()).unwrap_or(0);
                    }
                    None => {
                        out.push_str("\\{");
                        i += 1;
                    }
                }
            }
            '}' if !in_class => {
                // A `}` that closes no repetition is a literal in Go.
                out.push_str("\\}");
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// When `rest` (the text after a `{`) starts a `n}`, `n,}` or `n,m}` repetition, the byte length
/// of that text including the closing `}`.
fn repetition_len(rest: &str) -> Option<usize> {
    let end = rest.find('}')?;
    let body = rest.get(..end)?;
    let mut parts = body.splitn(2, ',');
    let first = parts.next().unwrap_or("");
    if first.is_empty() || !first.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    match parts.next() {
        Some(second) if !second.chars().all(|c| c.is_ascii_digit()) => None,
        _ => Some(end + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_and_ascii_classes() -> Result<()> {
        let m = Matcher::new(MatchType::Regex, "a", r"\d+")?;
        assert!(m.matches("123"));
        assert!(!m.matches("x123"));
        // Arabic-Indic digits are \d in Rust's Unicode mode but not in Go.
        assert!(!m.matches("\u{0663}"));
        let w = Matcher::new(MatchType::Regex, "a", r"[\w-]+")?;
        assert!(w.matches("a-b_1"));
        Ok(())
    }

    #[test]
    fn literal_braces_like_go() -> Result<()> {
        let m = Matcher::new(MatchType::Regex, "a", "a{b}c")?;
        assert!(m.matches("a{b}c"));
        let rep = Matcher::new(MatchType::Regex, "a", "a{2}")?;
        assert!(rep.matches("aa"));
        Ok(())
    }

    #[test]
    fn not_kinds_and_empty() -> Result<()> {
        let ne = Matcher::new(MatchType::NotEqual, "a", "x")?;
        assert!(ne.matches(""));
        let nre = Matcher::new(MatchType::NotRegex, "a", "x|y")?;
        assert!(!nre.matches("y"));
        assert!(nre.matches("z"));
        Ok(())
    }

    #[test]
    fn invalid_regex_is_error() {
        assert!(Matcher::new(MatchType::Regex, "a", "(.*").is_err());
    }
}
