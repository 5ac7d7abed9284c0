//! The TURN REST credential endpoint: an application fetches `{username, password, ttl, uris}`
//! and the relay accepts exactly that credential.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::json::Json;
use common::turn_raw::RawClient;
use common::{free_tcp_port, http, Auth, TestServer};
use tokio::time::timeout;

const TOKEN: &str = "credential-endpoint-token";

#[tokio::test(flavor = "multi_thread")]
async fn fetched_credentials_allocate_and_the_token_is_required() {
    timeout(Duration::from_secs(30), async {
        let port = free_tcp_port();
        let port_s = port.to_string();
        let args = [
            "--rest-api-token",
            TOKEN,
            "--rest-api-port",
            &port_s,
            "--rest-api-host",
            "127.0.0.1",
        ];
        let server = TestServer::start_with(Auth::RestAndStatic, &args).await;
        let api = SocketAddr::from(([127, 0, 0, 1], port));

        let refused = tokio::task::spawn_blocking(move || {
            http::request(api, "GET", "/credentials?service=turn", None, "")
        })
        .await
        .unwrap();
        assert_eq!(refused.status, 401);

        let body = http::fetch_credentials(api, TOKEN, "webapp").await;
        let username = body.get("username").str().to_string();
        let password = body.get("password").str().to_string();
        assert!(username.ends_with(":webapp"), "{username}");
        assert_eq!(body.get("ttl").u64(), 600);
        let uris: Vec<&str> = body.get("uris").arr().iter().map(Json::str).collect();
        let turn_port = server.addr.port();
        assert!(
            uris.contains(&format!("turn:127.0.0.1:{turn_port}?transport=udp").as_str()),
            "{uris:?}"
        );

        let mut client = RawClient::new(server.addr, &username, &password).await;
        let relayed = client
            .allocate()
            .await
            .expect("the minted credential allocates");
        assert!(server.in_relay_range(relayed));
    })
    .await
    .expect("test timed out");
}
