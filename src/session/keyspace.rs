//! The key space beyond one key: deletes, prefix reads, watches and leases, each as an identity,
//! so that a script can show what RBAC lets that identity do with them.
//!
//! Watches and leases are handles numbered in the order the script made them: etcd's own watch
//! and lease IDs are the runtime's choice and go to the log on stderr only.

use std::time::Instant;

use super::{IdentitySpec, MemberId, Session, Target};
use crate::etcd::reject::{Class, Rejection, Witness};
use crate::fault::{Fault, OpResult};

/// A watch the script opened (from `watch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchId(pub usize);

/// A lease the script was granted (from `lease_grant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseId(pub usize);

/// One key-value pair as a script sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: String,
}

/// One event a watch delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// "put" or "delete".
    pub kind: &'static str,
    pub key: String,
    /// The value put; empty for a delete.
    pub value: String,
}

impl WatchEvent {
    fn describe(&self) -> String {
        match self.kind {
            "put" => format!("put {} = {}", self.key, super::calls::shown(&self.value)),
            _ => format!("delete {}", self.key),
        }
    }
}

/// A watch stream and what it has delivered that the script has not taken yet.
pub(super) struct WatchRun {
    member: MemberId,
    what: String,
    stream: Option<etcd_client::WatchStream>,
    pending: Vec<WatchEvent>,
    /// Why etcd ended the watch, once it has.
    ended: Option<String>,
}

/// A lease: etcd's ID.
pub(super) struct LeaseRun {
    id: i64,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn events_of(r: &etcd_client::WatchResponse) -> Vec<WatchEvent> {
    r.events()
        .iter()
        .filter_map(|e| {
            let kv = e.kv()?;
            let kind = match e.event_type() {
                etcd_client::EventType::Put => "put",
                etcd_client::EventType::Delete => "delete",
            };
            Some(WatchEvent {
                kind,
                key: text(kv.key()),
                value: if kind == "put" {
                    text(kv.value())
                } else {
                    String::new()
                },
            })
        })
        .collect()
}

/// A refusal etcd gave as an answer (a watch it canceled, say), classed from its words.
fn answered(reason: &str) -> Rejection {
    let class = crate::etcd::reject::classify_client_error(reason).unwrap_or(Class::ServerError);
    Rejection::unlogged(class, Witness::Answer, reason.to_owned())
}

impl Session {
    /// `kv_delete(target, key, identity)`: how many keys went (0 or 1).
    pub fn kv_delete(&mut self, target: Target, key: &str, id: &IdentitySpec) -> OpResult<i64> {
        self.delete_range(target, key, false, id)
    }

    /// `kv_delete_prefix(target, prefix, identity)`: how many keys went.
    pub fn kv_delete_prefix(
        &mut self,
        target: Target,
        prefix: &str,
        id: &IdentitySpec,
    ) -> OpResult<i64> {
        self.delete_range(target, prefix, true, id)
    }

    fn delete_range(
        &mut self,
        target: Target,
        key: &str,
        prefix: bool,
        id: &IdentitySpec,
    ) -> OpResult<i64> {
        self.guard_write(target, key, prefix, id)?;
        let op = format!(
            "delete {}{} {}",
            key_shown(key),
            if prefix { " (prefix)" } else { "" },
            self.via(target, id)
        );
        let k = key.to_owned();
        let deleted = self
            .call(target, id, id.bound(), move |c| {
                let k = k.clone();
                Box::pin(async move {
                    let opts = prefix.then(|| etcd_client::DeleteOptions::new().with_prefix());
                    Ok(c.delete(k, opts).await?.deleted())
                })
            })
            .map_err(|f| f.named(&op))?;
        self.transcript.line(format!("{op}: {deleted} deleted"));
        Ok(deleted)
    }

    /// `kv_get_prefix(target, prefix, identity)`: every key under `prefix` with its value, in key
    /// order.
    pub fn kv_get_prefix(
        &mut self,
        target: Target,
        prefix: &str,
        id: &IdentitySpec,
    ) -> OpResult<Vec<Pair>> {
        let op = format!(
            "get {} (prefix) {}",
            key_shown(prefix),
            self.via(target, id)
        );
        let k = prefix.to_owned();
        let pairs = self
            .call(target, id, id.bound(), move |c| {
                let k = k.clone();
                Box::pin(async move {
                    let r = c
                        .get(k, Some(etcd_client::GetOptions::new().with_prefix()))
                        .await?;
                    Ok(r.kvs()
                        .iter()
                        .map(|kv| Pair {
                            key: text(kv.key()),
                            value: text(kv.value()),
                        })
                        .collect::<Vec<_>>())
                })
            })
            .map_err(|f| f.named(&op))?;
        let shown: Vec<String> = pairs
            .iter()
            .map(|p| format!("{} = {}", p.key, super::calls::shown(&p.value)))
            .collect();
        self.transcript.line(match pairs.len() {
            0 => format!("{op}: no keys"),
            n => format!("{op}: {n} {}: {}", keys_word(n), shown.join(", ")),
        });
        Ok(pairs)
    }

    /// `watch(target, key, prefix, identity)`: opens a watch and waits for etcd to confirm it
    /// (or to refuse it: a watch the member cancels at once is a rejection).
    pub fn watch(
        &mut self,
        target: Target,
        key: &str,
        prefix: bool,
        id: &IdentitySpec,
    ) -> OpResult<WatchId> {
        let n = self.watches.len() + 1;
        let what = format!(
            "watch {n} on {}{}",
            key_shown(key),
            if prefix { " (prefix)" } else { "" }
        );
        // Only a watch etcd confirmed gets its number.
        let op = format!(
            "watch {}{} {}",
            key_shown(key),
            if prefix { " (prefix)" } else { "" },
            self.via(target, id)
        );
        let m = self.resolve(target)?;
        let k = key.to_owned();
        let (stream, first) = self
            .call(target, id, id.bound(), move |c| {
                let k = k.clone();
                Box::pin(async move {
                    let opts = prefix.then(|| etcd_client::WatchOptions::new().with_prefix());
                    let mut stream = c.watch(k, opts).await?;
                    let first = stream.message().await?;
                    Ok((stream, first))
                })
            })
            .map_err(|f| f.named(&op))?;
        let first = first.ok_or_else(|| {
            Fault::rejected(
                op.clone(),
                Rejection::unlogged(
                    Class::ServerError,
                    Witness::Answer,
                    "the member closed the watch stream before it answered".into(),
                ),
            )
        })?;
        if first.canceled() {
            tracing::debug!(reason = first.cancel_reason(), "watch canceled at once");
            return Err(Fault::rejected(op, answered(first.cancel_reason())));
        }
        tracing::debug!(watch_id = first.watch_id(), "watch created");
        self.watches.push(WatchRun {
            member: m,
            what,
            pending: events_of(&first),
            stream: Some(stream),
            ended: None,
        });
        self.transcript
            .line(format!("{op}: watching, as watch {n}"));
        Ok(WatchId(n - 1))
    }

    /// `watch_events(watch, count, wait)`: waits for `count` events (at most `wait`) and returns
    /// them, oldest first. Fewer in time is a `timeout`; a watch etcd ended says why.
    pub fn watch_events(
        &mut self,
        w: WatchId,
        count: usize,
        wait: std::time::Duration,
    ) -> OpResult<Vec<WatchEvent>> {
        let what = self.watches[w.0].what.clone();
        let op = format!("{what}: wait for {count} {}", events_word(count));
        let bound = self.bounded(wait);
        let started = Instant::now();
        loop {
            let run = &mut self.watches[w.0];
            if run.pending.len() >= count {
                let events: Vec<WatchEvent> = run.pending.drain(..count).collect();
                let shown: Vec<String> = events.iter().map(WatchEvent::describe).collect();
                self.transcript.line(format!("{op}: {}", shown.join(", ")));
                return Ok(events);
            }
            if let Some(reason) = &run.ended {
                return Err(Fault::rejected(op, answered(reason)));
            }
            let left = bound.saturating_sub(started.elapsed());
            let Some(stream) = run.stream.as_mut() else {
                return Err(Fault::rejected(
                    op,
                    Rejection::unlogged(
                        Class::Unavailable,
                        Witness::Client,
                        "the watch's member was stopped".into(),
                    ),
                ));
            };
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(left, stream.message()).await });
            if next.is_err() {
                self.check_deadline()?;
            }
            let run = &mut self.watches[w.0];
            match next {
                Err(_) => {
                    let got = run.pending.len();
                    return Err(Fault::rejected(
                        op,
                        Rejection::unlogged(
                            Class::Timeout,
                            Witness::Client,
                            format!("{got} of {count} events within {bound:?}"),
                        ),
                    ));
                }
                Ok(Ok(Some(r))) => {
                    run.pending.extend(events_of(&r));
                    if r.canceled() {
                        run.ended = Some(r.cancel_reason().to_owned());
                    }
                }
                Ok(Ok(None)) => run.ended = Some("the member closed the watch stream".into()),
                Ok(Err(e)) => {
                    let message = crate::etcd::client::error_chain(&e);
                    let class = crate::etcd::reject::classify_client_error(&message)
                        .unwrap_or(Class::Unavailable);
                    run.stream = None;
                    return Err(Fault::rejected(
                        op,
                        Rejection::unlogged(class, Witness::Client, message),
                    ));
                }
            }
        }
    }

    /// Ends the watches on member `m` (before it stops: an open stream would hold its graceful
    /// stop), or every watch.
    pub(super) fn drop_watches(&mut self, m: Option<MemberId>) {
        for run in &mut self.watches {
            if m.is_none_or(|m| m == run.member) {
                run.stream = None;
            }
        }
    }

    /// `lease_grant(target, ttl_secs, identity)`.
    pub fn lease_grant(
        &mut self,
        target: Target,
        ttl: i64,
        id: &IdentitySpec,
    ) -> OpResult<LeaseId> {
        self.ensure_local_target(target, "lease_grant")?;
        let n = self.leases.len() + 1;
        let op = format!("lease {n} grant {ttl} s {}", self.via(target, id));
        let lease = self
            .call(target, id, id.bound(), move |c| {
                Box::pin(async move { Ok(c.lease_grant(ttl, None).await?.id()) })
            })
            .map_err(|f| f.named(&op))?;
        tracing::debug!(lease, "lease granted");
        self.leases.push(LeaseRun { id: lease });
        self.transcript.line(format!("{op}: ok"));
        Ok(LeaseId(n - 1))
    }

    /// etcd's ID of a lease, and how the transcript names it.
    pub fn lease(&self, l: LeaseId) -> (i64, String) {
        (self.leases[l.0].id, format!("lease {}", l.0 + 1))
    }

    /// `lease_revoke(target, lease, identity)`: the lease ends, and every key attached to it.
    pub fn lease_revoke(&mut self, target: Target, l: LeaseId, id: &IdentitySpec) -> OpResult<()> {
        self.ensure_local_target(target, "lease_revoke")?;
        let (lease, name) = self.lease(l);
        let op = format!("{name} revoke {}", self.via(target, id));
        self.call(target, id, id.bound(), move |c| {
            Box::pin(async move { c.lease_revoke(lease).await.map(|_| ()) })
        })
        .map_err(|f| f.named(&op))?;
        self.transcript.line(format!("{op}: ok"));
        Ok(())
    }
}

/// A key as the transcript shows it: the empty key, which with a prefix means every key, as `""`.
fn key_shown(key: &str) -> &str {
    if key.is_empty() {
        "\"\""
    } else {
        key
    }
}

fn keys_word(n: usize) -> &'static str {
    if n == 1 {
        "key"
    } else {
        "keys"
    }
}

fn events_word(n: usize) -> &'static str {
    if n == 1 {
        "event"
    } else {
        "events"
    }
}
