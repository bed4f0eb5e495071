//! The single engine factory: the binary, `check`, `api` and the tests all get their engine here,
//! so the reference `etcdscript api` prints cannot drift from what scripts can call.

use std::time::Instant;

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Dynamic, Engine, FuncRegistration, RhaiNativeFunc, Variant};

use super::{admin, cluster, expect, kv, pki, Shared};

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

/// The environment variable that turns on test-only behaviour: a comma-separated list of
/// `panic` (adds `panic_for_tests()`) and `steal-port` (a member's first start finds its client
/// port taken). Never documented for users.
pub const TEST_HOOKS: &str = "ETCDSCRIPT_TEST_HOOKS";

/// Whether the test hook `name` is on.
pub fn test_hook(name: &str) -> bool {
    std::env::var(TEST_HOOKS).is_ok_and(|v| v.split(',').any(|h| h.trim() == name))
}

/// Registers one documented primitive. `params` are "name: Type" strings, the last being the
/// return type if there is one; `doc` is Markdown with a ```` ```rhai ```` example.
pub fn def<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    params: &[&str],
    doc: &str,
    func: FUNC,
) where
    FUNC: RhaiNativeFunc<A, N, X, R, F> + 'static,
{
    let comment = doc
        .lines()
        .map(|l| format!("/// {l}").trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    FuncRegistration::new(name)
        .with_params_info(params)
        .with_comments([comment])
        .register_into_engine(engine, func);
}

/// Builds the engine. With a `deadline`, the script is stopped when it passes it.
pub fn build(shared: &Shared, deadline: Option<Instant>) -> Engine {
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
    pki::register(&mut engine, shared);
    cluster::register(&mut engine, shared);
    admin::register(&mut engine, shared);
    kv::register(&mut engine, shared);
    expect::register(&mut engine, shared);
    super::register_error_type(&mut engine);
    if test_hook("panic") {
        // Lets the lifecycle tests make etcdscript itself fail; never documented, never listed.
        engine.register_fn("panic_for_tests", || -> () {
            panic!("panic_for_tests() was called")
        });
    }
    engine
}

/// The reference of every primitive, generated from the engine's own metadata.
pub fn api_reference() -> String {
    let engine = build(&Shared::default(), None);
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let mut out = String::new();
    let mut getters = Vec::new();
    let empty = Vec::new();
    let mut functions: Vec<&serde_json::Value> = v
        .get("functions")
        .and_then(|f| f.as_array())
        .unwrap_or(&empty)
        .iter()
        .collect();
    functions.sort_by_key(|f| {
        f.get("signature")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_owned()
    });
    for f in functions {
        let signature = f.get("signature").and_then(|s| s.as_str()).unwrap_or("");
        let name = f.get("name").and_then(|s| s.as_str()).unwrap_or("");
        if let Some(prop) = name.strip_prefix("get$") {
            let this = signature
                .split(['(', ')'])
                .nth(1)
                .unwrap_or("")
                .split(": ")
                .last()
                .unwrap_or("");
            let ret = signature
                .rsplit("-> ")
                .next()
                .filter(|_| signature.contains("->"))
                .unwrap_or("?");
            getters.push(format!(
                "{}.{prop} -> {ret}",
                this.trim_start_matches('&').trim_start_matches("mut ")
            ));
            continue;
        }
        if name == "to_string" {
            continue;
        }
        let docs: Vec<&str> = f
            .get("docComments")
            .and_then(|d| d.as_array())
            .map(|a| a.iter().filter_map(|c| c.as_str()).collect())
            .unwrap_or_default();
        if docs.is_empty() {
            continue;
        }
        out.push_str(&format!("## {signature}\n\n"));
        for block in docs {
            for line in block.lines() {
                let line = line.strip_prefix("///").unwrap_or(line);
                out.push_str(line.strip_prefix(' ').unwrap_or(line));
                out.push('\n');
            }
        }
        out.push('\n');
    }
    getters.sort();
    getters.dedup();
    out.push_str("## Properties\n\n");
    for g in getters {
        out.push_str(&format!("- `{g}`\n"));
    }
    out.push_str("\n## Error classes\n\n");
    for (class, meaning) in crate::etcd::reject::Class::ALL {
        out.push_str(&format!("- `{}`: {meaning}\n", class.name()));
    }
    out
}
