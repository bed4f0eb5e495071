//! The Rhai face of etcdscript: one file per family of primitives, and the one engine factory
//! ([`engine::build`]) used by `run`, `check`, `api` and the tests.
//!
//! This layer converts arguments and maps errors; the logic lives in the domain modules.

pub mod admin;
pub mod check;
pub mod cluster;
pub mod engine;
pub mod expect;
pub mod kv;
pub mod opts;
pub mod pki;

use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, Position};

use crate::error::Error;
use crate::fault::Fault;
use crate::session::Session;

/// The session the primitives act on. `None` in an engine that only checks or lists scripts.
pub type Shared = Rc<RefCell<Option<Session>>>;

/// A Rhai error carrying a [`Fault`], so that `expect_error` and the runner can read it back.
pub fn fault_to_rhai(f: Fault) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(Rc::new(f)),
        Position::NONE,
    ))
}

/// Makes a caught error (`try { .. } catch (e) { print(e) }`) a value a script can print: its
/// type is `Error` and it reads as its message, never as a Rust type name.
pub fn register_error_type(engine: &mut rhai::Engine) {
    engine
        .register_type_with_name::<Rc<Fault>>("Error")
        .register_fn("to_string", |f: &mut Rc<Fault>| f.to_string())
        .register_fn("to_debug", |f: &mut Rc<Fault>| format!("Error({f})"));
}

/// A Rhai error for a script mistake found by a primitive.
pub fn script_err(msg: impl Into<String>) -> Box<EvalAltResult> {
    fault_to_rhai(Fault::Fatal(Error::Script(msg.into())))
}

/// The fault inside a Rhai error, looking through the wrapping of function calls.
pub fn find_fault(e: &EvalAltResult) -> Option<Rc<Fault>> {
    match e {
        EvalAltResult::ErrorRuntime(d, _) => d.clone().try_cast::<Rc<Fault>>(),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => find_fault(inner),
        _ => None,
    }
}

/// Runs `f` on the session, or fails if this engine has none (`check`, `api`).
pub fn with_session<T>(
    shared: &Shared,
    f: impl FnOnce(&mut Session) -> Result<T, Fault>,
) -> Result<T, Box<EvalAltResult>> {
    let mut guard = shared.borrow_mut();
    let session = guard.as_mut().ok_or_else(|| {
        script_err("this engine only checks scripts; use `etcdscript run` to run one")
    })?;
    f(session).map_err(fault_to_rhai)
}
