//! The per-packet core cost: ChannelData from a client, and a peer datagram framed back.

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ferroturn::proto::flow::Transport;
use ferroturn::proto::server::{ClientAction, PeerAction, PEER_HEADROOM, PEER_TAILROOM};

fn relay(c: &mut Criterion) {
    let mut b = common::Bench::new(100);
    b.allocate(1);
    let (flow, relay, channel) = b.allocations[0];
    let peer = common::PEER.parse().unwrap();
    let mut packet = vec![0u8; 4 + 160];
    packet[..2].copy_from_slice(&channel.to_be_bytes());
    packet[2..4].copy_from_slice(&160u16.to_be_bytes());
    let mut out = vec![0u8; 1500];
    let now = b.now;
    let mut g = c.benchmark_group("relay path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("handle_client ChannelData 160 B", |bn| {
        bn.iter(|| {
            let a = b.server.handle_client(
                now,
                flow,
                Transport::Udp,
                black_box(&packet),
                &mut out,
                &mut b.binder,
            );
            assert!(matches!(a, ClientAction::Relay { .. }));
        })
    });
    let mut buf = vec![0u8; PEER_HEADROOM + 160 + PEER_TAILROOM];
    g.bench_function("handle_peer to channel 160 B", |bn| {
        bn.iter(|| {
            let a = b
                .server
                .handle_peer(now, relay, black_box(peer), &mut buf, 160);
            assert!(matches!(a, PeerAction::Forward { .. }));
        })
    });
    g.finish();
}

criterion_group!(benches, relay);
criterion_main!(benches);
