//! RBAC primitives: users, roles, permissions, auth on and off, and the reads that show what is
//! granted. Each takes the identity to act as (an admin's certificate: with client certificate
//! authentication, etcd takes the certificate's CN as the user name; or a user and password).

use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::catalog::{opt, req, Param, Primitive, Ty};
use super::opts::Opts;
use super::registrar::{Call, Registrar};
use super::script_err;
use crate::session::{Access, AuthOp, Perm};

/// The keys of a permission.
const PERM_KEYS: &[&str] = &["key", "prefix", "perm"];
/// The keys of a permission to revoke: which key or prefix.
const REVOKE_KEYS: &[&str] = &["key", "prefix"];
/// The options of `user_add`.
const USER_ADD_KEYS: &[&str] = &["password"];

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

/// An RBAC change through argument 0 as the identity in argument `as_arg`.
fn auth(c: &Call, op: AuthOp, as_arg: usize) -> Result<(), Box<EvalAltResult>> {
    let t = c.target(0)?;
    let id = c.identity(as_arg)?;
    c.session(|ss| ss.auth_op(t, op, &id))
}

const TARGET: Param = req("target", Ty::Target);
const AS: Param = req("acting_as", Ty::Identity);

const USER_ADD: Primitive = Primitive {
    name: "user_add",
    params: &[
        TARGET,
        req("name", Ty::Str),
        AS,
        opt("opts", Ty::Options(USER_ADD_KEYS)),
    ],
    returns: Ty::Unit,
    doc: "Adds an etcd user, acting as `acting_as`. Without `password` the user has none and\n\
          authenticates by certificate CN alone; with `#{ password }` an identity\n\
          `#{ user, password }` can also log in as it. The transcript never shows a password.",
    example:
        "user_add(m1, \"root\", root);\nuser_add(m1, \"bob\", root, #{ password: \"s3cret\" });",
};

const USER_DELETE: Primitive = Primitive {
    name: "user_delete",
    params: &[TARGET, req("name", Ty::Str), AS],
    returns: Ty::Unit,
    doc: "Deletes a user, acting as `acting_as`. A certificate whose CN names it is then no user\n\
          etcd knows, and gets \"permission denied\" as any such CN does; a password login as\n\
          it, \"authentication failed\".",
    example: "user_delete(m1, \"alice\", root);",
};

const ROLE_ADD: Primitive = Primitive {
    name: "role_add",
    params: &[TARGET, req("role", Ty::Str), AS],
    returns: Ty::Unit,
    doc: "Adds a role, acting as `acting_as`.",
    example: "role_add(m1, \"app\", root);",
};

const ROLE_DELETE: Primitive = Primitive {
    name: "role_delete",
    params: &[TARGET, req("role", Ty::Str), AS],
    returns: Ty::Unit,
    doc: "Deletes a role, acting as `acting_as`; users who had it lose what it granted.",
    example: "role_delete(m1, \"app\", root);",
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

const ROLE_REVOKE: Primitive = Primitive {
    name: "role_revoke",
    params: &[
        TARGET,
        req("role", Ty::Str),
        req("permission", Ty::Options(REVOKE_KEYS)),
        AS,
    ],
    returns: Ty::Unit,
    doc: "Takes away a role's permission on exactly this `#{ key, prefix }` (etcd's\n\
          RoleRevokePermission: the range must be one that was granted).",
    example: "role_revoke(m1, \"app\", #{ key: \"app/\", prefix: true }, root);",
};

const USER_GRANT_ROLE: Primitive = Primitive {
    name: "user_grant_role",
    params: &[TARGET, req("user", Ty::Str), req("role", Ty::Str), AS],
    returns: Ty::Unit,
    doc: "Gives a user a role, acting as `acting_as`. etcd's \"root\" role may do everything.",
    example: "user_grant_role(m1, \"root\", \"root\", root);",
};

const USER_REVOKE_ROLE: Primitive = Primitive {
    name: "user_revoke_role",
    params: &[TARGET, req("user", Ty::Str), req("role", Ty::Str), AS],
    returns: Ty::Unit,
    doc: "Takes a role away from a user, acting as `acting_as`.",
    example: "user_revoke_role(m1, \"alice\", \"app\", root);",
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

const AUTH_DISABLE: Primitive = Primitive {
    name: "auth_disable",
    params: &[TARGET, AS],
    returns: Ty::Unit,
    doc: "Turns RBAC off again (only root may), acting as `acting_as`.",
    example: "auth_disable(m1, root);",
};

const USER_GET: Primitive = Primitive {
    name: "user_get",
    params: &[TARGET, req("name", Ty::Str), AS],
    returns: Ty::Array,
    doc: "The roles of a user, as etcd lists them, acting as `acting_as` (a user may read its\n\
          own; another's needs root).",
    example: "assert_eq(user_get(m1, \"alice\", root), [\"app\"]);",
};

const ROLE_GET: Primitive = Primitive {
    name: "role_get",
    params: &[TARGET, req("role", Ty::Str), AS],
    returns: Ty::Array,
    doc: "The permissions of a role, each `#{ key, prefix, perm }`, acting as `acting_as`.",
    example: "let perms = role_get(m1, \"app\", root);\nassert_eq(perms[0].perm, \"readwrite\");",
};

fn perm_map(p: &Perm) -> Dynamic {
    let mut m = Map::new();
    m.insert("key".into(), p.key.clone().into());
    m.insert("prefix".into(), p.prefix.into());
    m.insert("perm".into(), p.access.name().into());
    m.into()
}

/// Registers the RBAC primitives.
pub fn register(r: &mut Registrar) {
    r.primitive(USER_ADD, |c| {
        let name = c.string(1)?;
        let opts = c.options(3)?;
        let password = Opts::new(&opts, "user_add()", USER_ADD_KEYS)?.string("password")?;
        if password.as_deref() == Some("") {
            return Err(script_err(
                "user_add(): `password` is empty; leave it out for a user without one",
            ));
        }
        auth(c, AuthOp::UserAdd { name, password }, 2)
    });
    r.primitive(USER_DELETE, |c| {
        auth(c, AuthOp::UserDelete(c.string(1)?), 2)
    });
    r.primitive(ROLE_ADD, |c| auth(c, AuthOp::RoleAdd(c.string(1)?), 2));
    r.primitive(ROLE_DELETE, |c| {
        auth(c, AuthOp::RoleDelete(c.string(1)?), 2)
    });
    r.primitive(ROLE_GRANT, |c| {
        let (role, perm) = (c.string(1)?, perm(&c.map(2)?)?);
        auth(c, AuthOp::RoleGrant { role, perm }, 3)
    });
    r.primitive(ROLE_REVOKE, |c| {
        let (role, map) = (c.string(1)?, c.map(2)?);
        let o = Opts::new(&map, "role_revoke()", REVOKE_KEYS)?;
        let key = o.required("key", o.string("key")?)?;
        let prefix = o.bool("prefix")?.unwrap_or(false);
        auth(c, AuthOp::RoleRevoke { role, key, prefix }, 3)
    });
    r.primitive(USER_GRANT_ROLE, |c| {
        let (user, role) = (c.string(1)?, c.string(2)?);
        auth(c, AuthOp::UserGrantRole { user, role }, 3)
    });
    r.primitive(USER_REVOKE_ROLE, |c| {
        let (user, role) = (c.string(1)?, c.string(2)?);
        auth(c, AuthOp::UserRevokeRole { user, role }, 3)
    });
    r.primitive(AUTH_ENABLE, |c| auth(c, AuthOp::AuthEnable, 1));
    r.primitive(AUTH_DISABLE, |c| auth(c, AuthOp::AuthDisable, 1));
    r.primitive(USER_GET, |c| {
        let (t, name, id) = (c.target(0)?, c.string(1)?, c.identity(2)?);
        let roles = c.session(|ss| ss.user_get(t, &name, &id))?;
        Ok(roles.into_iter().map(Dynamic::from).collect::<Array>())
    });
    r.primitive(ROLE_GET, |c| {
        let (t, role, id) = (c.target(0)?, c.string(1)?, c.identity(2)?);
        let perms = c.session(|ss| ss.role_get(t, &role, &id))?;
        Ok(perms.iter().map(perm_map).collect::<Array>())
    });
}
