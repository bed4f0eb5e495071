//! Test-only behaviour, read once from the environment: the lifecycle tests make etcdscript
//! panic, lose the race for a port, or lose a starting member, on purpose. Never documented for users.

/// The environment variable: a comma-separated list of hook names.
pub const TEST_HOOKS: &str = "ETCDSCRIPT_TEST_HOOKS";

/// Which test hooks are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// `panic`: the engine gets a `panic_for_tests()` function.
    pub panic: bool,
    /// `steal-port`: a member's first start finds its client port taken.
    pub steal_port: bool,
    /// `steal-peer-port`: a member's first start finds its peer port taken.
    pub steal_peer_port: bool,
    /// `kill-second-start`: the second member of a `spawn_members` call is killed once past
    /// its bootstrap check, as a crash would (so the third has been launched meanwhile).
    pub kill_second_start: bool,
}

impl TestHooks {
    /// The hooks `ETCDSCRIPT_TEST_HOOKS` turns on.
    pub fn from_env() -> TestHooks {
        let value = std::env::var(TEST_HOOKS).unwrap_or_default();
        let on = |name: &str| value.split(',').any(|h| h.trim() == name);
        TestHooks {
            panic: on("panic"),
            steal_port: on("steal-port"),
            steal_peer_port: on("steal-peer-port"),
            kill_second_start: on("kill-second-start"),
        }
    }
}
