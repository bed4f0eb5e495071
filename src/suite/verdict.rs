//! Judging one run of a script against its snapshot, and settling snapshots once every
//! variant of a script has run.

use crate::error::{exit_code, Result};
use crate::limits;
use snapshot::Snapshot;
use std::time::Duration;

use super::*;

/// Why a run failed, or that it passed: against its snapshot unless it ended in a way no
/// snapshot may bless (a timeout, a panic, a signal, a broken environment).
pub(super) fn judge(
    out: &mut Outcome,
    job: &Job,
    f: &exec::Finished,
    timeout: Duration,
    cancelled: bool,
) {
    out.duration = f.duration;
    out.exit = f.code;
    out.transcript = f.stdout.clone();
    out.checks = f.checks.clone();
    // The work dir is kept for the member logs; that it was is no news to the reader.
    let stderr: Vec<&str> = f
        .stderr
        .lines()
        .filter(|l| !l.starts_with("work dir kept: "))
        .collect();
    out.stderr_tail = stderr[stderr.len().saturating_sub(20)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect();
    let verdict = f
        .verdict
        .as_ref()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned));
    let interrupted = matches!(f.code, Some(129 | 130 | 143)) || f.signal == Some(15);
    let (status, reason) = if cancelled && interrupted {
        (Status::Skipped, "stopped by --fail-fast".to_owned())
    } else if f.killed {
        (
            Status::Timeout,
            format!(
                "killed: still running {}s after its --timeout ({}s)",
                limits::SUITE_KILL_GRACE.as_secs(),
                timeout.as_secs()
            ),
        )
    } else if f.code == Some(exit_code::TIMEOUT) {
        (
            Status::Timeout,
            verdict.unwrap_or_else(|| format!("timed out (--timeout {}s)", timeout.as_secs())),
        )
    } else if f.code == Some(101) || f.signal.is_some() {
        let how = match f.signal {
            Some(s) => format!("killed by signal {s}"),
            None => "etcdscript panicked (exit 101)".into(),
        };
        // Rust's panic message is the line after "thread '...' panicked at FILE:LINE:COL:".
        let at = stderr.iter().position(|l| l.contains(" panicked at "));
        let why = at
            .and_then(|i| stderr.get(i + 1))
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default();
        if let Some(i) = at {
            out.stderr_tail = stderr[i..]
                .iter()
                .take(20)
                .map(|l| (*l).to_owned())
                .collect();
        }
        (Status::Panicked, format!("{how}{why}"))
    } else if f.code == Some(exit_code::ENVIRONMENT) {
        (
            Status::Error,
            verdict.unwrap_or_else(|| first_error(&stderr)),
        )
    } else {
        let code = f.code.unwrap_or(-1);
        let contents = snapshot::contents(code, &f.stdout);
        out.contents = Some(contents.clone());
        match &job.expected {
            None => (Status::New, "no snapshot yet".to_owned()),
            Some(s) if s.matches(&contents) => (Status::Passed, String::new()),
            Some(s) => {
                let was = snapshot::recorded_exit(&s.contents);
                out.expected_exit = was;
                let reason = if was != Some(code) {
                    format!(
                        "exit code changed: {} in the snapshot, {code} now",
                        was.map_or("none".into(), |c| c.to_string())
                    )
                } else {
                    "transcript changed".to_owned()
                };
                (Status::Changed, reason)
            }
        }
    };
    out.status = status;
    out.reason = reason;
    if out.status.failed() {
        let old = job.expected.as_ref().map_or("", |s| s.contents.as_str());
        let new = out
            .contents
            .clone()
            .unwrap_or_else(|| snapshot::contents(f.code.unwrap_or(-1), &f.stdout));
        out.diff = Some(report::unified_diff(old, &new));
    }
}

/// The first `error:` line of a run's stderr, or its last line.
pub(super) fn first_error(stderr: &[&str]) -> String {
    stderr
        .iter()
        .find(|l| l.starts_with("error"))
        .or(stderr.last())
        .map_or_else(
            || "the environment failed the run".into(),
            |l| l.to_string(),
        )
}

/// Settles a script's snapshot once all its runs are done: accepts, writes `.snap.new`, or
/// writes nothing, as `update` says. Every run of a script is held to the one snapshot.
pub(super) fn settle(group: &mut [(usize, Job, Outcome)], update: Update) -> Result<()> {
    let Some((_, job, _)) = group.first() else {
        return Ok(());
    };
    let path = job.snapshot.clone();
    let expected = job.expected.clone();
    let pending = snapshot::pending_path(&path);
    let to_write: Vec<&String> = group
        .iter()
        .filter(|(_, _, o)| matches!(o.status, Status::New | Status::Changed))
        .filter_map(|(_, _, o)| o.contents.as_ref())
        .collect();
    let Some(first) = to_write.first().map(|s| (*s).clone()) else {
        if update != Update::Never && group.iter().all(|(_, _, o)| o.status == Status::Passed) {
            let _ = std::fs::remove_file(&pending);
        }
        return Ok(());
    };
    let snap = match &expected {
        Some(s) => s.with_contents(first.clone()),
        None => Snapshot::new(&job.script.path, first.clone()),
    };
    let agree = group
        .iter()
        .all(|(_, _, o)| o.contents.as_ref().is_some_and(|c| snap.matches(c)));
    match update {
        Update::Accept if agree => {
            snap.write(&path)?;
            let _ = std::fs::remove_file(&pending);
            for (_, _, o) in group.iter_mut() {
                if matches!(o.status, Status::New | Status::Changed) {
                    o.status = Status::Accepted;
                }
            }
        }
        Update::Accept => {
            for (_, _, o) in group.iter_mut() {
                if matches!(o.status, Status::New | Status::Changed) {
                    o.reason
                        .push_str("; not accepted: the etcd versions disagree");
                }
            }
        }
        Update::Pending => snap.write(&pending)?,
        Update::Never => {}
    }
    Ok(())
}
