//! Loopback ports for members: picked below the kernel's ephemeral range and held for the whole
//! run.
//!
//! A port is held bound, so that no other run is given it, but not listening, so that a member
//! dialing it while its owner does not run is refused at once instead of hanging in a handshake
//! nobody answers (etcd waits a second per such peer at bootstrap). While its member does not
//! run, the hold is exclusive: nothing else can bind the port. From just before its member's etcd
//! starts, the hold is shared (SO_REUSEADDR): etcd, which binds with SO_REUSEADDR too, binds and
//! listens beside it, while other runs, which pick ports by binding without it, still cannot take
//! it. So there is no moment when the port is nobody's. Ports come from below the ephemeral
//! range, where no outgoing connection is given one as its source port.

use std::net::SocketAddr;

use tokio::net::TcpSocket;

use crate::error::{Error, Result};

/// The lowest port handed out: above the ports tutorials pin (etcd's 2379/2380, the seed's
/// 23791-23803), so that a run with pinned ports never meets a port another run reserved.
const LOWEST: u16 = 24_000;
/// How many ports are tried before giving up.
const ATTEMPTS: u32 = 2_000;

/// The ports to pick from: from [`LOWEST`] up to the start of the ephemeral range.
fn range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32_768);
    (LOWEST, ephemeral_low.max(LOWEST + 2_000))
}

/// A pseudo-random number, different in every process and every call: each port is picked at
/// random, so that concurrent runs do not walk the same sequence (and meet the ports others have
/// just let go).
fn random() -> u32 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ nanos
        ^ (u64::from(std::process::id()) << 32);
    // splitmix64
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) as u32
}

fn bind(port: u16) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    Ok(socket)
}

/// A port held for a member: bound, never listening.
#[derive(Debug)]
pub(super) struct Hold {
    pub port: u16,
    socket: TcpSocket,
}

impl Hold {
    /// Lets its member's etcd bind the port beside the hold (just before it starts).
    pub fn share(&self) {
        if let Err(e) = self.socket.set_reuseaddr(true) {
            tracing::warn!(port = self.port, "could not share a held port: {e}");
        }
    }

    /// Keeps everyone else from binding the port (once its member no longer runs).
    pub fn exclude(&self) {
        if let Err(e) = self.socket.set_reuseaddr(false) {
            tracing::warn!(port = self.port, "could not hold a port alone again: {e}");
        }
    }
}

/// Picks a free loopback port and holds it, exclusively, until the hold is dropped.
pub(super) fn reserve() -> Result<Hold> {
    let (low, high) = range();
    let span = u32::from(high - low);
    for _ in 0..ATTEMPTS {
        let port = low + (random() % span) as u16;
        if let Ok(socket) = bind(port) {
            return Ok(Hold { port, socket });
        }
    }
    // The range is crowded: let the kernel choose, as a last resort.
    let socket = bind(0).map_err(Error::io("failed to find a free port"))?;
    let port = socket
        .local_addr()
        .map_err(Error::io("failed to read a port"))?
        .port();
    Ok(Hold { port, socket })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_below_the_ephemeral_range_and_held() {
        let (low, high) = range();
        let a = reserve().unwrap();
        let b = reserve().unwrap();
        assert_ne!(a.port, b.port);
        for p in [a.port, b.port] {
            assert!((low..high).contains(&p), "{p} not in {low}..{high}");
            // A listener with SO_REUSEADDR (etcd's, Rust's) cannot take it, nor a plain bind.
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", p)).is_err(),
                "{p} is not held"
            );
            assert!(bind(p).is_err(), "{p} is not held");
        }
    }

    /// Shared, the hold lets a listener with SO_REUSEADDR (as etcd's) bind the port beside it,
    /// but not a plain bind (another run picking a port); excluded again, it lets neither.
    #[test]
    fn a_shared_hold_lets_its_member_bind_and_no_other_run() {
        let held = reserve().unwrap();
        let p = held.port;
        held.share();
        let member = std::net::TcpListener::bind(("127.0.0.1", p)).expect("the member binds");
        assert!(bind(p).is_err(), "another run could take {p}");
        let client = std::net::TcpStream::connect(("127.0.0.1", p)).expect("dials reach it");
        drop((client, member.accept().expect("accepted")));
        drop(member);
        held.exclude();
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", p)).is_err(),
            "{p} is free"
        );
        assert!(bind(p).is_err(), "{p} is free");
        // Control: without the hold, the port can be bound.
        drop(held);
        assert!(bind(p).is_ok() || std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
    }
}
