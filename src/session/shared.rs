//! What only one run of a suite may hold at a time: a pinned port, a remote cluster. A suite
//! runs each script against each etcd binary, and runs them side by side; a run that pins a
//! port or writes to a cluster that runs elsewhere holds a lock file for it until the run ends
//! (the kernel lets go of it however the run ends), and another run that needs the same thing
//! waits for it, bounded.

use std::path::PathBuf;
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};

use super::Session;
use crate::error::{Error, Result};
use crate::limits;

/// The environment variable `etcdscript test` sets for its runs: the directory of the suite's
/// lock files. Outside a suite nothing is locked.
pub const SUITE_LOCKS: &str = "ETCDSCRIPT_SUITE_LOCKS";

/// The locks a run holds, until it ends.
#[derive(Debug, Default)]
pub struct Held {
    locks: Vec<(String, Flock<std::fs::File>)>,
}

/// The lock key of an endpoint of a remote cluster, in characters safe in a file name.
pub fn remote_key(endpoint: &str) -> String {
    format!("remote-{endpoint}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect()
}

impl Session {
    /// Holds each of `keys` not yet held (in sorted order, so that two runs wanting the same
    /// several at once never wait for each other), waiting while another run of the suite holds
    /// one, up to [`limits::SHARED_WAIT`] or the run's deadline. `what` names them for the
    /// error. Two runs that take them in separate calls, in opposite orders, may each wait for
    /// the other until that bound.
    pub(super) fn hold_shared(&mut self, keys: &[String], what: &str) -> Result<()> {
        let Some(dir) = std::env::var_os(SUITE_LOCKS).map(PathBuf::from) else {
            return Ok(());
        };
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        keys.retain(|k| !self.shared.locks.iter().any(|(held, _)| held == k));
        // One bound for the whole call, however many keys it waits for.
        let deadline = Instant::now() + self.bounded(limits::SHARED_WAIT);
        for key in keys {
            let path = dir.join(format!("{key}.lock"));
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::Environment(format!("cannot open {}: {e}", path.display())))?;
            let started = Instant::now();
            loop {
                match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    Ok(lock) => {
                        if started.elapsed() >= limits::POLL_INTERVAL {
                            tracing::info!(
                                key,
                                waited_ms = started.elapsed().as_millis() as u64,
                                "waited for another run of the suite"
                            );
                        }
                        self.shared.locks.push((key.clone(), lock));
                        tracing::debug!(
                            key,
                            held = self.shared.locks.len(),
                            "holding for the suite"
                        );
                        break;
                    }
                    Err((f, nix::errno::Errno::EWOULDBLOCK)) => file = f,
                    Err((_, e)) => {
                        return Err(Error::Environment(format!(
                            "cannot lock {}: {e}",
                            path.display()
                        )))
                    }
                }
                if Instant::now() >= deadline {
                    self.check_deadline()?;
                    return Err(Error::Environment(format!(
                        "{what}: waited more than {:?} for other runs of this suite, and \
                         {key} is still held (a run that holds something this one waits for, \
                         and waits for something this one holds, looks the same: pin ports in \
                         the same order in every script)",
                        limits::SHARED_WAIT
                    )));
                }
                std::thread::sleep(limits::SHARED_POLL_INTERVAL);
            }
        }
        Ok(())
    }
}
