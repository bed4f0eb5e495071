//! Conversions from script values to the domain's, in one place: targets, identities, member
//! overrides, etcd flags, and the names scripts know types by. Primitive families import this
//! module and never each other.

use std::rc::Rc;

use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::opts::Opts;
use super::script_err;
use crate::fault::Fault;
use crate::pki::{Ca, Cert};
use crate::session::{ClusterId, HostSpec, MemberId, MemberOverrides, Target};

/// The target of an operation: a `Member` or a `Cluster`.
pub fn target(d: &Dynamic) -> Option<Target> {
    if let Some(m) = d.clone().try_cast::<MemberId>() {
        Some(Target::Member(m))
    } else {
        d.clone().try_cast::<ClusterId>().map(Target::Cluster)
    }
}

pub use super::identity::{identity, MAX_CALL_TIMEOUT_MS};

/// The `hosts` option of `cluster`: one host per member, each an address (`"198.18.0.11"`) or a
/// map `#{ ip, name }`.
pub fn hosts(d: &Dynamic) -> Result<Vec<HostSpec>, Box<EvalAltResult>> {
    let wrong = |got: &Dynamic| {
        script_err(format!(
            "cluster(): option `hosts` must be an array with one host per member, each an address \
             such as \"198.18.0.11\" or a map #{{ ip, name }}, got {}",
            type_label(got)
        ))
    };
    let Some(items) = d.clone().try_cast::<Array>() else {
        return Err(wrong(d));
    };
    items
        .iter()
        .map(|item| {
            let (ip, name) = if let Some(map) = item.clone().try_cast::<Map>() {
                let o = Opts::new(&map, "cluster(): a host", &["ip", "name"])?;
                (o.required("ip", o.string("ip")?)?, o.string("name")?)
            } else if item.is_string() {
                (item.to_string(), None)
            } else {
                return Err(wrong(item));
            };
            let ip = ip.parse().map_err(|_| {
                script_err(format!(
                    "cluster(): host address `{ip}` is not an IPv4 address"
                ))
            })?;
            if let Some(n) = &name {
                let ok = crate::pki::is_host_name(n)
                    && n.parse::<std::net::IpAddr>().is_err()
                    && !n.starts_with("*.");
                if !ok {
                    return Err(script_err(format!(
                        "cluster(): host name `{n}` is not a DNS name"
                    )));
                }
                if n.eq_ignore_ascii_case("localhost") {
                    return Err(script_err(
                        "cluster(): a host may not be called `localhost` (every host is its own \
                         localhost)",
                    ));
                }
            }
            Ok(HostSpec { ip, name })
        })
        .collect()
}

/// The keys of member overrides (`spawn_member`, `member_add`).
pub const OVERRIDE_KEYS: &[&str] = &["cert", "peer_cert", "peer_client_cert", "ca", "args"];

/// The `args` option: extra etcd flags, none of which may name a path (see
/// [`crate::etcd::flags`]).
pub fn etcd_args(o: &Opts, what: &str) -> Result<Vec<String>, Box<EvalAltResult>> {
    let args = o.strings("args")?.unwrap_or_default();
    crate::etcd::flags::check(&args).map_err(|why| script_err(format!("{what}: args: {why}")))?;
    Ok(args)
}

/// What `spawn_member` and `member_add` may change for one member.
pub fn overrides(opts: &Map, what: &'static str) -> Result<MemberOverrides, Box<EvalAltResult>> {
    let o = Opts::new(opts, what, OVERRIDE_KEYS)?;
    Ok(MemberOverrides {
        cert: o.cert("cert")?,
        peer_cert: o.cert("peer_cert")?,
        peer_client_cert: o.cert("peer_client_cert")?,
        ca: o.ca("ca")?,
        args: etcd_args(&o, what)?,
    })
}

/// A value as a script would print it, where no engine is at hand to ask (a thrown value in
/// the run's error): certificates and CAs by name, an error by its message, other values of
/// ours by their type.
pub fn show_value(d: &Dynamic) -> String {
    if let Some(ca) = d.clone().try_cast::<Rc<Ca>>() {
        format!("Ca({})", ca.name)
    } else if let Some(cert) = d.clone().try_cast::<Rc<Cert>>() {
        format!("Cert({})", cert.name)
    } else if let Some(fault) = d.clone().try_cast::<Rc<Fault>>() {
        fault.to_string()
    } else if d.is_array() {
        let items: Vec<String> = d.clone().cast::<Array>().iter().map(show_value).collect();
        format!("[{}]", items.join(", "))
    } else if d.is_map() {
        let items: Vec<String> = d
            .clone()
            .cast::<Map>()
            .iter()
            .map(|(k, v)| format!("{k}: {}", show_value(v)))
            .collect();
        format!("#{{{}}}", items.join(", "))
    } else if d.is_string() {
        format!("{:?}", d.to_string())
    } else if type_label(d) != d.type_name() {
        type_label(d).to_owned()
    } else {
        d.to_string()
    }
}

/// The name a script knows a value's type by: `Ca`, `Cert`, `Cluster`, `Member`, `Error`, or
/// Rhai's own (`string`, `i64`, `map`...); never a Rust type name.
pub fn type_label(d: &Dynamic) -> &'static str {
    if d.is::<Rc<Ca>>() {
        "Ca"
    } else if d.is::<Rc<Cert>>() {
        "Cert"
    } else if d.is::<ClusterId>() {
        "Cluster"
    } else if d.is::<MemberId>() {
        "Member"
    } else if d.is::<Rc<Fault>>() {
        "Error"
    } else if d.is::<crate::session::LoadId>() {
        "Load"
    } else if d.is::<crate::session::WatchId>() {
        "Watch"
    } else if d.is::<crate::session::LeaseId>() {
        "Lease"
    } else if d.is_int() {
        "int"
    } else if d.is_float() {
        "float"
    } else if d.type_name().contains("::") {
        "a value of another kind"
    } else {
        d.type_name()
    }
}
