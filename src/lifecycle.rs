//! What must happen however a run ends: the PIDs of live members and the work dir, known to a
//! signal thread that tears them down on SIGINT, SIGTERM or SIGHUP. Work dirs left by runs that
//! were SIGKILLed, where nothing of ours could run, are `workdirs.rs`'s.
//!
//! Every write into the work dir, and every member start, holds [`hold_writes`]. The signal
//! thread takes that lock and never gives it back: once it has it, the script thread can write
//! nothing more, so what the signal thread removes stays removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;

use crate::error::exit_code;

/// What the signal thread needs to tear a run down.
struct Live {
    pids: Vec<u32>,
    workdir: Option<PathBuf>,
    keep: Keep,
    /// What is running, for the message on interruption.
    script: Option<String>,
}

/// What of a work dir outlives its run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: the work dir is removed.
    #[default]
    Nothing,
    /// The PKI and the member logs; the members' data dirs (about 120 MB each) are removed.
    PkiAndLogs,
    /// Everything, data dirs included.
    Everything,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    pids: Vec::new(),
    workdir: None,
    keep: Keep::Nothing,
    script: None,
});

static WRITES: Mutex<()> = Mutex::new(());

/// Held while writing into the work dir or starting a member; see the module's doc.
pub fn hold_writes() -> MutexGuard<'static, ()> {
    WRITES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the script being run.
pub fn register_script(name: &str) {
    live().script = Some(name.to_owned());
}

fn live() -> MutexGuard<'static, Live> {
    // A panic while the lock was held must not stop the teardown.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a member's PID (its process group ID too).
pub fn register_pid(pid: u32) {
    live().pids.push(pid);
}

/// Forgets a PID once the member is reaped.
pub fn unregister_pid(pid: u32) {
    live().pids.retain(|&p| p != pid);
}

/// Records the work dir and what of it to keep.
pub fn register_workdir(path: &Path, keep: Keep) {
    let mut l = live();
    l.workdir = Some(path.to_owned());
    l.keep = keep;
}

/// Forgets the work dir (it has been removed or handed over).
pub fn unregister_workdir() {
    live().workdir = None;
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and so in every thread started after it),
/// and starts the thread that waits for them. Call first thing in `main`.
///
/// On a signal the thread stops every write into the work dir, kills every registered member's
/// process group, removes the work dir unless it is kept, says what it did, and exits with
/// 128 + the signal number.
pub fn install_signal_thread() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    if set.thread_block().is_err() {
        tracing::warn!("could not block termination signals; an interrupted run may leave members behind until they notice");
        return;
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            let code = if signal == Signal::SIGINT {
                exit_code::INTERRUPTED
            } else {
                128 + signal as i32
            };
            // Never given back: the script thread writes nothing from now on.
            std::mem::forget(hold_writes());
            let script = live().script.clone();
            let (members, workdir) = teardown_now();
            let mut msg = format!("interrupted by {signal}");
            if let Some(script) = script {
                msg.push_str(&format!(" while running {script}"));
            }
            msg.push_str(&format!(": killed {members} etcd member(s), {workdir}"));
            crate::transcript::err(msg);
            std::process::exit(code);
        })
        .expect("failed to start the signal thread");
}

/// Makes a panic tear the run down before anything else happens, then report itself as a bug.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let (members, _) = teardown_now();
        crate::transcript::err(format!("internal error: etcdscript panicked (a bug; please report it); killed {members} etcd member(s)"));
        default(info);
    }));
}

/// What became of a work dir at the end of a run.
#[derive(Debug)]
pub enum WorkdirFate {
    /// No work dir was registered (none made yet, or already dealt with).
    None,
    Removed,
    Kept {
        dir: PathBuf,
        summary: String,
    },
    NotRemoved {
        dir: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for WorkdirFate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkdirFate::None => f.write_str("no work dir to remove"),
            WorkdirFate::Removed => f.write_str("removed the work dir"),
            WorkdirFate::Kept { dir, summary } => {
                write!(f, "kept work dir {} ({summary})", dir.display())
            }
            WorkdirFate::NotRemoved { dir, error } => {
                write!(
                    f,
                    "could not remove the work dir {}: {error}",
                    dir.display()
                )
            }
        }
    }
}

/// Kills every registered member group, then removes the work dir or trims it to what is kept.
/// Returns how many members were killed and what became of the work dir.
pub fn teardown_now() -> (usize, WorkdirFate) {
    let mut l = live();
    let pids = std::mem::take(&mut l.pids);
    for &pid in &pids {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    for &pid in &pids {
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None);
    }
    let fate = match l.workdir.take() {
        Some(dir) => finish_workdir(&dir, l.keep),
        None => WorkdirFate::None,
    };
    (pids.len(), fate)
}

/// The members' data dirs inside a work dir (`members/*.etcd`).
pub const DATA_DIR_SUFFIX: &str = ".etcd";

/// Removes a work dir, or keeps what `keep` says and reports its size. Members must be dead.
pub fn finish_workdir(dir: &Path, keep: Keep) -> WorkdirFate {
    match keep {
        Keep::Nothing => match fs::remove_dir_all(dir) {
            Ok(()) => WorkdirFate::Removed,
            Err(error) if !dir.exists() => {
                tracing::debug!(%error, "work dir already gone");
                WorkdirFate::Removed
            }
            Err(error) => WorkdirFate::NotRemoved {
                dir: dir.to_owned(),
                error,
            },
        },
        Keep::PkiAndLogs => {
            let mut removed = 0;
            for entry in fs::read_dir(dir.join("members"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let data = entry.path();
                if data.to_string_lossy().ends_with(DATA_DIR_SUFFIX) && data.is_dir() {
                    removed += tree_size(&data);
                    let _ = fs::remove_dir_all(&data);
                }
            }
            WorkdirFate::Kept {
                dir: dir.to_owned(),
                summary: format!(
                    "{}: certificates, keys and member logs; members' data dirs ({}) removed, --keep-data keeps them",
                    human_size(tree_size(dir)),
                    human_size(removed)
                ),
            }
        }
        Keep::Everything => WorkdirFate::Kept {
            dir: dir.to_owned(),
            summary: format!("{}, data dirs included", human_size(tree_size(dir))),
        },
    }
}

/// The bytes of the files under `path`, symbolic links not followed.
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| tree_size(&e.path()))
        .sum()
}

/// `2.3 GiB`, `1.5 MiB`, `12 KiB`, `300 bytes`.
pub fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB {
        format!("{} KiB", bytes.div_ceil(KIB))
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(300), "300 bytes");
        assert_eq!(human_size(12 * 1024), "12 KiB");
        assert_eq!(human_size(123 << 20), "123.0 MiB");
    }
}
