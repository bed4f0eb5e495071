//! Talking to members with etcd-client: every call time-bounded, and every failure attributed.
//!
//! Connections are made eagerly, one member at a time, through a connector of our own that binds
//! the client socket before connecting. We therefore know the source address of every connection
//! we make, and a member's "rejected connection" log line names it as `remote-addr`: a rejection
//! is ours only if its address is one of ours, whatever else (a rogue member retrying, say) is
//! being turned away at the same moment.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::Client;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use time::OffsetDateTime;
use tonic::transport::Endpoint;

use super::log::MemberLog;
use super::reject::{classify_client_error, Class, Rejection, Witness};
use super::tls::{TlsParams, Trust};
use crate::limits;
use crate::netns::Dialer;

/// How a client presents itself and what it trusts.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// What the client trusts; `None` speaks plain text (no TLS at all).
    pub trust: Option<Trust>,
    /// PEM certificate and key presented as the client certificate.
    pub identity_pem: Option<(String, String)>,
    /// The name the client expects in the server certificate (and sends as SNI).
    pub server_name: String,
    /// A user name and password to authenticate with once connected.
    pub login: Option<(String, String)>,
    /// The TLS versions and cipher suites it offers.
    pub params: TlsParams,
}

impl ClientTls {
    /// The rustls configuration for this client, naming `alpn` protocols; `None` for plain text.
    pub fn rustls_config(
        &self,
        alpn: &[&[u8]],
    ) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        let Some(trust) = &self.trust else {
            return Ok(None);
        };
        let identity = self
            .identity_pem
            .as_ref()
            .map(|(c, k)| (c.as_str(), k.as_str()));
        let config = super::tls::client_config(trust, identity, &self.params, alpn)?;
        Ok(Some(Arc::new(config)))
    }

    /// The name sent as SNI and checked in the server certificate.
    pub fn rustls_name(&self) -> Result<ServerName<'static>, String> {
        ServerName::try_from(self.server_name.clone())
            .map_err(|e| format!("server name {}: {e}", self.server_name))
    }
}

/// A connection, in plain text or in TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Connects a socket from `dialer` to `addr`, noting its source address in `ports`, and does
/// the TLS handshake if `tls` is given.
async fn dial(
    addr: SocketAddr,
    dialer: &Dialer,
    ports: &SourcePorts,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
) -> std::io::Result<Box<dyn Io>> {
    let socket = dialer.socket()?;
    ports.push(socket.local_addr()?);
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(match tls {
        None => Box::new(stream),
        Some((config, name)) => {
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await?;
            Box::new(tls)
        }
    })
}

/// Connects to `addr` as `tls` says, bounded by [`limits::CONNECT_TIMEOUT`]: the stream, and
/// the TLS version settled on. For clients of our own (HTTP) that speak over it directly.
pub async fn open(
    addr: SocketAddr,
    tls: &ClientTls,
    dialer: &Dialer,
    ports: &SourcePorts,
    alpn: &[&[u8]],
) -> Result<
    (
        Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    ),
    String,
> {
    let config = tls.rustls_config(alpn)?;
    let name = tls.rustls_name()?;
    let stream = tokio::time::timeout(
        limits::CONNECT_TIMEOUT,
        dial(addr, dialer, ports, config.map(|c| (c, name))),
    )
    .await
    .map_err(|_| format!("no connection within {:?}", limits::CONNECT_TIMEOUT))?
    .map_err(|e| error_chain(&e))?;
    let (r, w) = tokio::io::split(stream);
    Ok((Box::new(r), Box::new(w)))
}

/// The source addresses of the connections one call made, each with when it was taken.
#[derive(Clone, Debug, Default)]
pub struct SourcePorts(Arc<Mutex<Vec<(SocketAddr, OffsetDateTime)>>>);

/// The source address of every connection this process has made, with when it last took it: a
/// member's log line naming one of them, logged since, is about our client, never a peer.
static OURS: Mutex<Vec<(SocketAddr, OffsetDateTime)>> = Mutex::new(Vec::new());

/// How much earlier than the moment we took a port a log line may say it was written: log times
/// are in milliseconds, ours are not.
const CLOCK_SLACK: time::Duration = time::Duration::milliseconds(10);

/// Whether `port`, taken at `since`, can be the one a line logged `at` names.
fn taken_by_then(since: OffsetDateTime, at: Option<OffsetDateTime>) -> bool {
    at.is_none_or(|at| at >= since - CLOCK_SLACK)
}

/// Whether a connection from `addr`, refused at `at`, was one of ours: we had taken the address
/// by then. (A port we used before may since serve a peer's connection.)
pub fn is_ours(addr: SocketAddr, at: Option<OffsetDateTime>) -> bool {
    OURS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|&(a, since)| a == addr && taken_by_then(since, at))
}

impl SourcePorts {
    fn push(&self, addr: SocketAddr) {
        let now = OffsetDateTime::now_utc();
        self.0.lock().expect("source ports lock").push((addr, now));
        let mut ours = OURS.lock().unwrap_or_else(|e| e.into_inner());
        match ours.iter_mut().find(|(a, _)| *a == addr) {
            Some(entry) => entry.1 = now,
            None => ours.push((addr, now)),
        }
    }

    fn contains(&self, addr: SocketAddr, at: Option<OffsetDateTime>) -> bool {
        self.0
            .lock()
            .expect("source ports lock")
            .iter()
            .any(|&(a, since)| a == addr && taken_by_then(since, at))
    }
}

/// Walks an error's source chain into one line: tonic's own Display says only "transport error".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Connects to the member at `addr`. The TLS handshake and the HTTP/2 preface happen here, so
/// that a refusal shows now, not at the first request.
pub async fn connect(
    addr: SocketAddr,
    tls: &ClientTls,
    dialer: &Dialer,
    ports: &SourcePorts,
) -> Result<Client, String> {
    // TLS is ours (see `tls`), under HTTP/2 that tonic speaks as if in plain text: the socket
    // always goes to `addr`, from the dialer's namespace, and the handshake names the server
    // name the script chose. gRPC over TLS needs ALPN "h2": Go's server speaks HTTP/1.1 without.
    let config = tls.rustls_config(&[b"h2"])?;
    let name = tls.rustls_name()?;
    let endpoint = Endpoint::from_shared(format!("http://{}:{}", tls.server_name, addr.port()))
        .map_err(|e| error_chain(&e))?
        .connect_timeout(limits::CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let (ports, dialer) = (ports.clone(), dialer.clone());
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let (ports, dialer) = (ports.clone(), dialer.clone());
        let tls = config.clone().map(|c| (c, name.clone()));
        async move {
            let stream = dial(addr, &dialer, &ports, tls).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| error_chain(&e))?;
    let options = tls.login.as_ref().map(|(user, password)| {
        // etcd's simple tokens expire after 5 minutes unused: log in again then.
        etcd_client::ConnectOptions::new()
            .with_user(user, password)
            .with_auto_token_refresh(true)
    });
    Client::from_channel(etcd_client::Channel::Tonic(channel), options)
        .await
        .map_err(|e| error_chain(&e))
}

/// The first rejection of one of `ports` in `logs` since `marks`.
fn our_rejection(logs: &[MemberLog], marks: &[u64], ports: &SourcePorts) -> Option<Rejection> {
    logs.iter().zip(marks).find_map(|(log, &mark)| {
        let (lines, _) = log.lines_since(mark);
        // Most lines are no rejection: let the cheap test in from_log_line skip them before
        // the remote address is parsed.
        lines.iter().find_map(|line| {
            let rejection = Rejection::from_log_line(&log.member, line)?;
            ports
                .contains(remote_addr(line)?, rejection.logged_at)
                .then_some(rejection)
        })
    })
}

fn remote_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("remote-addr")?.as_str()?.parse().ok()
}

/// Runs `call` bounded by `bound`, watching `logs` while it runs.
///
/// - The call succeeds: its value.
/// - A member logs that it rejected one of our connections: that rejection, at once, without
///   waiting for the call to give up (against TLS 1.3 it may not for a long time).
/// - The call fails with words the client can be trusted on (an untrusted or misnamed server
///   certificate, RBAC): the client's class.
/// - The call fails otherwise: the member's log, given [`limits::ATTRIBUTION_GRACE`] to say why,
///   else the client's words.
pub async fn attributed<T, F, Fut>(
    logs: &[MemberLog],
    bound: Duration,
    call: F,
) -> Result<T, Rejection>
where
    F: FnOnce(SourcePorts) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let marks: Vec<u64> = logs.iter().map(MemberLog::mark).collect();
    let ports = SourcePorts::default();
    let (marks_ref, ports_ref) = (&marks, &ports);
    // Sleep first: most calls finish before their first look at the log would find anything.
    let watch = move || async move {
        loop {
            tokio::time::sleep(limits::LOG_WATCH_INTERVAL).await;
            if let Some(r) = our_rejection(logs, marks_ref, ports_ref) {
                return r;
            }
        }
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout(bound, call(ports.clone())) => r,
        rejection = watch() => return Err(rejection),
    };
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => {
            let client_class = classify_client_error(&message);
            let trusted = matches!(
                client_class,
                Some(
                    Class::UnknownAuthority
                        | Class::HostnameMismatch
                        | Class::IncompatibleKeyUsage
                        | Class::PermissionDenied
                        | Class::AuthFailed
                        | Class::Unavailable
                        | Class::ServerError
                )
            );
            if !trusted {
                if let Ok(rejection) =
                    tokio::time::timeout(limits::ATTRIBUTION_GRACE, watch()).await
                {
                    return Err(rejection);
                }
            }
            // With no log to read (a remote cluster), a refusal nobody explained is known only
            // as that.
            let unexplained = if logs.is_empty() {
                Class::RefusedAtHandshake
            } else {
                Class::TlsRejected
            };
            let class = client_class.unwrap_or(unexplained);
            let witness = match class {
                Class::PermissionDenied
                | Class::AuthFailed
                | Class::ServerError
                | Class::NotTls => Witness::Answer,
                _ => Witness::Client,
            };
            Err(Rejection::unlogged(class, witness, message))
        }
        Err(_) => Err(Rejection::unlogged(
            Class::Timeout,
            Witness::Client,
            format!("no answer within {bound:?}"),
        )),
    }
}
