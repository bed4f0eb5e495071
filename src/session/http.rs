//! HTTP on a member's client port, as an identity: `/health`, `/version`, `/metrics` and the v3
//! JSON gateway. A refusal at the handshake is attributed from the member's log as for gRPC
//! calls; an answer, whatever its status, is an answer.

use super::{IdentitySpec, Session, Target};
use crate::etcd::client::{self, SourcePorts};
use crate::etcd::http::{self, Answer};
use crate::fault::OpResult;

/// Go's answer to plain HTTP on a TLS port (a 400 that says why): a refusal, not an answer.
const PLAIN_ON_TLS: &str = "Client sent an HTTP request to an HTTPS server";

/// The gateway calls that only read: the POSTs a remote cluster takes (etcdscript only reads
/// there).
pub const READ_ONLY_POSTS: &[&str] = &[
    "/v3/kv/range",
    "/v3/auth/status",
    "/v3/maintenance/status",
    "/v3/cluster/member/list",
];

impl Session {
    /// `http_get` / `http_post`: `method path` (with a JSON `body`) through `target` as `id`.
    pub fn http(
        &mut self,
        target: Target,
        method: &str,
        path: &str,
        body: Option<&str>,
        id: &IdentitySpec,
    ) -> OpResult<Answer> {
        if id.login.is_some() {
            return Err(crate::error::Error::Script(
                "http_get/http_post do not log in: give the identity no `user` and `password` \
                 (the gateway takes a token etcdscript does not fetch)"
                    .into(),
            )
            .into());
        }
        if method != "GET" && !READ_ONLY_POSTS.contains(&path) {
            self.ensure_local_target(target, "http_post")?;
        }
        let op = format!("http {method} {path} {}", self.via(target, id));
        let m = self.resolve(target)?;
        let addr = self.client_addr(m, id)?;
        let tls = self.client_tls(m, id)?;
        let dialer = self.dialer(m);
        let logs = self.logs_of(m);
        let host = format!("{}:{}", tls.server_name, addr.port());
        let req = http::request(method, path, &host, body);
        let bound = self.bounded(id.bound());
        let result = self.rt.block_on(client::attributed(
            &logs,
            bound,
            |ports: SourcePorts| async move {
                let (r, w) = client::open(addr, &tls, &dialer, &ports, &[b"http/1.1"]).await?;
                let answer = http::exchange(r, w, &req).await?;
                if answer.status == 400 && answer.body.contains(PLAIN_ON_TLS) {
                    return Err(format!("the member answered: {}", answer.body.trim()));
                }
                Ok(answer)
            },
        ));
        let answer = match result {
            Ok(a) => a,
            Err(rejection) => {
                self.check_deadline()?;
                self.ensure_not_died(m)?;
                return Err(crate::fault::Fault::rejected(op, rejection));
            }
        };
        tracing::debug!(status = answer.status, body = %answer.body.chars().take(200).collect::<String>(), "http answer");
        self.transcript.line(format!(
            "{op}: {} {}",
            answer.status,
            status_word(answer.status)
        ));
        Ok(answer)
    }
}

/// The reason phrase of the statuses a member gives.
fn status_word(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}
