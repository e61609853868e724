//! Template parsing and expansion, with expected texts from Prometheus's and Go's behaviour.

use std::collections::BTreeMap;

use super::*;

fn data(labels: &[(&str, &str)], value: f64) -> AlertData {
    AlertData {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        external_labels: BTreeMap::from([("cluster".to_owned(), "eu".to_owned())]),
        external_url: "http://thanos.example.com/prefix".to_owned(),
        value,
    }
}

fn expand(text: &str, data: &AlertData) -> String {
    let template = Template::parse("__alert_Test", text).expect("parses");
    template
        .try_expand_alert(data, &NoQuery)
        .unwrap_or_else(|err| panic!("expand {text:?}: {err}"))
}

struct FixedQuery;

impl QueryFunc for FixedQuery {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        assert_eq!(expr, "up{job=\"api\"}");
        Ok(vec![
            QuerySample {
                labels: BTreeMap::from([("instance".to_owned(), "b:9090".to_owned())]),
                value: 0.0,
            },
            QuerySample {
                labels: BTreeMap::from([("instance".to_owned(), "a:9090".to_owned())]),
                value: 1.0,
            },
        ])
    }
}

#[test]
fn variables_fields_and_pipelines() {
    let d = data(&[("job", "api"), ("instance", "a:9090")], 0.25);
    assert_eq!(
        expand(
            "{{ $labels.job }} on {{ $labels.instance }} is {{ $value }}",
            &d
        ),
        "api on a:9090 is 0.25"
    );
    assert_eq!(expand("{{ .Labels.job }}/{{ .Value }}", &d), "api/0.25");
    assert_eq!(expand("{{ $externalLabels.cluster }}", &d), "eu");
    assert_eq!(expand("{{ $labels.missing }}|", &d), "|");
    assert_eq!(expand("{{ $value | humanizePercentage }}", &d), "25%");
    assert_eq!(
        expand(
            r#"{{ printf "%.2f" $value }} {{ printf "%s=%d" "n" 3 }}"#,
            &d
        ),
        "0.25 n=3"
    );
    assert_eq!(
        expand("{{ $labels.job | toUpper | printf \"[%s]\" }}", &d),
        "[API]"
    );
    assert_eq!(expand("{{- \" a \" -}} b", &d), " a b");
    assert_eq!(expand("x {{/* comment */}} y", &d), "x  y");
    assert_eq!(
        expand("{{ $x := 3 }}{{ $x }}{{ $x = 4 }}{{ $x }}", &d),
        "34"
    );
    assert_eq!(
        expand("{{ title \"hello wide world\" }}", &d),
        "Hello Wide World"
    );
    assert_eq!(
        expand(r#"{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}"#, &d),
        "a"
    );
    assert_eq!(expand(r#"{{ match "^a" $labels.instance }}"#, &d), "true");
    assert_eq!(expand("{{ stripPort $labels.instance }}", &d), "a");
    assert_eq!(expand("{{ pathPrefix }}", &d), "/prefix");
    assert_eq!(
        expand("{{ graphLink \"up\" }}", &d),
        "/prefix/graph?g0.expr=up&g0.tab=0"
    );
    assert_eq!(expand("{{ (args 1 \"x\").arg1 }}", &d), "x");
    assert_eq!(expand("{{ len $labels }}", &d), "2");
    assert_eq!(expand("{{ index $labels \"job\" }}", &d), "api");
}

#[test]
fn control_structures() {
    let d = data(&[("severity", "page")], 3.0);
    assert_eq!(
        expand(
            "{{ if eq $labels.severity \"page\" }}wake{{ else if gt $value 1.0 }}look{{ else }}sleep{{ end }}",
            &d
        ),
        "wake"
    );
    let low = data(&[("severity", "ticket")], 3.0);
    assert_eq!(
        expand(
            "{{ if eq $labels.severity \"page\" }}wake{{ else if gt $value 1.0 }}look{{ else }}sleep{{ end }}",
            &low
        ),
        "look"
    );
    assert_eq!(
        expand(
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            &d
        ),
        "severity=page;"
    );
    assert_eq!(
        expand("{{ with $labels.none }}x{{ else }}empty{{ end }}", &d),
        "empty"
    );
    assert_eq!(
        expand("{{ with $labels.severity }}{{ . }}{{ end }}", &d),
        "page"
    );
    assert_eq!(
        expand("{{ range $labels.none }}x{{ else }}none{{ end }}", &d),
        "none"
    );
    assert_eq!(expand("{{ if and 1 0 }}a{{ else }}b{{ end }}", &d), "b");
    assert_eq!(expand("{{ or 0 \"\" \"z\" }}", &d), "z");
    assert_eq!(expand("{{ not false }}", &d), "true");
}

#[test]
fn query_functions() {
    let d = data(&[], 1.0);
    let template = Template::parse(
        "__alert_Test",
        r#"{{ with query "up{job=\"api\"}" }}{{ range sortByLabel "instance" . }}{{ label "instance" . }}={{ value . }} {{ end }}{{ . | first | value }}{{ end }}"#,
    )
    .expect("parses");
    assert_eq!(
        template.try_expand_alert(&d, &FixedQuery).expect("expands"),
        "a:9090=1 b:9090=0 0"
    );
    // Without a query path the expansion error is reported in the text, as Prometheus does.
    let failed = template.expand_alert(&d, &NoQuery);
    assert!(
        failed.starts_with(
            "<error expanding template: template: __alert_Test:1: error calling query"
        ),
        "{failed}"
    );
}

#[test]
fn humanize_functions_match_prometheus() {
    let cases: &[(&str, f64, &str)] = &[
        ("humanize", 0.0, "0"),
        ("humanize", 1234567.0, "1.235M"),
        ("humanize", 12.5, "12.5"),
        ("humanize", 0.012345, "12.35m"),
        ("humanize", -1500.0, "-1.5k"),
        ("humanize", f64::INFINITY, "+Inf"),
        ("humanize1024", 1048576.0, "1Mi"),
        ("humanize1024", 1.0, "1"),
        ("humanize1024", 1536.0, "1.5ki"),
        ("humanizeDuration", 0.0, "0s"),
        ("humanizeDuration", 3600.0, "1h 0m 0s"),
        ("humanizeDuration", 90061.0, "1d 1h 1m 1s"),
        ("humanizeDuration", 59.5, "59.5s"),
        ("humanizeDuration", 0.1234, "123.4ms"),
        ("humanizePercentage", 0.1234567, "12.35%"),
        (
            "humanizeTimestamp",
            1435065584.128,
            "2015-06-23 13:19:44.128 +0000 UTC",
        ),
    ];
    for (function, value, expected) in cases {
        let d = data(&[], *value);
        assert_eq!(
            expand(&format!("{{{{ {function} $value }}}}"), &d),
            *expected,
            "{function}({value})"
        );
    }
}

#[test]
fn go_formatting() {
    assert_eq!(go_format_float(1.0, 'e', None), "1e+00");
    assert_eq!(go_format_float(1234.5, 'e', None), "1.2345e+03");
    assert_eq!(go_format_float(0.000123, 'g', Some(4)), "0.000123");
    assert_eq!(go_format_float(123456.0, 'g', Some(4)), "1.235e+05");
    assert_eq!(go_format_float(100.0, 'g', Some(4)), "100");
    let d = data(&[], 2.0);
    assert_eq!(
        expand("{{ printf \"%5.1f|%-4d|%03d\" 3.14159 7 5 }}", &d),
        "  3.1|7   |005"
    );
    assert_eq!(
        expand("{{ printf \"%v %q\" 1e6 \"a\" }}", &d),
        "1e+06 \"a\""
    );
    assert_eq!(expand("{{ printf \"%d\" }}", &d), "%!d(MISSING)");
}

#[test]
fn bad_templates_are_refused_with_a_line() {
    let cases = [
        ("{{ nosuchfunc 1 }}", "function \"nosuchfunc\" not defined"),
        ("{{ if true }}x", "unexpected EOF"),
        ("{{ end }}", "unexpected {{end}}"),
        ("a\nb {{ $labels.x", "unclosed action"),
        ("{{ define \"x\" }}{{ end }}", "not supported"),
        ("{{ \"unterminated }}", "unclosed action"),
        ("{{ \"bad escape \\q\" }}", "unknown escape sequence"),
    ];
    for (text, expected) in cases {
        let err = Template::parse("__alert_T", text).expect_err(text);
        assert!(err.to_string().contains(expected), "{text:?}: {err}");
        assert!(err.to_string().starts_with("template: __alert_T:"), "{err}");
    }
    let err = Template::parse("t", "line1\nline2 {{ bad }}").expect_err("line");
    assert_eq!(err.line, 2, "{err}");
    // Deep nesting is refused, not a stack overflow.
    let deep = "{{ if true }}".repeat(500) + &"{{ end }}".repeat(500);
    assert!(Template::parse("t", &deep).is_err());
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(Template::parse("t", &parens).is_err());
}

#[test]
fn expansion_errors_and_limits() {
    let d = data(&[], 1.0);
    let template = Template::parse("t", "{{ $labels.job.x }}").expect("parses");
    assert!(template.try_expand_alert(&d, &NoQuery).is_err());
    let template = Template::parse("t", "{{ range 1000000000 }}x{{ end }}").expect("parses");
    assert!(template.try_expand_alert(&d, &NoQuery).is_err());
    let template = Template::parse("t", "{{ first (args) }}").expect("parses");
    assert!(
        template
            .expand_alert(&d, &NoQuery)
            .starts_with("<error expanding template")
    );
}
