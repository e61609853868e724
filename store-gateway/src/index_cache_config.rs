//! `--index-cache.config(-file)`: Thanos's index cache configuration, for the one cache type
//! Strata has, the in-memory cache:
//!
//! ```yaml
//! type: IN-MEMORY
//! config:
//!   max_size: 250MB        # replaces --index-cache-size
//!   max_item_size: 125MB   # larger items are not cached
//!   enabled_items: []      # item types to cache (Postings, Series, ExpandedPostings); empty: all
//! ```
//!
//! The remote types (MEMCACHED, REDIS) are refused at start-up rather than silently served
//! from memory, and so is any key this struct does not know.

use serde::Deserialize;
use strata_common::error::Error as CommonError;
use strata_common::flags::parse_bytes;

/// Thanos's default `max_item_size` for the in-memory index cache.
const DEFAULT_MAX_ITEM_SIZE: u64 = 125 * 1024 * 1024;

/// The item types Thanos names in `enabled_items`.
const ITEM_TYPES: [&str; 3] = ["Postings", "Series", "ExpandedPostings"];

/// What the index cache config sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexCacheConfig {
    /// Bytes of the whole cache.
    pub max_size: u64,
    /// Items larger than this are not cached.
    pub max_item_size: u64,
    /// Item types to cache; empty caches every type.
    pub enabled_items: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    config: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInMemory {
    #[serde(default)]
    max_size: Option<Size>,
    #[serde(default)]
    max_item_size: Option<Size>,
    #[serde(default)]
    enabled_items: Vec<String>,
}

/// A byte size as Thanos's YAML takes it: `250MB` or a plain number of bytes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    fn bytes(&self, key: &str) -> Result<u64, String> {
        match self {
            Size::Bytes(bytes) => Ok(*bytes),
            Size::Text(text) => parse_bytes(text).map_err(|err| format!("{key}: {err}")),
        }
    }
}

fn invalid(reason: String) -> CommonError {
    CommonError::InvalidFlag {
        flag: "--index-cache.config",
        reason,
    }
}

/// Parses the config text; `default_max_size` is `--index-cache-size`, used when the config
/// gives no `max_size`.
pub fn parse(text: &str, default_max_size: u64) -> Result<IndexCacheConfig, CommonError> {
    let raw: RawConfig = serde_yaml::from_str(text).map_err(|err| invalid(err.to_string()))?;
    if !raw.kind.eq_ignore_ascii_case("IN-MEMORY") {
        return Err(invalid(format!(
            "index cache type {:?} is not supported: Strata has only the IN-MEMORY index cache",
            raw.kind
        )));
    }
    let config: RawInMemory = match raw.config {
        Some(value) => serde_yaml::from_value(value).map_err(|err| invalid(err.to_string()))?,
        None => RawInMemory::default(),
    };
    let max_size = match &config.max_size {
        Some(size) => size.bytes("max_size").map_err(invalid)?,
        None => default_max_size,
    };
    let max_item_size = match &config.max_item_size {
        Some(size) => size.bytes("max_item_size").map_err(invalid)?,
        // Thanos's default, but never above a smaller cache.
        None => DEFAULT_MAX_ITEM_SIZE.min(max_size),
    };
    if max_item_size > max_size {
        return Err(invalid(format!(
            "max_item_size {max_item_size} is larger than max_size {max_size}"
        )));
    }
    for item in &config.enabled_items {
        if !ITEM_TYPES.contains(&item.as_str()) {
            return Err(invalid(format!(
                "unsupported item type {item:?} in enabled_items (one of {ITEM_TYPES:?})"
            )));
        }
    }
    Ok(IndexCacheConfig {
        max_size,
        max_item_size,
        enabled_items: config.enabled_items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_configs_set_the_cache_and_remote_ones_are_refused() {
        let parsed = parse(
            "type: IN-MEMORY\nconfig:\n  max_size: 1GB\n  max_item_size: 1MB\n  enabled_items: [Postings]\n",
            250 << 20,
        )
        .expect("in-memory");
        assert_eq!(
            parsed,
            IndexCacheConfig {
                max_size: 1 << 30,
                max_item_size: 1 << 20,
                enabled_items: vec!["Postings".to_owned()],
            }
        );
        let defaults = parse("type: in-memory\n", 100).expect("defaults");
        assert_eq!(defaults.max_size, 100);
        assert!(defaults.enabled_items.is_empty());
        assert_eq!(
            parse("type: IN-MEMORY\nconfig: {max_size: 4096}\n", 1)
                .expect("bytes")
                .max_size,
            4096
        );
        for bad in [
            "type: MEMCACHED\nconfig:\n  addresses: [a:11211]\n",
            "type: REDIS\n",
            "type: IN-MEMORY\nconfig:\n  max_sizes: 1GB\n",
            "type: IN-MEMORY\nconfig:\n  enabled_items: [Chunks]\n",
            "type: IN-MEMORY\nconfig:\n  max_size: 1MB\n  max_item_size: 2MB\n",
            "type: IN-MEMORY\nconfig:\n  max_size: lots\n",
        ] {
            let err = parse(bad, 1 << 20).expect_err(bad).to_string();
            assert!(err.contains("--index-cache.config"), "{bad}: {err}");
        }
    }
}
