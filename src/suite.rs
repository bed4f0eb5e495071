//! `etcdscript test`: a directory of scripts run as a test suite. Each script runs as its own
//! `etcdscript run` child (own work dir, ports and teardown), N at a time, slowest first; its
//! exit code and transcript are compared with a golden snapshot in insta's format; the results
//! go to the terminal, and to JUnit, TAP and JSON reports.

pub mod discover;
pub mod exec;
mod jobs;
pub mod record;
pub mod report;
pub mod schedule;
pub mod snapshot;
mod verdict;

use jobs::run_jobs;
use verdict::settle;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{exit_code, Error, Result};
use crate::etcd::process::{etcd_version, find_etcd};
use crate::limits;
use discover::{Partition, Script};
use snapshot::Snapshot;

/// What `etcdscript test` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Scripts and directories of scripts; none means `scripts/`.
    pub paths: Vec<PathBuf>,
    /// Keep every snapshot in this directory, named `<dir>@<script>.snap`.
    pub snapshots: Option<PathBuf>,
    /// Runs at once.
    pub jobs: usize,
    /// etcd binaries: every script runs against each. Empty: `etcd` on PATH, if any.
    pub etcd: Vec<PathBuf>,
    /// Each run's `--timeout`.
    pub timeout: Duration,
    /// Substrings of script names; a script runs if any matches.
    pub filter: Vec<String>,
    pub fail_fast: bool,
    pub list: bool,
    /// Write changed and new snapshots in place.
    pub accept: bool,
    pub partition: Option<Partition>,
    pub junit: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub tap: bool,
}

/// Runs per core when `--jobs` is not given. A run spends most of its wall time waiting on
/// etcd's timers (elections, graceful stops, certificates expiring) rather than on a CPU: on 2
/// cores, `scripts/` against two etcd binaries is about 74 s of run time and 20 s of CPU, so 4
/// jobs take about 17 s and 8 about 12 s, where one script (`ca-rotation.rhai`, about 8 s)
/// becomes the critical path (README, "Performance").
pub const JOBS_PER_CORE: usize = 4;

/// Members a run is taken to start at most, for the disk room the default `--jobs` leaves each
/// run (etcd preallocates [`limits::MEMBER_DISK_BYTES`] per member).
pub const MEMBERS_PER_RUN: u64 = 5;

/// `--jobs` when not given: [`JOBS_PER_CORE`] times the cores, fewer if the temp dir lacks the
/// room for [`MEMBERS_PER_RUN`] members per run (at least one).
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let by_cores = JOBS_PER_CORE * cores;
    let per_run = MEMBERS_PER_RUN * limits::MEMBER_DISK_BYTES;
    match crate::workdirs::free_bytes(&std::env::temp_dir()) {
        Some(free) => by_cores.min((free / per_run).max(1) as usize),
        None => by_cores,
    }
}

/// What happens to a snapshot that is new or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// Written in place, and the script passes (`--accept`, `INSTA_UPDATE=always`).
    Accept,
    /// Written beside it as `.snap.new` for review; the script fails.
    Pending,
    /// Nothing is written (`CI=true`, `INSTA_UPDATE=no`); the script fails.
    Never,
}

impl Update {
    /// From `--accept` and the environment, as insta decides.
    pub fn decide(accept: bool) -> Update {
        if accept {
            return Update::Accept;
        }
        match std::env::var("INSTA_UPDATE").as_deref() {
            Ok("always") | Ok("unseen") => Update::Accept,
            Ok("no") => Update::Never,
            Ok("new") => Update::Pending,
            _ if is_ci() => Update::Never,
            _ => Update::Pending,
        }
    }
}

/// Whether we run in CI (`CI` set to anything but `false` or `0`, as insta reads it).
fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// How one run of one script ended, from the suite's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// New or changed, and accepted.
    Accepted,
    /// The exit code or transcript differs from the snapshot.
    Changed,
    /// There is no snapshot yet.
    New,
    /// The run went past its timeout (exit 5, or killed by the suite).
    Timeout,
    /// etcdscript panicked (exit 101) or died of a signal.
    Panicked,
    /// The environment failed the run (exit 4: no etcd, a member that would not start).
    Error,
    /// Not run: `--fail-fast` stopped the suite first.
    Skipped,
}

impl Status {
    pub fn failed(self) -> bool {
        !matches!(self, Status::Passed | Status::Accepted | Status::Skipped)
    }

    /// The word for it in every report.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Accepted => "accepted",
            Status::Changed => "changed",
            Status::New => "new",
            Status::Timeout => "timeout",
            Status::Panicked => "panicked",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// One run's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The test case's name: the script, and the etcd version when there are several.
    pub name: String,
    pub script: String,
    pub etcd: Option<String>,
    pub status: Status,
    /// Why it failed, in one line.
    pub reason: String,
    pub duration: Duration,
    pub exit: Option<i32>,
    pub expected_exit: Option<i32>,
    /// Snapshot against this run, unified.
    pub diff: Option<String>,
    pub checks: Vec<Value>,
    pub transcript: String,
    pub stderr_tail: Vec<String>,
    pub member_logs: Vec<(String, Vec<String>)>,
    pub snapshot: PathBuf,
    /// Exit code and transcript as a snapshot holds them.
    pub contents: Option<String>,
}

/// One run to do.
struct Job {
    index: usize,
    script: Script,
    etcd: Option<(PathBuf, String)>,
    name: String,
    key: String,
    expected: Option<Snapshot>,
    snapshot: PathBuf,
}

/// Runs the suite; returns the exit code (0 all passed, 1 some failed, 2 usage).
pub fn run(opts: &Options) -> Result<i32> {
    let paths = if opts.paths.is_empty() {
        vec![PathBuf::from("scripts")]
    } else {
        opts.paths.clone()
    };
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        crate::transcript::err(format!(
            "error: {} does not exist (give scripts or directories of scripts)",
            missing.display()
        ));
        return Ok(exit_code::USAGE);
    }
    let scripts: Vec<Script> = discover::discover(&paths)?
        .into_iter()
        .filter(|s| discover::matches_filter(&s.name(), &opts.filter))
        .filter(|s| opts.partition.is_none_or(|p| p.contains(&s.name())))
        .collect();
    let etcds = etcd_binaries(&opts.etcd)?;
    let jobs = plan(&scripts, &etcds, opts.snapshots.as_deref())?;
    if opts.list {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for job in &jobs {
            if writeln!(out, "{}", job.name).is_err() {
                break;
            }
        }
        return Ok(exit_code::SUCCESS);
    }
    let update = Update::decide(opts.accept);
    let cache = schedule::cache_file();
    let mut durations = schedule::Durations::load(cache.as_deref());
    let total = jobs.len();
    let mut order: Vec<Job> = jobs;
    order.sort_by_key(|j| std::cmp::Reverse(durations.estimate(&j.key, &j.script.path)));
    let variants = etcds.len();

    let dir = suite_dir()?;
    let mut reporter = report::Live::new(total, opts.tap);
    let begun = Instant::now();
    let results = run_jobs(order, opts, dir.path(), update, variants, |outcomes| {
        reporter.finished(outcomes)
    });
    let elapsed = begun.elapsed();
    crate::lifecycle::unregister_workdir();
    drop(dir);

    let mut results = results?;
    results.sort_by_key(|(job, _)| job.index);
    for (job, o) in &results {
        if o.status != Status::Skipped {
            durations.set(job.key.clone(), o.duration.as_millis() as u64);
        }
    }
    durations.save(cache.as_deref());
    let outcomes: Vec<Outcome> = results.into_iter().map(|(_, o)| o).collect();
    reporter.summary(&outcomes, elapsed, update);
    if let Some(path) = &opts.junit {
        std::fs::write(path, report::junit(&outcomes, elapsed))
            .map_err(Error::io(format!("failed to write {}", path.display())))?;
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, report::json(&outcomes, elapsed))
            .map_err(Error::io(format!("failed to write {}", path.display())))?;
    }
    Ok(if outcomes.iter().any(|o| o.status.failed()) {
        exit_code::CHECK_FAILED
    } else {
        exit_code::SUCCESS
    })
}

/// The runs to do: every script against every etcd binary, with its snapshot.
fn plan(
    scripts: &[Script],
    etcds: &[Option<(PathBuf, String)>],
    snapshots: Option<&Path>,
) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for script in scripts {
        let snapshot = script.snapshot_path(snapshots);
        let expected = Snapshot::read(&snapshot)?;
        for etcd in etcds {
            let name = match (etcd, etcds.len()) {
                (Some((_, label)), 2..) => format!("{} [{label}]", script.name()),
                _ => script.name(),
            };
            let key = schedule::key(&script.path, etcd.as_ref().map(|e| e.0.as_path()));
            jobs.push(Job {
                index: jobs.len(),
                script: script.clone(),
                etcd: etcd.clone(),
                name,
                key,
                expected: expected.clone(),
                snapshot: snapshot.clone(),
            });
        }
    }
    Ok(jobs)
}

/// The etcd binaries and their labels (`etcd 3.5.1`). None given: `etcd` on PATH if there is
/// one, else none at all (runs that start members then fail, the others pass).
fn etcd_binaries(given: &[PathBuf]) -> Result<Vec<Option<(PathBuf, String)>>> {
    if given.is_empty() {
        return Ok(vec![find_etcd(None)
            .ok()
            .map(|p| (p.clone(), p.display().to_string()))]);
    }
    let mut out = Vec::new();
    for path in given {
        let bin = find_etcd(Some(path))?;
        let label = if given.len() > 1 {
            format!("etcd {}", etcd_version(&bin)?)
        } else {
            bin.display().to_string()
        };
        out.push(Some((bin, label)));
    }
    let labels: HashSet<&String> = out.iter().flatten().map(|(_, l)| l).collect();
    if labels.len() < out.len() {
        for (bin, label) in out.iter_mut().flatten() {
            *label = bin.display().to_string();
        }
    }
    Ok(out)
}

/// The suite's own temp dir (one subdirectory per run), removed by the signal thread if the
/// suite is interrupted, and by `etcdscript clean` if it was killed.
fn suite_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix(crate::workdirs::WORKDIR_PREFIX)
        .tempdir()
        .map_err(Error::io("failed to create the suite's temp dir"))?;
    crate::workdirs::write_owner(dir.path(), false)?;
    crate::lifecycle::register_script("the suite");
    crate::lifecycle::register_workdir(dir.path(), crate::lifecycle::Keep::Nothing);
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::jobs::Queue;
    use super::*;

    fn job(index: usize, script: &str) -> Job {
        Job {
            index,
            script: Script {
                path: PathBuf::from(script),
                root: PathBuf::from("."),
                rel: script.into(),
            },
            etcd: None,
            name: format!("{script} {index}"),
            key: String::new(),
            expected: None,
            snapshot: PathBuf::new(),
        }
    }

    #[test]
    fn jobs_start_in_queue_order_whatever_their_script() {
        let q = Queue::new(vec![job(0, "a"), job(1, "a"), job(2, "b")]);
        let order: Vec<usize> = std::iter::from_fn(|| q.take()).map(|j| j.index).collect();
        assert_eq!(order, [0, 1, 2]);
    }
}
