//! Members on hosts of their own (network namespaces): however a run ends, the namespaces its
//! members ran in are gone with them, and the machine's own namespace never gets a link of the
//! run's; runs with the same addresses do not collide; a run that cannot make namespaces says
//! so. Real etcd, real namespaces (the tests run as root, as CI does).

mod common;

use std::collections::HashSet;

use common::{assert_all_gone, Case, Live};
use etcdscript::error::exit_code;

/// Three members on three hosts, healthy, then "ready" in the transcript.
const THREE_HOSTS: &str = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "server", sans: ["198.18.0.11", "198.18.0.12", "198.18.0.13"], usage: ["server", "client"] });
let client = issue(ca, "client");
let c = cluster(["m1", "m2", "m3"], #{ ca: ca, cert: server, hosts: ["198.18.0.11", "198.18.0.12", "198.18.0.13"] });
for n in c.names { spawn_member(c, n); }
wait_healthy(c);
kv_set(c, "k", "v", client);
print("ready");
"#;

/// The network namespace of a process, if it runs.
fn netns_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The network namespaces any process is in.
fn live_namespaces() -> HashSet<String> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(netns_of)
        .collect()
}

/// The links of the namespace the tests run in.
fn our_links() -> HashSet<String> {
    std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_owned()))
        .collect()
}

/// The namespaces a run logged making (with -v).
fn logged_namespaces(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("made host namespace"))
        .filter_map(|l| {
            let start = l.find("netns=")? + "netns=".len();
            Some(l[start..].split_whitespace().next()?.to_owned())
        })
        .collect()
}

/// Starts `text` and waits for "ready"; the script must keep running after it. Checks that each
/// member runs in a namespace of its own that the run logged making, and that no link appeared
/// in ours.
fn start_ready(text: &str, env: &[(&str, &str)]) -> Live {
    let links = our_links();
    let mut run = Live::start(text, &[], env);
    run.wait_for("ready");
    let spaces: HashSet<String> = run.pids().iter().filter_map(|&p| netns_of(p)).collect();
    let made: HashSet<String> = logged_namespaces(&run.stderr.lock().unwrap())
        .into_iter()
        .collect();
    assert_eq!(made.len(), 3, "three host namespaces: {made:?}");
    assert_eq!(spaces, made, "each member on a host of its own");
    let new: Vec<_> = our_links().difference(&links).cloned().collect();
    assert!(new.is_empty(), "links appeared in our namespace: {new:?}");
    run
}

/// Asserts that the members are gone, and no process is left in the namespaces the run made.
fn assert_hosts_gone(run: &Live, stderr: &str) {
    assert_all_gone(&run.pids());
    let made = logged_namespaces(stderr);
    assert_eq!(made.len(), 3, "the run logged its namespaces:\n{stderr}");
    let live = live_namespaces();
    let left: Vec<_> = made.iter().filter(|s| live.contains(*s)).collect();
    assert!(left.is_empty(), "namespaces still in use: {left:?}");
}

/// A script that runs until stopped from outside, after "ready".
fn busy() -> String {
    format!("{THREE_HOSTS}\nlet i = 0;\nloop {{ i += 1; }}\n")
}

#[test]
fn normal_end() {
    let links = our_links();
    let mut run = Live::start(THREE_HOSTS, &[], &[]);
    let (code, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_hosts_gone(&run, &stderr);
    assert_eq!(our_links(), links);
    assert!(!run.workdir().exists());
}

#[test]
fn script_error() {
    let mut run = Live::start(&format!("{THREE_HOSTS}\nthrow \"boom\";\n"), &[], &[]);
    let (code, stderr) = run.finish();
    assert_eq!(code, exit_code::SCRIPT_ERROR, "{stderr}");
    assert_hosts_gone(&run, &stderr);
}

#[test]
fn panic_inside_etcdscript() {
    let text = format!("{THREE_HOSTS}\npanic_for_tests();\n");
    let mut run = Live::start(&text, &[], &[("ETCDSCRIPT_TEST_HOOKS", "panic")]);
    let (code, stderr) = run.finish();
    assert_eq!(code, 101, "{stderr}");
    assert_hosts_gone(&run, &stderr);
}

fn interrupted(sig: &str, code: i32) {
    let mut run = start_ready(&busy(), &[]);
    run.signal(sig);
    let (got, stderr) = run.finish();
    assert_eq!(got, code, "{stderr}");
    assert_hosts_gone(&run, &stderr);
    assert!(!run.workdir().exists());
}

#[test]
fn sigint() {
    interrupted("INT", 130);
}

#[test]
fn sigterm() {
    interrupted("TERM", 143);
}

#[test]
fn sigkill_then_clean() {
    let mut run = start_ready(&busy(), &[]);
    run.signal("KILL");
    let (code, stderr) = run.finish();
    assert_eq!(code, -9);
    // The members die with the run (their death signal), and their namespaces with them.
    assert_hosts_gone(&run, &stderr);
    let clean = common::etcdscript(&["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(!run.workdir().exists());
}

#[test]
fn eight_runs_with_the_same_addresses_at_once() {
    let text =
        format!("{THREE_HOSTS}\nassert_eq(kv_get(c.member(\"m3\"), \"k\", client), \"v\");\n");
    let runs = common::in_parallel(&(0..8).collect::<Vec<_>>(), 8, |i| {
        common::run_text(&format!("hosts-{i}.rhai"), &text, &[]).0
    });
    for run in runs {
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        common::assert_has(&run.stdout, "ok: 1 check held");
    }
}

#[test]
fn without_the_right_to_make_namespaces_the_run_says_so() {
    // The same binary as an unprivileged user: no namespaces, a clear refusal, nothing started.
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("hosts.rhai");
    std::fs::write(&script, THREE_HOSTS).expect("write script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(common::bin())
        .arg("run")
        .arg(&script)
        .env("TMPDIR", dir.path())
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(exit_code::ENVIRONMENT),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    common::assert_has(&stderr, "hosts need network namespaces");
    common::assert_has(&stderr, "run etcdscript as root");
    common::assert_has(&stderr, "hosts.rhai:5:9");
}

#[test]
fn addresses_outside_the_range_and_twice_given_are_refused() {
    let base = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ usage: ["server", "client"] });
"#;
    // (the members, the `hosts` option, what the error says)
    let cases = [
        (
            r#"["m1"]"#,
            r#"["10.0.0.1"]"#,
            "host address 10.0.0.1 is not allowed",
        ),
        (r#"["m1"]"#, r#"["10.0.0.1"]"#, "198.18.0.0/15"),
        (
            r#"["m1"]"#,
            r#"["198.18.0.1"]"#,
            "except 198.18.0.1 (the client's)",
        ),
        (
            r#"["m1"]"#,
            r#"["198.19.255.255"]"#,
            "the network's first and last",
        ),
        (
            r#"["m1", "m2"]"#,
            r#"["198.18.0.11", "198.18.0.11"]"#,
            "host 198.18.0.11 is given twice",
        ),
        (
            r#"["m1"]"#,
            r#"["198.18.0.11", "198.18.0.12"]"#,
            "hosts has 2 hosts for 1 members",
        ),
        (
            r#"["m1"]"#,
            r#"[#{ ip: "198.18.0.11", name: "bad name" }]"#,
            "host name `bad name` is not a DNS name",
        ),
        (
            r#"["m1"]"#,
            r#"[#{ ip: "198.18.0.11", name: "LocalHost" }]"#,
            "may not be called `localhost`",
        ),
        (
            r#"["m1", "m2"]"#,
            r#"[#{ ip: "198.18.0.11", name: "a.test" }, #{ ip: "198.18.0.12", name: "A.test" }]"#,
            "is given twice",
        ),
        (
            r#"["m1"]"#,
            r#"["198.18.0.11"], host: "x.test""#,
            "leave out `host`",
        ),
    ];
    for (members, hosts, says) in cases {
        Case::new("hosts.rhai")
            .script(base)
            .script(&format!(
                "cluster({members}, #{{ ca: ca, cert: server, hosts: {hosts} }});"
            ))
            .run()
            .code(exit_code::SCRIPT_ERROR)
            .stderr_has(says);
    }
    Case::new("dial.rhai")
        .script(common::ONE_MEMBER)
        .script(r#"kv_get(m1, "k", #{ cert: client, dial: "ip" });"#)
        .run()
        .code(exit_code::SCRIPT_ERROR)
        .stderr_has("member m1 has no host of its own");
}

use common::etcd_35;

#[test]
fn a_peer_client_certificate_apart_from_the_peer_certificate() {
    let base = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let serve_only = issue(ca, "serve-only", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server"] });
let dialer = issue(ca, "dialer", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["client"] });
let c = cluster(["m1", "m2"], #{ ca: ca, cert: server });
spawn_member(c, "m1");
"#;
    // A member whose peer dials are refused still joins when its peers can dial it: so the
    // check is the peers' refusals, not the cluster's health.
    let with = Case::new("peer-client.rhai")
        .script(base)
        .script(r#"spawn_member(c, "m2", #{ peer_cert: serve_only, peer_client_cert: dialer });"#)
        .script("wait_healthy(c);")
        .script(r#"peer_refusal(c.member("m1"));"#)
        .run();
    if etcd_35() {
        with.code(0)
            .stdout_has("start m2 (peer cert serve-only, peer client cert dialer): serving")
            .stdout_has("watch m1 for refused peers: none");
        // Inverted: the server-only certificate alone, dialing peers too, is refused.
        Case::new("peer-client-inverted.rhai")
            .script(base)
            .script(r#"spawn_member(c, "m2", #{ peer_cert: serve_only });"#)
            .script(r#"expect_error(|| peer_refusal(c.member("m1")), "incompatible key usage");"#)
            .run()
            .code(0);
    } else {
        with.code(exit_code::SCRIPT_ERROR)
            .stderr_has("peer_client_cert (--peer-client-cert-file) needs etcd 3.5 or later");
    }
}

#[test]
fn a_new_partition_replaces_the_one_in_force() {
    // m1 alone, then m1 with m2: if the first cut stayed, m1 would still be alone and its
    // write would find no quorum. The write may wait for an election between m1 (its term
    // raised while alone: etcd 3.4 has no pre-vote) and m2, so it is given a bound no busy
    // machine reaches.
    Case::new("repartition.rhai")
        .script(THREE_HOSTS)
        .script("let m = c.members;\n")
        .script("partition([m[0]], [m[1], m[2]]);\n")
        .script("expect_error(|| kv_set(m[0], \"k\", \"alone\", #{ cert: client, timeout_ms: 1000 }), \"timeout\");\n")
        .script("partition([m[0], m[1]], [m[2]]);\n")
        .script("kv_set(m[0], \"k\", \"with m2\", #{ cert: client, timeout_ms: 30000 });\n")
        .script("heal();\n")
        .run()
        .code(0)
        .stdout_has(
            "partition m1, m2 | m3: cut off from each other\n\
             put k = with m2 via m1 as client, waiting 30000 ms: ok",
        );
}
