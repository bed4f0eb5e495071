//! One script run by the suite: `etcdscript run` as a child process of this same binary, in its
//! own work dir, process group and ports, bounded in time, its output in files.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::limits;

/// What to run.
pub struct Spec<'a> {
    pub script: &'a Path,
    pub etcd: Option<&'a Path>,
    pub timeout: Duration,
    /// A fresh directory for this run's files (its work dir, output and check records).
    pub dir: &'a Path,
    /// The suite's lock files (see [`crate::session::SUITE_LOCKS`]).
    pub locks: &'a Path,
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Finished {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Killed by the suite past its timeout.
    pub killed: bool,
    pub stdout: String,
    pub stderr: String,
    /// The check records it wrote (`run --checks`).
    pub checks: Vec<Value>,
    /// Its verdict line, if it got that far.
    pub verdict: Option<Value>,
    pub duration: Duration,
}

/// Runs one script and waits for it, bounded by its timeout and [`limits::SUITE_KILL_GRACE`].
/// `started` is told the child's PID (its process group) as soon as it runs.
pub fn run(spec: &Spec, started: impl FnOnce(u32)) -> std::io::Result<Finished> {
    let exe = std::env::current_exe()?;
    let stdout = std::fs::File::create(spec.dir.join("stdout"))?;
    let stderr = std::fs::File::create(spec.dir.join("stderr"))?;
    let checks = spec.dir.join("checks.jsonl");
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("--timeout")
        .arg(spec.timeout.as_secs().max(1).to_string())
        .arg("--workdir")
        .arg(spec.dir.join("work"))
        .arg("--keep")
        .arg("--checks")
        .arg(&checks);
    if let Some(etcd) = spec.etcd {
        cmd.arg("--etcd").arg(etcd);
    }
    cmd.arg(spec.script)
        .env_remove("RUST_LOG")
        .env(crate::session::SUITE_LOCKS, spec.locks)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: between fork and exec the closure makes only async-signal-safe calls (prctl,
    // getppid, raise).
    unsafe {
        cmd.pre_exec(move || {
            // SIGTERM, not SIGKILL: the run tears its members down on it. The signal comes when
            // the spawning thread ends, and suite workers outlive their children.
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            if nix::unistd::getppid().as_raw() as u32 != parent {
                nix::sys::signal::raise(Signal::SIGTERM)?;
            }
            Ok(())
        });
    }
    let begun = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id();
    started(pid);
    let (tx, rx) = mpsc::channel::<std::io::Result<ExitStatus>>();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let bound = spec.timeout + limits::SUITE_KILL_GRACE;
    let (status, killed) = match rx.recv_timeout(bound) {
        Ok(status) => (status?, false),
        Err(_) => {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            match rx.recv_timeout(limits::SUITE_REAP_TIMEOUT) {
                Ok(status) => (status?, true),
                Err(_) => {
                    return Err(std::io::Error::other(format!(
                        "the run of {} did not end after SIGKILL",
                        spec.script.display()
                    )))
                }
            }
        }
    };
    let duration = begun.elapsed();
    use std::os::unix::process::ExitStatusExt;
    let (mut records, mut verdict) = (Vec::new(), None);
    for line in std::fs::read_to_string(&checks).unwrap_or_default().lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("verdict").is_some() => verdict = Some(v),
            Ok(v) => records.push(v),
            Err(_) => {}
        }
    }
    Ok(Finished {
        code: status.code(),
        signal: status.signal(),
        killed,
        stdout: read_lossy(&spec.dir.join("stdout")),
        stderr: read_lossy(&spec.dir.join("stderr")),
        checks: records,
        verdict,
        duration,
    })
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// The last `n` lines of each member's log in a run's work dir, by member name.
pub fn member_log_tails(dir: &Path, n: usize) -> Vec<(String, Vec<String>)> {
    let members = dir.join("work").join("members");
    let Ok(entries) = std::fs::read_dir(&members) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.iter()
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, tail(p, n))
        })
        .collect()
}

/// The last `n` lines of a file, reading at most its last 64 KiB (member logs at debug level
/// grow large).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    const MAX: u64 = 64 * 1024;
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(MAX)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}
