//! The turnserver.conf reader and the configuration built from it: any text (lossily decoded as
//! the relay reads files) loads or is refused with a message, never a panic; what loads passes
//! or fails `check`, and the core configuration can be built from it.
#![no_main]

use ferroturn::config::from_conf_str;
use ferroturn::proto::peer_policy::ServerAddresses;
use ferroturn::runtime::core_setup::{core_config_from, shared_from_config, Revocations};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match from_conf_str(&text, "fuzz.conf") {
        Ok(config) => {
            if config.check().is_ok() {
                let _ = core_config_from(
                    &config,
                    2,
                    &Revocations::default(),
                    &ServerAddresses::default(),
                );
                let _ = shared_from_config(&config);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty(), "an error says what is wrong"),
    }
});
