//! Read and compile a script, run it, and always tear the session down.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, ParseError, Position, AST};

use crate::error::{Error, Location, Result};
use crate::fault::Fault;
use crate::limits;
use crate::quote;
use crate::script::catalog::Catalog;
use crate::script::{engine, find_fault, Shared};
use crate::session::{RunOptions, Session};
use crate::suite::record;

/// A script's text and the name it is shown under.
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    /// Reads a script file: a regular file of at most [`limits::MAX_SCRIPT_BYTES`]. A FIFO, a
    /// device or a directory is refused before anything is read from it, so that `/dev/zero`
    /// cannot fill memory and a FIFO nobody writes cannot hang the run.
    pub fn read(path: &Path) -> Result<Source> {
        let fail = |source| Error::ReadScript {
            path: path.to_owned(),
            source,
        };
        let refuse = |why: String| fail(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        if !meta.is_file() {
            return Err(refuse("it is not a regular file".into()));
        }
        let max = limits::MAX_SCRIPT_BYTES;
        if meta.len() > max {
            return Err(refuse(format!(
                "it is {} bytes, more than a script may be ({max} bytes)",
                meta.len()
            )));
        }
        let mut bytes = Vec::new();
        // The file may grow between the check and the read: read one byte past the limit at most.
        file.take(max + 1).read_to_end(&mut bytes).map_err(fail)?;
        if bytes.len() as u64 > max {
            return Err(refuse(format!("it grew past {max} bytes while being read")));
        }
        let text = String::from_utf8(bytes).map_err(|_| refuse("it is not UTF-8 text".into()))?;
        Ok(Source {
            name: path.display().to_string(),
            text,
        })
    }

    /// `inner`, at `pos` in this script (the line is quoted in part if long; see
    /// [`crate::quote`]).
    pub fn locate(&self, pos: Position, inner: Error) -> Error {
        let col = pos.position().unwrap_or(1);
        let (text, caret) = match pos.line() {
            Some(line) => {
                let text = self.text.lines().nth(line - 1).unwrap_or("");
                let (text, caret) = quote::around(text, col, limits::MAX_QUOTE_CHARS);
                (text.to_owned(), caret)
            }
            None => (String::new(), 1),
        };
        // A rejection's raw words and the like come after the first line: the note.
        let (inner, note) = split_note(inner);
        Error::Located {
            at: Location {
                file: self.name.clone(),
                line: pos.line(),
                col,
                text,
                caret,
            },
            inner: Box::new(inner),
            note,
        }
    }
}

/// Separates `\n  = detail: ...` from a message: the first part is what went wrong, the rest a
/// note for stderr.
fn split_note(e: Error) -> (Error, Option<String>) {
    const MARK: &str = "\n  = detail: ";
    let cut = |m: String| match m.split_once(MARK) {
        Some((head, note)) => (head.to_owned(), Some(note.to_owned())),
        None => (m, None),
    };
    match e {
        Error::CheckFailed(m) => {
            let (m, n) = cut(m);
            (Error::CheckFailed(m), n)
        }
        Error::Environment(m) => {
            let (m, n) = cut(m);
            (Error::Environment(m), n)
        }
        other => (other, None),
    }
}

/// Compiles a script and checks it against the catalog of primitives; the first problem, which
/// names file:line:col.
pub fn compile(engine: &Engine, catalog: &Catalog, src: &Source) -> Result<AST> {
    problems(engine, catalog, src).map_err(|mut all| all.remove(0))
}

/// Compiles a script and checks it against the catalog: the AST, or every problem found (a
/// syntax error alone, since nothing can be checked past it).
pub fn problems(engine: &Engine, catalog: &Catalog, src: &Source) -> Result<AST, Vec<Error>> {
    let mut ast = engine
        .compile(&src.text)
        .map_err(|e: ParseError| vec![src.locate(e.1, Error::Script(e.0.to_string()))])?;
    ast.set_source(src.name.as_str());
    let mut found: Vec<(Position, Error)> = Vec::new();
    for call in crate::script::check::unknown_calls(engine, catalog, &ast) {
        let n = call.arity;
        let sig = format!(
            "{} with {n} argument{}",
            call.name,
            if n == 1 { "" } else { "s" }
        );
        let mut msg = not_found(engine, catalog, &sig);
        if let Some(near) = call.near {
            msg.push_str(&format!(" (did you mean `{near}`?)"));
        }
        found.push((call.pos, Error::Script(msg)));
    }
    for (msg, pos) in crate::script::check::bad_expectations(&ast)
        .into_iter()
        .chain(crate::script::check::bad_options(catalog, &ast))
    {
        found.push((pos, Error::Script(msg)));
    }
    if found.is_empty() {
        return Ok(ast);
    }
    // In the order of the script.
    found.sort_by_key(|(pos, _)| (pos.line(), pos.position()));
    Err(found
        .into_iter()
        .map(|(pos, e)| src.locate(pos, e))
        .collect())
}

/// Compiles scripts and checks their calls against the primitives, without starting anything.
pub fn check(src: &Source) -> Result<(), Vec<Error>> {
    let (engine, catalog) = engine::build(&Shared::default(), None);
    problems(&engine, &catalog, src).map(|_| ())
}

/// Runs a script. The transcript goes to stdout; the returned error says why a run failed.
/// The run ends by `opts.deadline` (set before the script was read), else `timeout` from now.
pub fn run(src: &Source, opts: &RunOptions, timeout: Duration) -> Result<()> {
    run_with_findings(src, opts, timeout, None).0
}

/// [`run`] with `constants` in the script's scope (`etcdscript audit` gives `AUDIT`), also
/// returning the findings the script reported (`finding`).
pub fn run_with_findings(
    src: &Source,
    opts: &RunOptions,
    timeout: Duration,
    constants: Option<(&str, rhai::Map)>,
) -> (Result<()>, Vec<crate::session::Finding>) {
    let mut findings = Vec::new();
    let result = run_inner(src, opts, timeout, constants, &mut findings, &mut None);
    (result, findings)
}

/// [`run`], recording the run's trace (for an export), which comes back with the result.
pub fn run_traced(
    src: &Source,
    opts: &RunOptions,
    timeout: Duration,
) -> (Result<()>, Option<crate::trace::Trace>) {
    let mut trace = None;
    let opts = RunOptions {
        trace: true,
        ..opts.clone()
    };
    let result = run_inner(src, &opts, timeout, None, &mut Vec::new(), &mut trace);
    (result, trace)
}

fn run_inner(
    src: &Source,
    opts: &RunOptions,
    timeout: Duration,
    constants: Option<(&str, rhai::Map)>,
    findings: &mut Vec<crate::session::Finding>,
    trace: &mut Option<crate::trace::Trace>,
) -> Result<()> {
    let shared = Shared::default();
    let deadline = opts.deadline.unwrap_or_else(|| Instant::now() + timeout);
    let (engine, catalog) = engine::build(&shared, Some(deadline));
    let ast = compile(&engine, &catalog, src)?;
    let opts = RunOptions {
        deadline: Some(deadline),
        timeout: Some(timeout),
        ..opts.clone()
    };
    crate::lifecycle::register_script(&src.name);
    shared.install(Session::new(&opts)?);
    let mut scope = rhai::Scope::new();
    if let Some((name, value)) = constants {
        scope.push_constant(name, value);
    }
    let result = engine.run_ast_with_scope(&mut scope, &ast);
    // A failed check or a fatal error ends the run even if the script caught it.
    let result = match shared.take_failure() {
        Some((fault, pos)) => Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(fault),
            pos,
        ))),
        None => result,
    };
    // Tear down before judging, so that the members are gone whatever the outcome.
    let mut session = shared.take_session();
    let checks = session.as_ref().map_or(0, |s| s.transcript.checks());
    if let Some(s) = &mut session {
        findings.extend(s.findings().iter().cloned());
        *trace = s.transcript.take_trace();
    }
    drop(session);
    let failed: Vec<&str> = findings
        .iter()
        .filter(|f| f.outcome == crate::session::Outcome::Fail)
        .map(|f| f.item.as_str())
        .collect();
    // An export's verdict goes to stderr: its stdout is the export.
    let mut transcript = if opts.trace {
        crate::transcript::Transcript::on_stderr()
    } else {
        crate::transcript::Transcript::default()
    };
    match result {
        Ok(()) if !failed.is_empty() => {
            let err = Error::CheckFailed(format!(
                "{} of {} findings failed: {}",
                failed.len(),
                findings.len(),
                failed.join(", ")
            ));
            let headline = err.headline();
            transcript.line(format!("FAILED: {headline}"));
            record::verdict(err.exit_code(), Some(&headline));
            Err(err)
        }
        Ok(()) => {
            transcript.line(format!(
                "ok: {checks} check{} held",
                if checks == 1 { "" } else { "s" }
            ));
            record::verdict(crate::error::exit_code::SUCCESS, None);
            Ok(())
        }
        Err(e) => {
            record_unexpected(&e);
            let err = judge(src, &e, timeout, &engine, &catalog);
            let headline = err.headline();
            transcript.line(format!("FAILED: {headline}"));
            record::verdict(err.exit_code(), Some(&headline));
            Err(err)
        }
    }
}

/// Records an operation that had to work and was rejected as a failed check.
fn record_unexpected(e: &EvalAltResult) {
    if let Some(fault) = find_fault(e) {
        if let Fault::Rejected { op, rejection, .. } = fault.as_ref() {
            let pos = innermost(e).1;
            record::Check::at("operation", pos.line(), pos.position())
                .seen(rejection)
                .record(op, false);
        }
    }
}

/// The innermost position of an error: where in the script it happened, even inside a closure.
fn innermost(e: &EvalAltResult) -> (&EvalAltResult, Position) {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, pos)
        | EvalAltResult::ErrorInModule(_, inner, pos) => {
            let (e2, p2) = innermost(inner);
            (e2, if p2.is_none() { *pos } else { p2 })
        }
        other => (other, other.position()),
    }
}

/// Turns a script's failure into the run's error, located in the script.
fn judge(
    src: &Source,
    e: &EvalAltResult,
    timeout: Duration,
    engine: &Engine,
    catalog: &Catalog,
) -> Error {
    let (inner, pos) = innermost(e);
    if let Some(fault) = find_fault(e) {
        return match fault.as_ref() {
            Fault::Rejected { rejection, op, .. }
                if rejection.class == crate::etcd::reject::Class::StartFailed =>
            {
                src.locate(
                    pos,
                    Error::Environment(format!(
                        "{op}: failed: {}\n  = detail: {}",
                        rejection.summary(),
                        rejection.detail
                    )),
                )
            }
            Fault::Rejected { op, rejection, .. } => src.locate(
                pos,
                Error::CheckFailed(format!(
                    "{op}: rejected: {}\n  = detail: {}",
                    rejection.summary(),
                    rejection.detail
                )),
            ),
            Fault::Fatal(err) => src.locate(pos, err.duplicate()),
        };
    }
    let located = |e: Error| src.locate(pos, e);
    match inner {
        EvalAltResult::ErrorTerminated(why, _)
            if why.clone().into_string().ok().as_deref() == Some(engine::STOPPED_FOR_MEMORY) =>
        {
            located(Error::Timeout(format!(
                "the script went past its memory limit ({} MiB)",
                limits::MAX_MEMORY >> 20
            )))
        }
        EvalAltResult::ErrorTerminated(..) => located(Error::Timeout(format!(
            "the run went past --timeout ({}s)",
            timeout.as_secs()
        ))),
        EvalAltResult::ErrorTooManyOperations(..) => located(Error::Timeout(format!(
            "the script went past {} operations: an endless loop?",
            engine::MAX_OPERATIONS
        ))),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            located(Error::Script(not_found(engine, catalog, sig)))
        }
        // `throw value`: the value in the script's words, never a Rust type name.
        EvalAltResult::ErrorRuntime(value, _) => {
            let shown = match value.clone().into_string() {
                Ok(text) => text,
                Err(_) => crate::script::convert::show_value(value),
            };
            located(Error::Script(format!("Runtime error: {shown}")))
        }
        other => located(Error::Script(other.to_string())),
    }
}

/// "function not found", with the signatures that exist under that name.
fn not_found(engine: &Engine, catalog: &Catalog, sig: &str) -> String {
    let name = sig.split(['(', ' ']).next().unwrap_or(sig);
    let mut known: Vec<String> = match catalog.primitive(name) {
        Some(p) => vec![p.signature()],
        None => engine
            .gen_fn_signatures(false)
            .into_iter()
            .filter(|s| s.split('(').next() == Some(name))
            .collect(),
    };
    known.sort();
    known.dedup();
    if known.is_empty() {
        format!("no function {sig}; `etcdscript api` lists the primitives")
    } else {
        format!(
            "no function {sig}; {name} takes:\n    {}",
            known.join("\n    ")
        )
    }
}
