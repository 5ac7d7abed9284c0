//! The sans-IO protocol core: no sockets, no clocks, no runtime. Packets and time go in through
//! `handle_*` calls; packets to send, timers and events come out.

pub mod channel_data;
pub mod stun;
