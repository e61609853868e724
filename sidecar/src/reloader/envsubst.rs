//! Environment variable substitution in the reloader's config file, with Thanos's syntax:
//! `$(NAME)` only, NAME made of ASCII letters, digits and `_` (Thanos's regexp
//! `\$\(([a-zA-Z_0-9]+)\)`, the Kubernetes form). `$NAME`, `${NAME}` and everything else are
//! kept as they are, so Prometheus's own `$1` relabelling references survive. A reference to a
//! variable that is not set is an error (Thanos's sidecar does not tolerate them).
//!
//! The input is bytes, not text: the file is not required to be UTF-8, and values are the
//! variables' raw bytes.

use std::os::unix::ffi::OsStringExt;

/// A `$(NAME)` whose variable is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetVariable(pub String);

/// `input` with every `$(NAME)` replaced by `lookup(NAME)`; fails at the first unset variable.
pub fn expand(
    input: &[u8],
    lookup: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, UnsetVariable> {
    let mut output = Vec::with_capacity(input.len());
    let mut position = 0;
    while let Some(&byte) = input.get(position) {
        if byte == b'$'
            && let Some((name, end)) = reference_at(input, position)
        {
            let value = lookup(name).ok_or_else(|| UnsetVariable(name.to_owned()))?;
            output.extend_from_slice(&value);
            position = end;
            continue;
        }
        output.push(byte);
        position += 1;
    }
    Ok(output)
}

/// The variable name of a `$(NAME)` starting at `start` and the position just after it.
fn reference_at(input: &[u8], start: usize) -> Option<(&str, usize)> {
    let rest = input.get(start..)?.strip_prefix(b"$(")?;
    let length = rest
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric() || **byte == b'_')
        .count();
    if length == 0 || rest.get(length) != Some(&b')') {
        return None;
    }
    // ASCII by construction, so this never fails.
    let name = std::str::from_utf8(rest.get(..length)?).ok()?;
    Some((name, start + 2 + length + 1))
}

/// The value of the process's environment variable `name`, as bytes.
pub fn process_env(name: &str) -> Option<Vec<u8>> {
    std::env::var_os(name).map(OsStringExt::into_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<Vec<u8>> {
        match name {
            "HOSTNAME" => Some(b"prom-0".to_vec()),
            "EMPTY" => Some(Vec::new()),
            "A_1" => Some(b"$(HOSTNAME)".to_vec()),
            _ => None,
        }
    }

    fn expanded(input: &str) -> Result<String, UnsetVariable> {
        expand(input.as_bytes(), lookup).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn replaces_kubernetes_style_references() {
        assert_eq!(
            expanded("replica: '$(HOSTNAME)'\n").as_deref(),
            Ok("replica: 'prom-0'\n")
        );
        assert_eq!(
            expanded("$(HOSTNAME)-$(EMPTY)-$(HOSTNAME)").as_deref(),
            Ok("prom-0--prom-0")
        );
        // Values are not expanded again.
        assert_eq!(expanded("x $(A_1)").as_deref(), Ok("x $(HOSTNAME)"));
    }

    #[test]
    fn keeps_everything_that_is_not_a_reference() {
        for text in [
            "replacement: $1",
            "a: ${HOSTNAME} $HOSTNAME",
            "$() $(-x) $(HOST NAME) $(HOSTNAME",
            "$",
            "$(",
            "",
            "ünïcödé $$",
        ] {
            assert_eq!(expanded(text).as_deref(), Ok(text), "{text:?}");
        }
        // A reference right after a broken one still counts (leftmost match, as a regexp).
        assert_eq!(expanded("$($(HOSTNAME))").as_deref(), Ok("$(prom-0)"));
    }

    #[test]
    fn unset_variable_is_an_error_naming_it() {
        assert_eq!(
            expanded("a: $(HOSTNAME)\nb: $(NOT_SET)\nc: $(ALSO_NOT)"),
            Err(UnsetVariable("NOT_SET".to_owned()))
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        let input = b"\xff$(HOSTNAME)\xfe";
        assert_eq!(
            expand(input, lookup),
            Ok(b"\xffprom-0\xfe".to_vec()),
            "binary-safe"
        );
    }

    #[test]
    fn reads_the_process_environment() {
        // PATH is set for any test process; a name nobody sets is not.
        assert!(process_env("PATH").is_some());
        assert_eq!(process_env("STRATA_TEST_SURELY_UNSET_VARIABLE_1234"), None);
    }
}
