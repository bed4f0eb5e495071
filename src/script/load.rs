//! Load primitives: `load`, `stop_load`, `check_no_lost_writes`.

use rhai::{Dynamic, Map};

use super::catalog::{opt, req, Primitive, Ty};
use super::convert::identity;
use super::opts::Opts;
use super::registrar::Registrar;
use crate::session::{LoadId, LoadSpec, Target};

/// The options of `load`.
const LOAD_KEYS: &[&str] = &["identity", "rate", "timeout_ms"];

/// The fastest load a script may ask for, in writes a second.
pub const MAX_RATE: i64 = 1000;

const LOAD: Primitive = Primitive {
    name: "load",
    params: &[
        req("through", Ty::Any),
        opt("opts", Ty::Options(LOAD_KEYS)),
    ],
    returns: Ty::Load,
    doc: "Starts writing in the background, from a thread of its own, while the script goes on:\n\
          one write at a time, each to a key of its own under `load-N/`, through a Member, the\n\
          members of a Cluster, or an array of Members, in turn (it moves to the next when one\n\
          fails it, and asks again on \"not yet\"). Options: `identity` (as in `kv_set`), `rate`\n\
          (writes a second, 1 to 1000, default 50), `timeout_ms` (how long one write may take,\n\
          moves included, default 2000). It records every write the cluster acknowledged. Its\n\
          classes come from the client's side alone (it reads no member log): a connection\n\
          refused or broken is \"unavailable\", only \"not yet\" until the bound \"timeout\",\n\
          and a handshake the member refused without saying why \"tls rejected\".",
    example: "let l = load([c.member(\"infra2\"), c.member(\"infra3\")], #{ identity: client, rate: 100 });",
};

const STOP_LOAD: Primitive = Primitive {
    name: "stop_load",
    params: &[req("load", Ty::Load)],
    returns: Ty::Any,
    doc: "Stops a load and returns what it did: `#{ writes, acknowledged, failed, classes }`,\n\
          `classes` counting failed writes by class. The numbers depend on timing, so the\n\
          transcript does not show them: check the ones that must hold (`assert(s.failed == 0,\n\
          ...)`).",
    example: "let s = stop_load(l);\nassert(s.failed == 0, \"no write failed\");",
};

const CHECK_NO_LOST_WRITES: Primitive = Primitive {
    name: "check_no_lost_writes",
    params: &[req("load", Ty::Load), req("via", Ty::Member)],
    returns: Ty::Unit,
    doc: "Stops the load if it runs, reads its keys back through `via` (as the load's identity,\n\
          one linearizable range read) and checks that every write the cluster acknowledged is\n\
          there with its value. Writes that failed may or may not be there: only acknowledged\n\
          ones count.",
    example: "check_no_lost_writes(l, c.member(\"infra1\"));",
};

/// Registers the load primitives.
pub fn register(r: &mut Registrar) {
    r.engine().register_type_with_name::<LoadId>("Load");
    r.primitive(LOAD, |c| {
        let members = match c.get(0).and_then(|d| d.clone().try_cast::<rhai::Array>()) {
            Some(_) => Some(c.members(0)?),
            None => None,
        };
        let target = match members {
            Some(_) => None,
            None => Some(c.target(0)?),
        };
        let opts = c.options(1)?;
        let o = Opts::new(&opts, "load()", LOAD_KEYS)?;
        let id = match opts.get("identity") {
            Some(d) => identity(d, "load()")?,
            None => Default::default(),
        };
        let rate = o.int_in("rate", 1..=MAX_RATE)?.unwrap_or(50) as u32;
        let timeout = o
            .int_in("timeout_ms", 1..=super::convert::MAX_CALL_TIMEOUT_MS)?
            .unwrap_or(2000) as u64;
        c.session(|ss| {
            let members = match (members, target) {
                (Some(m), _) => m,
                (None, Some(Target::Member(m))) => vec![m],
                (None, Some(Target::Cluster(cl))) => ss.members(cl),
                (None, None) => Vec::new(),
            };
            if members.is_empty() {
                return Err(crate::error::Error::Script(
                    "load(): it needs at least one member to write through".into(),
                )
                .into());
            }
            Ok(ss.start_load(LoadSpec {
                members,
                identity: id,
                rate,
                write_timeout: std::time::Duration::from_millis(timeout),
            })?)
        })
    });
    r.primitive(STOP_LOAD, |c| {
        let l = c.load(0)?;
        let t = c.session(|ss| Ok(ss.stop_load(l)?))?;
        let mut classes = Map::new();
        for (class, n) in &t.failed {
            classes.insert(class.as_str().into(), Dynamic::from(*n as i64));
        }
        let mut out = Map::new();
        out.insert("writes".into(), Dynamic::from(t.writes as i64));
        out.insert("acknowledged".into(), Dynamic::from(t.acked.len() as i64));
        let failed: u64 = t.failed.values().sum();
        out.insert("failed".into(), Dynamic::from(failed as i64));
        out.insert("classes".into(), Dynamic::from(classes));
        Ok(Dynamic::from(out))
    });
    r.primitive(CHECK_NO_LOST_WRITES, |c| {
        let (l, via) = (c.load(0)?, c.member(1)?);
        c.session(|ss| ss.check_no_lost_writes(l, via))
    });
}
