//! Inputs the jitsi tests build from text: a relay configuration and a Prosody side.

use crate::config::{from_conf_str, Config};
use crate::jitsi::parse_env;
use crate::jitsi::prosody_side::ProsodySide;

/// A relay configuration loaded from `text` as if it were `turnserver.conf`.
pub(crate) fn conf_of(text: &str) -> Config {
    from_conf_str(text, "turnserver.conf").unwrap()
}

/// The Prosody side described by the .env `text`.
pub(crate) fn env_side(text: &str) -> ProsodySide {
    ProsodySide::from_env(&parse_env::parse(text), "jitsi-turn.env")
}
