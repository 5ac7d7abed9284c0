//! The sans-IO protocol core: no sockets, no clocks, no runtime. Packets and time go in through
//! `handle_*` calls; packets to send, timers and events come out.

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
