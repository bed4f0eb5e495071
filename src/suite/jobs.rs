//! Running a suite's jobs: a queue, workers that run each job as a child `etcdscript run`, and
//! the outcome of each.

use crate::error::{Error, Result};
use crate::limits;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::verdict::judge;
use super::*;

/// Runs the jobs on `opts.jobs` workers. `shown` gets each script's outcomes once all its
/// variants (one per etcd) are done and its snapshot is settled.
pub(super) fn run_jobs(
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
    let locks = dir.join("locks");
    std::fs::create_dir_all(&locks)
        .map_err(Error::io(&format!("failed to create {}", locks.display())))?;
    let mut handles = Vec::new();
    for w in 0..workers {
        let (queue, stop, running, tx) = (queue.clone(), stop.clone(), running.clone(), tx.clone());
        let (dir, locks) = (dir.to_owned(), locks.clone());
        let (timeout, fail_fast) = (opts.timeout, opts.fail_fast);
        let handle = std::thread::Builder::new()
            .name(format!("suite-{w}"))
            .spawn(move || {
                while let Some(job) = queue.take() {
                    let outcome = if stop.load(Ordering::SeqCst) {
                        skipped(&job)
                    } else {
                        run_one(&job, &dir, &locks, timeout, &stop, &running)
                    };
                    // Stop here, before this worker takes another job; the receiver stops the rest.
                    if fail_fast && outcome.status.failed() {
                        stop.store(true, Ordering::SeqCst);
                    }
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

/// The jobs not yet started, in the order they start. A script's runs against several etcd
/// binaries may run side by side: what only one run may hold (a pinned port, a remote cluster)
/// the runs take turns at themselves (`ETCDSCRIPT_SUITE_LOCKS`).
pub(super) struct Queue(Mutex<VecDeque<Job>>);

impl Queue {
    pub(super) fn new(jobs: Vec<Job>) -> Queue {
        Queue(Mutex::new(VecDeque::from(jobs)))
    }

    /// The next job; `None` when no job is left.
    pub(super) fn take(&self) -> Option<Job> {
        lock(&self.0).pop_front()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn skipped(job: &Job) -> Outcome {
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
pub(super) fn run_one(
    job: &Job,
    dir: &Path,
    locks: &Path,
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
        locks,
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
