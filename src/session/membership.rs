//! Membership as an identity: `member_list` and `member_remove` (and the identity `member_add`
//! acts as, in `plan.rs`). etcd guards changes to the membership with root's permission and
//! lists its members to anyone who may connect.

use super::{IdentitySpec, MemberId, Session, Target};
use std::time::Instant;

use crate::error::Error;
use crate::fault::{Fault, OpResult};
use crate::limits;

/// One member as etcd lists it: its name ("" until it has started) and its ID.
type Listed = (String, u64);

impl Session {
    /// A change to the membership: asked again while etcd answers "unhealthy cluster" (it wants
    /// every member connected for 5 s first), up to [`limits::MEMBERSHIP_TIMEOUT`].
    pub(super) fn membership_call<T, F>(
        &mut self,
        target: Target,
        id: &IdentitySpec,
        f: F,
    ) -> OpResult<T>
    where
        F: for<'a> Fn(&'a mut etcd_client::Client) -> super::calls::CallFuture<'a, T>,
    {
        let started = Instant::now();
        loop {
            match self.call(target, id, id.bound(), &f) {
                Err(Fault::Rejected { rejection, .. })
                    if rejection.detail.contains("unhealthy cluster")
                        && started.elapsed() < limits::MEMBERSHIP_TIMEOUT =>
                {
                    tracing::debug!("etcd wants the cluster connected for longer");
                    self.check_deadline()?;
                    std::thread::sleep(limits::MEMBERSHIP_RETRY_INTERVAL);
                }
                other => return other,
            }
        }
    }

    /// The cluster's own admin identity: a client certificate of its CA that the script never
    /// sees, for what the runtime asks of the cluster (health, membership) unless told whom to
    /// act as.
    pub(super) fn admin_identity(&self, c: super::ClusterId) -> IdentitySpec {
        IdentitySpec {
            cert: Some(std::rc::Rc::new(self.cluster(c).probe.clone())),
            ..Default::default()
        }
    }

    fn list(&mut self, target: Target, id: &IdentitySpec) -> OpResult<Vec<Listed>> {
        self.call(target, id, id.bound(), |c| {
            Box::pin(async move {
                Ok(c.member_list()
                    .await?
                    .members()
                    .iter()
                    .map(|m| (m.name().to_owned(), m.id()))
                    .collect::<Vec<_>>())
            })
        })
    }

    /// `member_list(target, identity)`: the names of the cluster's members, sorted (etcd lists
    /// them by ID, which the runtime chose). A member added but not started has no name yet:
    /// it is listed as "(unstarted)".
    pub fn member_list(&mut self, target: Target, id: &IdentitySpec) -> OpResult<Vec<String>> {
        let op = format!("member list {}", self.via(target, id));
        let listed = self.list(target, id).map_err(|f| f.named(&op))?;
        tracing::debug!(?listed, "member list");
        let mut names: Vec<String> = listed
            .into_iter()
            .map(|(n, _)| {
                if n.is_empty() {
                    "(unstarted)".into()
                } else {
                    n
                }
            })
            .collect();
        names.sort();
        self.transcript.line(format!("{op}: {}", names.join(", ")));
        Ok(names)
    }

    /// What a change to `m`'s membership needs: the running member to ask (another one if
    /// `alone_ok` is false), the operation's words, the identity, and etcd's ID of `m`.
    fn membership_change(
        &mut self,
        m: MemberId,
        what: &str,
        acting_as: Option<&IdentitySpec>,
        alone_ok: bool,
    ) -> OpResult<(MemberId, String, IdentitySpec, u64)> {
        let name = self.member_name(m);
        let verb = what.split(' ').next().unwrap_or(what);
        self.ensure_local(m, &format!("member_{verb}"))?;
        self.ensure_running(m)?;
        let other = self
            .running_members(m.cluster)
            .into_iter()
            .find(|&o| o != m);
        let via = match other {
            Some(o) => o,
            None if alone_ok => m,
            None => {
                return Err(Error::Script(format!(
                    "member_{verb}({name}): no other member of its cluster is running to ask"
                ))
                .into())
            }
        };
        let op = match acting_as {
            Some(who) => format!(
                "member {what} via {} {}",
                self.member_name(via),
                who.describe()
            ),
            None => format!("member {what} via {}", self.member_name(via)),
        };
        let id = acting_as
            .cloned()
            .unwrap_or_else(|| self.admin_identity(m.cluster));
        let listed = self
            .list(Target::Member(via), &id)
            .map_err(|f| f.named(&op))?;
        let Some(&(_, member_id)) = listed.iter().find(|(n, _)| *n == name) else {
            return Err(Error::Script(format!("{op}: etcd lists no member named {name}")).into());
        };
        tracing::debug!(member_id, what, "membership change");
        Ok((via, op, id, member_id))
    }

    /// `member_remove(member, identity)`: asks another running member of its cluster to remove
    /// it, then stops its process (a removed member stops serving on its own; we do not wait on
    /// how).
    pub fn member_remove(&mut self, m: MemberId, acting_as: Option<&IdentitySpec>) -> OpResult<()> {
        let what = format!("remove {}", self.member_name(m));
        let (via, op, id, member_id) = self.membership_change(m, &what, acting_as, false)?;
        self.membership_call(Target::Member(via), &id, move |c| {
            Box::pin(async move { c.member_remove(member_id).await.map(|_| ()) })
        })
        .map_err(|f| f.named(&op))?;
        self.transcript.line(format!("{op}: removed"));
        self.slot_mut(m).removed = true;
        self.stop_member(m)?;
        Ok(())
    }

    /// `member_update(member, identity)`: asks another running member, as `acting_as`, to set
    /// `member`'s peer URLs to what they are: no change, but etcd checks the permission all the
    /// same, so a script shows who may update the membership.
    pub fn member_update(&mut self, m: MemberId, acting_as: Option<&IdentitySpec>) -> OpResult<()> {
        let what = format!("update {} (its peer URL, unchanged)", self.member_name(m));
        let (via, op, id, member_id) = self.membership_change(m, &what, acting_as, true)?;
        let url = self.peer_url(m)?;
        self.membership_call(Target::Member(via), &id, move |c| {
            let url = url.clone();
            Box::pin(async move { c.member_update(member_id, [url]).await.map(|_| ()) })
        })
        .map_err(|f| f.named(&op))?;
        self.transcript.line(format!("{op}: updated"));
        Ok(())
    }
}
