//! Cluster primitives: `cluster`, `spawn_member`, `spawn_members`, `wait_healthy`, `peer_refusal`, `stop_member`,
//! `kill_member`, `member`, and the properties of `Cluster` and `Member`.

use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::catalog::{opt, prop, req, Primitive, Ty};
use super::convert::{etcd_args, overrides, type_label, OVERRIDE_KEYS};
use super::opts::Opts;
use super::registrar::Registrar;
use super::{script_err, with_session, Shared};
use crate::session::{ClusterId, ClusterSpec, MemberId, MemberOverrides};

/// The options of `cluster`.
const CLUSTER_KEYS: &[&str] = &[
    "ca",
    "cert",
    "certs",
    "hosts",
    "client_cert_auth",
    "peer_cert_auth",
    "token",
    "host",
    "client_ports",
    "peer_ports",
    "heartbeat_ms",
    "election_ms",
    "args",
    "client_crl",
    "peer_crl",
    "http_listener",
    "health_timeout_ms",
];

/// An array of member names, for `what` (`"cluster()"`).
fn member_names(names: Array, what: &str) -> Result<Vec<String>, Box<EvalAltResult>> {
    names
        .into_iter()
        .map(|n| {
            let label = type_label(&n);
            n.into_string().map_err(|_| {
                script_err(format!("{what}: member names must be strings, got {label}"))
            })
        })
        .collect()
}

fn cluster_spec(names: Array, opts: &Map) -> Result<ClusterSpec, Box<EvalAltResult>> {
    let o = Opts::new(opts, "cluster()", CLUSTER_KEYS)?;
    let names = member_names(names, "cluster()")?;
    let ms = |key: &str, default: u64, max: u64| -> Result<u64, Box<EvalAltResult>> {
        Ok(o.int_in(key, 1..=max as i64)?.map_or(default, |v| v as u64))
    };
    let n = names.len();
    Ok(ClusterSpec {
        names,
        ca: o.required("ca", o.ca("ca")?)?,
        certs: match (o.cert("cert")?, o.certs("certs")?) {
            (Some(one), None) => vec![one; n],
            (None, Some(each)) => each,
            (Some(_), Some(_)) => {
                return Err(script_err(
                    "cluster(): give `cert` (one for every member) or `certs` (one per member), not both",
                ))
            }
            (None, None) => {
                return Err(script_err(
                    "cluster(): option `cert` (one for every member) or `certs` (one per member) is required",
                ))
            }
        },
        hosts: o.raw("hosts").map(super::convert::hosts).transpose()?,
        client_cert_auth: o.bool("client_cert_auth")?.unwrap_or(true),
        peer_cert_auth: o.bool("peer_cert_auth")?.unwrap_or(true),
        token: o.string("token")?.unwrap_or_else(|| "etcd-cluster".into()),
        host: o.string("host")?.unwrap_or_else(|| DEFAULT_HOST.into()),
        client_ports: o.ports("client_ports")?,
        peer_ports: o.ports("peer_ports")?,
        heartbeat_ms: ms("heartbeat_ms", DEFAULT_HEARTBEAT_MS, MAX_HEARTBEAT_MS)?,
        election_ms: ms("election_ms", DEFAULT_ELECTION_MS, MAX_ELECTION_MS)?,
        args: etcd_args(&o, "cluster()")?,
        client_crl: o.bool("client_crl")?.unwrap_or(false),
        peer_crl: o.bool("peer_crl")?.unwrap_or(false),
        http_listener: o.bool("http_listener")?.unwrap_or(false),
        health_timeout: std::time::Duration::from_millis(ms(
            "health_timeout_ms",
            crate::limits::HEALTH_TIMEOUT.as_millis() as u64,
            crate::limits::MAX_HEALTH_TIMEOUT.as_millis() as u64,
        )?),
    })
}

/// The host in loopback members' URLs unless `host` says otherwise.
pub const DEFAULT_HOST: &str = "localhost";

/// etcd's heartbeat interval for script clusters: loopback needs no more, and elections are quick.
pub const DEFAULT_HEARTBEAT_MS: u64 = 25;
/// etcd's election timeout for script clusters (10 heartbeats, as etcd's own defaults).
pub const DEFAULT_ELECTION_MS: u64 = 250;
/// The longest heartbeat a script may ask for.
pub const MAX_HEARTBEAT_MS: u64 = 10_000;
/// The longest election timeout a script may ask for (etcd refuses more than 50 s).
pub const MAX_ELECTION_MS: u64 = 50_000;

const CLUSTER: Primitive = Primitive {
    name: "cluster",
    params: &[req("names", Ty::Array), req("opts", Ty::Options(CLUSTER_KEYS))],
    returns: Ty::Cluster,
    doc: "Plans a cluster: member names, free ports (unless given), URLs, the token, and the TLS\n\
          every member gets. Starts nothing. Options: `ca` (required: the trusted CA), `cert` (the\n\
          certificate every member serves and dials peers with) or `certs` (one per member, in\n\
          order), `hosts` (one per member: an address in 198.18.0.0/15 or `#{ ip, name }`; each\n\
          member then runs on a host of its own, a network namespace with that address, listening\n\
          on 2379 and 2380, advertising its name if it has one, else its address; names resolve\n\
          from the run's hosts file; needs root), `client_cert_auth` (default true;\n\
          false gives etcd no client CA at all) and `peer_cert_auth` (default true), `token`\n\
          (default \"etcd-cluster\"), `host` (the name in URLs and expected in the server\n\
          certificate, default \"localhost\"), `client_ports` and `peer_ports` (pin ports, one per\n\
          member), `heartbeat_ms` (25) and `election_ms` (250), `client_crl` and `peer_crl` (give\n\
          members the CA's CRL), `args` (extra etcd flags; none that names a file or directory),\n\
          `health_timeout_ms` (how long `wait_healthy` waits, default 15000), `http_listener`\n\
          (true: each member also serves clients in plain text on a port of its own, an\n\
          `http://` client URL beside the `https://` one; an identity with `listener: \"http\"`\n\
          dials it).",
    example: "let c = cluster([\"infra1\", \"infra2\", \"infra3\"], #{ ca: ca, cert: server });\n\
              let c = cluster([\"a\", \"b\"], #{ ca: ca, certs: [a, b], hosts: [\"198.18.0.11\", \"198.18.0.12\"] });",
};

const SPAWN_MEMBER: Primitive = Primitive {
    name: "spawn_member",
    params: &[
        req("cluster", Ty::Cluster),
        req("name", Ty::Str),
        opt("overrides", Ty::Options(OVERRIDE_KEYS)),
    ],
    returns: Ty::Member,
    doc: "Starts one planned member as a real etcd process and returns once it serves its peer\n\
          port. A member that exits first fails with the class \"start failed\", quoting its log\n\
          (exit 4 unless an `expect_error` expects it); one that stays silent fails the run.\n\
          Overrides for this member alone: `cert` (its serving certificate, and its peer\n\
          certificate unless `peer_cert` is given), `peer_cert` (the certificate it serves its\n\
          peer port with and presents when it dials peers: `--peer-cert-file`),\n\
          `peer_client_cert` (etcd 3.5 only: the certificate it dials peers with instead,\n\
          `--peer-client-cert-file`; refused on 3.4), `ca` (the CA it\n\
          trusts), `args` (extra etcd flags). This is how a rogue member is made. A stopped member\n\
          starts again on its data dir.",
    example: "for name in c.names { spawn_member(c, name); }\n\
              spawn_member(c, \"infra3\", #{ cert: rogue_cert, ca: rogue_ca });",
};

const SPAWN_MEMBERS: Primitive = Primitive {
    name: "spawn_members",
    params: &[req("cluster", Ty::Cluster), opt("names", Ty::Array)],
    returns: Ty::Unit,
    doc: "Starts several members at once, as separate terminals would: every member of the\n\
          cluster in plan order, or those named, in that order. Each is launched as soon as the\n\
          one before it has passed etcd's bootstrap check (a peer still booting would hold that\n\
          check for a second), and the call returns once all serve their peer ports. It ends as\n\
          `spawn_member` called for each in turn would: the same transcript, line for line; on\n\
          the first that fails, those before it run, the call fails with that one's error, and\n\
          those after it are stopped again (never started, if they had not run before). Members\n\
          that need overrides start with `spawn_member`.",
    example: "spawn_members(c);\nspawn_members(c, [\"infra2\", \"infra3\"]);",
};

const WAIT_HEALTHY: Primitive = Primitive {
    name: "wait_healthy",
    params: &[req("target", Ty::Target), opt("identity", Ty::Identity)],
    returns: Ty::Unit,
    doc: "Waits until every running member of the target answers a linearizable read (so the\n\
          cluster has a leader and a quorum), probing as `identity` if given (see `kv_set`).\n\
          Bounded (15 s, or `health_timeout_ms`). It fails sooner, with the refusal's class,\n\
          only when refusals between a waited-for member and its peers (each refusing the\n\
          other's connections) leave that member no quorum.",
    example: "wait_healthy(c);\nwait_healthy(m1, allowed_client);",
};

const PEER_REFUSAL: Primitive = Primitive {
    name: "peer_refusal",
    params: &[req("member", Ty::Member)],
    returns: Ty::Unit,
    doc:
        "Fails with the first peer connection a member refused since a member of its cluster last\n\
          started (a newcomer's, typically): a peer's client certificate it refused, or a peer's\n\
          server certificate it refused while dialing, attributed from its log; waits up to 3 s\n\
          for one and succeeds if none came. Refused clients never count. For `expect_error`: it\n\
          shows which member turned the intruder away, and why.",
    example: "expect_error(|| peer_refusal(c.member(\"infra1\")), \"revoked\");",
};

const STOP_MEMBER: Primitive = Primitive {
    name: "stop_member",
    params: &[req("member", Ty::Member)],
    returns: Ty::Unit,
    doc:
        "Stops a member gracefully: SIGTERM, then SIGKILL if it has not exited within 7 s and two\n\
          election timeouts (etcd's own bound for handing its leadership over is 5 s and two), or\n\
          at the run's `--timeout`. The last member running in its cluster is first left to step\n\
          down, so that it does not try to hand its leadership to a peer that is gone. etcd's\n\
          graceful stop ends with up to a second waiting for its peers to hang up, after its\n\
          server has stopped; etcdscript kills it once it is there, which loses nothing. Calls\n\
          through it are then refused (`unavailable`).",
    example: "stop_member(c.member(\"infra3\"));",
};

const KILL_MEMBER: Primitive = Primitive {
    name: "kill_member",
    params: &[req("member", Ty::Member)],
    returns: Ty::Unit,
    doc: "Kills a member at once (SIGKILL), as a crash would.",
    example: "kill_member(c.member(\"infra1\"));",
};

const MEMBER: Primitive = Primitive {
    name: "member",
    params: &[req("cluster", Ty::Cluster), req("name", Ty::Str)],
    returns: Ty::Member,
    doc: "A planned member by name (also as a method: `c.member(\"infra1\")`).",
    example: "let m1 = c.member(\"infra1\");",
};

/// Registers the cluster primitives and the properties of `Cluster` and `Member`.
pub fn register(r: &mut Registrar) {
    r.engine().register_type_with_name::<ClusterId>("Cluster");
    r.engine().register_type_with_name::<MemberId>("Member");
    // `print(c)` and `${m}` show the names the script chose.
    let s = r.shared().clone();
    r.engine()
        .register_fn("to_string", move |c: &mut ClusterId| {
            let name = s.with_session_opt(|ss| ss.cluster_name(*c));
            format!("Cluster({})", name.unwrap_or_default())
        });
    let s = r.shared().clone();
    r.engine()
        .register_fn("to_string", move |m: &mut MemberId| {
            let name = s.with_session_opt(|ss| ss.member_name(*m));
            format!("Member({})", name.unwrap_or_default())
        });

    r.primitive(CLUSTER, |c| {
        let spec = cluster_spec(c.array(0)?, &c.map(1)?)?;
        c.session(|ss| Ok(ss.plan_cluster(spec)?))
    });
    r.primitive(SPAWN_MEMBER, |c| {
        let (cluster, name) = (c.cluster(0)?, c.string(1)?);
        let over = overrides(&c.options(2)?, "spawn_member()")?;
        c.session(|ss| {
            let m = ss.member(cluster, &name)?;
            ss.spawn_member(m, &over)?;
            Ok(m)
        })
    });
    r.primitive(SPAWN_MEMBERS, |c| {
        let cluster = c.cluster(0)?;
        let names = match c.get(1) {
            Some(_) => Some(member_names(c.array(1)?, "spawn_members()")?),
            None => None,
        };
        c.session(|ss| {
            let members = match names {
                None => ss.members(cluster),
                Some(names) if names.is_empty() => {
                    return Err(crate::error::Error::Script(
                        "spawn_members(): the list of member names is empty".into(),
                    )
                    .into())
                }
                Some(names) => names
                    .iter()
                    .map(|n| ss.member(cluster, n))
                    .collect::<crate::error::Result<Vec<_>>>()?,
            };
            let list: Vec<_> = members
                .into_iter()
                .map(|m| (m, MemberOverrides::default()))
                .collect();
            ss.spawn_members(&list)
        })
    });
    r.primitive(WAIT_HEALTHY, |c| {
        let t = c.target(0)?;
        let probe = match c.get(1) {
            Some(_) => Some(c.identity(1)?),
            None => None,
        };
        c.session(|ss| ss.wait_healthy(t, probe.as_ref()))
    });
    r.primitive(PEER_REFUSAL, |c| {
        let m = c.member(0)?;
        c.session(|ss| ss.peer_refusal(m))
    });
    r.primitive(STOP_MEMBER, |c| {
        let m = c.member(0)?;
        c.session(|ss| Ok(ss.stop_member(m)?))
    });
    r.primitive(KILL_MEMBER, |c| {
        let m = c.member(0)?;
        c.session(|ss| Ok(ss.kill_member(m)?))
    });
    r.primitive(MEMBER, |c| {
        let (cluster, name) = (c.cluster(0)?, c.string(1)?);
        c.session(|ss| Ok(ss.member(cluster, &name)?))
    });

    r.property(
        prop(
            Ty::Cluster,
            "names",
            Ty::Array,
            "the member names, in plan order",
        ),
        |s, c: &ClusterId| {
            session(s, |ss| {
                ss.members(*c)
                    .into_iter()
                    .map(|m| Dynamic::from(ss.member_name(m)))
                    .collect::<Array>()
            })
        },
    );
    r.property(
        prop(
            Ty::Cluster,
            "members",
            Ty::Array,
            "the members, in plan order",
        ),
        |s, c: &ClusterId| {
            session(s, |ss| {
                ss.members(*c)
                    .into_iter()
                    .map(Dynamic::from)
                    .collect::<Array>()
            })
        },
    );
    r.property(
        prop(Ty::Cluster, "name", Ty::Str, "the cluster's token"),
        |s, c: &ClusterId| session(s, |ss| ss.cluster_name(*c)),
    );
    r.property(
        prop(Ty::Member, "name", Ty::Str, "the member's name"),
        |s, m: &MemberId| session(s, |ss| ss.member_name(*m)),
    );
    r.property(
        prop(
            Ty::Member,
            "client_url",
            Ty::Str,
            "its client URL (ports are the runtime's: keep it out of the transcript)",
        ),
        |s, m: &MemberId| session(s, |ss| ss.client_url(*m)),
    );
    r.property(
        prop(
            Ty::Member,
            "peer_url",
            Ty::Str,
            "its peer URL (ports are the runtime's: keep it out of the transcript)",
        ),
        |s, m: &MemberId| {
            session(s, |ss| ss.peer_url(*m))?.map_err(|e| super::script_err(e.to_string()))
        },
    );
}

/// A property read from the session.
fn session<T>(
    s: &Shared,
    f: impl FnOnce(&crate::session::Session) -> T,
) -> Result<T, Box<EvalAltResult>> {
    with_session(s, |ss| Ok(f(ss)))
}
