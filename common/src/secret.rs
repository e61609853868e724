//! [`Secret`]: the one type every password, bearer token, objstore key and other credential is
//! held in, so none can reach `Debug` output, logs, error texts or `/api/v1/status/flags`.
//! `Debug`, `Display` and `Serialize` all print `<secret>` (or nothing for an empty value);
//! only [`Secret::expose`] gives the value, at the point it is handed to a client.
//!
//! Flags whose value is a whole config that can carry credentials (`--objstore.config`,
//! `--tracing.config`, `--prometheus.http-client`, ...) are shown redacted through
//! [`redact_flag_value`].

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// What a non-empty secret is shown as.
pub const REDACTED: &str = "<secret>";

/// A string that never shows up in `Debug`, `Display` or `Serialize` output.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself; call only where it is handed to the client that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn shown(&self) -> &'static str {
        if self.0.is_empty() { "" } else { REDACTED }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.shown())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.shown())
    }
}

/// Flags (long names) whose value is inline configuration that may hold credentials.
pub const SECRET_FLAGS: &[&str] = &[
    "objstore.config",
    "tracing.config",
    "prometheus.http-client",
    "request.logging-config",
    "query.config",
    "endpoint.sd-config",
    "alertmanagers.config",
    "grpc-client-tls-key",
    "grpc-server-tls-key",
];

/// The value of flag `long` as `/api/v1/status/flags` and logs may show it: flags in
/// [`SECRET_FLAGS`] are redacted when set.
pub fn redact_flag_value(long: &str, value: String) -> String {
    if SECRET_FLAGS.contains(&long) && !value.is_empty() {
        REDACTED.to_owned()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("hunter2");
        let shown = format!("{secret:?} {secret} {}", serde_json::json!({ "k": secret }));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "\"<secret>\" <secret> {\"k\":\"<secret>\"}");
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }

    #[test]
    fn deserialized_from_a_plain_string() {
        let secret: Secret = serde_yaml::from_str("\"s3cr3t\"").unwrap_or_default();
        assert_eq!(secret.expose(), "s3cr3t");
    }

    #[test]
    fn config_flags_are_redacted() {
        assert_eq!(
            redact_flag_value(
                "objstore.config",
                "type: S3\nconfig: {secret_key: x}".into()
            ),
            REDACTED
        );
        assert_eq!(redact_flag_value("objstore.config", String::new()), "");
        assert_eq!(redact_flag_value("query.timeout", "2m".into()), "2m");
    }
}
