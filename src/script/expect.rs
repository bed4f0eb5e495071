//! Checks: `expect_error`, `assert_eq`, `assert`. A failed check ends the run: it is raised as
//! an error no `try`/`catch` can swallow, and recorded so that a script cannot go on past it.

use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};

use super::catalog::{req, Primitive, Ty};
use super::opts::{closest, Opts};
use super::registrar::{Call, Registrar};
use super::{find_fault, last_op, raise, script_err, Shared};
use crate::error::Error;
use crate::etcd::reject::{Class, Rejection};
use crate::fault::Fault;
use crate::suite::record::Check;

/// What an `expect_error` accepts: one of some classes, and words of the detail if asked.
#[derive(Debug, PartialEq)]
pub struct Expectation {
    pub classes: Vec<Class>,
    pub detail: Option<String>,
}

impl Expectation {
    /// Reads `expected`: a class name, an array of class names, or a map `#{ class, detail }`.
    pub fn parse(expected: &Dynamic) -> Result<Expectation, String> {
        if let Some(map) = expected.clone().try_cast::<Map>() {
            let o = Opts::new(&map, "expect_error()", &["class", "detail"])
                .map_err(|e| super::find_fault(&e).map_or_else(String::new, |f| f.to_string()))?;
            let classes = match map.get("class") {
                None => Vec::new(),
                Some(c) => Expectation::parse(c)?.classes,
            };
            let detail = o
                .string("detail")
                .map_err(|e| find_fault(&e).map_or_else(String::new, |f| f.to_string()))?;
            if detail.as_deref() == Some("") {
                return Err(
                    "expect_error(): `detail` is empty; give words the detail must contain".into(),
                );
            }
            if classes.is_empty() && detail.is_none() {
                return Err("expect_error(): the map needs `class`, `detail`, or both".into());
            }
            return Ok(Expectation { classes, detail });
        }
        let names: Vec<Dynamic> = match expected.clone().try_cast::<Array>() {
            Some(a) if a.is_empty() => {
                return Err("expect_error(): the array of classes is empty".into())
            }
            Some(a) => a,
            None => vec![expected.clone()],
        };
        let classes = names
            .iter()
            .map(|n| match n.clone().into_immutable_string() {
                Ok(name) => class_named(&name),
                Err(t) => Err(format!(
                    "expect_error(): a class is a string such as \"expired\", got {t}"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Expectation {
            classes,
            detail: None,
        })
    }

    /// Whether a rejection is what was expected.
    pub fn matches(&self, r: &Rejection) -> bool {
        // A start failure is no rejection: only its own name expects it.
        if r.class == Class::StartFailed && !self.classes.contains(&r.class) {
            return false;
        }
        (self.classes.is_empty() || self.classes.contains(&r.class))
            && self
                .detail
                .as_ref()
                .is_none_or(|d| r.detail.contains(d.as_str()))
    }

    /// How the expectation reads in a message: the classes are alternatives, the detail must
    /// hold as well.
    pub fn describe(&self) -> String {
        let classes: Vec<String> = self
            .classes
            .iter()
            .map(|c| format!("\"{}\"", c.name()))
            .collect();
        match (&self.detail, classes.is_empty()) {
            (None, _) => classes.join(" or "),
            (Some(d), true) => format!("detail containing \"{d}\""),
            (Some(d), false) => format!("{} with detail containing \"{d}\"", classes.join(" or ")),
        }
    }
}

/// The class with this name, or an error naming the near one and all of them.
pub fn class_named(name: &str) -> Result<Class, String> {
    if let Some(c) = Class::parse(name) {
        return Ok(c);
    }
    let names = Class::names();
    let near = closest(name, &names)
        .map(|n| format!(" (did you mean \"{n}\"?)"))
        .unwrap_or_default();
    Err(format!(
        "expect_error(): \"{name}\" is not an error class{near}; the classes are: {}",
        names.join(", ")
    ))
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

/// A failed check: raised where it happened, and recorded.
fn check_failed(shared: &Shared, ctx: &NativeCallContext, msg: String) -> Box<EvalAltResult> {
    raise(
        shared,
        Fault::Fatal(Error::CheckFailed(msg)),
        ctx.call_position(),
    )
}

const EXPECT_ERROR: Primitive = Primitive {
    name: "expect_error",
    params: &[req("operation", Ty::Closure), req("expected", Ty::Expected)],
    returns: Ty::Unit,
    doc: "Runs `operation` (a closure); passes only if the last operation it performs is rejected\n\
          with the expected class. `expected` is a class name (see \"Error classes\"), an array of\n\
          them (any one will do), or `#{ class, detail }` where `detail` is words the raw message\n\
          must contain. Fails the run if the operation succeeds or is rejected with another class.\n\
          Errors that are not rejections (a failed check, a script mistake, a member that would not\n\
          start) are never caught, and a rejection caught earlier and thrown again does not count.",
    example: "expect_error(|| kv_set(m1, \"foo\", \"bar\"), \"no client certificate\");\n\
              expect_error(|| kv_get(m1, \"k\", old), [\"expired\", \"not yet valid\"]);",
};

const ASSERT_EQ: Primitive = Primitive {
    name: "assert_eq",
    params: &[req("actual", Ty::Any), req("expected", Ty::Any)],
    returns: Ty::Unit,
    doc: "Checks that two values are equal (same type, same value).",
    example: "assert_eq(kv_get(m2, \"hello\", client), \"world\");",
};

const ASSERT: Primitive = Primitive {
    name: "assert",
    params: &[req("condition", Ty::Bool), req("what", Ty::Str)],
    returns: Ty::Unit,
    doc: "Checks that `condition` holds; `what` says what was checked.",
    example: "assert(kv_get(c, \"missing\") == (), \"the key is gone\");",
};

/// `expect_error(operation, expected)`.
fn expect_error(c: &Call) -> Result<(), Box<EvalAltResult>> {
    let (op, expected) = (c.closure(0)?, c.get(1).cloned().unwrap_or_default());
    let want = Expectation::parse(&expected).map_err(script_err)?;
    let shown = want.describe();
    let s = c.shared;
    let at = c.ctx.call_position();
    let mut rec = Check::at("expect_error", at.line(), at.position());
    rec.expected = want.classes.iter().map(|c| c.name().to_owned()).collect();
    let called = std::time::Instant::now();
    let before = last_op(s);
    let e = match op.call_within_context::<Dynamic>(&c.ctx, ()) {
        Ok(_) => {
            rec.record("the operation", false);
            return Err(check_failed(
                s,
                &c.ctx,
                format!(
                    "expect_error({shown}): the operation succeeded, but it had to be rejected"
                ),
            ));
        }
        Err(e) => e,
    };
    let Some(fault) = find_fault(&e) else {
        return Err(e);
    };
    let Fault::Rejected { op, rejection, seq } = fault.as_ref() else {
        return Err(e);
    };
    // Only the refusal of the closure's own last operation counts.
    let rec = rec.seen(rejection);
    if *seq <= before || *seq != last_op(s) {
        rec.record(op, false);
        return Err(check_failed(
            s,
            &c.ctx,
            format!(
            "expect_error({shown}): the closure threw a rejection of an earlier operation ({op}); \
             only a rejection of the last operation it performs counts"
        ),
        ));
    }
    // A start failure the check addressed is the check's outcome, no longer the run's.
    s.forgive(&fault);
    if !want.matches(rejection) {
        rec.record(op, false);
        return Err(check_failed(
            s,
            &c.ctx,
            format!(
                "expect_error({shown}): {op} {}, but with {}\n  = detail: {}",
                if rejection.class == Class::StartFailed {
                    "failed"
                } else {
                    "was rejected"
                },
                rejection.summary(),
                rejection.detail
            ),
        ));
    }
    rec.record(op, true);
    // How long after the member logged the refusal the check resolved.
    tracing::info!(class = %rejection.class, ms_since_logged = ?rejection.ms_since_logged(),
        ms_since_call = called.elapsed().as_millis() as u64, "negative check resolved");
    let classes = want.classes.iter().map(|c| c.name().to_owned()).collect();
    c.session(|ss| {
        ss.transcript
            .trace(crate::trace::Step::Expected { classes });
        ss.transcript.check(format!(
            "{op}: {}: {}, as expected",
            rejection.class.verb(),
            rejection.summary()
        ));
        Ok(())
    })
}

/// Registers the checks.
pub fn register(r: &mut Registrar) {
    r.primitive(EXPECT_ERROR, expect_error);
    r.primitive(ASSERT_EQ, |c| {
        let (actual, expected) = (
            c.get(0).cloned().unwrap_or_default(),
            c.get(1).cloned().unwrap_or_default(),
        );
        let at = c.ctx.call_position();
        let held = same(&actual, &expected);
        Check::at("assert_eq", at.line(), at.position())
            .record(format!("{} == {}", show(&actual), show(&expected)), held);
        if !held {
            return Err(check_failed(
                c.shared,
                &c.ctx,
                format!(
                    "assert_eq: got {}, expected {}",
                    show(&actual),
                    show(&expected)
                ),
            ));
        }
        c.session(|ss| {
            ss.transcript
                .check(format!("check: {} == {}", show(&actual), show(&expected)));
            Ok(())
        })
    });
    r.primitive(ASSERT, |c| {
        let (condition, what) = (c.bool(0)?, c.string(1)?);
        let at = c.ctx.call_position();
        Check::at("assert", at.line(), at.position()).record(&what, condition);
        if !condition {
            return Err(check_failed(
                c.shared,
                &c.ctx,
                format!("assert: {what}: does not hold"),
            ));
        }
        c.session(|ss| {
            ss.transcript.check(format!("check: {what}"));
            Ok(())
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_name_matches_that_class_alone() {
        let want = Expectation::parse(&Dynamic::from("expired")).unwrap();
        let r = |class| {
            Rejection::unlogged(
                class,
                crate::etcd::reject::Witness::Client,
                "x509: certificate has expired or is not yet valid".into(),
            )
        };
        assert!(want.matches(&r(Class::Expired)));
        assert!(!want.matches(&r(Class::NotYetValid)));
    }

    #[test]
    fn unknown_and_partial_names_are_errors() {
        for bad in ["e", "c", "tls", "", "expird"] {
            let err = Expectation::parse(&Dynamic::from(bad)).unwrap_err();
            assert!(err.contains("is not an error class"), "{bad}: {err}");
        }
        let err = Expectation::parse(&Dynamic::from("expird")).unwrap_err();
        assert!(err.contains("did you mean \"expired\""), "{err}");
    }

    #[test]
    fn arrays_and_details() {
        let arr: Array = vec!["expired".into(), "not yet valid".into()];
        let want = Expectation::parse(&Dynamic::from(arr)).unwrap();
        assert_eq!(want.classes, vec![Class::Expired, Class::NotYetValid]);
        let mut map = Map::new();
        map.insert("detail".into(), "is after".into());
        let want = Expectation::parse(&Dynamic::from(map)).unwrap();
        let r = Rejection::unlogged(
            Class::Expired,
            crate::etcd::reject::Witness::Client,
            "current time x is after y".into(),
        );
        assert!(want.matches(&r));
        let mut map = Map::new();
        map.insert("detail".into(), "is before".into());
        assert!(!Expectation::parse(&Dynamic::from(map)).unwrap().matches(&r));
        assert!(Expectation::parse(&Dynamic::from(Array::new())).is_err());
        assert!(Expectation::parse(&Dynamic::from(Map::new())).is_err());
    }
}
