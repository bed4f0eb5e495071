//! `etcdscript audit` against etcd started by hand, outside etcdscript, with a PKI made by
//! openssl: once configured as the CIS benchmark asks, and once with each defect. The audit
//! passes the good one and names the defect in each bad one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a hand-started etcd may take to serve.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PKI as an operator makes it with openssl: the etcd CA, a server certificate for
/// localhost and 127.0.0.1 (also used on the peer port), a client certificate, the same server
/// certificate already expired, and another CA (Kubernetes') with its key. The etcd CA's key
/// and the client's are in PKCS#1 (`RSA PRIVATE KEY`), as kubeadm writes them.
fn pki(dir: &Path) {
    let run = |line: &str| openssl(dir, &line.split(' ').collect::<Vec<_>>());
    run("genrsa -traditional -out ca.key 2048");
    run("req -x509 -key ca.key -out ca.crt -days 3650 -subj /CN=ca");
    run("req -x509 -newkey rsa:2048 -nodes -keyout k8s-ca.key -out k8s-ca.crt -days 3650 -subj /CN=k8s-ca");
    run("genrsa -traditional -out client.key 2048");
    run("req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=etcd-server");
    run("req -new -key client.key -out client.csr -subj /CN=etcd-client");
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
    )
    .unwrap();
    for name in ["server", "client"] {
        run(&format!(
            "x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out {name}.crt -days 365 -extfile {name}.ext"
        ));
    }
    // An expired server certificate: `openssl ca` sets the dates.
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n",
    )
    .unwrap();
    run("ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in server.csr -out expired.crt -startdate 20200101000000Z -enddate 20200201000000Z -extfile server.ext -notext");
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
        std::fs::read_to_string(dir.join("k8s-ca.crt")).unwrap()
    );
    std::fs::write(dir.join("ca-and-k8s.crt"), bundle).unwrap();
    let key = std::fs::read_to_string(dir.join("ca.key")).unwrap();
    assert!(
        key.contains("BEGIN RSA PRIVATE KEY"),
        "PKCS#1, as kubeadm: {key}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An etcd started by hand; killed when dropped.
struct HandStarted {
    child: Child,
    client: u16,
    peer: u16,
}

impl Drop for HandStarted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A deployment's defect, or none.
#[derive(Clone, Copy, Debug)]
enum Defect {
    None,
    ClientCertAuthOff,
    AutoTls,
    PeerAutoTls,
    PeerClientCertAuthOff,
    K8sCaTrusted,
    ExpiredServerCert,
}

fn start(dir: &Path, defect: Defect) -> HandStarted {
    let etcd = std::env::var("ETCDSCRIPT_ETCD").unwrap_or_else(|_| "etcd".into());
    let (client, peer) = (free_port(), free_port());
    let data = dir.join(format!("data-{defect:?}"));
    let p = |f: &str| dir.join(f).display().to_string();
    let mut a: Vec<String> = vec![
        "--name=n1".into(),
        format!("--data-dir={}", data.display()),
        format!("--listen-client-urls=https://127.0.0.1:{client}"),
        format!("--advertise-client-urls=https://127.0.0.1:{client}"),
        format!("--listen-peer-urls=https://127.0.0.1:{peer}"),
        format!("--initial-advertise-peer-urls=https://127.0.0.1:{peer}"),
        format!("--initial-cluster=n1=https://127.0.0.1:{peer}"),
        "--logger=zap".into(),
    ];
    let server = if matches!(defect, Defect::ExpiredServerCert) {
        "expired.crt"
    } else {
        "server.crt"
    };
    if matches!(defect, Defect::AutoTls) {
        a.push("--auto-tls".into());
    } else {
        a.push(format!("--cert-file={}", p(server)));
        a.push(format!("--key-file={}", p("server.key")));
    }
    if !matches!(defect, Defect::ClientCertAuthOff) {
        a.push("--client-cert-auth".into());
        let trusted = if matches!(defect, Defect::K8sCaTrusted) {
            "ca-and-k8s.crt"
        } else {
            "ca.crt"
        };
        a.push(format!("--trusted-ca-file={}", p(trusted)));
    }
    if matches!(defect, Defect::PeerAutoTls) {
        a.push("--peer-auto-tls".into());
    } else {
        a.push(format!("--peer-cert-file={}", p("server.crt")));
        a.push(format!("--peer-key-file={}", p("server.key")));
    }
    if !matches!(defect, Defect::PeerClientCertAuthOff) {
        a.push("--peer-client-cert-auth".into());
        a.push(format!("--peer-trusted-ca-file={}", p("ca.crt")));
    }
    let log = std::fs::File::create(dir.join(format!("etcd-{defect:?}.log"))).unwrap();
    let child = Command::new(etcd)
        .args(&a)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("etcd");
    let started = HandStarted {
        child,
        client,
        peer,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    let log = dir.join(format!("etcd-{defect:?}.log"));
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("serving client traffic") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd ({defect:?}) did not serve within {READY_TIMEOUT:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started
}

/// Runs the audit; returns (exit code, findings as (title, result)).
fn audit(dir: &Path, e: &HandStarted) -> (i32, Vec<(String, String)>, String) {
    audit_all(dir, &[e])
}

/// Runs the audit of every member in `es`, each an endpoint of its own.
fn audit_all(dir: &Path, es: &[&HandStarted]) -> (i32, Vec<(String, String)>, String) {
    let (code, findings, out) = audit_report(dir, es, true);
    let findings = findings.into_iter().map(|(t, r, _)| (t, r)).collect();
    (code, findings, out)
}

/// Runs the audit of `es`, with the CA's key or without; returns the exit code, the findings as
/// (title, result, evidence), and what it printed.
fn audit_report(
    dir: &Path,
    es: &[&HandStarted],
    ca_key: bool,
) -> (i32, Vec<(String, String, String)>, String) {
    let json = dir.join("audit.json");
    let _ = std::fs::remove_file(&json);
    let p = |f: &str| dir.join(f).display().to_string();
    let list = |port: fn(&HandStarted) -> u16| {
        es.iter()
            .map(|e| format!("https://127.0.0.1:{}", port(e)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let out = Command::new(common::bin())
        .args([
            "audit",
            "--endpoints",
            &list(|e| e.client),
            "--peer-endpoints",
            &list(|e| e.peer),
            "--cacert",
            &p("ca.crt"),
            "--cert",
            &p("client.crt"),
            "--key",
            &p("client.key"),
            "--other-ca",
            &p("k8s-ca.crt"),
            "--other-ca-key",
            &p("k8s-ca.key"),
            "--json",
            &json.display().to_string(),
        ])
        .args(if ca_key {
            vec!["--ca-key".to_owned(), p("ca.key")]
        } else {
            vec![]
        })
        .output()
        .expect("etcdscript audit");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned()
        + String::from_utf8_lossy(&out.stderr).as_ref();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&json).unwrap_or_else(|_| panic!("no JSON report:\n{stdout}")),
    )
    .expect("JSON report");
    let findings = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["title"].as_str().unwrap().to_owned(),
                f["result"].as_str().unwrap().to_owned(),
                f["evidence"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (out.status.code().unwrap_or(-1), findings, stdout)
}

fn failed(findings: &[(String, String)]) -> Vec<String> {
    findings
        .iter()
        .filter(|(_, r)| r == "fail")
        .map(|(t, _)| t.clone())
        .collect()
}

fn pki_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    pki(&path);
    (dir, path)
}

#[test]
fn a_deployment_configured_as_the_benchmark_asks_passes() {
    let (_keep, dir) = pki_dir();
    let e = start(&dir, Defect::None);
    let (code, findings, out) = audit(&dir, &e);
    // What each refusal looked like from the client's side, for whoever reads the log.
    eprintln!("{out}");
    assert_eq!(code, 0, "{out}");
    assert_eq!(findings.len(), 12, "{out}");
    let rbac = "authentication and role-based access control on audited-1";
    for (title, result) in &findings {
        let want = if title == rbac { "info" } else { "pass" };
        assert_eq!(result, want, "{title}:\n{out}");
    }
}

/// etcdctl beside the etcd under test (Debian's etcd-client, or the wheel's), as an operator
/// would use it.
fn etcdctl(dir: &Path, e: &HandStarted, args: &[&str]) {
    let etcd = PathBuf::from(std::env::var("ETCDSCRIPT_ETCD").unwrap_or_else(|_| "etcd".into()));
    let beside = etcd.with_file_name("etcdctl");
    let bin = if beside.is_file() {
        beside
    } else {
        PathBuf::from("etcdctl")
    };
    let p = |f: &str| dir.join(f).display().to_string();
    let out = Command::new(&bin)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=https://127.0.0.1:{}", e.client))
        .args(["--cacert", &p("ca.crt"), "--cert", &p("client.crt")])
        .args(["--key", &p("client.key")])
        .args(args)
        .output()
        .expect("etcdctl");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether RBAC is on is reported (info), never judged: off, then on once an operator enables
/// it with etcdctl; with the CA's key (a certificate naming no user tries to read) and without
/// it (the gateway's answer).
#[test]
fn rbac_is_reported_off_and_on_with_the_ca_key_or_without() {
    let (_keep, dir) = pki_dir();
    let e = start(&dir, Defect::None);
    let rbac = "authentication and role-based access control on audited-1";
    let seen = |ca_key: bool| {
        let (code, findings, out) = audit_report(&dir, &[&e], ca_key);
        assert_eq!(code, 0, "an observation never fails the audit:\n{out}");
        let (_, result, evidence) = findings
            .iter()
            .find(|(t, _, _)| t == rbac)
            .unwrap_or_else(|| panic!("no RBAC finding:\n{out}"))
            .clone();
        assert_eq!(result, "info", "{out}");
        evidence
    };
    for ca_key in [true, false] {
        assert!(seen(ca_key).starts_with("off: "), "{}", seen(ca_key));
    }
    // The client's CN becomes a user with the root role, so that it can still do everything.
    for args in [
        &["user", "add", "root:root-pw", "--interactive=false"][..],
        &["user", "grant-role", "root", "root"],
        &[
            "user",
            "add",
            "etcd-client:client-pw",
            "--interactive=false",
        ],
        &["user", "grant-role", "etcd-client", "root"],
        &["auth", "enable"],
    ] {
        etcdctl(&dir, &e, args);
    }
    assert_eq!(
        seen(true),
        "on: a certificate of the CA whose name is no user is refused (permission denied)"
    );
    assert!(
        seen(false).starts_with("on: the gRPC gateway refuses"),
        "{}",
        seen(false)
    );
}

#[test]
fn each_defect_is_named_by_the_findings_it_fails() {
    let (_keep, dir) = pki_dir();
    // Each title as the audit writes it, for the one client endpoint or the one peer endpoint.
    let client = |t: &str| format!("{t} on audited-1");
    let peer = |t: &str| format!("{t} on audited-peers-1");
    let cases: &[(Defect, &[&str])] = &[
        (
            Defect::ClientCertAuthOff,
            &[
                "a client without a certificate is refused",
                "a client certificate of another CA is refused",
                "an expired client certificate of the CA is refused",
                "a certificate of the CA without the client usage is refused",
                "a certificate of the other CA (--other-ca) is refused: etcd has a CA of its own",
            ],
        ),
        (
            Defect::AutoTls,
            &["the client port serves TLS with a certificate of the CA, for its name"],
        ),
        (
            Defect::PeerAutoTls,
            &["the peer port serves TLS with a certificate of the CA (not --peer-auto-tls)"],
        ),
        (
            Defect::PeerClientCertAuthOff,
            &[
                "the peer port refuses a peer without a certificate",
                "the peer port refuses a certificate of another CA",
            ],
        ),
        (
            Defect::K8sCaTrusted,
            &["a certificate of the other CA (--other-ca) is refused: etcd has a CA of its own"],
        ),
        (
            Defect::ExpiredServerCert,
            &[
                "the client port serves TLS with a certificate of the CA, for its name",
                "the server certificate has 30 days or more left",
            ],
        ),
    ];
    for (defect, expected) in cases {
        let e = start(&dir, *defect);
        let (code, findings, out) = audit(&dir, &e);
        drop(e);
        assert_eq!(code, 1, "{defect:?}: the audit must fail:\n{out}");
        let mut got = failed(&findings);
        got.sort();
        let mut want: Vec<String> = expected
            .iter()
            .map(|t| {
                if t.starts_with("the peer port") {
                    peer(t)
                } else {
                    client(t)
                }
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "{defect:?}:\n{out}");
    }
}

/// A remote cluster (here, a member of the run's own, reached by its URL as any outside
/// endpoint would be) takes writes only under its prefix, and loses them at the end.
#[test]
fn a_remote_cluster_is_written_only_under_its_prefix_and_cleaned() {
    common::Case::new("remote.rhai")
        .script(common::ONE_MEMBER)
        .script(
            r#"let r = remote_cluster("r", #{ endpoints: [m1.client_url], ca: ca, identity: client, prefix: "audit/" });
kv_set(r, "audit/x", "1", client);
assert_eq(kv_get(m1, "audit/x", client), "1");
finding("own", "what was written through the remote cluster reads back", || {
    assert_eq(kv_get(r, "audit/x", client), "1");
});
"#,
        )
        .run()
        .code(0)
        .stdout_has("remote cluster r: members r-1 (endpoints on stderr with -v); CA ca, as client; writes only under audit/")
        .stdout_has("put audit/x = 1 via r as client: ok")
        .stdout_has("finding own (what was written through the remote cluster reads back): pass")
        .stdout_has("teardown: deleted the 1 key(s) written on r");
    common::Case::new("outside.rhai")
        .script(common::ONE_MEMBER)
        .script(r#"let r = remote_cluster("r", #{ endpoints: [m1.client_url], ca: ca, identity: client, prefix: "audit/" });"#)
        .script(r#"kv_set(r, "elsewhere", "1", client);"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has("remote cluster r: `elsewhere` is outside the prefix audit/ that writes stay under");
    common::Case::new("stop.rhai")
        .script(common::ONE_MEMBER)
        .script(r#"let r = remote_cluster("r", #{ endpoints: [m1.client_url], ca: ca, identity: client });"#)
        .script(r#"stop_member(r.member("r-1"));"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has("member r-1 is remote; etcdscript does not start, stop or change a cluster it did not start");
}

/// Scripts read PEM files only from the --pki directory, and only when given one.
#[test]
fn loading_reads_only_the_pki_directory() {
    common::Case::new("nopki.rhai")
        .script(r#"load_ca("x", #{ cert: "ca.crt" });"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has("no directory is open to scripts: run with `--pki DIR`");
    let (_keep, dir) = pki_dir();
    let d = dir.display().to_string();
    common::Case::new("escape.rhai")
        .arg("--pki")
        .arg(&d)
        .script(r#"load_ca("x", #{ cert: "../../etc/passwd" });"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has("is outside the --pki directory");
    common::Case::new("mismatch.rhai")
        .arg("--pki")
        .arg(&d)
        .script(r#"load_cert("x", #{ cert: "server.crt", key: "client.key" });"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has("the key is not the certificate's");
    common::Case::new("not-a-ca.rhai")
        .arg("--pki")
        .arg(&d)
        .script(r#"load_ca("x", #{ cert: "server.crt" });"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has("is no CA");
    // With its key, a loaded CA signs certificates that chain to the operator's own CA.
    common::Case::new("mint.rhai")
        .arg("--pki")
        .arg(&d)
        .script(r#"let ca = load_ca("etcd-ca", #{ cert: "ca.crt", key: "ca.key" });
let mine = load_cert("mine", #{ cert: "client.crt", key: "client.key" });
let minted = issue(ca, "minted", #{ not_before_days: -3, not_after_days: -1 });
show_cert(minted);
let keyless = load_ca("etcd-ca-no-key", #{ cert: "ca.crt" });
assert(!keyless.can_sign && ca.can_sign, "only the CA with its key signs");
issue(keyless, "nope");
"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stdout_has("ca etcd-ca: loaded from ca.crt, rsa, with its key (it signs)")
        .stdout_has("cert mine: loaded from client.crt: CN=etcd-client, usage client, signed by CN=ca, rsa, valid for")
        .stdout_has("show minted: CN=minted, usage client, signed by etcd-ca, ec-p256, expired 1 day ago")
        .stderr_has("ca `etcd-ca-no-key` was loaded without its key, so it signs nothing");
}

/// Each endpoint is audited on its own: a bad member beside a good one is named, and only it.
#[test]
fn a_bad_member_beside_a_good_one_is_named() {
    let (_keep, dir) = pki_dir();
    let good = start(&dir, Defect::None);
    let bad = start(&dir, Defect::ClientCertAuthOff);
    let (code, findings, out) = audit_all(&dir, &[&good, &bad]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(findings.len(), 24, "{out}");
    let failed = failed(&findings);
    assert!(!failed.is_empty(), "{out}");
    assert!(failed.iter().all(|t| t.ends_with(" on audited-2")), "{out}");
}

/// A URL that is no endpoint is the command line's mistake; a remote member has no peer URL.
#[test]
fn bad_endpoints_and_remote_peer_urls_are_refused_plainly() {
    let (_keep, dir) = pki_dir();
    let p = |f: &str| dir.join(f).display().to_string();
    let out = Command::new(common::bin())
        .args([
            "audit",
            "--endpoints",
            "127.0.0.1:2379",
            "--cacert",
            &p("ca.crt"),
        ])
        .args(["--cert", &p("client.crt"), "--key", &p("client.key")])
        .output()
        .expect("etcdscript audit");
    assert_eq!(out.status.code(), Some(2));
    common::assert_has(
        &String::from_utf8_lossy(&out.stderr),
        "`127.0.0.1:2379` is not an endpoint: give https://host:port",
    );
    common::Case::new("remote-peer-url.rhai")
        .script(common::ONE_MEMBER)
        .script(r#"let r = remote_cluster("r", #{ endpoints: [m1.client_url], ca: ca, identity: client });"#)
        .script(r#"print(r.member("r-1").peer_url);"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has("member r-1 is remote: its peer URL is not known here");
}

/// An observation reports what its probe saw and never fails the run; a probe that saw nothing
/// of the cluster, or says nothing, is the script's mistake. A caught refusal has a class.
#[test]
fn observe_reports_a_probe_and_refuses_one_that_sees_nothing() {
    common::Case::new("observe.rhai")
        .script(common::ONE_MEMBER)
        .script(
            r#"let stranger = issue(ca("other"), "stranger");
let seen = observe("mine", "what a stranger meets", || {
    let class = "";
    try { kv_get(m1, "k", stranger); } catch (e) { class = e.class; }
    "refused: " + class
});
assert_eq(seen, "refused: unknown authority");
observe("mine", "not here", || { kv_get(m1, "k", client); not_checkable("no reason"); });
"#,
        )
        .run()
        .code(0)
        .stdout_has("finding mine (what a stranger meets): info: refused: unknown authority")
        .stdout_has("finding mine (not here): not checkable: no reason");
    common::Case::new("observe-int.rhai")
        .script(common::ONE_MEMBER)
        .script(r#"observe("mine", "a number", || { kv_get(m1, "k", client); 42 });"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has(
            "observe(\"mine\"): its probe must return a string saying what it saw, got int",
        );
    common::Case::new("observe-nothing.rhai")
        .script(common::ONE_MEMBER)
        .script(r#"observe("mine", "nothing", || "all fine");"#)
        .run()
        .code(etcdscript::error::exit_code::SCRIPT_ERROR)
        .stderr_has(
            "observe(\"mine\"): its probe made no operation, so it saw nothing of the cluster",
        );
}
