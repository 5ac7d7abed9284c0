//! PROXY protocol headers (v1 text, v2 binary) as they arrive on a connection: the input is a
//! byte stream cut into reads (first byte of each chunk is its length). A header is never longer
//! than the bound or than what arrived, does not depend on what follows it, every shorter prefix
//! of it asks for more bytes, and reading it in pieces gives what parsing it whole gives, with the
//! bytes after it kept.
#![no_main]

use std::io::{self, Read};

use ferroturn::runtime::proxy_accept::read_header;
use ferroturn::runtime::proxy_protocol::{parse, MAX_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

/// Hands out one chunk per read, then "would block" until the next round.
struct Chunk<'a>(&'a [u8]);

impl Read for Chunk<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.0.len().min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    // The stream as a whole.
    let mut whole = Vec::new();
    let mut rest = data;
    let mut chunks = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let take = (n as usize * 8).min(tail.len());
        chunks.push(&tail[..take]);
        whole.extend_from_slice(&tail[..take]);
        rest = &tail[take..];
    }
    let at_once = parse(&whole);
    if let Ok(Some(h)) = at_once {
        assert!(h.len <= whole.len() && h.len <= MAX_HEADER_LEN);
        assert!(h.version == 1 || h.version == 2);
        assert_eq!(parse(&whole[..h.len]), at_once);
        for cut in 0..h.len {
            assert_eq!(parse(&whole[..cut]), Ok(None), "prefix of {cut} bytes");
        }
    }
    // The same bytes read in pieces, as a connection reads them.
    let mut rx = vec![0u8; 8192];
    let mut end = 0;
    let mut fed = 0;
    for chunk in chunks {
        fed += chunk.len();
        match read_header(&mut Chunk(chunk), &mut rx, &mut end) {
            Ok(None) => continue,
            Ok(Some(h)) => {
                let Ok(Some(whole_h)) = parse(&whole) else {
                    panic!("read in pieces: {h:?}; whole: {at_once:?}");
                };
                assert_eq!(h, whole_h);
                // What followed the header in the reads so far is kept, in order.
                assert_eq!(&rx[..end], &whole[h.len..fed.min(MAX_HEADER_LEN)]);
                return;
            }
            Err(_) => {
                assert!(at_once.is_err() || fed > MAX_HEADER_LEN, "{at_once:?}");
                return;
            }
        }
    }
});
