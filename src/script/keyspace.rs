//! Key-space primitives beyond one key: `kv_delete`, `kv_delete_prefix`, `kv_get_prefix`,
//! `watch`, `watch_events`, `lease_grant`, `lease_revoke`.

use rhai::{Array, Dynamic, Map};

use super::catalog::{opt, req, Primitive, Ty};
use super::opts::Opts;
use super::registrar::Registrar;
use crate::session::{LeaseId, Pair, WatchEvent, WatchId};

/// The options of `watch`.
const WATCH_KEYS: &[&str] = &["prefix"];

/// The most events one `watch_events` may wait for.
pub const MAX_WATCH_EVENTS: i64 = 1000;

/// The longest lease a script may ask for, in seconds (a day).
pub const MAX_LEASE_TTL: i64 = 86_400;

const TARGET: super::catalog::Param = req("target", Ty::Target);
const IDENTITY: super::catalog::Param = opt("identity", Ty::Identity);

const KV_DELETE: Primitive = Primitive {
    name: "kv_delete",
    params: &[TARGET, req("key", Ty::Str), IDENTITY],
    returns: Ty::Int,
    doc: "Deletes `key` through the target as `identity` (see `kv_set`); returns how many keys\n\
          went (0 or 1). etcd asks for write permission on the key.",
    example: "assert_eq(kv_delete(m1, \"app/config\", alice), 1);",
};

const KV_DELETE_PREFIX: Primitive = Primitive {
    name: "kv_delete_prefix",
    params: &[TARGET, req("prefix", Ty::Str), IDENTITY],
    returns: Ty::Int,
    doc: "Deletes every key under `prefix`; returns how many went. etcd asks for write\n\
          permission on the whole range, so a user allowed only some of its keys is refused.",
    example: "kv_delete_prefix(m1, \"app/\", alice);",
};

const KV_GET_PREFIX: Primitive = Primitive {
    name: "kv_get_prefix",
    params: &[TARGET, req("prefix", Ty::Str), IDENTITY],
    returns: Ty::Array,
    doc: "Reads every key under `prefix` (one range read): an array of `#{ key, value }` in key\n\
          order. etcd asks for read permission on the whole range: a user allowed only some of\n\
          its keys is refused, never given a part.",
    example: "let pairs = kv_get_prefix(m1, \"app/\", alice);\nassert_eq(pairs.len(), 2);",
};

const WATCH: Primitive = Primitive {
    name: "watch",
    params: &[
        TARGET,
        req("key", Ty::Str),
        IDENTITY,
        opt("opts", Ty::Options(WATCH_KEYS)),
    ],
    returns: Ty::Watch,
    doc: "Watches `key` (with `#{ prefix: true }`, every key under it) through the target as\n\
          `identity`, from now on, and returns once etcd has confirmed the watch. etcd checks\n\
          read permission when the watch is made: a refused watch is a rejection of this call\n\
          (\"permission denied\"), never a watch that stays silent. Watches are numbered in the\n\
          transcript in the order the script made them.",
    example: "let w = watch(m1, \"app/\", alice, #{ prefix: true });\n\
              expect_error(|| watch(m1, \"ops/\", alice, #{ prefix: true }), \"permission denied\");",
};

const WATCH_EVENTS: Primitive = Primitive {
    name: "watch_events",
    params: &[
        req("watch", Ty::Watch),
        req("count", Ty::Int),
        opt("timeout_ms", Ty::Int),
    ],
    returns: Ty::Array,
    doc: "Waits for the next `count` events of a watch, at most `timeout_ms` (default 5000), and\n\
          returns them, oldest first, as `#{ type, key, value }` (`type` \"put\" or \"delete\"; a\n\
          delete has an empty value). Fewer events in time is a \"timeout\", which is how a\n\
          script shows that a watch saw nothing.",
    example: "kv_set(m1, \"app/a\", \"1\", alice);\nlet ev = watch_events(w, 1);\n\
              assert_eq(ev[0].key, \"app/a\");",
};

const LEASE_GRANT: Primitive = Primitive {
    name: "lease_grant",
    params: &[TARGET, req("ttl_secs", Ty::Int), IDENTITY],
    returns: Ty::Lease,
    doc: "Asks for a lease of `ttl_secs` seconds (1 to 86400) through the target as `identity`.\n\
          Keys written with `kv_set(..., #{ lease: l })` go when the lease ends. The transcript\n\
          numbers leases in the order the script made them; etcd's lease IDs go to stderr.",
    example: "let l = lease_grant(m1, 60, alice);\nkv_set(m1, \"app/session\", \"s1\", alice, #{ lease: l });",
};

const LEASE_REVOKE: Primitive = Primitive {
    name: "lease_revoke",
    params: &[TARGET, req("lease", Ty::Lease), IDENTITY],
    returns: Ty::Unit,
    doc: "Revokes a lease, which deletes every key attached to it. With auth on, etcd asks for\n\
          write permission on each of those keys.",
    example: "lease_revoke(m1, l, alice);",
};

fn pair(p: Pair) -> Dynamic {
    let mut m = Map::new();
    m.insert("key".into(), p.key.into());
    m.insert("value".into(), p.value.into());
    m.into()
}

fn event(e: WatchEvent) -> Dynamic {
    let mut m = Map::new();
    m.insert("type".into(), e.kind.into());
    m.insert("key".into(), e.key.into());
    m.insert("value".into(), e.value.into());
    m.into()
}

/// Registers the key-space primitives.
pub fn register(r: &mut Registrar) {
    r.engine().register_type_with_name::<WatchId>("Watch");
    r.engine().register_type_with_name::<LeaseId>("Lease");
    r.primitive(KV_DELETE, |c| {
        let (t, key, id) = (c.target(0)?, c.string(1)?, c.identity(2)?);
        c.session(|ss| ss.kv_delete(t, &key, &id))
    });
    r.primitive(KV_DELETE_PREFIX, |c| {
        let (t, key, id) = (c.target(0)?, c.string(1)?, c.identity(2)?);
        c.session(|ss| ss.kv_delete_prefix(t, &key, &id))
    });
    r.primitive(KV_GET_PREFIX, |c| {
        let (t, key, id) = (c.target(0)?, c.string(1)?, c.identity(2)?);
        let pairs = c.session(|ss| ss.kv_get_prefix(t, &key, &id))?;
        Ok(pairs.into_iter().map(pair).collect::<Array>())
    });
    r.primitive(WATCH, |c| {
        let (t, key, id) = (c.target(0)?, c.string(1)?, c.identity(2)?);
        let opts = c.options(3)?;
        let prefix = Opts::new(&opts, "watch()", WATCH_KEYS)?
            .bool("prefix")?
            .unwrap_or(false);
        c.session(|ss| ss.watch(t, &key, prefix, &id))
    });
    r.primitive(WATCH_EVENTS, |c| {
        let (w, count) = (c.watch(0)?, c.int_in(1, 1..=MAX_WATCH_EVENTS)?);
        let bound = match c.get(2) {
            Some(_) => c.int_in(2, 1..=super::convert::MAX_CALL_TIMEOUT_MS)? as u64,
            None => crate::limits::OP_TIMEOUT.as_millis() as u64,
        };
        let bound = std::time::Duration::from_millis(bound);
        let events = c.session(|ss| ss.watch_events(w, count as usize, bound))?;
        Ok(events.into_iter().map(event).collect::<Array>())
    });
    r.primitive(LEASE_GRANT, |c| {
        let (t, ttl, id) = (
            c.target(0)?,
            c.int_in(1, 1..=MAX_LEASE_TTL)?,
            c.identity(2)?,
        );
        c.session(|ss| ss.lease_grant(t, ttl, &id))
    });
    r.primitive(LEASE_REVOKE, |c| {
        let (t, l, id) = (c.target(0)?, c.lease(1)?, c.identity(2)?);
        c.session(|ss| ss.lease_revoke(t, l, &id))
    });
}
