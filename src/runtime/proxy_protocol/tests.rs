use super::*;

fn v4(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A version 2 header: `ver_cmd`, `family`, then `body` (addresses and TLVs).
fn v2(ver_cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(ver_cmd);
    h.push(family);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn inet_body(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut b = src.to_vec();
    b.extend_from_slice(&dst);
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b
}

fn proxied(h: &ProxyHeader) -> (SocketAddr, SocketAddr) {
    match h.addresses {
        ProxyAddresses::Proxied {
            source,
            destination,
        } => (source, destination),
        ProxyAddresses::Local => panic!("expected addresses, got Local"),
    }
}

/// Every strict prefix of a valid header is "need more", never an error or a header.
fn assert_prefixes_incomplete(full: &[u8], header_len: usize) {
    for n in 0..header_len {
        assert_eq!(parse(&full[..n]), Ok(None), "prefix of {n} bytes");
    }
}

#[test]
fn v1_tcp4() {
    let line = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n";
    let h = parse(line).unwrap().unwrap();
    assert_eq!(h.version, 1);
    assert_eq!(h.len, line.len());
    assert_eq!(
        proxied(&h),
        (v4("192.0.2.10:56324"), v4("198.51.100.1:443"))
    );
    assert_prefixes_incomplete(line, line.len());
}

#[test]
fn v1_tcp6() {
    let line = b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
    let h = parse(line).unwrap().unwrap();
    assert_eq!(
        proxied(&h),
        (
            "[2001:db8::1]:65535".parse().unwrap(),
            "[2001:db8::2]:0".parse().unwrap()
        )
    );
}

#[test]
fn v1_unknown_keeps_own_addresses() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
        b"PROXY UNKNOWN whatever follows\r\n",
    ] {
        let h = parse(line).unwrap().unwrap();
        assert_eq!(h.addresses, ProxyAddresses::Local);
        assert_eq!(h.len, line.len());
    }
}

#[test]
fn v1_bytes_after_the_header_are_not_part_of_it() {
    let mut buf = b"PROXY TCP4 192.0.2.10 198.51.100.1 1 2\r\n".to_vec();
    let header_len = buf.len();
    buf.extend_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
    let h = parse(&buf).unwrap().unwrap();
    assert_eq!(h.len, header_len);
}

#[test]
fn v1_at_the_length_limit() {
    // The longest line the specification counts: UNKNOWN with two full IPv6 addresses.
    let ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY UNKNOWN {ip} {ip} 65535 65535\r\n");
    assert_eq!(line.len(), V1_MAX_LEN);
    assert!(parse(line.as_bytes()).unwrap().is_some());
    let tcp6 = format!("PROXY TCP6 {ip} {ip} 65535 65535\r\n");
    assert!(parse(tcp6.as_bytes()).unwrap().is_some());
    let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN));
    assert_eq!(parse(long.as_bytes()), Err(ProxyError::V1TooLong));
    // No CRLF yet, but already at the limit: no point waiting for more.
    assert_eq!(
        parse(&long.as_bytes()[..V1_MAX_LEN]),
        Err(ProxyError::V1TooLong)
    );
}

#[test]
fn v1_malformed_lines() {
    let bad: &[&[u8]] = &[
        b"PROXY TCP4 192.0.2.10 198.51.100.1 56324\r\n",
        b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443 7\r\n",
        b"PROXY TCP4  192.0.2.10 198.51.100.1 56324 443\r\n",
        b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443 \r\n",
        b"PROXY TCP4 2001:db8::1 198.51.100.1 56324 443\r\n",
        b"PROXY TCP6 192.0.2.10 2001:db8::2 56324 443\r\n",
        b"PROXY TCP4 192.0.2.256 198.51.100.1 56324 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 65536 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 -1 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 +1 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 0443 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 123456 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 1 \r\n",
        b"PROXY UDP4 192.0.2.1 198.51.100.1 1 2\r\n",
        b"PROXY tcp4 192.0.2.1 198.51.100.1 1 2\r\n",
        b"PROXY \r\n",
        b"PROXY TCP4\r\n",
        b"PROXY TCP4 192.0.2.1\t198.51.100.1 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 1 2\xff\r\n",
    ];
    for line in bad {
        assert!(
            matches!(parse(line), Err(ProxyError::V1Syntax(_))),
            "{:?} gave {:?}",
            String::from_utf8_lossy(line),
            parse(line)
        );
    }
}

#[test]
fn v1_a_line_that_cannot_complete_fails_early() {
    // A bare LF, or CR followed by something else, can never become CRLF later.
    assert!(parse(b"PROXY TCP4 1.2.3.4\n").is_err());
    assert!(parse(b"PROXY TCP4 1.2.3.4\rX").is_err());
    // A CR as the last byte may still be followed by LF.
    assert_eq!(parse(b"PROXY TCP4 1.2.3.4\r"), Ok(None));
}

#[test]
fn not_a_proxy_header() {
    let stun = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    assert_eq!(parse(&stun), Err(ProxyError::Missing));
    assert_eq!(parse(&[0x16, 0x03, 0x01]), Err(ProxyError::Missing));
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyError::Missing));
    assert_eq!(parse(b"PROXZ"), Err(ProxyError::Missing));
    assert_eq!(parse(b"proxy "), Err(ProxyError::Missing));
    assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(ProxyError::Missing));
    assert_eq!(parse(b""), Ok(None));
    assert_eq!(parse(b"PRO"), Ok(None));
}

#[test]
fn v2_tcp4() {
    let full = v2(
        0x21,
        0x11,
        &inet_body([192, 0, 2, 7], [10, 0, 0, 1], 4242, 5349),
    );
    let h = parse(&full).unwrap().unwrap();
    assert_eq!(h.version, 2);
    assert_eq!(h.len, 28);
    assert_eq!(proxied(&h), (v4("192.0.2.7:4242"), v4("10.0.0.1:5349")));
    assert_prefixes_incomplete(&full, full.len());
}

#[test]
fn v2_tcp6() {
    let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut body = src.octets().to_vec();
    body.extend_from_slice(&dst.octets());
    body.extend_from_slice(&1u16.to_be_bytes());
    body.extend_from_slice(&443u16.to_be_bytes());
    let full = v2(0x21, 0x21, &body);
    let h = parse(&full).unwrap().unwrap();
    assert_eq!(h.len, 16 + 36);
    assert_eq!(
        proxied(&h),
        (
            SocketAddr::new(src.into(), 1),
            SocketAddr::new(dst.into(), 443)
        )
    );
    assert_prefixes_incomplete(&full, full.len());
}

#[test]
fn v2_tlvs_are_skipped() {
    let mut body = inet_body([192, 0, 2, 7], [10, 0, 0, 1], 1, 2);
    // ALPN "h2", an empty NOOP, and an SSL TLV with a nested sub-TLV.
    body.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']);
    body.extend_from_slice(&[0x04, 0x00, 0x00]);
    body.extend_from_slice(&[0x20, 0x00, 0x08, 0x01, 0, 0, 0, 0, 0x21, 0x00, 0x00]);
    let mut full = v2(0x21, 0x11, &body);
    let header_len = full.len();
    full.extend_from_slice(b"after");
    let h = parse(&full).unwrap().unwrap();
    assert_eq!(h.len, header_len);
    assert_eq!(proxied(&h).0, v4("192.0.2.7:1"));
}

#[test]
fn v2_broken_tlvs() {
    for tail in [
        &[0x01][..],
        &[0x01, 0x00],
        &[0x01, 0x00, 0x05, b'a'],
        &[0x04, 0xff, 0xff],
    ] {
        let mut body = inet_body([192, 0, 2, 7], [10, 0, 0, 1], 1, 2);
        body.extend_from_slice(tail);
        assert_eq!(
            parse(&v2(0x21, 0x11, &body)),
            Err(ProxyError::V2Tlv),
            "{tail:?}"
        );
    }
}

#[test]
fn v2_local_keeps_own_addresses_and_skips_the_block() {
    for (family, body) in [
        (0x00, vec![]),
        (0x11, inet_body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)),
        (0x11, vec![1, 2, 3]),
        (0xff, vec![0xde, 0xad]),
    ] {
        let full = v2(0x20, family, &body);
        let h = parse(&full).unwrap().unwrap();
        assert_eq!(h.addresses, ProxyAddresses::Local);
        assert_eq!(h.len, full.len());
    }
}

#[test]
fn v2_unspec_and_unix_keep_own_addresses() {
    let h = parse(&v2(0x21, 0x00, &[1, 2, 3, 4, 5])).unwrap().unwrap();
    assert_eq!(h.addresses, ProxyAddresses::Local);
    assert_eq!(h.len, 21);
    let h = parse(&v2(0x21, 0x31, &[0; 216])).unwrap().unwrap();
    assert_eq!(h.addresses, ProxyAddresses::Local);
    assert_eq!(
        parse(&v2(0x21, 0x31, &[0; 100])),
        Err(ProxyError::V2Truncated)
    );
}

#[test]
fn v2_bad_version_command_family() {
    let body = inet_body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
    assert_eq!(parse(&v2(0x11, 0x11, &body)), Err(ProxyError::V2Version(1)));
    assert_eq!(parse(&v2(0x31, 0x11, &body)), Err(ProxyError::V2Version(3)));
    assert_eq!(parse(&v2(0x22, 0x11, &body)), Err(ProxyError::V2Command(2)));
    assert_eq!(
        parse(&v2(0x2f, 0x11, &body)),
        Err(ProxyError::V2Command(15))
    );
    // DGRAM cannot arrive on TCP; families and transports above the defined ones.
    for family in [0x12, 0x22, 0x32, 0x13, 0x41, 0x01, 0xf1] {
        assert_eq!(
            parse(&v2(0x21, family, &body)),
            Err(ProxyError::V2Family(family)),
            "{family:#x}"
        );
    }
    // Detected as soon as the byte arrives, without waiting for the rest.
    let full = v2(0x21, 0x12, &body);
    assert_eq!(parse(&full[..14]), Err(ProxyError::V2Family(0x12)));
    let full = v2(0x11, 0x11, &body);
    assert_eq!(parse(&full[..13]), Err(ProxyError::V2Version(1)));
}

#[test]
fn v2_addresses_longer_than_the_header() {
    assert_eq!(
        parse(&v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])),
        Err(ProxyError::V2Truncated)
    );
    assert_eq!(
        parse(&v2(0x21, 0x21, &[0; 35])),
        Err(ProxyError::V2Truncated)
    );
}

#[test]
fn v2_length_is_bounded() {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_eq!(parse(&h), Err(ProxyError::V2TooLong(16 + 0xffff)));
    let body = vec![0u8; V2_MAX_LEN - 16];
    // At the bound: UNSPEC skips everything.
    assert!(parse(&v2(0x21, 0x00, &body)).unwrap().is_some());
}

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

#[test]
fn garbage_never_panics_and_never_claims_more_than_it_has() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let valid_v1 = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n".to_vec();
    let mut valid_v2 = v2(0x21, 0x11, &inet_body([192, 0, 2, 7], [10, 0, 0, 1], 1, 2));
    valid_v2.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']);
    for round in 0..20_000 {
        let mut buf = match round % 3 {
            0 => valid_v1.clone(),
            1 => valid_v2.clone(),
            _ => (0..(rng.next() % 300) as usize)
                .map(|_| rng.byte())
                .collect(),
        };
        // Flip, cut or extend a few bytes.
        for _ in 0..(rng.next() % 4) {
            if buf.is_empty() {
                break;
            }
            let i = (rng.next() as usize) % buf.len();
            match rng.next() % 3 {
                0 => buf[i] = rng.byte(),
                1 => buf.truncate(i),
                _ => buf.insert(i, rng.byte()),
            }
        }
        if let Ok(Some(h)) = parse(&buf) {
            assert!(h.len <= buf.len() && h.len <= MAX_HEADER_LEN, "{buf:?}");
            assert!(h.version == 1 || h.version == 2);
            // Parsing exactly the header gives the same answer.
            assert_eq!(parse(&buf[..h.len]), Ok(Some(h)));
        }
    }
}

#[test]
fn errors_read_well() {
    assert_eq!(ProxyError::Missing.to_string(), "no PROXY protocol header");
    assert!(ProxyError::V2Family(0x12).to_string().contains("0x12"));
}
