//! etcdscript: scripts that build a PKI, start real etcd members and prove both what must work
//! and what must be rejected.

pub mod cli;
pub mod error;
pub mod etcd;
pub mod fault;
pub mod lifecycle;
pub mod limits;
pub mod pki;
pub mod runner;
pub mod script;
pub mod session;
pub mod suite;
pub mod transcript;

pub use error::{Error, Result};
