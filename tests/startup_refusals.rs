//! Start-up refusals that protect an operator from a relay that runs but cannot work: a port
//! another server already holds, relay addresses no peer can reach, addresses the host lacks.

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use socket2::{Domain, Protocol, Socket, Type};

fn conf(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferroturn-start-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("turnserver.conf");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary to completion (it must refuse, so it must exit by itself).
fn run(conf: &PathBuf, extra: &[&str]) -> Output {
    let mut cmd = Command::new(common::server_bin());
    for (key, _) in std::env::vars() {
        if key.starts_with("FERROTURN_") {
            cmd.env_remove(key);
        }
    }
    let child = cmd
        .arg("-c")
        .arg(conf)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferroturn");
    common::wait_for_refusal(child)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn base(port: u16, extra: &str) -> String {
    format!(
        "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\nno-tls\n\
         use-auth-secret\nstatic-auth-secret=s3cr3t\nrealm=example.org\nmin-port=41000\nmax-port=41009\n{extra}"
    )
}

fn assert_port_refused(out: &Output, proto: &str, port: u16) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "{proto} port {port} on 127.0.0.1 is already in use"
        )),
        "{t}"
    );
}

#[test]
fn a_udp_port_held_with_so_reuseport_stops_start_up() {
    // What SO_REUSEPORT would otherwise share silently: another server's reuse-port socket.
    let holder = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    holder.set_reuse_port(true).unwrap();
    holder
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let port = holder.local_addr().unwrap().as_socket().unwrap().port();
    let out = run(&conf("udp-held", &base(port, "")), &[]);
    assert_port_refused(&out, "udp", port);
}

#[test]
fn a_plain_socket_on_the_port_stops_start_up() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    let out = run(&conf("udp-plain", &base(port, "")), &[]);
    assert_port_refused(&out, "udp", port);
    drop(udp);

    // The server also listens on UDP at the same port number, so the TCP case needs a port whose
    // UDP twin is free, or the UDP check answers first.
    let (_tcp, port) = (0..50)
        .find_map(|_| {
            let tcp = TcpListener::bind("127.0.0.1:0").ok()?;
            let port = tcp.local_addr().ok()?.port();
            UdpSocket::bind(("127.0.0.1", port)).ok()?;
            Some((tcp, port))
        })
        .expect("a TCP port whose UDP twin is free");
    let out = run(&conf("tcp-plain", &base(port, "")), &[]);
    assert_port_refused(&out, "tcp", port);
}

#[tokio::test]
async fn a_second_ferroturn_on_the_same_port_is_refused() {
    let first = common::TestServer::start().await;
    let port = first.addr.port();
    let out = run(&conf("second", &base(port, "")), &[]);
    assert_port_refused(&out, "udp", port);
    drop(first);
}

#[test]
fn a_loopback_relay_advertised_as_a_public_address_is_refused() {
    // conf/turnserver.conf with only external-ip added: the relay would bind 127.0.0.1 while
    // clients are told 198.51.100.7.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(
        &conf("loop-ext", &base(port, "external-ip=198.51.100.7\n")),
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("relay address 127.0.0.1"), "{t}");
    assert!(t.contains("Set relay-ip"), "{t}");
}

#[test]
fn a_listening_ip_this_host_lacks_is_refused_and_check_config_says_so() {
    let path = conf(
        "not-local",
        "listening-ip=192.0.2.123\nuse-auth-secret\nstatic-auth-secret=s3cr3t\nrealm=example.org\n",
    );
    let out = run(&path, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("listening-ip=192.0.2.123 is not an address of this host"),
        "{t}"
    );
    let out = run(&path, &["--check-config"]);
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("listening-ip=192.0.2.123 is not an address of this host"),
        "{t}"
    );
}
