//! The crate's error type and the one place that maps outcomes to exit codes.

use std::path::PathBuf;

/// Exit codes, documented in README.md ("Exit codes").
pub mod exit_code {
    /// Every check held.
    pub const SUCCESS: i32 = 0;
    /// A check did not hold: an assertion failed, an expected rejection did not happen (or had
    /// another class), or an operation that had to work was rejected.
    pub const CHECK_FAILED: i32 = 1;
    /// The command line was wrong (clap's own code for usage errors).
    pub const USAGE: i32 = 2;
    /// The script is wrong: it does not parse, calls an unknown function, passes bad options.
    pub const SCRIPT_ERROR: i32 = 3;
    /// The environment failed the script: no etcd binary, a member that would not start, an I/O
    /// error in the work dir.
    pub const ENVIRONMENT: i32 = 4;
    /// The run went past `--timeout`, or the script went past its operation budget or its
    /// memory limit.
    pub const TIMEOUT: i32 = 5;
    /// Interrupted by SIGINT (128 + 2); SIGTERM and SIGHUP give 128 + their number.
    pub const INTERRUPTED: i32 = 130;
}

/// Errors that end a run. Failures a script may expect (`expect_error`) are not here: they are
/// [`crate::fault::Fault`] values travelling inside Rhai until the run ends.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read script {path}: {source}")]
    ReadScript {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Script(String),
    #[error("{0}")]
    CheckFailed(String),
    #[error("{0}")]
    Environment(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::ReadScript { .. } | Error::Script(_) => exit_code::SCRIPT_ERROR,
            Error::CheckFailed(_) => exit_code::CHECK_FAILED,
            Error::Environment(_) | Error::Io { .. } => exit_code::ENVIRONMENT,
            Error::Timeout(_) => exit_code::TIMEOUT,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
