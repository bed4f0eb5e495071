//! Where etcd 3.4 and 3.5 differ on the security surface, each version is held to what it does:
//! the scenarios in scripts/ keep to what both do, and this says what each does apart.

mod common;

use common::{etcd_35, Case};
use etcdscript::error::exit_code;

/// One member that allows one TLS 1.2 cipher suite, and a client certificate.
const ONE_SUITE: &str = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let client = issue(ca, "client");
let c = cluster(["m1"], #{ ca: ca, cert: server, args: ["--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"] });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
"#;

/// A member told to allow one TLS 1.2 suite, and a client that speaks only TLS 1.3 with a suite
/// that is not on that list. etcd 3.4 serves TLS 1.3, where Go ignores `--cipher-suites`, so
/// the client is served; 3.5 serves at most TLS 1.2, so they share no version.
#[test]
fn tls_13_against_a_cipher_suite_list_differs_by_version() {
    let script = r#"
kv_set(m1, "k", "v", client);
kv_get(m1, "k", #{ cert: client, tls_min: "1.3", cipher_suites: ["TLS_AES_256_GCM_SHA384"] });
"#;
    let run = Case::new("tls13.rhai")
        .script(ONE_SUITE)
        .script(script)
        .run();
    if etcd_35() {
        run.code(exit_code::CHECK_FAILED).stdout_has(
            "get k via m1 as client, TLS 1.3 only, cipher suites TLS_AES_256_GCM_SHA384: \
             rejected: no shared tls version (from m1's log)",
        );
    } else {
        run.code(0).stdout_has(
            "get k via m1 as client, TLS 1.3 only, cipher suites TLS_AES_256_GCM_SHA384: v",
        );
    }
}

/// The same client, limited to TLS 1.2 and a suite off the list, is refused by both: the list
/// holds for TLS 1.2.
#[test]
fn tls_12_off_the_cipher_suite_list_is_refused_by_both_versions() {
    let script = r#"
kv_get(m1, "k", #{ cert: client, tls_max: "1.2", cipher_suites: ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"] });
"#;
    Case::new("tls12.rhai")
        .script(ONE_SUITE)
        .script(script)
        .run()
        .code(exit_code::CHECK_FAILED)
        .stdout_has("rejected: no shared cipher suite (from m1's log)");
}

/// A member without `http_listener` has no plain-text port to dial: the script is told so, and
/// nothing is dialed.
#[test]
fn the_http_listener_must_be_planned_to_be_dialed() {
    Case::new("no-listener.rhai")
        .script(common::ONE_MEMBER)
        .script(r#"kv_get(m1, "k", #{ listener: "http" });"#)
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has(
            "member m1 has no plain-text listener: plan its cluster with `http_listener: true`",
        );
}
