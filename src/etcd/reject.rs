//! Why a connection or a request was refused: stable error classes, attributed from the member's
//! log (what the server saw) and from the client's error (what the client saw).
//!
//! The client's error alone is not enough: against etcd 3.4 (TLS 1.3) one and the same rejection
//! reaches the client as "broken pipe", "operation was canceled" or "BadCertificate" at random.
//! The member that refused says why in its log, identically on 3.4 and 3.5 with `--logger zap`:
//! `"msg":"rejected connection"` and an `"error"` field.

use std::fmt;

/// A stable, documented name for why something was refused. `expect_error` matches these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    NoClientCertificate,
    UnknownAuthority,
    Expired,
    NotYetValid,
    IncompatibleKeyUsage,
    Revoked,
    HostnameMismatch,
    NameNotAllowed,
    NotTls,
    /// The two sides share no TLS version.
    NoSharedVersion,
    /// The two sides share no cipher suite.
    NoSharedCipher,
    /// The member could not read its own CRL file.
    CrlUnreadable,
    PermissionDenied,
    AuthFailed,
    Timeout,
    Unavailable,
    /// A TLS rejection that neither the log nor the client error explained.
    TlsRejected,
    /// The same, where there is no member log to ask (a remote cluster).
    RefusedAtHandshake,
    /// A request the server answered with an error of no listed class.
    ServerError,
    /// A member exited before it served its peer port; its own log says why.
    StartFailed,
}

impl Class {
    /// Every class with its one-line meaning, for `etcdscript api` and README.
    pub const ALL: &'static [(Class, &'static str)] = &[
        (Class::NoClientCertificate, "the member required a client certificate and none was presented"),
        (Class::UnknownAuthority, "a certificate was not signed by a CA the other side trusts"),
        (Class::Expired, "a certificate's validity has ended"),
        (Class::NotYetValid, "a certificate's validity has not begun"),
        (Class::IncompatibleKeyUsage, "a certificate lacks the extended key usage its role needs (clientAuth or serverAuth)"),
        (Class::Revoked, "a certificate's serial is on the CRL the member was given"),
        (Class::HostnameMismatch, "the server certificate does not carry the name the client dialed"),
        (Class::NameNotAllowed, "the certificate's CN or SANs are not the ones --peer-cert-allowed-cn / --client-cert-allowed-hostname allow"),
        (Class::NotTls, "a plain-text client spoke to a TLS port"),
        (Class::NoSharedVersion, "the client and the member share no TLS version (a client limited to TLS 1.3 against a member that serves at most 1.2)"),
        (Class::CrlUnreadable, "the member could not parse the CRL file it was given, and refused the certificate for it (etcd reads the CRL at every handshake)"),
        (Class::NoSharedCipher, "the client and the member share no cipher suite (or none that suits the certificate's key)"),
        (Class::PermissionDenied, "RBAC: the user may not do this"),
        (Class::AuthFailed, "RBAC: the credentials were refused, or a request names no user at all (a CN that is no user gets \"permission denied\")"),
        (Class::Timeout, "no answer within the operation's bound"),
        (Class::Unavailable, "nothing is listening, or the member has stopped"),
        (Class::TlsRejected, "the TLS handshake failed and neither side said why"),
        (Class::RefusedAtHandshake, "a remote member ended the TLS handshake (or the connection right after it) without saying why, and there is no member log to ask: the client alone saw it"),
        (Class::ServerError, "the member answered with an error of no other class"),
        (Class::StartFailed, "a member exited before it served its peer port (its own log says why); never a rejection"),
    ];

    /// The class with this stable name, if there is one.
    pub fn parse(name: &str) -> Option<Class> {
        Class::ALL
            .iter()
            .map(|(c, _)| c)
            .find(|c| c.name() == name)
            .cloned()
    }

    /// What happened to an operation of this class, for the transcript: a start failure is
    /// no rejection.
    pub fn verb(&self) -> &'static str {
        match self {
            Class::StartFailed => "failed",
            _ => "rejected",
        }
    }

    /// Every stable name, in documentation order.
    pub fn names() -> Vec<&'static str> {
        Class::ALL.iter().map(|(c, _)| c.name()).collect()
    }

    /// The stable name.
    pub fn name(&self) -> &'static str {
        match self {
            Class::NoClientCertificate => "no client certificate",
            Class::UnknownAuthority => "unknown authority",
            Class::Expired => "expired",
            Class::NotYetValid => "not yet valid",
            Class::IncompatibleKeyUsage => "incompatible key usage",
            Class::Revoked => "revoked",
            Class::HostnameMismatch => "hostname mismatch",
            Class::NameNotAllowed => "name not allowed",
            Class::NotTls => "not tls",
            Class::NoSharedVersion => "no shared tls version",
            Class::NoSharedCipher => "no shared cipher suite",
            Class::CrlUnreadable => "unreadable crl",
            Class::PermissionDenied => "permission denied",
            Class::AuthFailed => "authentication failed",
            Class::Timeout => "timeout",
            Class::Unavailable => "unavailable",
            Class::TlsRejected => "tls rejected",
            Class::RefusedAtHandshake => "refused at handshake",
            Class::ServerError => "server error",
            Class::StartFailed => "start failed",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Witness {
    /// A member's log, naming the member.
    MemberLog(String),
    /// The client's own error: the client refused, or gave up.
    Client,
    /// The member's answer to a request it received and refused (RBAC, server errors).
    Answer,
    /// Some member of the cluster logged it. Which one logs first varies from run to run, so the
    /// transcript does not name it (the log on stderr does).
    SomeMember,
}

/// A refusal with its class, who saw it, and the raw words (for the log on stderr only: they may
/// hold times, addresses and serials that would make a transcript differ from run to run).
#[derive(Clone, Debug)]
pub struct Rejection {
    pub class: Class,
    pub witness: Witness,
    pub detail: String,
    /// When the member logged it, if a member did: how fast a check resolves is measured from it.
    pub logged_at: Option<time::OffsetDateTime>,
}

/// The time of an etcd log line: zap writes ISO 8601, `2026-11-29T19:05:31.637Z` in UTC (which
/// etcdscript starts members in) or `2026-11-29T20:05:31.637+0100` in a local zone.
pub fn parse_ts(ts: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(ts, &Rfc3339) {
        return Some(t);
    }
    let local = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
    );
    time::OffsetDateTime::parse(ts, &local).ok()
}

impl Rejection {
    /// A refusal by `member`, read from one line of its log, if the line is one.
    pub fn from_log_line(member: &str, line: &str) -> Option<Rejection> {
        let error = rejected_connection_error(line)?;
        let logged_at = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| parse_ts(v.get("ts")?.as_str()?));
        Some(Rejection {
            class: classify_tls_error(&error),
            witness: Witness::MemberLog(member.to_owned()),
            detail: error,
            logged_at,
        })
    }

    /// A refusal seen by the client (or answered by the member) rather than logged.
    pub fn unlogged(class: Class, witness: Witness, detail: String) -> Rejection {
        Rejection {
            class,
            witness,
            detail,
            logged_at: None,
        }
    }

    /// Whether the member said "not now" rather than "no": an election or a slow commit, which
    /// asking again settles.
    pub fn is_transient(&self) -> bool {
        self.class == Class::ServerError && says_not_yet(&self.detail)
    }

    /// Milliseconds since the member logged this refusal, if it did.
    pub fn ms_since_logged(&self) -> Option<i64> {
        self.logged_at.map(|t| {
            ((time::OffsetDateTime::now_utc() - t).as_seconds_f64() * 1000.0).round() as i64
        })
    }

    /// Words for the transcript: the class and who saw it, nothing the runtime chose.
    pub fn summary(&self) -> String {
        match &self.witness {
            Witness::MemberLog(member) => format!("{} (from {member}'s log)", self.class),
            Witness::Client => format!("{} (from the client)", self.class),
            Witness::Answer => format!("{} (the member's answer)", self.class),
            Witness::SomeMember => format!("{} (from the members' logs)", self.class),
        }
    }
}

/// Whether a "rejected connection" error is a refusal by this member. It is not when the other
/// side refused ("remote error: ...", its own log says why) or just went away mid-handshake
/// ("EOF", a reset): a client that gave up, or etcd's gateway dialing its own port.
pub fn is_refusal(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    !(e.starts_with("remote error")
        || e == "eof"
        || e.ends_with(": eof")
        || e.contains("connection reset")
        || e.contains("broken pipe")
        || e.contains("i/o timeout")
        || e.contains("use of closed network connection"))
}

/// Classifies the `error` of a member's "rejected connection" log line.
pub fn classify_tls_error(error: &str) -> Class {
    let e = error.to_ascii_lowercase();
    if e.contains("didn't provide a certificate") || e.contains("did not provide a certificate") {
        Class::NoClientCertificate
    } else if e.contains("unknown authority") {
        Class::UnknownAuthority
    } else if e.contains("has expired or is not yet valid") {
        if e.contains(" is before ") {
            Class::NotYetValid
        } else {
            Class::Expired
        }
    } else if e.contains("incompatible key usage") {
        Class::IncompatibleKeyUsage
    } else if e.contains("x509: certificate is valid for")
        || e.contains("x509: certificate is not valid for any names")
        || e.contains("doesn't contain any ip sans")
        || e.contains("relies on legacy common name field")
        || (e.contains("does not match any of dnsnames"))
    {
        // A server certificate without the name dialed, or a peer's client certificate
        // without the address it dialed from (etcd checks that too).
        Class::HostnameMismatch
    } else if e.contains("revoked") {
        Class::Revoked
    } else if e.contains("client certificate authentication failed")
        || e.contains("commonname authentication failed")
        || e.contains("not in the allowed")
        || e.contains("doesn't contain any of")
        || e.contains("does not contain any of")
        || e.contains("allowed hostname")
        || e.contains("allowed cn")
    {
        Class::NameNotAllowed
    } else if e.contains("does not look like a tls handshake")
        || e.contains("http request to an https server")
    {
        Class::NotTls
    } else if e.contains("offered only unsupported versions")
        || e.contains("unsupported versions")
        || e.contains("protocol version not supported")
    {
        Class::NoSharedVersion
    } else if e.contains("no cipher suite supported by both") {
        Class::NoSharedCipher
    } else if e.contains("certificatelist") {
        // Go's asn1 parser names the structure it failed on: the CRL.
        Class::CrlUnreadable
    } else {
        Class::TlsRejected
    }
}

/// Reads a member's log line; returns the error of a "rejected connection" line that is a
/// refusal (see [`is_refusal`]).
pub fn rejected_connection_error(line: &str) -> Option<String> {
    // Cheap test first: most lines are not rejections, and 3.4 writes some non-JSON grpc lines.
    if !line.contains("rejected connection") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("msg")?.as_str()? != "rejected connection" {
        return None;
    }
    let error = v.get("error").and_then(|e| e.as_str()).unwrap_or("");
    is_refusal(error).then(|| error.to_owned())
}

/// Whether an etcd error says "not now" (an election, a slow commit) rather than "no".
pub fn says_not_yet(detail: &str) -> bool {
    [
        "leader changed",
        "no leader",
        "request timed out",
        "too many requests",
    ]
    .iter()
    .any(|w| detail.contains(w))
}

/// Classifies what the client saw, where the client's words are reliable. `None` means the client
/// error says only that the connection went away: the member's log has to say why.
pub fn classify_client_error(error: &str) -> Option<Class> {
    let e = error.to_ascii_lowercase();
    if e.contains("unknownissuer")
        || e.contains("unknown issuer")
        || e.contains("unknown authority")
    {
        Some(Class::UnknownAuthority)
    } else if e.contains("notvalidforname") || e.contains("not valid for name") {
        Some(Class::HostnameMismatch)
    } else if e.contains("certificate expired")
        || e.contains("expired") && e.contains("invalid peer certificate")
    {
        Some(Class::Expired)
    } else if e.contains("does not allow extended key usage") || e.contains("invalidpurpose") {
        Some(Class::IncompatibleKeyUsage)
    } else if e.contains("notvalidyet") || e.contains("not valid yet") {
        Some(Class::NotYetValid)
    } else if e.contains("permission denied") {
        Some(Class::PermissionDenied)
    } else if e.contains("user name not found")
        || e.contains("authentication failed")
        || e.contains("invalid auth token")
        || e.contains("user name is empty")
    {
        Some(Class::AuthFailed)
    } else if e.contains("http request to an https server") {
        Some(Class::NotTls)
    } else if e.contains("connection refused") {
        Some(Class::Unavailable)
    } else if e.contains("timed out") || e.contains("deadline has elapsed") {
        // Not trusted alone (see `attributed`): a member may still log why.
        Some(Class::Timeout)
    } else if e.contains("etcdserver:") {
        Some(Class::ServerError)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as etcd 3.4.23 and 3.5.1 write them with --logger zap.
    const NO_CERT_34: &str = r#"{"level":"warn","ts":"2026-11-28T15:51:52.540Z","caller":"embed/config_logging.go:287","msg":"rejected connection","remote-addr":"127.0.0.1:46262","server-name":"localhost","error":"tls: client didn't provide a certificate"}"#;
    const NO_CERT_35: &str = r#"{"level":"warn","ts":"2026-11-28T15:52:00.858Z","caller":"embed/config_logging.go:169","msg":"rejected connection","remote-addr":"127.0.0.1:58786","server-name":"localhost","error":"tls: client didn't provide a certificate"}"#;

    #[test]
    fn log_times_read_in_utc_and_in_a_local_zone() {
        let utc = parse_ts("2026-11-29T19:05:31.637Z").expect("utc");
        let paris = parse_ts("2026-11-29T20:05:31.637+0100").expect("local");
        assert_eq!(utc, paris);
    }

    #[test]
    fn no_shared_version_or_cipher_suite_from_the_members_words() {
        let cipher = r#"{"level":"warn","ts":"2026-11-30T00:53:14.174Z","caller":"embed/config_logging.go:287","msg":"rejected connection","remote-addr":"127.0.0.1:48517","server-name":"localhost","error":"tls: no cipher suite supported by both client and server"}"#;
        let version = r#"{"level":"warn","ts":"2026-11-30T00:53:14.556Z","caller":"embed/config_logging.go:169","msg":"rejected connection","remote-addr":"127.0.0.1:43001","server-name":"","error":"tls: client offered only unsupported versions: [304]"}"#;
        let error = rejected_connection_error(cipher).expect("a rejection");
        assert_eq!(classify_tls_error(&error), Class::NoSharedCipher);
        let error = rejected_connection_error(version).expect("a rejection");
        assert_eq!(classify_tls_error(&error), Class::NoSharedVersion);
    }

    #[test]
    fn a_crl_the_member_cannot_read() {
        let line = r#"{"level":"warn","ts":"2026-11-30T01:20:14.174Z","caller":"embed/config_logging.go:169","msg":"rejected connection","remote-addr":"127.0.0.1:48517","server-name":"","error":"asn1: structure error: tags don't match (16 vs {class:1 tag:7 length:97 isCompound:true}) {optional:false explicit:false application:false private:false defaultValue:<nil> tag:<nil> stringType:0 timeType:0 set:false omitEmpty:false} CertificateList @2"}"#;
        let error = rejected_connection_error(line).expect("a rejection");
        assert_eq!(classify_tls_error(&error), Class::CrlUnreadable);
    }

    #[test]
    fn no_client_certificate_from_both_versions() {
        for line in [NO_CERT_34, NO_CERT_35] {
            let error = rejected_connection_error(line).expect("a rejection");
            assert_eq!(classify_tls_error(&error), Class::NoClientCertificate);
        }
    }

    #[test]
    fn other_lines_are_not_rejections() {
        let serving = r#"{"level":"info","ts":"2026-11-28T15:51:49.636Z","caller":"embed/etcd.go:587","msg":"serving peer traffic","address":"127.0.0.1:24801"}"#;
        assert_eq!(rejected_connection_error(serving), None);
        assert_eq!(
            rejected_connection_error("WARNING: 2026/11/28 grpc: rejected connection"),
            None
        );
    }

    #[test]
    fn hanging_up_is_no_refusal() {
        for error in [
            "EOF",
            "remote error: tls: bad certificate",
            "read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer",
        ] {
            assert!(!is_refusal(error), "{error}");
        }
        assert!(is_refusal("tls: client didn't provide a certificate"));
    }

    #[test]
    fn certificate_errors() {
        let cases = [
            ("x509: certificate signed by unknown authority", Class::UnknownAuthority),
            (
                "x509: certificate has expired or is not yet valid: current time 2026-11-28T16:00:00Z is after 2026-11-27T16:00:00Z",
                Class::Expired,
            ),
            (
                "x509: certificate has expired or is not yet valid: current time 2026-11-28T16:00:00Z is before 2026-11-30T16:00:00Z",
                Class::NotYetValid,
            ),
            ("x509: certificate specifies an incompatible key usage", Class::IncompatibleKeyUsage),
            ("transport: certificate serial 1d3f revoked", Class::Revoked),
            ("tls: first record does not look like a TLS handshake", Class::NotTls),
            ("client certificate authentication failed", Class::NameNotAllowed),
            ("x509: certificate is valid for 127.0.0.13, not 127.0.0.1", Class::HostnameMismatch),
            ("x509: certificate relies on legacy Common Name field, use SANs instead", Class::HostnameMismatch),
            ("x509: certificate is not valid for any names, but wanted to match localhost", Class::HostnameMismatch),
            (r#"tls: "127.0.0.1" does not match any of DNSNames ["other.example"]"#, Class::HostnameMismatch),
            ("something new", Class::TlsRejected),
        ];
        for (error, class) in cases {
            assert_eq!(classify_tls_error(error), class, "{error}");
        }
    }

    #[test]
    fn client_errors() {
        let cases = [
            ("invalid peer certificate: UnknownIssuer", Some(Class::UnknownAuthority)),
            (
                "invalid peer certificate: NotValidForNameContext { expected: DnsName(\"etcd.example\"), presented: [] }",
                Some(Class::HostnameMismatch),
            ),
            ("status: PermissionDenied, message: \"etcdserver: permission denied\"", Some(Class::PermissionDenied)),
            ("tcp connect error: Connection refused (os error 111)", Some(Class::Unavailable)),
            ("received fatal alert: BadCertificate", None),
            ("broken pipe", None),
        ];
        for (error, class) in cases {
            assert_eq!(classify_client_error(error), class, "{error}");
        }
    }
}
