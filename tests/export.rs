//! `etcdscript export`: every scenario exports to bash that passes by itself, with openssl, etcd
//! and etcdctl alone, or its export says which steps it could not express. An exported check
//! that is inverted makes the bash fail. The demo's Markdown is kept in docs/ and must not
//! drift from the export.
//!
//! Each exported script runs in a network namespace of its own (`unshare --net`): exports use
//! fixed ports, as a reader's would, so two at once would meet on loopback otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The scenarios whose export is complete: every step has a shell form. A scenario that stops
/// being complete, or one that becomes complete, must be moved here or out by hand.
const COMPLETE: &[&str] = &[
    "chains",
    "client-allowed-hostname",
    "client-expired",
    "client-no-cert",
    "client-not-yet-valid",
    "client-other-ca",
    "client-plaintext",
    "client-revoked",
    "client-server-only-usage",
    "demo",
    "member-stop",
    "peer-revoked",
    "rbac",
    "tutorial-ports",
];

/// The etcd under test, and the etcdctl beside it.
fn etcd_pair() -> (PathBuf, PathBuf) {
    let etcd = PathBuf::from(std::env::var("ETCDSCRIPT_ETCD").unwrap_or_else(|_| "etcd".into()));
    let etcd = if etcd.is_absolute() {
        etcd
    } else {
        PathBuf::from("/usr/bin/etcd")
    };
    let ctl = etcd.with_file_name("etcdctl");
    assert!(ctl.is_file(), "no etcdctl beside {}", etcd.display());
    (etcd, ctl)
}

/// `etcdscript export --format FORMAT SCRIPT`: (exit code, stdout, stderr).
fn export(format: &str, script: &str) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .args(["export", "--format", format, script])
        .current_dir(common::root())
        .output()
        .expect("etcdscript export");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exports a script given as text.
fn export_text(format: &str, text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.rhai");
    std::fs::write(&path, text).unwrap();
    export(format, path.to_str().unwrap())
}

/// Runs an exported bash script from a clean temp dir, in a network namespace of its own;
/// returns its exit code and output, and checks that it left no process and no file behind.
fn run_bash(text: &str) -> (i32, String) {
    let (etcd, ctl) = etcd_pair();
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("tutorial.sh");
    std::fs::write(&script, text).unwrap();
    let work = tmp.path().join("tmp");
    std::fs::create_dir(&work).unwrap();
    let out = tmp.path().join("out");
    let file = std::fs::File::create(&out).unwrap();
    let mut child = Command::new("unshare")
        .args(["--net", "sh", "-c", "ip link set lo up && exec bash \"$0\""])
        .arg(&script)
        .env("ETCD", &etcd)
        .env("ETCDCTL", &ctl)
        .env("TMPDIR", &work)
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stderr(file.try_clone().unwrap())
        .stdout(file)
        .spawn()
        .expect("unshare (util-linux) runs");
    let code = common::wait_bounded(&mut child, 300);
    let output = std::fs::read_to_string(&out).unwrap_or_default();
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "the script left {left:?} behind:\n{output}"
    );
    assert!(
        processes_in(&work).is_empty(),
        "the script left processes running in {}: {:?}",
        work.display(),
        processes_in(&work)
    );
    (code, output)
}

/// The processes whose working directory is under `dir`.
fn processes_in(dir: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// Every script under scripts/, by its path there without `.rhai` (`demo`, `audit/cis-etcd`).
fn scenarios() -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                walk(&e.path(), &format!("{prefix}{n}/"), out);
            } else if let Some(stem) = n.strip_suffix(".rhai") {
                out.push(format!("{prefix}{stem}"));
            }
        }
    }
    let mut names = Vec::new();
    walk(&common::root().join("scripts"), "", &mut names);
    names.sort();
    names
}

#[test]
fn every_scenario_exports_to_bash_that_passes_or_says_what_it_could_not_express() {
    let names = scenarios();
    let results = common::in_parallel(&names, 2, |name| {
        let (code, bash, err) = export("bash", &format!("scripts/{name}.rhai"));
        let ran = (code == 0).then(|| run_bash(&bash));
        (name.clone(), code, bash, err, ran)
    });
    let (mut complete, mut partial) = (Vec::new(), Vec::new());
    for (name, code, bash, err, ran) in &results {
        match code {
            0 => {
                assert!(
                    !bash.contains("NOT EXPRESSED"),
                    "{name}: complete, yet:\n{bash}"
                );
                let (rc, out) = ran.as_ref().expect("ran");
                assert_eq!(*rc, 0, "{name}: the exported bash failed:\n{out}\n{bash}");
                assert!(out.ends_with("ok: every check held\n"), "{name}:\n{out}");
                complete.push(name.as_str());
            }
            6 => {
                assert!(bash.contains("# PARTIAL:"), "{name}:\n{bash}");
                assert!(bash.contains("# NOT EXPRESSED: "), "{name}:\n{bash}");
                partial.push(name.as_str());
            }
            _ => panic!("{name}: export exited {code}:\n{err}"),
        }
    }
    eprintln!(
        "exported in full and passing: {} ({}); partial: {} ({})",
        complete.len(),
        complete.join(", "),
        partial.len(),
        partial.join(", ")
    );
    assert_eq!(complete, COMPLETE, "the scenarios exported in full changed");
}

#[test]
fn an_exported_check_that_is_inverted_fails() {
    let (code, bash, err) = export("bash", "scripts/demo.rhai");
    assert_eq!(code, 0, "{err}");
    // The control: as exported, it passes.
    let (rc, out) = run_bash(&bash);
    assert_eq!(rc, 0, "{out}");
    let inverted = [
        // A read that must return what was written.
        (
            "[ \"$got\" = world ]",
            "[ \"$got\" = other ]",
            "FAIL: get hello via infra2 returned 'world'",
        ),
        // A refusal that must happen: the client presents its certificate, and is let in.
        (
            "--cacert=we-as-ca.crt put -- foo bar",
            "--cacert=we-as-ca.crt --cert=client.crt --key=client.key put -- foo bar",
            "was accepted; it had to be refused (no client certificate)",
        ),
        // A refusal for the reason expected, from the member's log.
        (
            "'didn.t provide a certificate|did not provide a certificate'",
            "'certificate signed by unknown authority'",
            "log does not say no client certificate",
        ),
    ];
    for (from, to, says) in inverted {
        assert_eq!(bash.matches(from).count(), 1, "{from}:\n{bash}");
        let (rc, out) = run_bash(&bash.replace(from, to));
        assert_eq!(rc, 1, "{to}: must fail:\n{out}");
        common::assert_has(&out, "FAIL: ");
        common::assert_has(&out, says);
    }
}

#[test]
fn the_demo_tutorial_in_docs_is_the_demo_exported() {
    let (code, md, err) = export("markdown", "scripts/demo.rhai");
    assert_eq!(code, 0, "{err}");
    let kept = std::fs::read_to_string(common::root().join("docs/tutorial.md")).unwrap();
    assert!(
        md == kept,
        "docs/tutorial.md is not the export any more: run\n  etcdscript export --format markdown scripts/demo.rhai > docs/tutorial.md\nand read the diff"
    );
    // Comments pass through as written, in any language.
    let text = "// 安全etcd机群\n// 每个成员都携带 server.crt。\n\n";
    let (code, md, err) = export_text("markdown", &format!("{text}{}", common::ONE_MEMBER));
    assert_eq!(code, 0, "{err}");
    assert!(
        md.starts_with("# 安全etcd机群\n\n每个成员都携带 server.crt。\n"),
        "{md}"
    );
}

#[test]
fn a_failing_script_is_not_exported_and_a_partial_export_says_so() {
    let fails = "\nassert_eq(kv_get(m1, \"k\", client), \"v\");\n";
    let (code, out, err) = export_text("bash", &format!("{}{fails}", common::ONE_MEMBER));
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "", "nothing is exported of a failing run");
    common::assert_has(&err, "FAILED: ");
    let (code, out, _) = export("bash", "scripts/paused-leader.rhai");
    assert_eq!(code, 6);
    common::assert_has(&out, "# PARTIAL: ");
    common::assert_has(&out, "# NOT EXPRESSED: `pause_member` (line ");
}

/// Keys, values and names are data in the exported bash, whatever they hold: newlines, `$(..)`,
/// quotes, a leading `-`, an empty value; and a key with an empty value is not a missing key.
#[test]
fn hostile_keys_and_values_stay_data_in_the_exported_bash() {
    // Were any of it run, it would leave a file here.
    let marker = tempfile::tempdir().unwrap();
    let pwned = marker.path().join("PWNED");
    let touch = format!("touch {}", pwned.display());
    let script = format!(
        "{}{}",
        common::ONE_MEMBER,
        r#"let odd = issue(ca, "odd", #{ cn: "x/O=evil+OU=y" });
let v = "line one\n$(TOUCH) `TOUCH` 'q' \"dq\"\n";
kv_set(m1, "-k $(TOUCH)", v, client);
assert_eq(kv_get(m1, "-k $(TOUCH)", client), v);
kv_set(m1, "empty", "", client);
assert_eq(kv_get(m1, "empty", client), "");
assert_eq(kv_get(m1, "missing", client), ());
"#
        .replace("TOUCH", &touch)
    );
    let (code, bash, err) = export_text("bash", &script);
    assert_eq!(code, 0, "{err}");
    let (rc, out) = run_bash(&bash);
    assert_eq!(rc, 0, "{out}\n{bash}");
    assert!(!pwned.exists(), "a value was run as a command:\n{bash}");
    // The subject keeps the whole name as one common name.
    assert!(bash.contains(r"-subj '/CN=x\/O=evil\+OU=y'"), "{bash}");
    // Inverted: the missing key read where one with an empty value was, and the other way.
    let inverted = [
        ("get -w json -- missing)", "get -w json -- empty)"),
        ("get -w json -- empty)", "get -w json -- missing)"),
    ];
    for (from, to) in inverted {
        assert_eq!(bash.matches(from).count(), 1, "{from}:\n{bash}");
        let (rc, out) = run_bash(&bash.replace(from, to));
        assert_eq!(rc, 1, "{to}: must fail:\n{out}");
        common::assert_has(&out, "FAIL: ");
    }
}
