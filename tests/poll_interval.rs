//! Paced polling: timer-driven draining (`poll-interval-ms`) and coalescing while traffic
//! flows (`poll-coalesce-us`) relay everything, only later; coalescing waits only while
//! packets arrive, never on an idle relay.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::prom::{scrape, Scrape};
use common::turn_raw::Session;
use common::{free_tcp_port, Auth, TestServer, SECRET};
use tokio::time::{sleep, timeout};

const WAITS: &str = "ferroturn_poll_waits_total";

async fn scrape_async(addr: SocketAddr) -> Scrape {
    tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .expect("scrape task")
}

/// A server with the given pacing options and its metrics address.
async fn paced_server(pacing: &[&str]) -> (TestServer, SocketAddr) {
    let metrics_port = free_tcp_port().to_string();
    let args = [
        &["--prometheus", "--prometheus-port", &metrics_port][..],
        pacing,
    ]
    .concat();
    let server = TestServer::start_with(Auth::RestAndStatic, &args).await;
    let metrics = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    (server, metrics)
}

#[tokio::test(flavor = "multi_thread")]
async fn relays_with_a_poll_interval() {
    timeout(Duration::from_secs(30), async {
        let (server, metrics) = paced_server(&["--poll-interval-ms", "2"]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        for i in 0..20u8 {
            session.assert_relays(&[i; 100]).await;
        }
        assert!(scrape_async(metrics).await.get(WAITS, &[]) > 0.0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn coalescing_relays_and_waits_only_while_traffic_flows() {
    timeout(Duration::from_secs(30), async {
        let (server, metrics) = paced_server(&["--poll-coalesce-us", "2000"]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        for i in 0..20u8 {
            session.assert_relays(&[i; 100]).await;
        }
        let after_traffic = scrape_async(metrics).await.get(WAITS, &[]);
        assert!(after_traffic > 0.0, "no wait while packets arrived");

        // Idle: the relay threads still wake for their timers, but a turn without input
        // is never followed by a wait.
        sleep(Duration::from_millis(200)).await;
        let idle_start = scrape_async(metrics).await.get(WAITS, &[]);
        sleep(Duration::from_millis(1500)).await;
        assert_eq!(scrape_async(metrics).await.get(WAITS, &[]), idle_start);
        session.assert_relays(b"after the silence").await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_wakeup_by_default() {
    timeout(Duration::from_secs(30), async {
        let (server, metrics) = paced_server(&[]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        for i in 0..5u8 {
            session.assert_relays(&[i; 100]).await;
        }
        assert_eq!(scrape_async(metrics).await.get(WAITS, &[]), 0.0);
    })
    .await
    .expect("test timed out");
}
