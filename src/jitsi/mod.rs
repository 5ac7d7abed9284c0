//! `ferroturn jitsi`: makes Jitsi's Prosody and the relay agree on the TURN secret, host, ports
//! and transports by construction (`init`), finds where existing files disagree (`check`), and
//! mints credentials exactly as Prosody does (`credentials`).

pub mod check;
pub mod cli;
pub mod credentials;
pub mod init;
pub mod jitsi_helm;
pub mod parse_env;
pub mod parse_k8s;
pub mod parse_lua;
pub mod plan;
pub mod prosody_side;
pub mod relay_conf;
pub mod relay_summary;
pub mod render_conf;
pub mod render_env;
pub mod render_k8s;
pub mod render_lua;
pub mod secret;
#[cfg(test)]
pub(crate) mod test_inputs;

pub use cli::run;
