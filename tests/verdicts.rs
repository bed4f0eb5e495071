//! Verdicts: no false pass, no false failure. Each test states a claim about etcd that is
//! true and one that is false, and checks that the tool tells them apart: `wait_healthy` and
//! `peer_refusal` blame only what involves their target, refusals a dialer logs are attributed,
//! classes match exactly, a failed check cannot be swallowed, and the runtime's own files never
//! meet the script's.

mod common;

use etcdscript::error::exit_code::{CHECK_FAILED, SCRIPT_ERROR};

use common::{etcdscript, run_text, Live};

const PKI: &str = r#"
let ca = ca("cluster-ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let client = issue(ca, "client");
let rogue_ca = ca("rogue-ca");
let rogue_cert = issue(rogue_ca, "rogue-server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
"#;

fn run(name: &str, body: &str) -> common::Run {
    common::Case::new(name).script(PKI).script(body).run()
}

#[track_caller]
fn passes(run: &common::Run) {
    run.code(0);
}

#[track_caller]
fn fails(run: &common::Run, code: i32, words: &str) {
    run.code(code).stderr_has(words);
}

// ---- wait_healthy tells the truth --------------------------------------------------------

/// A rogue started before the honest majority is healthy: the genuine members still form the
/// cluster, so waiting for one of them succeeds, and the claim that it was refused fails.
#[test]
fn a_rogue_started_first_does_not_fail_a_genuine_member() {
    let setup = r#"
let c = cluster(["infra1", "infra2", "infra3"], #{ ca: ca, cert: server });
spawn_member(c, "infra1");
spawn_member(c, "infra3", #{ cert: rogue_cert });
spawn_member(c, "infra2");
"#;
    let ok = run(
        "rogue-first.rhai",
        &format!("{setup}wait_healthy(c.member(\"infra1\"));\nkv_set(c.member(\"infra1\"), \"k\", \"v\", client);\nassert_eq(kv_get(c.member(\"infra2\"), \"k\", client), \"v\");\n"),
    );
    passes(&ok);
    let false_claim = run(
        "rogue-first-claim.rhai",
        &format!(
            "{setup}expect_error(|| wait_healthy(c.member(\"infra1\")), \"unknown authority\");\n"
        ),
    );
    fails(&false_claim, CHECK_FAILED, "the operation succeeded");
}

/// A cluster that can never form still fails long before its bound, with the class of the
/// refusal that prevents it; a rogue's own wait fails with the class its peers refused it for.
#[test]
fn a_cluster_that_cannot_form_fails_with_the_class_that_prevents_it() {
    let r = run(
        "never-forms.rhai",
        r#"
let server_only = issue(ca, "server-only", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server"] });
let bad = cluster(["b1", "b2", "b3"], #{ ca: ca, cert: server_only, health_timeout_ms: 60000 });
for name in bad.names { spawn_member(bad, name); }
expect_error(|| wait_healthy(bad), "incompatible key usage");
"#,
    );
    passes(&r);
}

/// On 3.5 (and 3.4), a member serving a certificate without the client usage refuses its own
/// gateway's loopback dial. That is no reason to call a cluster unhealthy that serves.
#[test]
fn a_member_refusing_its_own_gateway_is_still_healthy() {
    let r = run(
        "server-only-single.rhai",
        r#"
let server_only = issue(ca, "server-only", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server"] });
let c = cluster(["m1"], #{ ca: ca, cert: server_only });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
kv_set(m1, "k", "v", client);
assert_eq(kv_get(m1, "k", client), "v");
"#,
    );
    passes(&r);
}

/// A client refused while a member has lost its quorum is not the reason it is not healthy: the
/// wait ends in `timeout`, whatever outside clients are refused meanwhile.
#[test]
fn a_refused_client_is_not_blamed_on_the_target() {
    let text = format!(
        "{PKI}let c = cluster([\"m1\", \"m2\", \"m3\"], #{{ ca: ca, cert: server, health_timeout_ms: 4000 }});\n\
         for n in c.names {{ spawn_member(c, n); }}\nwait_healthy(c);\n\
         kill_member(c.member(\"m2\"));\nkill_member(c.member(\"m3\"));\nprint(\"ready\");\nwait_healthy(c.member(\"m1\"));\n"
    );
    let mut live = Live::start(&text, &[], &[]);
    live.wait_for("ready");
    let port = live.client_port("m1");
    // An outside client without a certificate, refused by m1 again and again during the wait.
    let knocker = common::Knocker::start(port, std::time::Duration::from_millis(50));
    let (code, stderr) = live.finish();
    drop(knocker);
    assert_eq!(code, CHECK_FAILED, "{stderr}");
    common::assert_has(&stderr, "wait healthy m1: rejected: timeout");
}

// ---- refusals seen by the dialing side are attributed ----------------------------------------

/// Members serve a certificate without the name their peers dial: each dialer refuses the
/// other's server certificate, and says so only in its own log.
#[test]
fn a_peer_server_certificate_refused_by_the_dialer_is_a_hostname_mismatch() {
    let r = run(
        "peer-wrong-name.rhai",
        r#"
let ip_only = issue(ca, "ip-only", #{ cn: "etcd", sans: ["127.0.0.1"], usage: ["server", "client"] });
let c = cluster(["m1", "m2", "m3"], #{ ca: ca, cert: ip_only, health_timeout_ms: 60000 });
for name in c.names { spawn_member(c, name); }
expect_error(|| wait_healthy(c, #{ cert: client, server_name: "127.0.0.1" }), "hostname mismatch");
expect_error(|| peer_refusal(c.member("m1")), "hostname mismatch");
"#,
    );
    passes(&r);
}

/// A peer client certificate naming another address than the one its connections come from is
/// refused for the name, and the member that refused says so.
#[test]
fn a_peer_certificate_for_another_address_is_a_hostname_mismatch() {
    let r = run(
        "peer-other-ip.rhai",
        r#"
let other_ip = issue(ca, "other-ip", #{ cn: "localhost", sans: ["127.0.0.13"], usage: ["server", "client"] });
let c = cluster(["infra1", "infra2", "infra3"], #{ ca: ca, cert: server });
spawn_member(c, "infra1");
spawn_member(c, "infra2");
wait_healthy(c);
spawn_member(c, "infra3", #{ cert: other_ip });
expect_error(|| peer_refusal(c.member("infra1")), "hostname mismatch");
"#,
    );
    passes(&r);
}

// ---- peer_refusal counts peers only -----------------------------------------------------------

#[test]
fn a_refused_client_is_no_refused_peer() {
    let r = run(
        "client-is-no-peer.rhai",
        r#"
let c = cluster(["m1"], #{ ca: ca, cert: server });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
expect_error(|| kv_get(m1, "k"), "no client certificate");
expect_error(|| peer_refusal(m1), "no client certificate");
"#,
    );
    fails(&r, CHECK_FAILED, "the operation succeeded");
}

// ---- expect_error matches classes, exactly ----------------------------------------------------

fn validity_cluster(extra: &str) -> common::Run {
    run(
        "validity.rhai",
        &format!(
            r#"
let future = issue(ca, "future", #{{ not_before_days: 2, not_after_days: 30 }});
let old = issue(ca, "old", #{{ not_before_days: -10, not_after_days: -1 }});
let c = cluster(["m1"], #{{ ca: ca, cert: server }});
let m1 = spawn_member(c, "m1");
wait_healthy(c);
{extra}
"#
        ),
    )
}

#[test]
fn not_yet_valid_is_not_expired_and_expired_is_not_not_yet_valid() {
    passes(&validity_cluster(
        "expect_error(|| kv_get(m1, \"k\", future), \"not yet valid\");\n\
         expect_error(|| kv_get(m1, \"k\", old), \"expired\");\n\
         expect_error(|| kv_get(m1, \"k\", future), [\"expired\", \"not yet valid\"]);\n\
         expect_error(|| kv_get(m1, \"k\", old), #{ class: \"expired\", detail: \"is after\" });\n",
    ));
    fails(
        &validity_cluster("expect_error(|| kv_get(m1, \"k\", future), \"expired\");\n"),
        CHECK_FAILED,
        "but with not yet valid",
    );
    fails(
        &validity_cluster("expect_error(|| kv_get(m1, \"k\", old), \"not yet valid\");\n"),
        CHECK_FAILED,
        "but with expired",
    );
    fails(
        &validity_cluster(
            "expect_error(|| kv_get(m1, \"k\", old), #{ class: \"expired\", detail: \"is before\" });\n",
        ),
        CHECK_FAILED,
        "but with expired",
    );
}

#[test]
fn a_word_that_is_no_class_is_a_script_error_at_check_time() {
    for word in ["e", "c", "tls", "", "expird"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("word.rhai");
        std::fs::write(
            &path,
            format!("{PKI}expect_error(|| kv_get(1, \"k\"), \"{word}\");\n"),
        )
        .unwrap();
        let r = etcdscript(&["check", path.to_str().unwrap()]);
        fails(&r, SCRIPT_ERROR, "is not an error class");
        common::assert_has(&r.stderr, "word.rhai:");
    }
}

// ---- a failed check cannot be swallowed or replayed --------------------------------------------

#[test]
fn a_failed_check_inside_try_ends_the_run() {
    for check in [
        "assert(false, \"swallowed\")",
        "assert_eq(1, 2)",
        "expect_error(|| 1, \"expired\")",
    ] {
        let (r, _dir) = run_text(
            "try.rhai",
            &format!(
                "try {{ {check}; }} catch (e) {{ print(\"caught\"); }}\nprint(\"went on\");\n"
            ),
            &[],
        );
        assert_eq!(r.code, CHECK_FAILED, "{check}: {}{}", r.stdout, r.stderr);
        assert!(!r.stdout.contains("went on"), "{check}: {}", r.stdout);
        // Through a function pointer called inside `try`, too.
        let (r, _dir) = run_text(
            "try-fn.rhai",
            &format!("let f = || {check};\ntry {{ f.call(); }} catch (e) {{ print(\"caught\"); }}\nprint(\"went on\");\n"),
            &[],
        );
        assert_eq!(r.code, CHECK_FAILED, "{check}: {}{}", r.stdout, r.stderr);
        assert!(!r.stdout.contains("went on"), "{check}: {}", r.stdout);
    }
}

#[test]
fn a_rejection_caught_earlier_and_thrown_again_does_not_count() {
    let r = run(
        "replay.rhai",
        r#"
let c = cluster(["m1"], #{ ca: ca, cert: server });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
let saved = ();
try { kv_get(m1, "k"); } catch (e) { saved = e; }
expect_error(|| { kv_get(m1, "k", client); throw saved; }, "no client certificate");
"#,
    );
    fails(
        &r,
        CHECK_FAILED,
        "only a rejection of the last operation it performs counts",
    );
}

#[test]
fn a_start_failure_is_never_a_rejection() {
    let setup = r#"
let c = cluster(["infra1", "infra2", "infra3", "infra4"], #{ ca: ca, cert: server });
spawn_member(c, "infra1");
spawn_member(c, "infra2");
spawn_member(c, "infra3", #{ cert: rogue_cert });
"#;
    let claim = run(
        "start-not-rejection.rhai",
        &format!("{setup}expect_error(|| spawn_member(c, \"infra4\", #{{ args: [\"--no-such-flag\"] }}), \"unknown authority\");\n"),
    );
    fails(&claim, CHECK_FAILED, "but with start failed");
    let truth = run(
        "start-failed.rhai",
        &format!("{setup}expect_error(|| spawn_member(c, \"infra4\", #{{ args: [\"--no-such-flag\"] }}), \"start failed\");\n"),
    );
    passes(&truth);
}

// ---- hidden identities never collide with the script's -------------------------------------------

#[test]
fn a_script_certificate_named_like_a_probe_stays_the_script_s() {
    let r = run(
        "probe-name.rhai",
        r#"
let mine = issue(rogue_ca, "etcd-cluster-probe");
let c = cluster(["m1"], #{ ca: ca, cert: server });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
expect_error(|| kv_get(m1, "k", mine), "unknown authority");
"#,
    );
    passes(&r);
}

#[test]
fn two_clusters_with_default_options_both_work() {
    let r = run(
        "two-clusters.rhai",
        r#"
let c1 = cluster(["a1"], #{ ca: ca, cert: server });
let rogue_client = issue(rogue_ca, "rogue-client");
let c2 = cluster(["b1"], #{ ca: rogue_ca, cert: rogue_cert });
spawn_member(c1, "a1");
spawn_member(c2, "b1");
wait_healthy(c1);
wait_healthy(c2);
wait_healthy(c1);
kv_set(c2, "k", "v", rogue_client);
"#,
    );
    passes(&r);
}

#[test]
fn a_token_that_is_no_name_is_refused() {
    let r = run(
        "token.rhai",
        "cluster([\"m1\"], #{ ca: ca, cert: server, token: \"/tmp/x/ESCAPED\" });\n",
    );
    fails(
        &r,
        SCRIPT_ERROR,
        "cluster token name `/tmp/x/ESCAPED` is not allowed",
    );
}

// ---- classes and words that match what etcd does -----------------------------------------------

/// Runs a script whose member is frozen (SIGSTOP) once the script is ready, then claims that a
/// call to it meets `class`; returns exit code, stderr and transcript.
fn frozen(class: &str) -> (i32, String, Vec<String>) {
    let text = format!(
        "{PKI}let c = cluster([\"m1\"], #{{ ca: ca, cert: server }});\nlet m1 = spawn_member(c, \"m1\");\nwait_healthy(c);\nprint(\"ready\");\n\
         let frozen = false;\nlet i = 0;\nwhile !frozen && i < 1000000 {{ try {{ kv_get(m1, \"k\", client); }} catch (e) {{ frozen = true; }} i += 1; }}\n\
         expect_error(|| kv_get(m1, \"k\", client), \"{class}\");\n"
    );
    let mut live = Live::start(&text, &["--timeout", "120"], &[]);
    live.wait_for("ready");
    let pid = live.pids()[0];
    assert!(common::signal_pid(pid, "STOP"));
    let (code, stderr) = live.finish();
    // The run killed it; in case it did not, let it go on dying.
    common::signal_pid(pid, "CONT");
    (code, stderr, live.transcript.clone())
}

/// A frozen member answers nothing: that is a timeout, not a TLS refusal.
#[test]
fn a_frozen_member_gives_timeout() {
    let (code, stderr, transcript) = frozen("timeout");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        transcript
            .iter()
            .any(|l| l.contains("rejected: timeout (from the client), as expected")),
        "{transcript:?}"
    );
    let (code, stderr, _) = frozen("unavailable");
    assert_eq!(code, CHECK_FAILED, "{stderr}");
    common::assert_has(&stderr, ", but with timeout");
}

#[test]
fn a_malformed_server_name_is_a_script_error() {
    let r = run(
        "server-name.rhai",
        "let c = cluster([\"m1\"], #{ ca: ca, cert: server });\nlet m1 = spawn_member(c, \"m1\");\nkv_get(m1, \"k\", #{ cert: client, server_name: \"a b\" });\n",
    );
    fails(
        &r,
        SCRIPT_ERROR,
        "server_name `a b` is not a DNS name or IP address",
    );
}

/// With client certificates optional, etcd is given no client CA: a client without a
/// certificate is served.
#[test]
fn optional_client_certificates_are_optional() {
    let r = run(
        "optional.rhai",
        r#"
let c = cluster(["m1"], #{ ca: ca, cert: server, client_cert_auth: false });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
kv_set(m1, "k", "v");
assert_eq(kv_get(m1, "k"), "v");
"#,
    );
    passes(&r);
    common::assert_has(
        &r.stdout,
        "clients need no certificate (etcd gets no client CA)",
    );
}

/// The FAILED line holds nothing the runtime chose: two runs of a failing script print the
/// same transcript, although the raw error names a port.
#[test]
fn the_failed_line_is_deterministic() {
    let body = r#"
let c = cluster(["m1"], #{ ca: ca, cert: server });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
stop_member(m1);
expect_error(|| kv_get(m1, "k", client), "expired");
"#;
    let a = run("failed-line.rhai", body);
    let b = run("failed-line.rhai", body);
    fails(&a, CHECK_FAILED, "but with unavailable");
    assert_eq!(a.stdout, b.stdout);
    let failed = a.stdout.lines().find(|l| l.starts_with("FAILED:")).unwrap();
    assert!(!failed.contains("127.0.0.1"), "{failed}");
}

// ---- every class: the true claim holds, the inverted one fails ---------------------------------

/// One cluster whose member refuses in every way a single member can, and the operation that
/// meets each class. The positive control runs first: the genuine client is served.
const EVERY_CLASS_SETUP: &str = r#"
let other = ca("other-ca");
let foreign = issue(other, "foreign");
let old = issue(ca, "old", #{ not_before_days: -10, not_after_days: -1 });
let future = issue(ca, "future", #{ not_before_days: 2, not_after_days: 30 });
let server_usage = issue(ca, "server-usage", #{ usage: ["server"] });
let stolen = issue(ca, "stolen");
let c = cluster(["m1", "m2", "m3"], #{ ca: ca, cert: server, client_crl: true, args: ["--max-request-bytes", "4096"] });
let m1 = spawn_member(c, "m1");
spawn_member(c, "m2");
let m3 = spawn_member(c, "m3");
wait_healthy(c);
kv_set(m1, "k", "v", client);
revoke(ca, stolen);
let big = "x";
while big.len() < 8192 { big += big; }
"#;

/// (class, operation that meets it)
const EVERY_CLASS: &[(&str, &str)] = &[
    ("no client certificate", "kv_get(m1, \"k\")"),
    ("unknown authority", "kv_get(m1, \"k\", foreign)"),
    ("expired", "kv_get(m1, \"k\", old)"),
    ("not yet valid", "kv_get(m1, \"k\", future)"),
    ("incompatible key usage", "kv_get(m1, \"k\", server_usage)"),
    ("revoked", "kv_get(m1, \"k\", stolen)"),
    ("hostname mismatch", "kv_get(m1, \"k\", #{ cert: client, server_name: \"other.example\" })"),
    ("not tls", "kv_get(m1, \"k\", #{ plaintext: true })"),
    ("server error", "kv_set(m1, \"big\", big, client)"),
    ("start failed", "spawn_member(cluster([\"x1\"], #{ ca: ca, cert: server, token: \"x\" }), \"x1\", #{ args: [\"--no-such-flag\"] })"),
    ("unavailable", "{ stop_member(m3); kv_get(m3, \"k\", client) }"),
];

#[test]
fn every_class_true_claims_hold_and_inverted_ones_fail() {
    let all: String = EVERY_CLASS
        .iter()
        .map(|(class, op)| format!("expect_error(|| {op}, \"{class}\");\n"))
        .collect();
    let truth = run(
        "every-class.rhai",
        &format!("{EVERY_CLASS_SETUP}{all}assert_eq(kv_get(m1, \"k\", client), \"v\");\n"),
    );
    passes(&truth);
    let inverted: Vec<(String, String)> = EVERY_CLASS
        .iter()
        .map(|(class, op)| {
            let wrong = if *class == "server error" {
                "timeout"
            } else {
                "server error"
            };
            (
                class.to_string(),
                format!("{PKI}{EVERY_CLASS_SETUP}expect_error(|| {op}, \"{wrong}\");\n"),
            )
        })
        .collect();
    let runs = common::in_parallel(&inverted, 3, |(class, text)| {
        (class.clone(), run_text("inverted.rhai", text, &[]).0)
    });
    for (class, r) in runs {
        assert_eq!(r.code, CHECK_FAILED, "{class}: {}{}", r.stdout, r.stderr);
        common::assert_has(&r.stderr, format!(", but with {class}"));
    }
}

// ---- what a deliberate attempt to break the verdicts found -------------------------------------

/// An outside client refused while a rogue peer is refused too: the peer's class is the one
/// `peer_refusal` reports, not the client's.
#[test]
fn a_client_refused_beside_a_rogue_peer_is_not_the_peer_s_refusal() {
    // Six free ports, pinned so that the knocking can start before the run.
    let held: Vec<std::net::TcpListener> = (0..6)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let p: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    drop(held);
    let port = p[0];
    let knocker = common::Knocker::start(port, std::time::Duration::ZERO);
    let script = |class: &str| {
        format!(
            "let c = cluster([\"infra1\", \"infra2\", \"infra3\"], #{{ ca: ca, cert: server, client_ports: [{port}, {}, {}], peer_ports: [{}, {}, {}] }});\n\
             spawn_member(c, \"infra1\");\nspawn_member(c, \"infra2\");\nwait_healthy(c);\n\
             spawn_member(c, \"infra3\", #{{ cert: rogue_cert }});\n\
             expect_error(|| peer_refusal(c.member(\"infra1\")), \"{class}\");\n",
            p[1],
            p[2],
            p[3],
            p[4],
            p[5]
        )
    };
    let truth = run("knocked-truth.rhai", &script("unknown authority"));
    let claim = run("knocked-claim.rhai", &script("no client certificate"));
    drop(knocker);
    passes(&truth);
    fails(&claim, CHECK_FAILED, "but with unknown authority");
}

/// Members stopped by the script leave the last one without a quorum: that is a timeout, not the
/// refusal of a client the stopped member logged before it went.
#[test]
fn members_the_script_stopped_are_no_reason_but_a_timeout() {
    let r = run(
        "stopped.rhai",
        r#"
let c = cluster(["infra1", "infra2", "infra3"], #{ ca: ca, cert: server, health_timeout_ms: 3000 });
for n in c.names { spawn_member(c, n); }
wait_healthy(c);
expect_error(|| kv_get(c.member("infra2"), "k"), "no client certificate");
stop_member(c.member("infra2"));
stop_member(c.member("infra3"));
expect_error(|| wait_healthy(c.member("infra1")), "timeout");
"#,
    );
    passes(&r);
}

/// A revoked member is refused when it dials, yet takes part through the connections its peers
/// open: it answers reads, so it is healthy.
#[test]
fn a_member_refused_one_way_that_answers_is_healthy() {
    let r = run(
        "one-way.rhai",
        r#"
let opts = #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] };
let c1 = issue(ca, "infra1-cert", opts);
let c2 = issue(ca, "infra2-cert", opts);
let c3 = issue(ca, "infra3-cert", opts);
let c = cluster(["infra1", "infra2", "infra3"], #{ ca: ca, cert: c1, peer_crl: true });
spawn_member(c, "infra1", #{ cert: c1 });
spawn_member(c, "infra2", #{ cert: c2 });
wait_healthy(c);
kv_set(c, "k", "v", client);
revoke(ca, c3);
let m3 = spawn_member(c, "infra3", #{ cert: c3 });
wait_healthy(m3);
assert_eq(kv_get(m3, "k", client), "v");
"#,
    );
    passes(&r);
}

/// A certificate naming its host only in the CN is refused for the name, by peers as by clients.
#[test]
fn a_certificate_without_sans_is_a_hostname_mismatch_between_peers() {
    let r = run(
        "cn-only.rhai",
        r#"
let c = cluster(["infra1", "infra2", "infra3"], #{ ca: ca, cert: server });
spawn_member(c, "infra1");
spawn_member(c, "infra2");
wait_healthy(c);
let cn_only = issue(ca, "cn-only", #{ cn: "localhost", usage: ["server", "client"] });
spawn_member(c, "infra3", #{ cert: cn_only });
expect_error(|| peer_refusal(c.member("infra1")), "hostname mismatch");
"#,
    );
    passes(&r);
}

/// A start failure can be expected by its class only, and no `try` swallows it.
#[test]
fn a_start_failure_is_neither_caught_nor_matched_by_words() {
    let setup = "let c = cluster([\"m1\"], #{ ca: ca, cert: server });\n";
    let caught = run(
        "start-caught.rhai",
        &format!("{setup}try {{ spawn_member(c, \"m1\", #{{ args: [\"--no-such-flag\"] }}); }} catch (e) {{ print(\"swallowed\"); }}\nprint(\"went on\");\n"),
    );
    fails(&caught, 4, "start failed");
    assert!(!caught.stdout.contains("went on"), "{}", caught.stdout);
    let words = run(
        "start-words.rhai",
        &format!("{setup}expect_error(|| spawn_member(c, \"m1\", #{{ args: [\"--no-such-flag\"] }}), #{{ detail: \"flag\" }});\n"),
    );
    fails(&words, CHECK_FAILED, "but with start failed");
}

/// A mistake found while a primitive runs names its place in the script.
#[test]
fn an_error_inside_a_primitive_names_its_line() {
    let r = run(
        "dup.rhai",
        "let other = ca(\"other\");\nissue(other, \"client\");\n",
    );
    fails(&r, SCRIPT_ERROR, "already taken");
    common::assert_has(&r.stderr, "dup.rhai:8:");
}

/// Refusals are paired by the time each side logged them: that holds in any time zone.
#[test]
fn refusals_pair_in_any_time_zone() {
    common::Case::new("zone.rhai")
        .env("TZ", "Europe/Paris")
        .script(PKI)
        .script(
            r#"
let server_only = issue(ca, "server-only", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server"] });
let bad = cluster(["b1", "b2", "b3"], #{ ca: ca, cert: server_only, health_timeout_ms: 60000 });
for name in bad.names { spawn_member(bad, name); }
expect_error(|| wait_healthy(bad), "incompatible key usage");
"#,
        )
        .run()
        .code(0);
}
