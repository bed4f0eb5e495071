//! `etcdscript audit`: the CIS etcd items and more, checked by behaviour against a cluster
//! etcdscript did not start. The battery is `scripts/audit/cis-etcd.rhai`, built in (or a copy
//! of it, `--battery`); this module gives it the endpoints and the paths of the PEM files named
//! on the command line as `AUDIT`, and reports its findings.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Map};

use crate::error::{exit_code, Error, Result};
use crate::runner::{self, Source};
use crate::session::{Finding, Outcome, RunOptions};

/// The battery, as shipped in `scripts/audit/`.
pub const BATTERY: &str = include_str!("../scripts/audit/cis-etcd.rhai");

/// What `etcdscript audit` was told.
#[derive(Clone, Debug, Default)]
pub struct AuditArgs {
    pub endpoints: Vec<String>,
    pub peer_endpoints: Vec<String>,
    pub cacert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_key: Option<PathBuf>,
    pub other_ca: Option<PathBuf>,
    pub other_ca_key: Option<PathBuf>,
    pub json: Option<PathBuf>,
    /// A battery of the user's own instead of the built-in one.
    pub battery: Option<PathBuf>,
    pub timeout: Duration,
    pub quiet: bool,
}

/// A file named on the command line, as the script will name it: its absolute path.
fn file(p: &Path) -> Result<Dynamic> {
    let abs = p
        .canonicalize()
        .map_err(Error::io(format!("failed to open {}", p.display())))?;
    if !abs.is_file() {
        return Err(Error::Environment(format!(
            "{} is not a regular file",
            p.display()
        )));
    }
    Ok(Dynamic::from(abs.display().to_string()))
}

fn opt_file(p: &Option<PathBuf>) -> Result<Dynamic> {
    p.as_deref().map_or(Ok(Dynamic::UNIT), file)
}

fn urls(list: &[String]) -> Dynamic {
    let items: Array = list.iter().map(|u| Dynamic::from(u.clone())).collect();
    Dynamic::from(items)
}

/// The findings as JSON: one object each, then the counts.
pub fn to_json(findings: &[Finding]) -> String {
    let items: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "item": f.item,
                "title": f.title,
                "result": f.outcome.name(),
                "evidence": f.evidence,
            })
        })
        .collect();
    let count = |o: Outcome| findings.iter().filter(|f| f.outcome == o).count();
    serde_json::to_string_pretty(&serde_json::json!({
        "findings": items,
        "passed": count(Outcome::Pass),
        "failed": count(Outcome::Fail),
        "not_checkable": count(Outcome::NotCheckable),
        "info": count(Outcome::Info),
    }))
    .unwrap_or_default()
}

/// Runs the battery; returns the exit code (0: no finding failed).
pub fn run(args: &AuditArgs) -> Result<i32> {
    let deadline = Instant::now() + args.timeout;
    // A URL that cannot be one is the command line's mistake (exit 2), not the battery's.
    for url in args.endpoints.iter().chain(&args.peer_endpoints) {
        let ok = url
            .strip_prefix("https://")
            .and_then(|rest| rest.trim_end_matches('/').rsplit_once(':'))
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            crate::transcript::err(format!(
                "error: audit: `{url}` is not an endpoint: give https://host:port"
            ));
            return Ok(exit_code::USAGE);
        }
    }
    let mut audit = Map::new();
    audit.insert("endpoints".into(), urls(&args.endpoints));
    audit.insert("peer_endpoints".into(), urls(&args.peer_endpoints));
    audit.insert("cacert".into(), file(&args.cacert)?);
    audit.insert("cert".into(), file(&args.cert)?);
    audit.insert("key".into(), file(&args.key)?);
    audit.insert("ca_key".into(), opt_file(&args.ca_key)?);
    audit.insert("other_ca".into(), opt_file(&args.other_ca)?);
    audit.insert("other_ca_key".into(), opt_file(&args.other_ca_key)?);
    let src = match &args.battery {
        Some(path) => Source::read(path)?,
        None => Source {
            name: "scripts/audit/cis-etcd.rhai (built in)".into(),
            text: BATTERY.to_owned(),
        },
    };
    // The script reads the files named on the command line by their absolute paths (loading
    // copies them into the run's work dir, which goes with the run): the PKI root is `/`.
    let opts = RunOptions {
        deadline: Some(deadline),
        timeout: Some(args.timeout),
        quiet: args.quiet,
        pki: Some(PathBuf::from("/")),
        ..Default::default()
    };
    let (result, findings) =
        runner::run_with_findings(&src, &opts, args.timeout, Some(("AUDIT", audit)));
    if let Some(path) = &args.json {
        fs::write(path, to_json(&findings) + "\n")
            .map_err(Error::io(format!("failed to write {}", path.display())))?;
    }
    match result {
        Ok(()) => Ok(exit_code::SUCCESS),
        Err(e) => Err(e),
    }
}
