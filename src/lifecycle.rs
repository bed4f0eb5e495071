//! What must happen however a run ends: the PIDs of live members and the work dir, known to a
//! signal thread that tears them down on SIGINT, SIGTERM or SIGHUP; and the clean-up of work dirs
//! left by runs that were SIGKILLed, where nothing of ours could run.
//!
//! Every write into the work dir, and every member start, holds [`hold_writes`]. The signal
//! thread takes that lock and never gives it back: once it has it, the script thread can write
//! nothing more, so what the signal thread removes stays removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;

use crate::error::{exit_code, Error, Result};

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

/// `1.5 MiB`, `12 KiB`, `300 bytes`.
pub fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB {
        format!("{} KiB", bytes.div_ceil(KIB))
    } else {
        format!("{bytes} bytes")
    }
}

/// The file in a work dir that names the run owning it.
pub const OWNER_FILE: &str = "owner";
/// Work dirs made in the temp dir start with this.
pub const WORKDIR_PREFIX: &str = "etcdscript-";

/// Who owns a work dir: the process (PID and start time, so that a reused PID is not taken for
/// it), the PID namespace its PID means something in, the boot it ran in, and whether the user
/// asked to keep the dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub pid: u32,
    pub start: String,
    pub pidns: String,
    pub boot: String,
    pub keep: bool,
}

impl Stamp {
    /// This process's stamp; `None` where /proc does not tell.
    pub fn here(keep: bool) -> Option<Stamp> {
        let pid = std::process::id();
        Some(Stamp {
            pid,
            start: start_time(pid)?,
            pidns: pid_namespace()?,
            boot: boot_id()?,
            keep,
        })
    }

    /// The owner file's text: one `key value` a line.
    pub fn render(&self) -> String {
        format!(
            "pid {}\nstart {}\npidns {}\nboot {}\nkeep {}\n",
            self.pid,
            self.start,
            self.pidns,
            self.boot,
            if self.keep { "yes" } else { "no" }
        )
    }

    /// Reads an owner file; `None` if it is not one this version wrote, whole.
    pub fn parse(text: &str) -> Option<Stamp> {
        let mut fields = std::collections::HashMap::new();
        for line in text.lines() {
            let (k, v) = line.split_once(' ')?;
            if fields.insert(k, v.trim()).is_some() || v.trim().is_empty() {
                return None;
            }
        }
        let stamp = Stamp {
            pid: fields.remove("pid")?.parse().ok()?,
            start: fields.remove("start")?.to_owned(),
            pidns: fields.remove("pidns")?.to_owned(),
            boot: fields.remove("boot")?.to_owned(),
            keep: match fields.remove("keep")? {
                "yes" => true,
                "no" => false,
                _ => return None,
            },
        };
        fields.is_empty().then_some(stamp)
    }
}

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields count from after the parenthesised command name, which may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().nth(19)?.to_owned())
}

fn pid_namespace() -> Option<String> {
    let link = fs::read_link("/proc/self/ns/pid").ok()?;
    Some(link.to_string_lossy().into_owned())
}

fn boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_owned())
}

/// Whether the run that owns a work dir is alive, as far as can be proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    Alive,
    /// Proven gone: another boot, or its PID no longer names the process that wrote the stamp.
    Dead,
    /// Cannot be told (another PID namespace, an owner file this version cannot read): never
    /// removed automatically.
    Unknown(String),
}

/// Judges a stamp against where we are. `start_of` gives a PID's start time in our namespace.
pub fn judge_owner(
    stamp: Option<&Stamp>,
    here_pidns: Option<&str>,
    here_boot: Option<&str>,
    start_of: impl Fn(u32) -> Option<String>,
) -> Owner {
    let Some(stamp) = stamp else {
        return Owner::Unknown("its owner file is missing or unreadable".into());
    };
    let Some(boot) = here_boot else {
        return Owner::Unknown("this machine's boot id cannot be read".into());
    };
    if stamp.boot != boot {
        return Owner::Dead;
    }
    if here_pidns != Some(stamp.pidns.as_str()) {
        return Owner::Unknown(format!(
            "its run is in another PID namespace ({}), where it may be alive",
            stamp.pidns
        ));
    }
    if start_of(stamp.pid).as_deref() == Some(stamp.start.as_str()) {
        Owner::Alive
    } else {
        Owner::Dead
    }
}

/// Writes the owner file of a work dir: to a side file first, then renamed into place, so that
/// another run cleaning stale dirs never reads it half written. Call with [`hold_writes`] held.
pub fn write_owner(dir: &Path, keep: bool) -> Result<()> {
    let Some(stamp) = Stamp::here(keep) else {
        tracing::warn!("/proc does not say who we are: the work dir gets no owner file, and `clean` will never remove it");
        return Ok(());
    };
    let side = dir.join(format!("{OWNER_FILE}.new"));
    fs::write(&side, stamp.render()).map_err(Error::io("failed to write the owner file"))?;
    fs::rename(&side, dir.join(OWNER_FILE)).map_err(Error::io("failed to write the owner file"))
}

/// What [`clean_stale`] found.
#[derive(Debug, Default)]
pub struct CleanReport {
    /// Removed: their runs are gone.
    pub removed: Vec<PathBuf>,
    /// Kept on the user's request (`--keep`); removed only by `clean --kept`.
    pub kept: Vec<PathBuf>,
    /// Left alone: whether their runs are alive cannot be told.
    pub undecided: Vec<(PathBuf, String)>,
}

/// Removes the work dirs in `tmp` whose run is proven gone, except kept ones unless
/// `remove_kept`. A live run's dir, and one whose run cannot be proven gone, are never removed.
pub fn clean_stale(tmp: &Path, remove_kept: bool) -> Result<CleanReport> {
    let mut report = CleanReport::default();
    let entries = match fs::read_dir(tmp) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(Error::io(format!("failed to list {}", tmp.display()))(e)),
    };
    let (pidns, boot) = (pid_namespace(), boot_id());
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(WORKDIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let is_dir = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        if !is_dir {
            continue;
        }
        let stamp = fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|t| Stamp::parse(&t));
        let owner = judge_owner(
            stamp.as_ref(),
            pidns.as_deref(),
            boot.as_deref(),
            start_time,
        );
        let kept = stamp.as_ref().is_some_and(|s| s.keep);
        match owner {
            Owner::Alive => {}
            Owner::Unknown(why) => report.undecided.push((dir, why)),
            Owner::Dead if kept && !remove_kept => report.kept.push(dir),
            Owner::Dead => {
                if fs::remove_dir_all(&dir).is_ok() {
                    report.removed.push(dir);
                } else {
                    report
                        .undecided
                        .push((dir, "it could not be removed".into()));
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(pid: u32, pidns: &str, boot: &str) -> Stamp {
        Stamp {
            pid,
            start: "100".into(),
            pidns: pidns.into(),
            boot: boot.into(),
            keep: false,
        }
    }

    #[test]
    fn stamps_read_back_and_nothing_else_reads() {
        let s = stamp(42, "pid:[4026531836]", "b-1");
        assert_eq!(Stamp::parse(&s.render()), Some(s));
        for bad in [
            "",
            "1 12345",
            "pid 1\n",
            "pid x\nstart 1\npidns n\nboot b\nkeep no\n",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_provably_dead_owner_is_dead() {
        let here = |pid: u32| (pid == 7).then(|| "100".to_owned());
        let judge = |s: &Stamp| judge_owner(Some(s), Some("ns-a"), Some("boot-1"), here);
        assert_eq!(judge(&stamp(7, "ns-a", "boot-1")), Owner::Alive);
        assert_eq!(judge(&stamp(8, "ns-a", "boot-1")), Owner::Dead);
        // A CI container sharing /tmp: its PID 1 is not ours.
        assert!(matches!(
            judge(&stamp(1, "ns-b", "boot-1")),
            Owner::Unknown(_)
        ));
        // A stamp from before a reboot: nothing of that boot is alive.
        assert_eq!(judge(&stamp(1, "ns-b", "boot-0")), Owner::Dead);
        assert!(matches!(
            judge_owner(None, Some("ns-a"), Some("boot-1"), here),
            Owner::Unknown(_)
        ));
        let s = stamp(7, "ns-a", "boot-1");
        assert!(matches!(
            judge_owner(Some(&s), None, Some("boot-1"), here),
            Owner::Unknown(_)
        ));
        assert!(matches!(
            judge_owner(Some(&s), Some("ns-a"), None, here),
            Owner::Unknown(_)
        ));
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(300), "300 bytes");
        assert_eq!(human_size(12 * 1024), "12 KiB");
        assert_eq!(human_size(123 << 20), "123.0 MiB");
    }
}
