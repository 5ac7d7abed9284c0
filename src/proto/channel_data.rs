//! ChannelData framing (RFC 8656 §12.4): a 4-byte header (channel number, length) then the data.

/// Lowest channel number a client may bind.
pub const MIN_CHANNEL: u16 = 0x4000;
/// Highest channel number a client may bind (RFC 8656 §12): 0x5000–0x7FFF belong to RFC 7983
/// demultiplexing and get 400.
pub const MAX_CHANNEL: u16 = 0x4FFF;
/// Highest channel number under RFC 5766, accepted only with `rfc5766-channel-numbers` (as
/// coturn 4.16 does): older clients such as Debian's `turnutils_uclient` 4.6 pick channels up to
/// 0x7FFF.
pub const MAX_CHANNEL_RFC5766: u16 = 0x7FFF;
/// Length of the ChannelData header.
pub const HEADER_LEN: usize = 4;

/// Whether a channel number may be bound when the highest allowed one is `max`
/// ([`MAX_CHANNEL`] or [`MAX_CHANNEL_RFC5766`]).
pub fn is_valid_channel(number: u16, max: u16) -> bool {
    (MIN_CHANNEL..=max).contains(&number)
}

/// Splits a ChannelData datagram into channel number and payload. Up to three bytes of padding
/// may follow the payload (they are mandatory over TCP and allowed over UDP); anything else is
/// malformed, as is a length field longer than the datagram or a channel number above `max`.
pub fn parse(datagram: &[u8], max: u16) -> Option<(u16, &[u8])> {
    if datagram.len() < HEADER_LEN {
        return None;
    }
    let channel = u16::from_be_bytes([datagram[0], datagram[1]]);
    let len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let end = HEADER_LEN + len;
    if !is_valid_channel(channel, max) || end > datagram.len() || datagram.len() - end > 3 {
        return None;
    }
    Some((channel, &datagram[HEADER_LEN..end]))
}

/// Writes the header for `len` payload bytes.
pub fn write_header(out: &mut [u8; HEADER_LEN], channel: u16, len: u16) {
    out[..2].copy_from_slice(&channel.to_be_bytes());
    out[2..].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_padding() {
        let d = [0x40, 0x01, 0x00, 0x03, 1, 2, 3];
        assert_eq!(parse(&d, MAX_CHANNEL), Some((0x4001, &[1u8, 2, 3][..])));
        let padded = [0x40, 0x01, 0x00, 0x03, 1, 2, 3, 0];
        assert_eq!(
            parse(&padded, MAX_CHANNEL),
            Some((0x4001, &[1u8, 2, 3][..]))
        );
    }

    #[test]
    fn rejects_overlong_length_bad_channel_and_junk_tail() {
        let m = MAX_CHANNEL;
        assert_eq!(parse(&[0x40, 0x00, 0x00, 0x08, 1, 2], m), None);
        assert_eq!(parse(&[0x80, 0x00, 0x00, 0x00], m), None);
        assert_eq!(parse(&[0x3F, 0xFF, 0x00, 0x00], m), None);
        assert!(parse(&[0x4F, 0xFF, 0x00, 0x00], m).is_some());
        assert_eq!(parse(&[0x50, 0x00, 0x00, 0x00], m), None, "RFC 7983 space");
        assert_eq!(parse(&[0x7F, 0xFF, 0x00, 0x00], m), None, "RFC 7983 space");
        assert!(parse(&[0x50, 0x00, 0x00, 0x00], MAX_CHANNEL_RFC5766).is_some());
        assert!(parse(&[0x7F, 0xFF, 0x00, 0x00], MAX_CHANNEL_RFC5766).is_some());
        assert_eq!(parse(&[0x80, 0x00, 0x00, 0x00], MAX_CHANNEL_RFC5766), None);
        assert_eq!(parse(&[0x40, 0x00, 0x00, 0x00, 0, 0, 0, 0], m), None);
        assert_eq!(parse(&[0x40, 0x00], m), None);
    }

    #[test]
    fn header_round_trip() {
        let mut h = [0u8; 4];
        write_header(&mut h, 0x4FFF, 1200);
        assert_eq!(h, [0x4F, 0xFF, 0x04, 0xB0]);
    }
}
