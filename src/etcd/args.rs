//! etcd's command line for one member, built from what the session knows of it. A pure function:
//! every flag etcdscript gives etcd is chosen here, and the tests below pin the choices.

use std::path::Path;

/// The certificates and checks of one member.
#[derive(Clone, Debug)]
pub struct MemberTls<'a> {
    /// The certificate the member serves clients with, and its key.
    pub cert: &'a Path,
    pub key: &'a Path,
    /// The certificate it serves its peer port with and dials its peers with, and its key.
    pub peer_cert: &'a Path,
    pub peer_key: &'a Path,
    /// etcd 3.5's `--peer-client-cert-file`: the certificate it dials peers with instead.
    pub peer_client: Option<(&'a Path, &'a Path)>,
    /// The CA the member trusts, for clients and for peers.
    pub ca: &'a Path,
    /// Whether clients must present a certificate (and its CN is their user name).
    pub client_cert_auth: bool,
    /// Whether peers must present a certificate.
    pub peer_cert_auth: bool,
    /// CRLs checked on client and on peer connections.
    pub client_crl: Option<&'a Path>,
    pub peer_crl: Option<&'a Path>,
}

/// Everything etcd is told about one member.
#[derive(Clone, Debug)]
pub struct MemberConfig<'a> {
    pub name: &'a str,
    pub data_dir: &'a Path,
    /// The address the member listens on.
    pub listen_ip: &'a str,
    /// The host name in its advertised URLs (what clients and peers dial).
    pub host: &'a str,
    pub client_port: u16,
    pub peer_port: u16,
    /// A second client port, in plain text.
    pub http_port: Option<u16>,
    /// `--initial-cluster`: `name=peer-url` for every member it starts with.
    pub initial_cluster: String,
    pub token: &'a str,
    /// Joining a running cluster (after `member add`) rather than forming a new one.
    pub joining: bool,
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    pub tls: MemberTls<'a>,
    /// The script's own flags, given last so that they win.
    pub extra: Vec<String>,
}

/// A member's peer URL.
pub fn peer_url(host: &str, port: u16) -> String {
    format!("https://{host}:{port}")
}

/// The command line of one member.
pub fn member_args(c: &MemberConfig) -> Vec<String> {
    let p = |p: &Path| p.display().to_string();
    let mut a: Vec<String> = Vec::new();
    let mut flag = |name: &str, value: String| {
        a.push(format!("--{name}"));
        a.push(value);
    };
    flag("name", c.name.to_owned());
    flag("data-dir", p(c.data_dir));
    flag("logger", "zap".into());
    flag("log-outputs", "stderr".into());
    // At debug level a member logs each failed dial to a peer at once, with the peer's ID and
    // the TLS error: who refused whom, and why (see etcd/evidence.rs).
    flag("log-level", "debug".into());
    let mut listen = format!("https://{}:{}", c.listen_ip, c.client_port);
    if let Some(port) = c.http_port {
        listen.push_str(&format!(",http://{}:{port}", c.listen_ip));
    }
    flag("listen-client-urls", listen);
    flag(
        "advertise-client-urls",
        format!("https://{}:{}", c.host, c.client_port),
    );
    flag(
        "listen-peer-urls",
        format!("https://{}:{}", c.listen_ip, c.peer_port),
    );
    flag("initial-advertise-peer-urls", peer_url(c.host, c.peer_port));
    flag("initial-cluster", c.initial_cluster.clone());
    flag("initial-cluster-token", c.token.to_owned());
    flag(
        "initial-cluster-state",
        if c.joining { "existing" } else { "new" }.into(),
    );
    flag("heartbeat-interval", c.heartbeat_ms.to_string());
    flag("election-timeout", c.election_ms.to_string());
    let t = &c.tls;
    flag("cert-file", p(t.cert));
    flag("key-file", p(t.key));
    flag("peer-cert-file", p(t.peer_cert));
    flag("peer-key-file", p(t.peer_key));
    if let Some((cert, key)) = t.peer_client {
        flag("peer-client-cert-file", p(cert));
        flag("peer-client-key-file", p(key));
    }
    flag("peer-trusted-ca-file", p(t.ca));
    // etcd demands a client certificate whenever it is given a client CA, with or without
    // --client-cert-auth (which decides only whether the CN is taken as the user name). So
    // certificates are optional only when etcd gets no client CA at all.
    if t.client_cert_auth {
        flag("trusted-ca-file", p(t.ca));
    }
    if let Some(crl) = t.client_crl {
        flag("client-crl-file", p(crl));
    }
    if let Some(crl) = t.peer_crl {
        flag("peer-crl-file", p(crl));
    }
    if t.client_cert_auth {
        a.push("--client-cert-auth".into());
    }
    if t.peer_cert_auth {
        a.push("--peer-client-cert-auth".into());
    }
    a.extend(c.extra.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(client_cert_auth: bool, joining: bool) -> Vec<String> {
        member_args(&MemberConfig {
            name: "m1",
            data_dir: Path::new("/w/members/m1.etcd"),
            listen_ip: "127.0.0.1",
            host: "localhost",
            client_port: 1001,
            peer_port: 1002,
            http_port: None,
            initial_cluster: "m1=https://localhost:1002".into(),
            token: "t",
            joining,
            heartbeat_ms: 25,
            election_ms: 250,
            tls: MemberTls {
                cert: Path::new("/w/pki/s.crt"),
                key: Path::new("/w/pki/s.key"),
                peer_cert: Path::new("/w/pki/s.crt"),
                peer_key: Path::new("/w/pki/s.key"),
                peer_client: None,
                ca: Path::new("/w/pki/ca.crt"),
                client_cert_auth,
                peer_cert_auth: true,
                client_crl: None,
                peer_crl: Some(Path::new("/w/pki/ca.crl")),
            },
            extra: vec!["--quota-backend-bytes".into(), "1000000".into()],
        })
    }

    fn value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    }

    #[test]
    fn listens_where_it_is_told_and_advertises_the_host() {
        let a = config(true, false);
        assert_eq!(
            value(&a, "--listen-client-urls"),
            Some("https://127.0.0.1:1001")
        );
        assert_eq!(
            value(&a, "--advertise-client-urls"),
            Some("https://localhost:1001")
        );
        assert_eq!(
            value(&a, "--initial-advertise-peer-urls"),
            Some("https://localhost:1002")
        );
        assert_eq!(value(&a, "--initial-cluster-state"), Some("new"));
        assert_eq!(value(&a, "--log-level"), Some("debug"));
        assert_eq!(value(&a, "--peer-crl-file"), Some("/w/pki/ca.crl"));
        assert_eq!(value(&a, "--client-crl-file"), None);
    }

    #[test]
    fn optional_client_certificates_give_etcd_no_client_ca() {
        let a = config(false, false);
        assert_eq!(value(&a, "--trusted-ca-file"), None);
        assert!(!a.iter().any(|x| x == "--client-cert-auth"));
        assert_eq!(value(&a, "--peer-trusted-ca-file"), Some("/w/pki/ca.crt"));
        let a = config(true, false);
        assert_eq!(value(&a, "--trusted-ca-file"), Some("/w/pki/ca.crt"));
        assert!(a.iter().any(|x| x == "--client-cert-auth"));
    }

    #[test]
    fn a_joining_member_joins_and_the_script_s_flags_come_last() {
        let a = config(true, true);
        assert_eq!(value(&a, "--initial-cluster-state"), Some("existing"));
        assert_eq!(a[a.len() - 2..], ["--quota-backend-bytes", "1000000"]);
    }
}
