//! The order a suite starts its runs in: slowest first, so that the last to finish is not a slow
//! script started late. Durations of the last run are kept in a small cache file; a script never
//! timed is estimated by its size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Durations in milliseconds by run key (script path and etcd binary).
#[derive(Debug, Default)]
pub struct Durations(BTreeMap<String, u64>);

/// `$XDG_CACHE_HOME/etcdscript/durations.json`, else under `~/.cache`.
pub fn cache_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("etcdscript").join("durations.json"))
}

/// The key of a run: the script's absolute path and the etcd binary.
pub fn key(script: &Path, etcd: Option<&Path>) -> String {
    let abs = script.canonicalize().unwrap_or_else(|_| script.to_owned());
    format!(
        "{}|{}",
        abs.display(),
        etcd.map(|e| e.display().to_string()).unwrap_or_default()
    )
}

impl Durations {
    /// Reads the cache; a missing or unreadable one is empty.
    pub fn load(path: Option<&Path>) -> Durations {
        let map = path
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.as_object().cloned())
            .map(|o| {
                o.into_iter()
                    .filter_map(|(k, v)| Some((k, v.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        Durations(map)
    }

    /// The expected duration of a run, in milliseconds: the last one measured, else one
    /// millisecond per byte of script (pessimistic, so that new scripts start early).
    pub fn estimate(&self, key: &str, script: &Path) -> u64 {
        self.0
            .get(key)
            .copied()
            .unwrap_or_else(|| std::fs::metadata(script).map_or(1000, |m| m.len()))
    }

    pub fn set(&mut self, key: String, ms: u64) {
        self.0.insert(key, ms);
    }

    /// Writes the cache back. A cache that cannot be written only costs the order next time.
    pub fn save(&self, path: Option<&Path>) {
        let Some(path) = path else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let value = serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
                .collect(),
        );
        let side = PathBuf::from(format!("{}.{}", path.display(), std::process::id()));
        if std::fs::write(&side, value.to_string()).is_ok() {
            let _ = std::fs::rename(&side, path);
        }
    }
}
