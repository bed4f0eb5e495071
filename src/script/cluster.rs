//! Cluster primitives: `cluster`, `spawn_member`, `wait_healthy`, `stop_member`, `kill_member`,
//! and the getters of `Cluster` and `Member`.

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::engine::def;
use super::opts::Opts;
use super::{script_err, with_session, Shared};
use crate::session::{ClusterId, ClusterSpec, MemberId, MemberOverrides, Target};

/// The target of an operation: a `Member` or a `Cluster`.
pub fn target(d: &Dynamic, what: &str) -> Result<Target, Box<EvalAltResult>> {
    if let Some(m) = d.clone().try_cast::<MemberId>() {
        Ok(Target::Member(m))
    } else if let Some(c) = d.clone().try_cast::<ClusterId>() {
        Ok(Target::Cluster(c))
    } else {
        Err(script_err(format!(
            "{what}: the target must be a Member or a Cluster, got {}",
            super::opts::type_label(d)
        )))
    }
}

fn cluster_spec(names: Array, opts: &Map) -> Result<ClusterSpec, Box<EvalAltResult>> {
    let o = Opts::new(
        opts,
        "cluster()",
        &[
            "ca",
            "cert",
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
            "health_timeout_ms",
        ],
    )?;
    let names = names
        .into_iter()
        .map(|n| {
            let label = super::opts::type_label(&n);
            n.into_string().map_err(|_| {
                script_err(format!(
                    "cluster(): member names must be strings, got {label}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ms = |key: &str, default: u64, max: u64| -> Result<u64, Box<EvalAltResult>> {
        Ok(o.int_in(key, 1..=max as i64)?.map_or(default, |v| v as u64))
    };
    Ok(ClusterSpec {
        names,
        ca: o.required("ca", o.ca("ca")?)?,
        cert: o.required("cert", o.cert("cert")?)?,
        client_cert_auth: o.bool("client_cert_auth")?.unwrap_or(true),
        peer_cert_auth: o.bool("peer_cert_auth")?.unwrap_or(true),
        token: o.string("token")?.unwrap_or_else(|| "etcd-cluster".into()),
        host: o.string("host")?.unwrap_or_else(|| "localhost".into()),
        client_ports: o.ports("client_ports")?,
        peer_ports: o.ports("peer_ports")?,
        heartbeat_ms: ms("heartbeat_ms", DEFAULT_HEARTBEAT_MS, MAX_HEARTBEAT_MS)?,
        election_ms: ms("election_ms", DEFAULT_ELECTION_MS, MAX_ELECTION_MS)?,
        args: etcd_args(&o, "cluster()")?,
        client_crl: o.bool("client_crl")?.unwrap_or(false),
        peer_crl: o.bool("peer_crl")?.unwrap_or(false),
        health_timeout: std::time::Duration::from_millis(ms(
            "health_timeout_ms",
            crate::limits::HEALTH_TIMEOUT.as_millis() as u64,
            crate::limits::MAX_HEALTH_TIMEOUT.as_millis() as u64,
        )?),
    })
}

/// etcd's heartbeat interval for script clusters: loopback needs no more, and elections are quick.
pub const DEFAULT_HEARTBEAT_MS: u64 = 25;
/// etcd's election timeout for script clusters (10 heartbeats, as etcd's own defaults).
pub const DEFAULT_ELECTION_MS: u64 = 250;
/// The longest heartbeat a script may ask for.
pub const MAX_HEARTBEAT_MS: u64 = 10_000;
/// The longest election timeout a script may ask for (etcd refuses more than 50 s).
pub const MAX_ELECTION_MS: u64 = 50_000;

/// The `args` option: extra etcd flags, none of which may name a path (see
/// [`crate::etcd::flags`]).
fn etcd_args(o: &Opts, what: &str) -> Result<Vec<String>, Box<EvalAltResult>> {
    let args = o.strings("args")?.unwrap_or_default();
    crate::etcd::flags::check(&args).map_err(|why| script_err(format!("{what}: args: {why}")))?;
    Ok(args)
}

/// What `spawn_member` and `member_add` may change for one member.
pub fn overrides(opts: &Map) -> Result<MemberOverrides, Box<EvalAltResult>> {
    let o = Opts::new(opts, "spawn_member()", &["cert", "ca", "args"])?;
    Ok(MemberOverrides {
        cert: o.cert("cert")?,
        ca: o.ca("ca")?,
        args: etcd_args(&o, "spawn_member()")?,
    })
}

/// Registers the cluster primitives.
pub fn register(engine: &mut Engine, shared: &Shared) {
    engine.register_type_with_name::<ClusterId>("Cluster");
    engine.register_type_with_name::<MemberId>("Member");

    let s = shared.clone();
    def(
        engine,
        "cluster",
        &["names: array", "opts: map", "Cluster"],
        "Plans a cluster: member names, free ports (unless given), URLs, the token, and the TLS\n\
         every member gets. Starts nothing. Options: `ca` and `cert` (required: the trusted CA and\n\
         the certificate members serve and dial peers with), `client_cert_auth` and\n\
         `peer_cert_auth` (default true), `token` (default \"etcd-cluster\"), `host` (the name in\n\
         URLs and expected in the server certificate, default \"localhost\"), `client_ports` and\n\
         `peer_ports` (pin ports, one per member), `heartbeat_ms` (25) and `election_ms` (250),\n\
         `client_crl` and `peer_crl` (give members the CA's CRL), `args` (extra etcd flags),\n\
         `health_timeout_ms` (how long `wait_healthy` waits, default 15000).\n\
         ```rhai\nlet c = cluster([\"infra1\", \"infra2\", \"infra3\"], #{ ca: ca, cert: server });\n```",
        move |names: Array, opts: Map| {
            let spec = cluster_spec(names, &opts)?;
            with_session(&s, |ss| Ok(ss.plan_cluster(spec)?))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "spawn_member",
        &["cluster: Cluster", "name: string", "Member"],
        "Starts one planned member as a real etcd process and returns once it serves its peer\n\
         port. A member that exits first fails with the class \"start failed\", quoting its log\n\
         (exit 4 unless an `expect_error` expects it); one that stays silent fails the run.\n\
         ```rhai\nfor name in c.names { spawn_member(c, name); }\n```",
        move |c: ClusterId, name: &str| {
            with_session(&s, |ss| {
                let m = ss.member(c, name)?;
                ss.spawn_member(m, &MemberOverrides::default())?;
                Ok(m)
            })
        },
    );
    let s = shared.clone();
    def(
        engine,
        "spawn_member",
        &["cluster: Cluster", "name: string", "overrides: map", "Member"],
        "Starts one member with overrides for it alone: `cert` (its serving and peer certificate),\n\
         `ca` (the CA it trusts), `args` (extra etcd flags). This is how a rogue member is made.\n\
         ```rhai\nspawn_member(c, \"infra3\", #{ cert: rogue_cert, ca: rogue_ca });\n```",
        move |c: ClusterId, name: &str, opts: Map| {
            let over = overrides(&opts)?;
            with_session(&s, |ss| {
                let m = ss.member(c, name)?;
                ss.spawn_member(m, &over)?;
                Ok(m)
            })
        },
    );
    let s = shared.clone();
    def(
        engine,
        "wait_healthy",
        &["target: Member | Cluster"],
        "Waits until every running member of the target answers a linearizable read (so the\n\
         cluster has a leader and a quorum). Bounded (15 s, or `health_timeout_ms`). It fails\n\
         sooner, with the refusal's class, only when refusals between a waited-for member and\n\
         its peers leave that member no quorum, or once the cluster has had 20 election\n\
         timeouts (at least 5 s) and such a refusal is still in the way.\n\
         ```rhai\nwait_healthy(c);\n```",
        move |t: Dynamic| {
            let t = target(&t, "wait_healthy()")?;
            with_session(&s, |ss| ss.wait_healthy(t, None))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "wait_healthy",
        &["target: Member | Cluster", "identity: Cert | Map"],
        "Waits as `wait_healthy(target)`, probing as `identity` (see `kv_set`): for clusters that\n\
         admit only some client certificates, such as with `--client-cert-allowed-hostname`.\n\
         ```rhai\nwait_healthy(c, allowed_client);\n```",
        move |t: Dynamic, id: Dynamic| {
            let t = target(&t, "wait_healthy()")?;
            let id = super::kv::identity(&id, "wait_healthy()")?;
            with_session(&s, |ss| ss.wait_healthy(t, Some(&id)))
        },
    );
    let s = shared.clone();
    def(
        engine,
        "peer_refusal",
        &["member: Member"],
        "Fails with the first peer connection a member refused since a member of its cluster last\n\
         started (a newcomer's, typically): a peer's client certificate it refused, or a peer's\n\
         server certificate it refused while dialing, attributed from its log; waits up to 3 s\n\
         for one and succeeds if none came. Refused clients never count. For `expect_error`: it\n\
         shows which member turned the intruder away, and why.\n\
         ```rhai\nexpect_error(|| peer_refusal(c.member(\"infra1\")), \"revoked\");\n```",
        move |m: MemberId| with_session(&s, |ss| ss.peer_refusal(m)),
    );
    let s = shared.clone();
    def(
        engine,
        "stop_member",
        &["member: Member"],
        "Stops a member gracefully: SIGTERM, then SIGKILL if it has not exited within 5 s.\n\
         ```rhai\nstop_member(c.member(\"infra3\"));\n```",
        move |m: MemberId| with_session(&s, |ss| Ok(ss.stop_member(m)?)),
    );
    let s = shared.clone();
    def(
        engine,
        "kill_member",
        &["member: Member"],
        "Kills a member at once (SIGKILL), as a crash would.\n\
         ```rhai\nkill_member(c.member(\"infra1\"));\n```",
        move |m: MemberId| with_session(&s, |ss| Ok(ss.kill_member(m)?)),
    );
    let s = shared.clone();
    def(
        engine,
        "member",
        &["cluster: Cluster", "name: string", "Member"],
        "A planned member by name (also as a method: `c.member(\"infra1\")`).\n\
         ```rhai\nlet m1 = c.member(\"infra1\");\n```",
        move |c: ClusterId, name: &str| with_session(&s, |ss| Ok(ss.member(c, name)?)),
    );

    // `print(c)` and `${m}` show the names the script chose.
    let s = shared.clone();
    engine.register_fn("to_string", move |c: &mut ClusterId| {
        let name = s.with_session_opt(|ss| ss.cluster_name(*c));
        format!("Cluster({})", name.unwrap_or_default())
    });
    let s = shared.clone();
    engine.register_fn("to_string", move |m: &mut MemberId| {
        let name = s.with_session_opt(|ss| ss.member_name(*m));
        format!("Member({})", name.unwrap_or_default())
    });
    let s = shared.clone();
    engine.register_get("names", move |c: &mut ClusterId| {
        with_session(&s, |ss| {
            Ok(ss
                .members(*c)
                .into_iter()
                .map(|m| Dynamic::from(ss.member_name(m)))
                .collect::<Array>())
        })
    });
    let s = shared.clone();
    engine.register_get("members", move |c: &mut ClusterId| {
        with_session(&s, |ss| {
            Ok(ss
                .members(*c)
                .into_iter()
                .map(Dynamic::from)
                .collect::<Array>())
        })
    });
    let s = shared.clone();
    engine.register_get("name", move |c: &mut ClusterId| {
        with_session(&s, |ss| Ok(ss.cluster_name(*c)))
    });
    let s = shared.clone();
    engine.register_get("name", move |m: &mut MemberId| {
        with_session(&s, |ss| Ok(ss.member_name(*m)))
    });
    let s = shared.clone();
    engine.register_get("client_url", move |m: &mut MemberId| {
        with_session(&s, |ss| Ok(ss.client_url(*m)))
    });
}
