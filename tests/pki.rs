//! Certificates made by etcdscript, checked by an independent implementation: `openssl verify`
//! and `openssl x509`. Each negative check stands beside a positive control.

use std::path::Path;
use std::process::Command;

use etcdscript::pki::{Ca, CaSpec, CertSpec, KeyKind, Usage};

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn spec(usage: &[Usage]) -> CertSpec {
    CertSpec {
        cn: "localhost".into(),
        sans: vec!["localhost".into(), "127.0.0.1".into()],
        usage: usage.to_vec(),
        not_before_days: None,
        not_after_days: 365,
        not_after_secs: None,
        key: KeyKind::EcP256,
        chain: false,
    }
}

/// A leaf of an intermediate CA verifies against the root only with the intermediate beside it:
/// in its own file (`chain`) or given apart; and against the intermediate as trusted alone.
#[test]
fn a_chain_verifies_against_the_root_only_with_its_intermediate() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::create(dir.path(), "root", &CaSpec::default(), None).unwrap();
    let mid = Ca::create(dir.path(), "mid", &CaSpec::default(), Some(&root)).unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", s(&root.cert_path), s(&mid.cert_path)]);
    assert!(ok, "the intermediate is signed by the root: {text}");
    let leaf = mid
        .issue(dir.path(), "leaf", &spec(&[Usage::Client]))
        .unwrap();
    let chained = mid
        .issue(
            dir.path(),
            "chained",
            &CertSpec {
                chain: true,
                ..spec(&[Usage::Client])
            },
        )
        .unwrap();
    let pem = std::fs::read_to_string(&chained.cert_path).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "{pem}");
    let (ok, text) = openssl(&["verify", "-CAfile", s(&root.cert_path), s(&leaf.cert_path)]);
    assert!(
        !ok,
        "a leaf verified against the root without its intermediate: {text}"
    );
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        s(&root.cert_path),
        "-untrusted",
        s(&chained.cert_path),
        s(&chained.cert_path),
    ]);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&[
        "verify",
        "-partial_chain",
        "-CAfile",
        s(&mid.cert_path),
        s(&leaf.cert_path),
    ]);
    assert!(ok, "{text}");
}

#[test]
fn leaf_verifies_against_its_ca_and_not_another() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::create(dir.path(), "ca", &CaSpec::default(), None).unwrap();
    let other = Ca::create(dir.path(), "other", &CaSpec::default(), None).unwrap();
    let cert = ca
        .issue(dir.path(), "server", &spec(&[Usage::Server, Usage::Client]))
        .unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", s(&ca.cert_path), s(&cert.cert_path)]);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&["verify", "-CAfile", s(&other.cert_path), s(&cert.cert_path)]);
    assert!(
        !ok,
        "a certificate verified against a CA that did not sign it: {text}"
    );
}

#[test]
fn sans_and_usages_are_the_ones_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::create(dir.path(), "ca", &CaSpec::default(), None).unwrap();
    let both = ca
        .issue(dir.path(), "both", &spec(&[Usage::Server, Usage::Client]))
        .unwrap();
    let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", s(&both.cert_path)]);
    assert!(ok, "{text}");
    assert!(
        text.contains("DNS:localhost, IP Address:127.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    assert!(
        text.contains("Subject: CN=localhost") || text.contains("Subject: CN = localhost"),
        "{text}"
    );

    let client = ca
        .issue(dir.path(), "client", &spec(&[Usage::Client]))
        .unwrap();
    let (_, text) = openssl(&["x509", "-noout", "-text", "-in", s(&client.cert_path)]);
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");
    // openssl checks the purpose too: a client-only certificate is no SSL server.
    let (ok, _) = openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        s(&ca.cert_path),
        s(&client.cert_path),
    ]);
    assert!(ok);
    let (ok, _) = openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        s(&ca.cert_path),
        s(&client.cert_path),
    ]);
    assert!(!ok, "a client-only certificate passed as an SSL server");
}

#[test]
fn validity_relative_to_now() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::create(dir.path(), "ca", &CaSpec::default(), None).unwrap();
    let mut expired = spec(&[Usage::Client]);
    expired.not_before_days = Some(-10);
    expired.not_after_days = -1;
    let expired = ca.issue(dir.path(), "expired", &expired).unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", s(&ca.cert_path), s(&expired.cert_path)]);
    assert!(!ok && text.contains("certificate has expired"), "{text}");
    assert_eq!(expired.validity(), "expired 1 day ago");

    let mut future = spec(&[Usage::Client]);
    future.not_before_days = Some(2);
    future.not_after_days = 30;
    let future = ca.issue(dir.path(), "future", &future).unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", s(&ca.cert_path), s(&future.cert_path)]);
    assert!(!ok && text.contains("not yet valid"), "{text}");
    assert_eq!(future.validity(), "not valid for 2 days yet");

    let fresh = ca
        .issue(dir.path(), "fresh", &spec(&[Usage::Client]))
        .unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", s(&ca.cert_path), s(&fresh.cert_path)]);
    assert!(ok, "{text}");
    assert_eq!(fresh.validity(), "valid for 365 days");
}

#[test]
fn a_certificate_that_ends_before_it_starts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::create(dir.path(), "ca", &CaSpec::default(), None).unwrap();
    let mut bad = spec(&[Usage::Client]);
    bad.not_before_days = Some(5);
    bad.not_after_days = 1;
    let err = ca.issue(dir.path(), "bad", &bad).unwrap_err().to_string();
    assert!(err.contains("end before it starts"), "{err}");
}

#[test]
fn rsa_keys_like_the_tutorial() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::create(
        dir.path(),
        "ca",
        &CaSpec {
            key: KeyKind::Rsa2048,
            days: 10,
        },
        None,
    )
    .unwrap();
    let mut leaf = spec(&[Usage::Server]);
    leaf.key = KeyKind::Rsa2048;
    let cert = ca.issue(dir.path(), "server", &leaf).unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", s(&ca.cert_path), s(&cert.cert_path)]);
    assert!(ok, "{text}");
    let (_, text) = openssl(&["x509", "-noout", "-text", "-in", s(&cert.cert_path)]);
    assert!(
        text.contains("Public-Key: (2048 bit)") && text.contains("rsaEncryption"),
        "{text}"
    );
}

#[test]
fn revoked_serials_are_on_the_crl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::create(dir.path(), "ca", &CaSpec::default(), None).unwrap();
    let kept = ca
        .issue(dir.path(), "kept", &spec(&[Usage::Client]))
        .unwrap();
    let stolen = ca
        .issue(dir.path(), "stolen", &spec(&[Usage::Client]))
        .unwrap();
    let verify = |c: &Path| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CRLfile",
            s(&ca.crl_path),
            "-CAfile",
            s(&ca.cert_path),
            s(c),
        ])
    };
    let (ok, text) = verify(&stolen.cert_path);
    assert!(ok, "before revocation: {text}");
    assert!(ca.revoke(&stolen).unwrap());
    assert!(
        !ca.revoke(&stolen).unwrap(),
        "a second revocation is no news"
    );
    let (ok, text) = verify(&stolen.cert_path);
    assert!(!ok && text.contains("revoked"), "{text}");
    let (ok, text) = verify(&kept.cert_path);
    assert!(ok, "the certificate that was not revoked: {text}");
}

#[test]
fn private_keys_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::create(dir.path(), "ca", &CaSpec::default(), None).unwrap();
    let cert = ca.issue(dir.path(), "c", &spec(&[Usage::Client])).unwrap();
    for key in [dir.path().join("ca.key"), cert.key_path.clone()] {
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    let mode = std::fs::metadata(&cert.cert_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
}
