//! Timer-driven draining (`poll-interval-ms`) relays everything, only later.

mod common;

use std::time::Duration;

use common::turn_raw::Session;
use common::{Auth, TestServer, SECRET};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread")]
async fn relays_with_a_poll_interval() {
    timeout(Duration::from_secs(30), async {
        let server =
            TestServer::start_with(Auth::RestAndStatic, &["--poll-interval-ms", "2"]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        for i in 0..20u8 {
            session.assert_relays(&[i; 100]).await;
        }
    })
    .await
    .expect("test timed out");
}
