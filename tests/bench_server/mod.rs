//! The ferroturn that `ferroturn bench` runs are pointed at in the bench tests: loopback, one
//! relay thread, a relay range of the test's own, killed when dropped.
#![allow(dead_code)] // each bench test uses a part of it
#![allow(unreachable_pub)] // included by `mod` from each bench test binary

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; `port` is its UDP/TCP listening port.
pub struct BenchServer {
    child: Child,
    pub port: u16,
}

impl BenchServer {
    /// Starts the binary with its config and log in `dir`, REST secret `secret` and relay ports
    /// `relay`, and waits (at most 10 s) until its listener holds the port.
    pub fn start(dir: &Path, secret: &str, relay: (u16, u16)) -> BenchServer {
        Self::start_with(dir, secret, relay, "")
    }

    /// As [`BenchServer::start`], with `extra` config lines (e.g. a TLS port and certificate).
    pub fn start_with(dir: &Path, secret: &str, relay: (u16, u16), extra: &str) -> BenchServer {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_listening_port();
        let conf = dir.join("turnserver.conf");
        std::fs::write(
            &conf,
            format!(
                "listening-ip=127.0.0.1\nlistening-port={port}\nrelay-ip=127.0.0.1\n\
                 min-port={}\nmax-port={}\nallow-loopback-peers\nuse-auth-secret\n\
                 static-auth-secret={secret}\nrealm=bench.test\nrelay-threads=1\n\
                 log-file={}\n{extra}",
                relay.0,
                relay.1,
                dir.join("server.log").display()
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ferroturn"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = BenchServer { child, port };
        // Binding the port fails once the server holds it.
        let t0 = Instant::now();
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The server's process id, for `ferroturn bench --server-pid`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 for UDP and for TCP (the server listens on both; its start-up probe
/// refuses a port held on either, checked with SO_REUSEADDR as here).
fn free_listening_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let tcp = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        tcp.set_reuse_address(true).unwrap();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        if tcp.bind(&addr.into()).is_ok() {
            return port;
        }
    }
    panic!("no port free for UDP and TCP on 127.0.0.1 after 100 tries");
}
