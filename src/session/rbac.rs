//! RBAC through a member as some identity: changes (users, roles, permissions, auth on and off)
//! and the reads that show what is granted (`user_get`, `role_get`).

use super::{Access, AuthOp, IdentitySpec, Perm, Session, Target};
use crate::fault::OpResult;
use crate::trace::KvOp;

fn access_of(perm_type: i32) -> Access {
    match perm_type {
        0 => Access::Read,
        1 => Access::Write,
        _ => Access::ReadWrite,
    }
}

impl Session {
    /// An RBAC change (`user_add`, `role_add`, `role_grant`, `user_grant_role`, `auth_enable`),
    /// made through `target` as `id`.
    pub fn auth_op(&mut self, target: Target, op: AuthOp, id: &IdentitySpec) -> OpResult<()> {
        self.ensure_local_target(target, "RBAC changes")?;
        let desc = format!("{} {}", op.describe(), self.via(target, id));
        let on_or_off = matches!(op, AuthOp::AuthEnable | AuthOp::AuthDisable);
        let words = op.etcdctl_words();
        let result = self.call(target, id, id.bound(), move |c| {
            let op = op.clone();
            Box::pin(async move {
                match op {
                    AuthOp::UserAdd {
                        name,
                        password: None,
                    } => c
                        .user_add(
                            name,
                            "",
                            Some(etcd_client::UserAddOptions::new().with_no_pwd()),
                        )
                        .await
                        .map(|_| ()),
                    AuthOp::UserAdd {
                        name,
                        password: Some(p),
                    } => c.user_add(name, p, None).await.map(|_| ()),
                    AuthOp::UserDelete(name) => c.user_delete(name).await.map(|_| ()),
                    AuthOp::RoleAdd(role) => c.role_add(role).await.map(|_| ()),
                    AuthOp::RoleDelete(role) => c.role_delete(role).await.map(|_| ()),
                    AuthOp::RoleRevoke { role, key, prefix } => {
                        let opts = prefix
                            .then(|| etcd_client::RoleRevokePermissionOptions::new().with_prefix());
                        c.role_revoke_permission(role, key, opts).await.map(|_| ())
                    }
                    AuthOp::UserRevokeRole { user, role } => {
                        c.user_revoke_role(user, role).await.map(|_| ())
                    }
                    AuthOp::AuthDisable => c.auth_disable().await.map(|_| ()),
                    AuthOp::RoleGrant { role, perm } => {
                        let mut p = match perm.access {
                            Access::Read => etcd_client::Permission::read(perm.key),
                            Access::Write => etcd_client::Permission::write(perm.key),
                            Access::ReadWrite => etcd_client::Permission::read_write(perm.key),
                        };
                        if perm.prefix {
                            p = p.with_prefix();
                        }
                        c.role_grant_permission(role, p).await.map(|_| ())
                    }
                    AuthOp::UserGrantRole { user, role } => {
                        c.user_grant_role(user, role).await.map(|_| ())
                    }
                    AuthOp::AuthEnable => c.auth_enable().await.map(|_| ()),
                }
            })
        });
        let what = desc.clone();
        self.trace_kv(KvOp::Admin { words, what }, target, id, &result, None);
        result.map_err(|f| f.named(&desc))?;
        // Connections made before auth was turned on or off keep no identity etcd now asks for.
        // Other changes leave connections open: the next call shows what an open connection
        // meets after them.
        if on_or_off {
            self.clients.clear();
        }
        self.transcript.line(format!("{desc}: ok"));
        Ok(())
    }

    /// `user_get(target, name, identity)`: the user's roles, in etcd's order (sorted).
    pub fn user_get(
        &mut self,
        target: Target,
        name: &str,
        id: &IdentitySpec,
    ) -> OpResult<Vec<String>> {
        let op = format!("user get {name} {}", self.via(target, id));
        let n = name.to_owned();
        let roles = self
            .call(target, id, id.bound(), move |c| {
                let n = n.clone();
                Box::pin(async move { Ok(c.user_get(n).await?.roles().to_vec()) })
            })
            .map_err(|f| f.named(&op))?;
        self.transcript.line(if roles.is_empty() {
            format!("{op}: no roles")
        } else {
            format!("{op}: roles {}", roles.join(", "))
        });
        Ok(roles)
    }

    /// `role_get(target, role, identity)`: the role's permissions, in etcd's order.
    pub fn role_get(
        &mut self,
        target: Target,
        role: &str,
        id: &IdentitySpec,
    ) -> OpResult<Vec<Perm>> {
        let op = format!("role get {role} {}", self.via(target, id));
        let r = role.to_owned();
        let perms = self
            .call(target, id, id.bound(), move |c| {
                let r = r.clone();
                Box::pin(async move {
                    let resp = c.role_get(r).await?;
                    Ok(resp
                        .permissions()
                        .iter()
                        .map(|p| Perm {
                            key: String::from_utf8_lossy(p.key()).into_owned(),
                            prefix: p.is_prefix(),
                            access: access_of(p.get_type()),
                        })
                        .collect::<Vec<_>>())
                })
            })
            .map_err(|f| f.named(&op))?;
        let shown: Vec<String> = perms.iter().map(Perm::describe).collect();
        self.transcript.line(if perms.is_empty() {
            format!("{op}: no permissions")
        } else {
            format!("{op}: {}", shown.join(", "))
        });
        Ok(perms)
    }
}
