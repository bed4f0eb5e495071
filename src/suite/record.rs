//! Per-check records: `etcdscript run --checks FILE` writes one JSON line per check as it
//! resolves, then one verdict line, so that `etcdscript test` can report every check of a script
//! without reading its transcript. The transcript (stdout) is not touched.
//!
//! A check line: `{"check":"expect_error","line":12,"col":1,"op":"put foo = bar via infra1",
//! "expected":["no client certificate"],"seen":"no client certificate","witness":"infra1's log",
//! "passed":true}`. The verdict line: `{"verdict":0,"message":null}`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::etcd::reject::{Rejection, Witness};

static SINK: Mutex<Option<File>> = Mutex::new(None);

/// Starts writing records to `path` (created or truncated).
pub fn open(path: &Path) -> Result<()> {
    let file = File::create(path).map_err(Error::io(format!(
        "failed to create the checks file {}",
        path.display()
    )))?;
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

fn write(value: Value) {
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(file) = sink.as_mut() {
        // A record that cannot be written must not fail the run; the runner then reports the
        // script without it.
        let _ = writeln!(file, "{value}");
    }
}

/// One check as it resolved.
#[derive(Debug, Default)]
pub struct Check {
    /// `expect_error`, `assert_eq`, `assert`, or `operation` (an operation that had to work).
    pub kind: &'static str,
    /// Where in the script: 1-based line and column (0 when unknown).
    pub line: usize,
    pub col: usize,
    /// The classes that would have passed (`expect_error`); empty for other checks.
    pub expected: Vec<String>,
    /// The class the operation met, if it was rejected.
    pub seen: Option<String>,
    /// Who saw the rejection.
    pub witness: Option<String>,
}

impl Check {
    /// A check of `kind` at `line:col` (Rhai positions: `None` reads as 0).
    pub fn at(kind: &'static str, line: Option<usize>, col: Option<usize>) -> Check {
        Check {
            kind,
            line: line.unwrap_or(0),
            col: col.unwrap_or(0),
            ..Check::default()
        }
    }

    /// The class and witness of the rejection the operation met.
    pub fn seen(mut self, r: &Rejection) -> Check {
        self.seen = Some(r.class.name().to_owned());
        self.witness = Some(witness(&r.witness));
        self
    }

    /// Writes the record, if records were asked for.
    pub fn record(self, op: impl Into<String>, passed: bool) {
        write(json!({
            "check": self.kind,
            "line": self.line,
            "col": self.col,
            "op": op.into(),
            "expected": self.expected,
            "seen": self.seen,
            "witness": self.witness,
            "passed": passed,
        }));
    }
}

/// Who saw a rejection, in the transcript's words.
pub fn witness(w: &Witness) -> String {
    match w {
        Witness::MemberLog(member) => format!("{member}'s log"),
        Witness::Client => "the client".into(),
        Witness::Answer => "the member's answer".into(),
        Witness::SomeMember => "the members' logs".into(),
    }
}

/// Writes the verdict line: the exit code the run ends with and, if it failed, the first line
/// of its error.
pub fn verdict(code: i32, message: Option<&str>) {
    write(json!({ "verdict": code, "message": message }));
}
