//! Creating listening and relay sockets with the options the relay needs.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Buffer sizes the kernel granted a socket.
#[derive(Debug, Clone, Copy)]
pub struct GrantedBuffers {
    /// SO_RCVBUF as reported back.
    pub recv: usize,
    /// SO_SNDBUF as reported back.
    pub send: usize,
}

/// A non-blocking UDP socket bound to `addr`. `reuse_port` lets every shard bind the same
/// listening address (the kernel then keeps each client's 5-tuple on one socket);
/// `buffer` asks for receive and send buffers of that many bytes.
pub fn bind_udp(
    addr: SocketAddr,
    reuse_port: bool,
    buffer: Option<usize>,
) -> io::Result<(std::net::UdpSocket, GrantedBuffers)> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Keep IPv4 on its own sockets so addresses never show up IPv4-mapped.
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let Some(size) = buffer {
        // Failure here only means a smaller buffer; what was granted is reported below.
        let _ = socket.set_recv_buffer_size(size);
        let _ = socket.set_send_buffer_size(size);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let granted = GrantedBuffers {
        recv: socket.recv_buffer_size().unwrap_or(0),
        send: socket.send_buffer_size().unwrap_or(0),
    };
    Ok((socket.into(), granted))
}

/// Sets the IP "don't fragment" behaviour (DONT-FRAGMENT, RFC 8656 §7.2).
pub fn set_dont_fragment(socket: &impl std::os::fd::AsRawFd, ipv6: bool) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    let (level, name, value) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1)
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        )
    };
    // SAFETY: a plain int option on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const i32 as *const libc::c_void,
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A TCP relay listener (RFC 6062) on `addr`. SO_REUSEADDR and SO_REUSEPORT let the
/// connections the relay opens to peers start from the same address and port (the relayed
/// transport address); the core's port pool keeps the port to one allocation.
pub fn listen_tcp_relay(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    listen_tcp(addr, backlog)
}

/// A non-blocking TCP socket of `addr`'s family (IPv6 only for IPv6) with SO_REUSEADDR and
/// SO_REUSEPORT, so several sockets can share a local address.
fn shared_tcp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A non-blocking TCP connection from `local` (a relayed transport address) to `peer`; the
/// connect completes in the background (RFC 6062 §5.2).
pub fn connect_tcp_from(local: SocketAddr, peer: SocketAddr) -> io::Result<std::net::TcpStream> {
    let socket = shared_tcp_socket(peer)?;
    socket.set_nodelay(true)?;
    socket.bind(&local.into())?;
    match socket.connect(&peer.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// A non-blocking TCP listener on `addr` with SO_REUSEPORT, so every shard can accept on it.
pub fn listen_tcp(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = shared_tcp_socket(addr)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}
