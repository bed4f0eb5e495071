//! `spawn_members`: members started at once end as they would one after another, in the same
//! order: the same transcript, the same members running, the same error; a lost race for a port
//! is tried again; a member that dies while starting leaves those after it unstarted; nothing is
//! left running.

mod common;

use etcdscript::error::exit_code::{CHECK_FAILED, SCRIPT_ERROR};

use common::{assert_all_gone, Case, Live};

const PKI: &str = r#"
let ca = ca("ca");
let s = |name| issue(ca, name, #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let s1 = s.call("s1");
let s2 = s.call("s2");
let s3 = s.call("s3");
let client = issue(ca, "client");
let c = cluster(["m1", "m2", "m3"], #{ ca: ca, certs: [s1, s2, s3] });
"#;

/// After the starts: the members that run hold a quorum and serve.
const AFTER: &str = r#"
wait_healthy(c);
kv_set(c.member("m1"), "k", "v", client);
assert_eq(kv_get(c.member("m3"), "k", client), "v");
"#;

const ONE_BY_ONE: &str = "for n in c.names { spawn_member(c, n); }";
const AT_ONCE: &str = "spawn_members(c);";

fn run(name: &str, body: &str) -> common::Run {
    Case::new(name).script(PKI).script(body).run()
}

#[test]
fn at_once_and_one_by_one_say_the_same() {
    let one = run("one-by-one.rhai", &format!("{ONE_BY_ONE}\n{AFTER}"));
    let once = run("at-once.rhai", &format!("{AT_ONCE}\n{AFTER}"));
    one.code(0);
    once.code(0);
    assert_eq!(once.stdout, one.stdout);
    for m in ["m1 (cert s1)", "m2 (cert s2)", "m3 (cert s3)"] {
        once.stdout_has(&format!("start {m}: serving"));
    }
}

/// The second member cannot start (its key is not a key): the first runs, the call fails with
/// the second's error, and the third was never started: it starts afterwards, fresh, and the
/// two form a quorum. Starting them one after another says exactly the same.
#[test]
fn a_failure_in_the_middle_ends_the_call_as_one_by_one_would() {
    let body = |start: &str| {
        format!(
            "tamper(s2, \"key\");\nexpect_error(|| {{ {start} }}, \"start failed\");\n\
             spawn_member(c, \"m3\");\n{AFTER}"
        )
    };
    let one = run("middle-one-by-one.rhai", &body(ONE_BY_ONE));
    let once = run("middle-at-once.rhai", &body(AT_ONCE));
    one.code(0);
    once.code(0);
    assert_eq!(once.stdout, one.stdout);
    let lines: Vec<&str> = once.stdout.lines().collect();
    let failed = lines
        .iter()
        .position(|l| l.starts_with("start m2 (cert s2): failed: start failed"))
        .unwrap_or_else(|| panic!("no failed start of m2:\n{}", once.stdout));
    assert!(lines[..failed].contains(&"start m1 (cert s1): serving"));
    let m3: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("start m3"))
        .collect();
    assert_eq!(m3.len(), 1, "{}", once.stdout);
    assert!(m3[0] > failed, "{}", once.stdout);

    // Inverted: the failure is a start failure, and no other class passes for it.
    let claim = run(
        "middle-wrong-class.rhai",
        "tamper(s2, \"key\");\nexpect_error(|| spawn_members(c), \"unknown authority\");\n",
    );
    claim.code(CHECK_FAILED).stderr_has("but with start failed");
    // Without the tampered key the same call succeeds: the failure above is m2's.
    run("middle-control.rhai", &format!("{AT_ONCE}\n{AFTER}")).code(0);
}

/// A member that dies after its bootstrap check, once the next has been launched: the next is
/// stopped again and goes back to planned (it starts fresh later), and nothing is left running.
#[test]
fn a_member_dying_while_starting_leaves_the_next_unstarted() {
    let script = format!(
        "{PKI}expect_error(|| spawn_members(c), \"start failed\");\nspawn_member(c, \"m3\");\n{AFTER}print(\"done\");\n"
    );
    let mut run = Live::start(
        &script,
        &[],
        &[("ETCDSCRIPT_TEST_HOOKS", "kill-second-start")],
    );
    let (code, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    // m3 was launched during the call, then again after it.
    assert_eq!(
        stderr.matches("started etcd member=m3").count(),
        2,
        "{stderr}"
    );
    let t = &run.transcript;
    let failed = t
        .iter()
        .position(|l| l.starts_with("start m2 (cert s2): failed: start failed"))
        .unwrap_or_else(|| panic!("{t:?}"));
    assert_eq!(t[failed - 1], "start m1 (cert s1): serving", "{t:?}");
    assert_eq!(t[failed + 1], "start m3 (cert s3): serving", "{t:?}");
    assert!(t.iter().any(|l| l == "done"), "{t:?}");
    assert_all_gone(&run.pids());
}

/// A port taken between its release and etcd's bind: a client port is picked anew for that
/// member alone; a peer port (in every member's configuration) for the whole call.
#[test]
fn a_lost_race_for_a_port_is_retried_when_members_start_at_once() {
    for (hook, said) in [
        (
            "steal-port",
            "its client port was taken before etcd could bind it; picking a new one",
        ),
        (
            "steal-peer-port",
            "a port was taken before etcd could bind it; picking new ports",
        ),
    ] {
        let script = format!("{PKI}{AT_ONCE}\n{AFTER}");
        let mut run = Live::start(&script, &[], &[("ETCDSCRIPT_TEST_HOOKS", hook)]);
        let (code, stderr) = run.finish();
        assert_eq!(code, 0, "{hook}: {stderr}");
        assert!(stderr.contains(said), "{hook}: {stderr}");
        for m in ["m1 (cert s1)", "m2 (cert s2)", "m3 (cert s3)"] {
            let line = format!("start {m}: serving");
            assert!(
                run.transcript.contains(&line),
                "{hook}: {:?}",
                run.transcript
            );
        }
        assert_all_gone(&run.pids());
    }
}

/// Whether another run could be given `port` now (it picks ports by binding them, without
/// SO_REUSEADDR), or another program could listen on it (with SO_REUSEADDR, which also passes
/// the connections a stopped member left in TIME_WAIT, and a hold shared with a running etcd).
fn another_run_could_take(port: u16) -> bool {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    let plain = socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .is_ok();
    plain || std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A member stopped or killed keeps its ports until it starts again: no other run is given
/// them meanwhile (they run side by side in a suite), and it starts again on them.
#[test]
fn stopped_members_keep_their_ports_until_they_start_again() {
    // `gate` is a member of its own that the script pauses and then waits for: the script
    // goes on only once this test has looked at the ports and let `gate` run again.
    let script = format!(
        "{PKI}{AT_ONCE}\n{AFTER}\
         let gate = cluster([\"g\"], #{{ ca: ca, cert: s1, health_timeout_ms: 60000 }});\n\
         spawn_member(gate, \"g\");\nwait_healthy(gate);\n\
         stop_member(c.member(\"m2\"));\nkill_member(c.member(\"m3\"));\n\
         pause_member(gate.member(\"g\"));\nprint(\"look at the ports\");\nwait_healthy(gate);\n\
         spawn_members(c, [\"m2\", \"m3\"]);\n{AFTER}print(\"done\");\n"
    );
    let mut run = Live::start(&script, &[], &[]);
    run.wait_for("look at the ports");
    let held: Vec<(String, u16)> = ["m2", "m3"]
        .iter()
        .flat_map(|m| {
            [
                (m.to_string(), run.client_port(m)),
                (m.to_string(), run.peer_port(m)),
            ]
        })
        .collect();
    let taken: Vec<&(String, u16)> = held
        .iter()
        .filter(|(_, p)| another_run_could_take(*p))
        .collect();
    // Control: the check tells a held port from a free one.
    let mine = tokio::net::TcpSocket::new_v4().expect("socket");
    mine.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let port = mine.local_addr().expect("address").port();
    assert!(!another_run_could_take(port));
    drop(mine);
    assert!(another_run_could_take(port));
    let gate = *run.pids().last().expect("gate's pid");
    assert!(common::signal_pid(gate, "CONT"), "gate is gone");
    let (code, stderr) = run.finish();
    assert!(
        taken.is_empty(),
        "ports of stopped members were free: {taken:?}"
    );
    assert_eq!(code, 0, "{stderr}");
    // They started again on the same ports: each was planned once and never picked anew.
    assert!(!stderr.contains("picking"), "{stderr}");
    assert!(
        run.transcript.iter().any(|l| l == "done"),
        "{:?}",
        run.transcript
    );
    assert_all_gone(&run.pids());
}

#[test]
fn bad_lists_are_named() {
    for (body, words) in [
        ("spawn_members(c, []);", "the list of member names is empty"),
        (
            "spawn_members(c, [\"m1\", 2]);",
            "spawn_members(): member names must be strings, got",
        ),
        ("spawn_members(c, [\"m9\"]);", "m9"),
        ("spawn_members(c, \"m1\");", "spawn_members"),
    ] {
        run("bad-list.rhai", body)
            .code(SCRIPT_ERROR)
            .stderr_has(words)
            .stderr_has("bad-list.rhai:9:");
    }
    // A member named twice: the first start stands, the second is the error, as one by one.
    let twice = run("twice.rhai", "spawn_members(c, [\"m1\", \"m1\"]);");
    twice
        .code(SCRIPT_ERROR)
        .stdout_has("start m1 (cert s1): serving")
        .stderr_has("member m1 is already running");
}
