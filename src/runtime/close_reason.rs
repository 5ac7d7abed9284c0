//! Why a TCP/TLS client connection is closed.

use std::fmt;

/// Why a connection is being closed (logged at debug when it closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the TCP connection.
    ClosedByClient,
    /// A read failed.
    ReadError,
    /// A write returned 0 bytes.
    WriteReturnedZero,
    /// A write failed.
    WriteError,
    /// The client sent a TLS ClientHello to a plain port on a server without a certificate.
    TlsWithoutCertificate,
    /// The first bytes were neither STUN, ChannelData nor a TLS ClientHello.
    UnknownProtocol,
    /// A frame was malformed or longer than the largest allowed.
    InvalidFrame,
    /// The TLS peer ended the session.
    TlsSessionClosed,
    /// Reading TLS records failed.
    TlsReadError,
    /// The TLS session could not be set up.
    TlsSetupFailed,
    /// The first TLS record was malformed.
    BadTlsRecord,
    /// Writing TLS records failed.
    TlsWriteFailed,
    /// The TLS peer broke the protocol.
    TlsError,
    /// The TLS handshake (or protocol detection) took too long.
    HandshakeTimeout,
    /// A frame stayed incomplete for too long (slow-loris).
    IncompleteFrameTimeout,
    /// No input for too long on a connection without an allocation.
    IdleTimeout,
    /// The balancer closed the connection before its PROXY protocol header was complete.
    ClosedBeforeProxyHeader,
    /// A connection to a proxy-protocol-port did not start with a PROXY protocol header.
    ProxyHeaderMissing,
    /// The PROXY protocol header was malformed.
    ProxyHeaderMalformed,
    /// The PROXY protocol header did not arrive within proxy-protocol-timeout.
    ProxyHeaderTimeout,
    /// The client named by the PROXY protocol header is at max-tcp-connections-per-ip.
    ConnectionLimit,
}

impl CloseReason {
    /// The reason in words, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClosedByClient => "closed by client",
            CloseReason::ReadError => "read error",
            CloseReason::WriteReturnedZero => "write returned 0",
            CloseReason::WriteError => "write error",
            CloseReason::TlsWithoutCertificate => "TLS on a port without certificate",
            CloseReason::UnknownProtocol => "neither STUN, ChannelData nor TLS",
            CloseReason::InvalidFrame => "invalid or oversized frame",
            CloseReason::TlsSessionClosed => "TLS session closed",
            CloseReason::TlsReadError => "TLS read error",
            CloseReason::TlsSetupFailed => "TLS setup failed",
            CloseReason::BadTlsRecord => "bad TLS record",
            CloseReason::TlsWriteFailed => "TLS write failed",
            CloseReason::TlsError => "TLS error",
            CloseReason::HandshakeTimeout => "handshake timeout",
            CloseReason::IncompleteFrameTimeout => "incomplete frame timeout",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::ClosedBeforeProxyHeader => "closed by client before the PROXY header",
            CloseReason::ProxyHeaderMissing => "no PROXY protocol header",
            CloseReason::ProxyHeaderMalformed => "malformed PROXY protocol header",
            CloseReason::ProxyHeaderTimeout => "PROXY protocol header timeout",
            CloseReason::ConnectionLimit => "connection limit reached",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_differently() {
        let all = [
            CloseReason::ClosedByClient,
            CloseReason::ReadError,
            CloseReason::WriteReturnedZero,
            CloseReason::WriteError,
            CloseReason::TlsWithoutCertificate,
            CloseReason::UnknownProtocol,
            CloseReason::InvalidFrame,
            CloseReason::TlsSessionClosed,
            CloseReason::TlsReadError,
            CloseReason::TlsSetupFailed,
            CloseReason::BadTlsRecord,
            CloseReason::TlsWriteFailed,
            CloseReason::TlsError,
            CloseReason::HandshakeTimeout,
            CloseReason::IncompleteFrameTimeout,
            CloseReason::IdleTimeout,
            CloseReason::ClosedBeforeProxyHeader,
            CloseReason::ProxyHeaderMissing,
            CloseReason::ProxyHeaderMalformed,
            CloseReason::ProxyHeaderTimeout,
            CloseReason::ConnectionLimit,
        ];
        let words: std::collections::HashSet<String> = all.iter().map(|r| r.to_string()).collect();
        assert_eq!(words.len(), all.len());
        assert_eq!(CloseReason::IdleTimeout.to_string(), "idle timeout");
    }
}
