//! Work dirs on disk and who owns them: the owner stamp a run writes into its work dir, and the
//! clean-up of work dirs whose run is provably gone (SIGKILLed runs leave them behind). Nothing
//! is removed that may still be wanted: a kept dir, or one whose owner cannot be proven dead.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The file in a work dir that names the run owning it.
pub const OWNER_FILE: &str = "owner";
/// Work dirs made in the temp dir start with this.
pub const WORKDIR_PREFIX: &str = "etcdscript-";

/// The bytes an unprivileged process may still write on the file system holding `dir`, where
/// the system tells.
// The field types are u64 on 64-bit Linux, narrower elsewhere.
#[allow(clippy::useless_conversion)]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
}

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
}
