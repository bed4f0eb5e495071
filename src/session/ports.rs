//! Ports for members, picked below the kernel's ephemeral range. A reserved port is let go the
//! moment before its member binds it; were it an ephemeral port, any outgoing connection on the
//! machine (another run's client or member, many at once in `etcdscript test`) could be given it
//! in between, and the member would fail with "address already in use" while its peers already
//! know its address. Outgoing connections never take ports below the range.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpSocket;

use crate::error::{Error, Result};

/// How many ports below the ephemeral range members' ports are picked from.
const SPAN: u16 = 8192;
/// How many ports to try there before letting the kernel choose (an ephemeral port).
const ATTEMPTS: usize = 64;
/// Linux's default ephemeral range, if /proc cannot say.
const DEFAULT_EPHEMERAL_LOW: u16 = 32768;

/// The lowest port the kernel hands out for outgoing connections.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_LOW)
}

/// A pseudo-random sequence that differs between processes and between calls (splitmix64).
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = u64::from(std::process::id()) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into());
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn bind(port: u16) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    Ok(socket)
}

/// Picks a free loopback port and holds it: bound, so that no other run is given it, but not
/// listening, so that a member dialing it before its owner starts is refused at once instead of
/// hanging in a handshake nobody answers (etcd waits a second per such peer at bootstrap).
pub(super) fn reserve_port() -> Result<(u16, TcpSocket)> {
    let low = ephemeral_low();
    let base = low.saturating_sub(SPAN).max(1024);
    if low > base {
        for _ in 0..ATTEMPTS {
            let port = base + (next_random() % u64::from(low - base)) as u16;
            if let Ok(socket) = bind(port) {
                return Ok((port, socket));
            }
        }
    }
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
        let low = ephemeral_low();
        let held: Vec<(u16, TcpSocket)> = (0..20).map(|_| reserve_port().unwrap()).collect();
        let mut ports: Vec<u16> = held.iter().map(|(p, _)| *p).collect();
        assert!(ports.iter().all(|&p| p < low), "{ports:?} vs {low}");
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 20, "a held port is never given twice");
    }
}
