//! Helpers shared by the integration tests: run the built binary on a script, read what it did.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built etcdscript binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etcdscript"))
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What one run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Exit code and transcript, the way snapshots keep them.
    pub fn snapshot(&self) -> String {
        format!("exit: {}\n---\n{}", self.code, self.stdout)
    }
}

/// Runs `etcdscript` with `args` in the repository root (etcd from ETCDSCRIPT_ETCD or PATH).
pub fn etcdscript(args: &[&str]) -> Run {
    let out = Command::new(bin())
        .args(args)
        .current_dir(root())
        .output()
        .expect("failed to run etcdscript");
    Run::from(out)
}

/// Writes `text` as a script in a fresh temp dir and runs it; the dir is returned with the run
/// so that it lives as long as the caller needs it.
pub fn run_text(name: &str, text: &str, extra: &[&str]) -> (Run, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write script");
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    let p = path.to_str().expect("utf-8 path").to_owned();
    args.push(&p);
    let run = etcdscript(&args);
    (run, dir)
}

/// A path relative to the repository root, as a string.
pub fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The PKI and one-member cluster that most small test scripts start from.
pub const ONE_MEMBER: &str = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let client = issue(ca, "client");
let c = cluster(["m1"], #{ ca: ca, cert: server });
let m1 = spawn_member(c, "m1");
wait_healthy(c);
"#;

/// A run in progress, watched line by line: the member PIDs and work dir it logs (with -v),
/// and its transcript.
pub struct Live {
    pub child: std::process::Child,
    pub pids: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
    pub workdir: std::sync::Arc<std::sync::Mutex<Option<PathBuf>>>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stdout: std::sync::mpsc::Receiver<String>,
    pub transcript: Vec<String>,
    _dir: tempfile::TempDir,
}

/// The value of `key=value` in a log line.
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    Some(line[start..].split_whitespace().next()?.to_owned())
}

impl Live {
    /// Starts `etcdscript -v run [extra] SCRIPT` on `text`, with `env` added.
    pub fn start(text: &str, extra: &[&str], env: &[(&str, &str)]) -> Live {
        use std::io::BufRead;
        use std::process::Stdio;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("live.rhai");
        std::fs::write(&path, text).expect("write script");
        let mut cmd = Command::new(bin());
        cmd.arg("-v").arg("run").args(extra).arg(&path);
        cmd.envs(env.iter().copied());
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("start etcdscript");
        let pids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let workdir = std::sync::Arc::new(std::sync::Mutex::new(None));
        let stderr_text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let (p, w, t) = (pids.clone(), workdir.clone(), stderr_text.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("started etcd") {
                    if let Some(pid) = field(&line, "pid").and_then(|p| p.parse().ok()) {
                        p.lock().unwrap().push(pid);
                    }
                }
                if line.contains("work dir") {
                    if let Some(d) = field(&line, "workdir") {
                        *w.lock().unwrap() = Some(PathBuf::from(d));
                    }
                }
                let mut t = t.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            pids,
            workdir,
            stderr: stderr_text,
            stdout: rx,
            transcript: Vec::new(),
            _dir: dir,
        }
    }

    /// Waits (bounded) for a transcript line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.transcript.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?}; transcript so far:\n{}\nstderr:\n{}",
                    self.transcript.join("\n"),
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// Sends a signal to etcdscript itself.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for etcdscript to exit; returns its exit code (or -signal) and stderr.
    pub fn finish(&mut self) -> (i32, String) {
        use std::os::unix::process::ExitStatusExt;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("etcdscript did not exit");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        // Let the reader threads drain.
        std::thread::sleep(std::time::Duration::from_millis(100));
        while let Ok(line) = self.stdout.try_recv() {
            self.transcript.push(line);
        }
        let code = status
            .code()
            .unwrap_or_else(|| -status.signal().unwrap_or(0));
        (code, self.stderr.lock().unwrap().clone())
    }

    /// The member PIDs the run logged.
    pub fn pids(&self) -> Vec<u32> {
        self.pids.lock().unwrap().clone()
    }

    /// The work dir the run logged.
    pub fn workdir(&self) -> PathBuf {
        self.workdir
            .lock()
            .unwrap()
            .clone()
            .expect("the run logged no work dir")
    }
}

/// Whether a process runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Asserts that none of `pids` runs within 2 s.
pub fn assert_all_gone(pids: &[u32]) {
    assert!(!pids.is_empty(), "the run logged no member PIDs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "members still running 2 s after the run ended: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Three members, healthy, then "ready" in the transcript.
pub const THREE_READY: &str = r#"
let ca = ca("ca");
let server = issue(ca, "server", #{ cn: "localhost", sans: ["localhost", "127.0.0.1"], usage: ["server", "client"] });
let client = issue(ca, "client");
let c = cluster(["m1", "m2", "m3"], #{ ca: ca, cert: server });
for n in c.names { spawn_member(c, n); }
wait_healthy(c);
kv_set(c, "k", "v", client);
print("ready");
"#;

/// Asserts that `text` contains `needle`, showing the whole text if not.
#[track_caller]
pub fn assert_has(text: &str, needle: impl AsRef<str>) {
    let needle = needle.as_ref();
    assert!(text.contains(needle), "no {needle:?} in:\n{text}");
}

impl Live {
    /// The client port the run logged for `member` (with -v).
    pub fn client_port(&self, member: &str) -> u16 {
        self.planned_port(member, "client_port")
    }

    /// The peer port the run logged for `member` (with -v).
    pub fn peer_port(&self, member: &str) -> u16 {
        self.planned_port(member, "peer_port")
    }

    fn planned_port(&self, member: &str, key: &str) -> u16 {
        let stderr = self.stderr.lock().unwrap();
        stderr
            .lines()
            .filter(|l| l.contains("planned member"))
            .find(|l| field(l, "member").as_deref() == Some(member))
            .and_then(|l| field(l, key))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no {key} logged for {member}:\n{stderr}"))
    }
}

/// A TLS handshake without a client certificate to a loopback port (openssl s_client, bounded),
/// as an outside client would make it.
pub fn tls_knock(port: u16) {
    let _ = Command::new("timeout")
        .args(["2", "openssl", "s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Sends `sig` (a name such as "STOP") to a process we started; false if it is gone.
pub fn signal_pid(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kill")
        .success()
}

/// Runs `etcdscript` with `args` and `env`, its stdin, stdout and stderr closed from the start
/// (a pipe whose reader has gone away), and returns its exit code; fails if it does not end
/// within `secs` (a hang guard, not a timing check).
pub fn run_with_closed_pipes(args: &[&str], env: &[(&str, &str)], secs: u64) -> i32 {
    use std::process::Stdio;
    let mut child = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etcdscript");
    drop(child.stdout.take());
    drop(child.stderr.take());
    wait_bounded(&mut child, secs)
}

/// Waits for `child` at most `secs` (a hang guard); its exit code, or -signal.
pub fn wait_bounded(child: &mut std::process::Child, secs: u64) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code().unwrap_or_else(|| -s.signal().unwrap_or(0));
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("etcdscript did not end within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Runs `etcdscript` with `args` and `env` added, bounded by `secs` (a hang guard).
pub fn etcdscript_env(args: &[&str], env: &[(&str, &str)], secs: u64) -> Run {
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start etcdscript");
    let code = wait_bounded(&mut child, secs);
    Run {
        code,
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    }
}

/// The etcd processes whose command line mentions `dir` (a work dir, or a private TMPDIR that
/// holds the work dirs): members a run left behind.
pub fn etcd_under(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let exe = cmd.split(' ').next().unwrap_or("");
        let is_etcd = exe == "etcd" || exe.ends_with("/etcd");
        if is_etcd && cmd.contains(&needle) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// A private TMPDIR for tests that run many members at once: in /dev/shm where it has room for
/// them, since each member's data dir takes about 125 MB (etcd preallocates its write-ahead
/// log) and a machine's disk may have less to spare than its memory; else in the usual temp dir.
pub fn roomy_tmpdir(members: u64) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let room = etcdscript::workdirs::free_bytes(shm).unwrap_or(0);
    if room > members * 150_000_000 {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

/// The `etcdscript-*` work dirs in `tmp`.
pub fn workdirs_in(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("etcdscript-"))
        })
        .collect()
}

/// A stand-in for etcd: a shell script with `body`, in its own temp dir (returned with it).
/// It is started like etcd, in its own process group, its output in the member's log.
pub fn fake_etcd(body: &str) -> (PathBuf, tempfile::TempDir) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("etcd");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (path, dir)
}

/// `n` free loopback ports below the kernel's ephemeral range, so that no outgoing connection
/// takes one as its source port before the run that pins them binds them.
pub fn free_low_ports(n: usize) -> Vec<u16> {
    let seed = std::process::id() as usize * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as usize;
    let mut ports = Vec::new();
    let mut held = Vec::new();
    for i in 0..20_000 {
        let port = 10_000 + ((seed + i * 104_729) % 22_000) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            ports.push(port);
            if ports.len() == n {
                break;
            }
        }
    }
    assert_eq!(ports.len(), n, "no {n} free ports");
    ports
}

/// `f` over `items`, `workers` at a time, in their order.
pub fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let size = items.len().div_ceil(workers.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(size)
            .map(|chunk| s.spawn(|| chunk.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker panicked"))
            .collect()
    })
}

/// A script run to check, built a few words at a time, in the spirit of casey/just's `Test`:
/// `Case::new("x.rhai").script(ONE_MEMBER).script("kv_get(m1, \"k\");").run().code(1)`.
#[derive(Clone, Debug, Default)]
pub struct Case {
    name: String,
    text: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Case {
    /// A case whose script file is called `name`.
    pub fn new(name: &str) -> Case {
        Case {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    /// Appends `text` to the script.
    pub fn script(mut self, text: &str) -> Case {
        self.text.push_str(text);
        if !text.ends_with('\n') {
            self.text.push('\n');
        }
        self
    }

    /// Adds an argument of `run`, before the script (`--timeout`, `--etcd`...).
    pub fn arg(mut self, arg: &str) -> Case {
        self.args.push(arg.to_owned());
        self
    }

    /// Sets an environment variable of the run.
    pub fn env(mut self, key: &str, value: &str) -> Case {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs it (etcd from ETCDSCRIPT_ETCD), echoing what it printed to the test's output.
    pub fn run(&self) -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(&self.name);
        std::fs::write(&path, &self.text).expect("write script");
        let out = Command::new(bin())
            .arg("run")
            .args(&self.args)
            .arg(&path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(root())
            .output()
            .expect("failed to run etcdscript");
        let run = Run::from(out);
        eprintln!(
            "--- {}: exit {}\n{}{}",
            self.name, run.code, run.stdout, run.stderr
        );
        run
    }
}

impl Run {
    /// Asserts the exit code.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "{}{}", self.stdout, self.stderr);
        self
    }

    /// Asserts words of the transcript.
    #[track_caller]
    pub fn stdout_has(&self, words: &str) -> &Run {
        assert_has(&self.stdout, words);
        self
    }

    /// Asserts words of the log and errors.
    #[track_caller]
    pub fn stderr_has(&self, words: &str) -> &Run {
        assert_has(&self.stderr, words);
        self
    }
}

/// An outside client without a certificate, knocking at a port over and over (a TLS handshake,
/// then `pause`) until dropped.
pub struct Knocker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Knocker {
    pub fn start(port: u16, pause: std::time::Duration) -> Knocker {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                tls_knock(port);
                std::thread::sleep(pause);
            }
        });
        Knocker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Knocker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The etcd under test is 3.5 or later.
pub fn etcd_35() -> bool {
    let bin = std::env::var("ETCDSCRIPT_ETCD").unwrap_or_else(|_| "etcd".into());
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .expect("etcd --version");
    let text = String::from_utf8_lossy(&out.stdout);
    !text.contains("etcd Version: 3.4")
}
