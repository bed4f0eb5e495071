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
        ("days-and-not-after", p("issue(ca, \"x\", #{ days: 10, not_after_days: 5 });"), 3, "give one of `days`, `not_after_days` and `not_after_secs`"),
        ("bad-san", p("issue(ca, \"x\", #{ sans: [\"bad name!\"] });"), 3, "not a DNS name"),
        ("bad-key", "ca(\"a\", #{ key: \"dsa\" });".into(), 3, "key `dsa`"),
        ("negative-days", "ca(\"a\", #{ days: -1 });".into(), 3, "`days` must be from 1 to 36500, got -1"),
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
        // Numbers that overflowed into panics: each is refused with its allowed range.
        ("issue-days-huge", p("issue(ca, \"x\", #{ days: 100000000 });"), 3, "`days` must be from 1 to 36500"),
        ("ca-days-max", "ca(\"a\", #{ days: 9223372036854775807 });".into(), 3, "`days` must be from 1 to 36500"),
        ("not-before-min", p("issue(ca, \"x\", #{ not_before_days: -9223372036854775807 });"), 3, "`not_before_days` must be from -36500 to 36500"),
        ("not-after-max", p("issue(ca, \"x\", #{ not_after_days: 9223372036854775807 });"), 3, "`not_after_days` must be from -36500 to 36500"),
        ("heartbeat-wraps", p("cluster([\"m\"], #{ ca: ca, cert: server, heartbeat_ms: 3689348814741910324 });"), 3, "`heartbeat_ms` must be from 1 to 10000"),
        ("election-huge", p("cluster([\"m\"], #{ ca: ca, cert: server, election_ms: 9223372036854775807 });"), 3, "`election_ms` must be from 1 to 50000"),
        ("health-timeout-huge", p("cluster([\"m\"], #{ ca: ca, cert: server, health_timeout_ms: 9223372036854775807 });"), 3, "`health_timeout_ms` must be from 1 to 3600000"),
        ("heartbeat-negative", p("cluster([\"m\"], #{ ca: ca, cert: server, heartbeat_ms: -1 });"), 3, "`heartbeat_ms` must be from 1 to 10000, got -1"),
        // etcd flags that would make etcd read or write outside the work dir.
        ("args-log-outputs", p("cluster([\"m\"], #{ ca: ca, cert: server, args: [\"--log-outputs=stderr,/tmp/x\"] });"), 3, "`--log-outputs` names a file or directory"),
        ("args-wal-dir", p("cluster([\"m\"], #{ ca: ca, cert: server, args: [\"--wal-dir\", \"/elsewhere\"] });"), 3, "`--wal-dir` names a file or directory"),
        ("args-data-dir-single-dash", p("cluster([\"m\"], #{ ca: ca, cert: server, args: [\"-data-dir=/x\"] });"), 3, "`--data-dir` names a file or directory"),
        ("args-config-file", p("cluster([\"m\"], #{ ca: ca, cert: server, args: [\"--config-file\", \"/etc/etcd.conf\"] });"), 3, "`--config-file`"),
        ("args-unix-socket", p("cluster([\"m\"], #{ ca: ca, cert: server, args: [\"--listen-client-urls=unix:///tmp/s\"] });"), 3, "unix socket"),
        ("spawn-args-cert-file", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nspawn_member(c, \"m\", #{ args: [\"--peer-key-file=/etc/k\"] });"), 3, "spawn_member(): args: etcd flag `--peer-key-file`"),
        ("member-add-args-crl", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nmember_add(c, \"n\", #{ args: [\"--client-crl-file\", \"/x\"] });"), 3, "`--client-crl-file` names a file or directory"),
        // The key space, RBAC and membership, refused before any member is asked.
        ("watch-events-count", "watch_events(1, 1);".into(), 3, "must be a Watch (from watch())"),
        ("lease-ttl-range", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nlease_grant(c, 0);"), 3, "`ttl_secs` must be an integer from 1 to 86400"),
        ("kv-set-lease-type", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_set(c, \"k\", \"v\", server, #{ lease: 5 });"), 3, "`lease` must be a Lease"),
        ("watch-option-typo", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nwatch(c, \"k\", server, #{ prefx: true });"), 3, "did you mean `prefix`"),
        ("identity-user-alone", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", #{ user: \"bob\" });"), 3, "both `user` and `password`, or neither"),
        ("user-add-empty-password", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nuser_add(c, \"bob\", server, #{ password: \"\" });"), 3, "`password` is empty"),
        ("role-revoke-no-key", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nrole_revoke(c, \"r\", #{ prefix: true }, server);"), 3, "`key` is required"),
        ("member-add-acting-as-type", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nmember_add(c, \"n\", #{ acting_as: 42 });"), 3, "identity must be a Cert"),
        ("member-remove-type", "member_remove(\"m\");".into(), 3, "member_remove takes:"),
        // Client TLS options and chains.
        ("tls-min-old", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", #{ tls_min: \"1.1\" });"), 3, "`tls_min` must be \"1.2\" or \"1.3\""),
        ("tls-min-above-max", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", #{ tls_min: \"1.3\", tls_max: \"1.2\" });"), 3, "`tls_min` 1.3 is above `tls_max` 1.2"),
        ("cipher-unknown", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", #{ cipher_suites: [\"TLS_RSA_WITH_RC4_128_SHA\"] });"), 3, "cipher suite `TLS_RSA_WITH_RC4_128_SHA` is not one the client has: TLS_AES_256_GCM_SHA384"),
        ("cipher-empty", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", #{ cipher_suites: [] });"), 3, "`cipher_suites` is empty"),
        ("ca-word", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", #{ ca: \"sytem\" });"), 3, "got \"sytem\""),
        ("ca-and-skip", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", #{ ca: ca, insecure_skip_tls_verify: true });"), 3, "not both"),
        ("chain-from-root", p("issue(ca, \"x\", #{ chain: true });"), 3, "`chain` needs an intermediate CA"),
        ("parent-bundle", "let a = ca(\"a\");\nlet b = bundle(\"b\", [a]);\nca(\"i\", #{ parent: b });".into(), 3, "is a trust bundle, which signs nothing"),
        ("parent-type", "ca(\"i\", #{ parent: \"root\" });".into(), 3, "`parent` must be a Ca"),
        // HTTP, listeners and tampering.
        ("http-path", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nhttp_get(c, \"health\");"), 3, "path `health` must start with `/`"),
        ("http-body-type", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nhttp_post(c, \"/v3/kv/put\", 42);"), 3, "`body` must be a string or a map, got int"),
        ("listener-word", p("let c = cluster([\"m\"], #{ ca: ca, cert: server });\nkv_get(c, \"k\", #{ listener: \"ftp\" });"), 3, "`listener` must be \"https\""),
        ("tamper-part", p("tamper(server, \"crl\");"), 3, "a CRL is a CA's"),
        ("tamper-word", p("tamper(ca, \"everything\");"), 3, "part `everything` is not one of"),
        ("tamper-type", "tamper(1, \"key\");".into(), 3, "`what` must be a Cert or a Ca, got int"),
        // Memory Rhai's own limits do not see: curried function pointers.
        ("curry-memory-bomb", "fn id(x) { x }\nlet s = \"x\";\nwhile s.len() < 524288 { s += s; }\nlet a = [];\nfor i in 0..3000 { a.push(Fn(\"id\").curry(s + i)); }\n".into(), 5, "the script went past its memory limit (512 MiB)"),
        ("closure-memory-bomb", "let s = \"x\";\nwhile s.len() < 524288 { s += s; }\nlet a = [];\nfor i in 0..3000 { let t = s + i; a.push(|| t.len()); }\n".into(), 5, "memory limit"),
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
        let (run, _dir) = run_text(&format!("{name}.rhai"), &text, &["--timeout", "120"]);
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

/// Mutations of the demo's code (its comment lines left out, so that its prose does not decide
/// how many mutants touch code): every truncation at a stride of bytes, every deletion of one
/// character at a stride, and every line doubled. `check` compiles and checks them without
/// starting anything; none may panic or end without a clear error.
#[test]
fn generated_mutations_of_the_demo_never_panic() {
    let demo = std::fs::read_to_string(common::root().join("scripts/demo.rhai")).unwrap();
    let demo = demo
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let chars: Vec<char> = demo.chars().collect();
    let mut variants = Vec::new();
    for i in (0..chars.len()).step_by(7) {
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
    // 24 members at once: their data dirs go where there is room for them.
    let tmp = common::roomy_tmpdir(24);
    let env = [("TMPDIR", tmp.path().to_str().unwrap())];
    let runs: Vec<common::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| common::etcdscript_env(&["run", "scripts/demo.rhai"], &env, 300)))
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

#[test]
fn a_timeout_too_large_for_a_clock_is_refused_with_its_range() {
    let run = etcdscript(&[
        "run",
        "--timeout",
        "18446744073709551615",
        "scripts/demo.rhai",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    common::assert_has(&run.stderr, "is not in 1..=604800");
}

#[test]
fn what_is_not_a_regular_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.rhai");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for path in [
        "/dev/zero",
        fifo.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ] {
        // Bounded: a FIFO nobody writes to used to hang the run before --timeout started.
        let run = common::etcdscript_env(&["run", "--timeout", "5", path], &[], 60);
        assert_eq!(run.code, 3, "{path}: {}", run.stderr);
        common::assert_has(
            &run.stderr,
            format!("cannot read script {path}: it is not a regular file"),
        );
    }
}

#[test]
fn a_huge_script_is_refused_and_a_long_line_is_quoted_in_part() {
    let (run, _dir) = run_text("huge.rhai", &"x".repeat(10 << 20), &[]);
    assert_eq!(run.code, 3, "{}", &run.stderr[..run.stderr.len().min(2000)]);
    common::assert_has(&run.stderr, "more than a script may be (1048576 bytes)");
    // Rhai counts columns up to 65535: a line shorter than that, long enough to matter.
    let line = format!("let a = 1;{}let b = ;", " ".repeat(30_000));
    let (run, _dir) = run_text("long.rhai", &line, &[]);
    assert_eq!(run.code, 3, "{}", &run.stderr[..run.stderr.len().min(2000)]);
    common::assert_has(&run.stderr, "long.rhai:1:30019");
    assert!(
        run.stderr.len() < 2000,
        "{} bytes of error",
        run.stderr.len()
    );
    assert!(
        run.stdout.len() < 2000,
        "{} bytes of transcript",
        run.stdout.len()
    );
    let name = "n".repeat(900_000);
    let (run, _dir) = run_text("name.rhai", &format!("ca(\"{name}\");"), &[]);
    assert_eq!(run.code, 3);
    common::assert_has(&run.stderr, "more characters)");
    assert!(
        run.stderr.len() < 4000,
        "{} bytes of error",
        run.stderr.len()
    );
}

#[test]
fn a_caught_error_and_script_values_print_as_words_not_rust_types() {
    // A rejection is the one failure a script may catch: it prints as its words.
    let text = format!(
        "{ONE_MEMBER}\n\
         try {{ kv_get(m1, \"k\") }} catch (e) {{ print(e); print(`caught: ${{e}}`); print(type_of(e)); }}\n\
         print(c); print(m1); print(ca);\n"
    );
    let (run, _dir) = run_text("caught.rhai", &text, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        !run.stdout.contains("::"),
        "a Rust type name:\n{}",
        run.stdout
    );
    let refused = "get k via m1 without a client certificate: rejected: no client certificate (from m1's log)";
    common::assert_has(
        &run.stdout,
        format!("\n{refused}\ncaught: {refused}\nError\n"),
    );
    common::assert_has(&run.stdout, "Cluster(etcd-cluster)\nMember(m1)\nCa(ca)\n");
    // A script mistake is not caught: it ends the run, in script words.
    let text = format!(
        "{PKI}try {{ cluster([\"x\"], #{{ ca: server, cert: server }}) }} catch (e) {{ print(e); }}\nprint(\"went on\");\n"
    );
    let (run, _dir) = run_text("uncaught.rhai", &text, &[]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("went on"), "{}", run.stdout);
    common::assert_has(
        &run.stderr,
        "option `ca` must be a Ca (from ca()), got Cert",
    );
    assert!(!run.stderr.contains("::"), "{}", run.stderr);
}

#[test]
fn closed_stdout_and_stderr_end_with_the_verdict_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("TMPDIR", tmp.path().to_str().unwrap())];
    let code = common::run_with_closed_pipes(&["-vv", "run", "scripts/demo.rhai"], &env, 120);
    assert_eq!(code, 0, "the demo with its output closed");
    let (_, script) = run_text("fails.rhai", "", &[]);
    let failing = script.path().join("fails.rhai");
    std::fs::write(&failing, format!("{ONE_MEMBER}\nthrow \"boom\";\n")).unwrap();
    let code = common::run_with_closed_pipes(&["run", failing.to_str().unwrap()], &env, 120);
    assert_eq!(code, 3, "a failing run with its output closed");
    let code =
        common::run_with_closed_pipes(&["check", "scripts/demo.rhai", "nope.rhai"], &env, 60);
    assert_eq!(code, 3, "check with its output closed");
    assert_eq!(
        common::etcd_under(tmp.path()),
        Vec::<u32>::new(),
        "members left running"
    );
    assert_eq!(
        common::workdirs_in(tmp.path()),
        Vec::<std::path::PathBuf>::new(),
        "work dirs left"
    );
}

/// A member that ignores SIGTERM (a stand-in for etcd that takes long to leave).
const IGNORES_SIGTERM: &str = "trap '' TERM\n\
    echo '{\"level\":\"info\",\"msg\":\"serving peer traffic\"}' >&2\n\
    exec sleep 600";

#[test]
fn stop_member_is_bounded_by_the_run_deadline() {
    let (etcd, _fake) = common::fake_etcd(IGNORES_SIGTERM);
    let text = format!(
        "{PKI}let c = cluster([\"m1\"], #{{ ca: ca, cert: server }});\nlet m1 = spawn_member(c, \"m1\");\nstop_member(m1);\nprint(\"after stop\");\n"
    );
    // The member ignores SIGTERM, so the stop waits out its grace (5 s) unless the deadline
    // (1 s) cuts it short. The one timed assertion in the suite: the bug makes a run last at
    // least 5 s, however fast the machine; the fix ends it at the deadline plus a SIGKILL.
    let started = std::time::Instant::now();
    let (run, _dir) = run_text(
        "stop.rhai",
        &text,
        &["--timeout", "1", "--etcd", etcd.to_str().unwrap()],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    common::assert_has(&run.stderr, "went past --timeout");
    assert!(!run.stdout.contains("after stop"), "{}", run.stdout);
    assert!(
        took < std::time::Duration::from_millis(4500),
        "stop_member outlasted --timeout 1: {took:?}"
    );
}

#[test]
fn an_etcd_panic_is_quoted_by_its_message() {
    let (etcd, _fake) = common::fake_etcd(
        "echo '{\"level\":\"info\",\"msg\":\"starting an etcd server\"}' >&2\n\
         echo '{\"level\":\"panic\",\"ts\":\"t\",\"caller\":\"wal/wal.go:1\",\"msg\":\"failed to create WAL\",\"error\":\"no space left on device\",\"stacktrace\":\"go.etcd.io/etcd/wal.Create\"}' >&2\n\
         echo 'panic: failed to create WAL' >&2\n\
         echo '' >&2\n\
         echo 'goroutine 1 [running]:' >&2\n\
         echo 'go.uber.org/zap/zapcore.(*CheckedEntry).Write(0xc000, 0x0)' >&2\n\
         printf '\\t/go/pkg/mod/go.uber.org/zap/zapcore/entry.go:234 +0x585\\n' >&2\n\
         exit 2",
    );
    let text = format!(
        "{PKI}let c = cluster([\"m1\"], #{{ ca: ca, cert: server }});\nspawn_member(c, \"m1\");\n"
    );
    let (run, _dir) = run_text("panic.rhai", &text, &["--etcd", etcd.to_str().unwrap()]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    common::assert_has(
        &run.stderr,
        "while starting: failed to create WAL, error=no space left on device",
    );
    assert!(
        !run.stderr.contains("goroutine") && !run.stderr.contains("entry.go"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_memory_limit_stops_a_script_with_members_running_and_kills_them() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "{ONE_MEMBER}\nfn id(x) {{ x }}\nlet s = \"x\";\nwhile s.len() < 524288 {{ s += s; }}\n\
         let a = [];\nfor i in 0..8000 {{ a.push(Fn(\"id\").curry(s + i)); }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bomb.rhai");
    std::fs::write(&script, text).unwrap();
    let run = common::etcdscript_env(
        &["run", script.to_str().unwrap()],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
        120,
    );
    assert_eq!(run.code, 5, "{}", run.stderr);
    common::assert_has(
        &run.stderr,
        "the script went past its memory limit (512 MiB)",
    );
    common::assert_has(&run.stdout, "teardown: killed m1");
    assert_eq!(common::etcd_under(tmp.path()), Vec::<u32>::new());
    assert_eq!(
        common::workdirs_in(tmp.path()),
        Vec::<std::path::PathBuf>::new()
    );
}

/// Every operation a script can try on each of etcdscript's values, and throwing them: no Rust
/// type name in any message. A mistake ends the run, so each pair is a run of its own.
#[test]
fn no_rust_type_name_reaches_the_user_whatever_is_done_with_our_values() {
    let ops = [
        "v + 1",
        "v.foo",
        "v.foo = 1",
        "v[0]",
        "if v {}",
        "for i in v {}",
        "v == 1",
        "v.len()",
        "issue(v, \"z\")",
        "kv_get(v, \"k\")",
        "wait_healthy(v)",
        "expect_error(v, \"expired\")",
        "throw v",
        "throw [v, #{ v: v }]",
        "print(v); print(`${v}`); print(type_of(v))",
    ];
    let mut cases = Vec::new();
    for v in ["ca", "server", "c", "m"] {
        for op in ops {
            cases.push(format!(
                "{PKI}let c = cluster([\"m1\"], #{{ ca: ca, cert: server }});\nlet m = c.member(\"m1\");\nlet v = {v};\n{op};\n"
            ));
        }
    }
    let runs = common::in_parallel(&cases, 4, |text| run_text("types.rhai", text, &[]).0);
    for (text, run) in cases.iter().zip(&runs) {
        assert_ne!(run.code, 101, "{text}\n{}", run.stderr);
        assert!(!run.stdout.contains("::"), "{text}\n{}", run.stdout);
        assert!(!run.stderr.contains("::"), "{text}\n{}", run.stderr);
    }
    // A caught rejection thrown inside other values prints as words too.
    let text = format!(
        "{ONE_MEMBER}let e = (); try {{ kv_get(m1, \"k\") }} catch (x) {{ e = x; }}\nthrow [m1, #{{ c: c, e: e }}];\n"
    );
    let (run, _dir) = run_text("thrown.rhai", &text, &[]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("::"), "{}", run.stderr);
    common::assert_has(
        &run.stderr,
        "Runtime error: [Member, #{c: Cluster, e: get k via m1 without a client certificate: rejected: no client certificate (from m1's log)}]",
    );
}
