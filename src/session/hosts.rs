//! Members on hosts of their own: placing a cluster's members on the run's network, the run's
//! hosts file, and where clients dial from (see [`crate::netns`]).

use std::net::Ipv4Addr;

use super::{ClusterSpec, Dial, HostSpec, IdentitySpec, MemberId, Session};
use crate::error::{Error, Result};
use crate::etcd::process::OnHost;
use crate::netns::{self, Dialer, Net};
use crate::script::cluster::DEFAULT_HOST;

/// The ports of a member with a host of its own: etcd's defaults, as on a real host.
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

/// The members' resolver configuration: no name server, only the hosts file.
const RESOLV_CONF: &str =
    "# Names resolve from the run's hosts file alone: no name server.\noptions attempts:1\n";

/// Where a planned member runs.
pub(super) struct Placement {
    pub ip: Ipv4Addr,
    pub url_host: String,
    pub host: Option<usize>,
}

impl Session {
    /// Places the members of `spec`: on loopback, or each on its own new host.
    pub(super) fn place(&mut self, spec: &ClusterSpec) -> Result<Vec<Placement>> {
        let Some(hosts) = &spec.hosts else {
            return Ok(spec
                .names
                .iter()
                .map(|_| Placement {
                    ip: Ipv4Addr::LOCALHOST,
                    url_host: spec.host.clone(),
                    host: None,
                })
                .collect());
        };
        if hosts.len() != spec.names.len() {
            return Err(Error::Script(format!(
                "hosts has {} hosts for {} members",
                hosts.len(),
                spec.names.len()
            )));
        }
        if spec.host != DEFAULT_HOST {
            return Err(Error::Script(
                "`host` names every member's URL host on loopback; with `hosts`, each member's \
                 host gives it: leave out `host`"
                    .into(),
            ));
        }
        for (i, h) in hosts.iter().enumerate() {
            let (net, broadcast) = netns::ends();
            if !netns::in_network(h.ip) || [netns::CLIENT_IP, net, broadcast].contains(&h.ip) {
                return Err(Error::Script(format!(
                    "host address {} is not allowed: hosts take addresses in {}/{} (the \
                     benchmarking range), except {} (the client's) and the network's first and \
                     last",
                    h.ip,
                    netns::NETWORK.0,
                    netns::NETWORK.1,
                    netns::CLIENT_IP
                )));
            }
            let same_name = |o: &HostSpec| match (&o.name, &h.name) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            };
            let taken = self
                .hosts
                .iter()
                .chain(&hosts[..i])
                .find(|o| o.ip == h.ip || same_name(o));
            if let Some(o) = taken {
                return Err(Error::Script(format!(
                    "host {} is given twice (as {})",
                    h.describe(),
                    o.describe()
                )));
            }
        }
        if self.net.is_none() {
            // Members on hosts get the run's hosts file and resolver file mounted over these.
            for file in ["/etc/hosts", "/etc/resolv.conf"] {
                if std::fs::metadata(file).is_err() {
                    return Err(Error::Environment(format!(
                        "hosts need {file} to exist (members get the run's own mounted over it)"
                    )));
                }
            }
            self.net = Some(Net::create()?);
            self.write_hosts_file()?;
        }
        let mut placed = Vec::new();
        for h in hosts {
            let net = self.net.as_mut().expect("made above");
            let index = net.add_host(h.ip)?;
            self.hosts.push(h.clone());
            self.add_to_hosts_file(h)?;
            placed.push(Placement {
                ip: h.ip,
                url_host: h.name.clone().unwrap_or_else(|| h.ip.to_string()),
                host: Some(index),
            });
        }
        Ok(placed)
    }

    /// The run's hosts file: what the members resolve host names with.
    fn hosts_file(&self) -> std::path::PathBuf {
        self.runtime_dir.join("hosts")
    }

    /// Starts the hosts file; hosts are appended as they are made, so that members already
    /// running never see it half written.
    fn write_hosts_file(&self) -> Result<()> {
        let path = self.hosts_file();
        std::fs::write(&path, "127.0.0.1 localhost\n").map_err(Error::io(format!(
            "failed to write the hosts file {}",
            path.display()
        )))?;
        let path = self.runtime_dir.join("resolv.conf");
        std::fs::write(&path, RESOLV_CONF)
            .map_err(Error::io(format!("failed to write {}", path.display())))
    }

    fn add_to_hosts_file(&self, h: &HostSpec) -> Result<()> {
        use std::io::Write;
        let Some(name) = &h.name else {
            return Ok(());
        };
        let path = self.hosts_file();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{} {name}\n", h.ip).as_bytes()))
            .map_err(Error::io(format!(
                "failed to add to the hosts file {}",
                path.display()
            )))
    }

    /// Where member `m` runs, if on a host of its own.
    pub(super) fn on_host(&self, m: MemberId) -> Option<OnHost> {
        let index = self.slot(m).host?;
        let net = self.net.as_ref()?;
        Some(OnHost {
            netns: net.host_fd(index),
            hosts_file: self.hosts_file(),
            resolv_conf: self.runtime_dir.join("resolv.conf"),
        })
    }

    /// Where clients dial member `m` from.
    pub(super) fn dialer(&self, m: MemberId) -> Dialer {
        match (&self.net, self.slot(m).host) {
            (Some(net), Some(_)) => net.dialer(),
            _ => Dialer::default(),
        }
    }

    /// The name a client expects in `m`'s certificate: the identity's `server_name`, else what
    /// it dials (`dial`), else the host in `m`'s URLs.
    pub(super) fn expected_name(&self, m: MemberId, id: &IdentitySpec) -> Result<String> {
        if let Some(n) = &id.server_name {
            return Ok(n.clone());
        }
        let slot = self.slot(m);
        let Some(dial) = id.dial else {
            return Ok(slot.url_host.clone());
        };
        let host = slot.host.and_then(|i| self.hosts.get(i)).ok_or_else(|| {
            Error::Script(format!(
                "member {} has no host of its own, so `dial` has no meaning for it (give the \
                 cluster `hosts`)",
                slot.name
            ))
        })?;
        match (dial, &host.name) {
            (Dial::Ip, _) => Ok(host.ip.to_string()),
            (Dial::Name, Some(n)) => Ok(n.clone()),
            (Dial::Name, None) => Err(Error::Script(format!(
                "member {} is on host {}, which has no name to dial",
                slot.name, host.ip
            ))),
        }
    }
}
