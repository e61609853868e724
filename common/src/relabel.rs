//! `--selector.relabel-config`: Prometheus relabeling applied to each block's external labels
//! plus `__block_id`, to shard blocks over several store gateways or compactors (the store
//! gateway and the compactor share this module). As in Thanos only the `keep`, `drop` and
//! `hashmod` actions are allowed; a block whose resulting label set is empty (or that a rule
//! drops) is not selected.
//!
//! `hashmod` follows Prometheus: the MD5 of the source values joined by the separator, its
//! last 8 bytes read as a big-endian integer, modulo `modulus`.

use md5::{Digest, Md5};
use serde::Deserialize;
use strata_tsdb::labels::{Label, Labels, MatchType, Matcher};

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The label holding the block's ULID during relabeling.
pub const BLOCK_ID_LABEL: &str = "__block_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Keep,
    Drop,
    Hashmod,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    source_labels: Vec<String>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default)]
    target_label: Option<String>,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: Option<Action>,
}

/// One validated rule.
#[derive(Debug, Clone)]
struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Matcher,
    modulus: u64,
    target_label: String,
    action: Action,
}

/// A parsed relabel configuration.
#[derive(Debug, Clone, Default)]
pub struct RelabelConfig {
    rules: Vec<Rule>,
}

impl RelabelConfig {
    /// Parses the YAML list of rules (empty text means no rules).
    pub fn parse(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: Vec<RawRule> = serde_yaml::from_str(text).map_err(|err| Error::RelabelConfig {
            reason: err.to_string(),
        })?;
        let mut rules = Vec::with_capacity(raw.len());
        for rule in raw {
            let action = rule.action.unwrap_or(Action::Keep);
            let regex_text = rule.regex.unwrap_or_else(|| "(.*)".to_owned());
            let regex = Matcher::new(MatchType::Regex, "", regex_text.clone()).map_err(|err| {
                Error::RelabelConfig {
                    reason: format!("invalid regex {regex_text:?}: {err}"),
                }
            })?;
            let modulus = rule.modulus.unwrap_or(0);
            let target_label = rule.target_label.unwrap_or_default();
            if action == Action::Hashmod && (modulus == 0 || target_label.is_empty()) {
                return Err(Error::RelabelConfig {
                    reason: "hashmod needs a non-zero modulus and a target_label".to_owned(),
                });
            }
            let _ = rule.replacement;
            rules.push(Rule {
                source_labels: rule.source_labels,
                separator: rule.separator.unwrap_or_else(|| ";".to_owned()),
                regex,
                modulus,
                target_label,
                action,
            });
        }
        Ok(Self { rules })
    }

    /// The configuration of `--selector.relabel-config` or `--selector.relabel-config-file`
    /// (both at once are refused, as in Thanos); none given means no rules.
    pub fn from_flags(text: Option<&str>, file: Option<&PathBuf>) -> Result<Self> {
        crate::flags::refuse_both_forms(
            "--selector.relabel-config",
            text.is_some(),
            "--selector.relabel-config-file",
            file.is_some(),
        )?;
        match (text, file) {
            (Some(text), _) => Self::parse(text),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|err| Error::RelabelConfig {
                    reason: format!("read {}: {err}", path.display()),
                })?;
                Self::parse(&text)
            }
            (None, None) => Ok(Self::default()),
        }
    }

    /// True when there are no rules (every block is selected).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the block with these external labels and ULID is selected.
    pub fn selects(&self, external: &Labels, block_id: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let mut labels: Vec<Label> = external.iter().cloned().collect();
        labels.push(Label::new(BLOCK_ID_LABEL, block_id));
        let mut labels = Labels::new(labels);
        for rule in &self.rules {
            let value = rule
                .source_labels
                .iter()
                .map(|name| labels.get(name).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&rule.separator);
            match rule.action {
                Action::Keep if !rule.regex.matches(&value) => return false,
                Action::Drop if rule.regex.matches(&value) => return false,
                Action::Keep | Action::Drop => {}
                Action::Hashmod => {
                    let digest = Md5::digest(value.as_bytes());
                    let mut tail = [0u8; 8];
                    tail.copy_from_slice(&digest[8..16]);
                    let hash = u64::from_be_bytes(tail) % rule.modulus;
                    let mut pairs: Vec<Label> = labels
                        .iter()
                        .filter(|label| label.name != rule.target_label)
                        .cloned()
                        .collect();
                    pairs.push(Label::new(rule.target_label.clone(), hash.to_string()));
                    labels = Labels::new(pairs);
                }
            }
        }
        !labels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_drop_and_hashmod_shard_blocks() {
        let config = RelabelConfig::parse(
            "- action: keep\n  source_labels: [cluster]\n  regex: eu.*\n- action: drop\n  source_labels: [cluster, env]\n  regex: eu2;dev\n",
        )
        .expect("config");
        let labels = |c: &str, e: &str| Labels::from_pairs([("cluster", c), ("env", e)]);
        assert!(config.selects(&labels("eu1", "dev"), "01A"));
        assert!(!config.selects(&labels("us1", "dev"), "01A"));
        assert!(!config.selects(&labels("eu2", "dev"), "01A"));
        assert!(config.selects(&labels("eu2", "prod"), "01A"));

        let shards: Vec<RelabelConfig> = (0..3)
            .map(|shard| {
                RelabelConfig::parse(&format!(
                    "- action: hashmod\n  source_labels: [__block_id]\n  target_label: shard\n  modulus: 3\n- action: keep\n  source_labels: [shard]\n  regex: \"{shard}\"\n"
                ))
                .expect("config")
            })
            .collect();
        // Every block is served by exactly one of the three shards.
        for i in 0..30 {
            let id = format!("01HBLOCK{i:02}");
            let owners = shards
                .iter()
                .filter(|s| s.selects(&Labels::default(), &id))
                .count();
            assert_eq!(owners, 1, "block {id}");
        }
        assert!(RelabelConfig::parse("- action: replace\n").is_err());
        assert!(RelabelConfig::parse("- action: hashmod\n  source_labels: [a]\n").is_err());
        assert!(RelabelConfig::parse("").expect("empty").is_empty());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8: the hash is its last 8 bytes.
        let digest = Md5::digest(b"foo");
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&digest[8..16]);
        assert_eq!(u64::from_be_bytes(tail), 0xedef_654f_ccc4_a4d8);
    }
}
