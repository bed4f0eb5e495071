//! What a script asks of the session, as plain data: a cluster's plan, a member's overrides, a
//! client's identity, an RBAC change.

use std::rc::Rc;
use std::time::Duration;

use super::MemberId;
use crate::pki::{Ca, Cert};

/// A cluster as the script planned it.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub names: Vec<String>,
    pub ca: Rc<Ca>,
    /// The serving certificate of each member, in plan order (`cert` gives all the same one).
    pub certs: Vec<Rc<Cert>>,
    /// Each member on a host of its own (`hosts`), in plan order; `None` runs all on loopback.
    pub hosts: Option<Vec<HostSpec>>,
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
    /// Each member also listens for clients in plain text (`http://`), on a port of its own.
    pub http_listener: bool,
    /// How long `wait_healthy` waits for this cluster.
    pub health_timeout: Duration,
}

impl ClusterSpec {
    /// The spec of a cluster that runs elsewhere: its members' names (their endpoints), the CA
    /// its clients trust, and the certificate the runtime acts as.
    pub(super) fn remote(
        name: &str,
        names: Vec<String>,
        ca: Rc<Ca>,
        identity: Rc<Cert>,
    ) -> ClusterSpec {
        ClusterSpec {
            names,
            ca,
            certs: vec![identity],
            hosts: None,
            client_cert_auth: true,
            peer_cert_auth: true,
            token: name.to_owned(),
            host: String::new(),
            client_ports: None,
            peer_ports: None,
            heartbeat_ms: 0,
            election_ms: 0,
            args: Vec::new(),
            client_crl: false,
            peer_crl: false,
            http_listener: false,
            health_timeout: crate::limits::HEALTH_TIMEOUT,
        }
    }

    /// Whether every member serves the same certificate.
    pub fn one_cert(&self) -> bool {
        self.certs.windows(2).all(|w| Rc::ptr_eq(&w[0], &w[1]))
    }

    /// The serving certificate of member `index` (a member added at run time gets the first).
    pub fn cert_of(&self, index: usize) -> &Cert {
        self.certs.get(index).unwrap_or(&self.certs[0])
    }
}

/// A member's host: its address, and the name it goes by, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSpec {
    pub ip: std::net::Ipv4Addr,
    pub name: Option<String>,
}

impl HostSpec {
    /// How the host reads in the transcript: `198.18.0.11` or `infra1.example.test (198.18.0.11)`.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.ip),
            None => self.ip.to_string(),
        }
    }
}

/// What one `spawn_member` call may change for this member alone.
#[derive(Clone, Debug, Default)]
pub struct MemberOverrides {
    pub cert: Option<Rc<Cert>>,
    /// The certificate the member serves its peer port with and presents when it dials peers
    /// (`--peer-cert-file`); `None` is its serving certificate.
    pub peer_cert: Option<Rc<Cert>>,
    /// The certificate the member presents when it dials peers, apart from the one it serves
    /// its peer port with (etcd 3.5's `--peer-client-cert-file`).
    pub peer_client_cert: Option<Rc<Cert>>,
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
    /// What a client of a member with a host dials: its name or its address. `None` dials the
    /// member's advertised URL (its name if it has one).
    pub dial: Option<Dial>,
    /// Speak plain text to the TLS port.
    pub plaintext: bool,
    /// Dial the member's plain-text listener (`http_listener`) instead, in plain text.
    pub http_listener: bool,
    /// A user name and password to log in with (etcd's Authenticate), with or without a
    /// certificate.
    pub login: Option<(String, String)>,
    /// How long a call waits for an answer; `None` is [`crate::limits::OP_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// Where trust comes from: `trust` (or the cluster's CA), the system's roots, or nowhere.
    pub trust_kind: TrustKind,
    /// The TLS versions and cipher suites offered.
    pub tls: crate::etcd::tls::TlsParams,
}

/// What a client checks the server certificate against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TrustKind {
    /// A CA of the run: the identity's `ca`, else the cluster's.
    #[default]
    Ca,
    /// The machine's trust store.
    System,
    /// Nothing: any certificate is accepted.
    Nothing,
}

/// What a client dials a member on a host by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dial {
    Ip,
    Name,
}

impl IdentitySpec {
    /// The bound of one call as this identity.
    pub fn bound(&self) -> Duration {
        self.timeout.unwrap_or(crate::limits::OP_TIMEOUT)
    }

    pub(super) fn describe(&self) -> String {
        let login = match &self.login {
            Some((user, _)) => format!(", logged in as user {user}"),
            None => String::new(),
        };
        if self.http_listener {
            return format!("in plain text, on its http:// port{login}");
        }
        if self.plaintext {
            return format!("in plain text{login}");
        }
        let mut s = match &self.cert {
            Some(c) => format!("as {}", c.name),
            None => "without a client certificate".to_owned(),
        };
        s.push_str(&login);
        match self.trust_kind {
            TrustKind::Ca => {
                if let Some(ca) = &self.trust {
                    s.push_str(&format!(", trusting {}", ca.name));
                }
            }
            TrustKind::System => s.push_str(", trusting the system's roots"),
            TrustKind::Nothing => s.push_str(", checking no server certificate"),
        }
        s.push_str(&describe_tls(&self.tls));
        if let Some(name) = &self.server_name {
            s.push_str(&format!(", expecting server name {name}"));
        }
        match self.dial {
            Some(Dial::Ip) => s.push_str(", dialing the address"),
            Some(Dial::Name) => s.push_str(", dialing the name"),
            None => {}
        }
        if let Some(t) = self.timeout {
            s.push_str(&format!(", waiting {} ms", t.as_millis()));
        }
        s
    }

    /// What tells this identity's connections apart from another's.
    pub(super) fn key(&self) -> IdentityKey {
        IdentityKey {
            cert: self.cert.as_ref().map(|c| c.name.clone()),
            trust: self.trust.as_ref().map(|c| c.name.clone()),
            server_name: self.server_name.clone(),
            plaintext: self.plaintext,
            http_listener: self.http_listener,
            dial: self.dial,
            login: self.login.clone(),
            trust_kind: self.trust_kind,
            tls: self.tls.clone(),
        }
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

impl Perm {
    /// `readwrite app/ (prefix)`.
    pub fn describe(&self) -> String {
        format!(
            "{} {}{}",
            self.access.name(),
            self.key,
            if self.prefix { " (prefix)" } else { "" }
        )
    }
}

impl Access {
    /// The word scripts and etcdctl use for it.
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "readwrite",
        }
    }
}

/// An RBAC change.
#[derive(Clone, Debug)]
pub enum AuthOp {
    /// A user, with a password or none (then it can authenticate only by certificate CN).
    UserAdd {
        name: String,
        password: Option<String>,
    },
    UserDelete(String),
    RoleAdd(String),
    RoleDelete(String),
    RoleGrant {
        role: String,
        perm: Perm,
    },
    /// Takes away the permission on exactly this key or prefix.
    RoleRevoke {
        role: String,
        key: String,
        prefix: bool,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        user: String,
        role: String,
    },
    AuthEnable,
    AuthDisable,
}

impl AuthOp {
    /// The same change as etcdctl's words.
    pub(super) fn etcdctl_words(&self) -> Vec<String> {
        let w = |words: &[&str]| words.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match self {
            AuthOp::UserAdd {
                name,
                password: None,
            } => w(&["user", "add", name, "--no-password"]),
            AuthOp::UserAdd {
                name,
                password: Some(p),
            } => w(&["user", "add", name, "--new-user-password", p]),
            AuthOp::UserDelete(name) => w(&["user", "delete", name]),
            AuthOp::RoleAdd(role) => w(&["role", "add", role]),
            AuthOp::RoleDelete(role) => w(&["role", "delete", role]),
            AuthOp::RoleGrant { role, perm } => {
                let access = match perm.access {
                    Access::Read => "read",
                    Access::Write => "write",
                    Access::ReadWrite => "readwrite",
                };
                let mut words = w(&["role", "grant-permission", role, access, &perm.key]);
                if perm.prefix {
                    words.push("--prefix".into());
                }
                words
            }
            AuthOp::RoleRevoke { role, key, prefix } => {
                let mut words = w(&["role", "revoke-permission", role, key]);
                if *prefix {
                    words.push("--prefix".into());
                }
                words
            }
            AuthOp::UserGrantRole { user, role } => w(&["user", "grant-role", user, role]),
            AuthOp::UserRevokeRole { user, role } => w(&["user", "revoke-role", user, role]),
            AuthOp::AuthEnable => w(&["auth", "enable"]),
            AuthOp::AuthDisable => w(&["auth", "disable"]),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            AuthOp::UserAdd { name, password } => format!(
                "user add {name}{}",
                if password.is_some() {
                    " with a password"
                } else {
                    ""
                }
            ),
            AuthOp::UserDelete(u) => format!("user delete {u}"),
            AuthOp::RoleAdd(r) => format!("role add {r}"),
            AuthOp::RoleDelete(r) => format!("role delete {r}"),
            AuthOp::RoleRevoke { role, key, prefix } => format!(
                "role revoke {role} {key}{}",
                if *prefix { " (prefix)" } else { "" }
            ),
            AuthOp::UserRevokeRole { user, role } => format!("user revoke {user} role {role}"),
            AuthOp::AuthDisable => "auth disable".into(),
            AuthOp::RoleGrant { role, perm } => format!("role grant {role} {}", perm.describe()),
            AuthOp::UserGrantRole { user, role } => format!("user grant {user} role {role}"),
            AuthOp::AuthEnable => "auth enable".into(),
        }
    }
}

/// An identity's certificates and names, by the names the script gave them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct IdentityKey {
    cert: Option<String>,
    trust: Option<String>,
    server_name: Option<String>,
    plaintext: bool,
    dial: Option<Dial>,
    login: Option<(String, String)>,
    trust_kind: TrustKind,
    tls: crate::etcd::tls::TlsParams,
    http_listener: bool,
}

/// The client cache's key: which member, as whom.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ClientKey {
    pub member: MemberId,
    pub identity: IdentityKey,
}

/// `, TLS 1.2 only, cipher suites X`: what a client offers, where the script chose it.
fn describe_tls(p: &crate::etcd::tls::TlsParams) -> String {
    use crate::etcd::tls::TlsVersion;
    // The client speaks TLS 1.2 and 1.3, nothing older.
    let (min, max) = (
        p.min.unwrap_or(TlsVersion::V12),
        p.max.unwrap_or(TlsVersion::V13),
    );
    let mut s = match (p.min, p.max) {
        (None, None) => String::new(),
        _ if min == max => format!(", TLS {} only", min.name()),
        _ => format!(", TLS {} or {}", min.name(), max.name()),
    };
    if let Some(suites) = &p.cipher_suites {
        s.push_str(&format!(", cipher suites {}", suites.join(" ")));
    }
    s
}
