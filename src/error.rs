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
    /// `export`: the export was written, but some steps have no shell form (it says which).
    pub const PARTIAL_EXPORT: i32 = 6;
    /// A bug: etcdscript panicked (Rust's own code for a panic).
    pub const PANIC: i32 = 101;
    /// Interrupted by SIGINT (128 + 2); SIGTERM and SIGHUP give 128 + their number.
    pub const INTERRUPTED: i32 = 130;

    /// Every code with what it means: the one list `--help` and README print.
    pub const ALL: &[(i32, &str)] = &[
        (SUCCESS, "every check held"),
        (CHECK_FAILED, "a check failed: an assertion, an `expect_error` whose operation succeeded or was rejected for another reason, or an operation that had to work and was rejected"),
        (USAGE, "bad command line (an unknown flag, a `--timeout` out of range)"),
        (SCRIPT_ERROR, "script error: syntax, unknown function or wrong arguments, unknown option, a number out of range, an etcd flag that names a path, unreadable script (or not a regular file, or over 1 MiB)"),
        (ENVIRONMENT, "environment error: no etcd, a member that would not start (unless a check expected it), a work dir problem (not empty, a symbolic link)"),
        (TIMEOUT, "timeout or budget: the run went past `--timeout`, or the script past its operation budget or its memory limit"),
        (PANIC, "a bug: etcdscript panicked (the members are killed first, and the message says so)"),
        (INTERRUPTED, "interrupted by Ctrl-C (SIGTERM gives 143, SIGHUP 129): members killed, work dir removed unless `--keep`"),
    ];

    /// The codes as a Markdown table, for README.
    pub fn markdown() -> String {
        let mut out = String::from("| code | meaning |\n| --- | --- |\n");
        for (code, meaning) in ALL {
            out.push_str(&format!("| {code} | {meaning} |\n"));
        }
        out
    }

    /// The codes as `--help` lists them.
    pub fn help() -> String {
        let mut out = String::from("Exit codes:\n");
        for (code, meaning) in ALL {
            let short = meaning.split([':', '(']).next().unwrap_or(meaning).trim();
            out.push_str(&format!("  {code:>3}  {short}\n"));
        }
        out
    }
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
    /// `not_checkable(reason)`: what a `finding` could not check, and why. Outside a finding it
    /// ends the run as a script error.
    #[error("not checkable: {0}")]
    NotCheckable(String),
    #[error("{0}")]
    Environment(String),
    #[error("{0}")]
    Timeout(String),
    /// An error at a place in a script. `note` is what the transcript leaves out (the raw words
    /// of a rejection); `cli.rs` renders the place and the note, once.
    #[error("{inner}")]
    Located {
        at: Location,
        inner: Box<Error>,
        note: Option<String>,
    },
    #[error("certificate generation failed: {0}")]
    Pki(#[source] rcgen::Error),
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
            Error::ReadScript { .. } | Error::Script(_) | Error::NotCheckable(_) => {
                exit_code::SCRIPT_ERROR
            }
            Error::CheckFailed(_) => exit_code::CHECK_FAILED,
            Error::Environment(_) | Error::Io { .. } | Error::Pki(_) => exit_code::ENVIRONMENT,
            Error::Timeout(_) => exit_code::TIMEOUT,
            Error::Located { inner, .. } => inner.exit_code(),
        }
    }

    /// The first line of what went wrong, without its place: the transcript's FAILED line.
    pub fn headline(&self) -> String {
        match self {
            Error::Located { inner, .. } => inner.headline(),
            other => other.to_string().lines().next().unwrap_or("").to_owned(),
        }
    }

    /// The same error, as a value of its own (the one inside a fault stays where it is).
    pub fn duplicate(&self) -> Error {
        match self {
            Error::ReadScript { path, source } => {
                Error::Script(format!("cannot read script {}: {source}", path.display()))
            }
            Error::Script(m) => Error::Script(m.clone()),
            Error::CheckFailed(m) => Error::CheckFailed(m.clone()),
            Error::NotCheckable(m) => Error::NotCheckable(m.clone()),
            Error::Environment(m) => Error::Environment(m.clone()),
            Error::Timeout(m) => Error::Timeout(m.clone()),
            Error::Io { context, source } => Error::Environment(format!("{context}: {source}")),
            Error::Pki(e) => Error::Environment(format!("certificate generation failed: {e}")),
            Error::Located { at, inner, note } => Error::Located {
                at: at.clone(),
                inner: Box::new(inner.duplicate()),
                note: note.clone(),
            },
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// Where in a script something happened, with the line to quote.
#[derive(Clone, Debug)]
pub struct Location {
    /// The script's name as given.
    pub file: String,
    /// 1-based; `None` where the place is the script as a whole.
    pub line: Option<usize>,
    pub col: usize,
    /// The script's line, quoted in part if long.
    pub text: String,
    /// The caret's column in `text`.
    pub caret: usize,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
