//! PKI primitives: `ca`, `issue`, `revoke`, `show_cert`, and the getters of `Ca` and `Cert`.

use std::rc::Rc;

use rhai::{Array, Dynamic, Map};

use super::catalog::{opt, prop, req, Primitive, Ty};
use super::opts::Opts;
use super::registrar::Registrar;
use super::script_err;
use crate::pki::{Ca, CaSpec, Cert, CertSpec, KeyKind, Usage, MAX_DAYS};

/// The options of `ca`.
const CA_KEYS: &[&str] = &["key", "days", "parent"];
/// The options of `issue`.
/// The longest `not_after_secs`: a day (longer ones take days).
const MAX_SECS: i64 = 86_400;

const ISSUE_KEYS: &[&str] = &[
    "cn",
    "sans",
    "usage",
    "days",
    "not_before_days",
    "not_after_days",
    "not_after_secs",
    "key",
    "chain",
];

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
    let o = Opts::new(opts, "ca()", CA_KEYS)?;
    let d = CaSpec::default();
    Ok(CaSpec {
        key: key_kind(&o, "ca()")?.unwrap_or(d.key),
        days: o.int_in("days", 1..=MAX_DAYS)?.unwrap_or(d.days),
    })
}

/// The end of a certificate's validity: `days`, `not_after_days` or `not_after_secs` (one of
/// them; 365 days if none).
pub(super) fn end_of_validity(
    o: &Opts,
    what: &str,
) -> Result<(i64, Option<i64>), Box<rhai::EvalAltResult>> {
    let days = o.int_in("days", 1..=MAX_DAYS)?;
    let not_after = o.int_in("not_after_days", -MAX_DAYS..=MAX_DAYS)?;
    let secs = o.int_in("not_after_secs", 1..=MAX_SECS)?;
    let given = [days.is_some(), not_after.is_some(), secs.is_some()];
    if given.iter().filter(|&&g| g).count() > 1 {
        return Err(script_err(format!(
            "{what}: give one of `days`, `not_after_days` and `not_after_secs` (they all set the end of validity)"
        )));
    }
    Ok((not_after.or(days).unwrap_or(365), secs))
}

/// `key` of `issue` and `renew`.
pub(super) fn key_of(o: &Opts, what: &str) -> Result<Option<KeyKind>, Box<rhai::EvalAltResult>> {
    key_kind(o, what)
}

fn cert_spec(name: &str, opts: &Map) -> Result<CertSpec, Box<rhai::EvalAltResult>> {
    let o = Opts::new(opts, "issue()", ISSUE_KEYS)?;
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
    let (not_after_days, not_after_secs) = end_of_validity(&o, "issue()")?;
    Ok(CertSpec {
        cn: o.string("cn")?.unwrap_or_else(|| name.to_owned()),
        sans: o.strings("sans")?.unwrap_or_default(),
        usage,
        not_before_days: o.int_in("not_before_days", -MAX_DAYS..=MAX_DAYS)?,
        not_after_days,
        not_after_secs,
        key: key_kind(&o, "issue()")?.unwrap_or(KeyKind::EcP256),
        chain: o.bool("chain")?.unwrap_or(false),
    })
}

const CA: Primitive = Primitive {
    name: "ca",
    params: &[req("name", Ty::Str), opt("opts", Ty::Options(CA_KEYS))],
    returns: Ty::Ca,
    doc: "Makes a certificate authority named `name` (also its CN): self-signed, or with\n\
          `parent` an intermediate CA signed by that CA, as real PKIs (kubeadm, cert-manager,\n\
          Vault) issue from. Its certificate, key and (empty) CRL are written into the work dir.\n\
          Options: `key` (\"ec-p256\", the default, or \"rsa-2048\" like the tutorial's openssl),\n\
          `days` (validity, default 3650), `parent` (a Ca).",
    example: "let ca = ca(\"we-as-ca\");\nlet old_style = ca(\"rsa-ca\", #{ key: \"rsa-2048\", days: 10000 });\n\
              let issuing = ca(\"issuing\", #{ parent: ca });",
};

const ISSUE: Primitive = Primitive {
    name: "issue",
    params: &[req("ca", Ty::Ca), req("name", Ty::Str), opt("opts", Ty::Options(ISSUE_KEYS))],
    returns: Ty::Cert,
    doc: "Signs a leaf certificate named `name` with `ca`. Options: `cn` (default: the name),\n\
          `sans` (DNS names and IP addresses, told apart automatically), `usage` (array of\n\
          \"server\" and \"client\"; default [\"client\"]), `days` (default 365), `not_before_days` and\n\
          `not_after_days` (validity relative to now, for expired or not-yet-valid certificates),\n\
          `not_after_secs` (1 to 86400: a certificate that expires while the run goes on),\n\
          `key` (\"ec-p256\" or \"rsa-2048\"), `chain` (true: the certificate file holds the\n\
          intermediate CAs after the leaf, so that whoever presents it sends them too; default\n\
          false, the leaf alone, as `openssl x509 -req` writes it). Key files are written with\n\
          mode 0600.",
    example: "let client = issue(ca, \"client\");\n\
              let server = issue(ca, \"server\", #{ cn: \"localhost\", sans: [\"localhost\", \"127.0.0.1\"],\n\
              \x20                                 usage: [\"server\", \"client\"] });\n\
              let old = issue(ca, \"old\", #{ not_before_days: -10, not_after_days: -1 });",
};

const REVOKE: Primitive = Primitive {
    name: "revoke",
    params: &[req("ca", Ty::Ca), req("cert", Ty::Cert)],
    returns: Ty::Unit,
    doc: "Revokes `cert` (which `ca` must have signed) and rewrites the CA's CRL file. A cluster\n\
          planned with `client_crl: true` or `peer_crl: true` refuses it from then on.",
    example: "revoke(ca, stolen);",
};

const SHOW_CERT: Primitive = Primitive {
    name: "show_cert",
    params: &[req("cert", Ty::Cert)],
    returns: Ty::Unit,
    doc: "Writes a certificate into the transcript like a short `openssl x509 -text`: subject,\n\
          SANs, usages, issuer, key, and validity relative to now (\"expired 1 day ago\").",
    example: "show_cert(server);",
};

/// Registers the PKI primitives and the properties of `Ca` and `Cert`.
pub fn register(r: &mut Registrar) {
    r.engine().register_type_with_name::<Rc<Ca>>("Ca");
    r.engine().register_type_with_name::<Rc<Cert>>("Cert");
    r.engine()
        .register_fn("to_string", |c: &mut Rc<Cert>| format!("Cert({})", c.name))
        .register_fn("to_string", |c: &mut Rc<Ca>| format!("Ca({})", c.name));

    r.primitive(CA, |c| {
        let name = c.string(0)?;
        let opts = c.options(1)?;
        let spec = ca_spec(&opts)?;
        let parent = Opts::new(&opts, "ca()", CA_KEYS)?.ca("parent")?;
        c.session(|ss| Ok(ss.create_ca(&name, &spec, parent.as_deref())?))
    });
    r.primitive(ISSUE, |c| {
        let (ca, name) = (c.ca(0)?, c.string(1)?);
        let spec = cert_spec(&name, &c.options(2)?)?;
        c.session(|ss| Ok(ss.issue(&ca, &name, &spec)?))
    });
    r.primitive(REVOKE, |c| {
        let (ca, cert) = (c.ca(0)?, c.cert(1)?);
        c.session(|ss| Ok(ss.revoke(&ca, &cert)?))
    });
    r.primitive(SHOW_CERT, |c| {
        let cert = c.cert(0)?;
        c.session(|ss| {
            ss.show_cert(&cert);
            Ok(())
        })
    });

    r.property(
        prop(Ty::Ca, "name", Ty::Str, "the name given to ca()"),
        |_, c: &Rc<Ca>| Ok(c.name.clone()),
    );
    r.property(
        prop(
            Ty::Ca,
            "cert_path",
            Ty::Str,
            "the CA certificate's file in the work dir",
        ),
        |_, c: &Rc<Ca>| Ok(c.cert_path.display().to_string()),
    );
    r.property(
        prop(
            Ty::Ca,
            "can_sign",
            Ty::Bool,
            "whether it signs: made by the run, or loaded with its key (a bundle does not)",
        ),
        |_, c: &Rc<Ca>| Ok(c.can_sign()),
    );
    r.property(
        prop(
            Ty::Ca,
            "crl_path",
            Ty::Str,
            "the CA's CRL file in the work dir",
        ),
        |_, c: &Rc<Ca>| Ok(c.crl_path.display().to_string()),
    );
    r.property(
        prop(Ty::Cert, "name", Ty::Str, "the name given to issue()"),
        |_, c: &Rc<Cert>| Ok(c.name.clone()),
    );
    r.property(
        prop(Ty::Cert, "cn", Ty::Str, "the subject's common name"),
        |_, c: &Rc<Cert>| Ok(c.cn.clone()),
    );
    r.property(
        prop(Ty::Cert, "sans", Ty::Array, "the subject alternative names"),
        |_, c: &Rc<Cert>| {
            Ok(c.sans
                .iter()
                .map(|s| Dynamic::from(s.clone()))
                .collect::<Array>())
        },
    );
    r.property(
        prop(Ty::Cert, "usage", Ty::Array, "\"server\" and/or \"client\""),
        |_, c: &Rc<Cert>| {
            Ok(c.usage
                .iter()
                .map(|u| Dynamic::from(u.name().to_owned()))
                .collect::<Array>())
        },
    );
    r.property(
        prop(
            Ty::Cert,
            "issuer",
            Ty::Str,
            "the name of the CA that signed it",
        ),
        |_, c: &Rc<Cert>| Ok(c.issuer.clone()),
    );
    r.property(
        prop(
            Ty::Cert,
            "validity",
            Ty::Str,
            "its validity relative to now, in days",
        ),
        |_, c: &Rc<Cert>| Ok(c.validity()),
    );
    r.property(
        prop(
            Ty::Cert,
            "cert_path",
            Ty::Str,
            "the certificate's file in the work dir",
        ),
        |_, c: &Rc<Cert>| Ok(c.cert_path.display().to_string()),
    );
    r.property(
        prop(
            Ty::Cert,
            "key_path",
            Ty::Str,
            "the key's file in the work dir (mode 0600)",
        ),
        |_, c: &Rc<Cert>| Ok(c.key_path.display().to_string()),
    );
}
