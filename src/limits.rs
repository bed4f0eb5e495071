//! Every bound on a wait, in one place. Nothing in etcdscript waits without one of these.
//! Bounds on what a run reads, quotes and holds live here too.

use std::time::Duration;

/// How long a spawned member may take to serve its peer port (or to exit with an error).
pub const MEMBER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `wait_healthy` waits for every member to answer a linearizable read.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(15);
/// The bound on one client call (connect, TLS handshake and request together).
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound on the TCP connect alone; the TLS handshake is covered by [`OP_TIMEOUT`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a health probe call may take before the probe tries again, at first ...
pub const PROBE_CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// ... doubling each round the member is not yet healthy, up to this.
pub const PROBE_CALL_TIMEOUT_MAX: Duration = Duration::from_secs(2);
/// Pause before asking a member again after "leader changed" and the like.
pub const CALL_RETRY_INTERVAL: Duration = Duration::from_millis(10);
/// Pause between health probes, and between polls of a starting member's log.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How often a running client call looks at the members' logs for a rejection.
pub const LOG_WATCH_INTERVAL: Duration = Duration::from_millis(2);
/// After a client call failed, how long to wait for the member's log to say why.
pub const ATTRIBUTION_GRACE: Duration = Duration::from_millis(100);
/// How long one `ip` command setting up the hosts' network may take.
pub const IP_TIMEOUT: Duration = Duration::from_secs(5);

/// `stop_member`: etcd's own bound for handing its leadership over as it stops is its request
/// timeout, this plus two election timeouts (etcd's `ReqTimeout`).
pub const ETCD_REQUEST_TIMEOUT_BASE: Duration = Duration::from_secs(5);
/// `stop_member`: how long past that bound a member may take to stop before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// `stop_member` of the last member running in its cluster: how long past two election
/// timeouts to wait for it to step down (it cannot hand its leadership to anyone).
pub const STEP_DOWN_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for a killed member to be reaped.
pub const REAP_TIMEOUT: Duration = Duration::from_secs(2);
/// The default for `--timeout`: the whole run.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest `--timeout` (a week).
pub const MAX_RUN_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// The largest `health_timeout_ms` a cluster may ask for (an hour; the run's deadline still
/// cuts it short).
pub const MAX_HEALTH_TIMEOUT: Duration = Duration::from_secs(3600);
/// `etcd --version` in `doctor`.
pub const VERSION_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// `peer_refusal`: how long to watch a member's log for a refused connection.
pub const REFUSAL_WAIT: Duration = Duration::from_secs(3);
/// `member_add`, `member_remove`: how long to retry while etcd answers "unhealthy cluster" (its
/// strict reconfiguration check wants every member connected for 5 s first).
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a run of a suite waits for a pinned port or a remote cluster another run of the
/// suite holds (that run's own timeout bounds it too), and how often it looks.
pub const SHARED_WAIT: Duration = Duration::from_secs(120);
pub const SHARED_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// `member_add`, `member_remove`: the pause between such retries.
pub const MEMBERSHIP_RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// How many times a member whose port was taken between our pick and its bind is started again.
pub const PORT_RETRIES: usize = 5;
/// The disk room a member's data dir takes as it starts: etcd preallocates two write-ahead log
/// segments of 64 MB (the first and the next), and its database and log add a little. A member
/// is not started with less free (an environment error, not a failed start).
pub const MEMBER_DISK_BYTES: u64 = 130_000_000;
/// The disk room a member started again on its data dir takes beyond what it had: the next
/// write-ahead log segment, which etcd preallocates again (it drops it on a graceful stop).
pub const MEMBER_RESTART_DISK_BYTES: u64 = 65_000_000;
/// How many log lines an error about a member quotes.
pub const LOG_TAIL_LINES: usize = 8;
/// The largest script `run` and `check` read.
pub const MAX_SCRIPT_BYTES: u64 = 1 << 20;
/// The most characters of a script's line that an error quotes: a longer one is shown in part,
/// around the column the error points at.
pub const MAX_QUOTE_CHARS: usize = 200;
/// The longest line of an error message; longer ones (a name or a log line a script made huge)
/// are cut.
pub const MAX_ERROR_LINE_CHARS: usize = 1000;
/// The most memory a run may hold (all of etcdscript, the script's values included); past it the
/// script is stopped with an error (exit 5). Rhai's own limits (string, array and map sizes) do
/// not see everything a script can hold, such as function pointers with curried arguments.
pub const MAX_MEMORY: usize = 512 << 20;
/// `etcdscript test`: how long past its own `--timeout` a script's run may take to end (it tears
/// its members down first) before the suite kills it.
pub const SUITE_KILL_GRACE: Duration = Duration::from_secs(10);
/// `etcdscript test`: how long to wait for a killed script's run to be reaped.
pub const SUITE_REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// `etcdscript test`: the default `--timeout` of each script's run.
pub const SUITE_DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The most an HTTP answer may hold (`http_get` of `/metrics` is about 200 KiB).
pub const MAX_HTTP_RESPONSE_BYTES: usize = 8 << 20;
/// How long the name of a remote cluster's endpoint may take to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the clean-up of a remote cluster may take at the end of a run, whatever its
/// --timeout: each key written there is deleted, each call bounded by [`OP_TIMEOUT`].
pub const REMOTE_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
