//! Auditing a cluster etcdscript did not start: `load_ca` and `load_cert` read an existing PKI
//! (from the `--pki` directory only), `remote_cluster` names its endpoints.

use super::catalog::{req, Primitive, Ty};
use super::opts::Opts;
use super::registrar::Registrar;
use crate::session::RemoteSpec;

/// The options of `load_ca`.
const LOAD_CA_KEYS: &[&str] = &["cert", "key"];
/// The options of `load_cert`.
const LOAD_CERT_KEYS: &[&str] = &["cert", "key"];
/// The options of `remote_cluster`.
const REMOTE_KEYS: &[&str] = &["endpoints", "ca", "identity", "prefix"];

const LOAD_CA: Primitive = Primitive {
    name: "load_ca",
    params: &[
        req("name", Ty::Str),
        req("files", Ty::Options(LOAD_CA_KEYS)),
    ],
    returns: Ty::Ca,
    doc:
        "Reads an existing CA from PEM files in the directory the run was given with `--pki DIR`\n\
          (paths relative to it; nothing outside it is read, and nothing there is written):\n\
          `#{ cert, key }`. With its `key` the CA signs, so a script can mint test certificates\n\
          (expired, wrong usage, another CN) that the real cluster trusts; without it, it is\n\
          only trusted.",
    example: "let ca = load_ca(\"etcd-ca\", #{ cert: \"ca.crt\", key: \"ca.key\" });",
};

const LOAD_CERT: Primitive = Primitive {
    name: "load_cert",
    params: &[req("name", Ty::Str), req("files", Ty::Options(LOAD_CERT_KEYS))],
    returns: Ty::Cert,
    doc: "Reads an existing certificate and its key from PEM files under `--pki DIR`:\n\
          `#{ cert, key }`. Its CN, SANs, usages and validity are read from it; a file with the\n\
          chain after the leaf is presented as it is.",
    example: "let admin = load_cert(\"admin\", #{ cert: \"healthcheck-client.crt\", key: \"healthcheck-client.key\" });",
};

const REMOTE_CLUSTER: Primitive = Primitive {
    name: "remote_cluster",
    params: &[req("name", Ty::Str), req("opts", Ty::Options(REMOTE_KEYS))],
    returns: Ty::Cluster,
    doc: "A cluster that runs elsewhere: `endpoints` (client URLs, `https://host:port`), `ca`\n\
          (the CA its clients trust), `identity` (a Cert the runtime acts as: `wait_healthy`, the\n\
          clean-up) and `prefix` (ending in `/`: the only keys scripts may write; without it,\n\
          none). Its members, named `NAME-1`, `NAME-2`... in the order of `endpoints`, work with\n\
          `kv_get`, `kv_set`, `http_get`, `member_list`, `wait_healthy` and `expect_error`\n\
          (`c.members` lists them); etcdscript never starts, stops or\n\
          reconfigures them, and at the end deletes every key the script wrote. No member log\n\
          is there to read: every class comes from the client's side, and a refusal the server\n\
          does not explain is \"refused at handshake\".",
    example: "let prod = remote_cluster(\"prod\", #{ endpoints: [\"https://10.0.0.1:2379\"], ca: ca,\n\
              \x20                                  identity: admin, prefix: \"etcdscript-audit/\" });\n\
              expect_error(|| kv_get(prod, \"k\"), [\"refused at handshake\", \"no client certificate\"]);",
};

/// Registers `load_ca`, `load_cert` and `remote_cluster`.
pub fn register(r: &mut Registrar) {
    r.primitive(LOAD_CA, |c| {
        let (name, files) = (c.string(0)?, c.map(1)?);
        let o = Opts::new(&files, "load_ca()", LOAD_CA_KEYS)?;
        let cert = o.required("cert", o.string("cert")?)?;
        let key = o.string("key")?;
        c.session(|ss| Ok(ss.load_ca(&name, &cert, key.as_deref())?))
    });
    r.primitive(LOAD_CERT, |c| {
        let (name, files) = (c.string(0)?, c.map(1)?);
        let o = Opts::new(&files, "load_cert()", LOAD_CERT_KEYS)?;
        let cert = o.required("cert", o.string("cert")?)?;
        let key = o.required("key", o.string("key")?)?;
        c.session(|ss| Ok(ss.load_cert(&name, &cert, &key)?))
    });
    r.primitive(REMOTE_CLUSTER, |c| {
        let (name, opts) = (c.string(0)?, c.map(1)?);
        let o = Opts::new(&opts, "remote_cluster()", REMOTE_KEYS)?;
        let spec = RemoteSpec {
            name,
            endpoints: o.required("endpoints", o.strings("endpoints")?)?,
            ca: o.required("ca", o.ca("ca")?)?,
            identity: o.required("identity", o.cert("identity")?)?,
            prefix: o.string("prefix")?,
        };
        c.session(|ss| Ok(ss.remote_cluster(spec)?))
    });
}
