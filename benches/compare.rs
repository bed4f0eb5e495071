//! How fast etcdscript is, measured against the tutorial done by hand (`bench/tutorial.sh`),
//! against plain etcd-client, across cluster sizes, per negative check, and under load.
//! Run with `bench/run` (it finds both etcd versions); knobs in README ("Performance").
//!
//! Medians and p95 over repeated runs; nothing here asserts a time. Runs are sequential, and the
//! machine should be otherwise idle except where the stress part loads it on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use etcdscript::etcd::client::{connect, ClientTls};
use etcdscript::pki::{Ca, Cert};
use etcdscript::script::{engine, Shared};
use etcdscript::session::{MemberId, RunOptions, Session};
use etcdscript::transcript::Transcript;

#[path = "compare/phases.rs"]
mod phases;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Median and 95th percentile (nearest rank) of durations, in ms.
fn stats(samples: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = ms.len();
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    let p95 = ms[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1];
    (median, p95)
}

/// Runs a command `runs` times; returns the wall times and how many runs failed.
fn time_runs(runs: usize, mut make: impl FnMut() -> Command) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut failures = 0;
    for _ in 0..runs {
        let mut cmd = make();
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let start = Instant::now();
        let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
        times.push(start.elapsed());
        if !ok {
            failures += 1;
        }
    }
    (times, failures)
}

fn etcdscript() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etcdscript"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn demo(etcd: &Path) -> Command {
    let mut cmd = Command::new(etcdscript());
    cmd.current_dir(root())
        .args(["run", "scripts/demo.rhai"])
        .arg("--etcd")
        .arg(etcd);
    cmd
}

fn tutorial(etcd: &Path, mode: &str) -> Command {
    let ctl = etcd.with_file_name("etcdctl");
    let mut cmd = Command::new(root().join("bench/tutorial.sh"));
    cmd.env("ETCD", etcd).env("MODE", mode);
    if ctl.exists() {
        cmd.env("ETCDCTL", ctl);
    }
    cmd
}

fn row(label: &str, times: &[Duration], failures: usize, base: Option<f64>) -> f64 {
    let (median, p95) = stats(times);
    let ratio = base
        .map(|b| format!("  {:>6.1}x the demo", median / b))
        .unwrap_or_default();
    println!(
        "  {label:<28} median {median:>7.0} ms   p95 {p95:>7.0} ms   ({} runs, {failures} failed){ratio}",
        times.len()
    );
    median
}

/// A session in this process, with a quiet transcript, and the engine bound to it.
fn session(etcd: &Path) -> (rhai::Engine, Shared) {
    let shared = Shared::default();
    let (engine, _) = engine::build(&shared, None);
    let mut s = Session::new(&RunOptions {
        etcd: Some(etcd.to_owned()),
        ..Default::default()
    })
    .expect("session");
    s.transcript = Transcript::quiet();
    shared.install(s);
    (engine, shared)
}

const PKI: &str = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let client = issue(ca, "client");
"#;

/// 1000 puts through one member: a script loop of `kv_set` against plain etcd-client on the same
/// member with the same certificate. Returns (plain, script) medians in ms.
fn put_loop(etcd: &Path, puts: usize, rounds: usize) -> (f64, f64) {
    let (engine, shared) = session(etcd);
    let mut scope = rhai::Scope::new();
    let setup = format!("{PKI}let c = cluster([\"m1\"], #{{ ca: ca, cert: server }});\nlet m1 = spawn_member(c, \"m1\");\nwait_healthy(c);\n");
    engine.run_with_scope(&mut scope, &setup).expect("setup");
    let client: Rc<Cert> = scope.get_value("client").expect("client");
    let ca: Rc<Ca> = scope.get_value("ca").expect("ca");
    let m1: MemberId = scope.get_value("m1").expect("m1");
    let url = shared.with_session_opt(|s| s.client_url(m1)).unwrap();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let tls = ClientTls {
        trust: Some(etcdscript::etcd::tls::Trust::Pem(read(&ca.cert_path))),
        identity_pem: Some((read(&client.cert_path), read(&client.key_path))),
        server_name: "localhost".into(),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut plain_client = rt
        .block_on(connect(
            ([127, 0, 0, 1], port).into(),
            &tls,
            &Default::default(),
            &Default::default(),
        ))
        .expect("connect");
    let script =
        format!("for i in 0..{puts} {{ kv_set(m1, `script/${{i}}`, `v${{i}}`, client); }}");
    let (mut plain, mut scripted) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let start = Instant::now();
        rt.block_on(async {
            for i in 0..puts {
                plain_client
                    .put(format!("plain/{i}"), format!("v{i}"), None)
                    .await
                    .expect("put");
            }
        });
        plain.push(start.elapsed());
        let start = Instant::now();
        engine
            .run_with_scope(&mut scope, &script)
            .expect("script loop");
        scripted.push(start.elapsed());
        eprintln!(
            "  put loop round {round}: plain {:?}, script {:?}",
            plain[round], scripted[round]
        );
    }
    drop(scope);
    shared.take_session();
    (stats(&plain).0, stats(&scripted).0)
}

/// From `cluster()` to `wait_healthy` returning, for `n` members.
fn startup(etcd: &Path, n: usize, runs: usize) -> Vec<Duration> {
    let names: Vec<String> = (1..=n).map(|i| format!("\"m{i}\"")).collect();
    let script = format!(
        "let c = cluster([{}], #{{ ca: ca, cert: server }});\nfor name in c.names {{ spawn_member(c, name); }}\nwait_healthy(c);\n",
        names.join(", ")
    );
    (0..runs)
        .map(|_| {
            let (engine, shared) = session(etcd);
            let mut scope = rhai::Scope::new();
            engine.run_with_scope(&mut scope, PKI).expect("pki");
            let start = Instant::now();
            engine.run_with_scope(&mut scope, &script).expect("cluster");
            let took = start.elapsed();
            drop(scope);
            shared.take_session();
            took
        })
        .collect()
}

/// Every negative check of every scenario: ms from the call, and from the member's log line.
fn negative_checks(etcd: &Path) -> (Vec<f64>, Vec<f64>) {
    let mut from_call = Vec::new();
    let mut from_log = Vec::new();
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    scripts.sort();
    for script in scripts {
        let out = Command::new(etcdscript())
            .current_dir(root())
            .env("RUST_LOG", "etcdscript=info")
            .arg("run")
            .arg(&script)
            .arg("--etcd")
            .arg(etcd)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stderr
            .lines()
            .filter(|l| l.contains("negative check resolved"))
        {
            let field = |k: &str| -> Option<f64> {
                let rest = &line[line.find(&format!("{k}="))? + k.len() + 1..];
                let v = rest.split_whitespace().next()?;
                v.trim_start_matches("Some(")
                    .trim_end_matches(')')
                    .parse()
                    .ok()
            };
            if let Some(ms) = field("ms_since_call") {
                from_call.push(ms);
            }
            if let Some(ms) = field("ms_since_logged") {
                from_log.push(ms);
            }
        }
    }
    (from_call, from_log)
}

fn max(v: &[f64]) -> f64 {
    v.iter().cloned().fold(0.0, f64::max)
}

fn main() {
    // `cargo bench` passes --bench; there are no other arguments.
    let etcds: Vec<PathBuf> = std::env::var("BENCH_ETCD")
        .unwrap_or_else(|_| "etcd".into())
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    let runs = env_usize("BENCH_RUNS", 20);
    let faithful_runs = env_usize("BENCH_FAITHFUL_RUNS", 5);
    let stress_runs = env_usize("BENCH_STRESS_RUNS", 100);
    let puts = env_usize("BENCH_PUTS", 1000);
    for etcd in &etcds {
        let version = etcdscript::etcd::process::etcd_version(etcd).unwrap_or_else(|_| "?".into());
        println!("\netcd {version} ({})", etcd.display());
        println!("the seed tutorial, end to end (wall time of one whole run):");
        let (t, f) = time_runs(runs, || demo(etcd));
        let base = row("etcdscript demo (release)", &t, f, None);
        let (t, f) = time_runs(runs, || tutorial(etcd, "tuned"));
        row("by hand, tuned", &t, f, Some(base));
        if faithful_runs > 0 {
            let (t, f) = time_runs(faithful_runs, || tutorial(etcd, "faithful"));
            row("by hand, as written", &t, f, Some(base));
        }

        let scratch = std::env::temp_dir().join(format!("etcdscript-bench-{}", std::process::id()));
        phases::report(&etcdscript(), &root(), etcd, runs, &scratch);
        let _ = std::fs::remove_dir_all(&scratch);

        let (plain, script) = put_loop(etcd, puts, 3);
        println!(
            "{puts} puts through one member, median of 3: plain etcd-client {plain:.0} ms, script kv_set loop {script:.0} ms: {:.2}x",
            script / plain
        );

        println!("cluster start-up, cluster() to wait_healthy() returning (10 runs each):");
        for n in [1, 3, 5, 7] {
            let (median, p95) = stats(&startup(etcd, n, 10));
            println!("  {n} member(s): median {median:>5.0} ms   p95 {p95:>5.0} ms");
        }

        let (from_call, from_log) = negative_checks(etcd);
        println!(
            "negative checks in scripts/: {} resolved; from the call: max {:.0} ms; after the member logged it: max {:.0} ms ({} with a log line)",
            from_call.len(),
            max(&from_call),
            max(&from_log),
            from_log.len()
        );

        if stress_runs > 0 {
            // One core kept busy by a process of our own, ended by its PID afterwards.
            let mut busy = Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .spawn()
                .expect("busy loop");
            let (t, f) = time_runs(stress_runs, || demo(etcd));
            let _ = busy.kill();
            let _ = busy.wait();
            println!("with one core kept busy:");
            row("etcdscript demo", &t, f, None);
        }
    }
}
