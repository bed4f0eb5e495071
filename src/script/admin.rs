//! RBAC and membership primitives: `user_add`, `role_add`, `role_grant`, `user_grant_role`,
//! `auth_enable`, `member_add`. RBAC calls take the identity to act as (an admin's certificate:
//! with client certificate authentication, etcd takes the certificate's CN as the user name).

use rhai::{EvalAltResult, Map};

use super::catalog::{opt, req, Primitive, Ty};
use super::convert::{overrides, OVERRIDE_KEYS};
use super::opts::Opts;
use super::registrar::{Call, Registrar};
use super::script_err;
use crate::session::{Access, AuthOp, Perm};

/// The keys of a permission.
const PERM_KEYS: &[&str] = &["key", "prefix", "perm"];

fn perm(opts: &Map) -> Result<Perm, Box<EvalAltResult>> {
    let o = Opts::new(opts, "role_grant()", PERM_KEYS)?;
    let access = match o.string("perm")?.as_deref() {
        None | Some("readwrite") => Access::ReadWrite,
        Some("read") => Access::Read,
        Some("write") => Access::Write,
        Some(other) => {
            return Err(script_err(format!(
                "role_grant(): perm `{other}` is not one of read, write, readwrite"
            )))
        }
    };
    Ok(Perm {
        key: o.required("key", o.string("key")?)?,
        prefix: o.bool("prefix")?.unwrap_or(false),
        access,
    })
}

/// An RBAC change through argument 0 as the identity in the last argument.
fn auth(c: &Call, op: AuthOp, as_arg: usize) -> Result<(), Box<EvalAltResult>> {
    let t = c.target(0)?;
    let id = c.identity(as_arg)?;
    c.session(|ss| ss.auth_op(t, op, &id))
}

const TARGET: super::catalog::Param = req("target", Ty::Target);
const AS: super::catalog::Param = req("acting_as", Ty::Identity);

const USER_ADD: Primitive = Primitive {
    name: "user_add",
    params: &[TARGET, req("name", Ty::Str), AS],
    returns: Ty::Unit,
    doc:
        "Adds an etcd user without a password (it authenticates by certificate CN), acting as `acting_as`.",
    example: "user_add(m1, \"root\", root);",
};

const ROLE_ADD: Primitive = Primitive {
    name: "role_add",
    params: &[TARGET, req("role", Ty::Str), AS],
    returns: Ty::Unit,
    doc: "Adds a role, acting as `acting_as`.",
    example: "role_add(m1, \"app\", root);",
};

const ROLE_GRANT: Primitive = Primitive {
    name: "role_grant",
    params: &[
        TARGET,
        req("role", Ty::Str),
        req("permission", Ty::Options(PERM_KEYS)),
        AS,
    ],
    returns: Ty::Unit,
    doc: "Grants a role access to a key: `#{ key, prefix, perm }` with `prefix` (default false:\n\
          the key alone) and `perm` \"read\", \"write\" or \"readwrite\" (the default).",
    example:
        "role_grant(m1, \"app\", #{ key: \"app/\", prefix: true, perm: \"readwrite\" }, root);",
};

const USER_GRANT_ROLE: Primitive = Primitive {
    name: "user_grant_role",
    params: &[TARGET, req("user", Ty::Str), req("role", Ty::Str), AS],
    returns: Ty::Unit,
    doc: "Gives a user a role, acting as `acting_as`. etcd's \"root\" role may do everything.",
    example: "user_grant_role(m1, \"root\", \"root\", root);",
};

const AUTH_ENABLE: Primitive = Primitive {
    name: "auth_enable",
    params: &[TARGET, AS],
    returns: Ty::Unit,
    doc:
        "Turns RBAC on (etcd requires a user \"root\" with the role \"root\" first). From then on\n\
          a client certificate's CN is its user name.",
    example: "auth_enable(m1, root);",
};

const MEMBER_ADD: Primitive = Primitive {
    name: "member_add",
    params: &[
        req("cluster", Ty::Cluster),
        req("name", Ty::Str),
        opt("overrides", Ty::Options(OVERRIDE_KEYS)),
    ],
    returns: Ty::Member,
    doc: "Adds a member to a running cluster (etcd's `member add`, through its first running member)\n\
          and starts it with `--initial-cluster-state existing`; returns once it serves its peer\n\
          port. Overrides as `spawn_member` takes: `cert`, `ca`, `args`.",
    example: "let m4 = member_add(c, \"infra4\");\nwait_healthy(m4);\n\
              expect_error(|| member_add(c, \"rogue\", #{ cert: rogue_cert }), \"start failed\");",
};

/// Registers the RBAC and membership primitives.
pub fn register(r: &mut Registrar) {
    r.primitive(USER_ADD, |c| auth(c, AuthOp::UserAdd(c.string(1)?), 2));
    r.primitive(ROLE_ADD, |c| auth(c, AuthOp::RoleAdd(c.string(1)?), 2));
    r.primitive(ROLE_GRANT, |c| {
        let (role, perm) = (c.string(1)?, perm(&c.map(2)?)?);
        auth(c, AuthOp::RoleGrant { role, perm }, 3)
    });
    r.primitive(USER_GRANT_ROLE, |c| {
        let (user, role) = (c.string(1)?, c.string(2)?);
        auth(c, AuthOp::UserGrantRole { user, role }, 3)
    });
    r.primitive(AUTH_ENABLE, |c| auth(c, AuthOp::AuthEnable, 1));
    r.primitive(MEMBER_ADD, |c| {
        let (cluster, name) = (c.cluster(0)?, c.string(1)?);
        let over = overrides(&c.options(2)?, "member_add()")?;
        c.session(|ss| ss.member_add(cluster, &name, &over))
    });
}
