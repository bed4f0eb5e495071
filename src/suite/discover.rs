//! Which scripts a suite runs: every `*.rhai` under the paths given, narrowed by `--filter` and
//! `--partition`, and where each one's snapshot lives.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// One script of the suite.
#[derive(Clone, Debug)]
pub struct Script {
    /// The path as the user would type it (the PATH given, joined with the file's place under
    /// it): what reports call the script, and what `run` is given.
    pub path: PathBuf,
    /// The directory it was found under (a PATH given, or a given file's directory).
    pub root: PathBuf,
    /// Its path under `root`, with `/` separators.
    pub rel: String,
}

impl Script {
    /// The name reports use.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Where its snapshot lives: `DIR/<root name>@<rel>.snap` with `--snapshots DIR` (the layout
    /// insta's `glob!` gives a test named after the directory, as in this repository), else
    /// `snapshots/<file>.snap` beside the script.
    pub fn snapshot_path(&self, dir: Option<&Path>) -> PathBuf {
        match dir {
            Some(dir) => {
                let root = self
                    .root
                    .canonicalize()
                    .ok()
                    .and_then(|r| r.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "scripts".into());
                dir.join(format!("{root}@{}.snap", self.rel.replace('/', "__")))
            }
            None => {
                let file = self.path.file_name().unwrap_or_default().to_string_lossy();
                self.path
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("snapshots")
                    .join(format!("{file}.snap"))
            }
        }
    }
}

/// Every `*.rhai` under `paths` (a path may also name one script), sorted by path, without
/// duplicates. Hidden directories and `snapshots/` are not searched.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Script>> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(Error::io(format!(
            "failed to read {} (a script or a directory of scripts)",
            path.display()
        )))?;
        if meta.is_file() {
            let root = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            let rel = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            found.push(Script {
                path: path.clone(),
                root,
                rel,
            });
        } else {
            walk(path, path, &mut found)?;
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    Ok(found)
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<Script>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(Error::io(format!("failed to list {}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !name.starts_with('.') && name != "snapshots" {
                walk(root, &path, found)?;
            }
        } else if name.ends_with(".rhai") {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            found.push(Script {
                path,
                root: root.to_owned(),
                rel,
            });
        }
    }
    Ok(())
}

/// `--partition hash:M/N`: share M (1-based) of N, by a stable hash of each script's name, so
/// that N machines run disjoint shares whose union is the whole suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub share: u64,
    pub of: u64,
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Partition, String> {
        let usage = || format!("`{s}`: expected hash:M/N with 1 <= M <= N, such as hash:1/3");
        let spec = s.strip_prefix("hash:").ok_or_else(usage)?;
        let (m, n) = spec.split_once('/').ok_or_else(usage)?;
        let (share, of) = (
            m.parse::<u64>().map_err(|_| usage())?,
            n.parse::<u64>().map_err(|_| usage())?,
        );
        if share == 0 || share > of {
            return Err(usage());
        }
        Ok(Partition { share, of })
    }
}

impl Partition {
    /// Whether the script named `name` is in this share.
    pub fn contains(&self, name: &str) -> bool {
        fnv1a(name.as_bytes()) % self.of == self.share - 1
    }
}

/// FNV-1a, 64 bits: stable across runs, machines and releases (std's hasher promises none of it).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether `name` passes `--filter`: any of the patterns is a substring of it (no pattern: all).
pub fn matches_filter(name: &str, patterns: &[String]) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| name.contains(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_disjoint_and_cover_everything() {
        let names: Vec<String> = (0..200).map(|i| format!("scripts/s{i}.rhai")).collect();
        let shares: Vec<Partition> = (1..=3).map(|m| Partition { share: m, of: 3 }).collect();
        for name in &names {
            assert_eq!(shares.iter().filter(|p| p.contains(name)).count(), 1);
        }
        assert!(shares
            .iter()
            .all(|p| names.iter().filter(|n| p.contains(n)).count() > 30));
    }

    #[test]
    fn partition_syntax() {
        assert_eq!(
            "hash:2/3".parse::<Partition>(),
            Ok(Partition { share: 2, of: 3 })
        );
        for bad in [
            "hash:0/3",
            "hash:4/3",
            "2/3",
            "count:1/2",
            "hash:1/x",
            "hash:1",
        ] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn snapshot_layouts() {
        let s = Script {
            path: PathBuf::from("suite/sub/a.rhai"),
            root: PathBuf::from("suite"),
            rel: "sub/a.rhai".into(),
        };
        assert_eq!(
            s.snapshot_path(None),
            PathBuf::from("suite/sub/snapshots/a.rhai.snap")
        );
    }
}
