//! Clusters etcdscript did not start: endpoints of an etcd that runs elsewhere, audited by
//! behaviour. There is no member log to read there, so every class comes from the client's side;
//! a refusal the server does not explain is "refused at handshake". etcdscript never starts,
//! stops or reconfigures such a cluster, and writes only under the key prefix the script gives,
//! deleting at the end what it wrote.

use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;

use super::{
    ClusterId, ClusterSpec, ClusterState, IdentitySpec, MemberId, MemberSlot, MemberState, Session,
    Target,
};
use crate::error::{Error, Result};
use crate::etcd::log::MemberLog;
use crate::limits;
use crate::pki::{Ca, Cert};

/// What the script said of a remote cluster.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    pub name: String,
    /// Client URLs: `https://host:port`.
    pub endpoints: Vec<String>,
    pub ca: Rc<Ca>,
    /// The identity the runtime uses for itself (`wait_healthy`, the clean-up at the end).
    pub identity: Rc<Cert>,
    /// Where scripts may write; `None` allows no write at all.
    pub prefix: Option<String>,
}

/// A remote cluster's own state: where it lets scripts write, and what they wrote there.
#[derive(Debug, Default)]
pub(super) struct Remote {
    prefix: Option<String>,
    /// Keys written, each with the identity that wrote it (to delete it with at the end).
    written: Vec<(String, IdentitySpec)>,
}

/// `https://host:port` split into the host (as the certificate must name it) and its address.
fn endpoint(url: &str) -> Result<(String, SocketAddr)> {
    let bad = |why: &str| Error::Script(format!("remote_cluster(): endpoint `{url}` {why}"));
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| bad("must start with https:// (a plain-text endpoint is audited with an identity `#{ plaintext: true }`)"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("must name its port, as https://host:2379"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("has no port number after its host"))?;
    if host.is_empty() || host.contains('/') || host.starts_with('[') {
        return Err(bad(
            "must be https://host:port with a host name or an IPv4 address",
        ));
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return Ok((host.to_owned(), SocketAddr::from((ip, port))));
    }
    // The system's resolver has bounds of its own, which may be long: the lookup runs aside,
    // and is given up (left to end by itself) past its bound.
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send((name.as_str(), port).to_socket_addrs());
    });
    let addrs = match rx.recv_timeout(limits::RESOLVE_TIMEOUT) {
        Ok(r) => r.map_err(|e| bad(&format!("does not resolve: {e}")))?,
        Err(_) => {
            return Err(Error::Environment(format!(
                "remote_cluster(): endpoint `{url}`: the name {host} did not resolve within {:?}",
                limits::RESOLVE_TIMEOUT
            )))
        }
    };
    let addr = addrs
        .into_iter()
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| bad("resolves to no IPv4 address"))?;
    Ok((host.to_owned(), addr))
}

impl Session {
    /// `remote_cluster(name, opts)`: a cluster of members that run elsewhere.
    pub fn remote_cluster(&mut self, spec: RemoteSpec) -> Result<ClusterId> {
        super::valid_name("cluster", &spec.name)?;
        if spec.endpoints.is_empty() {
            return Err(Error::Script(
                "remote_cluster(): give at least one endpoint".into(),
            ));
        }
        if let Some(p) = &spec.prefix {
            if !p.ends_with('/') || p.len() < 2 {
                return Err(Error::Script(format!(
                    "remote_cluster(): `prefix` \"{p}\" must end with `/` (as \"etcdscript-audit/\"), \
                     so that it covers no one else's keys"
                )));
            }
            if p.is_empty() {
                return Err(Error::Script(
                    "remote_cluster(): `prefix` is empty, which would let scripts write every key; \
                     give a prefix of their own, such as \"etcdscript-audit/\""
                        .into(),
                ));
            }
        }
        // Two runs of a suite write to the same cluster one at a time.
        if spec.prefix.is_some() {
            let keys: Vec<String> = spec
                .endpoints
                .iter()
                .map(|e| super::shared::remote_key(e))
                .collect();
            self.hold_shared(&keys, &format!("remote_cluster {}", spec.name))?;
        }
        let mut members = Vec::new();
        for (i, url) in spec.endpoints.iter().enumerate() {
            let (host, addr) = endpoint(url)?;
            let std::net::IpAddr::V4(ip) = addr.ip() else {
                unreachable!("an IPv4 address was asked for");
            };
            // Named by the script's name and its place: an endpoint may hold a port the runtime
            // chose, which the transcript must not show.
            let name = format!("{}-{}", spec.name, i + 1);
            tracing::info!(member = %name, endpoint = %url, %addr, "remote member");
            members.push(MemberSlot {
                name: name.clone(),
                client_port: addr.port(),
                peer_port: 0,
                http_port: None,
                holds: Vec::new(),
                state: MemberState::External,
                // No file is there to read: nothing is ever attributed from a log.
                log: MemberLog {
                    member: name.clone(),
                    path: self
                        .runtime_dir
                        .join(format!("remote-{}.log", self.clusters.len())),
                },
                join: None,
                ip,
                url_host: host,
                host: None,
                paused: false,
                removed: false,
                refusal_mark: 0,
            });
        }
        let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
        self.transcript.line(format!(
            "remote cluster {}: members {} (endpoints on stderr with -v); CA {}, as {}; {}",
            spec.name,
            names.join(", "),
            spec.ca.name,
            spec.identity.name,
            match &spec.prefix {
                Some(p) => format!("writes only under {p}"),
                None => "no writes".into(),
            }
        ));
        self.clusters.push(ClusterState {
            spec: ClusterSpec::remote(&spec.name, names, spec.ca.clone(), spec.identity.clone()),
            members,
            probe: (*spec.identity).clone(),
            remote: Some(Remote {
                prefix: spec.prefix,
                written: Vec::new(),
            }),
        });
        Ok(ClusterId(self.clusters.len() - 1))
    }

    /// Whether `m` runs elsewhere.
    pub(super) fn is_remote(&self, m: MemberId) -> bool {
        self.cluster(m.cluster).remote.is_some()
    }

    /// Fails for a member of a remote cluster, which etcdscript never starts, stops or changes.
    pub(super) fn ensure_local(&self, m: MemberId, what: &str) -> Result<()> {
        if self.is_remote(m) {
            return Err(Error::Script(format!(
                "{what}: member {} is remote; etcdscript does not start, stop or change a cluster \
                 it did not start",
                self.member_name(m)
            )));
        }
        Ok(())
    }

    /// Fails if `target` is a remote cluster's, for what etcdscript does only to its own.
    pub(super) fn ensure_local_target(&self, target: Target, what: &str) -> Result<()> {
        let c = match target {
            Target::Member(m) => m.cluster,
            Target::Cluster(c) => c,
        };
        if self.cluster(c).remote.is_some() {
            return Err(Error::Script(format!(
                "{what}: cluster {} is remote; etcdscript only reads there, and writes keys under \
                 its prefix",
                self.cluster_name(c)
            )));
        }
        Ok(())
    }

    /// Fails for a write outside a remote cluster's prefix; records one inside it, to delete at
    /// the end.
    pub(super) fn guard_write(
        &mut self,
        target: Target,
        key: &str,
        prefix_op: bool,
        id: &IdentitySpec,
    ) -> Result<()> {
        let c = match target {
            Target::Member(m) => m.cluster,
            Target::Cluster(c) => c,
        };
        let name = self.cluster_name(c);
        let Some(remote) = self.clusters[c.0].remote.as_mut() else {
            return Ok(());
        };
        let Some(prefix) = &remote.prefix else {
            return Err(Error::Script(format!(
                "remote cluster {name} allows no writes: give remote_cluster a `prefix` to write under"
            )));
        };
        if !key.starts_with(prefix.as_str()) || (prefix_op && key.len() < prefix.len()) {
            return Err(Error::Script(format!(
                "remote cluster {name}: `{key}` is outside the prefix {prefix} that writes stay under"
            )));
        }
        if !prefix_op {
            remote.written.push((key.to_owned(), id.clone()));
        }
        Ok(())
    }

    /// Deletes what scripts wrote on remote clusters, each key as the identity that wrote it,
    /// each call bounded. Says how many went, and which could not.
    pub(super) fn clean_remote(&mut self) {
        for ci in 0..self.clusters.len() {
            let Some(remote) = self.clusters[ci].remote.as_mut() else {
                continue;
            };
            let written = std::mem::take(&mut remote.written);
            if written.is_empty() {
                continue;
            }
            let mut keys: Vec<&String> = written.iter().map(|(k, _)| k).collect();
            keys.sort();
            keys.dedup();
            let count = keys.len();
            let mut failed = Vec::new();
            let target = Target::Cluster(ClusterId(ci));
            // The clean-up has a budget of its own: a run that met its --timeout still deletes
            // what it wrote.
            let deadline = self.deadline.take();
            let budget = std::time::Instant::now() + crate::limits::REMOTE_CLEANUP_TIMEOUT;
            for (key, id) in written.iter().rev() {
                if std::time::Instant::now() >= budget {
                    failed.push(key.clone());
                    continue;
                }
                let k = key.clone();
                let done = self.call(target, id, id.bound(), move |c| {
                    let k = k.clone();
                    Box::pin(async move { c.delete(k, None).await.map(|_| ()) })
                });
                if let Err(e) = done {
                    tracing::warn!(key, error = %e, "could not delete a key written on a remote cluster");
                    failed.push(key.clone());
                }
            }
            self.deadline = deadline;
            let name = self.cluster_name(ClusterId(ci));
            failed.sort();
            failed.dedup();
            self.transcript.line(if failed.is_empty() {
                format!("teardown: deleted the {count} key(s) written on {name}")
            } else {
                format!(
                    "teardown: could not delete {} of the {count} key(s) written on {name}: {}",
                    failed.len(),
                    failed.join(", ")
                )
            });
        }
    }
}
