//! What a suite tells: a line per script as it finishes (and a live count on a terminal), the
//! failures in detail at the end, a closing `N passed, M failed` line; TAP on stdout with
//! `--tap`; JUnit XML and JSON files.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Outcome, Status, Update};

/// The terminal (or TAP) output while the suite runs.
pub struct Live {
    total: usize,
    done: usize,
    tap: bool,
    tty: bool,
}

impl Live {
    pub fn new(total: usize, tap: bool) -> Live {
        let tty = !tap && std::io::stdout().is_terminal();
        let mut out = std::io::stdout().lock();
        if tap {
            let _ = write!(out, "TAP version 14\n1..{total}\n");
        } else if tty && total > 0 {
            let _ = write!(out, "    0/{total} done");
        }
        let _ = out.flush();
        Live {
            total,
            done: 0,
            tap,
            tty,
        }
    }

    /// One script's runs are done.
    pub fn finished(&mut self, outcomes: &[Outcome]) {
        let mut out = std::io::stdout().lock();
        for o in outcomes {
            self.done += 1;
            if self.tap {
                let _ = write!(out, "{}", tap_point(self.done, o));
                continue;
            }
            if self.tty {
                let _ = write!(out, "\r\x1b[2K");
            }
            let _ = writeln!(
                out,
                "{:>8} [{:>7.3}s] {}{}",
                o.status.label().to_uppercase(),
                o.duration.as_secs_f64(),
                o.name,
                if o.status.failed() || o.status == Status::Skipped {
                    format!(": {}", o.reason)
                } else {
                    String::new()
                }
            );
        }
        if self.tty && self.done < self.total {
            let _ = write!(out, "    {}/{} done", self.done, self.total);
        }
        let _ = out.flush();
    }

    /// The failures in detail, then the closing line. With `--tap` they go to stderr, so that
    /// stdout stays TAP.
    pub fn summary(&self, outcomes: &[Outcome], elapsed: Duration, update: Update) {
        let mut text = String::new();
        for o in outcomes.iter().filter(|o| o.status.failed()) {
            text.push_str(&failure_detail(o));
        }
        let count = |f: &dyn Fn(Status) -> bool| outcomes.iter().filter(|o| f(o.status)).count();
        let new = count(&|s| s == Status::New);
        let changed = count(&|s| s == Status::Changed);
        let accepted = count(&|s| s == Status::Accepted);
        if new + changed > 0 {
            text.push_str(&match update {
                Update::Pending => format!(
                    "{new} new and {changed} changed snapshot(s) written as .snap.new: review them with \
                     `cargo insta review` (or read them), then run again with --accept\n"
                ),
                _ => format!(
                    "{new} new and {changed} changed snapshot(s), nothing written (CI or INSTA_UPDATE=no); \
                     run with --accept to accept them\n"
                ),
            });
        }
        if accepted > 0 {
            text.push_str(&format!("{accepted} snapshot(s) accepted\n"));
        }
        text.push_str(&format!(
            "{} scripts in {:.2}s\n{} passed, {} failed, {} skipped\n",
            outcomes.len(),
            elapsed.as_secs_f64(),
            count(&|s| matches!(s, Status::Passed | Status::Accepted)),
            count(&|s| s.failed()),
            count(&|s| s == Status::Skipped),
        ));
        // A closed stdout or stderr (a pipe to `head`) must not turn into a panic.
        if self.tap {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        } else {
            let mut out = std::io::stdout().lock();
            if self.tty {
                let _ = write!(out, "\r\x1b[2K");
            }
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

/// A failure in detail: what changed (a unified diff of the snapshot against this run), the end
/// of the run's stderr, and the last lines of each member's log.
pub fn failure_detail(o: &Outcome) -> String {
    let mut t = format!("\n--- {}: {}: {}\n", o.name, o.status.label(), o.reason);
    if let Some(diff) = &o.diff {
        t.push_str(&format!(
            "snapshot {} against this run:\n{diff}",
            o.snapshot.display()
        ));
    }
    if !o.stderr_tail.is_empty() {
        t.push_str("stderr (last lines):\n");
        for l in &o.stderr_tail {
            t.push_str(&format!("  {l}\n"));
        }
    }
    for (member, lines) in &o.member_logs {
        t.push_str(&format!("{member}'s log (last lines):\n"));
        for l in lines {
            t.push_str(&format!("  {l}\n"));
        }
    }
    t
}

/// `old` against `new`, line by line, in unified format.
pub fn unified_diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("snapshot", "this run")
        .to_string()
}

/// One check record as a line of text: `12:1 expect_error put k via m1: expected [..], saw ..
/// (from ..): passed`.
pub fn check_line(c: &Value) -> String {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut line = format!("{}:{} {} {}", n("line"), n("col"), s("check"), s("op"));
    let expected: Vec<&str> = c
        .get("expected")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !expected.is_empty() {
        line.push_str(&format!(": expected {}", expected.join(" or ")));
    }
    if let Some(seen) = c.get("seen").and_then(Value::as_str) {
        line.push_str(&format!(", saw {seen} (from {})", s("witness")));
    }
    let passed = c.get("passed").and_then(Value::as_bool).unwrap_or(false);
    line.push_str(if passed { ": passed" } else { ": FAILED" });
    line
}

/// One TAP test point, with a YAML block for the failures and every check.
fn tap_point(n: usize, o: &Outcome) -> String {
    let ok = if o.status.failed() { "not ok" } else { "ok" };
    let directive = if o.status == Status::Skipped {
        format!(" # SKIP {}", o.reason)
    } else {
        String::new()
    };
    let mut t = format!("{ok} {n} - {}{directive}\n", o.name.replace('#', "\\#"));
    t.push_str("  ---\n");
    t.push_str(&format!("  status: {}\n", o.status.label()));
    t.push_str(&format!("  duration_ms: {}\n", o.duration.as_millis()));
    if o.status.failed() {
        t.push_str(&format!("  message: {}\n", Value::from(o.reason.as_str())));
        if let Some(diff) = &o.diff {
            t.push_str("  diff: |\n");
            for l in diff.lines() {
                t.push_str(&format!("    {l}\n"));
            }
        }
    }
    if !o.checks.is_empty() {
        // JSON is YAML: one flow mapping per check.
        t.push_str("  checks:\n");
        for c in &o.checks {
            t.push_str(&format!("    - {c}\n"));
        }
    }
    t.push_str("  ...\n");
    t
}

/// The JSON report: totals, then one entry per run with its checks.
pub fn json(outcomes: &[Outcome], elapsed: Duration) -> String {
    let count = |f: &dyn Fn(Status) -> bool| outcomes.iter().filter(|o| f(o.status)).count();
    let scripts: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "script": o.script,
                "etcd": o.etcd,
                "status": o.status.label(),
                "passed": !o.status.failed(),
                "reason": if o.reason.is_empty() { Value::Null } else { Value::from(o.reason.as_str()) },
                "duration_ms": o.duration.as_millis() as u64,
                "exit": o.exit,
                "expected_exit": o.expected_exit,
                "snapshot": o.snapshot.display().to_string(),
                "diff": o.diff,
                "checks": o.checks,
                "transcript": o.transcript,
                "stderr_tail": o.stderr_tail,
                "member_logs": o.member_logs.iter().map(|(m, l)| json!({ "member": m, "lines": l })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let report = json!({
        "summary": {
            "total": outcomes.len(),
            "passed": count(&|s| matches!(s, Status::Passed | Status::Accepted)),
            "failed": count(&|s| s.failed()),
            "new": count(&|s| s == Status::New),
            "accepted": count(&|s| s == Status::Accepted),
            "skipped": count(&|s| s == Status::Skipped),
            "duration_ms": elapsed.as_millis() as u64,
        },
        "scripts": scripts,
    });
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}

/// The JUnit XML report: one `<testcase>` per run, failures with the diff and logs, the
/// transcript and the checks in `<system-out>`. The shape of the Ant/Jenkins JUnit schema, which
/// GitHub, GitLab and Jenkins read.
pub fn junit(outcomes: &[Outcome], elapsed: Duration) -> String {
    let failed = outcomes.iter().filter(|o| o.status.failed()).count();
    let skipped = outcomes
        .iter()
        .filter(|o| o.status == Status::Skipped)
        .count();
    let secs = elapsed.as_secs_f64();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"etcdscript\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{secs:.3}\">\n",
        outcomes.len()
    ));
    x.push_str(&format!(
        "  <testsuite name=\"etcdscript\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{secs:.3}\">\n",
        outcomes.len()
    ));
    for o in outcomes {
        let classname = std::path::Path::new(&o.script)
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into());
        x.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\">\n",
            esc(&o.name),
            esc(&classname),
            o.duration.as_secs_f64()
        ));
        if o.status == Status::Skipped {
            x.push_str(&format!(
                "      <skipped message=\"{}\"/>\n",
                esc(&o.reason)
            ));
        } else if o.status.failed() {
            x.push_str(&format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                esc(&o.reason),
                o.status.label(),
                esc(&failure_detail(o))
            ));
        }
        let mut out = o.transcript.clone();
        if !o.checks.is_empty() {
            out.push_str("\nchecks:\n");
            for c in &o.checks {
                out.push_str(&check_line(c));
                out.push('\n');
            }
        }
        x.push_str(&format!("      <system-out>{}</system-out>\n", esc(&out)));
        if !o.stderr_tail.is_empty() {
            x.push_str(&format!(
                "      <system-err>{}</system-err>\n",
                esc(&o.stderr_tail.join("\n"))
            ));
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Text for XML: the five entities escaped, characters XML 1.0 forbids dropped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped_and_cleaned() {
        assert_eq!(esc("a<b & \"c\"\u{1b}[0m"), "a&lt;b &amp; &quot;c&quot;[0m");
    }

    #[test]
    fn check_lines_read_well() {
        let c = json!({"check": "expect_error", "line": 12, "col": 1, "op": "put k via m1",
            "expected": ["expired"], "seen": "expired", "witness": "m1's log", "passed": true});
        assert_eq!(
            check_line(&c),
            "12:1 expect_error put k via m1: expected expired, saw expired (from m1's log): passed"
        );
    }
}
