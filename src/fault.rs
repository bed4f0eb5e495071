//! How an operation of a script fails: a rejection the script may expect, or a fatal error no
//! `expect_error` (and no `try`/`catch`) may swallow.

use crate::error::Error;
use crate::etcd::reject::Rejection;

/// The failure of one script operation.
#[derive(Debug)]
pub enum Fault {
    /// The operation was refused, and why: what `expect_error` is for. `seq` is the number of
    /// the operation that was refused (see [`crate::session::Session::next_op`]), so that a
    /// rejection caught earlier and thrown again later is told apart from a fresh one.
    Rejected {
        op: String,
        rejection: Rejection,
        seq: u64,
    },
    /// Anything else: a failed check, a script mistake, a broken environment.
    Fatal(Error),
}

impl Fault {
    /// A rejection of the operation `op`, not yet numbered.
    pub fn rejected(op: impl Into<String>, rejection: Rejection) -> Fault {
        Fault::Rejected {
            op: op.into(),
            rejection,
            seq: 0,
        }
    }

    /// Names the operation of a rejection.
    pub fn named(self, op: &str) -> Fault {
        match self {
            Fault::Rejected { rejection, seq, .. } => {
                tracing::info!(op, class = %rejection.class, detail = %rejection.detail, "rejected");
                Fault::Rejected {
                    op: op.to_owned(),
                    rejection,
                    seq,
                }
            }
            other => other,
        }
    }

    /// Whether no script may catch it: anything but a rejection. A start failure is no
    /// rejection either, though `expect_error` may expect it by its class.
    pub fn is_fatal(&self) -> bool {
        match self {
            Fault::Fatal(_) => true,
            Fault::Rejected { rejection, .. } => {
                rejection.class == crate::etcd::reject::Class::StartFailed
            }
        }
    }

    /// Numbers a rejection with the operation that was refused.
    pub fn numbered(self, n: u64) -> Fault {
        match self {
            Fault::Rejected { op, rejection, .. } => Fault::Rejected {
                op,
                rejection,
                seq: n,
            },
            other => other,
        }
    }
}

impl From<Error> for Fault {
    fn from(e: Error) -> Self {
        Fault::Fatal(e)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Rejected { op, rejection, .. } => {
                write!(
                    f,
                    "{op}: {}: {}",
                    rejection.class.verb(),
                    rejection.summary()
                )
            }
            Fault::Fatal(e) => write!(f, "{e}"),
        }
    }
}

/// The result of one script operation.
pub type OpResult<T> = std::result::Result<T, Fault>;
