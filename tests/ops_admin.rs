//! Operations, admin API: bearer-token authentication, listing a live session with its
//! counters, ending it, revoking a user or a REST secret (their live sessions end and new
//! Allocates get 401), and the `ferroturn admin` command-line client.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::json::Json;
use common::turn_raw::{RawClient, Session, SILENCE};
use common::{free_tcp_port, http, server_bin, Auth, TestServer, SECRET};
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const TOKEN: &str = "admin-test-token-0123456789abcdef";
const SECRET2: &str = "second-static-secret";

async fn server_with_admin(extra: &[&str]) -> (TestServer, SocketAddr) {
    let port = free_tcp_port();
    let port_s = port.to_string();
    let mut args = vec!["--admin-token", TOKEN, "--admin-port", &port_s];
    args.extend_from_slice(extra);
    let server = TestServer::start_with(Auth::RestAndStatic, &args).await;
    let api = SocketAddr::from(([127, 0, 0, 1], port));
    // Wait for the listener (the HTTP client retries refused connections), so the CLI runs
    // below never race its bind.
    call_json(api, "GET", "/admin/status", "", 200).await;
    (server, api)
}

async fn call(
    api: SocketAddr,
    method: &'static str,
    path: &str,
    token: Option<&'static str>,
    body: &str,
) -> http::Reply {
    let (path, body) = (path.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || http::request(api, method, &path, token, &body))
        .await
        .expect("admin request task")
}

/// An authorised call whose answer must be JSON with `status`.
async fn call_json(
    api: SocketAddr,
    method: &'static str,
    path: &str,
    body: &str,
    status: u16,
) -> Json {
    let r = call(api, method, path, Some(TOKEN), body).await;
    assert_eq!(r.status, status, "{method} {path}: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    Json::parse(&r.body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", r.body))
}

async fn sessions(api: SocketAddr) -> Vec<Json> {
    call_json(api, "GET", "/admin/sessions", "", 200)
        .await
        .arr()
        .to_vec()
}

/// Allocate with fresh credentials: `None` on success (released again), else the code.
async fn allocate_code(server: &TestServer, secret: &str, user: &str) -> Option<u16> {
    let mut c = RawClient::rest(server.addr, secret, user).await;
    match c.allocate().await {
        Ok(_) => {
            assert_eq!(c.refresh(0).await, Ok(0));
            None
        }
        Err(code) => Some(code),
    }
}

/// The session's allocation is gone: nothing relayed either way, and a Refresh gets
/// `refresh_code` (437 once the allocation is gone; 401 first when its credentials were
/// revoked).
async fn assert_ended(session: &mut Session, refresh_code: u16) {
    session.assert_not_relayed().await;
    session
        .peer
        .send_to(b"to a closed relay", session.relayed)
        .await
        .expect("peer send");
    assert_eq!(
        session.client.recv_channel(session.channel, SILENCE).await,
        None,
        "relayed to the client after the session ended"
    );
    assert_eq!(session.client.refresh(600).await, Err(refresh_code));
}

#[tokio::test]
async fn admin_api_needs_the_bearer_token() {
    timeout(TEST_TIMEOUT, async {
        let (_server, api) = server_with_admin(&[]).await;
        for (path, token) in [
            ("/admin/status", None),
            ("/admin/sessions", None),
            ("/admin/status", Some("wrong-token-wrong-token-wrong")),
            ("/admin/status", Some("admin-test-token")), // a prefix of the right one
            ("/admin/nothing-here", None),
        ] {
            let r = call(api, "GET", path, token, "").await;
            assert_eq!(r.status, 401, "GET {path} with {token:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            let body = Json::parse(&r.body).expect("401 body is JSON");
            assert!(!body.get("error").str().is_empty());
        }
        for (method, path) in [
            ("POST", "/admin/drain"),
            ("DELETE", "/admin/sessions/1"),
            ("POST", "/admin/users/alice/revoke"),
        ] {
            let r = call(api, method, path, None, "").await;
            assert_eq!(r.status, 401, "{method} {path} without a token");
        }
        let status = call_json(api, "GET", "/admin/status", "", 200).await;
        assert_eq!(status.get("allocations").u64(), 0);
        assert!(
            !status.get("draining").bool(),
            "unauthorised drain was applied"
        );
        assert!(status.get("ready").bool());
        call_json(api, "GET", "/admin/nothing-here", "", 404).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn admin_token_shorter_than_16_characters_is_refused() {
    let out = tokio::process::Command::new(server_bin())
        .args(["-n", "--check-config", "--listening-ip", "127.0.0.1"])
        .args(["--use-auth-secret", "--static-auth-secret", SECRET])
        .args(["--admin-token", "too-short"])
        .output();
    let out = timeout(Duration::from_secs(10), out)
        .await
        .expect("check-config finishes")
        .expect("run check-config");
    assert!(
        !out.status.success(),
        "a 9-character admin token was accepted"
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("admin-token"), "stderr: {text}");
}

#[tokio::test]
async fn admin_lists_a_live_session_and_ends_it() {
    timeout(TEST_TIMEOUT, async {
        let (server, api) = server_with_admin(&[]).await;
        let mut session = Session::open(server.addr, SECRET, "alice").await;
        let to_peer = [10usize, 200, 1000];
        let to_client = [7usize, 300];
        for len in to_peer {
            session
                .client
                .send_channel(session.channel, &vec![1; len])
                .await;
            let (got, _) = session
                .peer_recv(Duration::from_secs(2))
                .await
                .expect("relayed to the peer");
            assert_eq!(got.len(), len);
        }
        for len in to_client {
            session
                .peer
                .send_to(&vec![2; len], session.relayed)
                .await
                .expect("peer send");
            let got = session
                .client
                .recv_channel(session.channel, Duration::from_secs(2))
                .await
                .expect("relayed to the client");
            assert_eq!(got.len(), len);
        }

        let list = sessions(api).await;
        assert_eq!(list.len(), 1, "{list:?}");
        let s = &list[0];
        assert_eq!(s.get("username").str(), session.client.username);
        assert_eq!(s.get("user").str(), "alice");
        assert_eq!(s.get("transport").str(), "udp");
        assert_eq!(s.get("client").str(), session.client.addr().to_string());
        assert_eq!(s.get("relayed").str(), session.relayed.to_string());
        assert_eq!(s.get("relay").str(), session.relayed.to_string());
        assert!(s.get("age_seconds").u64() < 10);
        let expires = s.get("expires_in_seconds").u64();
        assert!((1..=600).contains(&expires), "expires_in_seconds {expires}");
        assert_eq!(s.get("packets_to_peers").u64(), to_peer.len() as u64);
        assert_eq!(
            s.get("bytes_to_peers").u64(),
            to_peer.iter().sum::<usize>() as u64
        );
        assert_eq!(s.get("packets_to_client").u64(), to_client.len() as u64);
        assert_eq!(
            s.get("bytes_to_client").u64(),
            to_client.iter().sum::<usize>() as u64
        );
        let perms: Vec<&str> = s.get("permissions").arr().iter().map(Json::str).collect();
        assert_eq!(perms, ["127.0.0.1"]);
        let channels = s.get("channels").arr();
        assert_eq!(channels.len(), 1);
        assert_eq!(channels[0].get("number").u64(), u64::from(session.channel));
        assert_eq!(
            channels[0].get("peer").str(),
            session.peer_addr().to_string()
        );
        let secret_id = s.get("secret_id").str();
        assert!(
            secret_id.len() == 16 && secret_id.chars().all(|c| c.is_ascii_hexdigit()),
            "secret_id {secret_id:?}"
        );
        s.get("shard").u64();

        let id = s.get("id").u64();
        let ended = call_json(api, "DELETE", &format!("/admin/sessions/{id}"), "", 200).await;
        assert_eq!(ended.get("ended").u64(), 1);
        assert!(sessions(api).await.is_empty());
        let status = call_json(api, "GET", "/admin/status", "", 200).await;
        assert_eq!(status.get("allocations").u64(), 0);
        assert_ended(&mut session, 437).await;

        call_json(api, "DELETE", &format!("/admin/sessions/{id}"), "", 404).await;
        call_json(api, "DELETE", "/admin/sessions/not-a-number", "", 400).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn revoking_a_user_ends_their_sessions_and_refuses_them() {
    timeout(TEST_TIMEOUT, async {
        let (server, api) = server_with_admin(&[]).await;
        let mut alice = Session::open(server.addr, SECRET, "alice").await;
        let bob = Session::open(server.addr, SECRET, "bob").await;
        let r = call_json(api, "POST", "/admin/users/alice/revoke", "", 200).await;
        assert_eq!(r.get("revoked").str(), "alice");
        assert_eq!(r.get("ended").u64(), 1);
        assert_ended(&mut alice, 401).await;
        bob.assert_relays(b"bob is not alice").await;
        assert_eq!(allocate_code(&server, SECRET, "alice").await, Some(401));
        assert_eq!(allocate_code(&server, SECRET, "bob").await, None);
        let list = sessions(api).await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].get("user").str(), "bob");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn revoking_a_secret_ends_its_sessions_and_refuses_it() {
    timeout(TEST_TIMEOUT, async {
        let (server, api) = server_with_admin(&[
            "--static-auth-secret",
            SECRET,
            "--static-auth-secret",
            SECRET2,
        ])
        .await;
        let mut first = Session::open(server.addr, SECRET, "alice").await;
        let second = Session::open(server.addr, SECRET2, "alice").await;
        call_json(api, "POST", "/admin/secrets/revoke", "", 400).await;
        let r = call_json(api, "POST", "/admin/secrets/revoke", SECRET, 200).await;
        assert_eq!(r.get("ended").u64(), 1);
        assert_ended(&mut first, 401).await;
        second.assert_relays(b"signed by the other secret").await;
        assert_eq!(allocate_code(&server, SECRET, "carol").await, Some(401));
        assert_eq!(allocate_code(&server, SECRET2, "carol").await, None);
    })
    .await
    .expect("test timed out");
}

/// Runs `ferroturn admin ARGS` with `FERROTURN_ADMIN_TOKEN` unset.
async fn cli(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(server_bin())
        .arg("admin")
        .args(args)
        .env_remove("FERROTURN_ADMIN_TOKEN")
        .output();
    let out = timeout(Duration::from_secs(10), out)
        .await
        .expect("ferroturn admin finishes")
        .expect("run ferroturn admin");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_cli_status_sessions_end_and_revoke() {
    timeout(TEST_TIMEOUT, async {
        let (server, api) = server_with_admin(&[]).await;
        let address = api.to_string();
        let base = ["--address", address.as_str(), "--token", TOKEN];
        let mut session = Session::open(server.addr, SECRET, "alice").await;
        // A REST user part with characters the CLI must percent-encode in the path.
        let mut odd = Session::open(server.addr, SECRET, "dave@example.org").await;

        let (code, out, err) = cli(&[&base[..], &["--json", "status"]].concat()).await;
        assert_eq!(code, 0, "status: {err}");
        let status = Json::parse(out.trim()).expect("status --json prints JSON");
        assert_eq!(status.get("allocations").u64(), 2);

        // Without --json: a table for people.
        let (code, out, err) = cli(&[&base[..], &["status"]].concat()).await;
        assert_eq!(code, 0, "status: {err}");
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["allocations", "2"]),
            "{out}"
        );
        let (code, out, err) = cli(&[&base[..], &["sessions"]].concat()).await;
        assert_eq!(code, 0, "sessions: {err}");
        assert!(out.starts_with("ID "), "{out}");
        assert!(out.contains(&session.relayed.to_string()), "{out}");
        assert!(out.ends_with("2 session(s)\n"), "{out}");

        // -c FILE: address and token from the relay's turnserver.conf.
        let conf =
            std::env::temp_dir().join(format!("ferroturn-admin-c-{}.conf", std::process::id()));
        std::fs::write(
            &conf,
            format!(
                "use-auth-secret\nadmin-address=127.0.0.1\nadmin-port={}\nadmin-token={TOKEN}\n",
                api.port()
            ),
        )
        .expect("write conf");
        let (code, out, err) =
            cli(&["-c", conf.to_str().unwrap_or_default(), "--json", "status"]).await;
        let _ = std::fs::remove_file(&conf);
        assert_eq!(code, 0, "-c FILE status: {err}");
        assert_eq!(
            Json::parse(out.trim())
                .expect("JSON")
                .get("allocations")
                .u64(),
            2
        );

        let (code, out, err) = cli(&[&base[..], &["--json", "sessions"]].concat()).await;
        assert_eq!(code, 0, "sessions: {err}");
        let list = Json::parse(out.trim()).expect("sessions prints JSON");
        let mine = list
            .arr()
            .iter()
            .find(|s| s.get("username").str() == session.client.username)
            .expect("the session is listed");
        assert_eq!(mine.get("relayed").str(), session.relayed.to_string());
        let id = mine.get("id").u64().to_string();

        let (code, _, err) = cli(&[&base[..], &["end", &id]].concat()).await;
        assert_eq!(code, 0, "end: {err}");
        assert_ended(&mut session, 437).await;
        let (code, _, err) = cli(&[&base[..], &["end", &id]].concat()).await;
        assert_eq!(code, 1, "ending it twice");
        assert!(err.contains("404"), "stderr: {err}");

        let (code, out, err) =
            cli(&[&base[..], &["--json", "revoke-user", "dave@example.org"]].concat()).await;
        assert_eq!(code, 0, "revoke-user: {err}");
        let r = Json::parse(out.trim()).expect("revoke-user prints JSON");
        assert_eq!(r.get("revoked").str(), "dave@example.org");
        assert_eq!(r.get("ended").u64(), 1);
        assert_ended(&mut odd, 401).await;

        let (code, _, err) = cli(&[
            "--address",
            &address,
            "--token",
            "wrong-token-wrong-token",
            "status",
        ])
        .await;
        assert_eq!(code, 1, "wrong token");
        assert!(err.contains("401"), "stderr: {err}");
        let (code, _, err) = cli(&["--address", &address, "status"]).await;
        assert_eq!(code, 2, "no token");
        assert!(err.contains("token"), "stderr: {err}");
        let (code, _, _) = cli(&[&base[..], &["frobnicate"]].concat()).await;
        assert_eq!(code, 2, "unknown command");
        let closed = format!("127.0.0.1:{}", free_tcp_port());
        let (code, _, err) = cli(&["--address", &closed, "--token", TOKEN, "status"]).await;
        assert_eq!(code, 1, "nothing listening");
        assert!(err.contains("cannot reach"), "stderr: {err}");
    })
    .await
    .expect("test timed out");
}
