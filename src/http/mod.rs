//! The control-plane HTTP listeners: metrics and health, and the admin API.

pub mod api;
pub mod credentials;
pub mod json;
pub mod server;
