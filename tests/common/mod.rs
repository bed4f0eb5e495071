//! Helpers shared by the integration tests: run the built binary on a script, read what it did.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built etcdscript binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etcdscript"))
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What one run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Exit code and transcript, the way snapshots keep them.
    pub fn snapshot(&self) -> String {
        format!("exit: {}\n---\n{}", self.code, self.stdout)
    }
}

/// Runs `etcdscript` with `args` in the repository root (etcd from ETCDSCRIPT_ETCD or PATH).
pub fn etcdscript(args: &[&str]) -> Run {
    let out = Command::new(bin())
        .args(args)
        .current_dir(root())
        .output()
        .expect("failed to run etcdscript");
    Run::from(out)
}

/// Writes `text` as a script in a fresh temp dir and runs it; the dir is returned with the run
/// so that it lives as long as the caller needs it.
pub fn run_text(name: &str, text: &str, extra: &[&str]) -> (Run, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write script");
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    let p = path.to_str().expect("utf-8 path").to_owned();
    args.push(&p);
    let run = etcdscript(&args);
    (run, dir)
}

/// A path relative to the repository root, as a string.
pub fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The PKI and one-member cluster that most small test scripts start from.
pub const ONE_MEMBER: &str = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let client = issue(ca, "client");
let c = cluster(["m1"], #{ ca: ca, cert: server });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
"#;
