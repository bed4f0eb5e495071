//! Hosts: each member host in a network namespace of its own, with its own address, joined by a
//! bridge in one more namespace, the switch, where our client lives. So a member's connections
//! come from its own address, as on real hosts.
//!
//! The namespaces are anonymous: made by a thread that unshares its network namespace, and held
//! by the file descriptors kept here. Nothing is named or mounted, so they are gone, with their
//! links and the bridge, once the run's descriptors are closed and its members have exited,
//! however the run ends (a SIGKILLed run's members are reaped by the next run or `clean`).
//! Links are set up by iproute2's `ip`, run inside each namespace.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, Result};
use crate::limits;

/// The addresses hosts may have: the benchmarking range (RFC 2544), one subnet.
pub const NETWORK: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// A link-layer address no interface of the run has: frames sent to it are dropped.
const NOWHERE: &str = "02:00:00:00:00:01";

/// Our client's address, on the switch's bridge.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// The first and last addresses of [`NETWORK`] (the network's own and its broadcast).
pub fn ends() -> (Ipv4Addr, Ipv4Addr) {
    let mask = u32::MAX << (32 - NETWORK.1);
    let first = u32::from(NETWORK.0) & mask;
    (Ipv4Addr::from(first), Ipv4Addr::from(first | !mask))
}

/// Whether `ip` is in [`NETWORK`].
pub fn in_network(ip: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - NETWORK.1);
    u32::from(ip) & mask == u32::from(NETWORK.0) & mask
}

/// The run's network: the switch and the hosts made so far.
pub struct Net {
    home: Arc<OwnedFd>,
    switch: Arc<OwnedFd>,
    hosts: Vec<(Ipv4Addr, OwnedFd)>,
    /// The partitions in force: host `i` drops what it sends to these addresses.
    cuts: Vec<(usize, Ipv4Addr)>,
}

/// Where our client makes its sockets: the switch, or the namespace we run in.
#[derive(Clone, Debug, Default)]
pub struct Dialer {
    ns: Option<(Arc<OwnedFd>, Arc<OwnedFd>)>,
}

impl Dialer {
    /// A TCP socket in the dialer's namespace, bound to our address there.
    pub fn socket(&self) -> std::io::Result<tokio::net::TcpSocket> {
        let Some((home, switch)) = &self.ns else {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            return Ok(s);
        };
        // A socket belongs to the namespace of the thread that made it, for good.
        setns(switch.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        let made = tokio::net::TcpSocket::new_v4();
        if let Err(e) = setns(home.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Everything this thread does next would happen in the wrong namespace, members
            // on loopback included: nothing after this can be trusted.
            crate::transcript::err(format!(
                "etcdscript: cannot return to our network namespace ({e}); aborting"
            ));
            std::process::abort();
        }
        let s = made?;
        s.bind(SocketAddr::from((CLIENT_IP, 0)))?;
        Ok(s)
    }
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("hosts", &self.hosts.iter().map(|h| h.0).collect::<Vec<_>>())
            .finish()
    }
}

impl Net {
    /// Makes the switch: a namespace with a bridge that has our client's address.
    pub fn create() -> Result<Net> {
        let home = std::fs::File::open("/proc/thread-self/ns/net")
            .map(OwnedFd::from)
            .map_err(|e| unavailable(&format!("cannot read our network namespace: {e}")))?;
        let switch = new_namespace()?;
        ip(
            &switch,
            &[
                "link set lo up".into(),
                "link add br0 type bridge".into(),
                format!("addr add {CLIENT_IP}/{} dev br0", NETWORK.1),
                "link set br0 up".into(),
            ],
        )?;
        Ok(Net {
            home: Arc::new(home),
            switch: Arc::new(switch),
            hosts: Vec::new(),
            cuts: Vec::new(),
        })
    }

    /// Adds a host with address `addr`, linked to the bridge; returns its index.
    pub fn add_host(&mut self, addr: Ipv4Addr) -> Result<usize> {
        let i = self.hosts.len();
        let ns = new_namespace()?;
        let port = format!("host{i}");
        let switch_path = format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.switch.as_raw_fd()
        );
        ip(
            &ns,
            &[
                "link set lo up".into(),
                format!("link add eth0 type veth peer name {port} netns {switch_path}"),
                format!("addr add {addr}/{} dev eth0", NETWORK.1),
                "link set eth0 up".into(),
            ],
        )?;
        ip(&self.switch, &[format!("link set {port} master br0 up")])?;
        let id = std::fs::read_link(format!("/proc/self/fd/{}", ns.as_raw_fd()))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        tracing::info!(%addr, netns = %id, "made host namespace");
        self.hosts.push((addr, ns));
        Ok(i)
    }

    /// Cuts host `i` off from `others`: its neighbour entries for them point to an address no
    /// interface has, so what it sends them is dropped, silently, on new connections and on
    /// the ones already open (a partition; no error comes back to either side).
    pub fn cut(&mut self, i: usize, others: &[Ipv4Addr]) -> Result<()> {
        let commands: Vec<String> = others
            .iter()
            .map(|ip| format!("neigh replace {ip} lladdr {NOWHERE} dev eth0 nud permanent"))
            .collect();
        ip(&self.hosts[i].1, &commands)?;
        for ip in others {
            if !self.cuts.contains(&(i, *ip)) {
                self.cuts.push((i, *ip));
            }
        }
        Ok(())
    }

    /// Undoes every cut: the hosts learn each other's addresses again.
    pub fn mend(&mut self) -> Result<()> {
        for (i, ip) in std::mem::take(&mut self.cuts) {
            self::ip(&self.hosts[i].1, &[format!("neigh del {ip} dev eth0")])?;
        }
        Ok(())
    }

    /// The descriptor of host `i`'s namespace, for a process to join between fork and exec.
    pub fn host_fd(&self, i: usize) -> RawFd {
        self.hosts[i].1.as_raw_fd()
    }

    /// Where our client dials from.
    pub fn dialer(&self) -> Dialer {
        Dialer {
            ns: Some((self.home.clone(), self.switch.clone())),
        }
    }
}

/// A new network namespace, made by a thread of its own (a namespace is per thread until a
/// process joins it), and held by the descriptor returned.
fn new_namespace() -> Result<OwnedFd> {
    std::thread::spawn(|| -> Result<OwnedFd> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| unavailable(&e.to_string()))?;
        std::fs::File::open("/proc/thread-self/ns/net")
            .map(OwnedFd::from)
            .map_err(|e| unavailable(&format!("cannot open the new namespace: {e}")))
    })
    .join()
    .map_err(|_| Error::Environment("the thread making a network namespace panicked".into()))?
}

fn unavailable(why: &str) -> Error {
    Error::Environment(format!(
        "hosts need network namespaces, and this run cannot make them ({why}): run etcdscript as \
         root (or with CAP_SYS_ADMIN and CAP_NET_ADMIN), or leave out `hosts` to run every member \
         on 127.0.0.1"
    ))
}

/// Runs `ip -batch -` inside namespace `ns` with `commands`, bounded by [`limits::IP_TIMEOUT`].
fn ip(ns: &OwnedFd, commands: &[String]) -> Result<()> {
    let fd = ns.as_raw_fd();
    let mut cmd = Command::new("ip");
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure makes one system call (setns) on a descriptor
    // that stays open in the child until exec.
    unsafe {
        cmd.pre_exec(move || {
            let ns = std::os::fd::BorrowedFd::borrow_raw(fd);
            setns(ns, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::Environment(match e.kind() {
            std::io::ErrorKind::NotFound => {
                "hosts need iproute2's `ip`, which is not on PATH (apt-get install iproute2)".into()
            }
            _ => format!("failed to run `ip` in a host's namespace: {e}"),
        })
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let text = commands.join("\n") + "\n";
        // If `ip` exited early, its status and error say why, below.
        let _ = stdin.write_all(text.as_bytes());
    }
    let deadline = Instant::now() + limits::IP_TIMEOUT;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(Error::io("failed to wait for `ip`"))?
        {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Environment(format!(
                "`ip` did not finish within {:?}",
                limits::IP_TIMEOUT
            )));
        }
        std::thread::sleep(limits::POLL_INTERVAL);
    };
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        return Err(Error::Environment(format!(
            "failed to set up the hosts' network (`ip {}`): {}",
            commands.join("; "),
            err.trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_is_the_benchmarking_range() {
        assert!(in_network(Ipv4Addr::new(198, 18, 0, 11)));
        assert!(in_network(Ipv4Addr::new(198, 19, 255, 254)));
        assert!(!in_network(Ipv4Addr::new(198, 20, 0, 1)));
        assert!(!in_network(Ipv4Addr::new(127, 0, 0, 1)));
    }
}
