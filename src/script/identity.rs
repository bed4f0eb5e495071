//! Client identities from script values: a `Cert`, or a map that also says what the client
//! trusts, how it speaks TLS, what it dials, how long it waits and whom it logs in as.

use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, Map};

use super::catalog::IDENTITY_KEYS;
use super::convert::type_label;
use super::opts::Opts;
use super::script_err;
use crate::etcd::tls::{self, TlsParams, TlsVersion};
use crate::pki::{Ca, Cert};
use crate::session::{Dial, IdentitySpec, TrustKind};

/// The longest `timeout_ms` a call may be given (a minute).
pub const MAX_CALL_TIMEOUT_MS: i64 = 60_000;

/// A client identity: a `Cert`, or a map of [`IDENTITY_KEYS`].
pub fn identity(d: &Dynamic, what: &str) -> Result<IdentitySpec, Box<EvalAltResult>> {
    if let Some(cert) = d.clone().try_cast::<Rc<Cert>>() {
        return Ok(IdentitySpec {
            cert: Some(cert),
            ..Default::default()
        });
    }
    let Some(map) = d.clone().try_cast::<Map>() else {
        return Err(script_err(format!(
            "{what}: the identity must be a Cert or a map of identity keys (see kv_set), got {}",
            type_label(d)
        )));
    };
    let o = Opts::new(&map, "identity", IDENTITY_KEYS)?;
    let server_name = o.string("server_name")?;
    if let Some(name) = &server_name {
        if !crate::pki::is_host_name(name) || name.starts_with("*.") {
            return Err(script_err(format!(
                "{what}: server_name `{name}` is not a DNS name or IP address"
            )));
        }
    }
    let dial = match o.string("dial")?.as_deref() {
        None => None,
        Some("ip") => Some(Dial::Ip),
        Some("name") => Some(Dial::Name),
        Some(other) => {
            return Err(script_err(format!(
                "{what}: dial `{other}` is not one of \"ip\" (the member's address) or \"name\" \
                 (its host name)"
            )))
        }
    };
    let timeout = o
        .int_in("timeout_ms", 1..=MAX_CALL_TIMEOUT_MS)?
        .map(|ms| std::time::Duration::from_millis(ms as u64));
    let login = match (o.string("user")?, o.string("password")?) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        _ => {
            return Err(script_err(format!(
                "{what}: an identity logs in with both `user` and `password`, or neither"
            )))
        }
    };
    let (trust_kind, trust) = trust(&o, what)?;
    Ok(IdentitySpec {
        login,
        timeout,
        trust_kind,
        trust,
        tls: tls_params(&o, what)?,
        cert: o.cert("cert")?,
        server_name,
        plaintext: o.bool("plaintext")?.unwrap_or(false),
        http_listener: listener(&o, what)?,
        dial,
    })
}

/// `ca` (a Ca, or "system" for the machine's trust store) and `insecure_skip_tls_verify`.
fn trust(o: &Opts, what: &str) -> Result<(TrustKind, Option<Rc<Ca>>), Box<EvalAltResult>> {
    let skip = o.bool("insecure_skip_tls_verify")?.unwrap_or(false);
    let system = matches!(o.get("ca"), Some(d) if d.is_string());
    if skip && o.get("ca").is_some() {
        return Err(script_err(format!(
            "{what}: give `ca` or `insecure_skip_tls_verify`, not both: a client that checks \
             nothing trusts no CA"
        )));
    }
    let kind = match (skip, system) {
        (true, _) => TrustKind::Nothing,
        (false, true) => {
            let word = o.string("ca")?.unwrap_or_default();
            if word != "system" {
                return Err(script_err(format!(
                    "{what}: `ca` must be a Ca (from ca() or bundle()) or \"system\" (the \
                     machine's trust store), got \"{word}\""
                )));
            }
            TrustKind::System
        }
        (false, false) => TrustKind::Ca,
    };
    let ca = match kind {
        TrustKind::Ca => o.ca("ca")?,
        _ => None,
    };
    Ok((kind, ca))
}

fn version(o: &Opts, key: &str, what: &str) -> Result<Option<TlsVersion>, Box<EvalAltResult>> {
    match o.string(key)? {
        None => Ok(None),
        Some(v) => TlsVersion::parse(&v).map(Some).ok_or_else(|| {
            script_err(format!(
                "{what}: `{key}` must be \"1.2\" or \"1.3\" (the client speaks no older TLS), got \"{v}\""
            ))
        }),
    }
}

/// `tls_min`, `tls_max` and `cipher_suites`.
fn tls_params(o: &Opts, what: &str) -> Result<TlsParams, Box<EvalAltResult>> {
    let min = version(o, "tls_min", what)?;
    let max = version(o, "tls_max", what)?;
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            return Err(script_err(format!(
                "{what}: `tls_min` {} is above `tls_max` {}",
                a.name(),
                b.name()
            )));
        }
    }
    let cipher_suites = o.strings("cipher_suites")?;
    if let Some(names) = &cipher_suites {
        if names.is_empty() {
            return Err(script_err(format!(
                "{what}: `cipher_suites` is empty; leave it out to offer every suite"
            )));
        }
        for n in names {
            if tls::suite(n).is_none() {
                return Err(script_err(format!(
                    "{what}: cipher suite `{n}` is not one the client has: {}",
                    tls::suite_names().join(", ")
                )));
            }
        }
    }
    Ok(TlsParams {
        min,
        max,
        cipher_suites,
    })
}

/// `listener`: "https" (the default, the member's TLS client port) or "http" (its plain-text
/// one, with `http_listener`).
fn listener(o: &Opts, what: &str) -> Result<bool, Box<EvalAltResult>> {
    match o.string("listener")?.as_deref() {
        None | Some("https") => Ok(false),
        Some("http") => Ok(true),
        Some(other) => Err(script_err(format!(
            "{what}: `listener` must be \"https\" (the member's TLS client port) or \"http\" \
             (its plain-text one), got \"{other}\""
        ))),
    }
}
