//! The single engine factory: the binary, `check`, `api` and the tests all get their engine here,
//! and with it the catalog of what it registered, so the reference `etcdscript api` prints, the
//! static checks and README's table cannot drift from what scripts can call.

use std::time::Instant;

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Dynamic, Engine};

use super::catalog::Catalog;
use super::registrar::Registrar;
use super::{
    admin, audit, certs, cluster, expect, faults, http, keyspace, kv, load, pki, rbac, remote,
    Shared,
};

/// Most operations a script may perform (a Rhai operation is roughly one expression step).
pub const MAX_OPERATIONS: u64 = 50_000_000;
/// Deepest call nesting, so that runaway recursion is an error and never a stack overflow.
pub const MAX_CALL_LEVELS: usize = 64;
/// Largest string a script may build, in bytes.
pub const MAX_STRING_SIZE: usize = 1 << 20;
/// Most elements in one array (nested arrays and maps count their elements too). Rhai measures
/// the whole array again after every change, so building an array up to this size costs time
/// quadratic in it: 10,000 keeps that to a fraction of a second even in a debug build.
pub const MAX_ARRAY_SIZE: usize = 10_000;
/// Most entries in one map (nested maps count theirs too); measured like arrays.
pub const MAX_MAP_SIZE: usize = 10_000;

/// Why `on_progress` stopped a script: the value inside Rhai's `ErrorTerminated`.
pub const STOPPED_FOR_TIME: &str = "timeout";
/// See [`STOPPED_FOR_TIME`].
pub const STOPPED_FOR_MEMORY: &str = "memory";
/// See [`STOPPED_FOR_TIME`]: the script went on after a fatal failure it caught.
pub const STOPPED_FOR_FAILURE: &str = "failed";

/// Builds the engine and the catalog of what it registered. With a `deadline`, the script is
/// stopped when it passes it.
pub fn build(shared: &Shared, deadline: Option<Instant>) -> (Engine, Catalog) {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        // Scripts load no code: no `import`, no `eval`.
        .set_module_resolver(DummyModuleResolver::new())
        .disable_symbol("eval");
    // A script that caught a fatal failure is stopped at its next step; one past its memory
    // limit or the run's deadline too.
    let s = shared.clone();
    engine.on_progress(move |_| {
        if s.failed() {
            Some(Dynamic::from(STOPPED_FOR_FAILURE))
        } else if crate::memory::over_limit() {
            Some(Dynamic::from(STOPPED_FOR_MEMORY))
        } else {
            deadline
                .is_some_and(|d| Instant::now() >= d)
                .then(|| Dynamic::from(STOPPED_FOR_TIME))
        }
    });
    let s = shared.clone();
    engine.on_print(move |text| {
        s.with_session_opt(|session| session.transcript.line(text));
    });
    engine.on_debug(|text, source, pos| {
        tracing::info!(source = source.unwrap_or(""), %pos, "debug: {text}");
    });
    super::register_error_type(&mut engine);
    let mut r = Registrar::new(&mut engine, shared);
    pki::register(&mut r);
    certs::register(&mut r);
    cluster::register(&mut r);
    admin::register(&mut r);
    rbac::register(&mut r);
    kv::register(&mut r);
    keyspace::register(&mut r);
    http::register(&mut r);
    remote::register(&mut r);
    audit::register(&mut r);
    expect::register(&mut r);
    faults::register(&mut r);
    load::register(&mut r);
    let catalog = r.finish();
    if crate::hooks::TestHooks::from_env().panic {
        // Lets the lifecycle tests make etcdscript itself fail; never documented, never listed.
        engine.register_fn("panic_for_tests", || -> () {
            panic!("panic_for_tests() was called")
        });
    }
    (engine, catalog)
}

/// The catalog of every primitive and property, from an engine built for the purpose.
pub fn catalog() -> Catalog {
    build(&Shared::default(), None).1
}

/// The error classes, as the reference lists them.
pub fn classes() -> Vec<(&'static str, &'static str)> {
    crate::etcd::reject::Class::ALL
        .iter()
        .map(|(c, meaning)| (c.name(), *meaning))
        .collect()
}
