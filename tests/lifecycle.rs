//! However a run ends, every etcd member it started is gone within 2 s (checked by the PIDs the
//! run logged, never by name), and its work dir is removed unless kept. Real etcd, real signals.

mod common;

use common::{assert_all_gone, Live, THREE_READY};

/// A script that keeps the cluster busy until stopped from outside.
fn busy() -> String {
    format!("{THREE_READY}\nloop {{ kv_get(c, \"k\", client); }}\n")
}

fn quiet_busy() -> String {
    // No transcript line per iteration: an endless loop of pure script.
    format!("{THREE_READY}\nlet i = 0;\nloop {{ i += 1; }}\n")
}

#[test]
fn normal_end() {
    let mut run = Live::start(THREE_READY, &[], &[]);
    let (code, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_all_gone(&run.pids());
    assert!(!run.workdir().exists(), "work dir left behind");
}

#[test]
fn script_error_midway() {
    let mut run = Live::start(&format!("{THREE_READY}\nthrow \"boom\";\n"), &[], &[]);
    let (code, stderr) = run.finish();
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("boom"), "{stderr}");
    assert_all_gone(&run.pids());
    assert!(!run.workdir().exists());
}

#[test]
fn panic_inside_etcdscript() {
    let text = format!("{THREE_READY}\npanic_for_tests();\n");
    let mut run = Live::start(&text, &[], &[("ETCDSCRIPT_TEST_HOOKS", "panic")]);
    let (code, stderr) = run.finish();
    assert_eq!(code, 101, "{stderr}");
    assert!(
        stderr.contains("internal error: etcdscript panicked"),
        "{stderr}"
    );
    assert!(stderr.contains("killed 3 etcd member(s)"), "{stderr}");
    assert_all_gone(&run.pids());
    assert!(!run.workdir().exists());
}

fn interrupted(sig: &str, code: i32) {
    let mut run = Live::start(&quiet_busy(), &[], &[]);
    run.wait_for("ready");
    run.signal(sig);
    let (got, stderr) = run.finish();
    assert_eq!(got, code, "{stderr}");
    assert!(
        stderr.contains(&format!("interrupted by SIG{sig} while running"))
            && stderr.contains("killed 3 etcd member(s), removed the work dir"),
        "{stderr}"
    );
    assert_all_gone(&run.pids());
    assert!(!run.workdir().exists());
}

#[test]
fn sigint_tears_down_and_exits_130() {
    interrupted("INT", 130);
}

#[test]
fn sigterm_tears_down_and_exits_143() {
    interrupted("TERM", 143);
}

#[test]
fn sigkill_leaves_no_member_and_clean_removes_the_work_dir() {
    let mut run = Live::start(&quiet_busy(), &[], &[]);
    run.wait_for("ready");
    run.signal("KILL");
    let (code, _) = run.finish();
    assert_eq!(code, -9);
    assert_all_gone(&run.pids());
    let dir = run.workdir();
    assert!(
        dir.exists(),
        "nothing of ours ran after SIGKILL, so the work dir is still there"
    );
    let clean = common::etcdscript(&["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    common::assert_has(&clean.stdout, format!("removed {}", dir.display()));
    assert!(!dir.exists());
}

#[test]
fn keep_keeps_a_private_work_dir_and_no_key_reaches_the_output() {
    use std::os::unix::fs::PermissionsExt;
    let mut run = Live::start(
        THREE_READY,
        &["--keep"],
        &[("RUST_LOG", "etcdscript=trace")],
    );
    let (code, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_all_gone(&run.pids());
    let dir = run.workdir();
    assert!(
        stderr.contains(&format!("work dir kept: {}", dir.display())),
        "{stderr}"
    );
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let output = format!("{}\n{stderr}", run.transcript.join("\n"));
    let mut keys = 0;
    for entry in std::fs::read_dir(dir.join("pki")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "key") {
            keys += 1;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600,
                "{}",
                path.display()
            );
            let pem = std::fs::read_to_string(&path).unwrap();
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                assert!(
                    !output.contains(line),
                    "key material of {} in the output",
                    path.display()
                );
            }
        }
    }
    assert!(
        keys >= 3,
        "expected the CA, server, client and probe keys, found {keys}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn timeout_stops_the_run_and_tears_down() {
    let mut run = Live::start(&quiet_busy(), &["--timeout", "3"], &[]);
    let (code, stderr) = run.finish();
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("the run went past --timeout (3s)"),
        "{stderr}"
    );
    assert_all_gone(&run.pids());
    assert!(!run.workdir().exists());
}

#[test]
fn a_lost_race_for_a_port_is_retried() {
    // The hook takes the first member's client port between our pick and etcd's bind, as
    // another process on the machine could.
    let mut run = Live::start(THREE_READY, &[], &[("ETCDSCRIPT_TEST_HOOKS", "steal-port")]);
    let (code, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("a port was taken before etcd could bind it; picking new ports"),
        "{stderr}"
    );
    assert!(
        run.transcript.iter().any(|l| l == "start m1: serving"),
        "{:?}",
        run.transcript
    );
    assert_all_gone(&run.pids());
}

#[test]
fn a_member_killed_from_outside_is_named() {
    let mut run = Live::start(&busy(), &[], &[]);
    run.wait_for("ready");
    let victim = run.pids()[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (code, stderr) = run.finish();
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("member m1 is no longer running"),
        "{stderr}"
    );
    assert_all_gone(&run.pids());
}

#[test]
fn a_member_that_never_becomes_healthy_fails_within_its_bound_quoting_its_log() {
    let text = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let c = cluster(["m1", "m2", "m3"], #{ ca: ca, cert: server, health_timeout_ms: 1000 });
spawn_member(c, "m1");
wait_healthy(c);
"#;
    let started = std::time::Instant::now();
    let mut run = Live::start(text, &[], &[]);
    let (code, stderr) = run.finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("wait healthy m1: rejected: timeout"),
        "{stderr}"
    );
    assert!(
        stderr.contains("detail: not healthy within 1s: m1: "),
        "{stderr}"
    );
    assert_all_gone(&run.pids());
}
