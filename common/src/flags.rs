//! Command-line flag groups shared by the Strata services, with Thanos's exact flag names so
//! that manifests written for Thanos work unchanged. Each group is a clap `Args` struct that a
//! service flattens into its own flags; every flag has `long` and an `env` fallback
//! (`STRATA_` + the flag name in upper snake case).
//!
//! Also here: the value parsers Thanos's flags need: Go/Prometheus durations (`2m`, `1h30m`,
//! `15d`) and Thanos's time-or-duration values (`2024-01-01T00:00:00Z` or `-2h`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// `--http-address`, `--http-grace-period`: the HTTP server every component runs.
#[derive(Debug, Clone, Args)]
pub struct HttpServerFlags {
    /// Listen host:port for HTTP endpoints.
    #[arg(
        long = "http-address",
        env = "STRATA_HTTP_ADDRESS",
        default_value = "0.0.0.0:10902"
    )]
    pub http_address: String,

    /// Time to wait after an interrupt received for HTTP Server.
    #[arg(long = "http-grace-period", env = "STRATA_HTTP_GRACE_PERIOD", default_value = "2m", value_parser = parse_duration)]
    pub http_grace_period: Duration,
}

/// `--grpc-address`, `--grpc-grace-period`, `--grpc-server-tls-*`, `--grpc-server-max-connection-age`.
#[derive(Debug, Clone, Args)]
pub struct GrpcServerFlags {
    /// Listen ip:port address for gRPC endpoints (StoreAPI). Make sure this address is routable
    /// from other components.
    #[arg(
        long = "grpc-address",
        env = "STRATA_GRPC_ADDRESS",
        default_value = "0.0.0.0:10901"
    )]
    pub grpc_address: String,

    /// Time to wait after an interrupt received for GRPC Server.
    #[arg(long = "grpc-grace-period", env = "STRATA_GRPC_GRACE_PERIOD", default_value = "2m", value_parser = parse_duration)]
    pub grpc_grace_period: Duration,

    /// TLS Certificate for gRPC server, leave blank to disable TLS.
    #[arg(
        long = "grpc-server-tls-cert",
        env = "STRATA_GRPC_SERVER_TLS_CERT",
        default_value = ""
    )]
    pub grpc_server_tls_cert: String,

    /// TLS Key for the gRPC server, leave blank to disable TLS.
    #[arg(
        long = "grpc-server-tls-key",
        env = "STRATA_GRPC_SERVER_TLS_KEY",
        default_value = ""
    )]
    pub grpc_server_tls_key: String,

    /// TLS CA to verify clients against. If no client CA is specified, there is no client
    /// verification on server side (tls.NoClientCert).
    #[arg(
        long = "grpc-server-tls-client-ca",
        env = "STRATA_GRPC_SERVER_TLS_CLIENT_CA",
        default_value = ""
    )]
    pub grpc_server_tls_client_ca: String,

    /// TLS supported minimum version for gRPC server: 1.2 or 1.3 (1.3 accepts TLS 1.3 clients
    /// only). Thanos's 1.0 and 1.1 are refused at start-up: Strata's TLS library (rustls)
    /// does not speak them.
    #[arg(
        long = "grpc-server-tls-min-version",
        env = "STRATA_GRPC_SERVER_TLS_MIN_VERSION",
        default_value = "1.3"
    )]
    pub grpc_server_tls_min_version: String,

    /// The grpc server max connection age. This controls how often to re-establish
    /// connections and redo TLS handshakes.
    #[arg(long = "grpc-server-max-connection-age", env = "STRATA_GRPC_SERVER_MAX_CONNECTION_AGE", default_value = "60m", value_parser = parse_duration)]
    pub grpc_server_max_connection_age: Duration,
}

impl GrpcServerFlags {
    /// Whether TLS is configured (Thanos enables it when a certificate and key are given).
    pub fn tls_enabled(&self) -> bool {
        !self.grpc_server_tls_cert.is_empty() || !self.grpc_server_tls_key.is_empty()
    }
}

/// `--grpc-client-tls-*`, `--grpc-client-server-name`: how a component dials StoreAPI endpoints.
#[derive(Debug, Clone, Default, Args)]
pub struct GrpcClientFlags {
    /// Use TLS when talking to the gRPC server.
    #[arg(long = "grpc-client-tls-secure", env = "STRATA_GRPC_CLIENT_TLS_SECURE")]
    pub grpc_client_tls_secure: bool,

    /// Disable TLS certificate verification, i.e. self signed, signed by fake CA.
    #[arg(
        long = "grpc-client-tls-skip-verify",
        env = "STRATA_GRPC_CLIENT_TLS_SKIP_VERIFY"
    )]
    pub grpc_client_tls_skip_verify: bool,

    /// TLS Certificates to use to identify this client to the server.
    #[arg(
        long = "grpc-client-tls-cert",
        env = "STRATA_GRPC_CLIENT_TLS_CERT",
        default_value = ""
    )]
    pub grpc_client_tls_cert: String,

    /// TLS Key for the client's certificate.
    #[arg(
        long = "grpc-client-tls-key",
        env = "STRATA_GRPC_CLIENT_TLS_KEY",
        default_value = ""
    )]
    pub grpc_client_tls_key: String,

    /// TLS CA Certificates to use to verify gRPC servers.
    #[arg(
        long = "grpc-client-tls-ca",
        env = "STRATA_GRPC_CLIENT_TLS_CA",
        default_value = ""
    )]
    pub grpc_client_tls_ca: String,

    /// Server name to verify the hostname on the returned gRPC certificates.
    #[arg(
        long = "grpc-client-server-name",
        env = "STRATA_GRPC_CLIENT_SERVER_NAME",
        default_value = ""
    )]
    pub grpc_client_server_name: String,
}

/// Log severity threshold for `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Log line format for `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// `--log.level`, `--log.format`.
#[derive(Debug, Clone, Args)]
pub struct LogFlags {
    /// Log filtering level.
    #[arg(
        long = "log.level",
        env = "STRATA_LOG_LEVEL",
        value_enum,
        default_value = "info"
    )]
    pub log_level: LogLevel,

    /// Log format to use.
    #[arg(
        long = "log.format",
        env = "STRATA_LOG_FORMAT",
        value_enum,
        default_value = "logfmt"
    )]
    pub log_format: LogFormat,
}

/// `--tracing.config-file`, `--tracing.config`: Thanos's tracing YAML (`type:` + `config:`).
#[derive(Debug, Clone, Default, Args)]
pub struct TracingFlags {
    /// Path to YAML file with tracing configuration.
    #[arg(
        id = "tracing.config-file",
        long = "tracing.config-file",
        value_name = "FILE",
        env = "STRATA_TRACING_CONFIG_FILE"
    )]
    pub config_file: Option<PathBuf>,

    /// Alternative to 'tracing.config-file' flag: tracing configuration in YAML.
    #[arg(
        id = "tracing.config",
        long = "tracing.config",
        value_name = "YAML",
        env = "STRATA_TRACING_CONFIG"
    )]
    pub config: Option<String>,
}

/// `--objstore.config-file`, `--objstore.config`: Thanos's objstore.yml, resolved by
/// `crate::objstore`.
#[derive(Debug, Clone, Default, Args)]
pub struct ObjstoreFlags {
    /// Alternative to 'objstore.config-file' flag: object store configuration in YAML.
    #[arg(
        id = "objstore.config",
        long = "objstore.config",
        value_name = "YAML",
        env = "STRATA_OBJSTORE_CONFIG"
    )]
    pub config: Option<String>,

    /// Path to YAML file that contains object store configuration.
    #[arg(
        id = "objstore.config-file",
        long = "objstore.config-file",
        value_name = "FILE",
        env = "STRATA_OBJSTORE_CONFIG_FILE"
    )]
    pub config_file: Option<PathBuf>,
}

/// Parses a Go (`time.ParseDuration`) or Prometheus (`model.ParseDuration`) duration: a
/// sequence of decimal numbers with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d` (24h),
/// `w` (7d), `y` (365d), e.g. `2m`, `1h30m`, `1.5s`, `15d`. A bare `0` is zero. Negative
/// durations are rejected; use [`TimeOrDuration`] where Thanos accepts `-2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after_number) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: expected a number at {rest:?}"
            ));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: bad number {number:?}"))?;
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 7.0 * 86_400e9,
            "y" => 365.0 * 86_400e9,
            "" => return Err(format!("invalid duration {text:?}: missing unit")),
            other => return Err(format!("invalid duration {text:?}: unknown unit {other:?}")),
        };
        total_nanos += value * unit_nanos;
        rest = after_unit;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(format!("invalid duration {text:?}: out of range"));
    }
    // Truncation to whole nanoseconds is intended, as in Go.
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// Thanos's `model.TimeOrDurationValue`: an absolute RFC3339 time, or a duration relative to
/// now (`-2h` is two hours ago). Used by `--min-time` / `--max-time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOrDuration {
    /// Milliseconds since the Unix epoch.
    Absolute(i64),
    /// Milliseconds relative to the current time (negative is in the past).
    Relative(i64),
}

impl TimeOrDuration {
    /// Resolve to milliseconds since the epoch, given the current time in milliseconds.
    pub fn resolve(self, now_millis: i64) -> i64 {
        match self {
            Self::Absolute(millis) => millis,
            Self::Relative(offset) => now_millis.saturating_add(offset),
        }
    }
}

impl std::str::FromStr for TimeOrDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(Self::Absolute(time.timestamp_millis()));
        }
        let (sign, magnitude) = match text.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text.strip_prefix('+').unwrap_or(text)),
        };
        let duration = parse_duration(magnitude).map_err(|reason| {
            format!("{text:?} is neither an RFC3339 time nor a duration: {reason}")
        })?;
        let millis = i64::try_from(duration.as_millis())
            .map_err(|_| format!("duration {text:?} out of range"))?;
        Ok(Self::Relative(sign * millis))
    }
}

/// Parses a byte size the way Thanos's flags do (`alecthomas/units` base-2): `250MB` and
/// `250MiB` are both 250 * 2^20 bytes; units B, KB/KiB, MB/MiB, GB/GiB, TB/TiB, PB/PiB.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid byte size {text:?}: expected a number"))?;
    let multiplier: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "KiB" | "K" => 1024.0,
        "MB" | "MiB" | "M" => 1024.0 * 1024.0,
        "GB" | "GiB" | "G" => 1024.0 * 1024.0 * 1024.0,
        "TB" | "TiB" | "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "PB" | "PiB" | "P" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "invalid byte size {text:?}: unknown unit {other:?}"
            ));
        }
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("invalid byte size {text:?}: out of range"));
    }
    Ok(bytes as u64)
}

/// Refuses a value Strata does not implement: Thanos flags are accepted so that manifests
/// parse, but a flag is never silently ignored, so any value other than `default` fails
/// start-up with an error naming the flag and saying why.
pub fn refuse_unless_default<T: PartialEq + std::fmt::Debug>(
    flag: &'static str,
    value: &T,
    default: &T,
    why: &str,
) -> crate::error::Result<()> {
    if value == default {
        return Ok(());
    }
    Err(crate::error::Error::InvalidFlag {
        flag,
        reason: format!("{value:?} is not supported: {why}"),
    })
}

/// Refuses a config given both inline and as a file, as Thanos does (`--x.config` and
/// `--x.config-file`), instead of quietly using one of them.
pub fn refuse_both_forms(
    inline_flag: &'static str,
    inline_set: bool,
    file_flag: &'static str,
    file_set: bool,
) -> crate::error::Result<()> {
    if inline_set && file_set {
        return Err(crate::error::Error::InvalidFlag {
            flag: inline_flag,
            reason: format!("both {inline_flag} and {file_flag} are set; give one of them"),
        });
    }
    Ok(())
}

/// Parses a label flag as Thanos does (`--label`, `--selector-label`): `name="value"` with a
/// Go-quoted value, or `name=value`.
pub fn parse_label_flag(flag: &str) -> std::result::Result<(String, String), String> {
    let (name, value) = flag
        .split_once('=')
        .ok_or_else(|| format!("unrecognized label {flag:?}"))?;
    let name = name.trim();
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("unsupported format for label {flag:?}"));
    }
    let value = if value.starts_with('"') {
        unquote_go(value).ok_or_else(|| format!("unsupported format for label {flag:?}"))?
    } else {
        value.to_owned()
    };
    Ok((name.to_owned(), value))
}

fn unquote_go(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else if c == '"' {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The process arguments with Thanos's subcommand word removed when it comes first, so that
/// `strata-querier query --endpoint=...` and `strata-querier --endpoint=...` both work and
/// manifests written for `thanos query ...` run with only the image changed.
pub fn args_without_subcommand(word: &str) -> Vec<std::ffi::OsString> {
    strip_subcommand(std::env::args_os().collect(), word)
}

fn strip_subcommand(mut args: Vec<std::ffi::OsString>, word: &str) -> Vec<std::ffi::OsString> {
    if args.get(1).is_some_and(|first| first == word) {
        args.remove(1);
    }
    args
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("15d"), Ok(Duration::from_secs(15 * 86_400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn time_or_duration() {
        assert_eq!("-2h".parse(), Ok(TimeOrDuration::Relative(-7_200_000)));
        assert_eq!(
            "1970-01-01T00:00:01Z".parse(),
            Ok(TimeOrDuration::Absolute(1000))
        );
        let ancient: TimeOrDuration = "0000-01-01T00:00:00Z"
            .parse()
            .unwrap_or(TimeOrDuration::Absolute(0));
        assert_eq!(ancient, TimeOrDuration::Absolute(-62_167_219_200_000));
        assert!("yesterday".parse::<TimeOrDuration>().is_err());
        assert_eq!(TimeOrDuration::Relative(-10).resolve(100), 90);
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("250MB"), Ok(250 * 1024 * 1024));
        assert_eq!(parse_bytes("2GB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_bytes("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("5XB").is_err());
        assert!(parse_bytes("MB").is_err());
    }

    #[test]
    fn subcommand_word_is_optional() {
        let args = |words: &[&str]| {
            words
                .iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip_subcommand(args(&["q", "query", "--x"]), "query"),
            args(&["q", "--x"])
        );
        assert_eq!(
            strip_subcommand(args(&["q", "--x"]), "query"),
            args(&["q", "--x"])
        );
        assert_eq!(
            strip_subcommand(args(&["q", "--x", "query"]), "query"),
            args(&["q", "--x", "query"])
        );
        assert_eq!(strip_subcommand(args(&["q"]), "query"), args(&["q"]));
    }

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        http: HttpServerFlags,
        #[command(flatten)]
        grpc: GrpcServerFlags,
        #[command(flatten)]
        client: GrpcClientFlags,
        #[command(flatten)]
        log: LogFlags,
        #[command(flatten)]
        tracing: TracingFlags,
        #[command(flatten)]
        objstore: ObjstoreFlags,
    }

    #[test]
    fn thanos_flag_names_parse() {
        let cli = TestCli::try_parse_from([
            "x",
            "--http-address=127.0.0.1:1",
            "--grpc-address",
            "127.0.0.1:2",
            "--grpc-grace-period=5s",
            "--grpc-server-tls-cert=c",
            "--grpc-client-tls-secure",
            "--grpc-client-server-name=s",
            "--log.level=debug",
            "--log.format=json",
            "--tracing.config=type: OTLP",
            "--objstore.config-file=/b.yml",
        ]);
        let cli = match cli {
            Ok(cli) => cli,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(cli.http.http_address, "127.0.0.1:1");
        assert_eq!(cli.http.http_grace_period, Duration::from_secs(120));
        assert_eq!(cli.grpc.grpc_address, "127.0.0.1:2");
        assert_eq!(cli.grpc.grpc_grace_period, Duration::from_secs(5));
        assert_eq!(
            cli.grpc.grpc_server_max_connection_age,
            Duration::from_secs(3600)
        );
        assert!(cli.grpc.tls_enabled());
        assert!(cli.client.grpc_client_tls_secure);
        assert_eq!(cli.client.grpc_client_server_name, "s");
        assert_eq!(cli.log.log_level, LogLevel::Debug);
        assert_eq!(cli.log.log_format, LogFormat::Json);
        assert_eq!(cli.tracing.config.as_deref(), Some("type: OTLP"));
        assert_eq!(cli.objstore.config_file, Some(PathBuf::from("/b.yml")));
        assert!(TestCli::try_parse_from(["x", "--log.format=text"]).is_err());
    }
}
