//! Evaluation of the template tree and the functions templates call, with Go's formatting
//! (`fmt` verbs, `%.4g`, `time.Time` and `time.Duration` printing).

use std::fmt::Write as _;

use super::parse::{Arg, Command, Node, Pipeline};
use super::{MAX_ITERATIONS, MAX_OUTPUT, QueryFunc, TemplateError, Value};

pub(super) struct State<'a> {
    pub name: &'a str,
    pub vars: Vec<(String, Value)>,
    pub out: String,
    pub iterations: usize,
    pub query: &'a dyn QueryFunc,
    pub external_url: &'a str,
}

type Result<T> = std::result::Result<T, TemplateError>;

impl State<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> TemplateError {
        TemplateError {
            name: self.name.to_owned(),
            line,
            message: message.into(),
        }
    }

    pub fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<()> {
        for node in nodes {
            if self.out.len() > MAX_OUTPUT {
                return Err(self.err(0, format!("output larger than {MAX_OUTPUT} bytes")));
            }
            match node {
                Node::Text(text) => self.out.push_str(text),
                Node::Action { line, pipe } => {
                    let value = self.pipeline(*line, pipe, dot)?;
                    if pipe.vars.is_empty() {
                        value.print(&mut self.out);
                    }
                }
                Node::If {
                    line,
                    branches,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let mut taken = false;
                    for (pipe, body) in branches {
                        if self.pipeline(*line, pipe, dot)?.truth() {
                            self.walk(body, dot)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With {
                    line,
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let value = self.pipeline(*line, pipe, dot)?;
                    if value.truth() {
                        self.walk(body, &value)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range {
                    line,
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let mut range_pipe = pipe.clone();
                    let vars = std::mem::take(&mut range_pipe.vars);
                    let value = self.pipeline(*line, &range_pipe, dot)?;
                    let items = self.range_items(*line, &value)?;
                    if items.is_empty() {
                        self.walk(otherwise, dot)?;
                    }
                    for (key, element) in items {
                        self.iterations += 1;
                        if self.iterations > MAX_ITERATIONS {
                            return Err(
                                self.err(*line, format!("more than {MAX_ITERATIONS} iterations"))
                            );
                        }
                        let inner = self.vars.len();
                        match vars.as_slice() {
                            [] => {}
                            [single] => self.vars.push((single.clone(), element.clone())),
                            [k, v, ..] => {
                                self.vars.push((k.clone(), key));
                                self.vars.push((v.clone(), element.clone()));
                            }
                        }
                        self.walk(body, &element)?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn range_items(&self, line: usize, value: &Value) -> Result<Vec<(Value, Value)>> {
        Ok(match value {
            Value::Nil => Vec::new(),
            Value::Str(text) if text.is_empty() => Vec::new(),
            Value::Labels(map) => map
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                .collect(),
            Value::Map(map) => map
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::Samples(samples) => samples
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::Sample(s.clone())))
                .collect(),
            Value::Int(n) => (0..(*n).clamp(0, MAX_ITERATIONS as i64 + 1))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            other => {
                return Err(self.err(
                    line,
                    format!("range can't iterate over {}", other.to_text()),
                ));
            }
        })
    }

    fn pipeline(&mut self, line: usize, pipe: &Pipeline, dot: &Value) -> Result<Value> {
        let mut previous: Option<Value> = None;
        for command in &pipe.commands {
            previous = Some(self.command(line, command, dot, previous)?);
        }
        let value = previous.unwrap_or(Value::Nil);
        for name in &pipe.vars {
            if pipe.declare {
                self.vars.push((name.clone(), value.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = value.clone();
            } else {
                return Err(self.err(line, format!("undefined variable: {name}")));
            }
        }
        Ok(value)
    }

    fn command(
        &mut self,
        line: usize,
        command: &Command,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value> {
        let Some(first) = command.args.first() else {
            return Err(self.err(line, "empty command"));
        };
        if let Arg::Func(name) = first {
            let mut args = Vec::with_capacity(command.args.len());
            for arg in &command.args[1..] {
                args.push(self.operand(line, arg, dot)?);
            }
            if let Some(piped) = piped {
                args.push(piped);
            }
            return self.call(line, name, args);
        }
        if command.args.len() > 1 || piped.is_some() {
            return Err(self.err(
                line,
                format!("can't give argument to non-function {}", describe(first)),
            ));
        }
        self.operand(line, first, dot)
    }

    fn operand(&mut self, line: usize, arg: &Arg, dot: &Value) -> Result<Value> {
        match arg {
            Arg::Dot(fields) => self.fields(line, dot.clone(), fields),
            Arg::Var(name, fields) => {
                let value = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.err(line, format!("undefined variable: {name}")))?;
                self.fields(line, value, fields)
            }
            Arg::Func(name) => self.call(line, name, Vec::new()),
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Int(i) => Ok(Value::Int(*i)),
            Arg::Float(f) => Ok(Value::Float(*f)),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Ok(Value::Nil),
            Arg::Sub(pipe, fields) => {
                let mark = self.vars.len();
                let value = self.pipeline(line, pipe, dot)?;
                self.vars.truncate(mark);
                self.fields(line, value, fields)
            }
        }
    }

    fn fields(&self, line: usize, mut value: Value, fields: &[String]) -> Result<Value> {
        for field in fields {
            value = match value {
                // missingkey=zero: an absent label is the empty string.
                Value::Labels(map) => Value::Str(map.get(field).cloned().unwrap_or_default()),
                Value::Map(map) => map.get(field).cloned().unwrap_or(Value::Nil),
                Value::Sample(sample) => match field.as_str() {
                    "Labels" => Value::Labels(sample.labels),
                    "Value" => Value::Float(sample.value),
                    _ => {
                        return Err(self.err(
                            line,
                            format!("can't evaluate field {field} in type *template.sample"),
                        ));
                    }
                },
                Value::Nil => {
                    return Err(self.err(line, format!("nil pointer evaluating .{field}")));
                }
                other => {
                    return Err(self.err(
                        line,
                        format!("can't evaluate field {field} in type {}", other.type_name()),
                    ));
                }
            };
        }
        Ok(value)
    }

    fn call(&mut self, line: usize, name: &str, args: Vec<Value>) -> Result<Value> {
        let fail = |message: String| TemplateError {
            name: self.name.to_owned(),
            line,
            message: format!("error calling {name}: {message}"),
        };
        let arity = |n: usize| -> Result<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(TemplateError {
                    name: self.name.to_owned(),
                    line,
                    message: format!(
                        "wrong number of args for {name}: want {n} got {}",
                        args.len()
                    ),
                })
            }
        };
        let string_arg = |i: usize| -> String {
            match args.get(i) {
                Some(Value::Str(s)) => s.clone(),
                Some(other) => other.to_text(),
                None => String::new(),
            }
        };
        Ok(match name {
            "and" => {
                let mut last = Value::Nil;
                for arg in args {
                    let truth = arg.truth();
                    last = arg;
                    if !truth {
                        break;
                    }
                }
                last
            }
            "or" => {
                let mut last = Value::Nil;
                for arg in args {
                    let truth = arg.truth();
                    last = arg;
                    if truth {
                        break;
                    }
                }
                last
            }
            "not" => {
                arity(1)?;
                Value::Bool(!args.first().is_some_and(Value::truth))
            }
            "len" => {
                arity(1)?;
                Value::Int(match args.first() {
                    Some(Value::Str(s)) => s.len() as i64,
                    Some(Value::Labels(m)) => m.len() as i64,
                    Some(Value::Map(m)) => m.len() as i64,
                    Some(Value::Samples(s)) => s.len() as i64,
                    Some(other) => {
                        return Err(fail(format!("len of type {}", other.type_name())));
                    }
                    None => 0,
                })
            }
            "index" => {
                let mut iter = args.into_iter();
                let mut value = iter.next().unwrap_or(Value::Nil);
                for key in iter {
                    value = match (value, key) {
                        (Value::Labels(map), key) => {
                            Value::Str(map.get(&key.to_text()).cloned().unwrap_or_default())
                        }
                        (Value::Map(map), key) => {
                            map.get(&key.to_text()).cloned().unwrap_or(Value::Nil)
                        }
                        (Value::Samples(samples), Value::Int(i)) => usize::try_from(i)
                            .ok()
                            .and_then(|i| samples.get(i).cloned())
                            .map(Value::Sample)
                            .ok_or_else(|| fail(format!("index out of range: {i}")))?,
                        (other, _) => {
                            return Err(fail(format!(
                                "can't index item of type {}",
                                other.type_name()
                            )));
                        }
                    };
                }
                value
            }
            "print" => Value::Str(go_sprint(&args)),
            "println" => {
                let mut text = args
                    .iter()
                    .map(Value::to_text)
                    .collect::<Vec<_>>()
                    .join(" ");
                text.push('\n');
                Value::Str(text)
            }
            "printf" => {
                let format = string_arg(0);
                Value::Str(go_sprintf(&format, args.get(1..).unwrap_or_default()))
            }
            "eq" => {
                if args.len() < 2 {
                    return Err(fail("missing argument for comparison".to_owned()));
                }
                let first = &args[0];
                let mut equal = false;
                for other in &args[1..] {
                    if compare(first, other).map_err(&fail)? == std::cmp::Ordering::Equal {
                        equal = true;
                        break;
                    }
                }
                Value::Bool(equal)
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                arity(2)?;
                let ordering = compare(&args[0], &args[1]).map_err(&fail)?;
                use std::cmp::Ordering::*;
                Value::Bool(match name {
                    "ne" => ordering != Equal,
                    "lt" => ordering == Less,
                    "le" => ordering != Greater,
                    "gt" => ordering == Greater,
                    _ => ordering != Less,
                })
            }
            "html" => Value::Str(html_escape(&go_sprint(&args))),
            "js" => Value::Str(js_escape(&go_sprint(&args))),
            "urlquery" | "urlQueryEscape" => Value::Str(query_escape(&go_sprint(&args))),
            "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
            | "humanizeTimestamp" => {
                arity(1)?;
                let v = to_float(&args[0]).map_err(&fail)?;
                Value::Str(match name {
                    "humanize" => humanize(v),
                    "humanize1024" => humanize_1024(v),
                    "humanizeDuration" => humanize_duration(v),
                    "humanizePercentage" => {
                        format!("{}%", go_format_float(v * 100.0, 'g', Some(4)))
                    }
                    _ => humanize_timestamp(v),
                })
            }
            "query" => {
                arity(1)?;
                let expr = string_arg(0);
                Value::Samples(self.query.query(&expr).map_err(&fail)?)
            }
            "first" => {
                arity(1)?;
                match &args[0] {
                    Value::Samples(samples) => {
                        samples.first().cloned().map(Value::Sample).ok_or_else(|| {
                            fail("first() called on vector with no elements".to_owned())
                        })?
                    }
                    other => return Err(fail(format!("first of type {}", other.type_name()))),
                }
            }
            "label" => {
                arity(2)?;
                let label = string_arg(0);
                match &args[1] {
                    Value::Sample(sample) => {
                        Value::Str(sample.labels.get(&label).cloned().unwrap_or_default())
                    }
                    other => return Err(fail(format!("label of type {}", other.type_name()))),
                }
            }
            "value" | "strvalue" => {
                arity(1)?;
                match &args[0] {
                    Value::Sample(sample) if name == "value" => Value::Float(sample.value),
                    Value::Sample(sample) => {
                        Value::Str(sample.labels.get("__value__").cloned().unwrap_or_default())
                    }
                    other => return Err(fail(format!("{name} of type {}", other.type_name()))),
                }
            }
            "sortByLabel" => {
                arity(2)?;
                let label = string_arg(0);
                match &args[1] {
                    Value::Samples(samples) => {
                        let mut sorted = samples.clone();
                        sorted.sort_by(|a, b| a.labels.get(&label).cmp(&b.labels.get(&label)));
                        Value::Samples(sorted)
                    }
                    other => {
                        return Err(fail(format!("sortByLabel of type {}", other.type_name())));
                    }
                }
            }
            "toUpper" => {
                arity(1)?;
                Value::Str(string_arg(0).to_uppercase())
            }
            "toLower" => {
                arity(1)?;
                Value::Str(string_arg(0).to_lowercase())
            }
            "title" => {
                arity(1)?;
                Value::Str(title(&string_arg(0)))
            }
            "match" => {
                arity(2)?;
                let re = regex::Regex::new(&string_arg(0)).map_err(|e| fail(e.to_string()))?;
                Value::Bool(re.is_match(&string_arg(1)))
            }
            "reReplaceAll" => {
                arity(3)?;
                let re = regex::Regex::new(&string_arg(0)).map_err(|e| fail(e.to_string()))?;
                let replacement = string_arg(1);
                Value::Str(
                    re.replace_all(&string_arg(2), replacement.as_str())
                        .into_owned(),
                )
            }
            "safeHtml" => {
                arity(1)?;
                Value::Str(string_arg(0))
            }
            "args" => Value::Map(
                args.into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("arg{i}"), v))
                    .collect(),
            ),
            "graphLink" | "tableLink" => {
                arity(1)?;
                let tab = if name == "graphLink" { 0 } else { 1 };
                Value::Str(format!(
                    "{}/graph?g0.expr={}&g0.tab={tab}",
                    path_prefix(self.external_url),
                    query_escape(&string_arg(0))
                ))
            }
            "stripPort" => {
                arity(1)?;
                let text = string_arg(0);
                Value::Str(strip_port(&text))
            }
            "stripDomain" => {
                arity(1)?;
                let text = string_arg(0);
                Value::Str(strip_domain(&text))
            }
            "parseDuration" => {
                arity(1)?;
                let d = strata_common::flags::parse_duration(&string_arg(0)).map_err(fail)?;
                Value::Float(d.as_secs_f64())
            }
            "toTime" => {
                arity(1)?;
                Value::Time(to_float(&args[0]).map_err(&fail)?)
            }
            "toDuration" => {
                arity(1)?;
                Value::Duration(to_float(&args[0]).map_err(&fail)?)
            }
            "now" => {
                arity(0)?;
                Value::Float(chrono::Utc::now().timestamp_millis() as f64 / 1000.0)
            }
            "pathPrefix" => {
                arity(0)?;
                Value::Str(path_prefix(self.external_url))
            }
            "externalURL" => {
                arity(0)?;
                Value::Str(self.external_url.to_owned())
            }
            other => return Err(self.err(line, format!("function {other:?} not defined"))),
        })
    }
}

fn describe(arg: &Arg) -> String {
    match arg {
        Arg::Dot(fields) if fields.is_empty() => ".".to_owned(),
        Arg::Dot(fields) => format!(".{}", fields.join(".")),
        Arg::Var(name, _) => name.clone(),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Int(i) => i.to_string(),
        Arg::Float(f) => f.to_string(),
        Arg::Bool(b) => b.to_string(),
        Arg::Nil => "nil".to_owned(),
        Arg::Func(name) => name.clone(),
        Arg::Sub(..) => "(...)".to_owned(),
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            let previous_is_string = matches!(args.get(i - 1), Some(Value::Str(_)));
            if !previous_is_string && !matches!(arg, Value::Str(_)) {
                out.push(' ');
            }
        }
        arg.print(&mut out);
    }
    out
}

/// Prometheus's `convertToFloat`: numbers, numeric strings, times and durations.
fn to_float(value: &Value) -> std::result::Result<f64, String> {
    match value {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        Value::Time(t) => Ok(*t),
        Value::Duration(d) => Ok(*d),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

fn compare(a: &Value, b: &Value) -> std::result::Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Nil, Value::Nil) => Ok(Ordering::Equal),
        (x, y) => {
            let numeric = |v: &Value| match v {
                Value::Int(i) => Some(*i as f64),
                Value::Float(f) => Some(*f),
                _ => None,
            };
            match (numeric(x), numeric(y)) {
                (Some(x), Some(y)) => x
                    .partial_cmp(&y)
                    .ok_or_else(|| "comparison of NaN".to_owned()),
                _ => Err(format!(
                    "incompatible types for comparison: {} and {}",
                    x.type_name(),
                    y.type_name()
                )),
            }
        }
    }
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// The path of the external URL, without a trailing slash.
fn path_prefix(external_url: &str) -> String {
    let after_scheme = external_url
        .split_once("://")
        .map_or(external_url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(at) => after_scheme[at..].trim_end_matches('/').to_owned(),
        None => String::new(),
    }
}

fn strip_port(host_port: &str) -> String {
    if let Some(rest) = host_port.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.to_owned();
    }
    match host_port.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host.to_owned(),
        _ => host_port.to_owned(),
    }
}

fn strip_domain(host_port: &str) -> String {
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        // An IPv6 literal has no domain.
        let _ = rest;
        return host_port.to_owned();
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (host_port, None),
        }
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host_port.to_owned();
    }
    let short = host.split('.').next().unwrap_or(host);
    match port {
        Some(port) => format!("{short}:{port}"),
        None => short.to_owned(),
    }
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of each word.
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous_is_letter = false;
    for c in text.chars() {
        let is_letter = c.is_alphanumeric() || c == '_' || c == '\'';
        if is_letter && !previous_is_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous_is_letter = is_letter;
    }
    out
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return go_format_float(v, 'g', Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_format_float(v, 'g', Some(4)))
}

fn humanize_1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return go_format_float(v, 'g', Some(4));
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_format_float(v, 'g', Some(4)))
}

fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return go_format_float(v, 'g', Some(4));
    }
    if v == 0.0 {
        return format!("{}s", go_format_float(v, 'g', Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let duration = v as i64;
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 3600) % 24;
        let days = duration / 86_400;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", go_format_float(v, 'g', Some(4)));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_format_float(v, 'g', Some(4)))
}

fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return go_format_float(v, 'g', Some(4));
    }
    go_time_string(v)
}

/// Go's `time.Time.String()` of a UTC time given in Unix seconds:
/// `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string(seconds: f64) -> String {
    // As Prometheus's `floatToTime`: nanoseconds, then truncated to model.Time milliseconds.
    let nanos = seconds * 1e9;
    if !nanos.is_finite() || nanos.abs() >= 9.2e18 {
        return go_format_float(seconds, 'g', Some(4));
    }
    let ms = (nanos as i64) / 1_000_000;
    let Some(time) = chrono::DateTime::from_timestamp_millis(ms) else {
        return go_format_float(seconds, 'g', Some(4));
    };
    let mut text = time.format("%Y-%m-%d %H:%M:%S").to_string();
    let millis = ms.rem_euclid(1000);
    if millis > 0 {
        let fraction = format!("{millis:03}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
pub fn go_duration_string(seconds: f64) -> String {
    if seconds == 0.0 || !seconds.is_finite() {
        return "0s".to_owned();
    }
    let negative = seconds < 0.0;
    let total_nanos = (seconds.abs() * 1e9).round();
    let sign = if negative { "-" } else { "" };
    if total_nanos < 1e3 {
        return format!("{sign}{}ns", total_nanos as u64);
    }
    if total_nanos < 1e6 {
        return format!("{sign}{}µs", trim_fraction(total_nanos / 1e3));
    }
    if total_nanos < 1e9 {
        return format!("{sign}{}ms", trim_fraction(total_nanos / 1e6));
    }
    let total_seconds = total_nanos / 1e9;
    let hours = (total_seconds / 3600.0).floor();
    let minutes = ((total_seconds - hours * 3600.0) / 60.0).floor();
    let secs = total_seconds - hours * 3600.0 - minutes * 60.0;
    let mut out = sign.to_owned();
    if hours > 0.0 {
        let _ = write!(out, "{}h", hours as u64);
    }
    if hours > 0.0 || minutes > 0.0 {
        let _ = write!(out, "{}m", minutes as u64);
    }
    let _ = write!(out, "{}s", trim_fraction(secs));
    out
}

fn trim_fraction(value: f64) -> String {
    let text = format!("{value:.9}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// Go's `strconv.FormatFloat` / `fmt` for verbs `e`, `f`, `g` with an optional precision
/// (`None` = shortest round-trip). `%g` drops trailing zeros, as Go does without `#`.
pub fn go_format_float(v: f64, verb: char, precision: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    match (verb, precision) {
        ('g', None) => strata_tsdb::gofmt::format_float_g(v),
        ('f', Some(p)) => format!("{v:.p$}"),
        ('f', None) => {
            // Shortest digits that round-trip, in plain notation.
            let text = format!("{v}");
            text
        }
        ('e', p) => {
            let text = match p {
                Some(p) => format!("{v:.p$e}"),
                None => format!("{v:e}"),
            };
            go_exponent(&text)
        }
        (_, Some(p)) => {
            // %g with precision p: %e when exp < -4 || exp >= p, trailing zeros removed.
            let p = p.max(1);
            let sci = format!("{:.*e}", p - 1, v);
            let exponent: i32 = sci
                .split_once('e')
                .and_then(|(_, e)| e.parse().ok())
                .unwrap_or(0);
            if exponent < -4 || exponent >= p as i32 {
                let (mantissa, _) = sci.split_once('e').unwrap_or((&sci, "0"));
                let mantissa = if mantissa.contains('.') {
                    mantissa.trim_end_matches('0').trim_end_matches('.')
                } else {
                    mantissa
                };
                go_exponent(&format!("{mantissa}e{exponent}"))
            } else {
                let decimals = (p as i32 - 1 - exponent).max(0) as usize;
                let text = format!("{v:.decimals$}");
                if text.contains('.') {
                    text.trim_end_matches('0').trim_end_matches('.').to_owned()
                } else {
                    text
                }
            }
        }
        _ => strata_tsdb::gofmt::format_float_g(v),
    }
}

/// Rust's `1.5e3` exponent written as Go writes it: `1.5e+03`.
fn go_exponent(text: &str) -> String {
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let value: i32 = exponent.parse().unwrap_or(0);
            let sign = if value < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", value.unsigned_abs())
        }
        None => text.to_owned(),
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %e %g %q %x %X %t %%`, with
/// flags `-+ 0`, width and precision. A verb without an operand prints `%!v(MISSING)`.
pub(super) fn go_sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut plus = false;
        let mut zero = false;
        let mut space = false;
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            precision = Some(digits.parse::<usize>().unwrap_or(0).min(100));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let mut text = match (verb, arg) {
            ('s' | 'v', Value::Float(f)) if verb == 'v' => go_format_float(*f, 'g', None),
            ('s' | 'v', other) => {
                let mut text = other.to_text();
                if let (Some(p), 's') = (precision, verb) {
                    text = text.chars().take(p).collect();
                }
                text
            }
            ('d', Value::Int(i)) => i.to_string(),
            ('d', Value::Float(f)) => format!("%!d(float64={})", go_format_float(*f, 'g', None)),
            ('f' | 'F' | 'e' | 'E' | 'g' | 'G', value) => match to_float(value) {
                Ok(f) => {
                    let lower = verb.to_ascii_lowercase();
                    let precision = match lower {
                        'g' => precision,
                        _ => Some(precision.unwrap_or(6)),
                    };
                    let text = go_format_float(f, lower, precision);
                    if verb.is_ascii_uppercase() {
                        text.to_uppercase()
                    } else {
                        text
                    }
                }
                Err(_) => format!("%!{verb}({}={})", arg.type_name(), arg.to_text()),
            },
            ('q', other) => format!("{:?}", other.to_text()),
            ('t', Value::Bool(b)) => b.to_string(),
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('X', Value::Int(i)) => format!("{i:X}"),
            ('x', other) => other
                .to_text()
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect(),
            ('X', other) => other
                .to_text()
                .bytes()
                .map(|b| format!("{b:02X}"))
                .collect(),
            (verb, other) => format!("%!{verb}({}={})", other.type_name(), other.to_text()),
        };
        let numeric = matches!(arg, Value::Int(_) | Value::Float(_));
        if numeric && !text.starts_with('-') {
            if plus {
                text.insert(0, '+');
            } else if space {
                text.insert(0, ' ');
            }
        }
        let width: usize = width.parse().unwrap_or(0).min(1000);
        let length = text.chars().count();
        if length < width {
            let padding = width - length;
            if minus {
                text.push_str(&" ".repeat(padding));
            } else if zero && numeric {
                let sign_len = usize::from(text.starts_with(['-', '+', ' ']));
                text.insert_str(sign_len, &"0".repeat(padding));
            } else {
                text.insert_str(0, &" ".repeat(padding));
            }
        }
        out.push_str(&text);
    }
    let extra: Vec<&Value> = args.collect();
    if !extra.is_empty() {
        out.push_str("%!(EXTRA ");
        let parts: Vec<String> = extra
            .iter()
            .map(|v| format!("{}={}", v.type_name(), v.to_text()))
            .collect();
        out.push_str(&parts.join(", "));
        out.push(')');
    }
    out
}
