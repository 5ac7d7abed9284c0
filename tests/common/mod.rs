//! Shared harness: starts the TURN server binary on loopback with a coturn-syntax config.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]
// Included with `mod common;` by every test binary: `pub` here means "for the test files",
// which the workspace lint `unreachable_pub` (aimed at library APIs) cannot tell apart.
#![allow(unreachable_pub)]

pub mod http;
pub mod json;
pub mod prom;
pub mod stun;
pub mod turn_raw;

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tokio::net::UdpSocket;

pub const REALM: &str = "ferroturn.test";
pub const SECRET: &str = "itest-static-secret";
pub const STATIC_USER: &str = "alice";
pub const STATIC_PASS: &str = "wonderland";
/// Size of the relay port range each server gets.
pub const RELAY_PORTS: u16 = 16;

/// The server under test. This is the one line to change when the tests move into the
/// ferroturn crate: `env!("CARGO_BIN_EXE_ferroturn")`.
fn default_server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferroturn"))
}

/// `TURN_SERVER_BIN` overrides the default binary.
pub fn server_bin() -> PathBuf {
    std::env::var_os("TURN_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(default_server_bin)
}

/// True when the server under test is coturn, whose known RFC 8656 deviations some
/// tests tolerate (each place says which).
pub fn is_coturn() -> bool {
    server_bin().file_name().is_some_and(|n| n == "turnserver")
}

/// A running server that is killed when dropped.
pub struct TestServer {
    child: Child,
    dir: PathBuf,
    /// Where the server listens (UDP, 127.0.0.1).
    pub addr: SocketAddr,
    pub min_port: u16,
    pub max_port: u16,
}

/// Which credential mechanisms the generated config turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `use-auth-secret` + `static-auth-secret` and `lt-cred-mech` + `user=alice:…`.
    /// coturn then refuses static users: "Shared secret overrides username/password".
    RestAndStatic,
    /// Only `lt-cred-mech` + `user=alice:wonderland`.
    StaticOnly,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(Auth::RestAndStatic, &[]).await
    }

    /// Starts the server with `-c turnserver.conf` plus `extra_args`, and waits until it
    /// answers a STUN Binding request.
    pub async fn start_with(auth: Auth, extra_args: &[&str]) -> TestServer {
        Self::start_full(auth, None, extra_args).await
    }

    /// Starts the server with TLS on `tls_port` (see [`TestServer::start_with_tls`]) plus
    /// `extra_args`.
    pub async fn start_with_tls_args(
        cert: &std::path::Path,
        key: &std::path::Path,
        tls_port: u16,
        extra_args: &[&str],
    ) -> TestServer {
        Self::start_full(Auth::RestAndStatic, Some((cert, key, tls_port)), extra_args).await
    }

    /// Starts the server with its open-file limit (RLIMIT_NOFILE) lowered to `nofile`.
    pub async fn start_with_nofile(extra_args: &[&str], nofile: u64) -> TestServer {
        Self::start_limited(Auth::RestAndStatic, None, extra_args, Some(nofile)).await
    }

    /// Starts the server with TLS on `tls_port` (and on the TURN port, recognised by its
    /// first byte) using the given PEM files.
    pub async fn start_with_tls(
        cert: &std::path::Path,
        key: &std::path::Path,
        tls_port: u16,
    ) -> TestServer {
        Self::start_full(Auth::RestAndStatic, Some((cert, key, tls_port)), &[]).await
    }

    async fn start_full(
        auth: Auth,
        tls: Option<(&std::path::Path, &std::path::Path, u16)>,
        extra_args: &[&str],
    ) -> TestServer {
        Self::start_limited(auth, tls, extra_args, None).await
    }

    async fn start_limited(
        auth: Auth,
        tls: Option<(&std::path::Path, &std::path::Path, u16)>,
        extra_args: &[&str],
        nofile: Option<u64>,
    ) -> TestServer {
        let dir = unique_temp_dir();
        let listen_port = free_udp_port();
        let min_port = free_udp_range(RELAY_PORTS, listen_port);
        let max_port = min_port + RELAY_PORTS - 1;
        let conf = dir.join("turnserver.conf");
        let mut text = config_text(&dir, auth, listen_port, min_port, max_port);
        if let Some((cert, key, port)) = tls {
            text = text.replace("no-tls\n", "");
            text.push_str(&format!(
                "tls-listening-port={port}\ncert={}\npkey={}\n",
                cert.display(),
                key.display()
            ));
        }
        std::fs::write(&conf, text).expect("write turnserver.conf");
        let out = std::fs::File::create(dir.join("server.out")).expect("create server.out");
        let err = out.try_clone().expect("clone server.out");
        let mut command = Command::new(server_bin());
        // The test's own environment must not leak configuration into the server under test.
        for (key, _) in std::env::vars() {
            if key.starts_with("FERROTURN_") {
                command.env_remove(key);
            }
        }
        if let Some(limit) = nofile {
            use std::os::unix::process::CommandExt;
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and only reads `lim`, copied into the hook.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command
            .arg("-c")
            .arg(&conf)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", server_bin().display()));
        let mut server = TestServer {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], listen_port)),
            min_port,
            max_port,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind probe");
        let mut buf = [0u8; 1500];
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited early ({status}):\n{}", self.logs());
            }
            let req = stun::Message::request(stun::method::BINDING);
            let _ = sock.send_to(&req.encode(None, true), self.addr).await;
            let got = tokio::time::timeout(Duration::from_millis(100), sock.recv_from(&mut buf));
            if let Ok(Ok((n, _))) = got.await {
                if stun::Message::decode(&buf[..n]).is_some_and(|m| m.txid == req.txid) {
                    return;
                }
            }
        }
        panic!("server never answered a Binding request:\n{}", self.logs());
    }

    /// The server's captured output, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["server.out", "turnserver.log"] {
            if let Ok(text) = std::fs::read_to_string(self.dir.join(name)) {
                s.push_str(&format!("--- {name} ---\n{text}\n"));
            }
        }
        s
    }

    /// The server's process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn in_relay_range(&self, addr: SocketAddr) -> bool {
        (self.min_port..=self.max_port).contains(&addr.port())
    }

    /// The generated `turnserver.conf`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("turnserver.conf")
    }

    /// Rewrites `turnserver.conf` with `edit` (for SIGHUP reload tests).
    pub fn rewrite_config(&self, edit: impl FnOnce(String) -> String) {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).expect("read turnserver.conf");
        std::fs::write(&path, edit(text)).expect("write turnserver.conf");
    }

    /// Sends `sig` (a `libc::SIG*` number) to the server.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid; the child is not reaped until Drop.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Waits up to `limit` for the server to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `limit` until the server's output contains `needle` at least `times` times.
    pub async fn wait_log(&self, needle: &str, times: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.logs().matches(needle).count() < times {
            if tokio::time::Instant::now() >= deadline {
                panic!("log line {needle:?} never appeared:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("ITEST_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Valid for coturn and ferroturn alike. The `no-*`, `pidfile`, `log-file` and
/// `simple-log` lines only matter to coturn (so parallel instances do not fight over
/// the CLI/TLS ports or the default pid and log files); ferroturn accepts them.
fn config_text(
    dir: &std::path::Path,
    auth: Auth,
    port: u16,
    min_port: u16,
    max_port: u16,
) -> String {
    let rest = match auth {
        Auth::RestAndStatic => format!("use-auth-secret\nstatic-auth-secret={SECRET}\n"),
        Auth::StaticOnly => String::new(),
    };
    format!(
        "listening-ip=127.0.0.1\n\
         relay-ip=127.0.0.1\n\
         listening-port={port}\n\
         min-port={min_port}\n\
         max-port={max_port}\n\
         realm={REALM}\n\
         {rest}\
         lt-cred-mech\n\
         user={STATIC_USER}:{STATIC_PASS}\n\
         allow-loopback-peers\n\
         fingerprint\n\
         no-cli\n\
         no-tls\n\
         no-dtls\n\
         pidfile={pid}\n\
         log-file={log}\n\
         simple-log\n",
        pid = dir.join("turnserver.pid").display(),
        log = dir.join("turnserver.log").display(),
    )
}

fn unique_temp_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "itest-turn-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A port free for TCP on 127.0.0.1 right now.
pub fn free_tcp_port() -> u16 {
    for _ in 0..100 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = l.local_addr().expect("local addr").port();
        drop(l);
        if tcp_port_is_free(port) {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 after 100 tries");
}

/// A port free for both UDP and TCP on 127.0.0.1: the server listens on both, and its start-up
/// probe refuses a port another socket holds on either.
fn free_udp_port() -> u16 {
    for _ in 0..100 {
        let s = StdUdpSocket::bind("127.0.0.1:0").expect("bind port 0");
        let port = s.local_addr().expect("local addr").port();
        if tcp_port_is_free(port) {
            return port;
        }
    }
    panic!("no port free for UDP and TCP on 127.0.0.1 after 100 tries");
}

/// Binds the TCP port the way the server's start-up probe does (SO_REUSEADDR, so TIME-WAIT
/// does not count, but a listener or the local end of a live connection does).
fn tcp_port_is_free(port: u16) -> bool {
    use socket2::{Domain, Socket, Type};
    let Ok(sock) = Socket::new(Domain::IPV4, Type::STREAM, None) else {
        return false;
    };
    if sock.set_reuse_address(true).is_err() {
        return false;
    }
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    sock.bind(&addr.into()).is_ok()
}

/// Picks `len` consecutive free UDP ports on 127.0.0.1. Candidates are spread by pid and
/// a counter so tests running in parallel do not pick the same range.
fn free_udp_range(len: u16, avoid: u16) -> u16 {
    static N: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
    for _ in 0..200 {
        let k =
            seed.wrapping_mul(2_654_435_761) ^ N.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919);
        let base = 20_000 + (k % 1_800) as u16 * 16;
        if (base..base + len).contains(&avoid) {
            continue;
        }
        let held: Vec<_> = (base..base + len)
            .map_while(|p| StdUdpSocket::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == len as usize {
            return base;
        }
    }
    panic!("no free UDP port range found");
}

/// TURN REST credentials (draft-uberti-behave-turn-rest): username `<expiry>:<user>`,
/// password base64(HMAC-SHA1(secret, username)).
pub fn rest_credentials(secret: &str, user: &str, valid_for_secs: i64) -> (String, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let username = format!("{}:{user}", now + valid_for_secs);
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

/// Builds `n` payloads cycling through 1, 100 and 1200 bytes, each tagged with its index
/// so a reordered or duplicated packet cannot pass for another.
pub fn payloads(n: usize) -> Vec<Vec<u8>> {
    const SIZES: [usize; 3] = [1, 100, 1200];
    (0..n)
        .map(|i| {
            let len = SIZES[i % SIZES.len()];
            (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
        })
        .collect()
}

/// Waits (at most 10 s) for a server that is expected to refuse to start, and returns what it
/// printed; kills it and fails the test when it keeps running instead.
pub fn wait_for_refusal(mut child: Child) -> std::process::Output {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("poll ferroturn").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "ferroturn kept running instead of refusing:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}
