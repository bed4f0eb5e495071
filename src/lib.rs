//! etcdscript: scripts that build a PKI, start real etcd members and prove both what must work
//! and what must be rejected.

// Output goes through `transcript`, which survives a closed pipe; `println!` would panic.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod audit;
pub mod cli;
pub mod error;
pub mod etcd;
pub mod export;
pub mod fault;
pub mod hooks;
pub mod lifecycle;
pub mod limits;
pub mod memory;
pub mod netns;
pub mod pki;
pub mod quote;
pub mod runner;
pub mod script;
pub mod session;
pub mod suite;
pub mod trace;
pub mod transcript;
pub mod workdirs;

pub use error::{Error, Result};
