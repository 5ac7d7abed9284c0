//! The `alloc` mode: allocation rate with K transactions outstanding.
//!
//! Each cycle is what a client joining and leaving a call does: a fresh socket (a new 5-tuple),
//! Allocate answered by 401, the authenticated Allocate, then Refresh with lifetime 0. The
//! allocation latency runs from the first Allocate to its success (two round trips); the cycle
//! latency adds the delete.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::client::{Plan, State, TurnClient};
use super::client_socket::ClientSocket;
use super::driver::{poll_once, Target};
use super::progress::Progress;
use super::report::AllocResult;
use super::sampler;
use super::udp::{self, Batch};

struct Slot {
    client: TurnClient,
    socket: ClientSocket,
}

/// Runs up to `count` cycles with `concurrency` outstanding, for at most `duration`.
pub fn run(
    target: &Target,
    count: u64,
    concurrency: usize,
    duration: Duration,
    progress: &mut Progress,
) -> io::Result<AllocResult> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<Slot>> = (0..concurrency.max(1)).map(|_| None).collect();
    let mut out = vec![0u8; udp::MAX_DATAGRAM];
    let mut batch = Batch::default();
    let mut result = AllocResult {
        concurrency: slots.len(),
        ..Default::default()
    };
    let start = Instant::now();
    let end = start + duration;
    let server0 = target.server_pid.and_then(sampler::sample);
    let mut started: u64 = 0;
    let mut last_tick = start;
    progress.stage(format!(
        "alloc: {count} cycles, {} outstanding",
        slots.len()
    ));
    loop {
        let now = Instant::now();
        // Retire finished cycles and start new ones in their place.
        for (k, slot) in slots.iter_mut().enumerate() {
            if let Some(s) = slot {
                if !s.client.finished() {
                    continue;
                }
                match (s.client.state(), s.client.started, s.client.allocated) {
                    (State::Closed, Some(t0), Some(t1)) => {
                        result.completed += 1;
                        result.allocate_latency.record((t1 - t0).as_nanos() as u64);
                        result.cycle_latency.record((now - t0).as_nanos() as u64);
                    }
                    (state, _, _) => {
                        result.failed += 1;
                        if result.failure_codes.len() < 1000 {
                            result.failure_codes.push(match state {
                                State::Failed(code) => code,
                                _ => 0,
                            });
                        }
                    }
                }
                s.socket.deregister(poll.registry());
                *slot = None;
            }
            if slot.is_none() && started < count && now < end {
                let (user, pass) = target.auth.credentials(started as usize);
                let plan = Plan {
                    peer: None,
                    delete_after_allocate: true,
                };
                // A new connection per cycle over TCP/TLS: a joining client's handshake is
                // part of what it costs.
                let mut socket = match target.connector.open(target.server, None) {
                    Ok(s) => s,
                    Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return Err(e),
                    Err(_) => {
                        started += 1;
                        result.failed += 1;
                        if result.failure_codes.len() < 1000 {
                            result.failure_codes.push(0);
                        }
                        continue;
                    }
                };
                socket.register(poll.registry(), Token(k))?;
                let mut client = TurnClient::new(started as u32, user, pass, plan);
                if let Some(n) = client.start(now, &mut out) {
                    socket.send(&out[..n]);
                }
                started += 1;
                *slot = Some(Slot { client, socket });
            }
        }
        let active = slots.iter().filter(|s| s.is_some()).count();
        progress.set((result.completed + result.failed) as f64 / count.max(1) as f64);
        // Cycles still running at the time bound get a short grace, then count as failed.
        if active == 0 || now > end + Duration::from_secs(3) {
            result.failed += active as u64;
            break;
        }
        if now.duration_since(last_tick) >= Duration::from_millis(50) {
            last_tick = now;
            for s in slots.iter_mut().flatten() {
                if let Some(n) = s.client.on_tick(now, &mut out) {
                    s.socket.send(&out[..n]);
                }
            }
        }
        poll_once(&mut poll, &mut events, Some(Duration::from_millis(20)))?;
        for ev in events.iter() {
            let Some(Some(s)) = slots.get_mut(ev.token().0) else {
                continue;
            };
            if ev.is_writable() {
                s.socket.flush();
            }
            loop {
                let n = s.socket.recv_batch(&mut batch)?;
                let now = Instant::now();
                for i in 0..n {
                    if let Some(len) = s.client.on_stun(now, batch.datagram(i), &mut out) {
                        s.socket.send(&out[..len]);
                    }
                }
                if n < udp::BATCH {
                    break;
                }
            }
        }
    }
    result.seconds = start.elapsed().as_secs_f64();
    let server1 = target.server_pid.and_then(sampler::sample);
    result.server_cpu = server0
        .zip(server1)
        .map(|(a, b)| sampler::cpu_share(&a, &b));
    progress.finish();
    Ok(result)
}
