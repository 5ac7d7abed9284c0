//! Finding message boundaries in a TCP/TLS byte stream (RFC 8656 §12.5): STUN messages carry
//! their length in the header, ChannelData carries it too and is padded to four bytes.

use crate::proto::stun::padded;

/// Largest frame accepted from a stream. A TURN message over TCP carries one UDP datagram for
/// a peer; media never comes near this, and the bound keeps each connection's buffer small.
pub const MAX_STREAM_FRAME: usize = 16 * 1024;

/// What the start of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole frame of this many bytes (padding included).
    Complete(usize),
    /// Not enough bytes yet.
    Partial,
    /// Not STUN or ChannelData, or larger than [`MAX_STREAM_FRAME`]: the stream is unusable.
    Invalid,
}

/// Looks at the start of `buf` for the next frame.
pub fn next_frame(buf: &[u8]) -> Frame {
    let Some(&first) = buf.first() else {
        return Frame::Partial;
    };
    let header = match first {
        0x00..=0x03 => 20,
        0x40..=0x7F => 4,
        _ => return Frame::Invalid,
    };
    if buf.len() < 4 {
        return Frame::Partial;
    }
    let body = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    if header == 20 && !body.is_multiple_of(4) {
        return Frame::Invalid;
    }
    let total = header + padded(body);
    if total > MAX_STREAM_FRAME {
        return Frame::Invalid;
    }
    if buf.len() < total {
        Frame::Partial
    } else {
        Frame::Complete(total)
    }
}

/// Moves the unread bytes `buf[*start..*end]` of a stream receive buffer to its front, so the
/// next read has the room after them; an empty buffer just starts over at 0.
#[inline]
pub fn compact(buf: &mut [u8], start: &mut usize, end: &mut usize) {
    if *start == *end {
        *start = 0;
        *end = 0;
    } else if *start > 0 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_moves_the_unread_bytes_to_the_front() {
        let mut buf = *b"xxabcyy";
        let (mut start, mut end) = (2, 5);
        compact(&mut buf, &mut start, &mut end);
        assert_eq!((start, end), (0, 3));
        assert_eq!(&buf[..3], b"abc");
        // Nothing unread: both ends go back to 0, whatever the buffer holds.
        let (mut start, mut end) = (4, 4);
        compact(&mut buf, &mut start, &mut end);
        assert_eq!((start, end), (0, 0));
        // Already at the front: untouched.
        let (mut start, mut end) = (0, 2);
        compact(&mut buf, &mut start, &mut end);
        assert_eq!((start, end, &buf[..2]), (0, 2, &b"ab"[..]));
    }

    #[test]
    fn stun_and_channel_data_frames() {
        let mut stun = vec![0u8; 28];
        stun[0] = 0x00;
        stun[1] = 0x01;
        stun[3] = 8;
        assert_eq!(next_frame(&stun), Frame::Complete(28));
        assert_eq!(next_frame(&stun[..27]), Frame::Partial);
        assert_eq!(next_frame(&stun[..3]), Frame::Partial);
        // ChannelData of 5 bytes is padded to 8 over a stream.
        let cd = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0, 0x40];
        assert_eq!(next_frame(&cd), Frame::Complete(12));
        assert_eq!(next_frame(&cd[..11]), Frame::Partial);
    }

    #[test]
    fn garbage_and_oversize_are_invalid() {
        assert_eq!(next_frame(&[0x16, 3, 1]), Frame::Invalid);
        assert_eq!(next_frame(&[0xFF]), Frame::Invalid);
        assert_eq!(next_frame(&[0x40, 0, 0xFF, 0xFF]), Frame::Invalid);
        assert_eq!(next_frame(&[0x00, 0x01, 0x00, 0x03]), Frame::Invalid);
        assert_eq!(next_frame(&[]), Frame::Partial);
    }
}
