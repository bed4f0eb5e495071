//! Loopback ports for members: picked below the kernel's ephemeral range and held until the
//! member starts.
//!
//! A port is held bound, so that no other run is given it, but not listening, so that a member
//! dialing it before its owner starts is refused at once instead of hanging in a handshake nobody
//! answers (etcd waits a second per such peer at bootstrap). It is let go a moment before etcd
//! binds it; a port from the ephemeral range could be taken in that moment as the source port of
//! any outgoing connection on the machine, so ports come from below that range, where only an
//! explicit bind can take them.

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

/// Holds `port` again for the member it was picked for, if no one else has bound it since.
///
/// With SO_REUSEADDR, the hold can share the port with the connections a killed member left in
/// TIME_WAIT. Other runs pick ports without it, so they still cannot take a held port; nor can
/// anything bind it while it is held without SO_REUSEADDR of its own.
pub(super) fn hold(port: u16) -> Option<TcpSocket> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.set_reuseaddr(true).ok()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port))).ok()?;
    Some(socket)
}

/// Picks a free loopback port and holds it until the socket is dropped.
pub(super) fn reserve() -> Result<(u16, TcpSocket)> {
    let (low, high) = range();
    let span = u32::from(high - low);
    for _ in 0..ATTEMPTS {
        let port = low + (random() % span) as u16;
        if let Ok(socket) = bind(port) {
            return Ok((port, socket));
        }
    }
    // The range is crowded: let the kernel choose, as a last resort.
    let socket = bind(0).map_err(Error::io("failed to find a free port"))?;
    let port = socket
        .local_addr()
        .map_err(Error::io("failed to read a port"))?
        .port();
    Ok((port, socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_below_the_ephemeral_range_and_held() {
        let (low, high) = range();
        let (a, _held_a) = reserve().unwrap();
        let (b, _held_b) = reserve().unwrap();
        assert_ne!(a, b);
        for p in [a, b] {
            assert!((low..high).contains(&p), "{p} not in {low}..{high}");
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", p)).is_err(),
                "{p} is not held"
            );
        }
    }
}
