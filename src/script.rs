//! The Rhai face of etcdscript: one file per family of primitives, and the one engine factory
//! ([`engine::build`]) used by `run`, `check`, `api` and the tests.
//!
//! This layer converts arguments and maps errors; the logic lives in the domain modules.
//!
//! Two kinds of error travel through Rhai. A rejection (a refused connection or request) is a
//! catchable runtime error carrying a [`Fault::Rejected`]: `expect_error` is made for it. Every
//! other failure (a failed check, a script mistake, a broken environment) is raised as Rhai's
//! uncatchable `ErrorTerminated`, and is also recorded in [`Shared`], so that even a script that
//! manages to catch it (through a function pointer called inside `try`) is stopped at its next
//! step and judged by it.

pub mod admin;
pub mod audit;
pub mod catalog;
pub mod certs;
pub mod check;
pub mod cluster;
pub mod convert;
pub mod engine;
pub mod expect;
pub mod faults;
pub mod http;
pub mod identity;
pub mod keyspace;
pub mod kv;
pub mod load;
pub mod opts;
pub mod pki;
pub mod rbac;
pub mod registrar;
pub mod remote;

use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, Position};

use crate::error::Error;
use crate::fault::Fault;
use crate::session::Session;

/// What the primitives of one engine share: the session they act on (`None` in an engine that
/// only checks or lists scripts), and the first fatal failure of the run.
#[derive(Clone, Default)]
pub struct Shared(Rc<SharedState>);

#[derive(Default)]
pub struct SharedState {
    session: RefCell<Option<Session>>,
    failure: RefCell<Option<(Rc<Fault>, Position)>>,
}

impl Shared {
    /// Hands the session to the primitives.
    pub fn install(&self, session: Session) {
        *self.0.session.borrow_mut() = Some(session);
    }

    /// Takes the session back (to tear it down).
    pub fn take_session(&self) -> Option<Session> {
        self.0.session.borrow_mut().take()
    }

    /// Runs `f` on the session if there is one and it is not busy.
    pub fn with_session_opt<T>(&self, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        let mut guard = self.0.session.try_borrow_mut().ok()?;
        guard.as_mut().map(f)
    }

    /// Records a fatal failure; the first one is kept.
    pub fn record(&self, fault: &Rc<Fault>, pos: Position) {
        let mut failure = self.0.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some((fault.clone(), pos));
        }
    }

    /// Gives the position of the call that failed to a failure recorded without one.
    pub fn locate_failure(&self, pos: Position) {
        if let Ok(mut failure) = self.0.failure.try_borrow_mut() {
            if let Some((_, at)) = failure.as_mut() {
                if at.is_none() {
                    *at = pos;
                }
            }
        }
    }

    /// Forgets a recorded failure that `expect_error` expected (a start failure).
    pub fn forgive(&self, fault: &Rc<Fault>) {
        let mut failure = self.0.failure.borrow_mut();
        if failure.as_ref().is_some_and(|(f, _)| Rc::ptr_eq(f, fault)) {
            *failure = None;
        }
    }

    /// Whether a fatal failure has been recorded.
    pub fn failed(&self) -> bool {
        self.0.failure.try_borrow().is_ok_and(|f| f.is_some())
    }

    /// The first fatal failure, and where it happened, if any.
    pub fn take_failure(&self) -> Option<(Rc<Fault>, Position)> {
        self.0.failure.borrow_mut().take()
    }
}

/// A Rhai error carrying a [`Fault`]: a rejection is catchable (by `expect_error`, or by
/// `try`/`catch`); anything else is not.
pub fn fault_to_rhai(f: Fault) -> Box<EvalAltResult> {
    let fatal = f.is_fatal();
    let value = Dynamic::from(Rc::new(f));
    Box::new(if fatal {
        EvalAltResult::ErrorTerminated(value, Position::NONE)
    } else {
        EvalAltResult::ErrorRuntime(value, Position::NONE)
    })
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
        EvalAltResult::ErrorRuntime(d, _) | EvalAltResult::ErrorTerminated(d, _) => {
            d.clone().try_cast::<Rc<Fault>>()
        }
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => find_fault(inner),
        _ => None,
    }
}

/// Runs `f` on the session, or fails if this engine has none (`check`, `api`). Every call is
/// one numbered operation: a rejection carries the number of the operation refused. A fatal
/// failure is recorded, so that no script can go on past it.
pub fn with_session<T>(
    shared: &Shared,
    f: impl FnOnce(&mut Session) -> Result<T, Fault>,
) -> Result<T, Box<EvalAltResult>> {
    let result = {
        let mut guard = shared.0.session.borrow_mut();
        let Some(session) = guard.as_mut() else {
            return Err(script_err(
                "this engine only checks scripts; use `etcdscript run` to run one",
            ));
        };
        let n = session.next_op();
        f(session).map_err(|fault| fault.numbered(n))
    };
    result.map_err(|fault| raise(shared, fault, Position::NONE))
}

/// Turns a fault into a Rhai error, recording it first if it is fatal.
pub fn raise(shared: &Shared, fault: Fault, pos: Position) -> Box<EvalAltResult> {
    if fault.is_fatal() {
        let rc = Rc::new(fault);
        shared.record(&rc, pos);
        return Box::new(EvalAltResult::ErrorTerminated(Dynamic::from(rc), pos));
    }
    fault_to_rhai(fault)
}

/// The number of the last operation the session performed (0 in an engine without one).
pub fn last_op(shared: &Shared) -> u64 {
    shared
        .0
        .session
        .try_borrow()
        .ok()
        .and_then(|g| g.as_ref().map(Session::last_op))
        .unwrap_or(0)
}
