//! Members over time and the background load: what each primitive refuses, and the checks that
//! must be able to fail (a lost write, a load that did fail). The scenarios in scripts/ show what
//! they prove; these pin their edges. Real etcd.

mod common;

use common::{Case, ONE_MEMBER};
use etcdscript::error::exit_code;

#[test]
fn sleep_is_ours_in_milliseconds_bounded_by_the_timeout() {
    // Rhai's own `sleep` takes seconds and would outlive --timeout: it is never the one called.
    Case::new("sleep.rhai")
        .script("sleep(20);\nprint(\"after\");\n")
        .run()
        .code(0)
        .stdout_has("sleep 20 ms\nafter");
    Case::new("sleep-float.rhai")
        .script("sleep(2.5);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("`ms` must be an integer from 1 to 60000, got float");
    Case::new("sleep-long.rhai")
        .script("sleep(600000);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("from 1 to 60000");
    Case::new("sleep-timeout.rhai")
        .script("sleep(60000);\n")
        .arg("--timeout")
        .arg("1")
        .run()
        .code(exit_code::TIMEOUT)
        .stderr_has("the run went past --timeout (1s)");
}

#[test]
fn pause_and_resume_say_what_is_wrong() {
    Case::new("pause.rhai")
        .script(ONE_MEMBER)
        .script("pause_member(m1);\npause_member(m1);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("member m1 is already paused");
    Case::new("resume.rhai")
        .script(ONE_MEMBER)
        .script("resume_member(m1);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("member m1 is not paused");
    // A paused member answers nothing within the call's bound, and stops cleanly.
    Case::new("paused.rhai")
        .script(ONE_MEMBER)
        .script("pause_member(m1);\n")
        .script("expect_error(|| kv_get(m1, \"k\", #{ cert: client, timeout_ms: 200 }), \"timeout\");\n")
        .script("stop_member(m1);\n")
        .run()
        .code(0)
        .stdout_has("get k via m1 as client, waiting 200 ms: rejected: timeout (from the client), as expected\nstop m1: stopped");
}

#[test]
fn a_partition_needs_members_on_hosts() {
    Case::new("partition.rhai")
        .script(ONE_MEMBER)
        .script("partition([m1], []);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("member m1 has no host of its own");
    Case::new("partition-twice.rhai")
        .script(ONE_MEMBER)
        .script("partition([m1], [m1]);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("member m1 is in two groups");
}

#[test]
fn a_load_needs_members_and_a_sane_rate() {
    Case::new("load-none.rhai")
        .script(ONE_MEMBER)
        .script("load([]);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("it needs at least one member");
    Case::new("load-rate.rhai")
        .script(ONE_MEMBER)
        .script("load(m1, #{ identity: client, rate: 100000 });\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("rate");
}

/// A load that ran, stopped, and checked: the positive control of the lost-write check.
const LOAD_RAN: &str = r#"
let l = load(m1, #{ identity: client, rate: 50 });
sleep(100);
let s = stop_load(l);
assert(s.failed == 0 && s.acknowledged > 0 && s.writes == s.acknowledged, "every write acknowledged");
"#;

#[test]
fn the_lost_write_check_passes_on_a_whole_record() {
    Case::new("load.rhai")
        .script(ONE_MEMBER)
        .script(LOAD_RAN)
        .script("check_no_lost_writes(l, m1);\n")
        .run()
        .code(0)
        .stdout_has("load 0 via m1 as client: started, 50 writes a second, each within 2000 ms")
        .stdout_has("stop load 0: stopped")
        .stdout_has("read back load 0 via m1: every acknowledged write is there");
}

#[test]
fn the_lost_write_check_fails_when_an_acknowledged_write_is_gone() {
    // Inverted: the first write (always made, always acknowledged here) is overwritten.
    Case::new("load-lost.rhai")
        .script(ONE_MEMBER)
        .script(LOAD_RAN)
        .script("kv_set(m1, \"load-0/000001\", \"tampered\", client);\n")
        .script("check_no_lost_writes(l, m1);\n")
        .run()
        .code(exit_code::CHECK_FAILED)
        .stderr_has("acknowledged writes are not there (first: load-0/000001)");
}

#[test]
fn a_load_through_a_stopped_member_fails_with_its_class() {
    // Inverted of "no write failed": every write meets a refused connection.
    Case::new("load-down.rhai")
        .script(ONE_MEMBER)
        .script("stop_member(m1);\n")
        .script("let l = load(m1, #{ identity: client, rate: 50, timeout_ms: 200 });\n")
        .script("let s = stop_load(l);\n")
        .script("assert(s.failed == 0, \"no write failed\");\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("member m1 has been stopped");
    Case::new("load-killed.rhai")
        .script(ONE_MEMBER)
        .script("let l = load(m1, #{ identity: client, rate: 50, timeout_ms: 200 });\n")
        .script("kill_member(m1);\nsleep(300);\n")
        .script("let s = stop_load(l);\n")
        .script("assert(s.classes.keys() == [\"unavailable\"], \"only refused connections\");\n")
        .script("assert(s.failed == 0, \"no write failed\");\n")
        .run()
        .code(exit_code::CHECK_FAILED)
        .stdout_has("check: only refused connections")
        .stderr_has("assert: no write failed: does not hold");
}

#[test]
fn restart_member_keeps_the_data() {
    Case::new("restart.rhai")
        .script(ONE_MEMBER)
        .script("kv_set(m1, \"k\", \"kept\", client);\n")
        .script("restart_member(m1);\nwait_healthy(c);\n")
        .script("assert_eq(kv_get(m1, \"k\", client), \"kept\");\n")
        .run()
        .code(0)
        .stdout_has("stop m1: stopped\nstart m1: serving");
}

#[test]
fn served_cert_tells_a_renewed_certificate_from_the_one_served() {
    // Renewing a certificate the member does not serve changes nothing it serves: the check
    // that it serves the renewal must fail.
    Case::new("served.rhai")
        .script(ONE_MEMBER)
        .script("let again = renew(ca, client);\n")
        .script("assert_eq(served_cert(m1), \"server (renewal 1)\");\n")
        .run()
        .code(exit_code::CHECK_FAILED)
        .stdout_has("renew client: CN=client, usage client, signed by ca, ec-p256, valid for 365 days; renewal 1, files replaced by rename\nm1 serves server (as issued)");
    Case::new("served-renewed.rhai")
        .script(ONE_MEMBER)
        .script("renew(ca, server, #{ mode: \"copy\", not_after_secs: 600 });\n")
        .script("assert_eq(served_cert(m1), \"server (renewal 1)\");\n")
        .run()
        .code(0)
        .stdout_has("valid for 600 seconds; renewal 1, files replaced by copy\nm1 serves server (renewal 1)");
    Case::new("renew-mode.rhai")
        .script(ONE_MEMBER)
        .script("renew(ca, server, #{ mode: \"move\" });\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("mode `move` is not one of \"rename\", \"copy\"");
}

#[test]
fn a_ca_rotation_without_the_bundle_fails_requests() {
    // Inverted of scripts/ca-rotation.rhai: the members go straight to the new CA while the
    // clients still present the old one's certificates: the load's writes fail, and say why.
    Case::new("rotation-without-bundle.rhai")
        .script(ONE_MEMBER)
        .script("let fresh = ca(\"new-ca\");\n")
        .script("let l = load(m1, #{ identity: client, rate: 50, timeout_ms: 500 });\n")
        .script("restart_member(m1, #{ ca: fresh });\nsleep(1000);\n")
        .script("let s = stop_load(l);\n")
        // The load reads no member log: a handshake the member refused is "tls rejected".
        .script(
            "assert(s.classes.keys().contains(\"tls rejected\"), \"refused at the handshake\");\n",
        )
        .script("assert(s.failed == 0, \"no write failed\");\n")
        .run()
        .code(exit_code::CHECK_FAILED)
        .stdout_has("check: refused at the handshake")
        .stderr_has("assert: no write failed: does not hold");
}

#[test]
fn a_bundle_trusts_and_signs_nothing() {
    let base = "let a = ca(\"a\");\nlet b = ca(\"b\");\nlet both = bundle(\"a-and-b\", [a, b]);\n";
    Case::new("bundle.rhai")
        .script(base)
        .run()
        .code(0)
        .stdout_has("bundle a-and-b: trusts a, b");
    Case::new("bundle-issue.rhai")
        .script(base)
        .script("issue(both, \"x\");\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("`a-and-b` is a trust bundle, which signs nothing: use one of its CAs (a, b)");
    Case::new("bundle-nested.rhai")
        .script(base)
        .script("bundle(\"again\", [both, a]);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("is a bundle already");
    Case::new("bundle-empty.rhai")
        .script("bundle(\"none\", []);\n")
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("give it at least one CA");
}

/// `stop_member` ends etcd's graceful stop with SIGKILL once only its peers' connections are
/// left to drain: nothing written may be lost by it. A whole cluster stopped member by member
/// (the leader among them) and started again on its data dirs has every key, and so does a
/// member restarted while the others run.
#[test]
fn stopped_members_keep_every_write() {
    let script = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let client = issue(ca, "client");
let c = cluster(["m1", "m2", "m3"], #{ ca: ca, cert: server });
spawn_members(c);
wait_healthy(c);
let read_all = |m| {
    let n = 0;
    for i in 0..60 { if kv_get(m, "k" + i, client) == "v" + i { n += 1; } }
    n
};
for i in 0..30 { kv_set(c.member("m1"), "k" + i, "v" + i, client); }
restart_member(c.member("m1"));
wait_healthy(c);
for i in 30..60 { kv_set(c.member("m2"), "k" + i, "v" + i, client); }
for m in c.members { stop_member(m); }
spawn_members(c);
wait_healthy(c);
print("m1 has " + read_all.call(c.member("m1")));
print("m3 has " + read_all.call(c.member("m3")));
"#;
    let run = Case::new("durable.rhai").script(script).run();
    run.code(0)
        .stdout_has("m1 has 60\n")
        .stdout_has("m3 has 60\n");
    for m in ["m1", "m2", "m3"] {
        run.stdout_has(&format!("stop {m}: stopped"));
    }
}

/// The last member running in its cluster, its leader, stops as gracefully as the others: it is
/// left to step down first (it hears from no quorum), so it never tries to hand its leadership
/// to a peer already gone, which etcd gives up on only after its request timeout.
#[test]
fn the_last_member_running_stops_without_handing_over_its_leadership() {
    let script = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let c = cluster(["m1", "m2", "m3"], #{ ca: ca, cert: server });
spawn_members(c);
wait_healthy(c);
move_leader(c.member("m1"));
stop_member(c.member("m1"));
spawn_member(c, "m1");
wait_healthy(c);
move_leader(c.member("m3"));
stop_member(c.member("m1"));
stop_member(c.member("m2"));
stop_member(c.member("m3"));
"#;
    let run = Case::new("last-leader.rhai")
        .script(script)
        .arg("--keep")
        .run();
    run.code(0);
    for m in ["m1", "m2", "m3"] {
        run.stdout_has(&format!("stop {m}: stopped"));
    }
    let dir = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("work dir kept: "))
        .and_then(|rest| rest.split(" (").next())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no kept work dir:\n{}", run.stderr));
    let log = |m: &str| std::fs::read_to_string(dir.join("members").join(format!("{m}.log")));
    let (m3, m1) = (log("m3"), log("m1"));
    let _ = std::fs::remove_dir_all(&dir);
    let (m3, m1) = (m3.expect("m3's log"), m1.expect("m1's log"));
    // m3 led once the leadership moved to it. From its SIGTERM on, it did not lead: it did not
    // try to hand the leadership over, and says it skipped that.
    assert!(m3.contains("became leader"), "{m3}");
    let stopping = &m3[m3.rfind("received signal").expect("m3's SIGTERM")..];
    assert!(
        stopping.contains("skipped leadership transfer; local server is not leader"),
        "{stopping}"
    );
    assert!(
        !stopping.contains("leadership transfer starting"),
        "{stopping}"
    );
    // Control: m1, stopped while it led and its peers ran, handed its leadership over and
    // said so in these words.
    assert!(m1.contains("leadership transfer starting"), "{m1}");
}
