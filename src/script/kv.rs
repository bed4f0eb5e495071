//! Key-value primitives: `kv_set` and `kv_get`, with or without a client identity.

use rhai::Dynamic;

use super::catalog::{opt, req, Primitive, Ty};
use super::opts::Opts;
use super::registrar::Registrar;

/// The options of `kv_set`.
const KV_SET_KEYS: &[&str] = &["lease"];

const KV_SET: Primitive = Primitive {
    name: "kv_set",
    params: &[
        req("target", Ty::Target),
        req("key", Ty::Str),
        req("value", Ty::Str),
        opt("identity", Ty::Identity),
        opt("opts", Ty::Options(KV_SET_KEYS)),
    ],
    returns: Ty::Unit,
    doc: "Writes `key = value` through the target (a Cluster uses its first running member).\n\
          Without `identity` the client trusts the cluster's CA and presents no certificate. A\n\
          `Cert` is presented as the client certificate (like the tutorial's `--cert`); a map\n\
          `#{ cert, ca, server_name, plaintext, dial }` also sets the CA the client trusts, the\n\
          name it expects in the server certificate, plain text instead of TLS, or, for a member\n\
          on a host of its own, `dial`: whether the client dials it by \"ip\" (and checks that\n\
          address in its certificate) or by \"name\" (the host name, resolved from the run's\n\
          hosts, checked in turn); by default, the member's advertised URL; and\n\
          `timeout_ms`, how long the call waits for an answer (default 5000; a member that is\n\
          paused or cut off gives \"timeout\", one that is gone \"unavailable\"); and `user`\n\
          with `password`, to log in as that user (etcd then takes the login, not the\n\
          certificate's CN, as who is asking). How it speaks TLS: `tls_min` and `tls_max`\n\
          (\"1.2\" or \"1.3\"), `cipher_suites` (names as etcd's `--cipher-suites` takes them),\n\
          `ca: \"system\"` (trust the machine's roots instead of a CA of the run), and\n\
          `insecure_skip_tls_verify: true` (check no server certificate). A certificate issued\n\
          with `chain: true` is presented with its intermediates. `listener: \"http\"` dials\n\
          the member's plain-text port (see `cluster`'s `http_listener`). Options:\n\
          `lease` (from `lease_grant`: the key goes when the lease ends).",
    example: "kv_set(c.member(\"infra1\"), \"hello\", \"world\", client);\n\
              expect_error(|| kv_set(m1, \"foo\", \"bar\"), \"no client certificate\");",
};

const KV_GET: Primitive = Primitive {
    name: "kv_get",
    params: &[
        req("target", Ty::Target),
        req("key", Ty::Str),
        opt("identity", Ty::Identity),
    ],
    returns: Ty::Any,
    doc: "Reads `key` through the target as `identity` (see `kv_set`): its value as a string, or\n\
          `()` if there is no such key.",
    example: "assert_eq(kv_get(c.member(\"infra2\"), \"hello\", client), \"world\");",
};

/// Registers the key-value primitives.
pub fn register(r: &mut Registrar) {
    r.primitive(KV_SET, |c| {
        let (t, key, value) = (c.target(0)?, c.string(1)?, c.string(2)?);
        let id = c.identity(3)?;
        let opts = c.options(4)?;
        let lease = Opts::new(&opts, "kv_set()", KV_SET_KEYS)?.lease("lease")?;
        c.session(|ss| ss.kv_set(t, &key, &value, &id, lease))
    });
    r.primitive(KV_GET, |c| {
        let (t, key) = (c.target(0)?, c.string(1)?);
        let id = c.identity(2)?;
        c.session(|ss| ss.kv_get(t, &key, &id))
            .map(|v| v.map_or(Dynamic::UNIT, Dynamic::from))
    });
}
