//! Certificates over time: `bundle`, `renew` and `served_cert`.

use std::rc::Rc;

use super::catalog::{opt, req, Primitive, Ty};
use super::opts::Opts;
use super::pki::{end_of_validity, key_of};
use super::registrar::Registrar;
use super::script_err;
use crate::pki::{CertSpec, Replace};

/// The options of `renew`.
const RENEW_KEYS: &[&str] = &["mode", "days", "not_after_days", "not_after_secs", "key"];

const RENEW: Primitive = Primitive {
    name: "renew",
    params: &[
        req("ca", Ty::Ca),
        req("cert", Ty::Cert),
        opt("opts", Ty::Options(RENEW_KEYS)),
    ],
    returns: Ty::Cert,
    doc: "Issues `cert` again with `ca`: the same name, subject, SANs and usages, a new key and\n\
          serial, and a validity from now (`days`, `not_after_days` or `not_after_secs`, as in\n\
          `issue`; default 365 days). Its files are replaced in place while members may read\n\
          them, the way operators do it: `mode` \"rename\" (the default: each new file written\n\
          beside the old one, then renamed over it) or \"copy\" (copied over it). Members serve\n\
          it from their next handshake on (see `served_cert`). Returns the new certificate.",
    example: "let renewed = renew(ca, server, #{ mode: \"copy\" });",
};

const SERVED_CERT: Primitive = Primitive {
    name: "served_cert",
    params: &[req("member", Ty::Member), opt("identity", Ty::Identity)],
    returns: Ty::Str,
    doc: "Looks at the certificate `member` serves on its client port now, through a TLS\n\
          handshake of its own (which trusts anything: it looks, it does not judge; it presents\n\
          `identity`'s certificate, by default the cluster's probe certificate). Writes and\n\
          returns which certificate of the run it is, and which renewal: \"server (as issued)\",\n\
          \"server (renewal 1)\", or \"a certificate this run did not make\".",
    example: "assert_eq(served_cert(c.member(\"infra1\")), \"server (renewal 1)\");",
};

const BUNDLE: Primitive = Primitive {
    name: "bundle",
    params: &[req("name", Ty::Str), req("cas", Ty::Array)],
    returns: Ty::Ca,
    doc: "A trust bundle: the certificates of several CAs in one file, to give wherever a CA is\n\
          trusted (`cluster`'s and `spawn_member`'s `ca`, an identity's `ca`), for a CA rotation\n\
          step by step (old, then both, then new). A bundle signs nothing.",
    example: "let both = bundle(\"old-and-new\", [old_ca, new_ca]);\n\
              restart_member(c.member(\"infra1\"), #{ ca: both });",
};

const TAMPER: Primitive = Primitive {
    name: "tamper",
    params: &[req("what", Ty::Any), req("part", Ty::Str)],
    returns: Ty::Unit,
    doc: "Damages a file of the run's PKI on purpose: a Cert's \"key\" (removed) or \"cert\",\n\
          or a Ca's \"crl\" or \"cert\" (overwritten with PEM that holds no certificate or CRL),\n\
          to show what etcd does with them: a member whose key is gone fails to start (\"start\n\
          failed\"); one given a CRL it cannot read starts, and refuses every client\n\
          certificate at the handshake. etcdscript's own client refuses to use a tampered\n\
          certificate or CA file: that is a script error, never a rejection.",
    example:
        "tamper(server, \"key\");\nexpect_error(|| spawn_member(c, \"m1\"), \"start failed\");\n\
              tamper(ca, \"crl\");",
};

const SERVED_DAYS_LEFT: Primitive = Primitive {
    name: "served_days_left",
    params: &[req("member", Ty::Member), opt("identity", Ty::Identity)],
    returns: Ty::Int,
    doc: "Whole days until the certificate `member` serves on its client port now expires\n\
          (negative once it has), seen as `served_cert` sees it. For a certificate about to\n\
          expire: `assert(served_days_left(m) >= 30, ...)`. A handshake that fails is a\n\
          rejection.",
    example: "assert(served_days_left(c.member(\"infra1\")) >= 30, \"30 days or more left\");",
};

/// Registers `bundle`, `renew`, `served_cert`, `served_days_left` and `tamper`.
pub fn register(r: &mut Registrar) {
    r.primitive(TAMPER, |c| {
        let word = c.string(1)?;
        let part = crate::session::Part::parse(&word).ok_or_else(|| {
            super::script_err(format!(
                "tamper(): part `{word}` is not one of \"key\", \"cert\", \"crl\""
            ))
        })?;
        let what = c.get(0).cloned().unwrap_or(rhai::Dynamic::UNIT);
        if let Some(cert) = what.clone().try_cast::<Rc<crate::pki::Cert>>() {
            return c.session(|ss| Ok(ss.tamper_cert(&cert, part)?));
        }
        if let Some(ca) = what.clone().try_cast::<Rc<crate::pki::Ca>>() {
            return c.session(|ss| Ok(ss.tamper_ca(&ca, part)?));
        }
        Err(super::script_err(format!(
            "tamper(): `what` must be a Cert or a Ca, got {}",
            super::convert::type_label(&what)
        )))
    });
    r.primitive(BUNDLE, |c| {
        let name = c.string(0)?;
        let cas = c
            .array(1)?
            .into_iter()
            .map(|d| d.try_cast::<Rc<crate::pki::Ca>>())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| script_err("bundle(): `cas` must be an array of Cas (from ca())"))?;
        c.session(|ss| Ok(ss.bundle(&name, &cas)?))
    });
    r.primitive(RENEW, |c| {
        let (ca, old) = (c.ca(0)?, c.cert(1)?);
        let opts = c.options(2)?;
        let o = Opts::new(&opts, "renew()", RENEW_KEYS)?;
        let how = match o.string("mode")? {
            None => Replace::Rename,
            Some(m) => Replace::parse(&m).ok_or_else(|| {
                script_err(format!(
                    "renew(): mode `{m}` is not one of \"rename\", \"copy\""
                ))
            })?,
        };
        let (not_after_days, not_after_secs) = end_of_validity(&o, "renew()")?;
        let spec = CertSpec {
            cn: old.cn.clone(),
            sans: old.sans.clone(),
            usage: old.usage.clone(),
            not_before_days: None,
            not_after_days,
            not_after_secs,
            key: key_of(&o, "renew()")?.unwrap_or(old.key_kind),
            chain: old.chained,
        };
        c.session(|ss| Ok(ss.renew(&ca, &old, &spec, how)?))
            .map(|cert: Rc<crate::pki::Cert>| cert)
    });
    r.primitive(SERVED_CERT, |c| {
        let m = c.member(0)?;
        let id = match c.get(1) {
            Some(_) => Some(c.identity(1)?),
            None => None,
        };
        c.session(|ss| ss.served_cert(m, id.as_ref()))
    });
    r.primitive(SERVED_DAYS_LEFT, |c| {
        let m = c.member(0)?;
        let id = match c.get(1) {
            Some(_) => Some(c.identity(1)?),
            None => None,
        };
        c.session(|ss| ss.served_days_left(m, id.as_ref()))
    });
}
