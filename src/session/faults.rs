//! Members over time: pausing and resuming a member, restarting it on its data, moving the
//! leadership, cutting hosts off from each other and healing them, and waiting.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::{MemberId, MemberOverrides, MemberState, Session, Target};
use crate::error::{Error, Result};
use crate::fault::OpResult;
use crate::limits;

impl Session {
    /// `pause_member(member)`: SIGSTOP. Its connections stay open and nothing answers on them:
    /// calls to it meet their bound (`timeout`), and its peers see it go silent.
    pub fn pause_member(&mut self, m: MemberId) -> Result<()> {
        self.ensure_local(m, "pause_member")?;
        self.set_paused(m, true)
    }

    /// `resume_member(member)`: SIGCONT.
    pub fn resume_member(&mut self, m: MemberId) -> Result<()> {
        self.ensure_local(m, "resume_member")?;
        self.set_paused(m, false)
    }

    fn set_paused(&mut self, m: MemberId, pause: bool) -> Result<()> {
        let name = self.member_name(m);
        self.ensure_running(m)?;
        let slot = self.slot_mut(m);
        if slot.paused == pause {
            let state = if pause {
                "already paused"
            } else {
                "not paused"
            };
            return Err(Error::Script(format!("member {name} is {state}")));
        }
        if let MemberState::Running(p) = &mut slot.state {
            p.signal(if pause {
                Signal::SIGSTOP
            } else {
                Signal::SIGCONT
            });
        }
        slot.paused = pause;
        self.transcript.line(if pause {
            format!("pause {name}: paused")
        } else {
            format!("resume {name}: resumed")
        });
        Ok(())
    }

    /// `restart_member(member, overrides)`: a graceful stop, then a start on the same data dir
    /// (its keys, its membership), with the overrides given now.
    pub fn restart_member(&mut self, m: MemberId, over: &MemberOverrides) -> OpResult<()> {
        self.ensure_local(m, "restart_member")?;
        // A member that died behind the script's back is the news.
        self.ensure_not_died(m)?;
        if matches!(self.slot(m).state, MemberState::Running(_)) {
            self.stop_member(m)?;
        }
        self.spawn_member(m, over)
    }

    /// `move_leader(member)`: asks the leader to hand the leadership to `member` (etcd's
    /// MoveLeader, which returns once the transfer is done), with the cluster's probe identity.
    /// During an election it asks again, within [`limits::OP_TIMEOUT`].
    pub fn move_leader(&mut self, m: MemberId) -> OpResult<()> {
        self.ensure_local(m, "move_leader")?;
        let name = self.member_name(m);
        let op = format!("move leader to {name}");
        let probe = self.admin_identity(m.cluster);
        let status = |ss: &mut Session, who: MemberId| ss.status_of(who, limits::OP_TIMEOUT);
        self.ensure_running(m)?;
        let started = std::time::Instant::now();
        let (target_id, leader_id) = loop {
            let (target, leader) = status(self, m).map_err(|f| f.named(&op))?;
            if leader != 0 || started.elapsed() >= limits::OP_TIMEOUT {
                break (target, leader);
            }
            std::thread::sleep(limits::CALL_RETRY_INTERVAL);
        };
        if target_id != leader_id {
            let mut leader = None;
            for other in self.running_members(m.cluster) {
                if other != m && status(self, other).map_err(|f| f.named(&op))?.0 == leader_id {
                    leader = Some(other);
                    break;
                }
            }
            let leader = leader.ok_or_else(|| {
                Error::Script(format!(
                    "{op}: no running member of the cluster is its leader now"
                ))
            })?;
            self.call(
                Target::Member(leader),
                &probe,
                limits::OP_TIMEOUT,
                move |c| Box::pin(async move { c.move_leader(target_id).await.map(|_| ()) }),
            )
            .map_err(|f| f.named(&op))?;
        }
        self.transcript.line(format!("{op}: done"));
        Ok(())
    }

    /// Asks `m` (as the cluster's admin identity, within `bound`) for its member ID and the ID
    /// of the leader it knows (0: none).
    pub(super) fn status_of(
        &mut self,
        m: MemberId,
        bound: std::time::Duration,
    ) -> OpResult<(u64, u64)> {
        let probe = self.admin_identity(m.cluster);
        self.call(Target::Member(m), &probe, bound, |c| {
            Box::pin(async move {
                let s = c.status().await?;
                let id = s.header().map_or(0, |h| h.member_id());
                Ok((id, s.leader()))
            })
        })
    }

    /// `partition(groups)`: members in different groups can no longer reach each other (their
    /// packets to each other are dropped, as by a broken switch); our client still reaches all.
    /// It replaces the partition in force, if any.
    pub fn partition(&mut self, groups: &[Vec<MemberId>]) -> Result<()> {
        let mut seen = Vec::new();
        for m in groups.iter().flatten() {
            if seen.contains(m) {
                return Err(Error::Script(format!(
                    "partition: member {} is in two groups",
                    self.member_name(*m)
                )));
            }
            seen.push(*m);
        }
        let hosts = |ss: &Session, group: &[MemberId]| -> Result<Vec<(usize, _)>> {
            group
                .iter()
                .map(|&m| {
                    let slot = ss.slot(m);
                    slot.host.map(|h| (h, slot.ip)).ok_or_else(|| {
                        Error::Script(format!(
                            "partition: member {} has no host of its own (give its cluster \
                             `hosts`)",
                            slot.name
                        ))
                    })
                })
                .collect()
        };
        let placed: Vec<Vec<_>> = groups
            .iter()
            .map(|g| hosts(self, g))
            .collect::<Result<_>>()?;
        let net = self
            .net
            .as_mut()
            .ok_or_else(|| Error::Script("partition: no member runs on a host".into()))?;
        // A new partition replaces the one in force, if any.
        net.mend()?;
        for (i, group) in placed.iter().enumerate() {
            let others: Vec<_> = placed
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, g)| g.iter().map(|(_, ip)| *ip))
                .collect();
            for (host, _) in group {
                net.cut(*host, &others)?;
            }
        }
        let shown: Vec<String> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|&m| self.member_name(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        self.transcript.line(format!(
            "partition {}: cut off from each other",
            shown.join(" | ")
        ));
        Ok(())
    }

    /// `heal()`: every host reaches every other again.
    pub fn heal(&mut self) -> Result<()> {
        if let Some(net) = self.net.as_mut() {
            net.mend()?;
        }
        self.transcript.line("heal: every host reaches every other");
        Ok(())
    }

    /// `sleep(ms)`: waits, bounded by the run's deadline.
    pub fn sleep(&mut self, ms: u64) -> Result<()> {
        let wanted = Duration::from_millis(ms);
        std::thread::sleep(self.bounded(wanted));
        self.check_deadline()?;
        self.transcript.trace(crate::trace::Step::Slept { ms });
        self.transcript.line(format!("sleep {ms} ms"));
        Ok(())
    }
}
