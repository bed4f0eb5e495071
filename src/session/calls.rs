//! Client operations: a call to a member as some identity, bounded and attributed, reusing
//! connections; and the key-value and RBAC operations built on it.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{ClientKey, IdentitySpec, MemberId, Session, Target, TrustKind};
use crate::error::{Error, Result};
use crate::etcd::client::{self, ClientTls};
use crate::etcd::log::MemberLog;
use crate::etcd::reject::{Class, Rejection, Witness};
use crate::etcd::tls::Trust;
use crate::fault::{Fault, OpResult};
use crate::limits;
use crate::trace::KvOp;

/// What one client call does with a connection.
pub(super) type CallFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, etcd_client::Error>> + 'a>>;

/// A client call made ready by [`Session::prepare`].
pub(super) struct Prepared {
    pub(super) key: ClientKey,
    pub(super) member: MemberId,
    connection: Connection,
    logs: Vec<MemberLog>,
}

/// A connection to reuse, or how to make one.
enum Connection {
    Reuse(Box<etcd_client::Client>),
    Connect(SocketAddr, Box<ClientTls>, crate::netns::Dialer),
}

impl Prepared {
    /// Connects (unless a connection is reused) and runs `f`, bounded and attributed.
    pub(super) async fn run<T, F>(
        self,
        bound: Duration,
        f: F,
    ) -> Result<(T, etcd_client::Client), Rejection>
    where
        F: for<'a> FnOnce(&'a mut etcd_client::Client) -> CallFuture<'a, T>,
    {
        let Prepared {
            connection, logs, ..
        } = self;
        client::attributed(&logs, bound, |ports| async move {
            let mut client = match connection {
                Connection::Reuse(c) => *c,
                Connection::Connect(addr, tls, dialer) => {
                    client::connect(addr, &tls, &dialer, &ports).await?
                }
            };
            let value = f(&mut client).await.map_err(|e| client::error_chain(&e))?;
            Ok((value, client))
        })
        .await
    }
}

/// Values longer than this are shortened in the transcript.
const SHOWN_VALUE_CHARS: usize = 64;

/// A value as the transcript shows it: whole, or its start and its size.
pub(super) fn shown(value: &str) -> String {
    if value.chars().count() <= SHOWN_VALUE_CHARS {
        return value.to_owned();
    }
    let start: String = value.chars().take(SHOWN_VALUE_CHARS).collect();
    format!("{start}... ({} bytes)", value.len())
}

impl Session {
    pub(super) fn resolve(&mut self, target: Target) -> Result<MemberId> {
        match target {
            Target::Member(m) => {
                self.ensure_not_died(m)?;
                Ok(m)
            }
            Target::Cluster(c) => self.running_members(c).into_iter().next().ok_or_else(|| {
                Error::Script(format!(
                    "no member of cluster {} is running",
                    self.cluster_name(c)
                ))
            }),
        }
    }

    pub(super) fn client_tls(&self, m: MemberId, id: &IdentitySpec) -> Result<ClientTls> {
        let c = self.cluster(m.cluster);
        let read = |p: &Path| {
            fs::read_to_string(p).map_err(Error::io(format!("failed to read {}", p.display())))
        };
        let trust_path = id
            .trust
            .as_ref()
            .map_or(&c.spec.ca.cert_path, |ca| &ca.cert_path);
        let tls = ClientTls {
            trust: if id.plaintext || id.http_listener {
                None
            } else {
                Some(match &id.trust_kind {
                    TrustKind::Ca => Trust::Pem(read(trust_path)?),
                    TrustKind::System => Trust::System,
                    TrustKind::Nothing => Trust::Nothing,
                })
            },
            params: id.tls.clone(),
            identity_pem: match &id.cert {
                Some(cert) if !id.plaintext => {
                    Some((read(&cert.cert_path)?, read(&cert.key_path)?))
                }
                _ => None,
            },
            server_name: self.expected_name(m, id)?,
            login: id.login.clone(),
        };
        // What our own client cannot use (a file that holds no certificate, say) is the
        // script's doing, never a refusal by etcd: said here, before anything is dialed.
        tls.rustls_config(&[]).map_err(|e| {
            Error::Script(format!(
                "the client {} cannot be set up: {e}",
                id.describe()
            ))
        })?;
        Ok(tls)
    }

    /// The logs a call to `m` is attributed from: its own, or none for a remote member (what
    /// the client saw is all there is).
    pub(super) fn logs_of(&self, m: MemberId) -> Vec<MemberLog> {
        if self.is_remote(m) {
            Vec::new()
        } else {
            vec![self.slot(m).log.clone()]
        }
    }

    /// Where a client of `m` as `id` connects: its client port, or its plain-text one.
    pub(super) fn client_addr(&self, m: MemberId, id: &IdentitySpec) -> Result<SocketAddr> {
        let slot = self.slot(m);
        let port = if id.http_listener {
            slot.http_port.ok_or_else(|| {
                Error::Script(format!(
                    "member {} has no plain-text listener: plan its cluster with `http_listener: \
                     true`",
                    slot.name
                ))
            })?
        } else {
            slot.client_port
        };
        Ok(SocketAddr::from((slot.ip, port)))
    }

    /// Gets a call to `target` as `id` ready: the member, the TLS, and a connection to reuse.
    pub(super) fn prepare(&mut self, target: Target, id: &IdentitySpec) -> Result<Prepared> {
        let m = self.resolve(target)?;
        let key = ClientKey {
            member: m,
            identity: id.key(),
        };
        // The certificates are read only to connect: a reused connection needs none.
        let connection = match self.clients.remove(&key) {
            Some(c) => Connection::Reuse(Box::new(c)),
            None => Connection::Connect(
                self.client_addr(m, id)?,
                Box::new(self.client_tls(m, id)?),
                self.dialer(m),
            ),
        };
        let logs = self.logs_of(m);
        Ok(Prepared {
            member: m,
            connection,
            logs,
            key,
        })
    }

    /// Keeps the connection of a call that worked; a failed one is dropped.
    pub(super) fn finish<T>(
        &mut self,
        key: ClientKey,
        m: MemberId,
        result: Result<(T, etcd_client::Client), Rejection>,
    ) -> OpResult<T> {
        match result {
            Ok((value, client)) => {
                self.clients.insert(key, client);
                Ok(value)
            }
            Err(rejection) => {
                // A member that died is the news, not the failed call.
                self.ensure_not_died(m)?;
                tracing::debug!(class = %rejection.class, detail = %rejection.detail, "call failed");
                Err(Fault::rejected(String::new(), rejection))
            }
        }
    }

    /// Runs one client call against `target` as `id`, bounded and attributed. The error's `op`
    /// is empty: callers name the operation.
    pub(super) fn call<T, F>(
        &mut self,
        target: Target,
        id: &IdentitySpec,
        bound: Duration,
        f: F,
    ) -> OpResult<T>
    where
        F: for<'a> Fn(&'a mut etcd_client::Client) -> CallFuture<'a, T>,
    {
        let started = Instant::now();
        loop {
            let p = self.prepare(target, id)?;
            let (key, m) = (p.key.clone(), p.member);
            let left = self.bounded(bound.saturating_sub(started.elapsed()));
            let result = self.rt.block_on(p.run(left, &f));
            if result.is_err() {
                self.check_deadline()?;
            }
            match self.finish(key, m, result) {
                // An election in progress is no answer yet: ask again, within the same bound.
                Err(Fault::Rejected { rejection, .. }) if rejection.is_transient() => {
                    if started.elapsed() + limits::CALL_RETRY_INTERVAL >= bound {
                        // Only "not yet" until the bound: no answer, as when none came at all.
                        return Err(Fault::rejected(
                            String::new(),
                            Rejection::unlogged(
                                Class::Timeout,
                                Witness::Client,
                                format!(
                                    "no answer within {} ms, only \"not yet\"; the last: {}",
                                    bound.as_millis(),
                                    rejection.detail
                                ),
                            ),
                        ));
                    }
                    tracing::debug!(detail = %rejection.detail, "transient; asking again");
                    std::thread::sleep(limits::CALL_RETRY_INTERVAL);
                }
                other => return other,
            }
        }
    }

    /// `via m1 as alice`: where a call goes and who makes it, for the transcript.
    pub(super) fn via(&self, target: Target, id: &IdentitySpec) -> String {
        format!("via {} {}", self.target_name(target), id.describe())
    }

    pub(super) fn target_name(&self, target: Target) -> String {
        match target {
            Target::Member(m) => self.member_name(m),
            Target::Cluster(c) => self.cluster_name(c),
        }
    }

    /// `kv_set(target, key, value, identity)`.
    pub fn kv_set(
        &mut self,
        target: Target,
        key: &str,
        value: &str,
        id: &IdentitySpec,
        lease: Option<super::LeaseId>,
    ) -> OpResult<()> {
        if lease.is_some() {
            self.ensure_local_target(target, "kv_set with a lease")?;
        }
        self.guard_write(target, key, false, id)?;
        let lease = lease.map(|l| self.lease(l));
        let op = format!(
            "put {key} = {}{} {}",
            shown(value),
            lease
                .as_ref()
                .map_or(String::new(), |(_, name)| format!(" with {name}")),
            self.via(target, id)
        );
        let (k, v) = (key.to_owned(), value.to_owned());
        let leased = lease.is_some();
        let lease = lease.map(|(id, _)| id);
        let result = self.call(target, id, id.bound(), move |c| {
            let (k, v) = (k.clone(), v.clone());
            let opts = lease.map(|l| etcd_client::PutOptions::new().with_lease(l));
            Box::pin(async move { c.put(k, v, opts).await.map(|_| ()) })
        });
        if leased {
            self.transcript
                .trace(crate::trace::Step::Unexpressed(format!(
                    "`kv_set` of {key} with a lease: the lease is etcdscript's, not the shell's"
                )));
        } else {
            let put = KvOp::Put {
                key: key.to_owned(),
                value: value.to_owned(),
            };
            self.trace_kv(put, target, id, &result, None);
        }
        result.map_err(|f| f.named(&op))?;
        self.transcript.line(format!("{op}: ok"));
        Ok(())
    }

    /// `kv_get(target, key, identity)`: the value, or `None` if the key does not exist.
    pub fn kv_get(
        &mut self,
        target: Target,
        key: &str,
        id: &IdentitySpec,
    ) -> OpResult<Option<String>> {
        let op = format!("get {key} {}", self.via(target, id));
        let k = key.to_owned();
        let result = self.call(target, id, id.bound(), move |c| {
            let k = k.clone();
            Box::pin(async move {
                let r = c.get(k, None).await?;
                Ok(r.kvs()
                    .first()
                    .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
            })
        });
        let got = result.as_ref().ok().cloned();
        let get = KvOp::Get {
            key: key.to_owned(),
        };
        self.trace_kv(get, target, id, &result, got);
        let value = result.map_err(|f| f.named(&op))?;
        match &value {
            Some(v) => self.transcript.line(format!("{op}: {}", shown(v))),
            None => self.transcript.line(format!("{op}: (no such key)")),
        }
        Ok(value)
    }
}
