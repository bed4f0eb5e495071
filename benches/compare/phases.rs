//! Where the demo's time goes: each run's phases, from the runtime's `-v` trace (stderr) and the
//! members' own logs (kept with `--keep`, then removed), all stamped by the same wall clock.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use etcdscript::etcd::reject::parse_ts;
use time::OffsetDateTime;

/// The phases, in order: each runs from the end of the one before to the event named.
pub const PHASES: [&str; 6] = [
    "exec to the first member launched (start-up, script, PKI)",
    "members launched in turn, the last past etcd's bootstrap check",
    "peers connected, the first election won",
    "the leader's first commit, every member answering",
    "the script's own steps",
    "teardown (SIGKILL, work dir) and exit",
];

/// One run's phase lengths in ms, or why they could not be read.
pub fn one_run(
    etcdscript: &Path,
    root: &Path,
    etcd: &Path,
    script: &Path,
) -> Result<Vec<f64>, String> {
    let exec = OffsetDateTime::from(SystemTime::now());
    let out = Command::new(etcdscript)
        .current_dir(root)
        .env("RUST_LOG", "etcdscript=info")
        .args(["run", "--keep"])
        .arg(script)
        .arg("--etcd")
        .arg(etcd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run: {e}"))?;
    let exit = OffsetDateTime::from(SystemTime::now());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("work dir kept: "))
        .and_then(|rest| rest.split(" (").next())
        .map(PathBuf::from)
        .ok_or("no kept work dir on stderr")?;
    let logs = member_events(&kept.join("members"));
    let _ = std::fs::remove_dir_all(&kept);
    if !out.status.success() {
        return Err(format!("the run failed: {}", out.status));
    }
    let logs = logs?;
    let ours = |what: &str| -> Result<OffsetDateTime, String> {
        stderr
            .lines()
            .filter(|l| l.contains(what))
            .find_map(|l| parse_ts(l.split_whitespace().next()?))
            .ok_or(format!("no \"{what}\" in the trace"))
    };
    let theirs = |what: &str, last: bool| -> Result<OffsetDateTime, String> {
        let times = logs
            .iter()
            .filter(|(_, m)| m.contains(what))
            .map(|(t, _)| *t);
        if last { times.max() } else { times.min() }
            .ok_or(format!("no \"{what}\" in the member logs"))
    };
    let mut marks = [
        exec,
        ours("started etcd")?,
        theirs("starting local member", true)?,
        theirs("became leader", false)?,
        ours("healthy")?,
        ours("teardown")?,
        exit,
    ];
    // A leader can be elected by the first members before the last is past its check: the
    // election then costs the run nothing, and counts as nothing.
    for i in 1..marks.len() {
        marks[i] = marks[i].max(marks[i - 1]);
    }
    Ok(marks
        .windows(2)
        .map(|w| (w[1] - w[0]).as_seconds_f64() * 1000.0)
        .collect())
}

/// Every line of every member log in `dir`: its time and message.
fn member_events(dir: &Path) -> Result<Vec<(OffsetDateTime, String)>, String> {
    let mut events = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let ts = v.get("ts").and_then(|t| t.as_str()).and_then(parse_ts);
            let msg = v.get("msg").and_then(|m| m.as_str());
            if let (Some(ts), Some(msg)) = (ts, msg) {
                events.push((ts, msg.to_owned()));
            }
        }
    }
    Ok(events)
}

/// The demo with quicker raft timings (10 ms heartbeats, 100 ms election timeout), written to
/// `dir`: what the first election costs. `None` if the demo no longer has the line to extend.
pub fn quick_demo(root: &Path, dir: &Path) -> Option<PathBuf> {
    let demo = std::fs::read_to_string(root.join("scripts/demo.rhai")).ok()?;
    let anchor = "token: \"etcd-for-k8sp-tls-demo\",";
    if !demo.contains(anchor) {
        return None;
    }
    let quick = demo.replace(
        anchor,
        &format!("{anchor} heartbeat_ms: 10, election_ms: 100,"),
    );
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join("demo-quick-timings.rhai");
    std::fs::write(&path, quick).ok()?;
    Some(path)
}

/// The median of samples in ms, by the bench's own `stats`; NaN for none.
fn median(v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let samples: Vec<std::time::Duration> = v
        .iter()
        .map(|ms| std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0))
        .collect();
    super::stats(&samples).0
}

/// Per-phase medians of `runs` runs of `script`, and how many runs could not be read.
fn medians(
    etcdscript: &Path,
    root: &Path,
    etcd: &Path,
    script: &Path,
    runs: usize,
) -> (Vec<f64>, Vec<f64>, usize) {
    let mut per_phase = vec![Vec::new(); PHASES.len()];
    let mut totals = Vec::new();
    let mut failed = 0;
    for _ in 0..runs {
        match one_run(etcdscript, root, etcd, script) {
            Ok(lengths) => {
                totals.push(lengths.iter().sum());
                for (all, ms) in per_phase.iter_mut().zip(lengths) {
                    all.push(ms);
                }
            }
            Err(why) => {
                eprintln!("  a run could not be measured: {why}");
                failed += 1;
            }
        }
    }
    (per_phase.into_iter().map(median).collect(), totals, failed)
}

/// Prints where the demo's time goes, with the default timings and with quicker ones, and how
/// long the etcd binary alone takes to start and exit (`etcd --version`).
pub fn report(etcdscript: &Path, root: &Path, etcd: &Path, runs: usize, scratch: &Path) {
    let demo = root.join("scripts/demo.rhai");
    let (default, default_totals, default_failed) = medians(etcdscript, root, etcd, &demo, runs);
    let quick = quick_demo(root, scratch).map(|q| medians(etcdscript, root, etcd, &q, runs));
    println!(
        "where the demo's time goes (medians of {runs} runs, ms; from `-v` and the members' logs):"
    );
    println!("  {:<64} {:>9} {:>9}", "", "25/250 ms", "10/100 ms");
    for (i, phase) in PHASES.iter().enumerate() {
        let q = quick
            .as_ref()
            .map(|(m, _, _)| format!("{:>9.0}", m[i]))
            .unwrap_or_default();
        println!("  {phase:<64} {:>9.0} {q}", default[i]);
    }
    let q = quick
        .as_ref()
        .map(|(_, t, f)| format!("{:>9.0}{}", median(t.clone()), failures(*f)))
        .unwrap_or_default();
    println!(
        "  {:<64} {:>9.0}{} {q}",
        "whole run (median of the sums)",
        median(default_totals),
        failures(default_failed)
    );
    let starts: Vec<f64> = (0..runs)
        .filter_map(|_| {
            let t = std::time::Instant::now();
            let ok = Command::new(etcd)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok()?
                .success();
            ok.then(|| t.elapsed().as_secs_f64() * 1000.0)
        })
        .collect();
    println!(
        "  `etcd --version` alone (the binary's start-up and exit): median {:.0} ms; members start one after another",
        median(starts)
    );
}

fn failures(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} unread)")
    }
}
