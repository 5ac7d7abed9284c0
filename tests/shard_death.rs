//! A relay thread that dies is noticed at once: the process exits non-zero (so systemd,
//! Kubernetes or Docker restart it) instead of running on short of a shard. The shard is made
//! to panic through the test-only `fault-injection` feature (src/runtime/fault_injection.rs);
//! tests/run-all.sh runs this file with `--features fault-injection`. `/readyz` turning red is
//! proven in-process by `runtime::shard_health::tests::readyz_turns_red_when_a_shard_dies`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{free_tcp_port, http, stun, Auth, TestServer};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const TRIGGER_VAR: &str = "FAULT_INJECTION_SHARD_PANIC_FILE";

#[tokio::test]
async fn a_panicking_shard_makes_the_relay_exit_non_zero_at_once() {
    timeout(Duration::from_secs(30), async {
        let dir =
            std::env::temp_dir().join(format!("ferroturn-shard-death-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let trigger = dir.join("panic-now");
        let _ = std::fs::remove_file(&trigger);
        // The server inherits the test's environment (only FERROTURN_* is removed). Each test
        // runs in a process of its own under nextest, and this binary has no other test that
        // reads the environment.
        std::env::set_var(TRIGGER_VAR, &trigger);

        let port = free_tcp_port();
        let port_s = port.to_string();
        let args = [
            "--relay-threads",
            "1",
            "--prometheus",
            "--prometheus-port",
            &port_s,
        ];
        let mut server = TestServer::start_with(Auth::RestAndStatic, &args).await;
        let metrics = SocketAddr::from(([127, 0, 0, 1], port));
        let ready =
            tokio::task::spawn_blocking(move || http::request(metrics, "GET", "/readyz", None, ""))
                .await
                .unwrap();
        assert_eq!(ready.status, 200, "{}", ready.body);

        std::fs::write(&trigger, b"").expect("create trigger");
        // Wake the one shard so it takes a turn of its event loop.
        let probe = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let req = stun::Message::request(stun::method::BINDING);
        probe
            .send_to(&req.encode(None, true), server.addr)
            .await
            .expect("send");
        let died = Instant::now();
        let status = server
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("still running after a shard died:\n{}", server.logs()));
        assert_eq!(status.code(), Some(1), "{}", server.logs());
        assert!(
            died.elapsed() < Duration::from_secs(2),
            "took {:?} to exit",
            died.elapsed()
        );
        let logs = server.logs();
        assert!(logs.contains("relay thread died"), "{logs}");
        assert!(
            logs.contains("fault injection: shard 0 panics on request"),
            "{logs}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test timed out");
}
