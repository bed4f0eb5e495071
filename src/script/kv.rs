//! Key-value primitives: `kv_set` and `kv_get`, with or without a client identity.

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::cluster::target;
use super::engine::def;
use super::opts::Opts;
use super::{script_err, with_session, Shared};
use crate::pki::Cert;
use crate::session::IdentitySpec;

/// A client identity: a `Cert`, or a map `#{ cert, ca, server_name, plaintext }`.
pub fn identity(d: &Dynamic, what: &str) -> Result<IdentitySpec, Box<EvalAltResult>> {
    if let Some(cert) = d.clone().try_cast::<Rc<Cert>>() {
        return Ok(IdentitySpec {
            cert: Some(cert),
            ..Default::default()
        });
    }
    let Some(map) = d.clone().try_cast::<Map>() else {
        return Err(script_err(format!(
            "{what}: the identity must be a Cert or a map #{{ cert, ca, server_name, plaintext }}, got {}",
            super::opts::type_label(d)
        )));
    };
    let o = Opts::new(
        &map,
        "identity",
        &["cert", "ca", "server_name", "plaintext"],
    )?;
    let server_name = o.string("server_name")?;
    if let Some(name) = &server_name {
        if !crate::pki::is_host_name(name) || name.starts_with("*.") {
            return Err(script_err(format!(
                "{what}: server_name `{name}` is not a DNS name or IP address"
            )));
        }
    }
    Ok(IdentitySpec {
        cert: o.cert("cert")?,
        trust: o.ca("ca")?,
        server_name,
        plaintext: o.bool("plaintext")?.unwrap_or(false),
    })
}

/// Registers the key-value primitives.
pub fn register(engine: &mut Engine, shared: &Shared) {
    let s = shared.clone();
    def(
        engine,
        "kv_set",
        &["target: Member | Cluster", "key: string", "value: string"],
        "Writes `key = value` through the target (a Cluster uses its first running member),\n\
         trusting the cluster's CA and presenting no client certificate.\n\
         ```rhai\nexpect_error(|| kv_set(m1, \"foo\", \"bar\"), \"no client certificate\");\n```",
        move |t: Dynamic, key: &str, value: &str| {
            let t = target(&t, "kv_set()")?;
            with_session(&s, |ss| ss.kv_set(t, key, value, &IdentitySpec::default()))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "kv_set",
        &[
            "target: Member | Cluster",
            "key: string",
            "value: string",
            "identity: Cert | Map",
        ],
        "Writes `key = value` as `identity`: a `Cert` is presented as the client certificate\n\
         (the client trusts the cluster's CA, like the tutorial's `--cacert ca.crt`); a map\n\
         `#{ cert, ca, server_name, plaintext }` also sets the CA the client trusts, the name it\n\
         expects in the server certificate, or plain text instead of TLS.\n\
         ```rhai\nkv_set(c.member(\"infra1\"), \"hello\", \"world\", client);\n```",
        move |t: Dynamic, key: &str, value: &str, id: Dynamic| {
            let t = target(&t, "kv_set()")?;
            let id = identity(&id, "kv_set()")?;
            with_session(&s, |ss| ss.kv_set(t, key, value, &id))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "kv_get",
        &["target: Member | Cluster", "key: string", "?"],
        "Reads `key` through the target with no client certificate: its value as a string, or\n\
         `()` if there is no such key.\n\
         ```rhai\nlet v = kv_get(c, \"hello\");\n```",
        move |t: Dynamic, key: &str| {
            let t = target(&t, "kv_get()")?;
            with_session(&s, |ss| ss.kv_get(t, key, &IdentitySpec::default()))
                .map(|v| v.map_or(Dynamic::UNIT, Dynamic::from))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "kv_get",
        &[
            "target: Member | Cluster",
            "key: string",
            "identity: Cert | Map",
            "?",
        ],
        "Reads `key` as `identity` (see `kv_set`): the value, or `()` if there is no such key.\n\
         ```rhai\nassert_eq(kv_get(c.member(\"infra2\"), \"hello\", client), \"world\");\n```",
        move |t: Dynamic, key: &str, id: Dynamic| {
            let t = target(&t, "kv_get()")?;
            let id = identity(&id, "kv_get()")?;
            with_session(&s, |ss| ss.kv_get(t, key, &id))
                .map(|v| v.map_or(Dynamic::UNIT, Dynamic::from))
        },
    );
}
