//! PROXY protocol on the stream listeners named by `proxy-protocol-port`: who may send the
//! header, reading it off a fresh connection (before TLS), and putting the client address it
//! names in place of the proxy's, before any frame is handled, so per-IP limits, quotas, nonces,
//! logs, the admin session list and XOR-MAPPED-ADDRESS all see the real client.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::connection::{CloseReason, Connection};
use super::connection_limits::ConnectionLimits;
use super::io_stats::IoStats;
use super::proxy_protocol::{self, ProxyAddresses, ProxyError, ProxyHeader, MAX_HEADER_LEN};
use crate::config::ProxyProtocolSettings;

/// Which listeners expect the header and whom they believe: the `proxy-protocol-*` options.
#[derive(Debug, Clone, Default)]
pub struct ProxyPolicy(ProxyProtocolSettings);

impl ProxyPolicy {
    /// The policy the `proxy-protocol-*` options ask for (empty: no listener expects a
    /// header).
    pub fn from_config(config: &ProxyProtocolSettings) -> Self {
        ProxyPolicy(config.clone())
    }

    /// Whether connections to a TCP/TLS listener on `port` must start with a header.
    pub fn expects_header(&self, port: u16) -> bool {
        self.0.ports.contains(&port)
    }

    /// Whether `ip` may connect to such a listener (and so name another client address).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        self.0.trusted.iter().any(|r| r.contains(ip))
    }

    /// Time the header may take to arrive.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.0.timeout)
    }
}

/// Why reading the header ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderReadError {
    /// The socket failed or the proxy closed it.
    Io(CloseReason),
    /// The bytes are not a valid header.
    Bad(ProxyError),
}

/// Reads from `stream` into `rx[..*rx_end]` (at most [`MAX_HEADER_LEN`] bytes in all) and parses
/// the header. On success the header is removed from the buffer and the bytes that followed
/// it in the same reads are moved to the front, so nothing of the client's stream is lost.
pub fn read_header(
    stream: &mut impl Read,
    rx: &mut [u8],
    rx_end: &mut usize,
) -> Result<Option<ProxyHeader>, HeaderReadError> {
    let limit = MAX_HEADER_LEN.min(rx.len());
    while *rx_end < limit {
        match stream.read(&mut rx[*rx_end..limit]) {
            Ok(0) => return Err(HeaderReadError::Io(CloseReason::ClosedBeforeProxyHeader)),
            Ok(n) => *rx_end += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(HeaderReadError::Io(CloseReason::ReadError)),
        }
    }
    match proxy_protocol::parse(&rx[..*rx_end]) {
        Ok(Some(header)) => {
            rx.copy_within(header.len..*rx_end, 0);
            *rx_end -= header.len;
            Ok(Some(header))
        }
        // The parser bounds both versions below `limit`, so this is only "wait for more".
        Ok(None) if *rx_end < limit => Ok(None),
        Ok(None) => Err(HeaderReadError::Bad(ProxyError::V2TooLong(*rx_end))),
        Err(e) => Err(HeaderReadError::Bad(e)),
    }
}

/// The client address to use: the header's source, or the connection's own peer for LOCAL
/// and address-less headers. IPv4-mapped IPv6 becomes IPv4, as for socket peers.
pub fn client_address(header: &ProxyHeader, socket_peer: SocketAddr) -> SocketAddr {
    match header.addresses {
        ProxyAddresses::Proxied { source, .. } => {
            SocketAddr::new(unmapped(source.ip()), source.port())
        }
        ProxyAddresses::Local => socket_peer,
    }
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Reads the header of a connection that awaits one. `Ok(true)`: the connection now carries
/// the client's address and its stream can be read; `Ok(false)`: more bytes are needed.
/// Counts every outcome in `io`, and charges the connection to its client in `limits`.
pub fn take_header(
    conn: &mut Connection,
    limits: &ConnectionLimits,
    io: &IoStats,
    shard: usize,
) -> Result<bool, CloseReason> {
    let proxy = conn.remote();
    let header = match conn.read_proxy_header() {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(false),
        Err(HeaderReadError::Io(reason)) => return Err(reason),
        Err(HeaderReadError::Bad(e)) => {
            let reason = if e == ProxyError::Missing {
                io.proxy_missing.inc();
                CloseReason::ProxyHeaderMissing
            } else {
                io.proxy_malformed.inc();
                CloseReason::ProxyHeaderMalformed
            };
            tracing::debug!(shard, proxy = %proxy, error = %e, "PROXY protocol header refused");
            return Err(reason);
        }
    };
    let client = client_address(&header, proxy);
    if !limits.attribute(client.ip()) {
        tracing::debug!(shard, %client, %proxy, "connection refused: limit reached");
        return Err(CloseReason::ConnectionLimit);
    }
    conn.set_proxied_client(client);
    io.proxy_accepted.inc();
    tracing::trace!(shard, %client, %proxy, version = header.version, "PROXY protocol header");
    Ok(true)
}

/// Debug lines about refused untrusted sources, at most one per interval: a scan or a
/// misconfigured balancer must not flood the log.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    next: Option<Instant>,
    suppressed: u64,
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog {
            interval: Duration::from_secs(1),
            next: None,
            suppressed: 0,
        }
    }
}

impl RefusalLog {
    /// Notes one refusal; returns how many were suppressed since the last line when this one
    /// should be logged.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        if self.next.is_some_and(|next| now < next) {
            self.suppressed += 1;
            return None;
        }
        self.next = Some(now + self.interval);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_conf_str;

    /// A reader that hands out its chunks one per call, then says "would block".
    struct Chunks(Vec<Vec<u8>>);
    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let chunk = &mut self.0[0];
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn bytes_after_the_header_stay_in_the_buffer() {
        let stun = [0x00u8, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        let mut first = b"PROXY TCP4 192.0.2.9 10.0.0.1 5000 3478\r\n".to_vec();
        first.extend_from_slice(&stun[..3]);
        let mut s = Chunks(vec![first, stun[3..].to_vec()]);
        let mut rx = vec![0u8; 32 * 1024];
        let mut end = 0;
        let h = read_header(&mut s, &mut rx, &mut end).unwrap().unwrap();
        assert_eq!(
            client_address(&h, "127.0.0.1:1".parse().unwrap()),
            "192.0.2.9:5000".parse().unwrap()
        );
        assert_eq!(&rx[..end], &stun[..]);
    }

    #[test]
    fn a_header_in_pieces_waits_then_completes() {
        let line = b"PROXY TCP6 ::ffff:192.0.2.9 ::1 5000 3478\r\n";
        let mut rx = vec![0u8; 1024];
        let mut end = 0;
        let mut s = Chunks(vec![line[..10].to_vec()]);
        assert_eq!(read_header(&mut s, &mut rx, &mut end), Ok(None));
        let mut s = Chunks(vec![line[10..].to_vec()]);
        let h = read_header(&mut s, &mut rx, &mut end).unwrap().unwrap();
        assert_eq!(end, 0);
        // A mapped source is reported as the IPv4 address it is.
        assert_eq!(
            client_address(&h, "127.0.0.1:1".parse().unwrap()),
            "192.0.2.9:5000".parse().unwrap()
        );
    }

    #[test]
    fn never_reads_more_than_a_header_can_hold() {
        let mut s = Chunks(vec![vec![b'P'; 100_000]]);
        let mut rx = vec![0u8; 32 * 1024];
        let mut end = 0;
        assert_eq!(
            read_header(&mut s, &mut rx, &mut end),
            Err(HeaderReadError::Bad(ProxyError::Missing))
        );
        assert!(end <= MAX_HEADER_LEN);
        let mut v1 = b"PROXY UNKNOWN ".to_vec();
        v1.extend(vec![b'x'; 10_000]);
        let mut end = 0;
        assert_eq!(
            read_header(&mut Chunks(vec![v1]), &mut rx, &mut end),
            Err(HeaderReadError::Bad(ProxyError::V1TooLong))
        );
    }

    #[test]
    fn eof_before_the_header_is_an_io_close() {
        struct Eof;
        impl Read for Eof {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Ok(0)
            }
        }
        let mut rx = vec![0u8; 64];
        let mut end = 0;
        assert!(matches!(
            read_header(&mut Eof, &mut rx, &mut end),
            Err(HeaderReadError::Io(_))
        ));
    }

    #[test]
    fn local_keeps_the_socket_peer() {
        let h = proxy_protocol::parse(b"PROXY UNKNOWN\r\n")
            .unwrap()
            .unwrap();
        let peer: SocketAddr = "10.1.1.1:999".parse().unwrap();
        assert_eq!(client_address(&h, peer), peer);
    }

    #[test]
    fn policy_from_config() {
        let c = from_conf_str(
            "no-auth\nalt-listening-port=3479\nproxy-protocol-port=3479\nproxy-protocol-trusted=10.0.0.0/8,::1\n",
            "t.conf",
        )
        .unwrap();
        let p = ProxyPolicy::from_config(&c.listen.proxy_protocol);
        assert!(p.expects_header(3479));
        assert!(!p.expects_header(3478));
        assert!(p.trusts("10.2.3.4".parse().unwrap()));
        assert!(p.trusts("::ffff:10.2.3.4".parse().unwrap()));
        assert!(p.trusts("::1".parse().unwrap()));
        assert!(!p.trusts("11.0.0.1".parse().unwrap()));
        assert_eq!(p.timeout(), Duration::from_secs(5));
        assert!(!ProxyPolicy::default().trusts("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn refusal_log_is_rate_limited() {
        let mut log = RefusalLog::default();
        let t = Instant::now();
        assert_eq!(log.note(t), Some(0));
        assert_eq!(log.note(t + Duration::from_millis(10)), None);
        assert_eq!(log.note(t + Duration::from_millis(900)), None);
        assert_eq!(log.note(t + Duration::from_millis(1000)), Some(2));
        assert_eq!(log.note(t + Duration::from_millis(1001)), None);
    }
}
