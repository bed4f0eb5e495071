//! RBAC and membership primitives: `user_add`, `role_add`, `role_grant`, `user_grant_role`,
//! `auth_enable`, `member_add`. RBAC calls take the identity to act as (an admin's certificate:
//! with client certificate authentication, etcd takes the certificate's CN as the user name).

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::cluster::{overrides, target};
use super::engine::def;
use super::kv::identity;
use super::opts::Opts;
use super::{script_err, with_session, Shared};
use crate::session::{Access, AuthOp, ClusterId, MemberOverrides, Perm};

fn perm(opts: &Map) -> Result<Perm, Box<EvalAltResult>> {
    let o = Opts::new(opts, "role_grant()", &["key", "prefix", "perm"])?;
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

fn auth(
    shared: &Shared,
    t: &Dynamic,
    op: AuthOp,
    id: &Dynamic,
    what: &str,
) -> Result<(), Box<EvalAltResult>> {
    let t = target(t, what)?;
    let id = identity(id, what)?;
    with_session(shared, |ss| ss.auth_op(t, op, &id))
}

/// Registers the RBAC and membership primitives.
pub fn register(engine: &mut Engine, shared: &Shared) {
    let s = shared.clone();
    def(
        engine,
        "user_add",
        &["target: Member | Cluster", "name: string", "as: Cert | Map"],
        "Adds an etcd user without a password (it authenticates by certificate CN), acting as `as`.\n\
         ```rhai\nuser_add(m1, \"root\", root);\n```",
        move |t: Dynamic, name: &str, id: Dynamic| auth(&s, &t, AuthOp::UserAdd(name.into()), &id, "user_add()"),
    );
    let s = shared.clone();
    def(
        engine,
        "role_add",
        &["target: Member | Cluster", "role: string", "as: Cert | Map"],
        "Adds a role, acting as `as`.\n\
         ```rhai\nrole_add(m1, \"app\", root);\n```",
        move |t: Dynamic, role: &str, id: Dynamic| {
            auth(&s, &t, AuthOp::RoleAdd(role.into()), &id, "role_add()")
        },
    );
    let s = shared.clone();
    def(
        engine,
        "role_grant",
        &["target: Member | Cluster", "role: string", "permission: map", "as: Cert | Map"],
        "Grants a role access to a key: `#{ key, prefix, perm }` with `prefix` (default false:\n\
         the key alone) and `perm` \"read\", \"write\" or \"readwrite\" (the default).\n\
         ```rhai\nrole_grant(m1, \"app\", #{ key: \"app/\", prefix: true, perm: \"readwrite\" }, root);\n```",
        move |t: Dynamic, role: &str, p: Map, id: Dynamic| {
            let perm = perm(&p)?;
            auth(&s, &t, AuthOp::RoleGrant { role: role.into(), perm }, &id, "role_grant()")
        },
    );
    let s = shared.clone();
    def(
        engine,
        "user_grant_role",
        &[
            "target: Member | Cluster",
            "user: string",
            "role: string",
            "as: Cert | Map",
        ],
        "Gives a user a role, acting as `as`. etcd's \"root\" role may do everything.\n\
         ```rhai\nuser_grant_role(m1, \"root\", \"root\", root);\n```",
        move |t: Dynamic, user: &str, role: &str, id: Dynamic| {
            auth(
                &s,
                &t,
                AuthOp::UserGrantRole {
                    user: user.into(),
                    role: role.into(),
                },
                &id,
                "user_grant_role()",
            )
        },
    );
    let s = shared.clone();
    def(
        engine,
        "auth_enable",
        &["target: Member | Cluster", "as: Cert | Map"],
        "Turns RBAC on (etcd requires a user \"root\" with the role \"root\" first). From then on\n\
         a client certificate's CN is its user name.\n\
         ```rhai\nauth_enable(m1, root);\n```",
        move |t: Dynamic, id: Dynamic| auth(&s, &t, AuthOp::AuthEnable, &id, "auth_enable()"),
    );
    let s = shared.clone();
    def(
        engine,
        "member_add",
        &["cluster: Cluster", "name: string", "Member"],
        "Adds a member to a running cluster (etcd's `member add`, through its first running member)\n\
         and starts it with `--initial-cluster-state existing`; returns once it serves its peer port.\n\
         ```rhai\nlet m4 = member_add(c, \"infra4\");\nwait_healthy(m4);\n```",
        move |c: ClusterId, name: &str| with_session(&s, |ss| ss.member_add(c, name, &MemberOverrides::default())),
    );
    let s = shared.clone();
    def(
        engine,
        "member_add",
        &["cluster: Cluster", "name: string", "overrides: map", "Member"],
        "Adds and starts a member with overrides (`cert`, `ca`, `args`), as `spawn_member` takes.\n\
         ```rhai\nlet rogue = member_add(c, \"rogue\", #{ cert: rogue_cert, ca: rogue_ca });\n```",
        move |c: ClusterId, name: &str, opts: Map| {
            let over = overrides(&opts)?;
            with_session(&s, |ss| ss.member_add(c, name, &over))
        },
    );
}
