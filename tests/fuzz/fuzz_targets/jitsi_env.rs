//! The Prosody-side reader `ferroturn jitsi check` uses, on a docker `.env` file name, followed
//! by the comparison against a fixed relay configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ferroturn_fuzz::jitsi_check(".env", data));
