//! TCP/TLS stream framing: the input is a byte stream cut into reads (first byte of each chunk
//! is its length). Frames are taken off the front as a connection does; every complete frame is
//! a prefix of what arrived, no longer than the bound, stable when more bytes follow, and is
//! handed to the STUN or ChannelData reader.
#![no_main]

use ferroturn::proto::stun::Message;
use ferroturn::runtime::stream_framing::{next_frame, Frame, MAX_STREAM_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf: Vec<u8> = Vec::new();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let take = (n as usize * 8).min(tail.len());
        buf.extend_from_slice(&tail[..take]);
        rest = &tail[take..];
        loop {
            match next_frame(&buf) {
                Frame::Complete(len) => {
                    assert!((4..=MAX_STREAM_FRAME).contains(&len) && len <= buf.len());
                    assert_eq!(len % 4, 0, "stream frames are padded to four bytes");
                    // A frame does not depend on what follows it.
                    assert_eq!(next_frame(&buf[..len]), Frame::Complete(len));
                    if len > 4 {
                        assert_eq!(next_frame(&buf[..len - 1]), Frame::Partial);
                    }
                    let frame = &buf[..len];
                    if frame[0] & 0xC0 == 0 {
                        if let Ok(m) = Message::parse(frame) {
                            let _ = m.attributes();
                        }
                    } else {
                        let _ = ferroturn::proto::channel_data::parse(
                            frame,
                            ferroturn::proto::channel_data::MAX_CHANNEL_RFC5766,
                        );
                    }
                    buf.drain(..len);
                }
                Frame::Partial => {
                    assert!(buf.len() < MAX_STREAM_FRAME);
                    break;
                }
                Frame::Invalid => return,
            }
        }
    }
});
