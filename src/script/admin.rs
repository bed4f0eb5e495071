//! Membership primitives: `member_add`, `member_list`, `member_update`, `member_remove`, each
//! acting as an identity (by default the cluster's own admin certificate, which is no user of
//! the script's).

use rhai::{Array, Dynamic, Map};

use super::catalog::{opt, req, Primitive, Ty};
use super::convert::{identity, overrides};
use super::registrar::Registrar;

/// The options of `member_add`: a member's overrides, and the identity to ask as.
const MEMBER_ADD_KEYS: &[&str] = &[
    "cert",
    "peer_cert",
    "peer_client_cert",
    "ca",
    "args",
    "acting_as",
];

const MEMBER_ADD: Primitive = Primitive {
    name: "member_add",
    params: &[
        req("cluster", Ty::Cluster),
        req("name", Ty::Str),
        opt("overrides", Ty::Options(MEMBER_ADD_KEYS)),
    ],
    returns: Ty::Member,
    doc: "Adds a member to a running cluster (etcd's `member add`, through its first running member)\n\
          and starts it with `--initial-cluster-state existing`; returns once it serves its peer\n\
          port. Overrides as `spawn_member` takes (`cert`, `ca`, `args`...), and `acting_as`:\n\
          the identity that asks (by default a certificate of the cluster's own, whose CN is no\n\
          user: it may change the membership until `auth_enable`, and after it only root may).",
    example: "let m4 = member_add(c, \"infra4\");\nwait_healthy(m4);\n\
              expect_error(|| member_add(c, \"rogue\", #{ cert: rogue_cert }), \"start failed\");\n\
              expect_error(|| member_add(c, \"m4\", #{ acting_as: alice }), \"permission denied\");",
};

const MEMBER_LIST: Primitive = Primitive {
    name: "member_list",
    params: &[req("target", Ty::Target), opt("identity", Ty::Identity)],
    returns: Ty::Array,
    doc: "The names of the cluster's members as etcd lists them, asked through the target as\n\
          `identity`, sorted (a member added but not started yet is \"(unstarted)\"). etcd 3.4\n\
          and 3.5 list the members to any client that may connect, whatever its RBAC roles.",
    example: "assert_eq(member_list(c, alice), [\"infra1\", \"infra2\", \"infra3\"]);",
};

const MEMBER_UPDATE: Primitive = Primitive {
    name: "member_update",
    params: &[req("member", Ty::Member), opt("acting_as", Ty::Identity)],
    returns: Ty::Unit,
    doc: "Asks another running member of its cluster, as `acting_as` (by default a certificate\n\
          of the cluster's own, as `member_add`), to update `member`'s peer URLs to what they\n\
          are: nothing changes, but etcd checks the permission as for any update. With auth on,\n\
          only root may.",
    example:
        "expect_error(|| member_update(c.member(\"infra2\"), alice), \"permission denied\");\n\
              member_update(c.member(\"infra2\"), root);",
};

const MEMBER_REMOVE: Primitive = Primitive {
    name: "member_remove",
    params: &[req("member", Ty::Member), opt("acting_as", Ty::Identity)],
    returns: Ty::Unit,
    doc: "Asks another running member of its cluster, as `acting_as` (by default a certificate\n\
          of the cluster's own, as `member_add`), to remove `member` from the cluster; once\n\
          removed, its process is stopped. With auth on, etcd lets only root change the\n\
          membership.",
    example:
        "expect_error(|| member_remove(c.member(\"infra3\"), alice), \"permission denied\");\n\
              member_remove(c.member(\"infra3\"), root);",
};

/// Registers the membership primitives.
pub fn register(r: &mut Registrar) {
    r.primitive(MEMBER_ADD, |c| {
        let (cluster, name) = (c.cluster(0)?, c.string(1)?);
        let mut opts: Map = c.options(2)?;
        super::opts::Opts::new(&opts, "member_add()", MEMBER_ADD_KEYS)?;
        let acting_as = match opts.remove("acting_as") {
            Some(d) => Some(identity(&d, "member_add(): acting_as")?),
            None => None,
        };
        let over = overrides(&opts, "member_add()")?;
        c.session(|ss| ss.member_add(cluster, &name, &over, acting_as.as_ref()))
    });
    r.primitive(MEMBER_LIST, |c| {
        let (t, id) = (c.target(0)?, c.identity(1)?);
        let names = c.session(|ss| ss.member_list(t, &id))?;
        Ok(names.into_iter().map(Dynamic::from).collect::<Array>())
    });
    r.primitive(MEMBER_UPDATE, |c| {
        let m = c.member(0)?;
        let id = match c.get(1) {
            Some(d) => Some(identity(d, "member_update()")?),
            None => None,
        };
        c.session(|ss| ss.member_update(m, id.as_ref()))
    });
    r.primitive(MEMBER_REMOVE, |c| {
        let m = c.member(0)?;
        let id = match c.get(1) {
            Some(d) => Some(identity(d, "member_remove()")?),
            None => None,
        };
        c.session(|ss| ss.member_remove(m, id.as_ref()))
    });
}
