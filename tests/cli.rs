//! The command line and the script language's errors: bad input gets a clear error that names
//! what is wrong and where, and its own exit code; `expect_error` and `assert_eq` can fail.

mod common;

use etcdscript::error::exit_code::{CHECK_FAILED, ENVIRONMENT, SCRIPT_ERROR};

use common::{etcdscript, run_text, ONE_MEMBER};

#[test]
fn api_reference_is_generated_from_the_engine() {
    let run = etcdscript(&["api"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("api", run.stdout));
}

#[test]
fn syntax_error_points_at_file_line_col_with_a_caret() {
    let (run, _dir) = run_text("broken.rhai", "let a = 1;\nlet b = ;\n", &[]);
    assert_eq!(run.code, SCRIPT_ERROR, "{}", run.stderr);
    common::assert_has(&run.stderr, "broken.rhai:2:9");
    assert!(
        run.stderr.contains("2 | let b = ;\n  |         ^"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing may run: {}", run.stdout);
}

#[test]
fn option_typo_names_the_valid_keys() {
    let (run, _dir) = run_text(
        "typo.rhai",
        "let ca = ca(\"ca\");\nlet s = issue(ca, \"s\", #{ sanz: [\"localhost\"] });\n",
        &[],
    );
    assert_eq!(run.code, SCRIPT_ERROR, "{}", run.stderr);
    common::assert_has(&run.stderr, "unknown option `sanz`");
    common::assert_has(&run.stderr, "did you mean `sans`");
    common::assert_has(&run.stderr, "valid options are: cn, sans, usage");
    common::assert_has(&run.stderr, "typo.rhai:2:");
}

#[test]
fn unknown_function_lists_the_signatures_that_exist() {
    let (run, _dir) = run_text("arity.rhai", "let ca = ca(\"ca\");\nissue(ca);\n", &[]);
    assert_eq!(run.code, SCRIPT_ERROR, "{}", run.stderr);
    common::assert_has(&run.stderr, "issue takes:");
    common::assert_has(
        &run.stderr,
        "issue(ca: Ca, name: string [, opts: map]) -> Cert",
    );
}

#[test]
fn missing_script_is_named() {
    let run = etcdscript(&["run", "scripts/no-such-script.rhai"]);
    assert_eq!(run.code, SCRIPT_ERROR, "{}", run.stderr);
    common::assert_has(
        &run.stderr,
        "cannot read script scripts/no-such-script.rhai",
    );
}

#[test]
fn missing_etcd_says_how_to_install_it() {
    let (run, _dir) = run_text("noetcd.rhai", ONE_MEMBER, &["--etcd", "/nonexistent/etcd"]);
    assert_eq!(run.code, ENVIRONMENT, "{}", run.stderr);
    common::assert_has(&run.stderr, "/nonexistent/etcd does not exist");
}

#[test]
fn check_compiles_without_starting_anything() {
    let run = etcdscript(&["check", "scripts/demo.rhai"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "scripts/demo.rhai: ok\n");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rhai");
    std::fs::write(&bad, "let x = (;\n").unwrap();
    let run = etcdscript(&["check", "scripts/demo.rhai", bad.to_str().unwrap()]);
    assert_eq!(run.code, SCRIPT_ERROR, "{}", run.stderr);
    common::assert_has(&run.stderr, "bad.rhai:1:");
}

// `expect_error` must be able to fail, or every negative scenario proves nothing. Each wrong
// variant below stands beside the right one, which passes.

#[test]
fn expect_error_passes_on_the_right_class() {
    let script = format!(
        "{ONE_MEMBER}\nexpect_error(|| kv_set(m1, \"k\", \"v\"), \"no client certificate\");\n"
    );
    let (run, _dir) = run_text("right.rhai", &script, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    common::assert_has(
        &run.stdout,
        "rejected: no client certificate (from m1's log), as expected",
    );
}

#[test]
fn expect_error_fails_on_the_wrong_class() {
    let script = format!("{ONE_MEMBER}\nexpect_error(|| kv_set(m1, \"k\", \"v\"), \"expired\");\n");
    let (run, _dir) = run_text("wrong-class.rhai", &script, &[]);
    assert_eq!(run.code, CHECK_FAILED, "{}{}", run.stdout, run.stderr);
    common::assert_has(&run.stderr, "expect_error(\"expired\"): put k = v via m1 without a client certificate was rejected, but with no client certificate (from m1's log)");
    common::assert_has(&run.stdout, "FAILED: ");
}

#[test]
fn expect_error_fails_when_the_operation_succeeds() {
    let script = format!("{ONE_MEMBER}\nexpect_error(|| kv_set(m1, \"k\", \"v\", client), \"no client certificate\");\n");
    let (run, _dir) = run_text("succeeds.rhai", &script, &[]);
    assert_eq!(run.code, CHECK_FAILED, "{}{}", run.stdout, run.stderr);
    common::assert_has(&run.stdout, "put k = v via m1 as client: ok");
    common::assert_has(&run.stderr, "expect_error(\"no client certificate\"): the operation succeeded, but it had to be rejected");
}

#[test]
fn an_unexpected_rejection_fails_the_run_and_says_why() {
    let script = format!("{ONE_MEMBER}\nkv_set(m1, \"k\", \"v\");\n");
    let (run, _dir) = run_text("unexpected.rhai", &script, &[]);
    assert_eq!(run.code, CHECK_FAILED, "{}{}", run.stdout, run.stderr);
    common::assert_has(&run.stdout, "FAILED: put k = v via m1 without a client certificate: rejected: no client certificate (from m1's log)");
    common::assert_has(&run.stderr, "unexpected.rhai:9:1");
}

#[test]
fn assert_eq_fails_on_a_different_value() {
    let script = format!("{ONE_MEMBER}\nkv_set(m1, \"k\", \"v\", client);\nassert_eq(kv_get(m1, \"k\", client), \"w\");\n");
    let (run, _dir) = run_text("neq.rhai", &script, &[]);
    assert_eq!(run.code, CHECK_FAILED, "{}{}", run.stdout, run.stderr);
    common::assert_has(&run.stderr, "assert_eq: got \"v\", expected \"w\"");
}

#[test]
fn expect_error_does_not_swallow_script_errors() {
    let script = format!("{ONE_MEMBER}\nexpect_error(|| kv_set(m1, \"k\", \"v\", #{{ cetr: client }}), \"server error\");\n");
    let (run, _dir) = run_text("swallow.rhai", &script, &[]);
    assert_eq!(run.code, SCRIPT_ERROR, "{}{}", run.stdout, run.stderr);
    common::assert_has(&run.stderr, "unknown option `cetr`");
}

#[test]
fn doctor_reports_the_etcd_binary_and_its_version() {
    let run = etcdscript(&["doctor"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("etcd: "), "{}", run.stdout);
    common::assert_has(&run.stdout, "(version 3.");
    common::assert_has(&run.stdout, " free: room for ");
    common::assert_has(&run.stdout, " members at about 124.0 MiB each)");
    let run = etcdscript(&["doctor", "--etcd", "/nonexistent/etcd"]);
    assert_eq!(run.code, ENVIRONMENT, "{}", run.stderr);
    common::assert_has(&run.stderr, "/nonexistent/etcd does not exist");
}

#[test]
fn workdir_holds_certificates_data_and_logs_and_must_be_new() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    let (run, _script) = run_text("wd.rhai", ONE_MEMBER, &["--workdir", w, "--keep"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for f in [
        "pki/ca.crt",
        "pki/ca.key",
        "pki/server.crt",
        "pki/client.key",
        "members/m1.log",
    ] {
        assert!(work.join(f).is_file(), "{f} missing");
    }
    // --keep keeps no data dir (about 120 MB each); --keep-data does.
    assert!(!work.join("members/m1.etcd").exists());
    // A work dir that is not empty is refused: nothing of the user's is overwritten.
    let (run, _script) = run_text("wd.rhai", ONE_MEMBER, &["--workdir", w]);
    assert_eq!(run.code, ENVIRONMENT, "{}", run.stderr);
    common::assert_has(&run.stderr, "exists and is not empty");
    // Without --keep, the work dir goes with the run.
    let fresh = dir.path().join("fresh");
    let (run, _script) = run_text(
        "wd.rhai",
        ONE_MEMBER,
        &["--workdir", fresh.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!fresh.exists());
}

#[test]
fn readme_shows_the_demo_transcript_as_it_is() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let shown: String = readme
        .split("The demo prints:\n\n```\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README shows the demo transcript")
        .to_owned();
    let snap =
        std::fs::read_to_string(common::root().join("snapshots/scripts@demo.rhai.snap")).unwrap();
    let kept = snap
        .split("exit: 0\n---\n")
        .nth(1)
        .expect("the demo snapshot");
    assert_eq!(
        shown.trim_end(),
        kept.trim_end(),
        "README's demo transcript differs from the snapshot"
    );
}

#[test]
fn api_json_lists_every_primitive_and_property_with_script_types() {
    let run = etcdscript(&["api", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let names: Vec<&str> = v["primitives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "ca",
        "issue",
        "cluster",
        "spawn_member",
        "wait_healthy",
        "kv_set",
        "expect_error",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(v["properties"].as_array().unwrap().len() >= 16);
    for p in v["primitives"].as_array().unwrap() {
        assert!(!p["doc"].as_str().unwrap().is_empty(), "{p}");
        assert!(!p["example"].as_str().unwrap().is_empty(), "{p}");
    }
    assert!(
        !run.stdout.contains("::"),
        "a Rust type name in:\n{}",
        run.stdout
    );
}

#[test]
fn api_definitions_declare_every_arity_for_editors() {
    let run = etcdscript(&["api", "--format", "definitions"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("module static;"), "{}", run.stdout);
    common::assert_has(&run.stdout, "fn kv_get(target: ?, key: String) -> ?;");
    common::assert_has(
        &run.stdout,
        "fn kv_get(target: ?, key: String, identity: ?) -> ?;",
    );
    common::assert_has(&run.stdout, "fn get names(this: Cluster) -> Array;");
    assert!(!run.stdout.contains("::"), "{}", run.stdout);
}

/// README's API table is `etcdscript api --format markdown`, between its markers.
#[test]
fn readme_api_table_is_the_generated_one() {
    let run = etcdscript(&["api", "--format", "markdown"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let (begin, end) = ("<!-- api: begin -->\n", "<!-- api: end -->");
    let start = readme.find(begin).expect("README has no api begin marker") + begin.len();
    let stop = readme.find(end).expect("README has no api end marker");
    assert_eq!(
        readme[start..stop].trim(),
        run.stdout.trim(),
        "README's API table differs from `etcdscript api --format markdown`; paste that in"
    );
}

/// A literal options map is checked before anything starts: a wrong key is a script error at
/// its own position, with the valid keys.
#[test]
fn a_wrong_key_in_a_literal_map_fails_check_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.rhai");
    std::fs::write(
        &path,
        "let ca = ca(\"ca\");\nlet s = issue(ca, \"s\", #{ cn: \"x\", sanz: [\"a\"] });\n",
    )
    .unwrap();
    let run = etcdscript(&["check", path.to_str().unwrap()]);
    assert_eq!(run.code, SCRIPT_ERROR, "{}", run.stderr);
    common::assert_has(
        &run.stderr,
        "issue(): unknown option `sanz` in `opts` (did you mean `sans`?)",
    );
    common::assert_has(&run.stderr, "keys.rhai:2:24");
}

/// README's exit-code table is the one the code has (`etcdscript::error::exit_code::ALL`).
#[test]
fn readme_exit_codes_are_the_constants() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let (begin, end) = ("<!-- exit-codes: begin -->\n", "<!-- exit-codes: end -->");
    let start = readme.find(begin).expect("README has no exit-codes marker") + begin.len();
    let stop = readme
        .find(end)
        .expect("README has no exit-codes end marker");
    assert_eq!(
        readme[start..stop].trim(),
        etcdscript::error::exit_code::markdown().trim(),
        "README's exit codes differ from exit_code::ALL"
    );
    let help = etcdscript(&["--help"]);
    for (code, _) in etcdscript::error::exit_code::ALL {
        assert!(
            help.stdout.contains(&format!("{code:>3}  ")),
            "{code} missing from --help:\n{}",
            help.stdout
        );
    }
}

#[test]
fn conventions_of_a_command_line_tool() {
    let v = etcdscript(&["--version"]);
    common::assert_has(&v.stdout, "tested with etcd 3.4.23 and 3.5.1");
    for shell in ["bash", "zsh", "fish"] {
        let c = etcdscript(&["completions", shell]);
        assert_eq!(c.code, 0, "{shell}: {}", c.stderr);
        common::assert_has(&c.stdout, "etcdscript");
    }
    let bad = etcdscript(&["completions", "cmd.exe"]);
    assert_eq!(bad.code, etcdscript::error::exit_code::USAGE);
    // -q: the verdict line alone.
    let (run, _dir) = run_text("quiet.rhai", "assert_eq(1, 1);\nprint(\"said\");\n", &[]);
    assert_eq!(run.stdout, "check: 1 == 1\nsaid\nok: 1 check held\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.rhai");
    std::fs::write(&path, "assert_eq(1, 1);\nprint(\"said\");\n").unwrap();
    let quiet = etcdscript(&["-q", "run", path.to_str().unwrap()]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stdout, "ok: 1 check held\n");
}

/// `check` reports every problem of every file, in script order, and runs nothing.
#[test]
fn check_reports_every_problem_in_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rhai");
    let b = dir.path().join("b.rhai");
    std::fs::write(
        &a,
        "let ca = ca(\"ca\");\nlaunch();\nlet s = issue(ca, \"s\", #{ sanz: 1 });\nexpect_error(|| 1, \"expird\");\n",
    )
    .unwrap();
    std::fs::write(&b, "ca();\n").unwrap();
    let run = etcdscript(&["check", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(run.code, SCRIPT_ERROR, "{}", run.stderr);
    for place in ["a.rhai:2:1", "a.rhai:3:24", "a.rhai:4:20", "b.rhai:1:1"] {
        common::assert_has(&run.stderr, place);
    }
    common::assert_has(&run.stderr, "4 problems found; nothing was run");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
