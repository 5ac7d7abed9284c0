//! The `handshake` mode: how fast the server takes new TCP/TLS connections, and what an idle
//! one costs it. Connections open with `concurrency` outstanding; each counts once it has
//! carried a STUN Binding round trip (for TLS: the whole handshake, both sides, plus one
//! record each way). All stay open, idle, for the hold time; the server's RSS growth divided
//! by the connections held is its memory per idle connection.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::client_socket::{ClientSocket, ClientTransport};
use super::driver::{note_stream_error, poll_once, StreamErrors, Target};
use super::progress::Progress;
use super::report::HeldMemory;
use super::sampler;
use super::stats::Histogram;
use super::udp::Batch;
use super::wire::{parse_response, write_binding};

/// What the mode measured.
#[derive(Debug, Clone, Default)]
pub struct HandshakeResult {
    /// The transport the connections used.
    pub transport: &'static str,
    /// Connections asked for.
    pub requested: usize,
    /// Connections that answered their Binding.
    pub completed: usize,
    /// Connections that failed (connect refused, TLS error, closed, or no answer in time).
    pub failed: usize,
    /// Connections outstanding at once.
    pub concurrency: usize,
    /// Seconds from the first connect to the last answer.
    pub seconds: f64,
    /// Connect to Binding answer, per connection.
    pub latency: Histogram,
    /// Server CPU seconds spent while connecting.
    pub server_cpu_s: Option<f64>,
    /// How long every connection was held idle and what that cost the server.
    pub memory: HeldMemory,
}

impl HandshakeResult {
    /// Connections (handshakes) completed per second.
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.seconds.max(1e-9)
    }

    /// Server CPU microseconds per completed connection.
    pub fn server_us_per_connection(&self) -> Option<f64> {
        let cpu = self.server_cpu_s?;
        (self.completed > 0).then(|| cpu * 1e6 / self.completed as f64)
    }
}

struct Conn {
    socket: ClientSocket,
    opened: Instant,
    tid: [u8; 12],
    answered: bool,
}

/// How long one connection may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the mode: `count` connections, `concurrency` outstanding, the setup bounded by
/// `deadline`, then held for `hold`. Returns the result and why connections failed.
pub fn run(
    target: &Target,
    count: usize,
    concurrency: usize,
    hold: Duration,
    deadline: Instant,
    progress: &mut Progress,
) -> io::Result<(HandshakeResult, StreamErrors)> {
    if target.connector.transport == ClientTransport::Udp {
        return Err(io::Error::other(
            "--mode handshake needs --transport tcp or tls",
        ));
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Conn> = Vec::with_capacity(count);
    let mut errors = Vec::new();
    let mut batch = Batch::default();
    let mut out = [0u8; 64];
    let mut result = HandshakeResult {
        transport: target.connector.transport.name(),
        requested: count,
        concurrency: concurrency.max(1),
        ..Default::default()
    };
    let pid = target.server_pid;
    let before = pid.and_then(sampler::sample);
    result.memory.before_kib = before.as_ref().map(|s| s.rss_kib);
    progress.stage(format!(
        "handshake: {count} {} connections, {} outstanding",
        result.transport, result.concurrency
    ));
    let start = Instant::now();
    let mut outstanding = 0usize;
    let mut attempted = 0usize;
    let mut last_answer = start;
    loop {
        let now = Instant::now();
        while attempted < count && outstanding < result.concurrency && now < deadline {
            attempted += 1;
            let k = conns.len();
            let mut socket = match target.connector.open(target.server, None) {
                Ok(s) => s,
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return Err(e),
                Err(e) => {
                    note_stream_error(&mut errors, &format!("connect: {e}"));
                    result.failed += 1;
                    continue;
                }
            };
            socket.register(poll.registry(), Token(k))?;
            let mut tid = [0u8; 12];
            tid[..8].copy_from_slice(&(k as u64).to_be_bytes());
            tid[8..].copy_from_slice(b"hand");
            let n = write_binding(&mut out, tid).map_err(|e| io::Error::other(e.to_string()))?;
            // Held inside rustls until the handshake is done, then sent as the first record.
            socket.send(&out[..n]);
            conns.push(Conn {
                socket,
                opened: now,
                tid,
                answered: false,
            });
            outstanding += 1;
        }
        progress.set((result.completed + result.failed) as f64 / count.max(1) as f64);
        if outstanding == 0 && (attempted == count || now >= deadline) {
            break;
        }
        if now >= deadline + ANSWER_TIMEOUT {
            break;
        }
        poll_once(&mut poll, &mut events, Some(Duration::from_millis(20)))?;
        for ev in events.iter() {
            let Some(c) = conns.get_mut(ev.token().0) else {
                continue;
            };
            if c.answered {
                continue;
            }
            if ev.is_writable() {
                c.socket.flush();
            }
            loop {
                let n = c.socket.recv_batch(&mut batch)?;
                for i in 0..n {
                    if parse_response(batch.datagram(i)).is_ok_and(|r| r.tid == c.tid) {
                        c.answered = true;
                    }
                }
                if n < super::udp::BATCH {
                    break;
                }
            }
            let now = Instant::now();
            if c.answered {
                result.completed += 1;
                result
                    .latency
                    .record(now.duration_since(c.opened).as_nanos() as u64);
                outstanding -= 1;
                last_answer = now;
            } else if c.socket.is_closed() {
                note_stream_error(&mut errors, c.socket.close_reason().unwrap_or("closed"));
                c.answered = true;
                result.failed += 1;
                outstanding -= 1;
            }
        }
        // Connections that never answer count as failed.
        let now = Instant::now();
        for c in conns.iter_mut().filter(|c| !c.answered) {
            if now.duration_since(c.opened) > ANSWER_TIMEOUT {
                c.answered = true;
                result.failed += 1;
                outstanding -= 1;
            }
        }
    }
    result.seconds = last_answer.duration_since(start).as_secs_f64();
    let after = pid.and_then(sampler::sample);
    result.server_cpu_s = before
        .as_ref()
        .zip(after.as_ref())
        .map(|(a, b)| b.cpu_s - a.cpu_s);
    progress.finish();
    progress.stage(format!("handshake: holding {}", result.completed));
    let t = Instant::now();
    while t.elapsed() < hold {
        progress.set(t.elapsed().as_secs_f64() / hold.as_secs_f64().max(1e-9));
        // Idle: nothing is sent; whatever arrives (nothing should) is read and dropped.
        let wait = hold
            .saturating_sub(t.elapsed())
            .min(Duration::from_millis(200));
        poll_once(&mut poll, &mut events, Some(wait))?;
        for ev in events.iter() {
            if let Some(c) = conns.get_mut(ev.token().0) {
                while c.socket.recv_batch(&mut batch)? == super::udp::BATCH {}
            }
        }
    }
    result.memory.seconds = t.elapsed().as_secs_f64();
    // Read memory at the end of the hold, when the server has settled.
    result.memory.held_kib = pid.and_then(sampler::sample).map(|s| s.rss_kib);
    progress.finish();
    Ok((result, errors))
}
