//! Member processes: etcd's flags for a member, knowing whether it still runs, killing it
//! (starting is in `starting`, stopping in `stopping`).

use std::path::PathBuf;

use super::{ClusterId, MemberId, MemberOverrides, MemberState, Session};
use crate::error::{Error, Result};
use crate::etcd::args;
use crate::etcd::process::find_etcd;
use crate::lifecycle;
use crate::limits;

impl Session {
    pub(super) fn etcd_bin(&mut self) -> Result<PathBuf> {
        if let Some(b) = &self.etcd_bin {
            return Ok(b.clone());
        }
        let b = find_etcd(self.etcd_flag.as_deref())?;
        tracing::info!(etcd = %b.display(), "etcd binary");
        self.etcd_bin = Some(b.clone());
        Ok(b)
    }

    /// Why a member cannot have its data dir where the run keeps them, if the disk is short of
    /// room: etcd that meets a full disk stops without a word in its log (it cannot write one),
    /// which would pass for a failed start.
    /// `ahead`: the bytes that members about to start before it take.
    pub(super) fn disk_short(&self, name: &str, ahead: u64) -> Option<String> {
        let free = crate::workdirs::free_bytes(&self.members_dir)?;
        (free < ahead + limits::MEMBER_DISK_BYTES).then(|| {
            format!(
                "no room on disk for member {name}: {} free where its data dir goes ({}), and \
                 etcd takes about {} per member (it preallocates its write-ahead log); free some \
                 space, or set TMPDIR (or --workdir) to a file system with room",
                lifecycle::human_size(free),
                self.members_dir.display(),
                lifecycle::human_size(limits::MEMBER_DISK_BYTES)
            )
        })
    }

    pub(super) fn member_args(&self, m: MemberId, over: &MemberOverrides) -> Vec<String> {
        let c = self.cluster(m.cluster);
        let s = &c.spec;
        let slot = self.slot(m);
        let cert = over.cert.as_deref().unwrap_or_else(|| s.cert_of(m.index));
        let peer_cert = over.peer_cert.as_deref().unwrap_or(cert);
        let ca = over.ca.as_deref().unwrap_or(&s.ca);
        let initial = slot.join.clone().unwrap_or_else(|| {
            c.members
                .iter()
                .filter(|o| o.join.is_none())
                .map(|o| format!("{}={}", o.name, args::peer_url(&o.url_host, o.peer_port)))
                .collect::<Vec<_>>()
                .join(",")
        });
        let data_dir = self.members_dir.join(format!("{}.etcd", slot.name));
        let listen_ip = slot.ip.to_string();
        args::member_args(&args::MemberConfig {
            name: &slot.name,
            data_dir: &data_dir,
            listen_ip: &listen_ip,
            host: &slot.url_host,
            client_port: slot.client_port,
            http_port: slot.http_port,
            peer_port: slot.peer_port,
            initial_cluster: initial,
            token: &s.token,
            joining: slot.join.is_some(),
            heartbeat_ms: s.heartbeat_ms,
            election_ms: s.election_ms,
            tls: args::MemberTls {
                cert: &cert.cert_path,
                key: &cert.key_path,
                peer_cert: &peer_cert.cert_path,
                peer_key: &peer_cert.key_path,
                peer_client: over
                    .peer_client_cert
                    .as_deref()
                    .map(|c| (c.cert_path.as_path(), c.key_path.as_path())),
                ca: &ca.cert_path,
                client_cert_auth: s.client_cert_auth,
                peer_cert_auth: s.peer_cert_auth,
                client_crl: s.client_crl.then_some(s.ca.crl_path.as_path()),
                peer_crl: s.peer_crl.then_some(s.ca.crl_path.as_path()),
            },
            extra: s.args.iter().chain(&over.args).cloned().collect(),
        })
    }

    pub(super) fn exit_status(&mut self, m: MemberId) -> Option<std::process::ExitStatus> {
        match &mut self.slot_mut(m).state {
            MemberState::Running(p) => {
                let s = p.exit_status();
                if let Some(s) = s {
                    lifecycle::unregister_pid(p.pid());
                    self.hold_ports(m);
                    return Some(s);
                }
                None
            }
            _ => None,
        }
    }

    /// Holds a member's ports alone again once it no longer runs, until it starts again: no
    /// other process is given them meanwhile.
    pub(super) fn hold_ports(&mut self, m: MemberId) {
        for hold in &self.slot(m).holds {
            hold.exclude();
        }
    }

    pub(super) fn kill_slot(&mut self, m: MemberId) -> bool {
        let slot = self.slot_mut(m);
        if let MemberState::Running(p) = &mut slot.state {
            p.kill();
            lifecycle::unregister_pid(p.pid());
            slot.state = MemberState::Stopped;
            slot.paused = false;
            self.hold_ports(m);
            true
        } else {
            false
        }
    }

    /// `kill_member(member)`: SIGKILL.
    pub fn kill_member(&mut self, m: MemberId) -> Result<()> {
        self.ensure_local(m, "kill_member")?;
        let name = self.member_name(m);
        if !self.kill_slot(m) {
            return Err(Error::Script(format!("member {name} is not running")));
        }
        self.drop_clients(m);
        self.transcript.trace(crate::trace::Step::Stop {
            member: name.clone(),
            killed: true,
        });
        self.transcript.line(format!("kill {name}: killed"));
        Ok(())
    }

    /// Fails unless the run's etcd is 3.5 or later, for a feature `what` that 3.4 lacks.
    pub(super) fn needs_etcd_35(&mut self, what: &str) -> Result<()> {
        let bin = self.etcd_bin()?;
        let version = crate::etcd::process::etcd_version(&bin)?;
        let (major, minor) = parse_version(&version);
        if (major, minor) < (3, 5) {
            return Err(Error::Script(format!(
                "{what} needs etcd 3.5 or later; this run's etcd is {version}"
            )));
        }
        Ok(())
    }

    pub(super) fn drop_clients(&mut self, m: MemberId) {
        self.clients.retain(|k, _| k.member != m);
        self.drop_watches(Some(m));
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
            MemberState::Stopped | MemberState::External => return Ok(()),
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
            .filter(|&m| {
                matches!(
                    self.slot(m).state,
                    MemberState::Running(_) | MemberState::External
                )
            })
            .collect()
    }
}

/// `3.5.1` -> (3, 5); anything unreadable is (0, 0).
fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}
