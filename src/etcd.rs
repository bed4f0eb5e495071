//! Real etcd: the member process, its log, the client, and why things are refused.

pub mod args;
pub mod client;
pub mod evidence;
pub mod flags;
pub mod http;
pub mod log;
pub mod process;
pub mod reject;
pub mod served;
pub mod tls;
