//! PKI primitives: `ca`, `issue`, `revoke`, `show_cert`, and the getters of `Ca` and `Cert`.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, Map};

use super::engine::def;
use super::opts::Opts;
use super::{script_err, with_session, Shared};
use crate::pki::{Ca, CaSpec, Cert, CertSpec, KeyKind, Usage, MAX_DAYS};

fn key_kind(o: &Opts, what: &str) -> Result<Option<KeyKind>, Box<rhai::EvalAltResult>> {
    match o.string("key")? {
        None => Ok(None),
        Some(k) => KeyKind::parse(&k).map(Some).ok_or_else(|| {
            script_err(format!(
                "{what}: key `{k}` is not one of {}",
                KeyKind::NAMES.join(", ")
            ))
        }),
    }
}

fn ca_spec(opts: &Map) -> Result<CaSpec, Box<rhai::EvalAltResult>> {
    let o = Opts::new(opts, "ca()", &["key", "days"])?;
    let d = CaSpec::default();
    Ok(CaSpec {
        key: key_kind(&o, "ca()")?.unwrap_or(d.key),
        days: o.int_in("days", 1..=MAX_DAYS)?.unwrap_or(d.days),
    })
}

fn cert_spec(name: &str, opts: &Map) -> Result<CertSpec, Box<rhai::EvalAltResult>> {
    let o = Opts::new(
        opts,
        "issue()",
        &[
            "cn",
            "sans",
            "usage",
            "days",
            "not_before_days",
            "not_after_days",
            "key",
        ],
    )?;
    let usage = match o.strings("usage")? {
        None => vec![Usage::Client],
        Some(names) => names
            .iter()
            .map(|u| {
                Usage::parse(u).ok_or_else(|| {
                    script_err(format!(
                        "issue(): usage `{u}` is not one of {}",
                        Usage::NAMES.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let days = o.int_in("days", 1..=MAX_DAYS)?;
    let not_after = o.int_in("not_after_days", -MAX_DAYS..=MAX_DAYS)?;
    if days.is_some() && not_after.is_some() {
        return Err(script_err(
            "issue(): give either `days` or `not_after_days`, not both (they both set the end of validity)",
        ));
    }
    Ok(CertSpec {
        cn: o.string("cn")?.unwrap_or_else(|| name.to_owned()),
        sans: o.strings("sans")?.unwrap_or_default(),
        usage,
        not_before_days: o.int_in("not_before_days", -MAX_DAYS..=MAX_DAYS)?,
        not_after_days: not_after.or(days).unwrap_or(365),
        key: key_kind(&o, "issue()")?.unwrap_or(KeyKind::EcP256),
    })
}

/// Registers the PKI primitives.
pub fn register(engine: &mut Engine, shared: &Shared) {
    engine.register_type_with_name::<Rc<Ca>>("Ca");
    engine.register_type_with_name::<Rc<Cert>>("Cert");

    let s = shared.clone();
    def(
        engine,
        "ca",
        &["name: string", "Ca"],
        "Makes a self-signed certificate authority named `name` (also its CN): an EC P-256 key,\n\
         valid for 3650 days. Its certificate, key and (empty) CRL are written into the work dir.\n\
         ```rhai\nlet ca = ca(\"we-as-ca\");\n```",
        move |name: &str| with_session(&s, |ss| Ok(ss.create_ca(name, &CaSpec::default())?)),
    );
    let s = shared.clone();
    def(
        engine,
        "ca",
        &["name: string", "opts: map", "Ca"],
        "Makes a CA with options: `key` (\"ec-p256\", the default, or \"rsa-2048\" like the\n\
         tutorial's openssl), `days` (validity, default 3650).\n\
         ```rhai\nlet ca = ca(\"we-as-ca\", #{ key: \"rsa-2048\", days: 10000 });\n```",
        move |name: &str, opts: Map| {
            let spec = ca_spec(&opts)?;
            with_session(&s, |ss| Ok(ss.create_ca(name, &spec)?))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "issue",
        &["ca: Ca", "name: string", "opts: map", "Cert"],
        "Signs a leaf certificate named `name` with `ca`. Options: `cn` (default: the name),\n\
         `sans` (DNS names and IP addresses, told apart automatically), `usage` (array of\n\
         \"server\" and \"client\"; default [\"client\"]), `days` (default 365), `not_before_days` and\n\
         `not_after_days` (validity relative to now, for expired or not-yet-valid certificates),\n\
         `key` (\"ec-p256\" or \"rsa-2048\"). Key files are written with mode 0600.\n\
         ```rhai\nlet server = issue(ca, \"server\", #{ cn: \"localhost\", sans: [\"localhost\", \"127.0.0.1\"],\n                                  usage: [\"server\", \"client\"] });\nlet old = issue(ca, \"old\", #{ not_before_days: -10, not_after_days: -1 });\n```",
        move |ca: Rc<Ca>, name: &str, opts: Map| {
            let spec = cert_spec(name, &opts)?;
            with_session(&s, |ss| Ok(ss.issue(&ca, name, &spec)?))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "issue",
        &["ca: Ca", "name: string", "Cert"],
        "Signs a client certificate named `name` (CN = name) with `ca`, valid for 365 days.\n\
         ```rhai\nlet client = issue(ca, \"client\");\n```",
        move |ca: Rc<Ca>, name: &str| {
            let spec = cert_spec(name, &Map::new())?;
            with_session(&s, |ss| Ok(ss.issue(&ca, name, &spec)?))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "revoke",
        &["ca: Ca", "cert: Cert"],
        "Revokes `cert` (which `ca` must have signed) and rewrites the CA's CRL file; a cluster\n\
         planned with `client_crl: true` or `peer_crl: true` refuses it from then on.\n\
         ```rhai\nrevoke(ca, stolen);\n```",
        move |ca: Rc<Ca>, cert: Rc<Cert>| with_session(&s, |ss| Ok(ss.revoke(&ca, &cert)?)),
    );
    let s = shared.clone();
    def(
        engine,
        "show_cert",
        &["cert: Cert"],
        "Writes a certificate into the transcript like a short `openssl x509 -text`: subject,\n\
         SANs, usages, issuer, key, and validity relative to now (\"expired 1 day ago\").\n\
         ```rhai\nshow_cert(server);\n```",
        move |cert: Rc<Cert>| {
            with_session(&s, |ss| {
                ss.show_cert(&cert);
                Ok(())
            })
        },
    );

    engine
        .register_get("name", |c: &mut Rc<Ca>| c.name.clone())
        .register_get("cert_path", |c: &mut Rc<Ca>| {
            c.cert_path.display().to_string()
        })
        .register_get("crl_path", |c: &mut Rc<Ca>| {
            c.crl_path.display().to_string()
        })
        .register_get("name", |c: &mut Rc<Cert>| c.name.clone())
        .register_get("cn", |c: &mut Rc<Cert>| c.cn.clone())
        .register_get("sans", |c: &mut Rc<Cert>| {
            c.sans
                .iter()
                .map(|s| Dynamic::from(s.clone()))
                .collect::<Array>()
        })
        .register_get("usage", |c: &mut Rc<Cert>| {
            c.usage
                .iter()
                .map(|u| Dynamic::from(u.name().to_owned()))
                .collect::<Array>()
        })
        .register_get("issuer", |c: &mut Rc<Cert>| c.issuer.clone())
        .register_get("validity", |c: &mut Rc<Cert>| c.validity())
        .register_get("cert_path", |c: &mut Rc<Cert>| {
            c.cert_path.display().to_string()
        })
        .register_get("key_path", |c: &mut Rc<Cert>| {
            c.key_path.display().to_string()
        })
        .register_fn("to_string", |c: &mut Rc<Cert>| format!("Cert({})", c.name))
        .register_fn("to_string", |c: &mut Rc<Ca>| format!("Ca({})", c.name));
}
