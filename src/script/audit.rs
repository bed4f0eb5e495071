//! Findings: `finding(item, title, check)` runs a check and reports it (pass, fail, not
//! checkable) instead of ending the run, as an audit must; `not_checkable(reason)` says why a
//! check cannot be made here. A run with a failed finding fails at its end. `observe(item,
//! title, probe)` reports what a probe saw (info), where there is nothing to pass or fail; a
//! caught error's `class` lets a probe tell refusals apart.

use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult};

use super::catalog::{prop, req, Primitive, Ty};
use super::registrar::{Call, Registrar};
use super::{find_fault, script_err};
use crate::error::Error;
use crate::fault::Fault;
use crate::session::{Finding, Outcome};

const FINDING: Primitive = Primitive {
    name: "finding",
    params: &[req("item", Ty::Str), req("title", Ty::Str), req("check", Ty::Closure)],
    returns: Ty::Bool,
    doc: "Runs `check` (a closure of checks: `expect_error`, `assert`...) as one finding of an\n\
          audit, and reports it instead of ending the run: \"pass\", \"fail\" with the failed\n\
          check's words as evidence (an operation that had to work and was refused fails it\n\
          too), or \"not checkable\" (see `not_checkable`). Returns whether it passed. The run\n\
          goes on, and fails at its end if any finding failed. Script mistakes and broken\n\
          environments still end the run.",
    example: "finding(\"CIS 2.2\", \"a client without a certificate is refused\",\n\
              \x20       || expect_error(|| kv_get(prod, \"k\", #{ ca: ca }), [\"no client certificate\", \"refused at handshake\"]));",
};

const NOT_CHECKABLE: Primitive = Primitive {
    name: "not_checkable",
    params: &[req("reason", Ty::Str)],
    returns: Ty::Unit,
    doc: "Inside a `finding`, says that it cannot be checked here, and why (\"no CA key given\");\n\
          the finding is reported as \"not checkable\". Outside one, it is a script error.",
    example: "if ca_key == () { not_checkable(\"no CA key given: cannot mint an expired client certificate\"); }",
};

const OBSERVE: Primitive = Primitive {
    name: "observe",
    params: &[req("item", Ty::Str), req("title", Ty::Str), req("probe", Ty::Closure)],
    returns: Ty::Any,
    doc: "Runs `probe`, a closure that looks at the cluster and returns a string saying what it\n\
          saw, and reports that as an observation of an audit: \"info\", neither pass nor fail,\n\
          for what has no right answer here (whether RBAC is on). `not_checkable` inside it\n\
          reports \"not checkable\". Returns the string, or `()` if not checkable. A probe that\n\
          returns no string, or makes no operation, is a script error; a check that fails\n\
          inside it, or an operation refused there and not caught, ends the run as anywhere\n\
          else (a probe observes; a `finding` checks).",
    example: "observe(\"RBAC\", \"role-based access control\", || {\n\
              \x20   let seen = \"off: a certificate naming no user reads keys\";\n\
              \x20   try { kv_get(m1, \"k\", nobody); }\n\
              \x20   catch (e) { if e.class != \"permission denied\" { not_checkable(`${e}`); } seen = \"on\"; }\n\
              \x20   seen\n\
              });",
};

/// `observe(item, title, probe)`.
fn observe(c: &Call) -> Result<Dynamic, Box<EvalAltResult>> {
    let (item, title, probe) = (c.string(0)?, c.string(1)?, c.closure(2)?);
    let s = c.shared;
    let before = super::last_op(s);
    let (outcome, evidence) = match probe.call_within_context::<Dynamic>(&c.ctx, ()) {
        Ok(_) if super::last_op(s) == before => {
            return Err(script_err(format!(
                "observe(\"{item}\"): its probe made no operation, so it saw nothing of the cluster"
            )))
        }
        Ok(v) if v.is_string() => (Outcome::Info, v.to_string()),
        Ok(v) => {
            return Err(script_err(format!(
                "observe(\"{item}\"): its probe must return a string saying what it saw, got {}",
                super::convert::type_label(&v)
            )))
        }
        Err(e) => settle(c, e, false)?,
    };
    let seen = match outcome {
        Outcome::Info => Dynamic::from(evidence.clone()),
        _ => Dynamic::UNIT,
    };
    record(c, "observe", item, title, outcome, evidence)?;
    Ok(seen)
}

/// What an error ending a finding's check (`judged`) or an observation's probe comes to: not
/// checkable, or for a check, failed; anything else still ends the run.
fn settle(
    c: &Call,
    e: Box<EvalAltResult>,
    judged: bool,
) -> Result<(Outcome, String), Box<EvalAltResult>> {
    let Some(fault) = find_fault(&e) else {
        return Err(e);
    };
    match fault.as_ref() {
        Fault::Fatal(Error::CheckFailed(why)) if judged => {
            c.shared.forgive(&fault);
            // The first line: the raw words after it may hold addresses.
            Ok((Outcome::Fail, why.lines().next().unwrap_or("").to_owned()))
        }
        Fault::Fatal(Error::NotCheckable(why)) => {
            c.shared.forgive(&fault);
            Ok((Outcome::NotCheckable, why.clone()))
        }
        Fault::Rejected { op, rejection, .. } if judged && !fault.is_fatal() => Ok((
            Outcome::Fail,
            format!("{op}: rejected: {}", rejection.summary()),
        )),
        _ => Err(e),
    }
}

/// Records a finding (or an observation) in the session.
fn record(
    c: &Call,
    what: &str,
    item: String,
    title: String,
    outcome: Outcome,
    evidence: String,
) -> Result<(), Box<EvalAltResult>> {
    let f = Finding {
        item,
        title,
        outcome,
        evidence,
    };
    c.shared
        .with_session_opt(|ss| ss.finding(f))
        .ok_or_else(|| script_err(format!("{what}(): this engine only checks scripts")))
}

/// `finding(item, title, check)`.
fn finding(c: &Call) -> Result<bool, Box<EvalAltResult>> {
    let (item, title, check) = (c.string(0)?, c.string(1)?, c.closure(2)?);
    let s = c.shared;
    let before = super::last_op(s);
    let (outcome, evidence) = match check.call_within_context::<Dynamic>(&c.ctx, ()) {
        Ok(v) if v.as_bool() == Ok(false) => (Outcome::Fail, "the check returned false".into()),
        Ok(_) if super::last_op(s) == before => {
            return Err(script_err(format!(
                "finding(\"{item}\"): its check made no operation and no check, so it would pass \
                 whatever the cluster does"
            )))
        }
        Ok(_) => {
            let last = s.with_session_opt(|ss| ss.last_line()).unwrap_or_default();
            (Outcome::Pass, last)
        }
        Err(e) => settle(c, e, true)?,
    };
    let passed = outcome == Outcome::Pass;
    record(c, "finding", item, title, outcome, evidence)?;
    Ok(passed)
}

/// Registers `finding`, `observe`, `not_checkable` and the properties of a caught error.
pub fn register(r: &mut Registrar) {
    r.primitive(FINDING, finding);
    r.primitive(OBSERVE, observe);
    r.property(
        prop(
            Ty::Error,
            "class",
            Ty::Any,
            "a refusal's class (`\"permission denied\"`, `\"refused at handshake\"`...), or `()` \
             for an error that is no refusal",
        ),
        |_, f: &Rc<Fault>| {
            Ok(match f.as_ref() {
                Fault::Rejected { rejection, .. } => Dynamic::from(rejection.class.to_string()),
                Fault::Fatal(_) => Dynamic::UNIT,
            })
        },
    );
    r.primitive(NOT_CHECKABLE, |c| -> Result<(), Box<EvalAltResult>> {
        let why = c.string(0)?;
        let fault = Rc::new(Fault::Fatal(Error::NotCheckable(why)));
        let pos = c.ctx.call_position();
        c.shared.record(&fault, pos);
        Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(fault),
            pos,
        )))
    });
}
