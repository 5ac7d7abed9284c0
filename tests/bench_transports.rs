//! `ferroturn bench --transport tcp|tls` against the real ferroturn binary on loopback: every
//! participant on its own TCP or TLS connection, the peers on UDP; nothing lost, the report
//! names the transport, and a certificate the client does not trust fails the setup with the
//! reason printed.

const SECRET: &str = "bench-transport-itest-secret";

mod bench_server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bench_server::BenchServer;

/// A CA and a server certificate for localhost/127.0.0.1 signed by it, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn issue(dir: &Path, tag: &str) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let pki = Pki {
        ca: dir.join(format!("{tag}-ca.pem")),
        cert: dir.join(format!("{tag}-cert.pem")),
        key: dir.join(format!("{tag}-key.pem")),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, leaf.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Run {
    out: Output,
    json: serde_json::Value,
}

impl Run {
    fn stdout(&self) -> String {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr)
        )
    }
}

fn bench(dir: &Path, name: &str, server: &BenchServer, port: u16, args: &[&str]) -> Run {
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_ferroturn"))
        .args(["bench", "--server", &format!("127.0.0.1:{port}")])
        .args(["--secret", SECRET])
        .arg("--server-pid")
        .arg(server.pid().to_string())
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .unwrap();
    let json = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    Run { out, json }
}

/// Both legs of the only window: all sent arrived, at least `min` each way.
fn assert_lossless(run: &Run, participants: u64, min: u64) {
    let w = &run.json["windows"][0];
    assert_eq!(w["participants"], participants, "{}", run.stdout());
    for leg in ["up", "down"] {
        let l = &w[leg];
        assert!(l["sent"].as_u64().unwrap() >= min, "{leg}: {l}");
        assert_eq!(l["sent"], l["received"], "{leg} lost packets: {l}");
    }
    assert!(
        w["server"]["cpu_us_per_packet"].as_f64().is_some(),
        "{}",
        run.stdout()
    );
}

#[test]
fn tcp_and_tls_participants_lose_nothing() {
    let dir = std::env::temp_dir().join(format!("ferroturn-bench-tr-{}", std::process::id()));
    let pki = issue(&dir, "good");
    let tls_port = free_tcp_port();
    let extra = format!(
        "tls-listening-port={tls_port}\ncert={}\npkey={}\n",
        pki.cert.display(),
        pki.key.display()
    );
    let server = BenchServer::start_with(&dir, SECRET, (63000, 63999), &extra);
    let stream = ["--participants", "5", "--profile", "audio"];
    let short = ["--duration", "2", "--warmup", "0.5"];

    // TCP on the TURN port.
    let args: Vec<&str> = [&["--transport", "tcp"][..], &stream, &short].concat();
    let run = bench(&dir, "tcp", &server, server.port, &args);
    assert!(run.out.status.success(), "{}", run.stdout());
    assert_eq!(run.json["transport"], "tcp");
    assert!(
        run.stdout().contains("fixed over tcp to"),
        "{}",
        run.stdout()
    );
    assert_lossless(&run, 5, 400);

    // TLS on the TLS port, the certificate checked against its CA and name.
    let ca = pki.ca.to_str().unwrap();
    let tls: Vec<&str> = [
        &[
            "--transport",
            "tls",
            "--tls-ca",
            ca,
            "--tls-name",
            "localhost",
        ][..],
        &stream,
        &short,
    ]
    .concat();
    let run = bench(&dir, "tls", &server, tls_port, &tls);
    assert!(run.out.status.success(), "{}", run.stdout());
    assert_eq!(run.json["transport"], "tls");
    assert_lossless(&run, 5, 400);

    // TLS detected on the plain TURN port, certificate not verified (self-signed test setups).
    let insecure: Vec<&str> = [
        &["--transport", "tls", "--tls-insecure"][..],
        &stream,
        &short,
    ]
    .concat();
    let run = bench(&dir, "tls-turn-port", &server, server.port, &insecure);
    assert!(run.out.status.success(), "{}", run.stdout());
    assert_lossless(&run, 5, 400);

    // A CA that did not sign the server's certificate: no participant, and the reason shown.
    let other = issue(&dir, "other");
    let wrong: Vec<&str> = [
        &[
            "--transport",
            "tls",
            "--tls-ca",
            other.ca.to_str().unwrap(),
            "--tls-name",
            "localhost",
        ][..],
        &["--participants", "2", "--duration", "0.5", "--warmup", "0"],
    ]
    .concat();
    let run = bench(&dir, "tls-untrusted", &server, tls_port, &wrong);
    assert_eq!(run.out.status.code(), Some(3), "{}", run.stdout());
    assert!(
        run.stdout().contains("connections failed: 2 × TLS:"),
        "{}",
        run.stdout()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `poll-coalesce-us` the relay waits between polls while traffic flows; the frames of
/// every participant still arrive, on UDP, TCP and TLS.
#[test]
fn coalescing_loses_nothing_on_any_transport() {
    let dir = std::env::temp_dir().join(format!("ferroturn-bench-co-{}", std::process::id()));
    let pki = issue(&dir, "co");
    let extra = format!(
        "poll-coalesce-us=1000\ncert={}\npkey={}\n",
        pki.cert.display(),
        pki.key.display()
    );
    let server = BenchServer::start_with(&dir, SECRET, (62000, 62999), &extra);
    let load = ["--participants", "5", "--profile", "audio"];
    let short = ["--duration", "2", "--warmup", "0.5"];
    for transport in [&["udp"][..], &["tcp"], &["tls", "--tls-insecure"]] {
        let args: Vec<&str> = [&["--transport"][..], transport, &load, &short].concat();
        let run = bench(
            &dir,
            &format!("co-{}", transport[0]),
            &server,
            server.port,
            &args,
        );
        assert!(run.out.status.success(), "{}", run.stdout());
        assert_lossless(&run, 5, 400);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stream_alloc_hold_and_handshake_modes_complete() {
    let dir = std::env::temp_dir().join(format!("ferroturn-bench-trm-{}", std::process::id()));
    let pki = issue(&dir, "m");
    let tls_port = free_tcp_port();
    let extra = format!(
        "tls-listening-port={tls_port}\ncert={}\npkey={}\n",
        pki.cert.display(),
        pki.key.display()
    );
    let server = BenchServer::start_with(&dir, SECRET, (64000, 64999), &extra);

    // alloc over TCP: a new connection per cycle, every cycle completes.
    let run = bench(
        &dir,
        "alloc",
        &server,
        server.port,
        &[
            "--transport",
            "tcp",
            "--mode",
            "alloc",
            "--count",
            "40",
            "--concurrency",
            "8",
            "--duration",
            "20",
        ],
    );
    assert!(run.out.status.success(), "{}", run.stdout());
    assert_eq!(run.json["alloc"]["completed"], 40, "{}", run.stdout());
    assert_eq!(run.json["alloc"]["failed"], 0, "{}", run.stdout());

    // hold over TLS: every allocation held on its own connection.
    let run = bench(
        &dir,
        "hold",
        &server,
        tls_port,
        &[
            "--transport",
            "tls",
            "--tls-insecure",
            "--mode",
            "hold",
            "--count",
            "30",
            "--duration",
            "0.5",
        ],
    );
    assert!(run.out.status.success(), "{}", run.stdout());
    assert_eq!(run.json["hold"]["held"], 30, "{}", run.stdout());
    assert!(run.json["hold"]["kib_per_allocation"].as_f64().is_some());

    // handshake over TLS: each connection answered its Binding, memory per connection read.
    let run = bench(
        &dir,
        "handshake",
        &server,
        tls_port,
        &[
            "--transport",
            "tls",
            "--tls-ca",
            pki.ca.to_str().unwrap(),
            "--tls-name",
            "localhost",
            "--mode",
            "handshake",
            "--count",
            "60",
            "--concurrency",
            "16",
            "--duration",
            "0.5",
        ],
    );
    assert!(run.out.status.success(), "{}", run.stdout());
    let h = &run.json["handshake"];
    assert_eq!(h["completed"], 60, "{}", run.stdout());
    assert_eq!(h["failed"], 0, "{}", run.stdout());
    assert_eq!(h["transport"], "tls");
    assert!(h["per_second"].as_f64().unwrap() > 0.0);
    assert!(h["kib_per_connection"].as_f64().is_some());
    assert!(h["server_cpu_us_per_connection"].as_f64().is_some());

    // handshake over UDP is refused with a reason.
    let run = bench(
        &dir,
        "handshake-udp",
        &server,
        server.port,
        &["--mode", "handshake", "--count", "1"],
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", run.stdout());
    assert!(
        run.stdout().contains("needs --transport tcp or tls"),
        "{}",
        run.stdout()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
