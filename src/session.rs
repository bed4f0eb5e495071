//! What a run owns: the work dir, the PKI names, the clusters and their member processes, the
//! clients, and the transcript. Teardown lives here and runs however the run ends.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;

use crate::error::{Error, Result};
use crate::etcd::log::MemberLog;
use crate::etcd::process::EtcdProcess;
use crate::lifecycle;
use crate::pki::{Ca, CaSpec, Cert, CertSpec};
use crate::transcript::Transcript;

mod calls;
mod health;
mod members;
mod ports;

/// How a run is set up (from the command line).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The etcd binary; `None` looks for `etcd` on PATH.
    pub etcd: Option<PathBuf>,
    /// The work dir; `None` makes a temporary one.
    pub workdir: Option<PathBuf>,
    /// Keep the work dir after the run.
    pub keep: bool,
    /// When the whole run must end (`--timeout`); every wait is cut short by it.
    pub deadline: Option<Instant>,
}

/// A cluster as the script planned it.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub names: Vec<String>,
    pub ca: Rc<Ca>,
    pub cert: Rc<Cert>,
    pub client_cert_auth: bool,
    pub peer_cert_auth: bool,
    pub token: String,
    /// The host name in advertised URLs, and the name clients expect in the server certificate.
    pub host: String,
    pub client_ports: Option<Vec<u16>>,
    pub peer_ports: Option<Vec<u16>>,
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    pub args: Vec<String>,
    /// Give members the CA's CRL with `--client-crl-file`.
    pub client_crl: bool,
    /// Give members the CA's CRL with `--peer-crl-file`.
    pub peer_crl: bool,
    /// How long `wait_healthy` waits for this cluster.
    pub health_timeout: Duration,
}

/// What one `spawn_member` call may change for this member alone.
#[derive(Clone, Debug, Default)]
pub struct MemberOverrides {
    pub cert: Option<Rc<Cert>>,
    pub ca: Option<Rc<Ca>>,
    pub args: Vec<String>,
}

/// Who a client is.
#[derive(Clone, Debug, Default)]
pub struct IdentitySpec {
    /// The client certificate presented; `None` presents none.
    pub cert: Option<Rc<Cert>>,
    /// The CA trusted for the server certificate; `None` trusts the target cluster's CA.
    pub trust: Option<Rc<Ca>>,
    /// The name expected in the server certificate; `None` is the cluster's host.
    pub server_name: Option<String>,
    /// Speak plain text to the TLS port.
    pub plaintext: bool,
}

impl IdentitySpec {
    fn describe(&self) -> String {
        if self.plaintext {
            return "in plain text".to_owned();
        }
        let mut s = match &self.cert {
            Some(c) => format!("as {}", c.name),
            None => "without a client certificate".to_owned(),
        };
        if let Some(ca) = &self.trust {
            s.push_str(&format!(", trusting {}", ca.name));
        }
        if let Some(name) = &self.server_name {
            s.push_str(&format!(", expecting server name {name}"));
        }
        s
    }

    fn cache_key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.cert.as_ref().map_or("-", |c| c.name.as_str()),
            self.trust.as_ref().map_or("-", |c| c.name.as_str()),
            self.server_name.as_deref().unwrap_or("-"),
            self.plaintext
        )
    }
}

/// How a role may use a key.
#[derive(Clone, Copy, Debug)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

/// A permission: access to a key, or to every key with that prefix.
#[derive(Clone, Debug)]
pub struct Perm {
    pub key: String,
    pub prefix: bool,
    pub access: Access,
}

/// An RBAC change.
#[derive(Clone, Debug)]
pub enum AuthOp {
    UserAdd(String),
    RoleAdd(String),
    RoleGrant { role: String, perm: Perm },
    UserGrantRole { user: String, role: String },
    AuthEnable,
}

impl AuthOp {
    fn describe(&self) -> String {
        match self {
            AuthOp::UserAdd(u) => format!("user add {u}"),
            AuthOp::RoleAdd(r) => format!("role add {r}"),
            AuthOp::RoleGrant { role, perm } => format!(
                "role grant {role} {} {}{}",
                match perm.access {
                    Access::Read => "read",
                    Access::Write => "write",
                    Access::ReadWrite => "readwrite",
                },
                perm.key,
                if perm.prefix { " (prefix)" } else { "" }
            ),
            AuthOp::UserGrantRole { user, role } => format!("user grant {user} role {role}"),
            AuthOp::AuthEnable => "auth enable".into(),
        }
    }
}

/// Where a member is in its life.
#[derive(Debug)]
enum MemberState {
    Planned,
    Running(EtcdProcess),
    Stopped,
}

#[derive(Debug)]
struct MemberSlot {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Held from planning until the member starts, so that no other run picks the same port.
    reserved: Vec<TcpSocket>,
    state: MemberState,
    log: MemberLog,
    /// For a member added at run time (`member_add`): the `--initial-cluster` it joins with.
    join: Option<String>,
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
}

/// An index into the session's clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterId(pub usize);

/// A member of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    keep: bool,
    etcd_flag: Option<PathBuf>,
    etcd_bin: Option<PathBuf>,
    names: HashSet<String>,
    clusters: Vec<ClusterState>,
    clients: HashMap<String, etcd_client::Client>,
    pub transcript: Transcript,
    torn_down: bool,
    deadline: Option<Instant>,
    /// How many operations the script has performed (see [`Session::next_op`]).
    ops: u64,
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
        let dir = match &opts.workdir {
            Some(dir) => {
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
            None => {
                let tmp = std::env::temp_dir();
                if let Ok(removed) = lifecycle::clean_stale(&tmp) {
                    for d in removed {
                        tracing::info!(dir = %d.display(), "removed a stale work dir");
                    }
                }
                tempfile::Builder::new()
                    .prefix(lifecycle::WORKDIR_PREFIX)
                    .tempdir_in(&tmp)
                    .map_err(Error::io("failed to create a work dir"))?
                    .keep()
            }
        };
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(Error::io(format!("failed to restrict {}", dir.display())))?;
        lifecycle::register_workdir(&dir, opts.keep);
        lifecycle::write_owner(&dir)?;
        let pki_dir = dir.join("pki");
        let members_dir = dir.join("members");
        let runtime_dir = dir.join("runtime");
        for d in [&pki_dir, &members_dir, &runtime_dir] {
            fs::create_dir_all(d)
                .map_err(Error::io(format!("failed to create {}", d.display())))?;
        }
        tracing::info!(workdir = %dir.display(), "work dir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("failed to start the async runtime"))?;
        Ok(Session {
            rt,
            dir,
            pki_dir,
            runtime_dir,
            members_dir,
            keep: opts.keep,
            etcd_flag: opts.etcd.clone(),
            etcd_bin: None,
            names: HashSet::new(),
            clusters: Vec::new(),
            clients: HashMap::new(),
            transcript: Transcript::default(),
            torn_down: false,
            deadline: opts.deadline,
            ops: 0,
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
            Some(d) if Instant::now() >= d => {
                Err(Error::Timeout("the run went past --timeout".into()))
            }
            _ => Ok(()),
        }
    }

    fn claim_name(&mut self, kind: &str, name: &str) -> Result<()> {
        valid_name(kind, name)?;
        if !self.names.insert(name.to_owned()) {
            return Err(Error::Script(format!(
                "the name `{name}` is already taken by another CA or certificate in this run"
            )));
        }
        Ok(())
    }

    // ---- PKI -------------------------------------------------------------------------------

    /// `ca(name, opts)`.
    pub fn create_ca(&mut self, name: &str, spec: &CaSpec) -> Result<Rc<Ca>> {
        self.claim_name("CA", name)?;
        let ca = Ca::create(&self.pki_dir, name, spec)?;
        self.transcript.line(format!(
            "ca {name}: self-signed CA, {}, valid for {} days",
            spec.key, spec.days
        ));
        Ok(Rc::new(ca))
    }

    /// `issue(ca, name, opts)`.
    pub fn issue(&mut self, ca: &Ca, name: &str, spec: &CertSpec) -> Result<Rc<Cert>> {
        self.claim_name("certificate", name)?;
        let cert = ca.issue(&self.pki_dir, name, spec)?;
        self.transcript
            .line(format!("cert {name}: {}", describe_cert(&cert)));
        Ok(Rc::new(cert))
    }

    /// `revoke(ca, cert)`.
    pub fn revoke(&mut self, ca: &Ca, cert: &Cert) -> Result<()> {
        let fresh = ca.revoke(cert)?;
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
    pub fn show_cert(&mut self, cert: &Cert) {
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
        self.clients.clear();
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
        if self.keep {
            eprintln!("work dir kept: {}", self.dir.display());
        } else if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the work dir");
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
        ", usage {}, signed by {}, {}, {}",
        usage.join("+"),
        cert.issuer,
        cert.key_kind,
        cert.validity()
    ));
    s
}
