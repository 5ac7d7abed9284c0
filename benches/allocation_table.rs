//! The allocation table with 10,000 allocations: ChannelData lookups spread over all flows.

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ferroturn::proto::flow::Transport;
use ferroturn::proto::server::{ClientAction, PeerAction, PEER_HEADROOM, PEER_TAILROOM};

const ALLOCATIONS: u32 = 10_000;

fn table(c: &mut Criterion) {
    let mut b = common::Bench::new(ALLOCATIONS as u16 + 100);
    for i in 0..ALLOCATIONS {
        b.allocate(i + 1);
    }
    assert_eq!(b.server.allocation_count(), ALLOCATIONS as usize);
    let packets: Vec<Vec<u8>> = b
        .allocations
        .iter()
        .map(|&(_, _, ch)| {
            let mut p = vec![0u8; 4 + 100];
            p[..2].copy_from_slice(&ch.to_be_bytes());
            p[2..4].copy_from_slice(&100u16.to_be_bytes());
            p
        })
        .collect();
    let allocs = b.allocations.clone();
    let peer = common::PEER.parse().unwrap();
    let mut out = vec![0u8; 1500];
    let mut buf = vec![0u8; PEER_HEADROOM + 100 + PEER_TAILROOM];
    let now = b.now;
    // A stride through the table defeats the caches the way many active calls do.
    let mut k = 0usize;
    c.bench_function("client lookup among 10k allocations", |bn| {
        bn.iter(|| {
            k = (k + 7919) % allocs.len();
            let (flow, _, _) = allocs[k];
            let a = b.server.handle_client(
                now,
                flow,
                Transport::Udp,
                black_box(&packets[k]),
                &mut out,
                &mut b.binder,
            );
            assert!(matches!(a, ClientAction::Relay { .. }));
        })
    });
    c.bench_function("peer lookup among 10k allocations", |bn| {
        bn.iter(|| {
            k = (k + 7919) % allocs.len();
            let (_, relay, _) = allocs[k];
            let a = b
                .server
                .handle_peer(now, black_box(relay), peer, &mut buf, 100);
            assert!(matches!(a, PeerAction::Forward { .. }));
        })
    });
}

criterion_group!(benches, table);
criterion_main!(benches);
