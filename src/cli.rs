//! The command line: clap types, turned into plain calls into the library.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::error::{exit_code, Error, Result};
use crate::etcd::process::{etcd_version, find_etcd};
use crate::runner::{self, Source};
use crate::session::RunOptions;
use crate::transcript::out;

/// Scripts that build a PKI, start real etcd members, and prove what must work and what must
/// be rejected.
#[derive(Debug, Parser)]
#[command(name = "etcdscript", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// Log what the runtime chose (ports, paths, PIDs, timings) to stderr; -vv for more.
    /// RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print no transcript: only the verdict line (`ok: ...` or `FAILED: ...`) and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The version, with the etcd versions it is tested with.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (tested with etcd 3.4.23 and 3.5.1)"
);

/// Parses the command line, with the exit codes in `--help`.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().after_help(exit_code::help()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The shells `etcdscript completions` writes for.
pub use clap_complete::Shell;

/// The formats of `etcdscript api`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ApiFormat {
    Text,
    Markdown,
    Json,
    Definitions,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a script: its transcript goes to stdout, the log to stderr.
    #[command(after_help = "Examples:\n  etcdscript run scripts/demo.rhai\n  \
        etcdscript -v run --keep --etcd /usr/bin/etcd scripts/client-expired.rhai")]
    Run {
        /// The script (.rhai).
        script: PathBuf,
        /// The etcd binary [default: `etcd` on PATH].
        #[arg(long, env = "ETCDSCRIPT_ETCD", value_name = "PATH")]
        etcd: Option<PathBuf>,
        /// Put certificates, data dirs and member logs here (a new or empty directory)
        /// instead of a temporary directory.
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// Keep the work dir after the run, for inspection: certificates, keys and member logs
        /// (the members' data dirs are removed). Its path and size are printed on stderr; it
        /// stays until you remove it (or `etcdscript clean --kept`).
        #[arg(long)]
        keep: bool,
        /// Keep the members' data dirs too (about 120 MB each). Implies --keep.
        #[arg(long)]
        keep_data: bool,
        /// Stop the run after this many seconds, tearing everything down.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::limits::DEFAULT_RUN_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=crate::limits::MAX_RUN_TIMEOUT.as_secs()))]
        timeout: u64,
        /// Also write one JSON line per check to FILE as it resolves (script line and column,
        /// operation, expected classes, class seen, who saw it, passed), then a verdict line.
        #[arg(long, value_name = "FILE")]
        checks: Option<PathBuf>,
        /// Let the script read PEM files in DIR (`load_ca`, `load_cert`), read-only, and in no
        /// other directory: a CA and certificates of an existing deployment, such as kubeadm's
        /// /etc/kubernetes/pki/etcd.
        #[arg(long, value_name = "DIR")]
        pki: Option<PathBuf>,
    },
    /// Export a script as the shell tutorial it replaces: bash, or Markdown prose and commands.
    #[command(
        long_about = "Export a script as the shell tutorial it replaces. The script runs first, as with `run` (it needs etcd); only a run that passes is exported. Its steps become openssl commands that make the same certificates (subjects, SANs, usages, key types, validity, expired and not yet valid ones included), etcd commands with the same flags on fixed ports (the seed tutorial's 2379N and 2380N), and etcdctl commands for each call. Each expect_error becomes a check that the call is refused, and where the shell can see why (the member's log, or etcdctl's words), that it was refused for that reason. A step with no shell form is marked NOT EXPRESSED, never dropped; such an export is partial, says so at its top, and exit code 6 says so too.

--format bash: a standalone script that works in a new temp dir and removes it, stops the members it started however it ends, and exits 1 at the first check that does not hold. --format markdown: the script's comments as text (in whatever language they are written), each step its command block, and what etcdscript saw.

Exit codes: 0 exported in full; 6 exported, but partial; otherwise the run's own (the script failed: nothing exported).",
        after_help = "Examples:\n  etcdscript export scripts/demo.rhai > tutorial.sh && bash tutorial.sh\n  \
etcdscript export --format markdown scripts/demo.rhai > tutorial.md"
    )]
    Export {
        /// The script (.rhai).
        script: PathBuf,
        /// bash (a script that checks itself) or markdown (a tutorial to read).
        #[arg(long, value_enum, default_value_t = ExportFormat::Bash)]
        format: ExportFormat,
        /// The etcd binary the script runs with first [default: `etcd` on PATH].
        #[arg(long, env = "ETCDSCRIPT_ETCD", value_name = "PATH")]
        etcd: Option<PathBuf>,
        /// Stop the run after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::limits::DEFAULT_RUN_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=crate::limits::MAX_RUN_TIMEOUT.as_secs()))]
        timeout: u64,
    },
    /// Run a suite: every *.rhai under the paths, each compared with its snapshot.
    #[command(
        long_about = "Run a suite: every *.rhai under PATHs (default scripts/), --jobs at a time, each as its own `etcdscript run` (own work dir, ports, timeout). Each script's exit code and transcript are compared with its snapshot (insta's .snap format): snapshots/<name>.rhai.snap beside the script, or DIR/<dir>@<name>.rhai.snap with --snapshots DIR. A missing or changed snapshot fails the script and is written as .snap.new, for `cargo insta review` or --accept; with CI=true (or INSTA_UPDATE=no) nothing is written unless --accept (or INSTA_UPDATE=always). A timeout, a panic or a broken environment fails a script whatever its snapshot says.\n\nExit codes: 0 every script passed; 1 a script failed, changed or is new; 2 bad command line; 4 environment error (an --etcd that does not exist).",
        after_help = "Examples:\n  etcdscript test                       every script in scripts/\n  \
etcdscript test tests/etcd --accept   accept new and changed snapshots\n  \
etcdscript test --etcd /usr/bin/etcd --etcd ./etcd-3.5 --junit report.xml\n  \
etcdscript test --partition hash:2/3 --junit share-2.xml   one CI machine of three\n  \
etcdscript test --filter client- --fail-fast --list"
    )]
    Test(TestArgs),
    /// Audit a cluster that runs already, by behaviour: the CIS Kubernetes Benchmark's etcd items
    /// (2.1 to 2.7) and more, each connecting and trying as an intruder would.
    #[command(
        long_about = "Audit a cluster that runs already, by behaviour rather than by reading its flags: the CIS Kubernetes Benchmark's etcd items (2.1 to 2.7) and more. Each finding connects and tries: plain text, no certificate, a certificate of another CA, an expired one and a server-only one (these two need --ca-key, to sign them with the cluster's own CA), the peer port likewise, and a certificate of another CA of the deployment (--other-ca with --other-ca-key, say Kubernetes') to show that etcd has a CA of its own. Each finding is pass, fail or not checkable, with its evidence. Nothing is written to the cluster. Each member given is audited on its own. The battery is scripts/audit/cis-etcd.rhai: copy it, add findings of your own, and run the copy with --battery.\n\nExit codes: 0 no finding failed; 1 a finding failed; 2 bad command line; 3 a mistake in the battery, or a PEM file it cannot use (a key that is not the certificate's, say); 4 environment error (a file that cannot be opened); 5 --timeout reached.",
        after_help = "Example (kubeadm):\n  sudo etcdscript audit --endpoints https://127.0.0.1:2379 --peer-endpoints https://10.0.0.5:2380 \\\n    --cacert /etc/kubernetes/pki/etcd/ca.crt --ca-key /etc/kubernetes/pki/etcd/ca.key \\\n    --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key \\\n    --other-ca /etc/kubernetes/pki/ca.crt --other-ca-key /etc/kubernetes/pki/ca.key --json audit.json"
    )]
    Audit(AuditCli),
    /// Compile scripts and check them without starting anything.
    Check {
        /// The scripts.
        #[arg(required = true)]
        scripts: Vec<PathBuf>,
    },
    /// Print the script API: every primitive with its signature, documentation and example,
    /// the properties of values, and the error classes; generated from the engine itself.
    #[command(after_help = "Examples:\n  etcdscript api\n  \
        etcdscript api --format json | jq '.primitives[].signature'\n  \
        etcdscript api --format definitions > etcdscript.d.rhai   # for the Rhai language server")]
    Api {
        /// text: the reference; markdown: README's table; json: for tools; definitions: a Rhai
        /// definition file (.d.rhai) for editors.
        #[arg(long, value_enum, default_value_t = ApiFormat::Text)]
        format: ApiFormat,
    },
    /// Print a shell completion script: `etcdscript completions bash > /etc/bash_completion.d/etcdscript`.
    #[command(
        after_help = "Examples:\n  etcdscript completions bash > ~/.local/share/bash-completion/completions/etcdscript\n  \
        etcdscript completions zsh > ~/.zfunc/_etcdscript\n  \
        etcdscript completions fish > ~/.config/fish/completions/etcdscript.fish"
    )]
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Report the etcd binary that `run` would use, and its version.
    Doctor {
        /// The etcd binary [default: `etcd` on PATH].
        #[arg(long, env = "ETCDSCRIPT_ETCD", value_name = "PATH")]
        etcd: Option<PathBuf>,
    },
    /// Remove work dirs left by runs that were killed (SIGKILL leaves them behind). Kept work
    /// dirs (--keep) are listed, not removed, unless --kept; a work dir whose run may still be
    /// alive (in another PID namespace, such as a container sharing /tmp) is never removed.
    Clean {
        /// Remove kept work dirs too (of runs that have ended).
        #[arg(long)]
        kept: bool,
    },
}

/// `etcdscript audit`'s options; see [`crate::audit::AuditArgs`].
#[derive(Debug, clap::Args)]
pub struct AuditCli {
    /// The client URLs to audit (https://host:port), comma-separated.
    #[arg(long, value_name = "URL,...", value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// The peer URLs, to audit the peer port too.
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    peer_endpoints: Vec<String>,
    /// The CA certificate clients trust (PEM).
    #[arg(long, value_name = "FILE")]
    cacert: PathBuf,
    /// A client certificate the cluster accepts (PEM), and its key.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The CA's key: lets the audit sign expired and server-only client certificates with it.
    #[arg(long, value_name = "FILE")]
    ca_key: Option<PathBuf>,
    /// Another CA of the deployment (say Kubernetes'), whose certificates etcd must refuse;
    /// with its key, to sign one.
    #[arg(long, value_name = "FILE")]
    other_ca: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "other_ca")]
    other_ca_key: Option<PathBuf>,
    /// Also write the findings as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run this battery (a copy of scripts/audit/cis-etcd.rhai with findings of your own)
    /// instead of the built-in one. It gets the same AUDIT map.
    #[arg(long, value_name = "FILE")]
    battery: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=crate::limits::MAX_RUN_TIMEOUT.as_secs()))]
    timeout: u64,
}

/// `etcdscript test`'s options; see [`crate::suite::Options`].
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Scripts, and directories searched for *.rhai [default: scripts].
    paths: Vec<PathBuf>,
    /// Keep every snapshot in DIR as <dir>@<name>.rhai.snap (this repository: --snapshots
    /// snapshots) instead of snapshots/ beside each script.
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
    /// How many scripts run at once [default: four times the number of cores, as a run spends
    /// most of its time waiting on etcd's timers; fewer if the temp dir lacks room for five
    /// members (about 650 MB) per run].
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// The etcd binary; repeat it to run every script against each, held to one snapshot
    /// [default: ETCDSCRIPT_ETCD, else `etcd` on PATH].
    #[arg(long, env = "ETCDSCRIPT_ETCD", value_name = "PATH")]
    etcd: Vec<PathBuf>,
    /// Each script's --timeout.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::limits::SUITE_DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// Run only scripts whose path contains PATTERN (repeatable: any one).
    #[arg(long, value_name = "PATTERN")]
    filter: Vec<String>,
    /// Stop at the first failure: running scripts are stopped, the rest skipped.
    #[arg(long)]
    fail_fast: bool,
    /// Print the scripts that would run, and run nothing.
    #[arg(long)]
    list: bool,
    /// Accept new and changed snapshots: write them in place (also INSTA_UPDATE=always).
    #[arg(long)]
    accept: bool,
    /// Run share M of N (hash:M/N): N machines with M = 1..N run disjoint shares whose union
    /// is the suite.
    #[arg(long, value_name = "hash:M/N")]
    partition: Option<crate::suite::discover::Partition>,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Print TAP on stdout instead of the lines for a person (the summary goes to stderr).
    #[arg(long)]
    tap: bool,
}

impl TestArgs {
    fn options(self) -> crate::suite::Options {
        crate::suite::Options {
            paths: self.paths,
            snapshots: self.snapshots,
            jobs: self.jobs.unwrap_or_else(crate::suite::default_jobs),
            etcd: self.etcd,
            timeout: Duration::from_secs(self.timeout),
            filter: self.filter,
            fail_fast: self.fail_fast,
            list: self.list,
            accept: self.accept,
            partition: self.partition,
            junit: self.junit,
            json: self.json,
            tap: self.tap,
        }
    }
}

/// Runs a parsed command line; returns the exit code.
pub fn dispatch(cli: Cli) -> i32 {
    match execute(cli.command, cli.quiet) {
        Ok(code) => code,
        Err(e) => {
            crate::transcript::err(render(&e));
            e.exit_code()
        }
    }
}

/// An error as the user reads it, once: `error: what`, then for a place in a script
/// `--> file:line:col`, the line and a caret under the column (as rustc does), then the note.
fn render(e: &Error) -> String {
    let clip = |t: &str| crate::quote::clip_lines(t, crate::limits::MAX_ERROR_LINE_CHARS);
    let Error::Located { at, inner, note } = e else {
        return format!("error: {}", clip(&e.to_string()));
    };
    let msg = clip(&inner.to_string());
    let mut out = match at.line {
        None => format!("error: {msg}\n  --> {}", at.file),
        Some(line) => {
            let gutter = " ".repeat(line.to_string().len());
            format!(
                "error: {msg}\n{gutter}--> {}:{line}:{}\n{gutter} |\n{line} | {}\n{gutter} | {}^",
                at.file,
                at.col,
                at.text,
                " ".repeat(at.caret.saturating_sub(1))
            )
        }
    };
    if let Some(note) = note {
        out.push_str(&format!("\n  = detail: {}", clip(note)));
    }
    out
}

/// The export formats, as the command line names them.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ExportFormat {
    Bash,
    Markdown,
}

/// `etcdscript export`: runs the script (its transcript to stderr), then writes the export to
/// stdout if the run passed. Exit 6 says the export is partial.
fn export(
    script: &std::path::Path,
    format: ExportFormat,
    etcd: Option<PathBuf>,
    timeout: u64,
) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let src = Source::read(script)?;
    let opts = RunOptions {
        etcd,
        deadline: Some(deadline),
        timeout: Some(Duration::from_secs(timeout)),
        quiet: true,
        ..Default::default()
    };
    let (result, trace) = runner::run_traced(&src, &opts, Duration::from_secs(timeout));
    result?;
    let trace = trace.ok_or_else(|| Error::Environment("the run recorded no trace".into()))?;
    let format = match format {
        ExportFormat::Bash => crate::export::Format::Bash,
        ExportFormat::Markdown => crate::export::Format::Markdown,
    };
    let chunks = crate::export::chunks(&trace, &src.text);
    let complete = crate::export::complete(&chunks);
    out(crate::export::render(format, &chunks, script).trim_end());
    Ok(if complete {
        exit_code::SUCCESS
    } else {
        exit_code::PARTIAL_EXPORT
    })
}

fn execute(command: Command, quiet: bool) -> Result<i32> {
    let done: Result<()> = match command {
        Command::Run {
            script,
            etcd,
            workdir,
            keep,
            keep_data,
            timeout,
            checks,
            pki,
        } => {
            // The deadline starts before the script is read: --timeout bounds all of it.
            let deadline = Instant::now() + Duration::from_secs(timeout);
            if let Some(path) = &checks {
                crate::suite::record::open(path)?;
            }
            let src = Source::read(&script)?;
            let opts = RunOptions {
                etcd,
                workdir,
                keep,
                keep_data,
                deadline: Some(deadline),
                timeout: Some(Duration::from_secs(timeout)),
                hooks: crate::hooks::TestHooks::from_env(),
                quiet,
                pki,
                trace: false,
            };
            runner::run(&src, &opts, Duration::from_secs(timeout))
        }
        Command::Check { scripts } => {
            // Every problem in every file, not only the first.
            let mut failed = None;
            let mut count = 0;
            for path in scripts {
                let checked = Source::read(&path)
                    .map_err(|e| vec![e])
                    .and_then(|src| runner::check(&src));
                match checked {
                    Ok(()) => out(format!("{}: ok", path.display())),
                    Err(problems) => {
                        for e in problems {
                            count += 1;
                            crate::transcript::err(render(&e));
                            failed.get_or_insert(e);
                        }
                    }
                }
            }
            match failed {
                None => Ok(()),
                Some(Error::ReadScript { path, source }) => Err(Error::ReadScript { path, source }),
                Some(_) => Err(Error::Script(format!(
                    "{count} problem{} found; nothing was run",
                    if count == 1 { "" } else { "s" }
                ))),
            }
        }
        Command::Api { format } => {
            let catalog = crate::script::engine::catalog();
            let classes = crate::script::engine::classes();
            let text = match format {
                ApiFormat::Text => catalog.text(&classes),
                ApiFormat::Markdown => catalog.markdown(),
                ApiFormat::Json => catalog.json(&classes),
                ApiFormat::Definitions => catalog.definitions(),
            };
            out(text.trim_end_matches('\n'));
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "etcdscript", &mut text);
            out(String::from_utf8_lossy(&text).trim_end());
            Ok(())
        }
        Command::Export {
            script,
            format,
            etcd,
            timeout,
        } => return export(&script, format, etcd, timeout),
        Command::Doctor { etcd } => {
            let bin = find_etcd(etcd.as_deref())?;
            let version = etcd_version(&bin)?;
            out(format!("etcd: {} (version {version})", bin.display()));
            let supported = version.starts_with("3.4.") || version.starts_with("3.5.");
            if !supported {
                out(format!(
                    "note: tested with etcd 3.4 and 3.5; {version} may log differently"
                ));
            }
            let tmp = std::env::temp_dir();
            match crate::workdirs::free_bytes(&tmp) {
                Some(free) => out(format!(
                    "temp dir: {} ({} free: room for {} members at about {} each)",
                    tmp.display(),
                    crate::lifecycle::human_size(free),
                    free / crate::limits::MEMBER_DISK_BYTES,
                    crate::lifecycle::human_size(crate::limits::MEMBER_DISK_BYTES)
                )),
                None => out(format!("temp dir: {}", tmp.display())),
            }
            Ok(())
        }
        // The suite has said what passed and failed; its code is the verdict.
        Command::Test(args) => return crate::suite::run(&args.options()),
        Command::Audit(a) => {
            return crate::audit::run(&crate::audit::AuditArgs {
                endpoints: a.endpoints,
                peer_endpoints: a.peer_endpoints,
                cacert: a.cacert,
                cert: a.cert,
                key: a.key,
                ca_key: a.ca_key,
                other_ca: a.other_ca,
                other_ca_key: a.other_ca_key,
                json: a.json,
                battery: a.battery,
                timeout: Duration::from_secs(a.timeout),
                quiet,
            })
        }
        Command::Clean { kept } => {
            let report = crate::workdirs::clean_stale(&std::env::temp_dir(), kept)?;
            for d in &report.removed {
                out(format!("removed {}", d.display()));
            }
            for d in &report.kept {
                out(format!(
                    "kept {} ({}): a --keep run's; `etcdscript clean --kept` removes it",
                    d.display(),
                    crate::lifecycle::human_size(crate::lifecycle::tree_size(d))
                ));
            }
            for (d, why) in &report.undecided {
                out(format!("left {}: {why}", d.display()));
            }
            out(format!("{} work dir(s) removed", report.removed.len()));
            Ok(())
        }
    };
    done.map(|()| exit_code::SUCCESS)
}
