//! The timing header every load packet carries, so each leg is timed from the payload alone.
//!
//! Layout (big-endian): participant index u32, sequence u32, client send time u64 ns, peer echo
//! time u64 ns. Times are nanoseconds since the generator's epoch: client, peers and the clock
//! are all in this one process, so one-way latency needs no clock synchronisation.

/// Bytes of timing header at the start of each payload.
pub const HEADER_LEN: usize = 24;

/// The decoded timing header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Which participant sent it.
    pub participant: u32,
    /// Per-participant sequence number.
    pub seq: u32,
    /// When the client sent it.
    pub sent_ns: u64,
    /// When the peer echoed it (0 on the way up).
    pub echoed_ns: u64,
}

/// Writes the header into the start of `payload` (which must hold `HEADER_LEN` bytes); the rest
/// of the payload is left as it is.
pub fn write(payload: &mut [u8], participant: u32, seq: u32, sent_ns: u64) {
    payload[0..4].copy_from_slice(&participant.to_be_bytes());
    payload[4..8].copy_from_slice(&seq.to_be_bytes());
    payload[8..16].copy_from_slice(&sent_ns.to_be_bytes());
    payload[16..24].copy_from_slice(&0u64.to_be_bytes());
}

/// Sets the echo time of a payload in place.
pub fn set_echoed(payload: &mut [u8], echoed_ns: u64) {
    if payload.len() >= HEADER_LEN {
        payload[16..24].copy_from_slice(&echoed_ns.to_be_bytes());
    }
}

/// Reads the header; `None` when the payload is too short to be one of ours.
pub fn read(payload: &[u8]) -> Option<Stamp> {
    let h: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
    let u32_at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[i..i + 8]);
        u64::from_be_bytes(b)
    };
    Some(Stamp {
        participant: u32_at(0),
        seq: u32_at(4),
        sent_ns: u64_at(8),
        echoed_ns: u64_at(16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut p = [0xAAu8; 40];
        write(&mut p, 7, 9, 123_456_789);
        assert_eq!(read(&p).unwrap().echoed_ns, 0);
        set_echoed(&mut p, 987);
        assert_eq!(
            read(&p),
            Some(Stamp {
                participant: 7,
                seq: 9,
                sent_ns: 123_456_789,
                echoed_ns: 987
            })
        );
        assert_eq!(p[24], 0xAA, "the filler after the header is untouched");
        assert_eq!(read(&p[..23]), None);
    }
}
