//! What a run owns: the work dir, the PKI names, the clusters and their member processes, the
//! clients, and the transcript. Teardown lives here and runs however the run ends.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::etcd::log::MemberLog;
use crate::etcd::process::EtcdProcess;
use crate::lifecycle;
use crate::pki::{Ca, CaSpec, Cert, CertSpec};
use crate::transcript::Transcript;

mod calls;
mod certs;
mod faults;
mod findings;
mod health;
mod hosts;
mod http;
mod keyspace;
mod load;
mod loaded;
mod members;
mod membership;
mod peers;
mod plan;
mod ports;
mod rbac;
mod remote;
mod shared;
mod specs;
mod starting;
mod stopping;
mod tamper;
mod traced;

pub use findings::{Finding, Outcome};
pub use keyspace::{LeaseId, Pair, WatchEvent, WatchId};
pub use load::{LoadId, LoadSpec, Tally};
pub use remote::RemoteSpec;
pub use shared::SUITE_LOCKS;
use specs::ClientKey;
pub use specs::{
    Access, AuthOp, ClusterSpec, Dial, HostSpec, IdentitySpec, MemberOverrides, Perm, TrustKind,
};
pub use tamper::Part;

/// How a run is set up (from the command line).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The etcd binary; `None` looks for `etcd` on PATH.
    pub etcd: Option<PathBuf>,
    /// The work dir; `None` makes a temporary one.
    pub workdir: Option<PathBuf>,
    /// Keep the work dir after the run: its PKI and member logs.
    pub keep: bool,
    /// With `keep`, keep the members' data dirs too (about 120 MB each: etcd preallocates its
    /// WAL).
    pub keep_data: bool,
    /// When the whole run must end (`--timeout`); every wait is cut short by it.
    pub deadline: Option<Instant>,
    /// The `--timeout` that set the deadline, for messages.
    pub timeout: Option<Duration>,
    /// Test-only behaviour (read once, by the command line).
    pub hooks: crate::hooks::TestHooks,
    /// Write no transcript lines (the verdict line still comes).
    pub quiet: bool,
    /// The one directory scripts may read PEM files from (`load_ca`, `load_cert`).
    pub pki: Option<PathBuf>,
    /// Record the run's trace (for an export).
    pub trace: bool,
}

/// Where a member is in its life.
#[derive(Debug)]
enum MemberState {
    Planned,
    Running(EtcdProcess),
    Stopped,
    /// A member of a remote cluster: it runs elsewhere, and is not ours to start or stop.
    External,
}

#[derive(Debug)]
struct MemberSlot {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// The plain-text client port, with `http_listener`.
    http_port: Option<u16>,
    /// Its ports, held for the whole run so that no other run is given them (see `ports`).
    holds: Vec<ports::Hold>,
    state: MemberState,
    log: MemberLog,
    /// For a member added at run time (`member_add`): the `--initial-cluster` it joins with.
    join: Option<String>,
    /// Where it runs: its address (127.0.0.1 without hosts), the host in its URLs, and its
    /// host's index in the run's network, if it has one.
    ip: std::net::Ipv4Addr,
    url_host: String,
    host: Option<usize>,
    /// Stopped with SIGSTOP by `pause_member`.
    paused: bool,
    /// Removed from its cluster by `member_remove`.
    removed: bool,
    /// Where `peer_refusal` starts reading this member's log: where it stood when another
    /// member of the cluster last started, so that refusals of the newcomer already logged count.
    refusal_mark: u64,
}

#[derive(Debug)]
struct ClusterState {
    spec: ClusterSpec,
    members: Vec<MemberSlot>,
    /// A client certificate from the cluster's CA that `wait_healthy` probes with.
    probe: Cert,
    /// For a cluster that runs elsewhere: where scripts may write, and what they wrote.
    remote: Option<remote::Remote>,
}

/// An index into the session's clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterId(pub usize);

/// A member of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberId {
    pub cluster: ClusterId,
    pub index: usize,
}

/// What a client operation talks to.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    Member(MemberId),
    Cluster(ClusterId),
}

/// Everything a run owns.
pub struct Session {
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    pki_dir: PathBuf,
    /// Files the runtime makes for itself (the health probe's certificates): apart from
    /// `pki/`, so that no name a script gives can reach them.
    runtime_dir: PathBuf,
    members_dir: PathBuf,
    keep: lifecycle::Keep,
    etcd_flag: Option<PathBuf>,
    etcd_bin: Option<PathBuf>,
    names: HashSet<String>,
    clusters: Vec<ClusterState>,
    clients: HashMap<ClientKey, etcd_client::Client>,
    pub transcript: Transcript,
    torn_down: bool,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    /// How many operations the script has performed (see [`Session::next_op`]).
    ops: u64,
    hooks: crate::hooks::TestHooks,
    /// What this run holds against the other runs of its suite.
    shared: shared::Held,
    /// The hosts' network, made by the first cluster with hosts.
    net: Option<crate::netns::Net>,
    /// The hosts so far, as the run's hosts file lists them.
    hosts: Vec<HostSpec>,
    /// Background loads, running or stopped.
    loads: Vec<load::LoadRun>,
    /// Watches the script opened, in order.
    watches: Vec<keyspace::WatchRun>,
    /// Leases the script was granted, in order.
    leases: Vec<keyspace::LeaseRun>,
    /// Every certificate the run made: name, serial, and which renewal (0: as issued).
    issued: Vec<(String, Vec<u8>, u32)>,
    /// The directory `--pki` opened to scripts.
    pki_root: Option<PathBuf>,
    /// What `finding` recorded, in order.
    findings: Vec<findings::Finding>,
}

fn valid_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Script(format!(
            "{kind} name `{name}` is not allowed: use 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`"
        )))
    }
}

impl Session {
    /// Makes the work dir and the runtime.
    pub fn new(opts: &RunOptions) -> Result<Session> {
        let keep = match (opts.keep || opts.keep_data, opts.keep_data) {
            (false, _) => lifecycle::Keep::Nothing,
            (true, false) => lifecycle::Keep::PkiAndLogs,
            (true, true) => lifecycle::Keep::Everything,
        };
        // Before the work dir exists: nothing of it is left behind if this fails.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("failed to start the async runtime"))?;
        if opts.workdir.is_none() {
            match crate::workdirs::clean_stale(&std::env::temp_dir(), false) {
                Ok(report) => {
                    for d in report.removed {
                        tracing::info!(dir = %d.display(), "removed a stale work dir");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "could not look for stale work dirs"),
            }
        }
        // The dir is made, registered for the signal thread and stamped with its owner before
        // a signal can act: the signal thread waits for this lock, then removes what it finds.
        let writes = lifecycle::hold_writes();
        let dir = match &opts.workdir {
            Some(dir) => {
                if let Ok(meta) = fs::symlink_metadata(dir) {
                    if meta.file_type().is_symlink() {
                        let target = fs::read_link(dir)
                            .map(|t| t.display().to_string())
                            .unwrap_or_else(|_| "?".into());
                        return Err(Error::Environment(format!(
                            "work dir {} is a symbolic link (to {target}); give the directory \
                             itself: etcdscript removes its work dir at the end, and would remove \
                             only the link",
                            dir.display()
                        )));
                    }
                }
                if dir.exists()
                    && fs::read_dir(dir)
                        .map(|mut d| d.next().is_some())
                        .unwrap_or(true)
                {
                    return Err(Error::Environment(format!(
                        "work dir {} exists and is not empty; give a new or empty directory",
                        dir.display()
                    )));
                }
                fs::create_dir_all(dir)
                    .map_err(Error::io(format!("failed to create {}", dir.display())))?;
                dir.clone()
            }
            None => tempfile::Builder::new()
                .prefix(crate::workdirs::WORKDIR_PREFIX)
                .tempdir_in(std::env::temp_dir())
                .map_err(Error::io("failed to create a work dir"))?
                .keep(),
        };
        lifecycle::register_workdir(&dir, keep);
        let (pki_dir, members_dir) = (dir.join("pki"), dir.join("members"));
        let runtime_dir = dir.join("runtime");
        let made = (|| {
            crate::workdirs::write_owner(&dir, keep != lifecycle::Keep::Nothing)?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(Error::io(format!("failed to restrict {}", dir.display())))?;
            for d in [&pki_dir, &members_dir, &runtime_dir] {
                fs::create_dir_all(d)
                    .map_err(Error::io(format!("failed to create {}", d.display())))?;
            }
            Ok(())
        })();
        if let Err(e) = made {
            lifecycle::finish_workdir(&dir, lifecycle::Keep::Nothing);
            lifecycle::unregister_workdir();
            return Err(e);
        }
        drop(writes);
        tracing::info!(workdir = %dir.display(), "work dir");
        let mut transcript = if opts.quiet {
            Transcript::quiet()
        } else {
            Transcript::default()
        };
        if opts.trace {
            transcript.record_trace();
            transcript.trace(crate::trace::Step::Workdir(dir.clone()));
        }
        Ok(Session {
            rt,
            dir,
            pki_dir,
            runtime_dir,
            members_dir,
            keep,
            etcd_flag: opts.etcd.clone(),
            etcd_bin: None,
            names: HashSet::new(),
            clusters: Vec::new(),
            clients: HashMap::new(),
            net: None,
            hosts: Vec::new(),
            loads: Vec::new(),
            watches: Vec::new(),
            leases: Vec::new(),
            pki_root: opts.pki.clone(),
            findings: Vec::new(),
            issued: Vec::new(),
            transcript,
            torn_down: false,
            deadline: opts.deadline,
            timeout: opts.timeout,
            ops: 0,
            hooks: opts.hooks,
            shared: shared::Held::default(),
        })
    }

    /// Numbers the next operation of the script. A rejection carries the number of the
    /// operation refused, so that `expect_error` counts only the refusal of the last operation
    /// its closure performed, never one caught earlier and thrown again.
    pub fn next_op(&mut self) -> u64 {
        self.ops += 1;
        self.ops
    }

    /// The number of the last operation.
    pub fn last_op(&self) -> u64 {
        self.ops
    }

    /// The work dir.
    pub fn workdir(&self) -> &Path {
        &self.dir
    }

    /// `bound`, cut short by the run's deadline.
    fn bounded(&self, bound: Duration) -> Duration {
        match self.deadline {
            Some(d) => bound.min(d.saturating_duration_since(Instant::now())),
            None => bound,
        }
    }

    /// Fails once the run is past its deadline (`--timeout`).
    fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Error::Timeout(match self.timeout {
                Some(t) => format!("the run went past --timeout ({}s)", t.as_secs()),
                None => "the run went past --timeout".into(),
            })),
            _ => Ok(()),
        }
    }

    pub(super) fn claim_name(&mut self, kind: &str, name: &str) -> Result<()> {
        valid_name(kind, name)?;
        if !self.names.insert(name.to_owned()) {
            return Err(Error::Script(format!(
                "the name `{name}` is already taken by another CA or certificate in this run"
            )));
        }
        Ok(())
    }

    // ---- PKI -------------------------------------------------------------------------------

    /// `ca(name, opts)`: a root, or an intermediate signed by `parent`.
    pub fn create_ca(&mut self, name: &str, spec: &CaSpec, parent: Option<&Ca>) -> Result<Rc<Ca>> {
        self.claim_name("CA", name)?;
        let ca = Rc::new(Ca::create(&self.pki_dir, name, spec, parent)?);
        self.transcript.trace(crate::trace::Step::Ca {
            ca: ca.clone(),
            spec: spec.clone(),
            parent: parent.map(|p| p.name.clone()),
        });
        let kind = match parent {
            None => "self-signed CA".to_owned(),
            Some(p) => format!("intermediate CA signed by {}", p.name),
        };
        self.transcript.line(format!(
            "ca {name}: {kind}, {}, valid for {} days",
            spec.key, spec.days
        ));
        Ok(ca)
    }

    /// `issue(ca, name, opts)`.
    pub fn issue(&mut self, ca: &Ca, name: &str, spec: &CertSpec) -> Result<Rc<Cert>> {
        self.claim_name("certificate", name)?;
        Session::signer(ca, "issue")?;
        let cert = Rc::new(ca.issue(&self.pki_dir, name, spec)?);
        self.note_issued(&cert, 0);
        self.transcript.trace(crate::trace::Step::Cert {
            cert: cert.clone(),
            spec: spec.clone(),
            ca: ca.name.clone(),
        });
        self.transcript
            .line(format!("cert {name}: {}", describe_cert(&cert)));
        Ok(cert)
    }

    /// `revoke(ca, cert)`.
    pub fn revoke(&mut self, ca: &Ca, cert: &Cert) -> Result<()> {
        Session::signer(ca, "revoke")?;
        let fresh = ca.revoke(cert)?;
        self.transcript.trace(crate::trace::Step::Revoked {
            ca: ca.name.clone(),
            cert: Rc::new(cert.clone()),
        });
        // etcd checks the CRL at the handshake: connections made before stay open. Close ours,
        // so that the next operation shows what a client connecting now meets.
        self.clients.clear();
        let what = if fresh {
            "revoked"
        } else {
            "was already revoked"
        };
        self.transcript.line(format!(
            "revoke {}: {what} by {}, CRL now lists {}",
            cert.name,
            ca.name,
            ca.revoked_count()
        ));
        Ok(())
    }

    /// A line describing a certificate, for `show_cert`.
    pub fn show_cert(&mut self, cert: &Rc<Cert>) {
        self.transcript
            .trace(crate::trace::Step::Shown { cert: cert.clone() });
        self.transcript
            .line(format!("show {}: {}", cert.name, describe_cert(cert)));
    }

    // ---- Teardown --------------------------------------------------------------------------

    /// Kills every member still running and removes the work dir unless kept. Idempotent.
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        tracing::info!("teardown");
        self.stop_loads();
        self.drop_watches(None);
        self.clean_remote();
        self.clients.clear();
        // Every member is sent SIGKILL before any is waited for, so that they die side by side.
        for cluster in &mut self.clusters {
            for slot in &mut cluster.members {
                if let MemberState::Running(p) = &mut slot.state {
                    p.signal(nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        let mut killed = Vec::new();
        for ci in 0..self.clusters.len() {
            for index in 0..self.clusters[ci].members.len() {
                let m = MemberId {
                    cluster: ClusterId(ci),
                    index,
                };
                if self.kill_slot(m) {
                    killed.push(self.member_name(m));
                }
            }
        }
        if !killed.is_empty() {
            self.transcript
                .line(format!("teardown: killed {}", killed.join(", ")));
        }
        // Its namespaces go with their last descriptor and their last process.
        self.net = None;
        let _writes = lifecycle::hold_writes();
        match lifecycle::finish_workdir(&self.dir, self.keep) {
            lifecycle::WorkdirFate::Kept { dir, summary } => {
                crate::transcript::err(format!("work dir kept: {} ({summary})", dir.display()));
            }
            lifecycle::WorkdirFate::NotRemoved { dir, error } => {
                tracing::warn!(dir = %dir.display(), %error, "could not remove the work dir");
            }
            lifecycle::WorkdirFate::Removed | lifecycle::WorkdirFate::None => {}
        }
        lifecycle::unregister_workdir();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A certificate in a line: subject, SANs, usages, issuer, key and validity relative to now.
pub fn describe_cert(cert: &Cert) -> String {
    let mut s = format!("CN={}", cert.cn);
    if !cert.sans.is_empty() {
        s.push_str(&format!(", SANs {}", cert.sans.join(" ")));
    }
    let usage: Vec<&str> = cert.usage.iter().map(|u| u.name()).collect();
    s.push_str(&format!(
        ", usage {}, signed by {}{}, {}, {}",
        usage.join("+"),
        cert.issuer,
        if cert.chained {
            " (with its chain)"
        } else {
            ""
        },
        cert.key_kind,
        cert.validity()
    ));
    s
}
