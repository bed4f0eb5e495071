//! The one way primitives reach the engine: each registered once, from its catalog entry, for
//! every arity its optional trailing parameters allow, with its arguments converted in one place
//! ([`Call`]) and its entry recorded in the [`Catalog`].

use std::any::TypeId;
use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Variant};

use super::catalog::{Catalog, Primitive, Property};
use super::{convert, script_err, with_session, Shared};
use crate::fault::Fault;
use crate::pki::{Ca, Cert};
use crate::session::{ClusterId, IdentitySpec, MemberId, Session, Target};

type R<T> = Result<T, Box<EvalAltResult>>;

thread_local! {
    /// How many primitive calls are under way: a call made inside another's closure is nested.
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts a primitive call as ended when dropped.
struct DepthGuard;

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Registers primitives and properties into an engine, and keeps their catalog.
pub struct Registrar<'e> {
    engine: &'e mut Engine,
    shared: Shared,
    catalog: Catalog,
}

impl<'e> Registrar<'e> {
    pub fn new(engine: &'e mut Engine, shared: &Shared) -> Registrar<'e> {
        Registrar {
            engine,
            shared: shared.clone(),
            catalog: Catalog::default(),
        }
    }

    /// The engine, for what is no primitive (types, `to_string`).
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    /// The shared session.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// What was registered.
    pub fn finish(self) -> Catalog {
        self.catalog
    }

    /// Registers `p`, done by `f`.
    pub fn primitive<T: Variant + Clone>(
        &mut self,
        p: Primitive,
        f: impl Fn(&Call) -> R<T> + 'static,
    ) {
        let signatures = p
            .arities()
            .map(|n| vec![TypeId::of::<Dynamic>(); n])
            .collect();
        self.primitive_as(p, signatures, f);
    }

    /// Registers `p`, done by `f`, for these argument types: exact types, where a function of
    /// Rhai's own packages with the same name must never be the one called.
    pub fn primitive_as<T: Variant + Clone>(
        &mut self,
        p: Primitive,
        signatures: Vec<Vec<TypeId>>,
        f: impl Fn(&Call) -> R<T> + 'static,
    ) {
        let f = Rc::new(f);
        for types in signatures {
            let (f, shared) = (f.clone(), self.shared.clone());
            self.engine.register_raw_fn(
                p.name,
                types,
                move |ctx: NativeCallContext, args: &mut [&mut Dynamic]| {
                    let pos = ctx.call_position();
                    let depth = DEPTH.with(|d| d.replace(d.get() + 1));
                    shared.with_session_opt(|ss| {
                        ss.transcript.trace(crate::trace::Step::Call {
                            primitive: p.name,
                            line: pos.line().unwrap_or(0),
                            nested: depth > 0,
                        })
                    });
                    // Back out however the call ends.
                    let _depth = DepthGuard;
                    let call = Call {
                        ctx,
                        shared: &shared,
                        primitive: &p,
                        args: args.iter().map(|a| a.flatten_clone()).collect(),
                    };
                    f(&call).map_err(|mut e| {
                        // Every failure says where in the script it happened.
                        if e.position().is_none() {
                            e.set_position(pos);
                        }
                        shared.locate_failure(pos);
                        e
                    })
                },
            );
        }
        self.catalog.primitives.push(p);
    }

    /// Registers property `p` of values of type `T`, read by `f`.
    pub fn property<T: Variant + Clone, V: Variant + Clone>(
        &mut self,
        p: Property,
        f: impl Fn(&Shared, &T) -> R<V> + 'static,
    ) {
        let shared = self.shared.clone();
        self.engine.register_raw_fn(
            format!("get${}", p.name),
            [TypeId::of::<T>()],
            move |_ctx: NativeCallContext, args: &mut [&mut Dynamic]| {
                let this = args[0].clone_cast::<T>();
                f(&shared, &this)
            },
        );
        self.catalog.properties.push(p);
    }
}

/// One call of a primitive: its arguments, converted on demand with errors that name the
/// primitive and the parameter.
pub struct Call<'c> {
    pub ctx: NativeCallContext<'c>,
    pub shared: &'c Shared,
    primitive: &'c Primitive,
    args: Vec<Dynamic>,
}

impl Call<'_> {
    /// `kv_set()`, for messages.
    pub fn what(&self) -> String {
        format!("{}()", self.primitive.name)
    }

    /// Argument `i`, if the script gave it.
    pub fn get(&self, i: usize) -> Option<&Dynamic> {
        self.args.get(i)
    }

    fn arg(&self, i: usize) -> &Dynamic {
        &self.args[i]
    }

    fn wrong(&self, i: usize, want: &str) -> Box<EvalAltResult> {
        script_err(format!(
            "{}: `{}` must be {want}, got {}; {} takes: {}",
            self.what(),
            self.primitive.params[i].name,
            convert::type_label(self.arg(i)),
            self.primitive.name,
            self.primitive.signature()
        ))
    }

    fn cast<T: Variant + Clone>(&self, i: usize, want: &str) -> R<T> {
        self.arg(i)
            .clone()
            .try_cast::<T>()
            .ok_or_else(|| self.wrong(i, want))
    }

    /// An integer argument within `range`.
    pub fn int_in(&self, i: usize, range: std::ops::RangeInclusive<i64>) -> R<i64> {
        let (lo, hi) = (*range.start(), *range.end());
        match self.arg(i).as_int() {
            Ok(n) if range.contains(&n) => Ok(n),
            Ok(_) | Err(_) => Err(self.wrong(i, &format!("an integer from {lo} to {hi}"))),
        }
    }

    /// A load (from `load`).
    pub fn load(&self, i: usize) -> R<crate::session::LoadId> {
        self.cast(i, "a Load (from load())")
    }

    /// A watch (from `watch`).
    pub fn watch(&self, i: usize) -> R<crate::session::WatchId> {
        self.cast(i, "a Watch (from watch())")
    }

    /// A lease (from `lease_grant`).
    pub fn lease(&self, i: usize) -> R<crate::session::LeaseId> {
        self.cast(i, "a Lease (from lease_grant())")
    }

    /// An array of members.
    pub fn members(&self, i: usize) -> R<Vec<MemberId>> {
        self.array(i)?
            .into_iter()
            .map(|d| {
                d.try_cast::<MemberId>()
                    .ok_or_else(|| self.wrong(i, "an array of Members"))
            })
            .collect()
    }

    pub fn string(&self, i: usize) -> R<String> {
        self.arg(i)
            .clone()
            .into_string()
            .map_err(|_| self.wrong(i, "a string"))
    }

    pub fn bool(&self, i: usize) -> R<bool> {
        self.arg(i)
            .as_bool()
            .map_err(|_| self.wrong(i, "true or false"))
    }

    pub fn array(&self, i: usize) -> R<Array> {
        self.cast(i, "an array")
    }

    pub fn map(&self, i: usize) -> R<Map> {
        self.cast(i, "a map")
    }

    /// An options map, or an empty one where the script left it out.
    pub fn options(&self, i: usize) -> R<Map> {
        match self.get(i) {
            None => Ok(Map::new()),
            Some(_) => self.map(i),
        }
    }

    pub fn closure(&self, i: usize) -> R<FnPtr> {
        self.cast(i, "a closure (`|| ...`)")
    }

    pub fn ca(&self, i: usize) -> R<Rc<Ca>> {
        self.cast(i, "a Ca (from ca())")
    }

    pub fn cert(&self, i: usize) -> R<Rc<Cert>> {
        self.cast(i, "a Cert (from issue())")
    }

    pub fn cluster(&self, i: usize) -> R<ClusterId> {
        self.cast(i, "a Cluster (from cluster())")
    }

    pub fn member(&self, i: usize) -> R<MemberId> {
        self.cast(i, "a Member (from spawn_member() or c.member())")
    }

    pub fn target(&self, i: usize) -> R<Target> {
        convert::target(self.arg(i)).ok_or_else(|| self.wrong(i, "a Member or a Cluster"))
    }

    /// The identity in argument `i`; the default one (no client certificate, the cluster's CA)
    /// where the script left it out.
    pub fn identity(&self, i: usize) -> R<IdentitySpec> {
        match self.get(i) {
            None => Ok(IdentitySpec::default()),
            Some(d) => convert::identity(d, &self.what()),
        }
    }

    /// Runs `f` on the session as one numbered operation (see [`with_session`]).
    pub fn session<T>(&self, f: impl FnOnce(&mut Session) -> Result<T, Fault>) -> R<T> {
        with_session(self.shared, f)
    }
}
