//! A background load: writes at a steady rate, from a thread of its own, while the script goes
//! on faulting the cluster; every write the cluster acknowledged is recorded, so that
//! `check_no_lost_writes` can read each one back. Each write has a key of its own, so that a
//! write that timed out and was applied later can never pass for a lost one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{IdentitySpec, MemberId, Session};
use crate::error::{Error, Result};
use crate::etcd::client::{self, ClientTls, SourcePorts};
use crate::etcd::reject::{classify_client_error, says_not_yet, Class};
use crate::fault::{Fault, OpResult};
use crate::limits;
use crate::netns::Dialer;

/// What a load is asked to do.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The members it writes through, in turn: it moves to the next when one fails it.
    pub members: Vec<MemberId>,
    pub identity: IdentitySpec,
    /// Writes a second.
    pub rate: u32,
    /// How long one write may take, retries and moves to another member included.
    pub write_timeout: Duration,
}

/// A load's handle in scripts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadId(pub usize);

/// What a load did.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub writes: u64,
    /// Key -> value of every write the cluster acknowledged.
    pub acked: BTreeMap<String, String>,
    /// Failed writes by class.
    pub failed: BTreeMap<String, u64>,
}

/// A load, running or stopped.
pub(super) struct LoadRun {
    /// `load 0`, and with what it writes through.
    name: String,
    what: String,
    prefix: String,
    identity: IdentitySpec,
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<Tally>,
    bound: Duration,
    tally: Option<Tally>,
}

/// One member the load writes through.
struct Endpoint {
    addr: SocketAddr,
    tls: ClientTls,
    dialer: Dialer,
}

/// How long one attempt on one member may take before the load tries the next.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

impl Session {
    /// `load(members, opts)`: starts writing in the background.
    pub fn start_load(&mut self, spec: LoadSpec) -> Result<LoadId> {
        let n = self.loads.len();
        let prefix = format!("load-{n}/");
        let endpoints = spec
            .members
            .iter()
            .map(|&m| {
                self.ensure_local(m, "load")?;
                self.ensure_running(m)?;
                Ok(Endpoint {
                    addr: SocketAddr::from((self.slot(m).ip, self.slot(m).client_port)),
                    tls: self.client_tls(m, &spec.identity)?,
                    dialer: self.dialer(m),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let names: Vec<String> = spec.members.iter().map(|&m| self.member_name(m)).collect();
        let name = format!("load {n}");
        let what = format!(
            "{name} via {} {}",
            names.join(", "),
            spec.identity.describe()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let (flag, key_prefix) = (stop.clone(), prefix.clone());
        let pace = Pace {
            rate: spec.rate,
            write_timeout: spec.write_timeout,
        };
        std::thread::Builder::new()
            .name(format!("load-{n}"))
            .spawn(move || {
                let _ = tx.send(run(&endpoints, &key_prefix, pace, &flag));
            })
            .map_err(Error::io("failed to start the load's thread"))?;
        self.transcript.line(format!(
            "{what}: started, {} writes a second, each within {} ms",
            spec.rate,
            spec.write_timeout.as_millis()
        ));
        self.loads.push(LoadRun {
            name,
            what,
            prefix,
            identity: spec.identity,
            stop,
            done,
            bound: spec.write_timeout + ATTEMPT_TIMEOUT + limits::CONNECT_TIMEOUT,
            tally: None,
        });
        Ok(LoadId(n))
    }

    /// `stop_load(load)`: stops it and says what it did.
    pub fn stop_load(&mut self, id: LoadId) -> Result<Tally> {
        let run = self.load_mut(id)?;
        if let Some(t) = &run.tally {
            return Ok(t.clone());
        }
        run.stop.store(true, Ordering::Relaxed);
        let bound = run.bound;
        let bound = self.bounded(bound);
        let run = self.load_mut(id)?;
        let tally = run.done.recv_timeout(bound).map_err(|_| {
            Error::Environment(format!("{} did not stop within {bound:?}", run.what))
        })?;
        run.tally = Some(tally.clone());
        let line = format!("stop {}: stopped", run.name);
        self.transcript.line(line);
        Ok(tally)
    }

    /// `check_no_lost_writes(load, target)`: reads the load's keys back through `target` (as the
    /// load's identity) and fails unless every acknowledged write is there.
    pub fn check_no_lost_writes(&mut self, id: LoadId, via: MemberId) -> OpResult<()> {
        let tally = self.stop_load(id)?;
        let run = self.load_mut(id)?;
        let (name, prefix, identity) = (run.name.clone(), run.prefix.clone(), run.identity.clone());
        let op = format!("read back {name} via {}", self.member_name(via));
        let p = prefix.clone();
        let stored: BTreeMap<String, String> = self
            .call(
                super::Target::Member(via),
                &identity,
                identity.bound(),
                move |c| {
                    let p = p.clone();
                    Box::pin(async move {
                        let opts = etcd_client::GetOptions::new().with_prefix();
                        let r = c.get(p, Some(opts)).await?;
                        Ok(r.kvs()
                            .iter()
                            .map(|kv| {
                                (
                                    String::from_utf8_lossy(kv.key()).into_owned(),
                                    String::from_utf8_lossy(kv.value()).into_owned(),
                                )
                            })
                            .collect())
                    })
                },
            )
            .map_err(|f| f.named(&op))?;
        let lost: Vec<&String> = tally
            .acked
            .iter()
            .filter(|(k, v)| stored.get(*k) != Some(v))
            .map(|(k, _)| k)
            .collect();
        if !lost.is_empty() {
            let shown: Vec<&str> = lost.iter().take(5).map(|k| k.as_str()).collect();
            return Err(Fault::Fatal(Error::CheckFailed(format!(
                "{op}: {} of {} acknowledged writes are not there (first: {})",
                lost.len(),
                tally.acked.len(),
                shown.join(", ")
            ))));
        }
        if tally.acked.is_empty() {
            return Err(Fault::Fatal(Error::CheckFailed(format!(
                "{op}: the load got no write acknowledged, so there is nothing to check"
            ))));
        }
        self.transcript
            .check(format!("{op}: every acknowledged write is there"));
        Ok(())
    }

    fn load_mut(&mut self, id: LoadId) -> Result<&mut LoadRun> {
        self.loads
            .get_mut(id.0)
            .ok_or_else(|| Error::Script(format!("there is no load {}", id.0)))
    }

    /// Stops every load still running (teardown), bounded.
    pub(super) fn stop_loads(&mut self) {
        for run in &mut self.loads {
            run.stop.store(true, Ordering::Relaxed);
        }
        for run in &mut self.loads {
            if run.tally.is_none() {
                let _ = run.done.recv_timeout(run.bound);
            }
        }
    }
}

/// How fast a load writes, and how long a write may take.
#[derive(Clone, Copy)]
struct Pace {
    rate: u32,
    write_timeout: Duration,
}

/// The load's thread: writes until told to stop.
fn run(endpoints: &[Endpoint], prefix: &str, spec: Pace, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return tally;
    };
    let mut clients: Vec<Option<etcd_client::Client>> = endpoints.iter().map(|_| None).collect();
    let mut cur = 0;
    let tick = Duration::from_secs_f64(1.0 / f64::from(spec.rate.max(1)));
    let mut next = Instant::now();
    let mut seq = 0u64;
    // The first write is always made, however soon the load is stopped: a load that ran did
    // write.
    while seq == 0 || !stop.load(Ordering::Relaxed) {
        seq += 1;
        let (key, value) = (format!("{prefix}{seq:06}"), seq.to_string());
        tally.writes += 1;
        let deadline = Instant::now() + spec.write_timeout;
        let outcome = rt.block_on(write(
            endpoints,
            &mut clients,
            &mut cur,
            (&key, &value),
            deadline,
        ));
        match outcome {
            Ok(()) => {
                tally.acked.insert(key, value);
            }
            Err(class) => *tally.failed.entry(class).or_default() += 1,
        }
        next += tick;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    tally
}

/// One write, by `deadline`: on the current member, moving to the next on a failure, asking
/// again on "not yet". The error is "tls rejected" if a member refused the handshake on any
/// try (what follows such a refusal, a closed connection, says less), else the class of the
/// last failure.
async fn write(
    endpoints: &[Endpoint],
    clients: &mut [Option<etcd_client::Client>],
    cur: &mut usize,
    (key, value): (&str, &str),
    deadline: Instant,
) -> std::result::Result<(), String> {
    let mut last = Class::Timeout.name().to_owned();
    let refused = Class::TlsRejected.name();
    let mut was_refused = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(if was_refused {
                refused.to_owned()
            } else {
                last
            });
        }
        let attempt = left.min(ATTEMPT_TIMEOUT);
        let e = &endpoints[*cur];
        if clients[*cur].is_none() {
            let connected = tokio::time::timeout(
                attempt,
                client::connect(e.addr, &e.tls, &e.dialer, &SourcePorts::default()),
            )
            .await;
            match connected {
                Ok(Ok(c)) => clients[*cur] = Some(c),
                Ok(Err(detail)) => {
                    last = class_of(&detail, true);
                    was_refused |= last == refused;
                    *cur = (*cur + 1) % endpoints.len();
                    // A refused connection comes back at once: no loop at full speed.
                    tokio::time::sleep(limits::CALL_RETRY_INTERVAL).await;
                    continue;
                }
                Err(_) => {
                    last = Class::Timeout.name().to_owned();
                    *cur = (*cur + 1) % endpoints.len();
                    continue;
                }
            }
        }
        let Some(c) = clients[*cur].as_mut() else {
            continue;
        };
        match tokio::time::timeout(attempt, c.put(key, value, None)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => {
                let detail = client::error_chain(&e);
                let not_yet = says_not_yet(&detail);
                if not_yet {
                    // Only "not yet" until the bound is no answer, as for a call.
                    last = Class::Timeout.name().to_owned();
                    tokio::time::sleep(limits::CALL_RETRY_INTERVAL).await;
                    continue;
                }
                last = class_of(&detail, false);
                was_refused |= last == refused;
            }
            Err(_) => last = Class::Timeout.name().to_owned(),
        }
        clients[*cur] = None;
        *cur = (*cur + 1) % endpoints.len();
        tokio::time::sleep(limits::CALL_RETRY_INTERVAL).await;
    }
}

/// A failed write's class, from the client's side alone (the load reads no member log): what
/// the client can tell (a refused connection is "unavailable"); a handshake ended by an alert
/// is "tls rejected"; a connection reset, broken or closed without one (a handshake that met
/// its end included) is "unavailable" (the member went away, stopping say); else, while
/// connecting, "tls rejected" (as a call says when no log explains a failed handshake), and on a
/// request "server error".
fn class_of(detail: &str, connecting: bool) -> String {
    tracing::debug!(connecting, detail, "load write failed");
    // With TLS 1.3 the alert may come only with the first request.
    if detail.contains("fatal alert") {
        return Class::TlsRejected.name().to_owned();
    }
    // The OS says "Broken pipe", hyper "broken pipe": the words are compared in lower case. A
    // handshake that met the end of the connection, with no alert, met a member that went away:
    // a refusing member sends its alert first.
    let lower = detail.to_lowercase();
    let gone = [
        "reset",
        "broken pipe",
        "no route",
        "goaway",
        "closed",
        "handshake eof",
    ]
    .iter()
    .any(|w| lower.contains(w))
        || (!connecting && detail.contains("transport error"));
    let class = match classify_client_error(detail) {
        Some(c) => c,
        None if gone => Class::Unavailable,
        None if connecting => Class::TlsRejected,
        None => Class::ServerError,
    };
    class.name().to_owned()
}

#[cfg(test)]
mod tests {
    use super::class_of;

    #[test]
    fn a_member_gone_mid_handshake_is_unavailable_and_only_an_alert_is_a_refusal() {
        // What the OS says of a member killed while the client connected to it.
        let gone = "transport error: connection error: Broken pipe (os error 32)";
        assert_eq!(class_of(gone, true), "unavailable");
        assert_eq!(
            class_of("transport error: Connection refused (os error 111)", true),
            "unavailable"
        );
        assert_eq!(
            class_of(
                "transport error: connection error: Connection reset by peer",
                true
            ),
            "unavailable"
        );
        assert_eq!(
            class_of("transport error: tls handshake eof", true),
            "unavailable"
        );
        // The inverted: a handshake ended by the member's alert is a refusal.
        let alert = "transport error: received fatal alert: BadCertificate";
        assert_eq!(class_of(alert, true), "tls rejected");
    }
}
