//! How an operation of a script fails: a rejection the script may expect, or a fatal error no
//! `expect_error` may swallow.

use crate::error::Error;
use crate::etcd::reject::Rejection;

/// The failure of one script operation.
#[derive(Debug)]
pub enum Fault {
    /// The operation was refused, and why: what `expect_error` is for.
    Rejected { op: String, rejection: Rejection },
    /// Anything else: a failed check, a script mistake, a broken environment.
    Fatal(Error),
}

impl Fault {
    /// Names the operation of a rejection.
    pub fn named(self, op: &str) -> Fault {
        match self {
            Fault::Rejected { rejection, .. } => {
                tracing::info!(op, class = %rejection.class, detail = %rejection.detail, "rejected");
                Fault::Rejected {
                    op: op.to_owned(),
                    rejection,
                }
            }
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
            Fault::Rejected { op, rejection } => {
                write!(f, "{op}: rejected: {}", rejection.summary())
            }
            Fault::Fatal(e) => write!(f, "{e}"),
        }
    }
}

/// The result of one script operation.
pub type OpResult<T> = std::result::Result<T, Fault>;
