//! Checks: `expect_error`, `assert_eq`, `assert`, and `print` into the transcript.

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext};

use super::engine::def;
use super::{fault_to_rhai, find_fault, with_session, Shared};
use crate::error::Error;
use crate::fault::Fault;

fn check_failed(msg: String) -> Box<EvalAltResult> {
    fault_to_rhai(Fault::Fatal(Error::CheckFailed(msg)))
}

/// How a value reads in the transcript: strings quoted, `()` as "nothing".
fn show(d: &Dynamic) -> String {
    if d.is_string() {
        format!("{:?}", d.to_string())
    } else if d.is_unit() {
        "nothing".into()
    } else {
        d.to_string()
    }
}

fn same(a: &Dynamic, b: &Dynamic) -> bool {
    a.type_name() == b.type_name() && a.to_string() == b.to_string()
}

/// Registers the checks.
pub fn register(engine: &mut Engine, shared: &Shared) {
    let s = shared.clone();
    def(
        engine,
        "expect_error",
        &["operation: Fn", "expected: string"],
        "Runs `operation` (a closure); passes only if it is rejected with an error whose class\n\
         (or the member's or client's own words) contains `expected`. Fails the run if the\n\
         operation succeeds or is rejected for another reason. Errors that are not rejections\n\
         (a script mistake, a member that would not start) are never caught.\n\
         ```rhai\nexpect_error(|| kv_set(m1, \"foo\", \"bar\"), \"no client certificate\");\n```",
        move |ctx: NativeCallContext,
              op: FnPtr,
              expected: &str|
              -> Result<(), Box<EvalAltResult>> {
            let called = std::time::Instant::now();
            match op.call_within_context::<Dynamic>(&ctx, ()) {
                Ok(_) => Err(check_failed(format!(
                    "expect_error(\"{expected}\"): the operation succeeded, but it had to be rejected"
                ))),
                Err(e) => {
                    let Some(fault) = find_fault(&e) else { return Err(e) };
                    let Fault::Rejected { op, rejection } = fault.as_ref() else {
                        return Err(e);
                    };
                    let matched = rejection.class.name().contains(expected) || rejection.detail.contains(expected);
                    if !matched {
                        return Err(check_failed(format!(
                            "expect_error(\"{expected}\"): {op} was rejected, but with \"{}\" ({})",
                            rejection.class, rejection.detail
                        )));
                    }
                    // How long after the member logged the refusal the check resolved.
                    tracing::info!(class = %rejection.class, ms_since_logged = ?rejection.ms_since_logged(),
                        ms_since_call = called.elapsed().as_millis() as u64, "negative check resolved");
                    with_session(&s, |ss| {
                        ss.transcript.check(format!("{op}: rejected: {}, as expected", rejection.summary()));
                        Ok(())
                    })
                }
            }
        },
    );
    let s = shared.clone();
    def(
        engine,
        "assert_eq",
        &["actual: ?", "expected: ?"],
        "Checks that two values are equal (same type, same value).\n\
         ```rhai\nassert_eq(kv_get(m2, \"hello\", client), \"world\");\n```",
        move |actual: Dynamic, expected: Dynamic| -> Result<(), Box<EvalAltResult>> {
            if !same(&actual, &expected) {
                return Err(check_failed(format!(
                    "assert_eq: got {}, expected {}",
                    show(&actual),
                    show(&expected)
                )));
            }
            with_session(&s, |ss| {
                ss.transcript
                    .check(format!("check: {} == {}", show(&actual), show(&expected)));
                Ok(())
            })
        },
    );
    let s = shared.clone();
    def(
        engine,
        "assert",
        &["condition: bool", "what: string"],
        "Checks that `condition` holds; `what` says what was checked.\n\
         ```rhai\nassert(kv_get(c, \"missing\") == (), \"the key is gone\");\n```",
        move |condition: bool, what: &str| -> Result<(), Box<EvalAltResult>> {
            if !condition {
                return Err(check_failed(format!("assert: {what}: does not hold")));
            }
            with_session(&s, |ss| {
                ss.transcript.check(format!("check: {what}"));
                Ok(())
            })
        },
    );
}
