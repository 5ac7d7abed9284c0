//! ferroturn: a TURN/STUN relay that drops in where coturn runs.

pub mod proto;
