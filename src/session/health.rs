//! Health and refusals between members: `wait_healthy` and `peer_refusal`, and the watch over a
//! cluster's logs that tells which member refused which, and why.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{ClusterId, IdentitySpec, MemberId, Session, Target};
use crate::error::{Error, Result};
use crate::etcd::evidence::{parse_line, Event, PeerRef};
use crate::etcd::log::MemberLog;
use crate::etcd::reject::{Class, Rejection, Witness};
use crate::fault::{Fault, OpResult};
use crate::limits;

/// What a cluster's members logged about refused connections since some marks, read as they
/// write it. Members are known by their index in the cluster.
pub(super) struct PeerWatch {
    logs: Vec<MemberLog>,
    /// Each member's peer URL, to know a member a bootstrap fetch names.
    urls: Vec<String>,
    /// Where news starts in each log: lines before only teach member IDs.
    marks: Vec<u64>,
    /// How far each log has been read.
    read: Vec<u64>,
    /// Member IDs, from the logs' "added member" lines.
    ids: HashMap<String, usize>,
    /// What each member logged since its mark, in the order read.
    events: Vec<(usize, Event)>,
}

impl PeerWatch {
    /// A watch over the members of `id`, with news starting at `marks` (one per member).
    pub(super) fn new(session: &Session, id: ClusterId, marks: Vec<u64>) -> PeerWatch {
        let c = session.cluster(id);
        PeerWatch {
            logs: c.members.iter().map(|m| m.log.clone()).collect(),
            urls: c
                .members
                .iter()
                .map(|m| format!("https://{}:{}", c.spec.host, m.peer_port))
                .collect(),
            read: vec![0; marks.len()],
            marks,
            ids: HashMap::new(),
            events: Vec::new(),
        }
    }

    /// Reads what the logs added since the last poll.
    pub(super) fn poll(&mut self) {
        for (i, log) in self.logs.iter().enumerate() {
            let (lines, end) = log.lines_since(self.read[i]);
            let fresh_from = self.marks[i];
            let mut offset = self.read[i];
            for line in &lines {
                offset += line.len() as u64 + 1;
                let Some(event) = parse_line(&log.member, line) else {
                    continue;
                };
                if let Event::Member { id, peer_urls } = &event {
                    if let Some(m) = self.urls.iter().position(|u| peer_urls.contains(u)) {
                        self.ids.insert(id.clone(), m);
                    }
                } else if offset > fresh_from {
                    self.events.push((i, event));
                }
            }
            self.read[i] = end;
        }
    }

    fn member_of(&self, peer: &PeerRef) -> Option<usize> {
        match peer {
            PeerRef::Id(id) => self.ids.get(id).copied(),
            PeerRef::Url(url) => self.urls.iter().position(|u| u == url),
        }
    }

    /// Whether member `dialer` logged that its dial to member `to` was refused or hung up on.
    fn dial_refused(&self, dialer: usize, to: usize) -> bool {
        self.events.iter().any(|(at, e)| {
            *at == dialer
                && matches!(e, Event::DialRefused { peer, .. } if self.member_of(peer) == Some(to))
        })
    }

    /// Why the connections member `from` dials to member `to` are refused, if they are: `to`
    /// refused `from`'s client certificate (its log says why, and `from`'s log shows the dial
    /// failed), or `from` refused `to`'s server certificate.
    fn blocked(&self, from: usize, to: usize) -> Option<Rejection> {
        self.events.iter().find_map(|(at, e)| match e {
            Event::RefusedPeer { peer, rejection }
                if *at == from && self.member_of(peer) == Some(to) =>
            {
                Some(rejection.clone())
            }
            Event::Refused { rejection, .. } if *at == to && self.dial_refused(from, to) => {
                Some(rejection.clone())
            }
            _ => None,
        })
    }

    /// The first peer connection that member `m` refused: a peer's server certificate it
    /// refused while dialing, or a connection it refused that the peer's log shows was the
    /// peer's. A client's connection never counts.
    pub(super) fn refused_by(&self, m: usize) -> Option<Rejection> {
        self.events.iter().find_map(|(at, e)| match e {
            Event::RefusedPeer { rejection, .. } if *at == m => Some(rejection.clone()),
            Event::Refused { rejection, .. }
                if *at == m && (0..self.logs.len()).any(|x| x != m && self.dial_refused(x, m)) =>
            {
                Some(rejection.clone())
            }
            _ => None,
        })
    }

    /// A refusal between member `t` and a peer, in either direction; peers are looked at in
    /// plan order, so that the answer does not depend on which member logged first.
    pub(super) fn involving(&self, t: usize) -> Option<Rejection> {
        (0..self.logs.len())
            .filter(|&x| x != t)
            .find_map(|x| self.blocked(x, t).or_else(|| self.blocked(t, x)))
    }

    /// Whether the refusals already logged rule out a quorum for member `t`: `t` and a peer
    /// are cut off from each other when the connections each dials to the other are refused
    /// (one way alone is not enough: raft can talk over the connections the other side
    /// opens). With `down` members not running, `t` can never be healthy if the members cut
    /// off from it and the members down leave fewer than a quorum. Returns a refusal of the
    /// first peer cut off, in plan order.
    pub(super) fn quorum_ruled_out(&self, t: usize, down: &[bool]) -> Option<Rejection> {
        let n = self.logs.len();
        let quorum = n / 2 + 1;
        let mut first = None;
        let mut cut = 0;
        for x in (0..n).filter(|&x| x != t && !down[x]) {
            if let (Some(a), Some(b)) = (self.blocked(x, t), self.blocked(t, x)) {
                cut += 1;
                first.get_or_insert(
                    if a.witness == Witness::MemberLog(self.logs[x].member.clone()) {
                        a
                    } else {
                        b
                    },
                );
            }
        }
        let reachable = n - cut - down.iter().filter(|d| **d).count();
        first.filter(|_| reachable < quorum)
    }
}

impl Session {
    /// How long a cluster that is not yet healthy may take before a refusal involving a member
    /// is taken as the reason: long enough for a leader to be elected after a refused intruder,
    /// short beside the health bound.
    fn refusal_grace(&self, id: ClusterId) -> Duration {
        let election = Duration::from_millis(self.cluster(id).spec.election_ms);
        (election * limits::HEALTH_GRACE_ELECTIONS).max(limits::HEALTH_GRACE_MIN)
    }

    /// `wait_healthy(target)`: every running member of the target answers a linearizable read,
    /// asked with `probe` (`None`: a client certificate of the cluster's CA made for this).
    ///
    /// It fails before its bound only for a reason that involves a member waited for: the probe
    /// itself refused; refusals between that member and its peers that leave it no quorum;
    /// or, once the cluster has had [`Session::refusal_grace`] to become healthy, any refusal
    /// between that member and a peer.
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
        let grace = self.refusal_grace(cluster);
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
        while !pending.is_empty() {
            for &m in &pending {
                self.ensure_running(m)?;
            }
            let verdicts = self.probe_round(&pending, &probe)?;
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
            let down: Vec<bool> = self
                .cluster(cluster)
                .members
                .iter()
                .map(|s| !matches!(s.state, super::MemberState::Running(_)))
                .collect();
            // Refusals that leave a member no quorum decide at once; any other refusal
            // involving it only once the cluster has had its grace.
            let decided = pending
                .iter()
                .find_map(|m| watch.quorum_ruled_out(m.index, &down))
                .or_else(|| {
                    (started.elapsed() >= grace)
                        .then(|| pending.iter().find_map(|m| watch.involving(m.index)))
                        .flatten()
                });
            {
                if let Some(mut rejection) = decided {
                    if let Witness::MemberLog(member) = &rejection.witness {
                        tracing::info!(%member, detail = %rejection.detail, "refusal while not healthy");
                    }
                    // Which member refused is in the log on stderr; `peer_refusal` names one.
                    rejection.witness = Witness::SomeMember;
                    return Err(Fault::rejected(op, rejection));
                }
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
    ) -> Result<Vec<Result<bool, Rejection>>> {
        let prepared = members
            .iter()
            .map(|&m| self.prepare(Target::Member(m), id))
            .collect::<Result<Vec<_>>>()?;
        let keys: Vec<(super::ClientKey, MemberId)> =
            prepared.iter().map(|p| (p.key.clone(), p.member)).collect();
        let probe_bound = self.bounded(limits::PROBE_CALL_TIMEOUT);
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
                return Err(Fault::rejected(op, rejection));
            }
            if started.elapsed() >= limits::REFUSAL_WAIT {
                break;
            }
            self.check_deadline()?;
            std::thread::sleep(limits::LOG_WATCH_INTERVAL);
        }
        self.transcript
            .line(format!("{op}: none within {:?}", limits::REFUSAL_WAIT));
        Ok(())
    }
}
