//! `etcdscript test`: a directory of scripts run as a test suite. Each script runs as its own
//! `etcdscript run` child (own work dir, ports and teardown), N at a time, slowest first; its
//! exit code and transcript are compared with a golden snapshot in insta's format; the results
//! go to the terminal, and to JUnit, TAP and JSON reports.

pub mod discover;
pub mod exec;
pub mod record;
pub mod report;
pub mod schedule;
pub mod snapshot;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
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

/// Runs per core when `--jobs` is not given. A run of `scripts/` spends about half its wall
/// time waiting on etcd's timers (elections, a graceful stop) rather than on a CPU: on 2 cores
/// the suite takes about 6 s of run time and 3 s of CPU, so 2 jobs cannot finish it in less
/// than 3 s, and 4 finish it in about 2.5 s with no more flakes (README, "Performance").
pub const JOBS_PER_CORE: usize = 2;

/// `--jobs` when not given: [`JOBS_PER_CORE`] times the cores.
pub fn default_jobs() -> usize {
    JOBS_PER_CORE * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
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

/// Runs the jobs on `opts.jobs` workers. `shown` gets each script's outcomes once all its
/// variants (one per etcd) are done and its snapshot is settled.
fn run_jobs(
    jobs: Vec<Job>,
    opts: &Options,
    dir: &Path,
    update: Update,
    variants: usize,
    mut shown: impl FnMut(&[Outcome]),
) -> Result<Vec<(Job, Outcome)>> {
    let total = jobs.len();
    let queue = Arc::new(Queue::new(jobs));
    let stop = Arc::new(AtomicBool::new(false));
    let running: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let (tx, rx) = mpsc::channel::<(usize, Job, Outcome)>();
    let workers = opts.jobs.clamp(1, total.max(1));
    let mut handles = Vec::new();
    for w in 0..workers {
        let (queue, stop, running, tx) = (queue.clone(), stop.clone(), running.clone(), tx.clone());
        let dir = dir.to_owned();
        let (timeout, fail_fast) = (opts.timeout, opts.fail_fast);
        let handle = std::thread::Builder::new()
            .name(format!("suite-{w}"))
            .spawn(move || {
                while let Some(job) = queue.take() {
                    let outcome = if stop.load(Ordering::SeqCst) {
                        skipped(&job)
                    } else {
                        run_one(&job, &dir, timeout, &stop, &running)
                    };
                    // Stop here, before this worker takes another job; the receiver stops the rest.
                    if fail_fast && outcome.status.failed() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    queue.done(&job);
                    if tx.send((job.index, job, outcome)).is_err() {
                        break;
                    }
                }
            })
            .map_err(Error::io("failed to start a suite worker"))?;
        handles.push(handle);
    }
    drop(tx);
    let mut done = Vec::new();
    let mut pending: BTreeMap<PathBuf, Vec<(usize, Job, Outcome)>> = BTreeMap::new();
    for (index, job, outcome) in rx {
        if opts.fail_fast && outcome.status.failed() {
            stop.store(true, Ordering::SeqCst);
            for &pid in lock(&running).iter() {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        let script = job.script.path.clone();
        let group = pending.entry(script.clone()).or_default();
        group.push((index, job, outcome));
        if group.len() == variants {
            let mut group = pending.remove(&script).unwrap_or_default();
            group.sort_by_key(|(i, _, _)| *i);
            settle(&mut group, update)?;
            let outcomes: Vec<Outcome> = group.iter().map(|(_, _, o)| o.clone()).collect();
            shown(&outcomes);
            done.extend(group.into_iter().map(|(_, job, o)| (job, o)));
        }
    }
    for handle in handles {
        let _ = handle.join();
    }
    Ok(done)
}

/// The jobs not yet started. A script never runs twice at once (against two etcd binaries):
/// it may pin ports or other things only one run can hold.
struct Queue {
    state: Mutex<(VecDeque<Job>, HashSet<PathBuf>)>,
    changed: Condvar,
}

impl Queue {
    fn new(jobs: Vec<Job>) -> Queue {
        Queue {
            state: Mutex::new((VecDeque::from(jobs), HashSet::new())),
            changed: Condvar::new(),
        }
    }

    /// The first job whose script is not running, waiting while every left job's script is;
    /// `None` when no job is left.
    fn take(&self) -> Option<Job> {
        let mut state = lock(&self.state);
        loop {
            let (jobs, busy) = &mut *state;
            if jobs.is_empty() {
                return None;
            }
            if let Some(i) = jobs.iter().position(|j| !busy.contains(&j.script.path)) {
                let job = jobs.remove(i)?;
                busy.insert(job.script.path.clone());
                return Some(job);
            }
            // Bounded only by the running job, which its own timeout bounds.
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A job's run is over: its script may run again.
    fn done(&self, job: &Job) {
        lock(&self.state).1.remove(&job.script.path);
        self.changed.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn skipped(job: &Job) -> Outcome {
    Outcome {
        name: job.name.clone(),
        script: job.script.name(),
        etcd: job.etcd.as_ref().map(|e| e.1.clone()),
        status: Status::Skipped,
        reason: "not run: --fail-fast stopped the suite".into(),
        duration: Duration::ZERO,
        exit: None,
        expected_exit: job
            .expected
            .as_ref()
            .and_then(|s| snapshot::recorded_exit(&s.contents)),
        diff: None,
        checks: Vec::new(),
        transcript: String::new(),
        stderr_tail: Vec::new(),
        member_logs: Vec::new(),
        snapshot: job.snapshot.clone(),
        contents: None,
    }
}

/// Runs one job in its own directory and judges it against its snapshot.
fn run_one(
    job: &Job,
    dir: &Path,
    timeout: Duration,
    stop: &AtomicBool,
    running: &Mutex<HashSet<u32>>,
) -> Outcome {
    let mut out = skipped(job);
    let job_dir = dir.join(job.index.to_string());
    if let Err(e) = std::fs::create_dir_all(&job_dir) {
        out.status = Status::Error;
        out.reason = format!("failed to create {}: {e}", job_dir.display());
        return out;
    }
    let spec = exec::Spec {
        script: &job.script.path,
        etcd: job.etcd.as_ref().map(|e| e.0.as_path()),
        timeout,
        dir: &job_dir,
    };
    let mut pid = None;
    let finished = exec::run(&spec, |p| {
        pid = Some(p);
        lock(running).insert(p);
    });
    if let Some(p) = pid {
        lock(running).remove(&p);
    }
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            out.status = Status::Error;
            out.reason = format!("failed to run the script: {e}");
            return out;
        }
    };
    judge(
        &mut out,
        job,
        &finished,
        timeout,
        stop.load(Ordering::SeqCst),
    );
    if out.status.failed() {
        out.member_logs = exec::member_log_tails(&job_dir, limits::LOG_TAIL_LINES);
    }
    let _ = std::fs::remove_dir_all(&job_dir);
    out
}

/// Why a run failed, or that it passed: against its snapshot unless it ended in a way no
/// snapshot may bless (a timeout, a panic, a signal, a broken environment).
fn judge(out: &mut Outcome, job: &Job, f: &exec::Finished, timeout: Duration, cancelled: bool) {
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
fn first_error(stderr: &[&str]) -> String {
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
fn settle(group: &mut [(usize, Job, Outcome)], update: Update) -> Result<()> {
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

#[cfg(test)]
mod tests {
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
    fn a_script_never_runs_twice_at_once() {
        let q = Queue::new(vec![job(0, "a"), job(1, "a"), job(2, "b")]);
        let first = q.take().unwrap();
        assert_eq!(first.index, 0);
        assert_eq!(q.take().unwrap().index, 2, "the other run of `a` waits");
        q.done(&first);
        assert_eq!(q.take().unwrap().index, 1);
        assert!(q.take().is_none());
    }
}
