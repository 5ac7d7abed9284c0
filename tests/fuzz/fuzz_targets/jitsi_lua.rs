//! The Prosody-side reader `ferroturn jitsi check` uses, on a `.lua` file name (Prosody's
//! config), followed by the comparison against a fixed relay configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ferroturn_fuzz::jitsi_check("prosody.cfg.lua", data));
