//! Clusters and their members: planning ports, starting etcd processes and waiting for them to
//! serve, health, refusals between peers, membership changes, stopping.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use super::ports::reserve_port;
use super::{
    valid_name, ClusterId, ClusterSpec, ClusterState, IdentitySpec, MemberId, MemberOverrides,
    MemberSlot, MemberState, Session, Target,
};
use crate::error::{Error, Result};
use crate::etcd::log::MemberLog;
use crate::etcd::process::{find_etcd, EtcdProcess};
use crate::etcd::reject::{Class, Rejection, Witness};
use crate::fault::{Fault, OpResult};
use crate::lifecycle;
use crate::limits;
use crate::pki::{CertSpec, Usage};

impl Session {
    /// `cluster(names, opts)`: plans members and ports; starts nothing.
    pub fn plan_cluster(&mut self, spec: ClusterSpec) -> Result<ClusterId> {
        if spec.names.is_empty() {
            return Err(Error::Script(
                "a cluster needs at least one member name".into(),
            ));
        }
        valid_name("cluster token", &spec.token)?;
        let mut seen = HashSet::new();
        for n in &spec.names {
            valid_name("member", n)?;
            if !seen.insert(n) {
                return Err(Error::Script(format!("member name `{n}` appears twice")));
            }
            if self
                .clusters
                .iter()
                .any(|c| c.members.iter().any(|m| &m.name == n))
            {
                return Err(Error::Script(format!(
                    "member name `{n}` is already used by another cluster"
                )));
            }
        }
        for (what, ports) in [
            ("client_ports", &spec.client_ports),
            ("peer_ports", &spec.peer_ports),
        ] {
            if let Some(p) = ports {
                if p.len() != spec.names.len() {
                    return Err(Error::Script(format!(
                        "{what} has {} ports for {} members",
                        p.len(),
                        spec.names.len()
                    )));
                }
            }
        }
        if !spec.cert.has_usage(Usage::Server) {
            return Err(Error::Script(format!(
                "cluster certificate `{}` lacks the \"server\" usage, so no client could ever connect; \
                 issue it with usage [\"server\", \"client\"] (to show a member refusing such a certificate, \
                 give it to one member with spawn_member's `cert` override)",
                spec.cert.name
            )));
        }
        if spec.peer_cert_auth && !spec.cert.has_usage(Usage::Client) {
            tracing::warn!(cert = %spec.cert.name, "the cluster certificate lacks the client usage: members will refuse each other as peers");
        }
        if spec.client_crl && !spec.client_cert_auth {
            return Err(Error::Script(
                "client_crl: true needs client_cert_auth: true (without it etcd checks no client certificate, so a CRL would change nothing)".into(),
            ));
        }
        if spec.election_ms < 5 * spec.heartbeat_ms {
            return Err(Error::Script(format!(
                "election_ms ({}) should be at least 5 times heartbeat_ms ({})",
                spec.election_ms, spec.heartbeat_ms
            )));
        }
        let mut members = Vec::new();
        for (i, name) in spec.names.iter().enumerate() {
            let mut reserved = Vec::new();
            let mut port = |pinned: &Option<Vec<u16>>| -> Result<u16> {
                match pinned {
                    Some(p) => Ok(p[i]),
                    None => {
                        let (port, l) = reserve_port()?;
                        reserved.push(l);
                        Ok(port)
                    }
                }
            };
            let client_port = port(&spec.client_ports)?;
            let peer_port = port(&spec.peer_ports)?;
            tracing::info!(member = %name, client_port, peer_port, "planned member");
            members.push(MemberSlot {
                name: name.clone(),
                client_port,
                peer_port,
                reserved,
                state: MemberState::Planned,
                log: MemberLog {
                    member: name.clone(),
                    path: self.members_dir.join(format!("{name}.log")),
                },
                join: None,
                refusal_mark: 0,
            });
        }
        // One probe identity per cluster, by its index: two clusters with the same token (or a
        // script certificate named like a probe) never share or overwrite it.
        let probe_name = format!("probe-{}", self.clusters.len());
        let probe = spec.ca.issue(
            &self.runtime_dir,
            &probe_name,
            &CertSpec {
                cn: "etcdscript-probe".into(),
                sans: vec![spec.host.clone(), "127.0.0.1".into()],
                usage: vec![Usage::Client],
                not_before_days: None,
                not_after_days: 1,
                key: crate::pki::KeyKind::EcP256,
            },
        )?;
        let mut words = vec![
            format!("cluster {}: members {}", spec.token, spec.names.join(", ")),
            format!("cert {}, CA {}", spec.cert.name, spec.ca.name),
            if spec.client_cert_auth {
                "clients must present a certificate".into()
            } else {
                "clients need no certificate (etcd gets no client CA)".into()
            },
            if spec.peer_cert_auth {
                "peers must present a certificate".into()
            } else {
                // Members need the peer CA to check each other's server certificates, and etcd
                // then demands client certificates of peers too.
                "peers must present a certificate all the same (etcd demands one whenever it has the peer CA)".into()
            },
        ];
        if spec.client_ports.is_some() || spec.peer_ports.is_some() {
            let show = |p: &Option<Vec<u16>>| {
                p.as_ref()
                    .map(|v| v.iter().map(u16::to_string).collect::<Vec<_>>().join("/"))
                    .unwrap_or_else(|| "free".into())
            };
            words.push(format!(
                "client ports {}, peer ports {}",
                show(&spec.client_ports),
                show(&spec.peer_ports)
            ));
        }
        if spec.client_crl {
            words.push(format!("client CRL from {}", spec.ca.name));
        }
        if spec.peer_crl {
            words.push(format!("peer CRL from {}", spec.ca.name));
        }
        self.transcript.line(words.join("; "));
        self.clusters.push(ClusterState {
            spec,
            members,
            probe,
        });
        Ok(ClusterId(self.clusters.len() - 1))
    }

    pub(super) fn cluster(&self, id: ClusterId) -> &ClusterState {
        &self.clusters[id.0]
    }

    /// A member of a cluster by name.
    pub fn member(&self, id: ClusterId, name: &str) -> Result<MemberId> {
        let c = self.cluster(id);
        c.members
            .iter()
            .position(|m| m.name == name)
            .map(|index| MemberId { cluster: id, index })
            .ok_or_else(|| {
                Error::Script(format!(
                    "cluster {} has no member `{name}`; its members are {}",
                    c.spec.token,
                    c.spec.names.join(", ")
                ))
            })
    }

    /// The members of a cluster, in plan order.
    pub fn members(&self, id: ClusterId) -> Vec<MemberId> {
        (0..self.cluster(id).members.len())
            .map(|index| MemberId { cluster: id, index })
            .collect()
    }

    /// A member's name.
    pub fn member_name(&self, m: MemberId) -> String {
        self.slot(m).name.clone()
    }

    /// A member's client URL (runtime-chosen: keep it out of the transcript).
    pub fn client_url(&self, m: MemberId) -> String {
        let c = self.cluster(m.cluster);
        format!("https://{}:{}", c.spec.host, self.slot(m).client_port)
    }

    /// A cluster's name (its token).
    pub fn cluster_name(&self, id: ClusterId) -> String {
        self.cluster(id).spec.token.clone()
    }

    pub(super) fn slot(&self, m: MemberId) -> &MemberSlot {
        &self.clusters[m.cluster.0].members[m.index]
    }

    pub(super) fn slot_mut(&mut self, m: MemberId) -> &mut MemberSlot {
        &mut self.clusters[m.cluster.0].members[m.index]
    }

    pub(super) fn etcd_bin(&mut self) -> Result<PathBuf> {
        if let Some(b) = &self.etcd_bin {
            return Ok(b.clone());
        }
        let b = find_etcd(self.etcd_flag.as_deref())?;
        tracing::info!(etcd = %b.display(), "etcd binary");
        self.etcd_bin = Some(b.clone());
        Ok(b)
    }

    pub(super) fn member_args(&self, m: MemberId, over: &MemberOverrides) -> Vec<String> {
        let c = self.cluster(m.cluster);
        let s = &c.spec;
        let slot = self.slot(m);
        let cert = over.cert.as_deref().unwrap_or(&s.cert);
        let ca = over.ca.as_deref().unwrap_or(&s.ca);
        let p = |p: &Path| p.display().to_string();
        let initial = slot.join.clone().unwrap_or_else(|| {
            c.members
                .iter()
                .filter(|o| o.join.is_none())
                .map(|o| format!("{}=https://{}:{}", o.name, s.host, o.peer_port))
                .collect::<Vec<_>>()
                .join(",")
        });
        let mut a: Vec<String> = vec![
            "--name".into(),
            slot.name.clone(),
            "--data-dir".into(),
            p(&self.members_dir.join(format!("{}.etcd", slot.name))),
            "--logger".into(),
            "zap".into(),
            "--log-outputs".into(),
            "stderr".into(),
            // At debug level a member logs each failed dial to a peer at once, with the peer's
            // ID and the TLS error: who refused whom, and why (see etcd/evidence.rs).
            "--log-level".into(),
            "debug".into(),
            "--listen-client-urls".into(),
            format!("https://127.0.0.1:{}", slot.client_port),
            "--advertise-client-urls".into(),
            format!("https://{}:{}", s.host, slot.client_port),
            "--listen-peer-urls".into(),
            format!("https://127.0.0.1:{}", slot.peer_port),
            "--initial-advertise-peer-urls".into(),
            format!("https://{}:{}", s.host, slot.peer_port),
            "--initial-cluster".into(),
            initial,
            "--initial-cluster-token".into(),
            s.token.clone(),
            "--initial-cluster-state".into(),
            if slot.join.is_some() {
                "existing"
            } else {
                "new"
            }
            .into(),
            "--heartbeat-interval".into(),
            s.heartbeat_ms.to_string(),
            "--election-timeout".into(),
            s.election_ms.to_string(),
            "--cert-file".into(),
            p(&cert.cert_path),
            "--key-file".into(),
            p(&cert.key_path),
            "--peer-cert-file".into(),
            p(&cert.cert_path),
            "--peer-key-file".into(),
            p(&cert.key_path),
            "--peer-trusted-ca-file".into(),
            p(&ca.cert_path),
        ];
        // etcd demands a client certificate whenever it is given a client CA, with or without
        // --client-cert-auth (which decides only whether the CN is taken as the user name). So
        // certificates are optional only when etcd gets no client CA at all.
        if s.client_cert_auth {
            a.extend([
                "--trusted-ca-file".into(),
                p(&ca.cert_path),
                "--client-cert-auth".into(),
            ]);
        }
        if s.peer_cert_auth {
            a.push("--peer-client-cert-auth".into());
        }
        if s.client_crl {
            a.extend(["--client-crl-file".into(), p(&s.ca.crl_path)]);
        }
        if s.peer_crl {
            a.extend(["--peer-crl-file".into(), p(&s.ca.crl_path)]);
        }
        a.extend(s.args.iter().cloned());
        a.extend(over.args.iter().cloned());
        a
    }

    /// `spawn_member(cluster, name, overrides)`: starts one member and returns once it serves its
    /// peer port (or fails, quoting its log).
    pub fn spawn_member(&mut self, m: MemberId, over: &MemberOverrides) -> OpResult<()> {
        let bin = self.etcd_bin()?;
        let name = self.member_name(m);
        if matches!(self.slot(m).state, MemberState::Running(_)) {
            return Err(Error::Script(format!("member {name} is already running")).into());
        }
        let mut line = format!("start {name}");
        let mut extra = Vec::new();
        if let Some(c) = &over.cert {
            extra.push(format!("cert {}", c.name));
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
            if self.cluster(m.cluster).spec.peer_cert_auth && !cert.has_usage(Usage::Client) {
                tracing::warn!("member {name} gets certificate {} without the client usage: its peers will refuse it", cert.name);
            }
        }
        // Refusals of this start count from here, in every member's log (its own too).
        for slot in &mut self.clusters[m.cluster.0].members {
            slot.refusal_mark = slot.log.mark();
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let args = self.member_args(m, over);
            tracing::debug!(member = %name, ?args, "starting etcd");
            let log = self.slot(m).log.clone();
            let mark = log.mark();
            // Let go of the reserved ports at the last moment.
            self.slot_mut(m).reserved.clear();
            // The lifecycle tests lose the race for a port on purpose, once a run.
            static STOLEN: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            let _thief = (crate::script::engine::test_hook("steal-port")
                && !STOLEN.swap(true, std::sync::atomic::Ordering::Relaxed))
            .then(|| std::net::TcpListener::bind(("127.0.0.1", self.slot(m).client_port)).ok())
            .flatten();
            let proc = EtcdProcess::spawn(&bin, &args, &log.path)?;
            let pid = proc.pid();
            lifecycle::register_pid(pid);
            tracing::info!(member = %name, pid, "started etcd");
            self.slot_mut(m).state = MemberState::Running(proc);
            match self.wait_serving(m, mark) {
                Ok(()) => break,
                Err(e) => {
                    let port_lost = log.contains_since(mark, "address already in use").0;
                    let c = self.cluster(m.cluster);
                    let may_repick = port_lost
                        && attempt <= limits::PORT_RETRIES
                        && c.spec.client_ports.is_none()
                        && c.spec.peer_ports.is_none()
                        && !c
                            .members
                            .iter()
                            .any(|o| matches!(o.state, MemberState::Running(_)));
                    if !may_repick {
                        // A start failure is never a rejection, whoever else refused what
                        // meanwhile: its class is `start failed`, and its own log says why.
                        return Err(e.named(&line));
                    }
                    tracing::info!(member = %name, "a port was taken before etcd could bind it; picking new ports");
                    self.repick_ports(m.cluster)?;
                }
            }
        }
        self.transcript.line(format!("{line}: serving"));
        Ok(())
    }

    pub(super) fn repick_ports(&mut self, id: ClusterId) -> Result<()> {
        for slot in &mut self.clusters[id.0].members {
            let (cp, cl) = reserve_port()?;
            let (pp, pl) = reserve_port()?;
            slot.client_port = cp;
            slot.peer_port = pp;
            slot.reserved = vec![cl, pl];
        }
        Ok(())
    }

    /// Waits for "serving peer traffic" in the member's log, bounded. A member that exits first
    /// failed to start (class `start failed`, quoting its log); one that stays silent past the
    /// bound is an environment error.
    pub(super) fn wait_serving(&mut self, m: MemberId, mark: u64) -> OpResult<()> {
        let deadline = Instant::now() + self.bounded(limits::MEMBER_START_TIMEOUT);
        let log = self.slot(m).log.clone();
        let mut offset = mark;
        loop {
            let (found, end) = log.contains_since(offset, "\"msg\":\"serving peer traffic\"");
            if found {
                return Ok(());
            }
            offset = end;
            if let Some(status) = self.exit_status(m) {
                self.slot_mut(m).state = MemberState::Stopped;
                return Err(Fault::rejected(
                    String::new(),
                    Rejection::unlogged(
                        Class::StartFailed,
                        Witness::MemberLog(log.member.clone()),
                        format!(
                            "member {} exited ({status}) while starting: {}\nlast log lines:\n{}",
                            log.member,
                            log.last_error().unwrap_or_else(|| "it wrote no log".into()),
                            quote_tail(&log)
                        ),
                    ),
                ));
            }
            if Instant::now() >= deadline {
                self.kill_slot(m);
                self.check_deadline()?;
                return Err(Error::Environment(format!(
                    "member {} did not serve its peer port within {:?}; last log lines:\n{}",
                    log.member,
                    limits::MEMBER_START_TIMEOUT,
                    quote_tail(&log)
                ))
                .into());
            }
            std::thread::sleep(limits::POLL_INTERVAL);
        }
    }

    pub(super) fn exit_status(&mut self, m: MemberId) -> Option<std::process::ExitStatus> {
        match &mut self.slot_mut(m).state {
            MemberState::Running(p) => {
                let s = p.exit_status();
                if let Some(s) = s {
                    lifecycle::unregister_pid(p.pid());
                    return Some(s);
                }
                None
            }
            _ => None,
        }
    }

    pub(super) fn kill_slot(&mut self, m: MemberId) -> bool {
        let slot = self.slot_mut(m);
        if let MemberState::Running(p) = &mut slot.state {
            p.kill();
            lifecycle::unregister_pid(p.pid());
            slot.state = MemberState::Stopped;
            true
        } else {
            false
        }
    }

    /// `kill_member(member)`: SIGKILL.
    pub fn kill_member(&mut self, m: MemberId) -> Result<()> {
        let name = self.member_name(m);
        if !self.kill_slot(m) {
            return Err(Error::Script(format!("member {name} is not running")));
        }
        self.drop_clients(&name);
        self.transcript.line(format!("kill {name}: killed"));
        Ok(())
    }

    /// `stop_member(member)`: SIGTERM, and SIGKILL after [`limits::STOP_GRACE`].
    pub fn stop_member(&mut self, m: MemberId) -> Result<()> {
        let name = self.member_name(m);
        let slot = self.slot_mut(m);
        let MemberState::Running(p) = &mut slot.state else {
            return Err(Error::Script(format!("member {name} is not running")));
        };
        let graceful = p.stop(limits::STOP_GRACE);
        lifecycle::unregister_pid(p.pid());
        slot.state = MemberState::Stopped;
        self.drop_clients(&name);
        self.transcript.line(if graceful {
            format!("stop {name}: stopped")
        } else {
            format!(
                "stop {name}: killed after {:?} without exiting",
                limits::STOP_GRACE
            )
        });
        Ok(())
    }

    pub(super) fn drop_clients(&mut self, member: &str) {
        let prefix = format!("{member}|");
        self.clients.retain(|k, _| !k.starts_with(&prefix));
    }

    /// Checks that a member still runs; says which and why if not.
    pub(super) fn ensure_running(&mut self, m: MemberId) -> Result<()> {
        if matches!(self.slot(m).state, MemberState::Stopped) {
            let name = self.member_name(m);
            return Err(Error::Script(format!("member {name} has been stopped")));
        }
        self.ensure_not_died(m)
    }

    /// Checks that a member was started and has not died behind the script's back. A member the
    /// script stopped passes: a client calling it meets a refused connection ("unavailable"),
    /// which is what a scenario about a stopped member wants to show.
    pub(super) fn ensure_not_died(&mut self, m: MemberId) -> Result<()> {
        let name = self.member_name(m);
        match self.slot(m).state {
            MemberState::Planned => {
                return Err(Error::Script(format!("member {name} has not been started")))
            }
            MemberState::Stopped => return Ok(()),
            MemberState::Running(_) => {}
        }
        if let Some(status) = self.exit_status(m) {
            self.slot_mut(m).state = MemberState::Stopped;
            let log = self.slot(m).log.clone();
            return Err(Error::Environment(format!(
                "member {name} is no longer running ({status}); its last word: {}",
                log.last_error().unwrap_or_else(|| "none".into())
            )));
        }
        Ok(())
    }

    pub(super) fn running_members(&mut self, id: ClusterId) -> Vec<MemberId> {
        self.members(id)
            .into_iter()
            .filter(|&m| matches!(self.slot(m).state, MemberState::Running(_)))
            .collect()
    }

    /// `member_add(cluster, name, overrides)`: asks the cluster (through its first running member,
    /// with the probe certificate) to add a member, then starts it to join the cluster.
    pub fn member_add(
        &mut self,
        id: ClusterId,
        name: &str,
        over: &MemberOverrides,
    ) -> OpResult<MemberId> {
        valid_name("member", name)?;
        if self
            .clusters
            .iter()
            .any(|c| c.members.iter().any(|m| m.name == name))
        {
            return Err(Error::Script(format!("member name `{name}` is already used")).into());
        }
        let (client_port, client_res) = reserve_port()?;
        let (peer_port, peer_res) = reserve_port()?;
        let host = self.cluster(id).spec.host.clone();
        let peer_url = format!("https://{host}:{peer_port}");
        let probe = IdentitySpec {
            cert: Some(Rc::new(self.cluster(id).probe.clone())),
            ..Default::default()
        };
        let desc = format!("member add {name} via {}", self.cluster_name(id));
        let started = Instant::now();
        let members = loop {
            let url = peer_url.clone();
            let result = self.call(Target::Cluster(id), &probe, limits::OP_TIMEOUT, move |c| {
                let url = url.clone();
                Box::pin(async move {
                    let r = c.member_add([url], None).await?;
                    Ok(r.member_list()
                        .iter()
                        .flat_map(|m| {
                            m.peer_urls()
                                .iter()
                                .map(move |u| (m.name().to_owned(), u.clone()))
                        })
                        .collect::<Vec<_>>())
                })
            });
            match result {
                Err(Fault::Rejected { rejection, .. })
                    if rejection.detail.contains("unhealthy cluster")
                        && started.elapsed() < limits::MEMBER_ADD_TIMEOUT =>
                {
                    tracing::debug!("member add: etcd wants the cluster connected for longer");
                    self.check_deadline()?;
                    std::thread::sleep(limits::MEMBER_ADD_RETRY_INTERVAL);
                }
                other => break other.map_err(|f| f.named(&desc))?,
            }
        };
        let join = members
            .into_iter()
            .map(|(n, u)| {
                let n = if u == peer_url { name.to_owned() } else { n };
                format!("{n}={u}")
            })
            .collect::<Vec<_>>()
            .join(",");
        tracing::info!(member = name, client_port, peer_port, %join, "added member");
        self.transcript.line(format!("{desc}: added"));
        let log = MemberLog {
            member: name.to_owned(),
            path: self.members_dir.join(format!("{name}.log")),
        };
        let c = &mut self.clusters[id.0];
        c.members.push(MemberSlot {
            name: name.to_owned(),
            client_port,
            peer_port,
            reserved: vec![client_res, peer_res],
            state: MemberState::Planned,
            log,
            join: Some(join),
            refusal_mark: 0,
        });
        let m = MemberId {
            cluster: id,
            index: c.members.len() - 1,
        };
        self.spawn_member(m, over)?;
        Ok(m)
    }
}

fn quote_tail(log: &MemberLog) -> String {
    log.tail(limits::LOG_TAIL_LINES)
        .iter()
        .map(|l| format!("    {}", crate::etcd::log::summarize_line(l)))
        .collect::<Vec<_>>()
        .join("\n")
}
