//! The protocol core in virtual time: a script of client datagrams, signed requests, peer
//! datagrams, clock steps and closed flows (see `ferroturn_fuzz::Script`). Nothing may panic,
//! every answer is valid STUN, allocations and relay sockets stay in step, and nothing
//! outlives its lifetime.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferroturn_fuzz::Script::run(data);
});
