//! Fault primitives: `pause_member`, `resume_member`, `restart_member`, `move_leader`,
//! `partition`, `heal`, `sleep`.

use super::catalog::{opt, req, Primitive, Ty};
use super::convert::{overrides, OVERRIDE_KEYS};
use super::registrar::Registrar;

const PAUSE_MEMBER: Primitive = Primitive {
    name: "pause_member",
    params: &[req("member", Ty::Member)],
    returns: Ty::Unit,
    doc: "Pauses a member (SIGSTOP), as a stalled machine would: its connections stay open and\n\
          nothing answers on them, so calls to it meet their bound (\"timeout\"; give the\n\
          identity `timeout_ms` to wait less than 5 s), and its peers elect another leader if it\n\
          led. `resume_member` lets it go on.",
    example: "pause_member(c.member(\"infra1\"));",
};

const RESUME_MEMBER: Primitive = Primitive {
    name: "resume_member",
    params: &[req("member", Ty::Member)],
    returns: Ty::Unit,
    doc: "Lets a paused member go on (SIGCONT).",
    example: "resume_member(c.member(\"infra1\"));",
};

const RESTART_MEMBER: Primitive = Primitive {
    name: "restart_member",
    params: &[
        req("member", Ty::Member),
        opt("overrides", Ty::Options(OVERRIDE_KEYS)),
    ],
    returns: Ty::Member,
    doc: "Stops a running member gracefully (as `stop_member`) and starts it again on the same\n\
          data dir, so it keeps its keys and its place in the cluster, with the overrides given\n\
          now (as `spawn_member`: a new certificate, say). A stopped member is only started.",
    example: "restart_member(c.member(\"infra2\"), #{ cert: renewed });",
};

const MOVE_LEADER: Primitive = Primitive {
    name: "move_leader",
    params: &[req("member", Ty::Member)],
    returns: Ty::Unit,
    doc: "Makes `member` the leader of its cluster (etcd's MoveLeader, asked of the current\n\
          leader), so that a script can fault the leader by name. Nothing happens if it leads\n\
          already.",
    example: "move_leader(c.member(\"infra1\"));",
};

const PARTITION: Primitive = Primitive {
    name: "partition",
    params: &[
        req("group", Ty::Array),
        req("other", Ty::Array),
        opt("another", Ty::Array),
    ],
    returns: Ty::Unit,
    doc: "Cuts members on hosts of their own (see `cluster`'s `hosts`) into groups that cannot\n\
          reach each other: what one sends to another group is dropped, on new connections and\n\
          open ones, with no error to either side, as a broken switch would. Our client still\n\
          reaches every member. A new partition replaces the one in force; `heal()` undoes it.",
    example: "partition([c.member(\"infra1\")], [c.member(\"infra2\"), c.member(\"infra3\")]);",
};

const HEAL: Primitive = Primitive {
    name: "heal",
    params: &[],
    returns: Ty::Unit,
    doc: "Undoes every `partition`: every host reaches every other again.",
    example: "heal();",
};

/// The longest `sleep` (a minute); the run's `--timeout` bounds it too.
pub const MAX_SLEEP_MS: i64 = 60_000;

const SLEEP: Primitive = Primitive {
    name: "sleep",
    params: &[req("ms", Ty::Int)],
    returns: Ty::Unit,
    doc: "Waits `ms` milliseconds (1 to 60000, and never past the run's `--timeout`), for a\n\
          script that must let time pass: a certificate to expire, a load to run.",
    example: "sleep(200);",
};

/// Registers the fault primitives.
pub fn register(r: &mut Registrar) {
    r.primitive(PAUSE_MEMBER, |c| {
        let m = c.member(0)?;
        c.session(|ss| Ok(ss.pause_member(m)?))
    });
    r.primitive(RESUME_MEMBER, |c| {
        let m = c.member(0)?;
        c.session(|ss| Ok(ss.resume_member(m)?))
    });
    r.primitive(RESTART_MEMBER, |c| {
        let m = c.member(0)?;
        let over = overrides(&c.options(1)?, "restart_member()")?;
        c.session(|ss| {
            ss.restart_member(m, &over)?;
            Ok(m)
        })
    });
    r.primitive(MOVE_LEADER, |c| {
        let m = c.member(0)?;
        c.session(|ss| ss.move_leader(m))
    });
    r.primitive(PARTITION, |c| {
        let mut groups = vec![c.members(0)?, c.members(1)?];
        if c.get(2).is_some() {
            groups.push(c.members(2)?);
        }
        c.session(|ss| Ok(ss.partition(&groups)?))
    });
    r.primitive(HEAL, |c| c.session(|ss| Ok(ss.heal()?)));
    // Rhai's own `sleep(seconds)` would sleep past --timeout: ours takes its place for every
    // argument type a script could give it.
    let signatures = [
        std::any::TypeId::of::<rhai::INT>(),
        std::any::TypeId::of::<rhai::FLOAT>(),
        std::any::TypeId::of::<rhai::Dynamic>(),
    ]
    .into_iter()
    .map(|t| vec![t])
    .collect();
    r.primitive_as(SLEEP, signatures, |c| {
        let ms = c.int_in(0, 1..=MAX_SLEEP_MS)? as u64;
        c.session(|ss| Ok(ss.sleep(ms)?))
    });
}
