//! What the session puts into the run's trace (see `crate::trace`), when one is recorded: the
//! identity and endpoint of a call as a command line would give them, and how it ended.

use super::{IdentitySpec, MemberId, Session, Target, TrustKind};
use crate::etcd::reject::{Rejection, Witness};
use crate::fault::{Fault, OpResult};
use crate::trace::{Endpoint, Ident, KvOp, Outcome, Step};

/// A refusal as the trace keeps it: its class, and who said why.
fn refused(rejection: &Rejection) -> Outcome {
    Outcome::Refused {
        class: rejection.class.to_string(),
        log_of: match &rejection.witness {
            Witness::MemberLog(member) => Some(member.clone()),
            _ => None,
        },
        answer: matches!(rejection.witness, Witness::Answer),
    }
}

impl Session {
    /// Whether a URL can carry `name` as the server name for `m`: its own host name, its
    /// address, or localhost (for a member on loopback), which resolve to the member without a
    /// name server.
    fn dialable(&self, m: MemberId, name: &str) -> bool {
        let slot = self.slot(m);
        name == slot.url_host
            || name == slot.ip.to_string()
            || (name == "localhost" && slot.ip.is_loopback())
    }

    /// Where a call to `m` as `id` goes, as a URL would name it (with the server name the
    /// identity expects, where a URL can carry it).
    fn trace_endpoint(&self, m: MemberId, id: &IdentitySpec) -> Endpoint {
        let slot = self.slot(m);
        let port = self
            .client_addr(m, id)
            .map_or(slot.client_port, |a| a.port());
        let host = match &id.server_name {
            Some(n) if self.dialable(m, n) => n.clone(),
            _ => slot.url_host.clone(),
        };
        Endpoint {
            member: slot.name.clone(),
            host,
            port,
        }
    }

    /// `id` as a command line would give it, with what it cannot say.
    pub(super) fn trace_ident(&self, m: MemberId, id: &IdentitySpec) -> Ident {
        let mut unexpressed = Vec::new();
        if id
            .server_name
            .as_deref()
            .is_some_and(|n| !self.dialable(m, n))
        {
            unexpressed.push("server_name");
        }
        if id.dial.is_some() {
            unexpressed.push("dial");
        }
        if id.tls.min.is_some() || id.tls.max.is_some() {
            unexpressed.push("tls_min/tls_max");
        }
        if id.tls.cipher_suites.is_some() {
            unexpressed.push("cipher_suites");
        }
        if id.trust_kind == TrustKind::System {
            unexpressed.push("ca: \"system\"");
        }
        let plaintext = id.plaintext || id.http_listener;
        let ca = &self.cluster(m.cluster).spec.ca;
        Ident {
            cert: id.cert.clone().filter(|_| !plaintext),
            trust: (!plaintext && id.trust_kind == TrustKind::Ca).then(|| {
                id.trust
                    .as_ref()
                    .map_or(ca.cert_path.clone(), |t| t.cert_path.clone())
            }),
            insecure: id.trust_kind == TrustKind::Nothing,
            plaintext,
            login: id.login.clone(),
            unexpressed,
        }
    }

    /// Records a key-value call and how it ended, when a trace is recorded.
    pub(super) fn trace_kv<T>(
        &mut self,
        op: KvOp,
        target: Target,
        id: &IdentitySpec,
        result: &OpResult<T>,
        value: Option<Option<String>>,
    ) {
        if !self.transcript.tracing() {
            return;
        }
        let Ok(m) = self.resolve(target) else {
            return;
        };
        let outcome = match result {
            Ok(_) => Outcome::Ok(value.flatten()),
            Err(Fault::Rejected { rejection, .. }) => refused(rejection),
            Err(Fault::Fatal(_)) => return,
        };
        let step = Step::Kv {
            op,
            endpoint: self.trace_endpoint(m, id),
            identity: self.trace_ident(m, id),
            outcome,
        };
        self.transcript.trace(step);
    }

    /// Records what `peer_refusal` found at `member`: a refused peer, or none.
    pub(super) fn trace_peer_refusal(&mut self, member: &str, rejection: Option<&Rejection>) {
        self.transcript.trace(Step::PeerRefusal {
            member: member.to_owned(),
            outcome: rejection.map_or(Outcome::Ok(None), refused),
        });
    }

    /// Records that these members answered `wait_healthy` as `id`.
    pub(super) fn trace_healthy(&mut self, members: &[MemberId], id: &IdentitySpec) {
        if !self.transcript.tracing() || members.is_empty() {
            return;
        }
        let step = Step::Healthy {
            members: members
                .iter()
                .map(|&m| self.trace_endpoint(m, id))
                .collect(),
            identity: self.trace_ident(members[0], id),
        };
        self.transcript.trace(step);
    }
}
