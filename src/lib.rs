//! ferroturn: a TURN/STUN relay that drops in where coturn runs.

pub mod admin;
pub mod bench;
pub mod config;
pub mod http;
pub mod jitsi;
pub mod logging;
pub use ferroturn_proto as proto;
pub mod runtime;
pub mod signals;
pub mod subcommand;
