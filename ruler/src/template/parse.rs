//! Lexing and parsing of the template subset into a tree. Function names are checked here, as
//! Go does at parse time, so an unknown function refuses the rule file.

use super::{MAX_DEPTH, TemplateError};

/// A node of the template tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action {
        line: usize,
        pipe: Pipeline,
    },
    If {
        line: usize,
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        line: usize,
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        line: usize,
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `$a, $b := cmd | cmd`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Variables declared (`:=`) or assigned (`=`).
    pub vars: Vec<String>,
    pub declare: bool,
    pub commands: Vec<Command>,
}

/// One command of a pipeline: an operand, or a function with arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.` followed by fields (`.Labels.job`); empty for `.` itself.
    Dot(Vec<String>),
    /// `$name` followed by fields.
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `( pipeline )` followed by fields.
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Number(String),
    Pipe,
    LParen,
    RParen(Vec<String>),
    Declare,
    Assign,
    Comma,
}

/// Every function a template may call.
pub const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "toUpper",
    "toLower",
    "title",
    "match",
    "reReplaceAll",
    "safeHtml",
    "args",
    "graphLink",
    "tableLink",
    "stripPort",
    "stripDomain",
    "parseDuration",
    "toTime",
    "toDuration",
    "now",
    "pathPrefix",
    "externalURL",
    "urlQueryEscape",
];

/// One `{{ ... }}` or text piece with its starting line.
#[derive(Debug)]
enum Piece {
    Text(String),
    Action { line: usize, tokens: Vec<Token> },
}

struct Ctx<'a> {
    name: &'a str,
}

impl Ctx<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> TemplateError {
        TemplateError {
            name: self.name.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// Parses `text` into nodes.
pub fn parse(name: &str, text: &str) -> Result<Vec<Node>, TemplateError> {
    let ctx = Ctx { name };
    let pieces = split(&ctx, text)?;
    let mut position = 0;
    let (nodes, end) = parse_list(&ctx, &pieces, &mut position, 0)?;
    if let Some((line, word)) = end {
        return Err(ctx.err(line, format!("unexpected {{{{{word}}}}}")));
    }
    Ok(nodes)
}

/// Splits the text into text pieces and tokenised actions (comments dropped, trim markers
/// applied).
fn split(ctx: &Ctx<'_>, text: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut line = 1;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            pieces.push(Piece::Text(rest.to_owned()));
            break;
        };
        let mut before = &rest[..open];
        let mut inner_start = open + 2;
        // `{{- ` trims the space before the action.
        if rest[inner_start..].starts_with("- ")
            || rest[inner_start..].starts_with("-\t")
            || rest[inner_start..].starts_with("-\n")
        {
            before = before.trim_end();
            inner_start += 1;
        }
        if !before.is_empty() {
            pieces.push(Piece::Text(before.to_owned()));
        }
        line += rest[..inner_start].matches('\n').count();
        let after_open = &rest[inner_start..];
        let action_line = line;
        let (inner, after, trim_after) = if after_open.trim_start().starts_with("/*") {
            let start = after_open.find("/*").unwrap_or(0);
            let Some(close) = after_open[start..].find("*/") else {
                return Err(ctx.err(line, "unclosed comment"));
            };
            let tail = &after_open[start + close + 2..];
            let tail_trimmed = tail.trim_start();
            let (trim, tail) = if let Some(t) = tail_trimmed.strip_prefix("-}}") {
                (true, t)
            } else if let Some(t) = tail_trimmed.strip_prefix("}}") {
                (false, t)
            } else {
                return Err(ctx.err(line, "comment ends before closing delimiter"));
            };
            line += after_open[..after_open.len() - tail.len()]
                .matches('\n')
                .count();
            rest = tail;
            if trim {
                rest = rest.trim_start();
            }
            continue;
        } else {
            let close = find_close(after_open).ok_or_else(|| ctx.err(line, "unclosed action"))?;
            let mut inner = &after_open[..close];
            let mut trim_after = false;
            if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
                inner = &inner[..inner.len() - 1];
                trim_after = true;
            }
            (inner, &after_open[close + 2..], trim_after)
        };
        line += inner.matches('\n').count();
        let tokens = lex(ctx, inner, action_line)?;
        pieces.push(Piece::Action {
            line: action_line,
            tokens,
        });
        rest = if trim_after {
            after.trim_start()
        } else {
            after
        };
        if trim_after {
            line += after[..after.len() - rest.len()].matches('\n').count();
        }
    }
    Ok(pieces)
}

/// The offset of the `}}` closing an action, skipping quoted strings.
fn find_close(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'"') => {
                i += 1;
                while i < bytes.len() && bytes.get(i) != Some(&b'"') {
                    if bytes.get(i) == Some(&b'\\') {
                        i += 1;
                    }
                    i += 1;
                }
            }
            Some(b'`') => {
                i += 1;
                while i < bytes.len() && bytes.get(i) != Some(&b'`') {
                    i += 1;
                }
            }
            Some(b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads `.a.b.c` field chains after an operand.
fn read_fields(chars: &[char], i: &mut usize) -> Vec<String> {
    let mut fields = Vec::new();
    while chars.get(*i) == Some(&'.') && chars.get(*i + 1).is_some_and(|c| is_ident_char(*c)) {
        *i += 1;
        let start = *i;
        while chars.get(*i).is_some_and(|c| is_ident_char(*c)) {
            *i += 1;
        }
        fields.push(chars[start..*i].iter().collect());
    }
    fields
}

fn lex(ctx: &Ctx<'_>, text: &str, line: usize) -> Result<Vec<Token>, TemplateError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                i += 1;
                let fields = read_fields(&chars, &mut i);
                tokens.push(Token::RParen(fields));
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Declare);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Assign);
                i += 1;
            }
            '.' => {
                if chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                    let start = i;
                    i += 1;
                    while chars
                        .get(i)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.')
                    {
                        i += 1;
                    }
                    tokens.push(Token::Number(chars[start..i].iter().collect()));
                    continue;
                }
                let fields = read_fields(&chars, &mut i);
                if fields.is_empty() {
                    i += 1;
                }
                tokens.push(Token::Dot(fields));
            }
            '$' => {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(|c| is_ident_char(*c)) {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let fields = read_fields(&chars, &mut i);
                tokens.push(Token::Var(name, fields));
            }
            '"' => {
                i += 1;
                let mut value = String::new();
                loop {
                    match chars.get(i) {
                        None | Some('\n') => {
                            return Err(ctx.err(line, "unterminated quoted string"));
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let escaped = chars
                                .get(i + 1)
                                .ok_or_else(|| ctx.err(line, "unterminated quoted string"))?;
                            i += 2;
                            match escaped {
                                'n' => value.push('\n'),
                                't' => value.push('\t'),
                                'r' => value.push('\r'),
                                '\\' => value.push('\\'),
                                '"' => value.push('"'),
                                '\'' => value.push('\''),
                                'x' | 'u' | 'U' => {
                                    let len = match escaped {
                                        'x' => 2,
                                        'u' => 4,
                                        _ => 8,
                                    };
                                    let hex: String =
                                        chars.get(i..i + len).unwrap_or_default().iter().collect();
                                    let code = u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .and_then(char::from_u32)
                                        .ok_or_else(|| ctx.err(line, "invalid escape in string"))?;
                                    value.push(code);
                                    i += len;
                                }
                                other => {
                                    return Err(ctx
                                        .err(line, format!("unknown escape sequence: \\{other}")));
                                }
                            }
                        }
                        Some(&c) => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(value));
            }
            '`' => {
                i += 1;
                let start = i;
                while chars.get(i).is_some_and(|c| *c != '`') {
                    i += 1;
                }
                if chars.get(i).is_none() {
                    return Err(ctx.err(line, "unterminated raw quoted string"));
                }
                tokens.push(Token::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            '\'' => {
                // A character constant is an integer in Go.
                let ch = chars
                    .get(i + 1)
                    .copied()
                    .filter(|_| chars.get(i + 2) == Some(&'\''))
                    .ok_or_else(|| ctx.err(line, "invalid character constant"))?;
                tokens.push(Token::Number((ch as u32).to_string()));
                i += 3;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars
                        .get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                    || (chars.get(i).is_some_and(|c| *c == '+' || *c == '-')
                        && chars.get(i - 1).is_some_and(|p| *p == 'e' || *p == 'E'))
                {
                    i += 1;
                }
                tokens.push(Token::Number(chars[start..i].iter().collect()));
            }
            c if is_ident_char(c) => {
                let start = i;
                while chars.get(i).is_some_and(|c| is_ident_char(*c)) {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(ctx.err(line, format!("unexpected {other:?} in command")));
            }
        }
    }
    Ok(tokens)
}

/// The `end`/`else` action that closed a list: its line and keyword.
type EndKeyword = (usize, String);

/// Parses nodes until an `end`/`else` keyword or the end; returns the keyword met (with its
/// line and the rest of its tokens kept in `pieces` position).
fn parse_list(
    ctx: &Ctx<'_>,
    pieces: &[Piece],
    position: &mut usize,
    depth: usize,
) -> Result<(Vec<Node>, Option<EndKeyword>), TemplateError> {
    if depth > MAX_DEPTH {
        return Err(ctx.err(0, format!("nesting deeper than {MAX_DEPTH}")));
    }
    let mut nodes = Vec::new();
    while let Some(piece) = pieces.get(*position) {
        *position += 1;
        let (line, tokens) = match piece {
            Piece::Text(text) => {
                nodes.push(Node::Text(text.clone()));
                continue;
            }
            Piece::Action { line, tokens } => (*line, tokens),
        };
        let keyword = match tokens.first() {
            Some(Token::Ident(word)) => word.as_str(),
            None => return Err(ctx.err(line, "missing value for command")),
            _ => "",
        };
        match keyword {
            "end" | "else" => {
                *position -= 1;
                return Ok((nodes, Some((line, keyword.to_owned()))));
            }
            "if" | "range" | "with" => {
                let node =
                    parse_control(ctx, pieces, position, depth, line, keyword, &tokens[1..])?;
                nodes.push(node);
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(ctx.err(line, format!("{{{{{keyword}}}}} is not supported")));
            }
            _ => nodes.push(Node::Action {
                line,
                pipe: parse_pipeline(ctx, line, tokens, depth)?,
            }),
        }
    }
    Ok((nodes, None))
}

fn parse_control(
    ctx: &Ctx<'_>,
    pieces: &[Piece],
    position: &mut usize,
    depth: usize,
    line: usize,
    keyword: &str,
    tokens: &[Token],
) -> Result<Node, TemplateError> {
    let mut branches = vec![(parse_pipeline(ctx, line, tokens, depth)?, Vec::new())];
    let mut otherwise = Vec::new();
    loop {
        let (body, end) = parse_list(ctx, pieces, position, depth + 1)?;
        let Some((end_line, word)) = end else {
            return Err(ctx.err(line, format!("unexpected EOF in {keyword}")));
        };
        // Consume the `end`/`else` action.
        let end_tokens = match pieces.get(*position) {
            Some(Piece::Action { tokens, .. }) => tokens.clone(),
            _ => Vec::new(),
        };
        *position += 1;
        if let Some(last) = branches.last_mut() {
            last.1 = body;
        }
        if word == "end" {
            if end_tokens.len() > 1 {
                return Err(ctx.err(end_line, "unexpected tokens after end"));
            }
            break;
        }
        // `else`, or `else if ...` / `else with ...`.
        match end_tokens.get(1) {
            None => {
                let (body, end) = parse_list(ctx, pieces, position, depth + 1)?;
                match end {
                    Some((_, word)) if word == "end" => {
                        *position += 1;
                        otherwise = body;
                        break;
                    }
                    Some((else_line, _)) => {
                        return Err(ctx.err(else_line, "expected end; found {{else}}".to_owned()));
                    }
                    None => return Err(ctx.err(line, format!("unexpected EOF in {keyword}"))),
                }
            }
            Some(Token::Ident(word)) if word == keyword && keyword != "range" => {
                let pipe = parse_pipeline(ctx, end_line, &end_tokens[2..], depth)?;
                branches.push((pipe, Vec::new()));
            }
            _ => return Err(ctx.err(end_line, "unexpected tokens after else")),
        }
    }
    Ok(match keyword {
        "if" => Node::If {
            line,
            branches,
            otherwise,
        },
        _ => {
            // `with ... else with ...` becomes nested withs; `range` has one branch.
            let mut branches = branches.into_iter().rev();
            let mut node_otherwise = otherwise;
            let mut node = None;
            for (pipe, body) in branches.by_ref() {
                let built = if keyword == "range" {
                    Node::Range {
                        line,
                        pipe,
                        body,
                        otherwise: node_otherwise,
                    }
                } else {
                    Node::With {
                        line,
                        pipe,
                        body,
                        otherwise: node_otherwise,
                    }
                };
                node_otherwise = vec![built.clone()];
                node = Some(built);
            }
            node.ok_or_else(|| ctx.err(line, format!("missing {keyword} pipeline")))?
        }
    })
}

fn parse_pipeline(
    ctx: &Ctx<'_>,
    line: usize,
    tokens: &[Token],
    depth: usize,
) -> Result<Pipeline, TemplateError> {
    if depth > MAX_DEPTH {
        return Err(ctx.err(line, format!("nesting deeper than {MAX_DEPTH}")));
    }
    let mut vars = Vec::new();
    let mut declare = false;
    let mut rest = tokens;
    // `$x :=`, `$x =`, `$i, $e :=`.
    let assign_at = tokens
        .iter()
        .position(|t| matches!(t, Token::Declare | Token::Assign));
    if let Some(at) = assign_at {
        let head = &tokens[..at];
        let is_var_list = !head.is_empty()
            && head.iter().enumerate().all(|(i, t)| {
                if i % 2 == 0 {
                    matches!(t, Token::Var(_, fields) if fields.is_empty())
                } else {
                    matches!(t, Token::Comma)
                }
            });
        if is_var_list {
            for token in head.iter().step_by(2) {
                if let Token::Var(name, _) = token {
                    vars.push(name.clone());
                }
            }
            declare = matches!(tokens.get(at), Some(Token::Declare));
            rest = &tokens[at + 1..];
        }
    }
    let mut commands = Vec::new();
    let mut i = 0;
    let mut args = Vec::new();
    while i < rest.len() {
        match &rest[i] {
            Token::Pipe => {
                if args.is_empty() {
                    return Err(ctx.err(line, "missing command"));
                }
                commands.push(Command {
                    args: std::mem::take(&mut args),
                });
                i += 1;
            }
            _ => {
                let (arg, next) = parse_operand(ctx, line, rest, i, depth)?;
                args.push(arg);
                i = next;
            }
        }
    }
    if args.is_empty() {
        return Err(ctx.err(line, "missing value for command"));
    }
    commands.push(Command { args });
    Ok(Pipeline {
        vars,
        declare,
        commands,
    })
}

fn parse_operand(
    ctx: &Ctx<'_>,
    line: usize,
    tokens: &[Token],
    at: usize,
    depth: usize,
) -> Result<(Arg, usize), TemplateError> {
    let token = tokens
        .get(at)
        .ok_or_else(|| ctx.err(line, "missing operand"))?;
    let arg = match token {
        Token::Dot(fields) => Arg::Dot(fields.clone()),
        Token::Var(name, fields) => Arg::Var(name.clone(), fields.clone()),
        Token::Str(value) => Arg::Str(value.clone()),
        Token::Number(text) => parse_number(text)
            .ok_or_else(|| ctx.err(line, format!("bad number syntax: {text:?}")))?,
        Token::Ident(word) => match word.as_str() {
            "true" => Arg::Bool(true),
            "false" => Arg::Bool(false),
            "nil" => Arg::Nil,
            name if FUNCTIONS.contains(&name) => Arg::Func(name.to_owned()),
            name => {
                return Err(ctx.err(line, format!("function {name:?} not defined")));
            }
        },
        Token::LParen => {
            // Find the matching parenthesis.
            let mut level = 0usize;
            let mut end = None;
            for (offset, token) in tokens.iter().enumerate().skip(at) {
                match token {
                    Token::LParen => level += 1,
                    Token::RParen(_) => {
                        level = level.saturating_sub(1);
                        if level == 0 {
                            end = Some(offset);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| ctx.err(line, "unclosed left paren"))?;
            let inner = parse_pipeline(ctx, line, &tokens[at + 1..end], depth + 1)?;
            let fields = match tokens.get(end) {
                Some(Token::RParen(fields)) => fields.clone(),
                _ => Vec::new(),
            };
            return Ok((Arg::Sub(Box::new(inner), fields), end + 1));
        }
        Token::RParen(_) => return Err(ctx.err(line, "unexpected right paren")),
        Token::Comma => return Err(ctx.err(line, "unexpected \",\" in command")),
        Token::Declare | Token::Assign => {
            return Err(ctx.err(line, "unexpected \"=\" in operand"));
        }
        Token::Pipe => return Err(ctx.err(line, "unexpected \"|\" in operand")),
    };
    Ok((arg, at + 1))
}

fn parse_number(text: &str) -> Option<Arg> {
    let clean = text.replace('_', "");
    let (negative, digits) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_owned()),
    };
    let parsed_int = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(value) = parsed_int {
        return Some(Arg::Int(if negative { -value } else { value }));
    }
    let value: f64 = digits.parse().ok()?;
    Some(Arg::Float(if negative { -value } else { value }))
}
