//! `ferroturn bench`: a TURN load generator that measures any TURN server (ferroturn, coturn, ...)
//! with standard TURN over UDP, TCP or TLS on this machine.
//!
//! One thread drives every simulated participant: each is a real TURN client with its own
//! socket (or TCP/TLS connection) and credentials, streaming a media profile through the relay to loopback peers that
//! echo it back, so every packet is timed on both legs.

pub mod alloc_rate;
pub mod cli;
pub mod client;
pub mod client_socket;
pub mod driver;
pub mod handshake;
pub mod hold;
pub mod limits;
pub mod overload;
pub mod payload;
pub mod profile;
pub mod progress;
pub mod ramp;
pub mod report;
pub mod sampler;
pub mod soak;
pub mod stats;
pub mod stream;
pub mod svg;
pub mod tls_client;
pub mod udp;
pub mod wire;
