//! `kernel-fast-path`: `on` refuses to start when the program cannot run, `auto` says why and
//! relays in user space. A relay on loopback only never gets the program (loopback is not
//! attached), whatever the privileges and the build, so these hold on any machine.

mod common;

use std::process::{Command, Stdio};

use common::{Auth, TestServer};

#[test]
fn on_refuses_to_start_without_an_interface_to_attach_to() {
    if common::is_coturn() {
        return;
    }
    let child = Command::new(common::server_bin())
        .args([
            "--no-config",
            "--no-auth",
            "--listening-ip",
            "127.0.0.1",
            "--listening-port",
            &common::free_tcp_port().to_string(),
            "--no-tcp",
            "--kernel-fast-path",
            "on",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferroturn");
    let out = common::wait_for_refusal(child);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("kernel-fast-path = on, but"), "{text}");
    // Which reason depends on the build: both name what is missing.
    assert!(
        text.contains("no non-loopback interface") || text.contains("built without"),
        "{text}"
    );
}

#[tokio::test]
async fn auto_logs_why_and_relays_in_user_space() {
    if common::is_coturn() {
        return;
    }
    let server = TestServer::start_with(Auth::RestAndStatic, &["--kernel-fast-path", "auto"]).await;
    let logs = server.logs();
    assert!(
        logs.contains("kernel fast path not in use (kernel-fast-path = auto)"),
        "{logs}"
    );
}

#[test]
fn an_unknown_mode_is_a_configuration_error() {
    if common::is_coturn() {
        return;
    }
    let out = Command::new(common::server_bin())
        .args([
            "--no-config",
            "--check-config",
            "--kernel-fast-path",
            "maybe",
        ])
        .output()
        .expect("run ferroturn");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("is not off, auto or on"), "{text}");
}
