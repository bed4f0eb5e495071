//! Read and compile a script, run it, and always tear the session down.

use std::path::Path;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, ParseError, Position, AST};

use crate::error::{Error, Result};
use crate::fault::Fault;
use crate::script::{engine, find_fault, Shared};
use crate::session::{RunOptions, Session};
use crate::suite::record;

/// A script's text and the name it is shown under.
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    /// Reads a script file.
    pub fn read(path: &Path) -> Result<Source> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadScript {
            path: path.to_owned(),
            source,
        })?;
        Ok(Source {
            name: path.display().to_string(),
            text,
        })
    }

    /// `error: msg`, then `--> file:line:col`, the source line and a caret under the column.
    pub fn locate(&self, pos: Position, msg: &str) -> String {
        let (Some(line), col) = (pos.line(), pos.position().unwrap_or(1)) else {
            return format!("error: {msg}\n  --> {}", self.name);
        };
        let text = self.text.lines().nth(line - 1).unwrap_or("");
        let gutter = " ".repeat(line.to_string().len());
        format!(
            "error: {msg}\n{gutter}--> {}:{line}:{col}\n{gutter} |\n{line} | {text}\n{gutter} | {}^",
            self.name,
            " ".repeat(col.saturating_sub(1))
        )
    }
}

/// Compiles a script; a syntax error names file:line:col.
pub fn compile(engine: &Engine, src: &Source) -> Result<AST> {
    let mut ast = engine
        .compile(&src.text)
        .map_err(|e: ParseError| Error::Script(src.locate(e.1, &e.0.to_string())))?;
    ast.set_source(src.name.as_str());
    if let Some(call) = crate::script::check::unknown_call(engine, &ast) {
        let n = call.arity;
        let sig = format!(
            "{} with {n} argument{}",
            call.name,
            if n == 1 { "" } else { "s" }
        );
        let mut msg = not_found(&sig);
        if let Some(near) = call.near {
            msg.push_str(&format!(" (did you mean `{near}`?)"));
        }
        return Err(Error::Script(src.locate(call.pos, &msg)));
    }
    if let Some((msg, pos)) = crate::script::check::bad_expectation(&ast) {
        return Err(Error::Script(src.locate(pos, &msg)));
    }
    Ok(ast)
}

/// Compiles scripts and checks their calls against the primitives, without starting anything.
pub fn check(src: &Source) -> Result<()> {
    let engine = engine::build(&Shared::default(), None);
    compile(&engine, src)?;
    Ok(())
}

/// Runs a script. The transcript goes to stdout; the returned error says why a run failed.
pub fn run(src: &Source, opts: &RunOptions, timeout: Duration) -> Result<()> {
    let shared = Shared::default();
    let deadline = Instant::now() + timeout;
    let engine = engine::build(&shared, Some(deadline));
    let ast = compile(&engine, src)?;
    let opts = RunOptions {
        deadline: Some(deadline),
        ..opts.clone()
    };
    crate::lifecycle::register_script(&src.name);
    shared.install(Session::new(&opts)?);
    let result = engine.run_ast(&ast);
    // A failed check or a fatal error ends the run even if the script caught it.
    let result = match shared.take_failure() {
        Some((fault, pos)) => Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(fault),
            pos,
        ))),
        None => result,
    };
    // Tear down before judging, so that the members are gone whatever the outcome.
    let session = shared.take_session();
    let checks = session.as_ref().map_or(0, |s| s.transcript.checks());
    drop(session);
    let mut transcript = crate::transcript::Transcript::default();
    match result {
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
            let err = judge(src, &e, timeout);
            let headline = err.to_string();
            let first = headline
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            transcript.line(format!("FAILED: {first}"));
            record::verdict(err.exit_code(), Some(first));
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
fn judge(src: &Source, e: &EvalAltResult, timeout: Duration) -> Error {
    let (inner, pos) = innermost(e);
    if let Some(fault) = find_fault(e) {
        return match fault.as_ref() {
            Fault::Rejected { rejection, op, .. }
                if rejection.class == crate::etcd::reject::Class::StartFailed =>
            {
                Error::Environment(format!(
                    "{}\n  = detail: {}",
                    src.locate(pos, &format!("{op}: failed: {}", rejection.summary())),
                    rejection.detail
                ))
            }
            Fault::Rejected { op, rejection, .. } => Error::CheckFailed(format!(
                "{}\n  = detail: {}",
                src.locate(pos, &format!("{op}: rejected: {}", rejection.summary())),
                rejection.detail
            )),
            Fault::Fatal(err) => {
                let located = src.locate(pos, &err.to_string());
                match err {
                    Error::CheckFailed(_) => Error::CheckFailed(located),
                    Error::Timeout(_) => Error::Timeout(located),
                    Error::Script(_) | Error::ReadScript { .. } => Error::Script(located),
                    Error::Environment(_) | Error::Io { .. } => Error::Environment(located),
                }
            }
        };
    }
    match inner {
        EvalAltResult::ErrorTerminated(..) => Error::Timeout(src.locate(
            pos,
            &format!("the run went past --timeout ({}s)", timeout.as_secs()),
        )),
        EvalAltResult::ErrorTooManyOperations(..) => Error::Timeout(src.locate(
            pos,
            &format!(
                "the script went past {} operations: an endless loop?",
                engine::MAX_OPERATIONS
            ),
        )),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            Error::Script(src.locate(pos, &not_found(sig)))
        }
        other => Error::Script(src.locate(pos, &other.to_string())),
    }
}

/// "function not found", with the signatures that exist under that name.
fn not_found(sig: &str) -> String {
    let name = sig.split(['(', ' ']).next().unwrap_or(sig);
    let engine = engine::build(&Shared::default(), None);
    let mut known: Vec<String> = engine
        .gen_fn_signatures(false)
        .into_iter()
        .filter(|s| s.split('(').next() == Some(name))
        .collect();
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
