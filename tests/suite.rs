//! `etcdscript test` as a user without this repository has it: the built binary, etcd, and a
//! directory of scripts in a temp dir. New, changed and accepted snapshots; a changed exit code,
//! a timeout and a panic each failing in the terminal, JUnit, TAP and JSON; CI writing nothing;
//! `--partition`, `--filter`, `--list`, `--fail-fast`, several etcd binaries.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A user's suite: `scripts/` in a temp dir outside the repository.
struct Suite {
    dir: tempfile::TempDir,
}

/// What one `etcdscript test` printed and how it ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
    }
}

/// Needs no etcd, and runs in milliseconds.
const PURE: &str = "assert_eq(1 + 1, 2);\nprint(\"pure arithmetic\");\n";

impl Suite {
    fn new(scripts: &[(&str, &str)]) -> Suite {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(!dir.path().starts_with(common::root()));
        let s = Suite { dir };
        for (name, text) in scripts {
            s.write(name, text);
        }
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, name: &str, text: &str) {
        let p = self.path(&format!("scripts/{name}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// `etcdscript test ARGS` in the suite's dir, outside CI unless `env` says so.
    fn test(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let out = Command::new(common::bin())
            .arg("test")
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("CI")
            .env_remove("INSTA_UPDATE")
            .env_remove("ETCDSCRIPT_TEST_HOOKS")
            .env("XDG_CACHE_HOME", self.path("cache"))
            .envs(env.iter().copied())
            .output()
            .expect("run etcdscript test");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs with every report, and returns the run with the parsed reports.
    fn reports(&self, args: &[&str], env: &[(&str, &str)]) -> (Ran, Junit, Value, Ran) {
        let mut all = vec!["--junit", "report.xml", "--json", "report.json"];
        all.extend_from_slice(args);
        let ran = self.test(&all, env);
        let junit = Junit::parse(&self.read("report.xml"));
        let json: Value = serde_json::from_str(&self.read("report.json")).expect("JSON parses");
        let mut tap_args = vec!["--tap"];
        tap_args.extend_from_slice(args);
        let tap = self.test(&tap_args, env);
        (ran, junit, json, tap)
    }

    fn snap(&self, name: &str) -> PathBuf {
        self.path(&format!("scripts/snapshots/{name}.snap"))
    }
}

/// What a JUnit report says, read with an XML parser.
#[derive(Debug, Default)]
struct Junit {
    tests: usize,
    failures_attr: usize,
    cases: Vec<(String, Option<String>)>,
    system_out: Vec<String>,
}

impl Junit {
    fn parse(xml: &str) -> Junit {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut j = Junit::default();
        let mut in_out = false;
        loop {
            match reader
                .read_event()
                .expect("the JUnit report is well-formed XML")
            {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => {
                    let attr = |name: &str| {
                        e.try_get_attribute(name)
                            .unwrap()
                            .map(|a| a.unescape_value().unwrap().into_owned())
                    };
                    match e.name().as_ref() {
                        b"testsuites" => {
                            j.tests = attr("tests").unwrap().parse().unwrap();
                            j.failures_attr = attr("failures").unwrap().parse().unwrap();
                        }
                        b"testcase" => {
                            assert!(attr("classname").is_some() && attr("time").is_some());
                            j.cases.push((attr("name").unwrap(), None));
                        }
                        b"failure" => {
                            j.cases.last_mut().unwrap().1 = Some(attr("type").unwrap());
                        }
                        b"system-out" => in_out = true,
                        _ => {}
                    }
                }
                Event::Text(t) if in_out => j.system_out.push(t.unescape().unwrap().into_owned()),
                Event::End(e) if e.name().as_ref() == b"system-out" => in_out = false,
                _ => {}
            }
        }
        assert_eq!(j.tests, j.cases.len());
        j
    }

    fn failure(&self, name: &str) -> Option<String> {
        self.cases
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no test case {name} in {self:?}"))
            .1
            .clone()
    }
}

fn json_entry<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {json}"))
}

/// The TAP point of `name`: `ok` or `not ok`.
fn tap_result(tap: &str, name: &str) -> String {
    tap.lines()
        .find(|l| l.ends_with(&format!(" - {name}")) || l.contains(&format!(" - {name} #")))
        .and_then(|l| l.split(" 1").next().or(Some(l)))
        .map(|l| {
            if l.starts_with("not ok") {
                "not ok".to_owned()
            } else {
                "ok".to_owned()
            }
        })
        .unwrap_or_else(|| panic!("no TAP point for {name}:\n{tap}"))
}

fn assert_tap_shape(tap: &str, total: usize) {
    let mut lines = tap.lines();
    assert_eq!(lines.next(), Some("TAP version 14"), "{tap}");
    assert_eq!(lines.next(), Some(format!("1..{total}").as_str()), "{tap}");
    let points: Vec<&str> = tap
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
        .collect();
    assert_eq!(points.len(), total, "{tap}");
    for (i, p) in points.iter().enumerate() {
        let n = p.trim_start_matches("not ").trim_start_matches("ok ");
        assert!(
            n.starts_with(&format!("{} - ", i + 1)),
            "numbered in order: {tap}"
        );
    }
}

/// The common one-member start, then checks (line numbers as if written out in full).
fn kv() -> String {
    format!("{}{KV_CHECKS}", common::ONE_MEMBER)
}

const KV_CHECKS: &str = r#"kv_set(m1, "k", "v", client);
assert_eq(kv_get(m1, "k", client), "v");
expect_error(|| kv_get(m1, "k"), "no client certificate");
"#;

#[test]
fn a_users_suite_is_snapshotted_accepted_and_checked_in_ci() {
    let kv = kv();
    let s = Suite::new(&[("pure.rhai", PURE), ("kv.rhai", &kv)]);
    // First run: no snapshots yet. Both fail as new and are written as .snap.new for review.
    let ran = s.test(&[], &[]);
    ran.assert_code(1);
    common::assert_has(&ran.stdout, "NEW");
    common::assert_has(&ran.stdout, "0 passed, 2 failed, 0 skipped");
    let pending = s.read("scripts/snapshots/kv.rhai.snap.new");
    assert!(
        pending.starts_with("---\nsource: scripts/kv.rhai\n"),
        "{pending}"
    );
    common::assert_has(&pending, "---\nexit: 0\n---\n");
    common::assert_has(
        &pending,
        "rejected: no client certificate (from m1's log), as expected",
    );
    assert!(!s.snap("kv.rhai").exists());
    // Accepted: written in place, the pending files gone, the run passes.
    let ran = s.test(&["--accept"], &[]);
    ran.assert_code(0);
    common::assert_has(&ran.stdout, "2 snapshot(s) accepted");
    assert!(s.snap("kv.rhai").exists() && s.snap("pure.rhai").exists());
    assert!(!s.path("scripts/snapshots/kv.rhai.snap.new").exists());
    // In CI, against its snapshots: passes, every check reported.
    let (ran, junit, json, tap) = s.reports(&[], &[("CI", "true")]);
    ran.assert_code(0);
    common::assert_has(&ran.stdout, "2 passed, 0 failed, 0 skipped");
    assert_eq!(junit.failures_attr, 0);
    assert_eq!(junit.failure("scripts/kv.rhai"), None);
    assert!(
        junit.system_out.iter().any(|o| o.contains("expect_error")
            && o.contains("saw no client certificate (from m1's log): passed")),
        "{junit:?}"
    );
    assert_eq!(json["summary"]["passed"], 2);
    let checks = json_entry(&json, "scripts/kv.rhai")["checks"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert_eq!(checks[0]["check"], "assert_eq");
    assert_eq!(checks[0]["line"], 9);
    assert_eq!(checks[1]["check"], "expect_error");
    assert_eq!(checks[1]["line"], 10);
    assert_eq!(checks[1]["expected"][0], "no client certificate");
    assert_eq!(checks[1]["seen"], "no client certificate");
    assert_eq!(checks[1]["witness"], "m1's log");
    assert_eq!(checks[1]["passed"], true);
    assert_tap_shape(&tap.stdout, 2);
    assert_eq!(tap_result(&tap.stdout, "scripts/kv.rhai"), "ok");
    // The snapshot holds exactly what `run` prints.
    let run = Command::new(common::bin())
        .args(["run", "scripts/pure.rhai"])
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    assert!(s
        .read("scripts/snapshots/pure.rhai.snap")
        .ends_with(&format!(
            "---\nexit: 0\n---\n{}",
            String::from_utf8_lossy(&run.stdout)
        )));
}

#[test]
fn a_changed_transcript_fails_everywhere_with_a_diff() {
    let s = Suite::new(&[("pure.rhai", PURE), ("other.rhai", PURE)]);
    s.test(&["--accept"], &[]).assert_code(0);
    s.write("pure.rhai", &PURE.replace("pure arithmetic", "impure"));
    let (ran, junit, json, tap) = s.reports(&[], &[]);
    ran.assert_code(1);
    common::assert_has(&ran.stdout, "CHANGED");
    common::assert_has(&ran.stdout, "-pure arithmetic\n+impure\n");
    common::assert_has(&ran.stdout, "1 passed, 1 failed, 0 skipped");
    assert!(s.path("scripts/snapshots/pure.rhai.snap.new").exists());
    assert_eq!(
        junit.failure("scripts/pure.rhai").as_deref(),
        Some("changed")
    );
    assert_eq!(junit.failure("scripts/other.rhai"), None);
    assert_eq!(junit.failures_attr, 1);
    let entry = json_entry(&json, "scripts/pure.rhai");
    assert_eq!(entry["status"], "changed");
    assert_eq!(entry["passed"], false);
    assert_eq!(tap_result(&tap.stdout, "scripts/pure.rhai"), "not ok");
    assert_eq!(tap_result(&tap.stdout, "scripts/other.rhai"), "ok");
    common::assert_has(&tap.stderr, "1 passed, 1 failed");
}

#[test]
fn a_changed_exit_code_fails_everywhere() {
    let s = Suite::new(&[("pure.rhai", PURE)]);
    s.test(&["--accept"], &[]).assert_code(0);
    s.write("pure.rhai", "assert_eq(1 + 1, 3);\n");
    let (ran, junit, json, tap) = s.reports(&[], &[]);
    ran.assert_code(1);
    common::assert_has(&ran.stdout, "exit code changed: 0 in the snapshot, 1 now");
    common::assert_has(&ran.stdout, "-exit: 0\n+exit: 1\n");
    assert_eq!(
        junit.failure("scripts/pure.rhai").as_deref(),
        Some("changed")
    );
    let entry = json_entry(&json, "scripts/pure.rhai");
    assert_eq!(
        (entry["exit"].as_i64(), entry["expected_exit"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(entry["checks"][0]["passed"], false);
    assert_eq!(entry["checks"][0]["op"], "2 == 3");
    assert_eq!(tap_result(&tap.stdout, "scripts/pure.rhai"), "not ok");
}

#[test]
fn a_missing_snapshot_fails_everywhere_and_ci_writes_nothing() {
    let s = Suite::new(&[("pure.rhai", PURE)]);
    let (ran, junit, json, tap) = s.reports(&[], &[("CI", "true")]);
    ran.assert_code(1);
    common::assert_has(&ran.stdout, "nothing written");
    assert!(
        !s.path("scripts/snapshots").exists(),
        "CI=true must write no snapshot"
    );
    assert_eq!(junit.failure("scripts/pure.rhai").as_deref(), Some("new"));
    assert_eq!(json_entry(&json, "scripts/pure.rhai")["status"], "new");
    assert_eq!(tap_result(&tap.stdout, "scripts/pure.rhai"), "not ok");
    // INSTA_UPDATE=always accepts even in CI.
    s.test(&[], &[("CI", "true"), ("INSTA_UPDATE", "always")])
        .assert_code(0);
    assert!(s.snap("pure.rhai").exists());
}

#[test]
fn a_timeout_fails_everywhere_and_is_never_snapshotted() {
    let s = Suite::new(&[
        ("pure.rhai", PURE),
        ("spin.rhai", "let i = 0;\nloop { i += 1; }\n"),
    ]);
    let (ran, junit, json, tap) = s.reports(&["--timeout", "1", "--accept"], &[]);
    ran.assert_code(1);
    common::assert_has(&ran.stdout, "TIMEOUT");
    assert!(
        !s.snap("spin.rhai").exists(),
        "a timeout is no transcript to keep"
    );
    assert!(s.snap("pure.rhai").exists());
    assert_eq!(
        junit.failure("scripts/spin.rhai").as_deref(),
        Some("timeout")
    );
    assert_eq!(json_entry(&json, "scripts/spin.rhai")["status"], "timeout");
    assert_eq!(tap_result(&tap.stdout, "scripts/spin.rhai"), "not ok");
}

#[test]
fn a_panic_fails_everywhere() {
    let s = Suite::new(&[("boom.rhai", "print(\"before\");\npanic_for_tests();\n")]);
    let env = [("ETCDSCRIPT_TEST_HOOKS", "panic")];
    let (ran, junit, json, tap) = s.reports(&["--accept"], &env);
    ran.assert_code(1);
    common::assert_has(&ran.stdout, "PANICKED");
    common::assert_has(&ran.stdout, "panic_for_tests() was called");
    assert!(!s.snap("boom.rhai").exists());
    assert_eq!(
        junit.failure("scripts/boom.rhai").as_deref(),
        Some("panicked")
    );
    assert_eq!(json_entry(&json, "scripts/boom.rhai")["status"], "panicked");
    assert_eq!(tap_result(&tap.stdout, "scripts/boom.rhai"), "not ok");
}

fn names(listing: &str) -> Vec<String> {
    listing.lines().map(str::to_owned).collect()
}

#[test]
fn partitions_filter_and_list() {
    let scripts: Vec<(String, &str)> = (0..9).map(|i| (format!("s{i}.rhai"), PURE)).collect();
    let refs: Vec<(&str, &str)> = scripts.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let s = Suite::new(&refs);
    s.write("sub/nested.rhai", PURE);
    let all = s.test(&["--list"], &[]);
    all.assert_code(0);
    let all = names(&all.stdout);
    assert_eq!(all.len(), 10, "{all:?}");
    assert!(all.contains(&"scripts/sub/nested.rhai".to_owned()));
    let mut union = Vec::new();
    for m in 1..=3 {
        let share = s.test(&["--list", "--partition", &format!("hash:{m}/3")], &[]);
        share.assert_code(0);
        union.extend(names(&share.stdout));
    }
    union.sort();
    assert_eq!(union, all, "shares are disjoint and cover the suite");
    let filtered = s.test(&["--list", "--filter", "s1", "--filter", "nested"], &[]);
    assert_eq!(
        names(&filtered.stdout),
        ["scripts/s1.rhai", "scripts/sub/nested.rhai"]
    );
    // A share runs and reports only its own scripts.
    let share = s.test(
        &[
            "--partition",
            "hash:1/3",
            "--accept",
            "--junit",
            "share.xml",
        ],
        &[],
    );
    share.assert_code(0);
    let junit = Junit::parse(&s.read("share.xml"));
    let listed = names(&s.test(&["--list", "--partition", "hash:1/3"], &[]).stdout);
    assert_eq!(
        junit.cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
        listed
    );
    // Bad partitions and paths are usage errors.
    s.test(&["--partition", "hash:4/3"], &[]).assert_code(2);
    s.test(&["no-such-dir"], &[]).assert_code(2);
}

#[test]
fn fail_fast_skips_the_rest() {
    let scripts: Vec<(String, &str)> = (0..6)
        .map(|i| (format!("s{i}.rhai"), "assert_eq(1, 2);\n"))
        .collect();
    let refs: Vec<(&str, &str)> = scripts.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let s = Suite::new(&refs);
    let ran = s.test(&["--fail-fast", "--jobs", "1"], &[]);
    ran.assert_code(1);
    common::assert_has(&ran.stdout, "0 passed, 1 failed, 5 skipped");
}

/// The etcd the tests run (ETCDSCRIPT_ETCD, else /usr/bin/etcd), if it is there.
fn etcd() -> Option<String> {
    let etcd = std::env::var("ETCDSCRIPT_ETCD").unwrap_or_else(|_| "/usr/bin/etcd".into());
    if !Path::new(&etcd).is_file() {
        eprintln!("skipped: no etcd at {etcd}");
        return None;
    }
    Some(etcd)
}

#[test]
fn several_etcd_binaries_share_one_snapshot() {
    let Some(etcd) = etcd() else { return };
    // The same binary under two paths: two runs of each script, one snapshot.
    let s = Suite::new(&[("pure.rhai", PURE)]);
    let link = s.path("etcd-again");
    std::os::unix::fs::symlink(&etcd, &link).unwrap();
    let link = link.to_str().unwrap();
    let ran = s.test(
        &[
            "--etcd", &etcd, "--etcd", link, "--accept", "--json", "r.json",
        ],
        &[],
    );
    ran.assert_code(0);
    let json: Value = serde_json::from_str(&s.read("r.json")).unwrap();
    assert_eq!(json["scripts"].as_array().unwrap().len(), 2);
    assert!(s.snap("pure.rhai").exists());
    assert_eq!(
        std::fs::read_dir(s.path("scripts/snapshots"))
            .unwrap()
            .count(),
        1
    );
}

/// The PIDs of every process descending from `root`, by their parent links in /proc.
fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c).to_owned();
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        procs.push((pid, ppid, comm));
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid, comm) in &procs {
            if *ppid == parent {
                found.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

#[test]
fn ctrl_c_stops_every_run_and_its_members() {
    let text = format!("{}\nlet i = 0;\nloop {{ i += 1; }}\n", common::ONE_MEMBER);
    let s = Suite::new(&[("a.rhai", &text), ("b.rhai", &text)]);
    let child = Command::new(common::bin())
        .args(["test", "--jobs", "2", "--timeout", "60"])
        .current_dir(s.dir.path())
        .env_remove("CI")
        .env("XDG_CACHE_HOME", s.path("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let begun = std::time::Instant::now();
    let tree = loop {
        let tree = descendants(child.id());
        if tree.iter().filter(|(_, comm)| comm == "etcd").count() == 2 {
            break tree;
        }
        assert!(
            begun.elapsed() < std::time::Duration::from_secs(30),
            "no members: {tree:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(common::signal_pid(child.id(), "INT"));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    common::assert_has(&stderr, "interrupted by SIGINT while running the suite");
    let pids: Vec<u32> = tree.iter().map(|(p, _)| *p).collect();
    common::assert_all_gone(&pids);
}

/// A one-member cluster on pinned ports, kept a moment so that runs overlap.
fn pinned(tag: &str) -> String {
    format!(
        "{}let c = cluster([\"p1\"], #{{ ca: ca, cert: server, token: \"{tag}\", client_ports: [23871], peer_ports: [23881] }});\n\
         let p1 = spawn_member(c, \"p1\");\nwait_healthy(c);\nkv_set(p1, \"k\", \"{tag}\", client);\nsleep(300);\n\
         assert_eq(kv_get(p1, \"k\", client), \"{tag}\");\n",
        common::ONE_MEMBER.split("let c = ").next().unwrap()
    )
}

/// Four runs (two scripts, two etcd paths) of one suite pin the same ports: they take turns at
/// them, while other runs go on beside them, and all pass. A run outside a suite honours the
/// same lock: held by someone else, it waits, and its --timeout ends the wait.
#[test]
fn runs_that_pin_the_same_ports_take_turns() {
    let Some(etcd) = etcd() else { return };
    let (a, b) = (pinned("a"), pinned("b"));
    let s = Suite::new(&[("a.rhai", &a), ("b.rhai", &b), ("pure.rhai", PURE)]);
    let link = s.path("etcd-again");
    std::os::unix::fs::symlink(&etcd, &link).unwrap();
    let link = link.to_str().unwrap();
    let args = [
        "--etcd", &etcd, "--etcd", link, "--jobs", "4", "--accept", "--json", "r.json",
    ];
    let ran = s.test(&args, &[]);
    ran.assert_code(0);
    let json: Value = serde_json::from_str(&s.read("r.json")).unwrap();
    assert_eq!(json["scripts"].as_array().unwrap().len(), 6, "{json}");

    // The lock file, held here: a run told of it waits until its --timeout.
    let locks = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(locks.path().join("port-23871.lock")).unwrap();
    let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let script = s.path("scripts/a.rhai");
    let run = |locks: &Path| {
        Command::new(common::bin())
            .args(["run", "--timeout", "2", "--etcd", &etcd])
            .arg(&script)
            .env("ETCDSCRIPT_SUITE_LOCKS", locks)
            .output()
            .unwrap()
    };
    let out = run(locks.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(etcdscript::error::exit_code::TIMEOUT),
        "{stderr}"
    );
    common::assert_has(&stderr, "--timeout");
    // Let go: the same run passes.
    drop(held);
    let out = run(locks.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A run never waits for itself: two clusters of one run pinning the same port.
    let twice = s.path("twice.rhai");
    std::fs::write(
        &twice,
        format!(
            "{a}let d = cluster([\"q1\"], #{{ ca: ca, cert: server, token: \"again\", client_ports: [23871], peer_ports: [23882] }});\n"
        ),
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["run", "--timeout", "2", "--etcd", &etcd])
        .arg(&twice)
        .env("ETCDSCRIPT_SUITE_LOCKS", locks.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
