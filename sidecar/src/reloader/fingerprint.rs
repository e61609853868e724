//! Change detection for the reloader: one hash of the config file and one of all rule
//! directories, compared with the hashes at the last successful reload.
//!
//! As in Thanos (`hashFile`), each file contributes `0xff`, its path, `0xff` and its content,
//! so a renamed file is a change too. Thanos uses SHA-256; a 64-bit xxHash is enough to notice
//! edits (nothing here defends against someone crafting collisions: whoever can write the
//! files can reload Prometheus anyway).
//!
//! Rule directories are walked as Thanos's `filepath.Walk` walks them, which is what makes
//! Kubernetes ConfigMap volumes work: entries in name order; symlinks followed to read files
//! (`rules.yaml -> ..data/rules.yaml`); real subdirectories descended (the timestamped
//! `..2024_01_01_...` directory holding the data), symlinks to directories not (`..data`,
//! whose target is walked under its own name). An update swaps `..data` to a new timestamped
//! directory, so the hash changes. Only regular files are read: a FIFO would block the walk.

use std::fs;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh64::Xxh64;

use crate::error::{Error, Result};

/// The hash of the config file at `path` whose content is `content`.
pub fn config_file(path: &Path, content: &[u8]) -> u64 {
    let mut hasher = Xxh64::new(0);
    add_file(&mut hasher, path, content);
    hasher.digest()
}

/// The hash of every regular file under the rule directories `dirs`, in order.
pub fn rule_dirs(dirs: &[PathBuf]) -> Result<u64> {
    let mut hasher = Xxh64::new(0);
    for dir in dirs {
        // Thanos resolves the directory itself first (`filepath.EvalSymlinks`).
        let resolved = fs::canonicalize(dir)
            .map_err(|source| Error::io("resolve reloader rule dir", dir, source))?;
        walk(&mut hasher, &resolved)?;
    }
    Ok(hasher.digest())
}

fn add_file(hasher: &mut Xxh64, path: &Path, content: &[u8]) {
    hasher.update(&[0xff]);
    hasher.update(path.as_os_str().as_encoded_bytes());
    hasher.update(&[0xff]);
    hasher.update(content);
}

fn walk(hasher: &mut Xxh64, dir: &Path) -> Result<()> {
    let mut entries = fs::read_dir(dir)
        .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
        .map_err(|source| Error::io("read reloader rule dir", dir, source))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let is_symlink = entry
            .file_type()
            .map_err(|source| Error::io("stat reloader rule file", &path, source))?
            .is_symlink();
        // Follows symlinks; a dangling one is an error, as in Thanos.
        let target = fs::metadata(&path)
            .map_err(|source| Error::io("stat reloader rule file", &path, source))?;
        if target.is_dir() {
            if !is_symlink {
                walk(hasher, &path)?;
            }
        } else if target.is_file() {
            let content = fs::read(&path)
                .map_err(|source| Error::io("read reloader rule file", &path, source))?;
            add_file(hasher, &path, &content);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn write(path: &Path, content: &str) {
        fs::write(path, content).expect("write test file");
    }

    /// A ConfigMap volume as the kubelet lays it out: a timestamped directory with the data,
    /// `..data` pointing at it, and one symlink per key through `..data`.
    fn configmap_update(dir: &Path, version: &str, files: &[(&str, &str)]) {
        let data = dir.join(format!("..{version}"));
        fs::create_dir(&data).expect("create data dir");
        for (name, content) in files {
            write(&data.join(name), content);
            let link = dir.join(name);
            if fs::symlink_metadata(&link).is_err() {
                symlink(Path::new("..data").join(name), &link).expect("key symlink");
            }
        }
        // The atomic swap: a new symlink renamed over `..data`.
        let staged = dir.join("..data_tmp");
        symlink(format!("..{version}"), &staged).expect("stage ..data");
        fs::rename(&staged, dir.join("..data")).expect("swap ..data");
    }

    #[test]
    fn config_hash_covers_name_and_content() {
        let a = config_file(Path::new("/etc/prometheus.yml"), b"global: {}\n");
        assert_eq!(
            a,
            config_file(Path::new("/etc/prometheus.yml"), b"global: {}\n")
        );
        assert_ne!(
            a,
            config_file(Path::new("/etc/prometheus.yml"), b"global: {} \n")
        );
        assert_ne!(a, config_file(Path::new("/etc/other.yml"), b"global: {}\n"));
    }

    #[test]
    fn rule_dir_changes_are_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = vec![dir.path().to_path_buf()];
        write(&dir.path().join("a.yml"), "groups: []\n");
        let first = rule_dirs(&dirs).expect("hash");
        assert_eq!(first, rule_dirs(&dirs).expect("hash"), "stable");

        write(&dir.path().join("a.yml"), "groups: [] # edited\n");
        let edited = rule_dirs(&dirs).expect("hash");
        assert_ne!(first, edited, "edit");

        write(&dir.path().join("b.yml"), "groups: []\n");
        let added = rule_dirs(&dirs).expect("hash");
        assert_ne!(edited, added, "new file");

        fs::rename(dir.path().join("b.yml"), dir.path().join("c.yml")).expect("rename");
        let renamed = rule_dirs(&dirs).expect("hash");
        assert_ne!(added, renamed, "renamed file");

        fs::remove_file(dir.path().join("c.yml")).expect("remove");
        assert_eq!(edited, rule_dirs(&dirs).expect("hash"), "back to before");
    }

    #[test]
    fn configmap_symlink_swap_is_a_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = vec![dir.path().to_path_buf()];
        configmap_update(
            dir.path(),
            "2024_01_01_v1",
            &[("rules.yml", "groups: []\n")],
        );
        let first = rule_dirs(&dirs).expect("hash");
        assert_eq!(first, rule_dirs(&dirs).expect("hash"));

        configmap_update(
            dir.path(),
            "2024_01_02_v2",
            &[("rules.yml", "groups: [{name: a, rules: []}]\n")],
        );
        let second = rule_dirs(&dirs).expect("hash");
        assert_ne!(first, second);

        // The kubelet then removes the old data directory: a change again (Thanos hashes the
        // timestamped paths too), and then stable.
        fs::remove_dir_all(dir.path().join("..2024_01_01_v1")).expect("remove old data");
        let cleaned = rule_dirs(&dirs).expect("hash");
        assert_ne!(second, cleaned);
        assert_eq!(cleaned, rule_dirs(&dirs).expect("hash"));
    }

    #[test]
    fn rule_dir_behind_a_symlink_is_resolved() {
        let real = tempfile::tempdir().expect("tempdir");
        write(&real.path().join("a.yml"), "groups: []\n");
        let holder = tempfile::tempdir().expect("tempdir");
        let link = holder.path().join("rules");
        symlink(real.path(), &link).expect("dir symlink");
        assert_eq!(
            rule_dirs(&[link]).expect("hash"),
            rule_dirs(&[real.path().to_path_buf()]).expect("hash")
        );
    }

    #[test]
    fn missing_dir_and_dangling_symlink_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        assert!(matches!(
            rule_dirs(std::slice::from_ref(&missing)),
            Err(Error::Io { .. })
        ));
        symlink(&missing, dir.path().join("dangling.yml")).expect("symlink");
        let err = rule_dirs(&[dir.path().to_path_buf()]).expect_err("dangling symlink");
        assert!(err.to_string().contains("dangling.yml"), "{err}");
    }
}
