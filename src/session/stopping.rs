//! Stopping a member gracefully: `stop_member`, and what makes its outcome not hang on timing.

use std::time::{Duration, Instant};

use super::{MemberId, MemberState, Session};
use crate::error::{Error, Result};
use crate::fault::Fault;
use crate::lifecycle;
use crate::limits;

/// What etcd logs when, stopping, only its peers' connections are left to drain.
const DRAINING_PEERS: &str = "\"msg\":\"stopping serving peer traffic\"";

impl Session {
    /// `stop_member(member)`: SIGTERM, and SIGKILL if it has not exited within [`stop_grace`]
    /// (or at the run's deadline, whichever comes first).
    ///
    /// etcd's graceful stop ends by waiting up to a second for its peers to hang up on its peer
    /// port (they keep dialing it). It says so ([`DRAINING_PEERS`]) only once its server has
    /// stopped: raft, the write-ahead log and the database are closed by then. SIGKILL from there
    /// on spares that second and loses nothing; the stop still counts as graceful.
    ///
    /// A leader first hands its leadership to the peer it has heard from longest, and gives up
    /// after its request timeout if that peer is gone: whether it tries depends on whether it
    /// has noticed yet that the peer is gone. So the last member running in its cluster is
    /// first left to step down (it has no quorum), and the grace outlasts etcd's own bound.
    pub fn stop_member(&mut self, m: MemberId) -> Result<()> {
        self.ensure_local(m, "stop_member")?;
        let name = self.member_name(m);
        let grace = self.stop_grace(m);
        let slot = &mut self.clusters[m.cluster.0].members[m.index];
        let MemberState::Running(p) = &mut slot.state else {
            return Err(Error::Script(format!("member {name} is not running")));
        };
        if slot.paused {
            // A stopped process keeps SIGTERM pending until it runs again.
            p.signal(nix::sys::signal::Signal::SIGCONT);
            slot.paused = false;
        }
        // A member that died meanwhile has nothing to hand over (and cannot be asked).
        if self.last_running(m) && self.exit_status(m).is_none() {
            self.wait_stepped_down(m)?;
        }
        // Our connections go first: etcd's graceful stop waits for open client connections to
        // close. Dropping a client only asks its connection task to close the socket, so the
        // wait below drives the runtime, where that task runs.
        self.drop_clients(m);
        let bound = self.bounded(grace);
        let slot = &mut self.clusters[m.cluster.0].members[m.index];
        let MemberState::Running(p) = &mut slot.state else {
            return Err(Error::Script(format!("member {name} is not running")));
        };
        let log = slot.log.clone();
        let mark = log.mark();
        p.signal(nix::sys::signal::Signal::SIGTERM);
        let graceful = self.rt.block_on(async {
            let deadline = Instant::now() + bound;
            let mut read = mark;
            while p.is_running() {
                let (lines, end) = log.lines_since(read);
                read = end;
                if lines.iter().any(|l| l.contains(DRAINING_PEERS)) {
                    p.kill();
                    break;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                tokio::time::sleep(limits::POLL_INTERVAL).await;
            }
            true
        });
        if !graceful {
            p.kill();
        }
        lifecycle::unregister_pid(p.pid());
        slot.state = MemberState::Stopped;
        self.hold_ports(m);
        self.transcript.trace(crate::trace::Step::Stop {
            member: name.clone(),
            killed: false,
        });
        if !graceful {
            self.check_deadline()?;
        }
        self.transcript.line(if graceful {
            format!("stop {name}: stopped")
        } else {
            format!("stop {name}: killed after {grace:?} without exiting")
        });
        Ok(())
    }

    /// How long `m` has to stop: etcd's own bound for handing over its leadership (its request
    /// timeout, which grows with the election timeout), and [`limits::STOP_GRACE`] beyond.
    fn stop_grace(&self, m: MemberId) -> Duration {
        let election = Duration::from_millis(self.cluster(m.cluster).spec.election_ms);
        limits::ETCD_REQUEST_TIMEOUT_BASE + 2 * election + limits::STOP_GRACE
    }

    /// Whether `m` is the only member of its cluster that runs, in a cluster of several (not
    /// counting those removed from it: a lone voter leads, and stays leader).
    fn last_running(&self, m: MemberId) -> bool {
        let members: Vec<(usize, &super::MemberSlot)> = self
            .cluster(m.cluster)
            .members
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.removed)
            .collect();
        members.len() > 1
            && members
                .iter()
                .all(|(i, s)| *i == m.index || !matches!(s.state, MemberState::Running(_)))
    }

    /// Waits until `m` does not lead its cluster, up to two election timeouts and
    /// [`limits::STEP_DOWN_GRACE`]: a leader that hears from no quorum steps down within two.
    /// A member that cannot be asked (its client identity refused, say) is not waited for.
    fn wait_stepped_down(&mut self, m: MemberId) -> Result<()> {
        let election = Duration::from_millis(self.cluster(m.cluster).spec.election_ms);
        let bound = 2 * election + limits::STEP_DOWN_GRACE;
        let started = Instant::now();
        loop {
            let left = bound.saturating_sub(started.elapsed());
            if left.is_zero() {
                tracing::debug!(member = %self.member_name(m), "still leads; stopping it anyway");
                return Ok(());
            }
            match self.status_of(m, left) {
                Ok((id, leader)) if leader != id => return Ok(()),
                Ok(_) => std::thread::sleep(limits::CALL_RETRY_INTERVAL),
                Err(Fault::Fatal(e)) => return Err(e),
                Err(Fault::Rejected { .. }) => return Ok(()),
            }
        }
    }
}
