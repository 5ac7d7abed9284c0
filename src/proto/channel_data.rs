//! ChannelData framing (RFC 8656 §12.4): a 4-byte header (channel number, length) then the data.

/// Lowest channel number a client may bind.
pub const MIN_CHANNEL: u16 = 0x4000;
/// Highest channel number a client may bind. RFC 8656 narrowed the range to 0x4FFF, but RFC 5766
/// allowed up to 0x7FFF and clients still use it (coturn's `turnutils_uclient` picks channels
/// at random up to 0x7FFF), so the wider range is accepted as coturn does.
pub const MAX_CHANNEL: u16 = 0x7FFF;
/// Length of the ChannelData header.
pub const HEADER_LEN: usize = 4;

/// Whether a channel number may be bound.
pub fn is_valid_channel(number: u16) -> bool {
    (MIN_CHANNEL..=MAX_CHANNEL).contains(&number)
}

/// Splits a ChannelData datagram into channel number and payload. Up to three bytes of padding
/// may follow the payload (they are mandatory over TCP and allowed over UDP); anything else is
/// malformed, as is a length field longer than the datagram.
pub fn parse(datagram: &[u8]) -> Option<(u16, &[u8])> {
    if datagram.len() < HEADER_LEN {
        return None;
    }
    let channel = u16::from_be_bytes([datagram[0], datagram[1]]);
    let len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let end = HEADER_LEN + len;
    if !is_valid_channel(channel) || end > datagram.len() || datagram.len() - end > 3 {
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
        assert_eq!(parse(&d), Some((0x4001, &[1u8, 2, 3][..])));
        let padded = [0x40, 0x01, 0x00, 0x03, 1, 2, 3, 0];
        assert_eq!(parse(&padded), Some((0x4001, &[1u8, 2, 3][..])));
    }

    #[test]
    fn rejects_overlong_length_bad_channel_and_junk_tail() {
        assert_eq!(parse(&[0x40, 0x00, 0x00, 0x08, 1, 2]), None);
        assert_eq!(parse(&[0x80, 0x00, 0x00, 0x00]), None);
        assert_eq!(parse(&[0x3F, 0xFF, 0x00, 0x00]), None);
        assert!(parse(&[0x7F, 0xFF, 0x00, 0x00]).is_some());
        assert_eq!(parse(&[0x40, 0x00, 0x00, 0x00, 0, 0, 0, 0]), None);
        assert_eq!(parse(&[0x40, 0x00]), None);
    }

    #[test]
    fn header_round_trip() {
        let mut h = [0u8; 4];
        write_header(&mut h, 0x4FFF, 1200);
        assert_eq!(h, [0x4F, 0xFF, 0x04, 0xB0]);
    }
}
