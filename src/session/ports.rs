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

/// Where this process starts looking, so that concurrent runs rarely try the same ports.
fn start(span: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) % span
}

fn bind(port: u16) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    Ok(socket)
}

/// Picks a free loopback port and holds it until the socket is dropped.
pub(super) fn reserve() -> Result<(u16, TcpSocket)> {
    let (low, high) = range();
    let span = u32::from(high - low);
    let first = start(span);
    for i in 0..ATTEMPTS.min(span) {
        let port = low + ((first + i * 7_919) % span) as u16;
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
