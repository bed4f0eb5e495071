//! Health and refusals between members: `wait_healthy` and `peer_refusal`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::peers::PeerWatch;
use super::{IdentitySpec, MemberId, Session, Target};
use crate::error::{Error, Result};
use crate::etcd::reject::{Class, Rejection, Witness};
use crate::fault::{Fault, OpResult};
use crate::limits;

impl Session {
    /// `wait_healthy(target)`: every running member of the target answers a linearizable read,
    /// asked with `probe` (`None`: a client certificate of the cluster's CA made for this).
    ///
    /// It fails before its bound only for a reason that involves a member waited for: the probe
    /// itself refused, or refusals between that member and its peers that leave it no quorum.
    /// Any other refusal may be in the way or not (a member refused one way still talks over the
    /// connections its peers open), so it is no verdict: the wait goes on to its bound.
    pub fn wait_healthy(&mut self, target: Target, probe: Option<&IdentitySpec>) -> OpResult<()> {
        let (cluster, members) = match target {
            Target::Member(m) => {
                self.ensure_running(m)?;
                (m.cluster, vec![m])
            }
            Target::Cluster(c) => (c, self.running_members(c)),
        };
        let names: Vec<String> = members.iter().map(|&m| self.member_name(m)).collect();
        let op = format!("wait healthy {}", names.join(", "));
        if members.is_empty() {
            return Err(Error::Script(format!(
                "{op}: no member of cluster {} is running",
                self.cluster_name(cluster)
            ))
            .into());
        }
        let probe = match probe {
            Some(p) => p.clone(),
            None => IdentitySpec {
                cert: Some(Rc::new(self.cluster(cluster).probe.clone())),
                ..Default::default()
            },
        };
        let started = Instant::now();
        let health_timeout = self.cluster(cluster).spec.health_timeout;
        // Refusals count from the last start of a member of the cluster: a cluster that cannot
        // form has been refusing since then.
        let marks = self
            .cluster(cluster)
            .members
            .iter()
            .map(|s| s.refusal_mark)
            .collect();
        let mut watch = PeerWatch::new(self, cluster, marks);
        let mut pending = members.clone();
        let mut probe_bound = limits::PROBE_CALL_TIMEOUT;
        while !pending.is_empty() {
            for &m in &pending {
                self.ensure_running(m)?;
            }
            let verdicts = self.probe_round(&pending, &probe, probe_bound)?;
            // A member that is slow to answer gets longer each round, so that a slow but
            // working member is never starved by the bound.
            probe_bound = (probe_bound * 2).min(limits::PROBE_CALL_TIMEOUT_MAX);
            let mut still = Vec::new();
            for (m, verdict) in pending.into_iter().zip(verdicts) {
                match verdict {
                    Ok(true) => {}
                    Ok(false) => still.push(m),
                    Err(rejection) => return Err(Fault::rejected(op, rejection)),
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            self.check_deadline()?;
            watch.poll();
            watch.set_down(self, cluster);
            if let Some(mut rejection) =
                pending.iter().find_map(|m| watch.quorum_ruled_out(m.index))
            {
                if let Witness::MemberLog(member) = &rejection.witness {
                    tracing::info!(%member, detail = %rejection.detail, "refusals rule out a quorum");
                }
                // Which member refused is in the log on stderr; `peer_refusal` names one.
                rejection.witness = Witness::SomeMember;
                return Err(Fault::rejected(op, rejection));
            }
            if started.elapsed() >= health_timeout {
                let tails: Vec<String> = pending
                    .iter()
                    .map(|&m| {
                        let log = &self.slot(m).log;
                        format!(
                            "{}: {}",
                            log.member,
                            log.last_error().unwrap_or_else(|| "no log".into())
                        )
                    })
                    .collect();
                return Err(Fault::rejected(
                    op,
                    Rejection::unlogged(
                        Class::Timeout,
                        Witness::Client,
                        format!(
                            "not healthy within {:?}: {}",
                            health_timeout,
                            tails.join("; ")
                        ),
                    ),
                ));
            }
            std::thread::sleep(limits::POLL_INTERVAL);
        }
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "healthy");
        self.trace_healthy(&members, &probe);
        self.transcript.line(format!("{op}: healthy"));
        Ok(())
    }

    /// One health probe of each member, all at once: per member, `Ok(true)` it answered (an
    /// RBAC refusal is an answer too), `Ok(false)` not yet, `Err` the member refused the
    /// probe's identity, which no wait will change.
    fn probe_round(
        &mut self,
        members: &[MemberId],
        id: &IdentitySpec,
        bound: Duration,
    ) -> Result<Vec<Result<bool, Rejection>>> {
        let prepared = members
            .iter()
            .map(|&m| self.prepare(Target::Member(m), id))
            .collect::<Result<Vec<_>>>()?;
        let keys: Vec<(super::ClientKey, MemberId)> =
            prepared.iter().map(|p| (p.key.clone(), p.member)).collect();
        let probe_bound = self.bounded(bound);
        let probes = futures_util::future::join_all(prepared.into_iter().map(|p| {
            p.run(probe_bound, |c| {
                Box::pin(async move { c.get("health", None).await.map(|_| ()) })
            })
        }));
        let results = self.rt.block_on(probes);
        let mut verdicts = Vec::new();
        for ((key, m), result) in keys.into_iter().zip(results) {
            verdicts.push(match self.finish(key, m, result) {
                Ok(()) => Ok(true),
                Err(Fault::Rejected { rejection, .. }) => match rejection.class {
                    Class::PermissionDenied | Class::AuthFailed => Ok(true),
                    Class::Timeout
                    | Class::Unavailable
                    | Class::ServerError
                    | Class::TlsRejected => {
                        tracing::trace!(detail = %rejection.detail, "not healthy yet");
                        Ok(false)
                    }
                    _ => Err(rejection),
                },
                Err(Fault::Fatal(e)) => return Err(e),
            });
        }
        Ok(verdicts)
    }

    /// `peer_refusal(member)`: fails with the first connection of a peer the member refused
    /// since another member of its cluster last started (a newcomer's, typically), waiting up to
    /// [`limits::REFUSAL_WAIT`] for one; succeeds if none came. A client's connection never
    /// counts. Meant for `expect_error`.
    pub fn peer_refusal(&mut self, m: MemberId) -> OpResult<()> {
        self.ensure_local(m, "peer_refusal")?;
        self.ensure_running(m)?;
        let name = self.member_name(m);
        let op = format!("watch {name} for refused peers");
        let marks = self
            .cluster(m.cluster)
            .members
            .iter()
            .map(|s| s.refusal_mark)
            .collect();
        let mut watch = PeerWatch::new(self, m.cluster, marks);
        let started = Instant::now();
        loop {
            watch.poll();
            if let Some(rejection) = watch.refused_by(m.index) {
                tracing::info!(member = %name, detail = %rejection.detail, "refused a peer");
                self.trace_peer_refusal(&name, Some(&rejection));
                return Err(Fault::rejected(op, rejection));
            }
            if started.elapsed() >= limits::REFUSAL_WAIT {
                break;
            }
            self.check_deadline()?;
            std::thread::sleep(limits::LOG_WATCH_INTERVAL);
        }
        self.trace_peer_refusal(&name, None);
        self.transcript
            .line(format!("{op}: none within {:?}", limits::REFUSAL_WAIT));
        Ok(())
    }
}
