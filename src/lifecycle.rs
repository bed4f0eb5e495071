//! What must happen however a run ends: the PIDs of live members and the work dir, known to a
//! signal thread that tears them down on SIGINT, SIGTERM or SIGHUP; and the clean-up of work dirs
//! left by runs that were SIGKILLed, where nothing of ours could run.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;

use crate::error::{exit_code, Error, Result};

/// What the signal thread needs to tear a run down.
#[derive(Default)]
struct Live {
    pids: Vec<u32>,
    workdir: Option<PathBuf>,
    keep: bool,
    /// What is running, for the message on interruption.
    script: Option<String>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    pids: Vec::new(),
    workdir: None,
    keep: false,
    script: None,
});

/// Records the script being run.
pub fn register_script(name: &str) {
    live().script = Some(name.to_owned());
}

fn live() -> std::sync::MutexGuard<'static, Live> {
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

/// Records the work dir and whether to keep it.
pub fn register_workdir(path: &Path, keep: bool) {
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
/// On a signal the thread kills every registered member's process group, removes the work dir
/// unless it is kept, says what was interrupted, and exits with 128 + the signal number.
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
            let script = live().script.clone();
            let (members, workdir) = teardown_now();
            let mut msg = format!("interrupted by {signal}");
            if let Some(script) = script {
                msg.push_str(&format!(" while running {script}"));
            }
            msg.push_str(&format!(": killed {members} etcd member(s)"));
            match workdir {
                Some(dir) => msg.push_str(&format!(", kept work dir {}", dir.display())),
                None => msg.push_str(", removed the work dir"),
            }
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

/// Kills every registered member group and removes the work dir unless kept. Returns how many
/// members were killed and the kept work dir, if any.
pub fn teardown_now() -> (usize, Option<PathBuf>) {
    let mut l = live();
    let pids = std::mem::take(&mut l.pids);
    for &pid in &pids {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    for &pid in &pids {
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None);
    }
    let kept = match l.workdir.take() {
        Some(dir) if l.keep => Some(dir),
        Some(dir) => {
            let _ = fs::remove_dir_all(&dir);
            None
        }
        None => None,
    };
    (pids.len(), kept)
}

/// The file in a work dir that names the run owning it.
pub const OWNER_FILE: &str = "owner";
/// Work dirs made in the temp dir start with this.
pub const WORKDIR_PREFIX: &str = "etcdscript-";

/// This process's identity: PID and start time (from /proc), so that a reused PID is not taken
/// for the run that made a work dir.
pub fn owner_stamp(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime) counts from after the parenthesised command name.
    let after = stat.rsplit_once(')')?.1;
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid} {start}"))
}

/// Whether the run that wrote `stamp` is still alive.
/// A stamp that does not read as "PID STARTTIME" counts as alive: never remove what we cannot
/// tell is dead.
fn owner_alive(stamp: &str) -> bool {
    let mut parts = stamp.split_whitespace();
    let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
    let (Some(pid), Some(_), None) = (pid, parts.next(), parts.next()) else {
        return true;
    };
    owner_stamp(pid).as_deref() == Some(stamp.trim())
}

/// Writes the owner file of a work dir: to a side file first, then renamed into place, so that
/// another run cleaning stale dirs never reads it half written.
pub fn write_owner(dir: &Path) -> Result<()> {
    let Some(stamp) = owner_stamp(std::process::id()) else {
        return Ok(());
    };
    let side = dir.join(format!("{OWNER_FILE}.new"));
    fs::write(&side, stamp).map_err(Error::io("failed to write the owner file"))?;
    fs::rename(&side, dir.join(OWNER_FILE)).map_err(Error::io("failed to write the owner file"))
}

/// Removes the work dirs in `tmp` whose owning run is gone. Returns the removed paths.
pub fn clean_stale(tmp: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(tmp) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(Error::io(format!("failed to list {}", tmp.display()))(e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(WORKDIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        // A dir without an owner file is not ours, or is being set up this instant: leave it.
        let Ok(stamp) = fs::read_to_string(dir.join(OWNER_FILE)) else {
            continue;
        };
        if !owner_alive(&stamp) && fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    Ok(removed)
}
