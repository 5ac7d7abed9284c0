//! ferroturn: a TURN/STUN relay that drops in where coturn runs.

pub mod bench;
pub mod config;
pub mod logging;
pub mod proto;
pub mod runtime;
pub mod signals;
