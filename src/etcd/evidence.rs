//! What a member's log says about connections between members and clients: who refused whom,
//! and why. Pure parsing of etcd's zap lines, the same on 3.4 and 3.5.
//!
//! A refused TLS connection leaves a line on each side, at once when members log at debug level
//! (which etcdscript asks for):
//! - the listener logs `"msg":"rejected connection"` with the connection's `remote-addr`; its
//!   `error` is the reason when the listener refused, or `remote error: ...` / `EOF` when the
//!   dialer refused or hung up;
//! - a member dialing a peer logs `"peer deactivated again"` (or `"peer became inactive"`, or
//!   the prober's `"prober detected unhealthy status"`) with the peer's ID and the dial's error:
//!   an `x509: ...` reason when the dialer refused the peer's server certificate, else the
//!   peer's refusal as the dialer saw it (`remote error: tls: bad certificate`, `EOF`).
//!
//! The listener's line cannot say whether a peer or a client dialed (both come from a loopback
//! port), so a refusal counts as a peer's only when the peer's own log shows that its dial to
//! that member failed.

use super::reject::{classify_tls_error, is_refusal, Rejection, Witness};

/// Who a dialer's line names: a member ID, or a peer URL (bootstrap fetches name the URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerRef {
    Id(String),
    Url(String),
}

/// One thing a member's log says.
#[derive(Clone, Debug)]
pub enum Event {
    /// This member refused a connection it accepted; `remote_addr` is the dialer's address.
    Refused {
        remote_addr: Option<std::net::SocketAddr>,
        rejection: Rejection,
    },
    /// This member, dialing `peer`, refused the peer's server certificate.
    RefusedPeer { peer: PeerRef, rejection: Rejection },
    /// This member's dial to `peer` failed in the TLS handshake: the peer refused it or hung up;
    /// `at` is when it was logged.
    DialRefused {
        peer: PeerRef,
        error: String,
        at: Option<time::OffsetDateTime>,
    },
    /// A member of the cluster, as the log lists it: its ID and peer URLs.
    Member { id: String, peer_urls: Vec<String> },
}

/// The messages of a member dialing a peer, and the field naming the peer.
const DIAL_MESSAGES: &[(&str, &str)] = &[
    ("peer deactivated again", "peer-id"),
    (
        "peer became inactive (message send to peer failed)",
        "peer-id",
    ),
    ("prober detected unhealthy status", "remote-peer-id"),
    ("failed to reach the peer URL", "remote-member-id"),
    ("failed to get version", "remote-member-id"),
];

/// Messages of a member fetching the cluster from a peer URL (joining or bootstrapping).
const FETCH_MESSAGES: &[&str] = &["failed to get cluster response"];

/// Reads one line of `member`'s log.
pub fn parse_line(member: &str, line: &str) -> Option<Event> {
    // Cheap tests first: most lines are none of these.
    let interesting = line.contains("rejected connection")
        || line.contains("\"added member\"")
        || line.contains("\"error\"");
    if !interesting {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let msg = v.get("msg")?.as_str()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let logged_at = field("ts").and_then(|ts| super::reject::parse_ts(&ts));
    let rejection = |error: &str| Rejection {
        class: classify_tls_error(error),
        witness: Witness::MemberLog(member.to_owned()),
        detail: error.to_owned(),
        logged_at,
    };
    if msg == "rejected connection" {
        let error = field("error").unwrap_or_default();
        if !is_refusal(&error) {
            return None;
        }
        let remote_addr = field("remote-addr").and_then(|a| a.parse().ok());
        return Some(Event::Refused {
            remote_addr,
            rejection: rejection(&error),
        });
    }
    if msg == "added member" {
        let id = field("added-peer-id")?;
        let peer_urls = v
            .get("added-peer-peer-urls")?
            .as_array()?
            .iter()
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect();
        return Some(Event::Member { id, peer_urls });
    }
    let peer = if let Some((_, key)) = DIAL_MESSAGES.iter().find(|(m, _)| *m == msg) {
        PeerRef::Id(field(key)?)
    } else if FETCH_MESSAGES.contains(&msg) {
        PeerRef::Url(base_url(&field("address")?))
    } else {
        return None;
    };
    let error = dial_error(&field("error")?);
    if is_handshake_refusal(&error) {
        return Some(Event::RefusedPeer {
            peer,
            rejection: rejection(&error),
        });
    }
    if is_hang_up(&error) {
        return Some(Event::DialRefused {
            peer,
            error,
            at: logged_at,
        });
    }
    None
}

/// The TLS error inside a dialer's error: `failed to dial ID on stream X (ERR)`,
/// `failed to write ID on pipeline (readLoopPeekFailLocked: ERR)`, `Get "URL": ERR`.
fn dial_error(error: &str) -> String {
    let inner = match (error.find('('), error.ends_with(')')) {
        (Some(i), true) if error.starts_with("failed to ") => &error[i + 1..error.len() - 1],
        _ => error,
    };
    let inner = inner.rsplit_once("\": ").map_or(inner, |(_, e)| e);
    inner
        .strip_prefix("readLoopPeekFailLocked: ")
        .unwrap_or(inner)
        .to_owned()
}

/// Whether the dialer itself refused the peer's certificate (not the peer refusing it, not a
/// connection that never came about).
fn is_handshake_refusal(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    (e.contains("x509:") || e.contains("certificate authentication failed") || e.contains("tls:"))
        && is_refusal(error)
}

/// Whether the peer hung up on the dialer in the handshake: how a refusal by the peer looks
/// from the dialing side (a TLS alert; the connection closed, or reset while the dialer was
/// still writing). A reset is also what a peer going away looks like: such a line counts only
/// when it pairs in time with a refusal the peer logged (see `session/peers.rs`).
fn is_hang_up(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.starts_with("remote error")
        || e == "eof"
        || e.ends_with(": eof")
        || e.contains("reset by peer")
}

/// `https://host:port/members` -> `https://host:port`.
fn base_url(url: &str) -> String {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => url[..i + 3 + j].to_owned(),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::reject::Class;

    // Lines as etcd 3.4.23 and 3.5.1 write them with --logger zap --log-level debug.
    const DIAL_X509_35: &str = r#"{"level":"debug","ts":"2026-11-29T19:09:45.864Z","caller":"rafthttp/peer_status.go:76","msg":"peer deactivated again","peer-id":"c835e6ab148fef1","error":"failed to dial c835e6ab148fef1 on stream Message (x509: certificate signed by unknown authority)"}"#;
    const DIAL_REMOTE_34: &str = r#"{"level":"debug","ts":"2026-11-29T19:09:43.120Z","caller":"rafthttp/peer_status.go:82","msg":"peer deactivated again","peer-id":"d86d9b1b2c67b3cd","error":"failed to dial d86d9b1b2c67b3cd on stream MsgApp v2 (remote error: tls: bad certificate)"}"#;
    const PIPELINE_34: &str = r#"{"level":"debug","ts":"2026-11-29T19:09:44.082Z","caller":"rafthttp/peer_status.go:82","msg":"peer deactivated again","peer-id":"d86d9b1b2c67b3cd","error":"failed to write d86d9b1b2c67b3cd on pipeline (readLoopPeekFailLocked: remote error: tls: bad certificate)"}"#;
    const INACTIVE_NAME_34: &str = r#"{"level":"warn","ts":"2026-11-29T19:04:52.030Z","caller":"rafthttp/peer_status.go:68","msg":"peer became inactive (message send to peer failed)","peer-id":"6acc7d4912e8510d","error":"failed to dial 6acc7d4912e8510d on stream MsgApp v2 (x509: certificate is valid for other.example, not localhost)"}"#;
    const PROBER_CN_35: &str = r#"{"level":"warn","ts":"2026-11-29T19:05:52.123Z","caller":"rafthttp/probing_status.go:68","msg":"prober detected unhealthy status","round-tripper-name":"ROUND_TRIPPER_SNAPSHOT","remote-peer-id":"b9c10ac8eecbcf9b","rtt":"0s","error":"client certificate authentication failed"}"#;
    const VERSION_35: &str = r#"{"level":"warn","ts":"2026-11-29T19:04:52.243Z","caller":"etcdserver/cluster_util.go:288","msg":"failed to reach the peer URL","address":"https://localhost:32112/version","remote-member-id":"132ba9bdb84044b","error":"Get \"https://localhost:32112/version\": x509: certificate is valid for other.example, not localhost"}"#;
    const LISTENER_IP_35: &str = r#"{"level":"warn","ts":"2026-11-29T19:06:18.064Z","caller":"embed/config_logging.go:160","msg":"rejected connection","remote-addr":"127.0.0.1:32768","server-name":"localhost","ip-addresses":["127.0.0.13"],"dns-names":[],"error":"x509: certificate is valid for 127.0.0.13, not 127.0.0.1"}"#;
    const ADDED_34: &str = r#"{"level":"info","ts":"2026-11-29T19:06:18.066Z","caller":"membership/cluster.go:392","msg":"added member","cluster-id":"6188adc832fc7296","local-member-id":"e87d671cf393c0c2","added-peer-id":"db6fbeaf5b78c8d3","added-peer-peer-urls":["https://localhost:31412"]}"#;

    fn refused_peer(line: &str) -> (PeerRef, Class) {
        match parse_line("a", line) {
            Some(Event::RefusedPeer { peer, rejection }) => (peer, rejection.class),
            other => panic!("not a refusal of a peer: {other:?}"),
        }
    }

    #[test]
    fn a_dialer_refusing_a_peer_certificate_is_attributed_with_its_class() {
        let id = |s: &str| PeerRef::Id(s.into());
        assert_eq!(
            refused_peer(DIAL_X509_35),
            (id("c835e6ab148fef1"), Class::UnknownAuthority)
        );
        assert_eq!(
            refused_peer(INACTIVE_NAME_34),
            (id("6acc7d4912e8510d"), Class::HostnameMismatch)
        );
        assert_eq!(
            refused_peer(PROBER_CN_35),
            (id("b9c10ac8eecbcf9b"), Class::NameNotAllowed)
        );
        assert_eq!(
            refused_peer(VERSION_35),
            (id("132ba9bdb84044b"), Class::HostnameMismatch)
        );
    }

    #[test]
    fn a_dial_the_peer_refused_is_no_refusal_by_the_dialer() {
        for line in [DIAL_REMOTE_34, PIPELINE_34] {
            match parse_line("a", line) {
                Some(Event::DialRefused { peer, error, .. }) => {
                    assert_eq!(peer, PeerRef::Id("d86d9b1b2c67b3cd".into()));
                    assert_eq!(error, "remote error: tls: bad certificate");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_peer_client_certificate_refused_for_its_address_is_a_hostname_mismatch() {
        match parse_line("a", LISTENER_IP_35) {
            Some(Event::Refused {
                remote_addr,
                rejection,
            }) => {
                assert_eq!(remote_addr.map(|a| a.port()), Some(32768));
                assert_eq!(rejection.class, Class::HostnameMismatch);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn members_are_listed_with_their_ids() {
        match parse_line("a", ADDED_34) {
            Some(Event::Member { id, peer_urls }) => {
                assert_eq!(id, "db6fbeaf5b78c8d3");
                assert_eq!(peer_urls, vec!["https://localhost:31412".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn urls_lose_their_path() {
        assert_eq!(
            base_url("https://localhost:2380/members"),
            "https://localhost:2380"
        );
        assert_eq!(base_url("https://10.0.0.1:2380"), "https://10.0.0.1:2380");
    }
}
