//! Every scenario in scripts/ must be able to fail, or its negative checks prove nothing. Each
//! gets two deliberately wrong variants, made here and never kept in scripts/:
//! - every `expect_error` expects another class than its own: the run must fail saying which
//!   class it met instead;
//! - the positive control nearest the first negative check is wrapped in `expect_error`: the run
//!   must fail saying the operation succeeded.

mod common;

use etcdscript::error::exit_code::CHECK_FAILED;

use std::path::PathBuf;

fn scripts() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(common::root().join("scripts"))
        .expect("scripts/")
        .map(|e| e.expect("entry").path())
        .filter(|p: &PathBuf| p.extension().is_some_and(|e| e == "rhai"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read script"))
        })
        .filter(|(_, text)| text.contains("expect_error("))
        // Scripts that pin ports cannot run beside a copy of themselves; the demo makes the
        // same checks on free ports.
        .filter(|(_, text)| !text.contains("client_ports"))
        .collect();
    out.sort();
    out
}

/// Runs the variants a few at a time; returns (name, run) pairs.
fn run_all(variants: Vec<(String, String)>) -> Vec<(String, common::Run)> {
    let mut results = Vec::new();
    for chunk in variants.chunks(3) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(name, text)| {
                    s.spawn(move || (name.clone(), common::run_text(name, text, &[]).0))
                })
                .collect();
            for h in handles {
                results.push(h.join().expect("variant thread"));
            }
        });
    }
    results
}

/// The class every wrong variant expects instead of its own: a real class, so that the script
/// passes the check, but one no scenario's negative check meets.
const WRONG_CLASS: &str = "server error";

fn wrong_class(text: &str) -> String {
    text.lines()
        .map(
            |line| match (line.contains("expect_error("), line.rfind(", \"")) {
                (true, Some(i)) if line.trim_end().ends_with("\");") => {
                    format!("{}, \"{WRONG_CLASS}\");", &line[..i])
                }
                _ => line.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

fn control_expected_to_fail(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let first_negative = lines.iter().position(|l| l.contains("expect_error("))?;
    let control = (0..first_negative)
        .rev()
        .find(|&i| lines[i].starts_with("kv_set(") || lines[i].starts_with("wait_healthy("))?;
    let call = lines[control].trim_end().strip_suffix(';')?;
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[control] = format!("expect_error(|| {call}, \"no client certificate\");");
    Some(out.join("\n"))
}

#[test]
fn expecting_the_wrong_class_fails_loudly() {
    let variants: Vec<(String, String)> = scripts()
        .into_iter()
        .map(|(name, text)| (format!("wrong-class-{name}"), wrong_class(&text)))
        .collect();
    assert!(variants.len() >= 15, "only {} scenarios", variants.len());
    let needle = format!("expect_error(\"{WRONG_CLASS}\"): ");
    assert_all_fail(run_all(variants), &[&needle, ", but with"]);
}

#[test]
fn expecting_an_error_from_the_positive_control_fails_loudly() {
    let variants: Vec<(String, String)> = scripts()
        .into_iter()
        .map(|(name, text)| {
            let v = control_expected_to_fail(&text).unwrap_or_else(|| {
                panic!("{name}: no positive control before its first negative check")
            });
            (format!("control-{name}"), v)
        })
        .collect();
    assert_all_fail(
        run_all(variants),
        &["the operation succeeded, but it had to be rejected"],
    );
}

/// Every variant failed a check (exit 1), saying all of `words`.
fn assert_all_fail(runs: Vec<(String, common::Run)>, words: &[&str]) {
    for (name, run) in runs {
        assert_eq!(
            run.code, CHECK_FAILED,
            "{name}:\n{}{}",
            run.stdout, run.stderr
        );
        for w in words {
            assert!(
                run.stderr.contains(w),
                "{name}: no {w:?} in:\n{}",
                run.stderr
            );
        }
    }
}
