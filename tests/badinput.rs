//! Bad and hostile input gets a clear error and its own exit code, never a panic; and many runs
//! share one machine without colliding.

mod common;

use common::{etcdscript, run_text, ONE_MEMBER};

/// The PKI that most cases start from.
const PKI: &str = r#"let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
"#;

/// (name, script, expected exit code, words the error must contain)
fn corpus() -> Vec<(&'static str, String, i32, &'static str)> {
    let p = |s: &str| format!("{PKI}{s}");
    let deep = format!("let x = {}1{};", "(".repeat(2000), ")".repeat(2000));
    vec![
        ("syntax", "let x = ;".into(), 3, "1:9"),
        ("unterminated-string", "let s = \"abc".into(), 3, "1:9"),
        ("unbalanced-brace", "fn f() {\n let x = 1;\n".into(), 3, "error:"),
        ("binary-garbage", "\u{1}\u{2}let \u{7f}".into(), 3, "error:"),
        ("eval", "eval(\"1 + 1\");".into(), 3, "eval"),
        ("import", "import \"/etc/passwd\" as p;".into(), 3, "/etc/passwd"),
        ("recursion", "fn f(n) { f(n + 1) }\nf(0);".into(), 3, "error:"),
        ("string-bomb", "let s = \"xx\";\nloop { s += s; }".into(), 3, "error:"),
        ("array-bomb", "let a = [];\nloop { a.push(1); }".into(), 3, "error:"),
        ("deep-expression", deep, 3, "error:"),
        ("division-by-zero", "print(1 / 0);".into(), 3, "zero"),
        ("overflow", "let x = 9223372036854775807;\nx += 1;".into(), 3, "error:"),
        ("throw-map", "throw #{ a: 1 };".into(), 3, "error:"),
        ("bad-fn-ptr", "Fn(\"nonexistent\").call();".into(), 3, "nonexistent"),
        ("unknown-function", "launch_missiles();".into(), 3, "no function launch_missiles"),
        ("wrong-arity", "ca();".into(), 3, "ca takes:"),
        ("wrong-type", "ca(42);".into(), 3, "ca takes:"),
        ("path-in-name", "ca(\"../../etc/x\");".into(), 3, "not allowed"),
        ("slash-in-cert-name", p("issue(ca, \"a/b\");"), 3, "not allowed"),
        ("duplicate-name", "ca(\"a\");\nca(\"a\");".into(), 3, "already taken"),
        ("bad-usage", p("issue(ca, \"x\", #{ usage: [\"root\"] });"), 3, "usage `root`"),
        ("empty-usage", p("issue(ca, \"x\", #{ usage: [] });"), 3, "usage is empty"),
        ("days-as-string", p("issue(ca, \"x\", #{ days: \"ten\" });"), 3, "`days` must be an integer"),
        ("ends-before-start", p("issue(ca, \"x\", #{ not_before_days: 5, not_after_days: 1 });"), 3, "end before it starts"),
        ("days-and-not-after", p("issue(ca, \"x\", #{ days: 10, not_after_days: 5 });"), 3, "not both"),
        ("bad-san", p("issue(ca, \"x\", #{ sans: [\"bad name!\"] });"), 3, "not a DNS name"),
        ("bad-key", "ca(\"a\", #{ key: \"dsa\" });".into(), 3, "key `dsa`"),
        ("negative-days", "ca(\"a\", #{ days: -1 });".into(), 3, "days must be positive"),
        ("ca-typo", "ca(\"a\", #{ dayz: 1 });".into(), 3, "did you mean `days`"),
        ("cluster-no-ca", p("cluster([\"m\"], #{ cert: server });"), 3, "`ca` is required"),
        ("cluster-no-members", p("cluster([], #{ ca: ca, cert: server });"), 3, "at least one member"),
        ("cluster-duplicate-members", p("cluster([\"m\", \"m\"], #{ ca: ca, cert: server });"), 3, "appears twice"),
        ("cluster-ports-count", p("cluster([\"m\"], #{ ca: ca, cert: server, client_ports: [1, 2] });"), 3, "2 ports for 1 members"),
        ("cluster-port-range", p("cluster([\"m\"], #{ ca: ca, cert: server, client_ports: [70000] });"), 3, "port numbers"),
        ("cluster-timing", p("cluster([\"m\"], #{ ca: ca, cert: server, heartbeat_ms: 100, election_ms: 200 });"), 3, "at least 5 times"),
        ("cluster-client-only-cert", p("let cl = issue(ca, \"cl\");\ncluster([\"m\"], #{ ca: ca, cert: cl });"), 3, "lacks the \"server\" usage"),
        ("cluster-ca-is-cert", p("cluster([\"m\"], #{ ca: server, cert: server });"), 3, "must be a Ca"),
        ("cluster-member-name", p("cluster([\"m;rm -rf\"], #{ ca: ca, cert: server });"), 3, "not allowed"),
        ("spawn-unknown-member", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nspawn_member(c, \"x\");"), 3, "has no member `x`"),
        ("spawn-option-typo", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nspawn_member(c, \"m\", #{ cetr: server });"), 3, "did you mean `cert`"),
        ("kv-target-type", "kv_set(\"m1\", \"k\", \"v\");".into(), 3, "must be a Member or a Cluster"),
        ("kv-not-started", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\");"), 3, "no member of cluster"),
        ("kv-identity-type", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", 42);"), 3, "identity must be a Cert"),
        ("wait-healthy-type", "wait_healthy(1);".into(), 3, "must be a Member or a Cluster"),
        ("revoke-foreign", "let a = ca(\"a\");\nlet b = ca(\"b\");\nrevoke(a, issue(b, \"x\"));".into(), 3, "signed by `b`"),
        ("role-grant-perm", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nrole_grant(c, \"r\", #{ key: \"k\", perm: \"all\" }, server);"), 3, "perm `all`"),
        ("member-add-type", "member_add(42, \"x\");".into(), 3, "member_add takes:"),
        ("show-cert-type", "show_cert(\"x\");".into(), 3, "show_cert takes:"),
        ("expect-error-not-a-closure", "expect_error(42, \"expired\");".into(), 3, "expect_error takes:"),
        ("expect-error-success", "expect_error(|| 1, \"expired\");".into(), 1, "the operation succeeded"),
        ("assert-false", "assert(false, \"nothing\");".into(), 1, "assert: nothing: does not hold"),
        ("assert-eq-types", "assert_eq(1, \"1\");".into(), 1, "assert_eq: got 1, expected \"1\""),
        ("empty-script", String::new(), 0, ""),
        ("only-comments", "// nothing to do\n/* at all */".into(), 0, ""),
    ]
}

fn assert_clean(name: &str, run: &common::Run) {
    assert_ne!(run.code, 101, "{name} panicked:\n{}", run.stderr);
    assert!(
        !run.stderr.contains("panicked"),
        "{name} panicked:\n{}",
        run.stderr
    );
    if run.code != 0 {
        assert!(
            run.stderr.contains("error:"),
            "{name}: exit {} without an error message:\n{}",
            run.code,
            run.stderr
        );
    }
}

#[test]
fn hand_written_corpus_gets_clean_errors() {
    let cases = corpus();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for (name, text, code, words) in cases {
        let (run, _dir) = run_text(&format!("{name}.rhai"), &text, &["--timeout", "20"]);
        assert_clean(name, &run);
        assert_eq!(run.code, code, "{name}:\n{}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(words),
            "{name}: no {words:?} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn endless_loop_is_stopped_by_the_timeout() {
    let (run, _dir) = run_text("spin.rhai", "loop { }", &["--timeout", "1"]);
    assert_clean("spin", &run);
    assert_eq!(run.code, 5, "{}", run.stderr);
    common::assert_has(&run.stderr, "went past --timeout (1s)");
}

/// Mutations of the demo: every truncation at a stride of bytes, every deletion of one
/// character at a stride, and every line doubled. `check` compiles and checks them without
/// starting anything; none may panic or end without a clear error.
#[test]
fn generated_mutations_of_the_demo_never_panic() {
    let demo = std::fs::read_to_string(common::root().join("scripts/demo.rhai")).unwrap();
    let chars: Vec<char> = demo.chars().collect();
    let mut variants = Vec::new();
    for i in (0..chars.len()).step_by(23) {
        variants.push(chars[..i].iter().collect::<String>());
        let mut deleted = chars.clone();
        deleted.remove(i);
        variants.push(deleted.into_iter().collect::<String>());
    }
    let lines: Vec<&str> = demo.lines().collect();
    for i in 0..lines.len() {
        let mut doubled = lines.clone();
        doubled.insert(i, lines[i]);
        variants.push(doubled.join("\n"));
    }
    assert!(variants.len() >= 100, "{} variants", variants.len());
    let dir = tempfile::tempdir().unwrap();
    let mut failed = 0;
    for (i, text) in variants.iter().enumerate() {
        let path = dir.path().join(format!("mutant-{i}.rhai"));
        std::fs::write(&path, text).unwrap();
        let run = etcdscript(&["check", path.to_str().unwrap()]);
        assert_clean(&format!("mutant {i}"), &run);
        assert!(
            matches!(run.code, 0 | 3),
            "mutant {i}: exit {}\n{}",
            run.code,
            run.stderr
        );
        if run.code == 3 {
            failed += 1;
            assert!(
                run.stderr.contains(&format!("mutant-{i}.rhai:")),
                "mutant {i}: no location\n{}",
                run.stderr
            );
        }
    }
    assert!(
        failed > variants.len() / 4,
        "only {failed} of {} mutants were refused",
        variants.len()
    );
}

#[test]
fn etcd_refusing_a_flag_is_quoted_with_the_member() {
    let text = format!("{PKI}let c = cluster([\"m1\"], #{{ ca: ca, cert: server, args: [\"--no-such-flag\"] }});\nspawn_member(c, \"m1\");\n");
    let (run, _dir) = run_text("flag.rhai", &text, &[]);
    assert_clean("flag", &run);
    assert_eq!(run.code, 4, "{}", run.stderr);
    common::assert_has(&run.stderr, "member m1 exited");
    common::assert_has(&run.stderr, "flag provided but not defined: -no-such-flag");
}

#[test]
fn a_port_already_taken_is_quoted_with_the_member() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let text = format!("{PKI}let c = cluster([\"m1\"], #{{ ca: ca, cert: server, client_ports: [{port}] }});\nspawn_member(c, \"m1\");\n");
    let (run, _dir) = run_text("port.rhai", &text, &[]);
    assert_clean("port", &run);
    assert_eq!(run.code, 4, "{}", run.stderr);
    common::assert_has(&run.stderr, "member m1 exited");
    common::assert_has(&run.stderr, "address already in use");
    drop(taken);
}

#[test]
fn eight_demos_at_once_all_pass_with_the_same_transcript() {
    let runs: Vec<common::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| etcdscript(&["run", "scripts/demo.rhai"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run.code, 0, "run {i}:\n{}{}", run.stdout, run.stderr);
        assert_eq!(
            run.stdout, runs[0].stdout,
            "run {i} printed another transcript"
        );
    }
}

#[test]
fn member_started_with_a_client_only_certificate_is_allowed_on_purpose() {
    // The cluster's own certificate must serve; a single member may be given one that cannot,
    // to show what happens. The run says so in the log and goes on.
    let text = format!("{ONE_MEMBER}\nlet cl = issue(ca, \"cl\");\nlet c2 = cluster([\"x1\"], #{{ ca: ca, cert: server, token: \"two\" }});\nspawn_member(c2, \"x1\", #{{ cert: cl }});\nexpect_error(|| kv_get(c2, \"k\", client), \"incompatible key usage\");\n");
    let (run, _dir) = run_text("client-only-member.rhai", &text, &[]);
    assert_clean("client-only-member", &run);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    common::assert_has(
        &run.stderr,
        "member x1 gets certificate cl without the server usage",
    );
    common::assert_has(
        &run.stdout,
        "rejected: incompatible key usage (from the client), as expected",
    );
}
