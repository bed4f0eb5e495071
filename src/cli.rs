//! The command line: clap types, turned into plain calls into the library.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::error::{exit_code, Error, Result};
use crate::etcd::process::{etcd_version, find_etcd};
use crate::runner::{self, Source};
use crate::session::RunOptions;

/// Scripts that build a PKI, start real etcd members, and prove what must work and what must
/// be rejected.
#[derive(Debug, Parser)]
#[command(name = "etcdscript", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// Log what the runtime chose (ports, paths, PIDs, timings) to stderr; -vv for more.
    /// RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 every check held; 1 a check failed; 2 bad command line; \
3 script error; 4 environment error (etcd missing, a member would not start); 5 timeout; \
130 interrupted (143 SIGTERM).";

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
        /// Keep the work dir after the run, for inspection; its path is printed on stderr.
        #[arg(long)]
        keep: bool,
        /// Stop the run after this many seconds, tearing everything down.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::limits::DEFAULT_RUN_TIMEOUT.as_secs())]
        timeout: u64,
        /// Also write one JSON line per check to FILE as it resolves (script line and column,
        /// operation, expected classes, class seen, who saw it, passed), then a verdict line.
        #[arg(long, value_name = "FILE")]
        checks: Option<PathBuf>,
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
    /// Compile scripts and check them without starting anything.
    Check {
        /// The scripts.
        #[arg(required = true)]
        scripts: Vec<PathBuf>,
    },
    /// Print the script API: every primitive with its signature, documentation and example.
    Api,
    /// Report the etcd binary that `run` would use, and its version.
    Doctor {
        /// The etcd binary [default: `etcd` on PATH].
        #[arg(long, env = "ETCDSCRIPT_ETCD", value_name = "PATH")]
        etcd: Option<PathBuf>,
    },
    /// Remove work dirs left by runs that were killed (SIGKILL leaves them behind).
    Clean,
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
    /// How many scripts run at once [default: twice the number of cores: a run spends about
    /// half its time waiting on etcd].
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
    if let Command::Test(args) = cli.command {
        return crate::suite::run(&args.options()).unwrap_or_else(|e| {
            eprintln!("{}", render(&e));
            e.exit_code()
        });
    }
    match execute(cli.command) {
        Ok(()) => exit_code::SUCCESS,
        Err(e) => {
            eprintln!("{}", render(&e));
            e.exit_code()
        }
    }
}

fn render(e: &Error) -> String {
    let text = e.to_string();
    if text.starts_with("error: ") {
        text
    } else {
        format!("error: {text}")
    }
}

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Run {
            script,
            etcd,
            workdir,
            keep,
            timeout,
            checks,
        } => {
            if let Some(path) = &checks {
                crate::suite::record::open(path)?;
            }
            let src = Source::read(&script)?;
            let opts = RunOptions {
                etcd,
                workdir,
                keep,
                deadline: None,
            };
            runner::run(&src, &opts, Duration::from_secs(timeout))
        }
        Command::Check { scripts } => {
            let mut failed = None;
            for path in scripts {
                match Source::read(&path).and_then(|src| runner::check(&src)) {
                    Ok(()) => println!("{}: ok", path.display()),
                    Err(e) => {
                        eprintln!("{}", render(&e));
                        failed.get_or_insert(e);
                    }
                }
            }
            match failed {
                None => Ok(()),
                Some(Error::ReadScript { path, source }) => Err(Error::ReadScript { path, source }),
                Some(_) => Err(Error::Script("some scripts did not pass the check".into())),
            }
        }
        Command::Api => {
            print!("{}", crate::script::engine::api_reference());
            Ok(())
        }
        Command::Doctor { etcd } => {
            let bin = find_etcd(etcd.as_deref())?;
            let version = etcd_version(&bin)?;
            println!("etcd: {} (version {version})", bin.display());
            let supported = version.starts_with("3.4.") || version.starts_with("3.5.");
            if !supported {
                println!("note: tested with etcd 3.4 and 3.5; {version} may log differently");
            }
            println!("temp dir: {}", std::env::temp_dir().display());
            Ok(())
        }
        Command::Test(_) => unreachable!("handled in dispatch"),
        Command::Clean => {
            let removed = crate::lifecycle::clean_stale(&std::env::temp_dir())?;
            for d in &removed {
                println!("removed {}", d.display());
            }
            println!("{} stale work dir(s) removed", removed.len());
            Ok(())
        }
    }
}
