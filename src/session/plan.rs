//! Clusters as planned: member names, ports, the probe identity, and the lookups of clusters
//! and members; membership changes (`member_add`), which plan a member at run time.

use std::collections::HashSet;

use super::{
    ports, valid_name, ClusterId, ClusterSpec, ClusterState, IdentitySpec, MemberId,
    MemberOverrides, MemberSlot, MemberState, Session, Target,
};
use crate::error::{Error, Result};
use crate::etcd::log::MemberLog;
use crate::fault::OpResult;
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
        if spec.certs.len() != spec.names.len() {
            return Err(Error::Script(format!(
                "certs has {} certificates for {} members",
                spec.certs.len(),
                spec.names.len()
            )));
        }
        for cert in &spec.certs {
            if !cert.has_usage(Usage::Server) {
                return Err(Error::Script(format!(
                    "cluster certificate `{}` lacks the \"server\" usage, so no client could ever connect; \
                     issue it with usage [\"server\", \"client\"] (to show a member refusing such a certificate, \
                     give it to one member with spawn_member's `cert` override)",
                    cert.name
                )));
            }
            if spec.peer_cert_auth && !cert.has_usage(Usage::Client) {
                tracing::warn!(cert = %cert.name, "a cluster certificate lacks the client usage: members will refuse each other as peers");
            }
        }
        if spec.hosts.is_some() && (spec.client_ports.is_some() || spec.peer_ports.is_some()) {
            return Err(Error::Script(
                "members with hosts listen on etcd's own ports (2379, 2380): leave out client_ports and peer_ports".into(),
            ));
        }
        if spec.http_listener && spec.hosts.is_some() {
            return Err(Error::Script(
                "http_listener is not available yet for members with hosts".into(),
            ));
        }
        if (spec.client_crl || spec.peer_crl) && spec.ca.is_bundle() {
            return Err(Error::Script(format!(
                "client_crl and peer_crl take the CRL of one CA, and `{}` is a trust bundle",
                spec.ca.name
            )));
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
        // Two runs of a suite that pin the same port take turns.
        let pinned: Vec<String> = [&spec.client_ports, &spec.peer_ports]
            .into_iter()
            .flatten()
            .flatten()
            .map(|p| format!("port-{p}"))
            .collect();
        if !pinned.is_empty() {
            self.hold_shared(&pinned, &format!("cluster {}", spec.token))?;
        }
        let mut members = Vec::new();
        let placed = self.place(&spec)?;
        for ((i, name), place) in spec.names.iter().enumerate().zip(placed) {
            let mut holds = Vec::new();
            let mut port = |pinned: &Option<Vec<u16>>, on_host: u16| -> Result<u16> {
                match pinned {
                    _ if place.host.is_some() => Ok(on_host),
                    Some(p) => Ok(p[i]),
                    None => {
                        let hold = ports::reserve()?;
                        let port = hold.port;
                        holds.push(hold);
                        Ok(port)
                    }
                }
            };
            let client_port = port(&spec.client_ports, super::hosts::CLIENT_PORT)?;
            let peer_port = port(&spec.peer_ports, super::hosts::PEER_PORT)?;
            let http_port = if spec.http_listener {
                let hold = ports::reserve()?;
                let port = hold.port;
                holds.push(hold);
                Some(port)
            } else {
                None
            };
            tracing::info!(member = %name, client_port, peer_port, "planned member");
            members.push(MemberSlot {
                name: name.clone(),
                client_port,
                peer_port,
                http_port,
                holds,
                state: MemberState::Planned,
                log: MemberLog {
                    member: name.clone(),
                    path: self.members_dir.join(format!("{name}.log")),
                },
                join: None,
                refusal_mark: 0,
                paused: false,
                removed: false,
                ip: place.ip,
                url_host: place.url_host,
                host: place.host,
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
                not_after_secs: None,
                key: crate::pki::KeyKind::EcP256,
                chain: false,
            },
        )?;
        let members_word = match &spec.hosts {
            None => spec.names.join(", "),
            Some(hosts) => spec
                .names
                .iter()
                .zip(hosts)
                .map(|(n, h)| format!("{n} on {}", h.describe()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let certs_word = if spec.one_cert() {
            format!("cert {}", spec.certs[0].name)
        } else {
            let names: Vec<&str> = spec.certs.iter().map(|c| c.name.as_str()).collect();
            format!("certs {}", names.join(", "))
        };
        let mut words = vec![
            format!("cluster {}: members {members_word}", spec.token),
            format!("{certs_word}, CA {}", spec.ca.name),
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
        if spec.http_listener {
            words
                .push("clients also served in plain text (http://), on a port of their own".into());
        }
        if self.transcript.tracing() {
            self.transcript.trace(crate::trace::Step::Cluster {
                name: spec.token.clone(),
                members: members
                    .iter()
                    .map(|m| crate::trace::PlannedMember {
                        name: m.name.clone(),
                        client_port: m.client_port,
                        peer_port: m.peer_port,
                        http_port: m.http_port,
                    })
                    .collect(),
                pinned: spec.client_ports.is_some() || spec.peer_ports.is_some(),
                hosts: spec.hosts.is_some(),
                probe: std::rc::Rc::new(probe.clone()),
                ca: spec.ca.name.clone(),
            });
        }
        self.transcript.line(words.join("; "));
        self.clusters.push(ClusterState {
            spec,
            members,
            probe,
            remote: None,
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
    /// A member's peer URL; a remote member's is not known (its endpoint is a client URL).
    pub fn peer_url(&self, m: MemberId) -> Result<String> {
        if self.is_remote(m) {
            return Err(Error::Script(format!(
                "member {} is remote: its peer URL is not known here (give the peer endpoints \
                 as a remote cluster of their own)",
                self.member_name(m)
            )));
        }
        let slot = self.slot(m);
        Ok(format!("https://{}:{}", slot.url_host, slot.peer_port))
    }

    pub fn client_url(&self, m: MemberId) -> String {
        let slot = self.slot(m);
        format!("https://{}:{}", slot.url_host, slot.client_port)
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

    pub(super) fn repick_ports(&mut self, id: ClusterId) -> Result<()> {
        for slot in &mut self.clusters[id.0].members {
            let (client, peer) = (ports::reserve()?, ports::reserve()?);
            slot.client_port = client.port;
            slot.peer_port = peer.port;
            slot.holds = vec![client, peer];
            if slot.http_port.is_some() {
                let http = ports::reserve()?;
                slot.http_port = Some(http.port);
                slot.holds.push(http);
            }
        }
        Ok(())
    }

    /// `member_add(cluster, name, overrides)`: asks the cluster (through its first running member,
    /// as `acting_as`, by default the cluster's own admin certificate) to add a member, then
    /// starts it to join the cluster.
    pub fn member_add(
        &mut self,
        id: ClusterId,
        name: &str,
        over: &MemberOverrides,
        acting_as: Option<&IdentitySpec>,
    ) -> OpResult<MemberId> {
        self.ensure_local_target(Target::Cluster(id), "member_add")?;
        valid_name("member", name)?;
        if self
            .clusters
            .iter()
            .any(|c| c.members.iter().any(|m| m.name == name))
        {
            return Err(Error::Script(format!("member name `{name}` is already used")).into());
        }
        if over.cert.is_none() && !self.cluster(id).spec.one_cert() {
            return Err(Error::Script(format!(
                "member_add on cluster {}: its members have certificates of their own, so give \
                 this one its own with `cert`",
                self.cluster_name(id)
            ))
            .into());
        }
        if self.cluster(id).spec.hosts.is_some() {
            return Err(Error::Script(format!(
                "member_add on cluster {}: members added at run time cannot have hosts yet",
                self.cluster_name(id)
            ))
            .into());
        }
        let (client, peer) = (ports::reserve()?, ports::reserve()?);
        let (client_port, peer_port) = (client.port, peer.port);
        let mut holds = vec![client, peer];
        let http_port = if self.cluster(id).spec.http_listener {
            let http = ports::reserve()?;
            let port = http.port;
            holds.push(http);
            Some(port)
        } else {
            None
        };
        let host = self.cluster(id).spec.host.clone();
        let peer_url = format!("https://{host}:{peer_port}");
        let probe = acting_as
            .cloned()
            .unwrap_or_else(|| self.admin_identity(id));
        let desc = match acting_as {
            Some(who) => format!(
                "member add {name} via {} {}",
                self.cluster_name(id),
                who.describe()
            ),
            None => format!("member add {name} via {}", self.cluster_name(id)),
        };
        let url = peer_url.clone();
        let members = self
            .membership_call(Target::Cluster(id), &probe, move |c| {
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
            })
            .map_err(|f| f.named(&desc))?;
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
            http_port,
            holds,
            state: MemberState::Planned,
            log,
            join: Some(join),
            refusal_mark: 0,
            paused: false,
            removed: false,
            ip: std::net::Ipv4Addr::LOCALHOST,
            url_host: host,
            host: None,
        });
        let m = MemberId {
            cluster: id,
            index: c.members.len() - 1,
        };
        self.spawn_member(m, over)?;
        Ok(m)
    }
}
