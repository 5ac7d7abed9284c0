//! The sans-IO protocol core: no sockets, no clocks, no runtime. Packets and time go in through
//! `handle_*` calls; packets to send, timers and events come out.
//!
//! A crate of its own (`ferroturn-proto`) so that the compiler, not a convention, keeps it free
//! of I/O: it depends on no socket, TLS, HTTP, metrics or async library, and it contains no
//! `unsafe` code. The server crate re-exports it as `ferroturn::proto`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod allocation;
pub mod auth;
pub mod bandwidth;
pub mod challenge_limit;
pub mod channel_data;
pub mod counters;
pub mod flow;
pub mod log_escape;
pub mod peer_policy;
pub mod ports;
pub mod quota;
pub mod server;
pub mod settings;
pub mod stun;
pub mod tcp_conns;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
