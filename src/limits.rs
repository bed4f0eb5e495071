//! Every bound on a wait, in one place. Nothing in etcdscript waits without one of these.

use std::time::Duration;

/// How long a spawned member may take to serve its peer port (or to exit with an error).
pub const MEMBER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `wait_healthy` waits for every member to answer a linearizable read.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(15);
/// The bound on one client call (connect, TLS handshake and request together).
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound on the TCP connect alone; the TLS handshake is covered by [`OP_TIMEOUT`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a health probe call may take before the probe tries again.
pub const PROBE_CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// Pause before asking a member again after "leader changed" and the like.
pub const CALL_RETRY_INTERVAL: Duration = Duration::from_millis(10);
/// Pause between health probes, and between polls of a starting member's log.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How often a running client call looks at the members' logs for a rejection.
pub const LOG_WATCH_INTERVAL: Duration = Duration::from_millis(2);
/// After a client call failed, how long to wait for the member's log to say why.
pub const ATTRIBUTION_GRACE: Duration = Duration::from_millis(100);
/// `stop_member`: how long a member has to exit after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for a killed member to be reaped.
pub const REAP_TIMEOUT: Duration = Duration::from_secs(2);
/// The default for `--timeout`: the whole run.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// `etcd --version` in `doctor`.
pub const VERSION_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// `wait_healthy`: a refusal between a waited-for member and a peer that does not rule out a
/// quorum is taken as the reason the member is not healthy only once the cluster has had this
/// many election timeouts to become healthy (an intruder is refused while the genuine members
/// elect a leader) ...
pub const HEALTH_GRACE_ELECTIONS: u32 = 20;
/// ... and at least this long.
pub const HEALTH_GRACE_MIN: Duration = Duration::from_secs(5);
/// `peer_refusal`: how long to watch a member's log for a refused connection.
pub const REFUSAL_WAIT: Duration = Duration::from_secs(3);
/// `member_add`: how long to retry while etcd answers "unhealthy cluster" (its strict
/// reconfiguration check wants every member connected for 5 s first).
pub const MEMBER_ADD_TIMEOUT: Duration = Duration::from_secs(10);
/// `member_add`: the pause between such retries.
pub const MEMBER_ADD_RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// How many times a member whose port was taken between our pick and its bind is started again.
pub const PORT_RETRIES: usize = 5;
/// How many log lines an error about a member quotes.
pub const LOG_TAIL_LINES: usize = 8;
/// `etcdscript test`: how long past its own `--timeout` a script's run may take to end (it tears
/// its members down first) before the suite kills it.
pub const SUITE_KILL_GRACE: Duration = Duration::from_secs(10);
/// `etcdscript test`: how long to wait for a killed script's run to be reaped.
pub const SUITE_REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// `etcdscript test`: the default `--timeout` of each script's run.
pub const SUITE_DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
