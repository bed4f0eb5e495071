//! The trace of a run: what each primitive did, in order, as data. The transcript's lines are in
//! it too, so that every renderer sees what the run said where it said it: the transcript is
//! one renderer (it writes the lines as they come), the exports (`export --format bash`,
//! `markdown`) are others, made from the whole trace once the run has passed.

use std::path::PathBuf;
use std::rc::Rc;

use crate::pki::{Ca, CaSpec, Cert, CertSpec};

/// One thing the run did or said.
#[derive(Clone, Debug)]
pub enum Step {
    /// A primitive was called, from this line of the script (1-based); `nested` inside
    /// another primitive's closure (`expect_error(|| kv_get(..))`).
    Call {
        primitive: &'static str,
        line: usize,
        nested: bool,
    },
    /// A transcript line.
    Said(String),
    /// The run's work dir: the absolute paths in the trace are under it.
    Workdir(PathBuf),
    /// `ca()`: a CA made.
    Ca {
        ca: Rc<Ca>,
        spec: CaSpec,
        parent: Option<String>,
    },
    /// `issue()`: a certificate made.
    Cert {
        cert: Rc<Cert>,
        spec: CertSpec,
        ca: String,
    },
    /// `cluster()`: the members planned, with the ports the runtime chose.
    Cluster {
        name: String,
        members: Vec<PlannedMember>,
        /// The script pinned the ports: they stay as they are in an export.
        pinned: bool,
        /// Its members are on hosts of their own (network namespaces).
        hosts: bool,
        /// The runtime's health probe certificate and the CA that signed it.
        probe: Rc<Cert>,
        ca: String,
    },
    /// A member started, with the command line it was started with.
    Start { member: String, args: Vec<String> },
    /// A member stopped: by SIGTERM, or killed.
    Stop { member: String, killed: bool },
    /// `wait_healthy`: these members answered, to this identity.
    Healthy {
        members: Vec<Endpoint>,
        identity: Ident,
    },
    /// A key-value call, and how it ended.
    Kv {
        op: KvOp,
        endpoint: Endpoint,
        identity: Ident,
        outcome: Outcome,
    },
    /// Something the run did that the shell cannot, and why.
    Unexpressed(String),
    /// `expect_error` held: the operation just before was refused as the script expected.
    Expected { classes: Vec<String> },
    /// `peer_refusal(member)`: the member refused a peer (`Refused`), or none (`Ok`).
    PeerRefusal { member: String, outcome: Outcome },
    /// `revoke(ca, cert)`: the CA's CRL now lists the certificate.
    Revoked { ca: String, cert: Rc<Cert> },
    /// `sleep(ms)`.
    Slept { ms: u64 },
    /// `show_cert(cert)`.
    Shown { cert: Rc<Cert> },
}

/// A member as planned: its name and the ports the runtime chose for it.
#[derive(Clone, Debug)]
pub struct PlannedMember {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub http_port: Option<u16>,
}

/// Where a call went: the member, the host its URL names, and the port dialed.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub member: String,
    pub host: String,
    pub port: u16,
}

/// Who made a call, as far as a command line can say it.
#[derive(Clone, Debug, Default)]
pub struct Ident {
    /// The certificate presented.
    pub cert: Option<Rc<Cert>>,
    /// The file of the CA trusted, if one is.
    pub trust: Option<PathBuf>,
    /// Any server certificate accepted.
    pub insecure: bool,
    /// Plain text to the TLS port.
    pub plaintext: bool,
    /// A user name and password.
    pub login: Option<(String, String)>,
    /// What the identity asks that a command line cannot (the identity keys).
    pub unexpressed: Vec<&'static str>,
}

/// A key-value operation.
#[derive(Clone, Debug)]
pub enum KvOp {
    Put {
        key: String,
        value: String,
    },
    Get {
        key: String,
    },
    /// An RBAC change, as etcdctl's words, and as the transcript says it.
    Admin {
        words: Vec<String>,
        what: String,
    },
}

/// How a call ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// It worked; a read returned this value (`None`: no such key).
    Ok(Option<String>),
    /// It was refused, with this class; `log_of` names the member whose log said why, and
    /// `answer` is set when the member's answer said it.
    Refused {
        class: String,
        log_of: Option<String>,
        answer: bool,
    },
}

/// The steps of a run, recorded when asked for.
#[derive(Debug, Default)]
pub struct Trace {
    steps: Vec<Step>,
}

impl Trace {
    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}
