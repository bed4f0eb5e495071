//! The watch over a cluster's logs that tells which member refused which, and why.
//!
//! A refused peer connection leaves a line on each side (see `etcd/evidence.rs`): the dialer's
//! refusal of a peer's server certificate names the peer, so it counts as it is; a listener's
//! refusal names only the dialer's address (on loopback, every member's is 127.0.0.1), so it
//! counts as a peer's only when paired with a failed dial the peer logged to that member within
//! [`PAIR_WINDOW`]. Peers retry many times a second,
//! so where an outside client is refused at the same time, the class that pairs most often is
//! the peers'. Our own clients' connections never count, and neither do members that are down.

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::{ClusterId, MemberState, Session};
use crate::etcd::client::is_ours;
use crate::etcd::evidence::{parse_line, Event, PeerRef};
use crate::etcd::log::MemberLog;
use crate::etcd::reject::{Class, Rejection};

/// How close in time a listener's refusal and a peer's failed dial must be to be one connection:
/// the two sides log within milliseconds of each other, and a loaded machine may delay either.
const PAIR_WINDOW: Duration = Duration::from_millis(500);

/// What a cluster's members logged about refused connections since some marks, read as they
/// write it. Members are known by their index in the cluster.
pub(super) struct PeerWatch {
    logs: Vec<MemberLog>,
    /// Each member's peer URL, to know a member a bootstrap fetch names.
    urls: Vec<String>,
    /// Members not running: nothing they logged counts, and nothing about them.
    down: Vec<bool>,
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
                .map(|m| crate::etcd::args::peer_url(&m.url_host, m.peer_port))
                .collect(),
            down: vec![false; marks.len()],
            read: vec![0; marks.len()],
            marks,
            ids: HashMap::new(),
            events: Vec::new(),
        }
    }

    /// Which members are not running now.
    pub(super) fn set_down(&mut self, session: &Session, id: ClusterId) {
        self.down = session
            .cluster(id)
            .members
            .iter()
            .map(|s| !matches!(s.state, MemberState::Running(_)))
            .collect();
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
                match &event {
                    Event::Member { id, peer_urls } => {
                        if let Some(m) = self.urls.iter().position(|u| peer_urls.contains(u)) {
                            self.ids.insert(id.clone(), m);
                        }
                    }
                    Event::Refused {
                        remote_addr: Some(a),
                        rejection,
                    } if is_ours(*a, rejection.logged_at) => {}
                    _ if offset > fresh_from => self.events.push((i, event)),
                    _ => {}
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

    fn up(&self, m: usize) -> bool {
        !self.down.get(m).copied().unwrap_or(true)
    }

    /// When member `dialer` logged failed dials to member `to`.
    fn dials_refused(&self, dialer: usize, to: usize) -> Vec<OffsetDateTime> {
        self.events
            .iter()
            .filter_map(|(at, e)| match e {
                Event::DialRefused { peer, at: when, .. }
                    if *at == dialer && self.member_of(peer) == Some(to) =>
                {
                    *when
                }
                _ => None,
            })
            .collect()
    }

    /// The refusals `listener` logged that pair with a failed dial of one of `dialers` to it,
    /// the class that pairs most often first.
    fn paired(&self, listener: usize, dialers: &[usize]) -> Option<Rejection> {
        let dials: Vec<OffsetDateTime> = dialers
            .iter()
            .flat_map(|&d| self.dials_refused(d, listener))
            .collect();
        if dials.is_empty() {
            return None;
        }
        let window = time::Duration::try_from(PAIR_WINDOW).unwrap_or(time::Duration::ZERO);
        let mut tally: Vec<(Rejection, usize)> = Vec::new();
        for (at, e) in &self.events {
            let Event::Refused { rejection, .. } = e else {
                continue;
            };
            let Some(when) = rejection.logged_at else {
                continue;
            };
            if *at != listener || !dials.iter().any(|d| (*d - when).abs() <= window) {
                continue;
            }
            // A member dials its peers over TLS and presents its peer certificate, always: a
            // connection refused for lacking one, or for not speaking TLS, was a client's,
            // however many of them came while the peer's dials failed.
            if matches!(rejection.class, Class::NoClientCertificate | Class::NotTls) {
                continue;
            }
            match tally.iter_mut().find(|(r, _)| r.class == rejection.class) {
                Some((_, n)) => *n += 1,
                None => tally.push((rejection.clone(), 1)),
            }
        }
        // The most frequent class; among equals, the one seen first.
        let best = tally.iter().map(|(_, n)| *n).max()?;
        tally.into_iter().find(|(_, n)| *n == best).map(|(r, _)| r)
    }

    /// Why the connections member `from` dials to member `to` are refused, if they are: `to`
    /// refused `from`'s client certificate, or `from` refused `to`'s server certificate.
    fn blocked(&self, from: usize, to: usize) -> Option<Rejection> {
        if !self.up(from) || !self.up(to) {
            return None;
        }
        self.events
            .iter()
            .find_map(|(at, e)| match e {
                Event::RefusedPeer { peer, rejection }
                    if *at == from && self.member_of(peer) == Some(to) =>
                {
                    Some(rejection.clone())
                }
                _ => None,
            })
            .or_else(|| self.paired(to, &[from]))
    }

    /// The peer connection that member `m` refused: a peer's server certificate it refused while
    /// dialing, or a connection it refused that pairs with a peer's failed dial. A client's
    /// connection never counts.
    pub(super) fn refused_by(&self, m: usize) -> Option<Rejection> {
        if !self.up(m) {
            return None;
        }
        let peers: Vec<usize> = (0..self.logs.len())
            .filter(|&x| x != m && self.up(x))
            .collect();
        self.events
            .iter()
            .find_map(|(at, e)| match e {
                Event::RefusedPeer { peer, rejection }
                    if *at == m && self.member_of(peer).is_some_and(|p| self.up(p)) =>
                {
                    Some(rejection.clone())
                }
                _ => None,
            })
            .or_else(|| self.paired(m, &peers))
    }

    /// Whether the refusals logged rule out a quorum for member `t`: `t` and a peer are cut off
    /// from each other when the connections each dials to the other are refused (one way alone
    /// is not enough: raft can talk over the connections the other side opens). With the members
    /// not running, `t` can never be healthy if the members cut off from it and the members down
    /// leave fewer than a quorum. Returns a refusal of the first peer cut off, in plan order.
    pub(super) fn quorum_ruled_out(&self, t: usize) -> Option<Rejection> {
        let n = self.logs.len();
        let quorum = n / 2 + 1;
        let mut first = None;
        let mut cut = 0;
        for x in (0..n).filter(|&x| x != t && self.up(x)) {
            if let (Some(a), Some(b)) = (self.blocked(x, t), self.blocked(t, x)) {
                cut += 1;
                let by_peer = a.witness
                    == crate::etcd::reject::Witness::MemberLog(self.logs[x].member.clone());
                first.get_or_insert(if by_peer { a } else { b });
            }
        }
        let down = (0..n).filter(|&x| !self.up(x)).count();
        first.filter(|_| n - cut - down < quorum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::evidence::parse_line;

    /// m0's refusals and m1's failed dials to m0, as their logs say them.
    fn watch(m0: &[String], m1: &[String]) -> PeerWatch {
        let mut events = Vec::new();
        for (i, (name, lines)) in [("m0", m0), ("m1", m1)].into_iter().enumerate() {
            events.extend(
                lines
                    .iter()
                    .filter_map(|l| parse_line(name, l))
                    .map(|e| (i, e)),
            );
        }
        let log = |member: &str| MemberLog {
            member: member.into(),
            path: "/nonexistent".into(),
        };
        PeerWatch {
            logs: vec![log("m0"), log("m1")],
            urls: vec!["https://localhost:1".into(), "https://localhost:2".into()],
            down: vec![false, false],
            marks: vec![0, 0],
            read: vec![0, 0],
            ids: HashMap::from([("aa".to_owned(), 0)]),
            events,
        }
    }

    fn refused(ms: u32, port: u32, error: &str) -> String {
        format!(
            r#"{{"level":"warn","ts":"2026-11-30T06:50:49.{ms:03}Z","msg":"rejected connection","remote-addr":"127.0.0.1:{port}","server-name":"","error":"{error}"}}"#
        )
    }

    fn dial_failed(ms: u32) -> String {
        format!(
            r#"{{"level":"warn","ts":"2026-11-30T06:50:49.{ms:03}Z","msg":"peer deactivated again","peer-id":"aa","error":"failed to dial aa on stream Message (remote error: tls: bad certificate)"}}"#
        )
    }

    /// A client without a certificate knocking a hundred times while a peer's certificate is
    /// refused twice: the peer's refusal is the one that counts. Inverted: without the peer's
    /// refusals, nothing pairs, whatever the clients.
    #[test]
    fn a_flood_of_clients_without_a_certificate_is_no_peer_refused() {
        let mut m0: Vec<String> = (0..100)
            .map(|i| refused(i * 9, 40000 + i, "tls: client didn't provide a certificate"))
            .collect();
        let flood = m0.clone();
        let unknown =
            "tls: failed to verify client certificate: x509: certificate signed by unknown authority";
        m0.push(refused(300, 50001, unknown));
        m0.push(refused(600, 50002, unknown));
        let m1 = vec![dial_failed(300), dial_failed(600)];
        let got = watch(&m0, &m1).refused_by(0).expect("a peer was refused");
        assert_eq!(got.class, Class::UnknownAuthority, "{got:?}");
        assert!(watch(&flood, &m1).refused_by(0).is_none());
        assert!(watch(&m0, &[]).refused_by(0).is_none());
    }
}
