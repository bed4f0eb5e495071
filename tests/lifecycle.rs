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
    // Calls, not pure script: a pure loop may reach the operations limit (50 million) before
    // 3 s on a fast machine, and the test must not depend on the machine's speed.
    let mut run = Live::start(&busy(), &["--timeout", "3"], &[]);
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
        stderr.contains("its client port was taken before etcd could bind it; picking a new one"),
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

/// `etcdscript` with its temp dir set to `tmp`, so that its work dirs, and `clean`, stay there.
fn in_tmp(tmp: &std::path::Path, args: &[&str]) -> common::Run {
    common::etcdscript_env(args, &[("TMPDIR", tmp.to_str().unwrap())], 120)
}

#[test]
fn a_kept_work_dir_outlives_later_runs_and_clean_until_clean_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let kept = in_tmp(
        tmp.path(),
        &["run", "--keep", "scripts/client-no-cert.rhai"],
    );
    assert_eq!(kept.code, 0, "{}", kept.stderr);
    let dirs = common::workdirs_in(tmp.path());
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = dirs[0].clone();
    // PKI and logs are kept; the data dirs (120 MB each) are not, and the size is said.
    common::assert_has(&kept.stderr, format!("work dir kept: {} (", dir.display()));
    common::assert_has(&kept.stderr, "members' data dirs (");
    assert!(dir.join("pki/client.key").exists() && dir.join("members/m1.log").exists());
    assert!(
        !dir.join("members/m1.etcd").exists(),
        "data dir kept without --keep-data"
    );
    // Another run, and `clean`, leave it alone: its owner is dead, but it was asked for.
    let other = in_tmp(tmp.path(), &["run", "scripts/client-no-cert.rhai"]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    let clean = in_tmp(tmp.path(), &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    common::assert_has(&clean.stdout, format!("kept {} (", dir.display()));
    assert!(
        dir.exists(),
        "a kept work dir was removed by a later run or clean"
    );
    let clean = in_tmp(tmp.path(), &["clean", "--kept"]);
    common::assert_has(&clean.stdout, format!("removed {}", dir.display()));
    assert!(!dir.exists());
    // --keep-data keeps the data dirs too.
    let data = in_tmp(
        tmp.path(),
        &["run", "--keep-data", "scripts/client-no-cert.rhai"],
    );
    assert_eq!(data.code, 0, "{}", data.stderr);
    let dir = common::workdirs_in(tmp.path())
        .pop()
        .expect("a kept work dir");
    common::assert_has(&data.stderr, "data dirs included)");
    assert!(dir.join("members/m1.etcd").is_dir());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn proc_text(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[test]
fn clean_removes_only_work_dirs_whose_run_is_proven_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .unwrap()
        .display()
        .to_string();
    let boot = proc_text("/proc/sys/kernel/random/boot_id");
    // A PID that no longer runs: a child that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let stamp = |pid: u32, ns: &str, boot: &str| {
        format!("pid {pid}\nstart 1\npidns {ns}\nboot {boot}\nkeep no\n")
    };
    let cases = [
        // (dir, owner file, removed?)
        (
            "etcdscript-other-namespace",
            Some(stamp(1, "pid:[1]", &boot)),
            false,
        ),
        ("etcdscript-legacy-stamp", Some("1 12345".to_owned()), false),
        (
            "etcdscript-garbage-stamp",
            Some("\u{0}\u{1}".to_owned()),
            false,
        ),
        ("etcdscript-no-owner", None, false),
        ("etcdscript-dead-here", Some(stamp(gone, &ns, &boot)), true),
        (
            "etcdscript-other-boot",
            Some(stamp(1, "pid:[1]", "another-boot")),
            true,
        ),
    ];
    for (name, owner, _) in &cases {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("pki.key"), "secret").unwrap();
        if let Some(owner) = owner {
            std::fs::write(dir.join("owner"), owner).unwrap();
        }
    }
    let clean = in_tmp(tmp.path(), &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    for (name, _, removed) in &cases {
        let dir = tmp.path().join(name);
        assert_eq!(!dir.exists(), *removed, "{name}:\n{}", clean.stdout);
    }
    common::assert_has(
        &clean.stdout,
        "etcdscript-other-namespace: its run is in another PID namespace",
    );
    // A run started meanwhile does the same.
    let run = in_tmp(tmp.path(), &["run", "scripts/client-no-cert.rhai"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(tmp.path().join("etcdscript-other-namespace").exists());
}

#[test]
fn a_symlinked_workdir_is_refused_and_its_target_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let run = common::etcdscript(&[
        "run",
        "--workdir",
        link.to_str().unwrap(),
        "scripts/demo.rhai",
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    common::assert_has(&run.stderr, "is a symbolic link");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Scripts that write into the work dir all the time: certificates one after another, and
/// members started one after another.
const ISSUING: &str = "let ca = ca(\"ca\");\nfor i in 0..100000 { issue(ca, \"c\" + i); }\n";
const SPAWNING: &str = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
for i in 0..40 {
    let c = cluster(["m" + i], #{ ca: ca, cert: server });
    spawn_member(c, "m" + i);
}
"#;

/// SIGINT and SIGTERM at moments spread over a run's life, from before the signal thread
/// exists to deep in the script: however it lands, nothing is left (no work dir, no member),
/// and what stderr says was removed was removed. The moments are fixed, so the suite does not
/// depend on the machine's speed: a slow machine moves each moment earlier in the run.
#[test]
fn a_signal_at_any_moment_leaves_nothing_behind() {
    let moments_ms: [u64; 12] = [0, 2, 5, 10, 20, 35, 50, 80, 120, 200, 350, 600];
    let mut cases = Vec::new();
    for (script, text) in [("issuing", ISSUING), ("spawning", SPAWNING)] {
        for (i, &ms) in moments_ms.iter().enumerate() {
            let sig = if i % 2 == 0 { "INT" } else { "TERM" };
            cases.push((script, text, ms, sig));
        }
    }
    let failures: Vec<String> = common::in_parallel(&cases, 3, |&(script, text, ms, sig)| {
        signalled(text, ms, sig)
            .err()
            .map(|e| format!("{script} +{ms}ms SIG{sig}: {e}"))
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn signalled(text: &str, ms: u64, sig: &str) -> Result<(), String> {
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("script.rhai");
    std::fs::write(&script, text).unwrap();
    let work = tmp.path().join("tmp");
    std::fs::create_dir(&work).unwrap();
    let err = tmp.path().join("stderr");
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["run", script.to_str().unwrap()])
        .env("TMPDIR", &work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    // A shell without job control starts background commands with SIGINT ignored, and an
    // ignored signal stays ignored across exec: the test must not depend on how it was started.
    // SAFETY: `signal` is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            for s in [
                nix::sys::signal::Signal::SIGINT,
                nix::sys::signal::Signal::SIGTERM,
            ] {
                nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl)?;
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let signal = if sig == "INT" {
        nix::sys::signal::Signal::SIGINT
    } else {
        nix::sys::signal::Signal::SIGTERM
    };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
    let code = common::wait_bounded(&mut child, 60);
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    // Before the signal thread exists, the default action ends the process, before any work
    // dir exists.
    let expected = if sig == "INT" { [130, -2] } else { [143, -15] };
    if !expected.contains(&code) {
        return Err(format!("exit {code}: {stderr}"));
    }
    if stderr.contains("could not remove") {
        return Err(stderr);
    }
    let left = common::workdirs_in(&work);
    if !left.is_empty() {
        let files: Vec<String> = left.iter().flat_map(|d| walk(d)).collect();
        return Err(format!("left {files:?}; stderr: {stderr}"));
    }
    // Members die with their process group, or with us (PR_SET_PDEATHSIG): bounded wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !common::etcd_under(&work).is_empty() {
        if std::time::Instant::now() >= deadline {
            return Err(format!("members left: {:?}", common::etcd_under(&work)));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

fn walk(p: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(p) {
        Ok(entries) => entries.flatten().flat_map(|e| walk(&e.path())).collect(),
        Err(_) => vec![p.display().to_string()],
    }
}

/// A live run in another PID namespace that shares our temp dir, as a CI container would: its
/// owner stamp names a PID that means nothing here, so neither `clean` nor another run may
/// take it for dead. Needs `unshare` and the right to use it (root); skipped without them.
#[test]
fn a_live_run_in_another_pid_namespace_keeps_its_work_dir() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let can = Command::new("unshare")
        .args(["-p", "-f", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !can {
        eprintln!("skipped: cannot make a PID namespace here (unshare -p needs root)");
        return;
    }
    // A member that serves and then idles, and a script that waits on it without end.
    let (etcd, _fake) = common::fake_etcd(
        "echo '{\"level\":\"info\",\"msg\":\"serving peer traffic\"}' >&2\nexec sleep 600",
    );
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("wait.rhai");
    std::fs::write(
        &script,
        "let ca = ca(\"ca\");\n\
         let s = issue(ca, \"s\", #{ cn: \"localhost\", sans: [\"localhost\"], usage: [\"server\", \"client\"] });\n\
         let c = cluster([\"m1\"], #{ ca: ca, cert: s });\nlet m = spawn_member(c, \"m1\");\n\
         print(\"ready\");\nloop { peer_refusal(m); }\n",
    )
    .unwrap();
    let work = tmp.path().join("tmp");
    std::fs::create_dir(&work).unwrap();
    let mut ns = Command::new("unshare")
        .args(["-p", "-f", "--mount-proc", "--kill-child"])
        .arg(common::bin())
        .args(["run", "--timeout", "120", "--etcd", etcd.to_str().unwrap()])
        .arg(&script)
        .env("TMPDIR", &work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(ns.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l == "ready")),
        "the run in the namespace never got ready"
    );
    let dirs = common::workdirs_in(&work);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let owner = std::fs::read_to_string(dirs[0].join("owner")).unwrap();
    assert!(owner.starts_with("pid 1\n"), "{owner}");
    let clean = in_tmp(&work, &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    common::assert_has(&clean.stdout, "its run is in another PID namespace");
    let other = in_tmp(&work, &["run", "scripts/client-no-cert.rhai"]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert!(
        dirs[0].join("pki/ca.key").exists(),
        "a live run's work dir was removed"
    );
    // The run in the namespace, asked to stop, removes its own work dir.
    let children =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", ns.id(), ns.id())).unwrap();
    let inner: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(inner),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    common::wait_bounded(&mut ns, 60);
    assert!(!dirs[0].exists(), "the run did not remove its own work dir");
}
