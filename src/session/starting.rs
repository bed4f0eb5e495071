//! Starting members: one (`spawn_member`) or several at once (`spawn_members`).
//!
//! Several start overlapped: each is launched once the one before it has passed etcd's bootstrap
//! check (a new member asks its peers whether it was already bootstrapped, and a peer that has
//! bound its port but not yet served it would hold that question for etcd's one-second bootstrap
//! timeout). Ports not yet launched are held but not listened on, so such a question to them is
//! refused at once.
//! The outcome is the one starting them one after another in the same order would have: the
//! members before the first that fails run, that one's error is the call's, and those after it
//! are stopped again, as if never started; the transcript says the same, line for line.

use std::time::Instant;

use super::{ports, MemberId, MemberOverrides, MemberState, Session};
use crate::error::{Error, Result};
use crate::etcd::log::MemberLog;
use crate::etcd::process::EtcdProcess;
use crate::etcd::reject::{Class, Rejection, Witness};
use crate::fault::{Fault, OpResult};
use crate::lifecycle;
use crate::limits;
use crate::pki::Usage;

/// etcd logs this once it has created its raft node, past the bootstrap check
/// ("starting local member", or "restarting local member" on a data dir of its own).
const PAST_BOOTSTRAP: &str = "starting local member\"";
const SERVING: &str = "\"msg\":\"serving peer traffic\"";

/// Where one member's start stands.
enum Phase {
    /// Not launched yet.
    Waiting,
    /// Launched: its log from `mark` on is this start's.
    Launched {
        mark: u64,
        read: u64,
        deadline: Instant,
        past_bootstrap: bool,
    },
    Serving,
    /// Exited: why, and where this start's part of its log begins.
    Failed {
        fault: Fault,
        mark: u64,
    },
}

/// One member of a start.
struct Start {
    m: MemberId,
    over: MemberOverrides,
    /// Its transcript line, less the outcome: `start infra3 (cert rogue)`.
    line: String,
    /// Whether it had never run: stopped again, it goes back to planned, its data dir removed.
    fresh: bool,
    args: Vec<String>,
    phase: Phase,
    /// The lifecycle tests' listener on a port of this member's, held until its start ends.
    thief: Option<std::net::TcpListener>,
    /// Its starts on a new client port so far, after losing one to another process.
    retries: usize,
}

impl Session {
    /// `spawn_member(cluster, name, overrides)`: starts one member and returns once it serves its
    /// peer port (or fails, quoting its log).
    pub fn spawn_member(&mut self, m: MemberId, over: &MemberOverrides) -> OpResult<()> {
        self.spawn_members(&[(m, over.clone())])
    }

    /// `spawn_members(cluster, names)`: starts the members overlapped, with the outcome and
    /// transcript of starting them one after another in this order.
    pub fn spawn_members(&mut self, list: &[(MemberId, MemberOverrides)]) -> OpResult<()> {
        let mut starts = Vec::new();
        // A member that may not start ends the list: those before it start, then its error.
        let mut refused = None;
        for (i, (m, over)) in list.iter().enumerate() {
            let twice = list[..i].iter().any(|(o, _)| o == m);
            // Room on disk for what the members before it take (a new data dir, or a restarted
            // one's next log segment), as one-by-one starts would have found it.
            let ahead = starts
                .iter()
                .map(|s: &Start| {
                    if s.fresh {
                        limits::MEMBER_DISK_BYTES
                    } else {
                        limits::MEMBER_RESTART_DISK_BYTES
                    }
                })
                .sum();
            match self.prepare_start(*m, over, ahead, twice) {
                Ok(line) => starts.push(Start {
                    m: *m,
                    over: over.clone(),
                    line,
                    fresh: matches!(self.slot(*m).state, MemberState::Planned),
                    args: Vec::new(),
                    phase: Phase::Waiting,
                    thief: None,
                    retries: 0,
                }),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if !starts.is_empty() {
            self.run_starts(&mut starts)?;
        }
        match refused {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// What must hold before a member starts, and its transcript line. `ahead`: the disk room
    /// the members the same call starts before it take; `twice`: it is one of them.
    fn prepare_start(
        &mut self,
        m: MemberId,
        over: &MemberOverrides,
        ahead: u64,
        twice: bool,
    ) -> OpResult<String> {
        self.ensure_local(m, "spawn_member")?;
        self.etcd_bin()?;
        let name = self.member_name(m);
        if twice || matches!(self.slot(m).state, MemberState::Running(_)) {
            return Err(Error::Script(format!("member {name} is already running")).into());
        }
        let mut line = format!("start {name}");
        let mut extra = Vec::new();
        let spec = &self.cluster(m.cluster).spec;
        if let Some(c) = &over.cert {
            extra.push(format!("cert {}", c.name));
        } else if !spec.one_cert() {
            extra.push(format!("cert {}", spec.cert_of(m.index).name));
        }
        if let Some(c) = &over.peer_cert {
            extra.push(format!("peer cert {}", c.name));
        }
        if let Some(c) = &over.peer_client_cert {
            extra.push(format!("peer client cert {}", c.name));
            self.needs_etcd_35("peer_client_cert (--peer-client-cert-file)")?;
        }
        if let Some(ca) = &over.ca {
            extra.push(format!("CA {}", ca.name));
        }
        if !over.args.is_empty() {
            extra.push(format!("args {}", over.args.join(" ")));
        }
        if !extra.is_empty() {
            line.push_str(&format!(" ({})", extra.join(", ")));
        }
        if let Some(cert) = &over.cert {
            // Allowed on purpose: it is how a scenario shows a member refused for its certificate.
            if !cert.has_usage(Usage::Server) {
                tracing::warn!("member {name} gets certificate {} without the server usage: clients and peers will refuse it", cert.name);
            }
        }
        let dials_with = over.peer_client_cert.as_ref().or(over.peer_cert.as_ref());
        if let Some(cert) = dials_with.or(over.cert.as_ref()) {
            if self.cluster(m.cluster).spec.peer_cert_auth && !cert.has_usage(Usage::Client) {
                tracing::warn!("member {name} gets peer certificate {} without the client usage: its peers will refuse it", cert.name);
            }
        }
        let spec = &self.cluster(m.cluster).spec;
        if over.cert.is_none() && m.index >= spec.certs.len() && !spec.one_cert() {
            return Err(Error::Script(format!(
                "member {name} has no certificate of its own in a cluster whose members each \
                 have theirs: give it one with `cert`"
            ))
            .into());
        }
        if let Some(why) = self.disk_short(&name, ahead) {
            return Err(Error::Environment(why).into());
        }
        Ok(line)
    }

    /// Starts the members and says what happened, in order, as one-by-one starts would: the
    /// members before the first that does not serve run and are said to serve; the members after
    /// it are stopped again; its error (or an error of the environment) is the call's.
    fn run_starts(&mut self, starts: &mut [Start]) -> OpResult<()> {
        let settled = self.settle_starts(starts);
        let first = starts
            .iter()
            .position(|s| !matches!(s.phase, Phase::Serving))
            .unwrap_or(starts.len());
        let undone = if settled.is_err() { first } else { first + 1 };
        for s in starts.iter_mut().skip(undone) {
            self.undo_start(s, false);
        }
        for s in &mut starts[..first] {
            let name = self.member_name(s.m);
            self.transcript.trace(crate::trace::Step::Start {
                member: name,
                args: std::mem::take(&mut s.args),
            });
            self.transcript.line(format!("{}: serving", s.line));
        }
        settled?;
        match starts
            .get_mut(first)
            .map(|s| (std::mem::replace(&mut s.phase, Phase::Waiting), &s.line))
        {
            Some((Phase::Failed { fault, .. }, line)) => Err(fault.named(line)),
            _ => Ok(()),
        }
    }

    /// Launches the starts, each once the one before it is past its bootstrap check (and none
    /// before it has failed), until every one serves or the first to fail (in order) is known
    /// with all before it serving.
    fn settle_starts(&mut self, starts: &mut [Start]) -> OpResult<()> {
        let mut repicks = 0;
        loop {
            if let Some(i) = starts
                .iter()
                .position(|s| matches!(s.phase, Phase::Waiting))
            {
                let failed_before = starts[..i]
                    .iter()
                    .any(|s| matches!(s.phase, Phase::Failed { .. }));
                let ready = i == 0
                    || match &starts[i - 1].phase {
                        Phase::Launched { past_bootstrap, .. } => *past_bootstrap,
                        Phase::Serving => true,
                        Phase::Waiting | Phase::Failed { .. } => false,
                    };
                if ready && !failed_before {
                    self.launch(&mut starts[i])?;
                    continue;
                }
            }
            for (i, s) in starts.iter_mut().enumerate() {
                self.poll_start(s, i)?;
            }
            let first_failed = starts
                .iter()
                .position(|s| matches!(s.phase, Phase::Failed { .. }));
            let end = first_failed.unwrap_or(starts.len());
            if !starts[..end]
                .iter()
                .all(|s| matches!(s.phase, Phase::Serving))
            {
                std::thread::sleep(limits::POLL_INTERVAL);
                continue;
            }
            let Some(f) = first_failed else {
                return Ok(());
            };
            match self.after_failure(starts, f, &mut repicks)? {
                Retry::Again => continue,
                Retry::No => return Ok(()),
            }
        }
    }

    /// Starts one member's etcd.
    fn launch(&mut self, s: &mut Start) -> Result<()> {
        let m = s.m;
        let name = self.member_name(m);
        let bin = self.etcd_bin()?;
        s.args = self.member_args(m, &s.over);
        tracing::debug!(member = %name, args = ?s.args, "starting etcd");
        // Refusals of this start count from here, in every member's log (its own too), as they
        // would had the members before it started one by one.
        for slot in &mut self.clusters[m.cluster.0].members {
            slot.refusal_mark = slot.log.mark();
        }
        let log = self.slot(m).log.clone();
        let mark = log.mark();
        // Its etcd binds its ports beside our holds, which other runs still cannot.
        for hold in &self.slot(m).holds {
            hold.share();
        }
        // The lifecycle tests lose the race for a port on purpose, once a run.
        static STOLEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let stolen = if self.hooks.steal_port {
            Some(self.slot(m).client_port)
        } else if self.hooks.steal_peer_port {
            Some(self.slot(m).peer_port)
        } else {
            None
        };
        s.thief = stolen
            .filter(|_| !STOLEN.swap(true, std::sync::atomic::Ordering::Relaxed))
            .and_then(|port| std::net::TcpListener::bind(("127.0.0.1", port)).ok());
        // Started and registered under the write lock: an interrupted run either sees this
        // member and kills it, or never starts it.
        let writes = lifecycle::hold_writes();
        let host = self.on_host(m);
        let proc = match EtcdProcess::spawn(&bin, &s.args, &log.path, host.as_ref()) {
            Ok(proc) => proc,
            Err(e) => {
                drop(writes);
                self.hold_ports(m);
                return Err(e);
            }
        };
        let pid = proc.pid();
        lifecycle::register_pid(pid);
        drop(writes);
        tracing::info!(member = %name, pid, "started etcd");
        self.slot_mut(m).state = MemberState::Running(proc);
        s.phase = Phase::Launched {
            mark,
            read: mark,
            deadline: Instant::now() + self.bounded(limits::MEMBER_START_TIMEOUT),
            past_bootstrap: false,
        };
        Ok(())
    }

    /// Reads a launched member's news: serving, past its bootstrap check, exited, or silent
    /// past its bound (an environment error, which ends the run). `index`: its place in the call.
    fn poll_start(&mut self, s: &mut Start, index: usize) -> Result<()> {
        let Phase::Launched {
            mark,
            read,
            deadline,
            past_bootstrap,
        } = &mut s.phase
        else {
            s.thief = None;
            return Ok(());
        };
        let log = self.slot(s.m).log.clone();
        let (lines, end) = log.lines_since(*read);
        *read = end;
        let now_past = !*past_bootstrap && lines.iter().any(|l| l.contains(PAST_BOOTSTRAP));
        if self.hooks.kill_second_start && index == 1 && now_past {
            if let MemberState::Running(p) = &mut self.slot_mut(s.m).state {
                p.signal(nix::sys::signal::Signal::SIGKILL);
                p.wait_exit(limits::REAP_TIMEOUT);
            }
            // Whatever it logged before it died is not this start's news.
            *read = log.mark();
            *past_bootstrap = true;
            return Ok(());
        }
        if lines.iter().any(|l| l.contains(SERVING)) {
            s.phase = Phase::Serving;
            return Ok(());
        }
        *past_bootstrap |= now_past;
        let mark = *mark;
        if let Some(status) = self.exit_status(s.m) {
            self.slot_mut(s.m).state = MemberState::Stopped;
            s.phase = Phase::Failed {
                fault: self.start_failure(&log, status),
                mark,
            };
            return Ok(());
        }
        if Instant::now() >= *deadline {
            self.kill_slot(s.m);
            self.check_deadline()?;
            return Err(Error::Environment(format!(
                "member {} did not serve its peer port within {:?}; last log lines:\n{}",
                log.member,
                limits::MEMBER_START_TIMEOUT,
                quote_tail(&log)
            )));
        }
        Ok(())
    }

    /// Why a member exited while starting: a full disk (an environment error), else the class
    /// `start failed`, quoting its log.
    fn start_failure(&self, log: &MemberLog, status: std::process::ExitStatus) -> Fault {
        if let Some(why) = self.disk_short(&log.member, 0) {
            return Error::Environment(format!(
                "member {} exited ({status}) while starting: {why}",
                log.member
            ))
            .into();
        }
        Fault::rejected(
            String::new(),
            Rejection::unlogged(
                Class::StartFailed,
                Witness::MemberLog(log.member.clone()),
                format!(
                    "member {} exited ({status}) while starting: {}\nlast log lines:\n{}",
                    log.member,
                    log.last_error().unwrap_or_else(|| "it wrote no log".into()),
                    quote_tail(log)
                ),
            ),
        )
    }
}

/// Whether a failed start is tried again.
enum Retry {
    Again,
    No,
}

impl Session {
    /// The first member (in order) failed, and all before it serve. A port lost in the moment
    /// between its release and etcd's bind is tried again with new ports, up to
    /// [`limits::PORT_RETRIES`] times; otherwise its error stands.
    fn after_failure(
        &mut self,
        starts: &mut [Start],
        f: usize,
        repicks: &mut usize,
    ) -> Result<Retry> {
        let m = starts[f].m;
        let log = self.slot(m).log.clone();
        let mark = match &starts[f].phase {
            Phase::Failed { mark, .. } => *mark,
            _ => 0,
        };
        let port_lost = log.contains_since(mark, "address already in use").0;
        let client_port = self.slot(m).client_port;
        // etcd names the address it could not bind.
        let client_lost = port_lost
            && log
                .contains_since(mark, &format!("127.0.0.1:{client_port}: bind"))
                .0;
        let c = self.cluster(m.cluster);
        // Members on hosts have their own addresses: no port there is anyone else's.
        let free_ports =
            c.spec.client_ports.is_none() && c.spec.peer_ports.is_none() && c.spec.hosts.is_none();
        // Every member of the cluster is new (planned, or started fresh by this call): no
        // running member and no data dir knows the peer URLs yet, so all of them may change.
        let fresh: Vec<usize> = starts
            .iter()
            .filter(|s| s.fresh)
            .map(|s| s.m.index)
            .collect();
        let all_new =
            c.members.iter().enumerate().all(|(index, o)| {
                fresh.contains(&index) || matches!(o.state, MemberState::Planned)
            });
        let name = self.member_name(m);
        if free_ports && client_lost && starts[f].retries < limits::PORT_RETRIES {
            starts[f].retries += 1;
            // The client port is in no other member's configuration: a new one will do,
            // whoever else runs.
            tracing::info!(member = %name, "its client port was taken before etcd could bind it; picking a new one");
            let held = ports::reserve()?;
            let slot = self.slot_mut(m);
            let lost = slot.client_port;
            slot.holds.retain(|h| h.port != lost);
            slot.client_port = held.port;
            slot.holds.push(held);
            starts[f].phase = Phase::Waiting;
            return Ok(Retry::Again);
        }
        if free_ports && port_lost && all_new && *repicks < limits::PORT_RETRIES {
            *repicks += 1;
            tracing::info!(member = %name, "a port was taken before etcd could bind it; picking new ports");
            for s in starts.iter_mut() {
                self.undo_start(s, true);
            }
            // Members planned apart from this call may keep a data dir of an earlier call's
            // undone start, which names the old URLs.
            for index in 0..self.cluster(m.cluster).members.len() {
                let other = MemberId {
                    cluster: m.cluster,
                    index,
                };
                self.remove_data_dir(other);
            }
            self.repick_ports(m.cluster)?;
            return Ok(Retry::Again);
        }
        // A start failure is never a rejection, whoever else refused what meanwhile: its
        // class is `start failed`, and its own log says why.
        Ok(Retry::No)
    }

    /// Stops a member this call launched, as if it had never been: one that had never run goes
    /// back to planned (its ports held alone again, as they were). Its data dir stays
    /// (etcd starts again on it as the same member of the same cluster: the members that run
    /// may have heard from it), unless `wipe`, for new ports.
    fn undo_start(&mut self, s: &mut Start, wipe: bool) {
        if matches!(s.phase, Phase::Waiting) {
            return;
        }
        self.kill_slot(s.m);
        s.phase = Phase::Waiting;
        s.thief = None;
        if !s.fresh {
            return;
        }
        self.slot_mut(s.m).state = MemberState::Planned;
        if wipe {
            self.remove_data_dir(s.m);
        }
    }

    /// Removes a planned member's data dir, if it has one.
    fn remove_data_dir(&mut self, m: MemberId) {
        if !matches!(self.slot(m).state, MemberState::Planned) {
            return;
        }
        let dir = self
            .members_dir
            .join(format!("{}.etcd", self.member_name(m)));
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), "could not remove a data dir: {e}");
            }
        }
    }
}

pub(super) fn quote_tail(log: &MemberLog) -> String {
    log.tail(limits::LOG_TAIL_LINES)
        .iter()
        .map(|l| format!("    {}", crate::etcd::log::summarize_line(l)))
        .collect::<Vec<_>>()
        .join("\n")
}
