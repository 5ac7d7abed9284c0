//! The sender/receiver loop: one thread, one epoll set (mio), every participant's socket and
//! every peer socket. Participants allocate, bind a channel to their peer, then send ChannelData
//! on their schedule; peers echo each packet back to the relay that delivered it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::proto::auth::rest::rest_password;
use crate::proto::channel_data;

use super::client::{Plan, State, TurnClient};
use super::client_socket::{ClientSocket, Connector};
use super::payload;
use super::profile::{stagger, Profile, Schedule};
use super::sampler::{self, CoreSample, ProcSample};
use super::stats::{Jitter, Leg};
use super::udp::{self, Batch, BATCH, MAX_DATAGRAM};

/// Tokens at or above this are peer sockets.
const PEER_TOKEN_BASE: usize = 1 << 30;
/// Transactions outstanding at once while participants set up.
pub const DEFAULT_SETUP_CONCURRENCY: usize = 64;
/// How long the loop keeps receiving after the last send of a measured window.
const GRACE: Duration = Duration::from_millis(500);
/// Most frames sent per loop turn, so receiving keeps up when the schedule is behind.
const SENDS_PER_TURN: usize = 512;

/// How participants authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// TURN REST: username `<expiry>:bench<i>`, password HMAC-SHA1(secret, username).
    Rest {
        /// The shared secret.
        secret: String,
    },
    /// One static long-term user for everyone.
    Static {
        /// User name.
        user: String,
        /// Password.
        pass: String,
    },
}

impl Auth {
    /// Username and password of participant `i`.
    pub fn credentials(&self, i: usize) -> (String, String) {
        match self {
            Auth::Rest { secret } => {
                let expiry = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    + 24 * 3600;
                let user = format!("{expiry}:bench{i}");
                let pass = rest_password(secret.as_bytes(), &user);
                (user, pass)
            }
            Auth::Static { user, pass } => (user.clone(), pass.clone()),
        }
    }
}

/// What every mode needs to reach the server.
#[derive(Debug, Clone)]
pub struct Target {
    /// The TURN server (its UDP, TCP or TLS port, as `connector` says).
    pub server: SocketAddr,
    /// How participants reach it.
    pub connector: Connector,
    /// Credentials.
    pub auth: Auth,
    /// Kernel socket buffer asked for on each socket.
    pub sock_buf: Option<usize>,
    /// The server's pid, for CPU and memory readings.
    pub server_pid: Option<u32>,
    /// The CPU the server's receive processing is steered to, for its busy time (a kernel fast
    /// path works in softirq context, outside the server process).
    pub server_core: Option<usize>,
}

struct Participant {
    client: TurnClient,
    socket: ClientSocket,
    schedule: Option<Schedule>,
    seq: u32,
    jitter_up: Jitter,
    jitter_down: Jitter,
    /// ChannelData datagrams received since the last [`Session::take_silent`].
    received: u32,
}

/// The outcome of one measured window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Participants streaming.
    pub participants: usize,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Packets per second each way the schedule asked for.
    pub target_pps: f64,
    /// Client → peer.
    pub up: Leg,
    /// Peer → client.
    pub down: Leg,
    /// Frames due in the window (sent, late or not, plus skipped).
    pub frames: u64,
    /// Frames sent more than 5 ms late.
    pub late_frames: u64,
    /// Frames skipped because the generator fell 100 ms behind.
    pub skipped_frames: u64,
    /// Datagrams the kernel refused (full socket buffer).
    pub send_errors: u64,
    /// CPU share of the generator (1.0 = one core).
    pub generator_cpu: f64,
    /// Machine-wide CPU steal share over the window.
    pub steal: f64,
    /// Server readings at the start and end of the window.
    pub server: Option<(ProcSample, ProcSample)>,
    /// Longest time the loop overslept its next due send in the window (preemption, stalls).
    pub max_stall_ns: u64,
    /// The server core (`--server-core`) and its readings at the start and end.
    pub server_core: Option<(usize, CoreSample, CoreSample)>,
}

impl Window {
    /// Packets per second each way the generator actually sent.
    pub fn achieved_pps(&self) -> f64 {
        self.up.sent as f64 / self.seconds.max(1e-9)
    }

    /// Whether the generator, not the server, set the pace: it sent under 97 % of the target,
    /// or more than 5 % of its frames left over 5 ms late (its core was busy: on loopback the
    /// sender's core also does the kernel's delivery of what it sends).
    pub fn client_limited(&self) -> bool {
        self.behind_schedule() || self.late_frames as f64 > 0.05 * self.frames.max(1) as f64
    }

    /// Whether the generator sent under 97 % of the packets its schedule asked for.
    pub fn behind_schedule(&self) -> bool {
        self.achieved_pps() < 0.97 * self.target_pps
    }

    /// Packets relayed per second (both directions).
    pub fn relayed_pps(&self) -> f64 {
        (self.up.received + self.down.received) as f64 / self.seconds.max(1e-9)
    }

    /// Payload Mbit/s relayed (both directions).
    pub fn relayed_mbps(&self) -> f64 {
        (self.up.bytes + self.down.bytes) as f64 * 8.0 / 1e6 / self.seconds.max(1e-9)
    }

    /// Worse loss of the two legs.
    pub fn loss(&self) -> f64 {
        self.up.loss().max(self.down.loss())
    }

    /// The server core per relayed packet: its busy microseconds, its busy share, and the
    /// microseconds that are the server's own (its process CPU plus the core's irq and
    /// softirq time), which other processes sharing the core do not inflate.
    pub fn server_core_us_per_packet(&self) -> Option<CoreFigures> {
        let (_, a, b) = self.server_core?;
        let packets = (self.up.received + self.down.received) as f64;
        let wall = b.at.saturating_duration_since(a.at).as_secs_f64();
        if packets == 0.0 || wall <= 0.0 {
            return None;
        }
        let process = self
            .server
            .as_ref()
            .map_or(0.0, |(p0, p1)| p1.cpu_s - p0.cpu_s);
        Some(CoreFigures {
            busy_us: (b.busy_s - a.busy_s) * 1e6 / packets,
            busy_share: (b.busy_s - a.busy_s) / wall,
            own_us: (process + b.irq_s - a.irq_s) * 1e6 / packets,
        })
    }

    /// Server CPU microseconds per relayed packet.
    pub fn server_us_per_packet(&self) -> Option<f64> {
        let (a, b) = self.server.as_ref()?;
        let packets = self.up.received + self.down.received;
        (packets > 0).then(|| (b.cpu_s - a.cpu_s) * 1e6 / packets as f64)
    }
}

/// What `--server-core` measured, per relayed packet.
#[derive(Debug, Clone, Copy)]
pub struct CoreFigures {
    /// The core's busy microseconds.
    pub busy_us: f64,
    /// The core's busy share over the window (1.0 = all of it).
    pub busy_share: f64,
    /// The server process's CPU plus the core's irq and softirq, microseconds.
    pub own_us: f64,
}

/// All participants and peers of a run, and the loop that drives them.
pub struct Session {
    target: Target,
    profile: Profile,
    poll: Poll,
    events: Events,
    epoch: Instant,
    participants: Vec<Participant>,
    peers: Vec<mio::net::UdpSocket>,
    peer_addrs: Vec<SocketAddr>,
    /// Peer sockets to create: 0 = one per participant.
    peers_wanted: usize,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    /// This turn's ready tokens, and whether each was writable.
    tokens: Vec<(usize, bool)>,
    batch: Batch,
    frame: Vec<u8>,
    out: Vec<u8>,
    window_start_ns: u64,
    window_end_ns: u64,
    measuring: bool,
    up: Leg,
    down: Leg,
    frames: u64,
    send_errors: u64,
    /// STUN error codes (0 = timeout) of participants that failed to set up.
    pub failures: Vec<u16>,
    /// Why TCP/TLS connections closed during setup: a few distinct reasons with counts.
    pub stream_errors: StreamErrors,
    setup_concurrency: usize,
    /// Rounds of [`Session::recycle`] so far (moves each round's peers and channels on).
    recycled: usize,
}

impl Session {
    /// A session with no participants yet. `peers` is the number of shared peer sockets
    /// (0 = one per participant).
    pub fn new(target: Target, profile: Profile, peers: usize) -> io::Result<Session> {
        Ok(Session {
            target,
            profile,
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            epoch: Instant::now(),
            participants: Vec::new(),
            peers: Vec::new(),
            peer_addrs: Vec::new(),
            peers_wanted: peers,
            timers: BinaryHeap::new(),
            tokens: Vec::with_capacity(1024),
            batch: Batch::default(),
            frame: vec![0; MAX_DATAGRAM * 8],
            out: vec![0; MAX_DATAGRAM],
            window_start_ns: 0,
            window_end_ns: u64::MAX,
            measuring: false,
            up: Leg::default(),
            down: Leg::default(),
            frames: 0,
            send_errors: 0,
            failures: Vec::new(),
            stream_errors: Vec::new(),
            setup_concurrency: DEFAULT_SETUP_CONCURRENCY,
            recycled: 0,
        })
    }

    /// Streams `profile` from now on (the overload mode changes the rate between windows).
    pub fn set_profile(&mut self, profile: Profile) {
        self.profile = profile;
    }

    /// Sets how many setup transactions may be outstanding at once.
    pub fn set_setup_concurrency(&mut self, n: usize) {
        self.setup_concurrency = n.max(1);
    }

    /// Participants that are allocated and ready.
    pub fn ready(&self) -> usize {
        self.participants
            .iter()
            .filter(|p| p.client.state() == State::Ready)
            .count()
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn peer_for(&mut self, i: usize) -> io::Result<SocketAddr> {
        let shared = self.peers_wanted > 0;
        if shared && self.peers.len() >= self.peers_wanted {
            return Ok(self.peer_addrs[i % self.peers_wanted]);
        }
        let local = udp::local_for(self.target.server);
        let mut s = udp::open(local, None, self.target.sock_buf)?;
        let addr = s.local_addr()?;
        let token = Token(PEER_TOKEN_BASE + self.peers.len());
        self.poll
            .registry()
            .register(&mut s, token, Interest::READABLE)?;
        self.peers.push(s);
        self.peer_addrs.push(addr);
        Ok(addr)
    }

    /// Adds `n` participants and runs their setup (Allocate, and with `with_peers`
    /// CreatePermission + ChannelBind) until all are ready or failed, or `deadline`. Returns how
    /// many became ready.
    pub fn add_participants(
        &mut self,
        n: usize,
        with_peers: bool,
        deadline: Instant,
        progress: &mut dyn FnMut(usize, usize),
    ) -> io::Result<usize> {
        let first = self.participants.len();
        // Sockets open as their participant starts, so at most `setup_concurrency` TCP/TLS
        // handshakes are under way at once.
        let mut started = 0;
        let mut open_failures = 0;
        let mut last_tick = Instant::now();
        loop {
            let now = Instant::now();
            let mut outstanding = 0;
            let mut done = open_failures;
            for p in &self.participants[first..] {
                match p.client.state() {
                    State::Ready => done += 1,
                    State::Failed(_) | State::Closed => done += 1,
                    _ => outstanding += 1,
                }
            }
            progress(done, n);
            while started < n && outstanding < self.setup_concurrency {
                started += 1;
                if !self.start_participant(with_peers, now)? {
                    open_failures += 1;
                    self.failures.push(0);
                    continue;
                }
                outstanding += 1;
            }
            if done == n || now >= deadline {
                break;
            }
            if now.duration_since(last_tick) >= Duration::from_millis(50) {
                last_tick = now;
                self.tick_clients(first, now);
            }
            self.turn(Some(Duration::from_millis(20)))?;
        }
        let mut ready = 0;
        for p in &mut self.participants[first..] {
            match p.client.state() {
                State::Ready => ready += 1,
                State::Failed(code) => self.failures.push(code),
                _ => {
                    self.failures.push(0);
                }
            }
            if let Some(why) = p.socket.close_reason() {
                note_stream_error(&mut self.stream_errors, why);
            }
        }
        Ok(ready)
    }

    /// Opens the next participant's socket and sends its first Allocate; false when the
    /// socket could not be opened (a TCP/TLS connect that failed).
    fn start_participant(&mut self, with_peers: bool, now: Instant) -> io::Result<bool> {
        let i = self.participants.len();
        let peer = if with_peers {
            let addr = self.peer_for(i)?;
            // Channels 0x4000..=0x4FFF; one per allocation, so the number can repeat.
            Some((addr, 0x4000 + (i % 0x1000) as u16))
        } else {
            None
        };
        let (user, pass) = self.target.auth.credentials(i);
        let plan = Plan {
            peer,
            delete_after_allocate: false,
        };
        let mut socket = match self
            .target
            .connector
            .open(self.target.server, self.target.sock_buf)
        {
            Ok(s) => s,
            // Out of descriptors is the caller's limit to fix, not a setup failure.
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return Err(e),
            Err(e) => {
                note_stream_error(&mut self.stream_errors, &format!("connect: {e}"));
                return Ok(false);
            }
        };
        socket.register(self.poll.registry(), Token(i))?;
        let mut client = TurnClient::new(i as u32, user, pass, plan);
        if let Some(len) = client.start(now, &mut self.out) {
            socket.send(&self.out[..len]);
        }
        self.participants.push(Participant {
            client,
            socket,
            schedule: None,
            seq: 0,
            jitter_up: Jitter::default(),
            jitter_down: Jitter::default(),
            received: 0,
        });
        Ok(true)
    }

    fn tick_clients(&mut self, from: usize, now: Instant) {
        for p in &mut self.participants[from..] {
            if let Some(len) = p.client.on_tick(now, &mut self.out) {
                p.socket.send(&self.out[..len]);
            }
        }
    }

    /// Keeps the allocations alive (Refresh as needed) for `duration` without streaming.
    pub fn idle(&mut self, duration: Duration, progress: &mut dyn FnMut(f64)) -> io::Result<()> {
        let start = Instant::now();
        let end = start + duration;
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            progress(now.duration_since(start).as_secs_f64() / duration.as_secs_f64());
            self.tick_clients(0, now);
            self.turn(Some((end - now).min(Duration::from_millis(200))))?;
        }
    }

    /// Streams the profile from every ready participant: `warmup` unmeasured, then `measure`
    /// measured, then a short drain. Returns the measured window.
    pub fn stream(
        &mut self,
        warmup: Duration,
        measure: Duration,
        progress: &mut dyn FnMut(f64),
    ) -> io::Result<Window> {
        let start = Instant::now();
        let interval = self.profile.frame_interval();
        let ready: Vec<usize> = (0..self.participants.len())
            .filter(|&i| self.participants[i].client.state() == State::Ready)
            .collect();
        self.timers.clear();
        for (k, &i) in ready.iter().enumerate() {
            let s = Schedule::new(start, interval, stagger(k, ready.len(), interval));
            self.timers.push(Reverse((s.due(), i as u32)));
            self.participants[i].schedule = Some(s);
        }
        self.up = Leg::default();
        self.down = Leg::default();
        self.send_errors = 0;
        self.frames = 0;
        self.measuring = false;
        self.window_start_ns = u64::MAX;
        self.window_end_ns = u64::MAX;
        let measure_at = start + warmup;
        let stop_at = measure_at + measure;
        let mut last_tick = start;
        let mut samples = None;
        let core = self.target.server_core;
        let mut core0 = None;
        let mut window_started_at = measure_at;
        let mut max_stall = Duration::ZERO;
        loop {
            let now = Instant::now();
            if self.measuring {
                if let Some(Reverse((due, _))) = self.timers.peek() {
                    max_stall = max_stall.max(now.saturating_duration_since(*due));
                }
            }
            if !self.measuring && now >= measure_at && samples.is_none() {
                self.measuring = true;
                self.window_start_ns = self.now_ns();
                window_started_at = now;
                for p in &mut self.participants {
                    if let Some(s) = p.schedule.as_mut() {
                        s.late = 0;
                        s.skipped = 0;
                    }
                }
                samples = Some(self.sample_all());
                core0 = core.and_then(sampler::core_sample);
            }
            if now >= stop_at {
                break;
            }
            progress(now.duration_since(start).as_secs_f64() / (warmup + measure).as_secs_f64());
            if now.duration_since(last_tick) >= Duration::from_secs(1) {
                last_tick = now;
                self.tick_clients(0, now);
            }
            self.send_due(now);
            let timeout = match self.timers.peek() {
                Some(Reverse((due, _))) => due.saturating_duration_since(Instant::now()),
                None => Duration::from_millis(50),
            };
            self.turn(Some(timeout.min(stop_at.saturating_duration_since(now))))?;
        }
        self.measuring = false;
        self.window_end_ns = self.now_ns();
        let seconds = Instant::now()
            .duration_since(window_started_at)
            .as_secs_f64();
        let (late, skipped) = self
            .participants
            .iter()
            .filter_map(|p| p.schedule.as_ref())
            .fold((0, 0), |(l, s), sch| (l + sch.late, s + sch.skipped));
        for p in &mut self.participants {
            p.schedule = None;
        }
        self.timers.clear();
        let drain_end = Instant::now() + GRACE;
        while Instant::now() < drain_end {
            self.turn(Some(drain_end.saturating_duration_since(Instant::now())))?;
        }
        let (server0, gen0, steal0) = samples.unwrap_or_else(|| self.sample_all());
        let (server1, gen1, steal1) = self.sample_all();
        let core1 = core.and_then(sampler::core_sample);
        Ok(Window {
            participants: ready.len(),
            seconds,
            target_pps: ready.len() as f64 * self.profile.pps(),
            up: std::mem::take(&mut self.up),
            down: std::mem::take(&mut self.down),
            frames: self.frames + skipped,
            late_frames: late,
            skipped_frames: skipped,
            send_errors: self.send_errors,
            generator_cpu: match (gen0, gen1) {
                (Some(a), Some(b)) => sampler::cpu_share(&a, &b),
                _ => 0.0,
            },
            steal: match (steal0, steal1) {
                (Some(a), Some(b)) => sampler::steal_share(a, b),
                _ => 0.0,
            },
            server: server0.zip(server1),
            max_stall_ns: max_stall.as_nanos() as u64,
            server_core: match (core, core0, core1) {
                (Some(c), Some(a), Some(b)) => Some((c, a, b)),
                _ => None,
            },
        })
    }

    #[allow(clippy::type_complexity)]
    fn sample_all(&self) -> (Option<ProcSample>, Option<ProcSample>, Option<(u64, u64)>) {
        (
            self.target.server_pid.and_then(sampler::sample),
            sampler::sample(0),
            sampler::steal_counters(),
        )
    }

    /// Sends every frame that is due.
    fn send_due(&mut self, now: Instant) {
        let size = self.profile.size;
        let per_frame = self.profile.packets_per_frame as usize;
        let framed = channel_data::HEADER_LEN + size;
        let mut sent_frames = 0;
        while let Some(&Reverse((due, i))) = self.timers.peek() {
            if due > now || sent_frames >= SENDS_PER_TURN {
                break;
            }
            self.timers.pop();
            sent_frames += 1;
            let now_ns = self.now_ns();
            let p = &mut self.participants[i as usize];
            let Some(schedule) = p.schedule.as_mut() else {
                continue;
            };
            let send = schedule.take(now);
            if self.measuring && send {
                self.frames += 1;
            }
            self.timers.push(Reverse((schedule.due(), i)));
            let Some(channel) = p.client.channel() else {
                continue;
            };
            if !send {
                continue;
            }
            for k in 0..per_frame {
                let buf = &mut self.frame[k * MAX_DATAGRAM..k * MAX_DATAGRAM + framed];
                let header: &mut [u8; 4] = (&mut buf[..4]).try_into().expect("4 bytes");
                channel_data::write_header(header, channel, size as u16);
                payload::write(&mut buf[4..], i, p.seq, now_ns);
                p.seq = p.seq.wrapping_add(1);
            }
            let bufs: Vec<&[u8]> = (0..per_frame)
                .map(|k| &self.frame[k * MAX_DATAGRAM..k * MAX_DATAGRAM + framed])
                .collect();
            let ok = if per_frame == 1 {
                usize::from(p.socket.send(bufs[0]))
            } else {
                p.socket.send_many(&bufs)
            };
            self.send_errors += (per_frame - ok) as u64;
            if self.measuring {
                self.up.sent += ok as u64;
            }
        }
    }

    fn in_window(&self, sent_ns: u64) -> bool {
        sent_ns >= self.window_start_ns && sent_ns < self.window_end_ns
    }

    /// One poll and the handling of everything it reported.
    fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        poll_once(&mut self.poll, &mut self.events, timeout)?;
        self.tokens.clear();
        self.tokens
            .extend(self.events.iter().map(|e| (e.token().0, e.is_writable())));
        for k in 0..self.tokens.len() {
            let (t, writable) = self.tokens[k];
            if t >= PEER_TOKEN_BASE {
                self.drain_peer(t - PEER_TOKEN_BASE)?;
            } else {
                if writable {
                    if let Some(p) = self.participants.get_mut(t) {
                        p.socket.flush();
                    }
                }
                self.drain_client(t)?;
            }
        }
        Ok(())
    }

    fn drain_peer(&mut self, p: usize) -> io::Result<()> {
        loop {
            let n = udp::recv_batch(&self.peers[p], &mut self.batch, true)?;
            if n == 0 {
                return Ok(());
            }
            let now_ns = self.now_ns();
            for k in 0..n {
                let len = self.batch.lens[k];
                let Some(stamp) = payload::read(&self.batch.data[k * MAX_DATAGRAM..][..len]) else {
                    continue;
                };
                if self.in_window(stamp.sent_ns) {
                    let transit = now_ns.saturating_sub(stamp.sent_ns);
                    let jitter = match self.participants.get_mut(stamp.participant as usize) {
                        Some(part) => part.jitter_up.update(transit as i64),
                        None => 0.0,
                    };
                    self.up.arrived(transit, len, jitter);
                }
                payload::set_echoed(self.batch.slot(k), now_ns);
            }
            let bufs: Vec<&[u8]> = (0..n).map(|k| self.batch.datagram(k)).collect();
            let sent = udp::send_batch(&self.peers[p], &bufs, Some(&self.batch.addrs[..n]));
            self.send_errors += (n - sent) as u64;
            for k in 0..sent {
                if let Some(stamp) = payload::read(self.batch.datagram(k)) {
                    if self.in_window(stamp.sent_ns) {
                        self.down.sent += 1;
                    }
                }
            }
            if n < BATCH {
                return Ok(());
            }
        }
    }

    fn drain_client(&mut self, i: usize) -> io::Result<()> {
        loop {
            let Some(part) = self.participants.get_mut(i) else {
                return Ok(());
            };
            let n = part.socket.recv_batch(&mut self.batch)?;
            if n == 0 {
                return Ok(());
            }
            let now = Instant::now();
            let now_ns = self.now_ns();
            for k in 0..n {
                let len = self.batch.lens[k];
                let data = &self.batch.data[k * MAX_DATAGRAM..k * MAX_DATAGRAM + len];
                match data.first() {
                    Some(0x40..=0x7F) => {
                        let max = channel_data::MAX_CHANNEL;
                        let Some((_, body)) = channel_data::parse(data, max) else {
                            continue;
                        };
                        let part = &mut self.participants[i];
                        part.received = part.received.saturating_add(1);
                        let Some(stamp) = payload::read(body) else {
                            continue;
                        };
                        if self.in_window(stamp.sent_ns) {
                            let transit = now_ns.saturating_sub(stamp.echoed_ns);
                            let jitter = self.participants[i].jitter_down.update(transit as i64);
                            self.down.arrived(transit, body.len(), jitter);
                        }
                    }
                    Some(0x00..=0x03) => {
                        let part = &mut self.participants[i];
                        if let Some(len) = part.client.on_stun(now, data, &mut self.out) {
                            part.socket.send(&self.out[..len]);
                        }
                    }
                    _ => {}
                }
            }
            if n < BATCH {
                return Ok(());
            }
        }
    }

    /// Ready participants that received no relayed datagram since the last call: while
    /// streaming, a session the server lost. Resets the counts.
    pub fn take_silent(&mut self) -> usize {
        let mut silent = 0;
        for p in &mut self.participants {
            if p.client.state() == State::Ready && p.received == 0 {
                silent += 1;
            }
            p.received = 0;
        }
        silent
    }

    /// Participants `from..from + n` (wrapping) end their allocation (Refresh 0) and make a new
    /// one on the same socket, with a permission and a channel to the next peer: allocation,
    /// permission and channel churn at a constant number of sockets. Returns how many are ready
    /// again by `deadline`.
    pub fn recycle(&mut self, from: usize, n: usize, deadline: Instant) -> io::Result<usize> {
        let total = self.participants.len();
        if total == 0 {
            return Ok(0);
        }
        let picked: Vec<usize> = (0..n.min(total)).map(|k| (from + k) % total).collect();
        let now = Instant::now();
        for &i in &picked {
            let p = &mut self.participants[i];
            if let Some(len) = p.client.close(now, &mut self.out) {
                p.socket.send(&self.out[..len]);
            }
        }
        while Instant::now() < deadline
            && picked
                .iter()
                .any(|&i| self.participants[i].client.state() == State::Deleting)
        {
            self.tick_clients(0, Instant::now());
            self.turn(Some(Duration::from_millis(20)))?;
        }
        let now = Instant::now();
        for &i in &picked {
            let peer = if self.peer_addrs.is_empty() {
                None
            } else {
                let k = (i + 1 + self.recycled) % self.peer_addrs.len();
                let channel = 0x4000 + ((i + self.recycled) % 0x1000) as u16;
                Some((self.peer_addrs[k], channel))
            };
            let (user, pass) = self.target.auth.credentials(i);
            let plan = Plan {
                peer,
                delete_after_allocate: false,
            };
            let p = &mut self.participants[i];
            p.client = TurnClient::new(i as u32, user, pass, plan);
            if let Some(len) = p.client.start(now, &mut self.out) {
                p.socket.send(&self.out[..len]);
            }
        }
        self.recycled += 1;
        let mut last_tick = Instant::now();
        loop {
            let ready = picked
                .iter()
                .filter(|&&i| self.participants[i].client.state() == State::Ready)
                .count();
            let settled = picked.iter().all(|&i| !self.participants[i].client.busy());
            if settled || Instant::now() >= deadline {
                return Ok(ready);
            }
            if last_tick.elapsed() >= Duration::from_millis(50) {
                last_tick = Instant::now();
                self.tick_clients(0, last_tick);
            }
            self.turn(Some(Duration::from_millis(20)))?;
        }
    }

    /// Deletes every allocation (Refresh 0) and waits for the answers until `deadline`.
    pub fn close_all(&mut self, deadline: Instant) -> io::Result<()> {
        let now = Instant::now();
        let mut next = 0;
        while Instant::now() < deadline {
            // Pace the deletes like the setup, so they are not lost to a full buffer.
            let mut outstanding = self
                .participants
                .iter()
                .filter(|p| p.client.state() == State::Deleting)
                .count();
            while next < self.participants.len() && outstanding < self.setup_concurrency {
                let p = &mut self.participants[next];
                if let Some(len) = p.client.close(now, &mut self.out) {
                    p.socket.send(&self.out[..len]);
                    outstanding += 1;
                }
                next += 1;
            }
            if next >= self.participants.len() && outstanding == 0 {
                break;
            }
            self.tick_clients(0, Instant::now());
            self.turn(Some(Duration::from_millis(20)))?;
        }
        Ok(())
    }
}

/// Why TCP/TLS connections failed: a few distinct reasons, each with its count.
pub type StreamErrors = Vec<(String, usize)>;

/// Waits for events once; a signal that interrupts the wait counts as a wake-up with none
/// (mio empties `events` before it waits).
pub fn poll_once(
    poll: &mut Poll,
    events: &mut Events,
    timeout: Option<Duration>,
) -> io::Result<()> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
        _ => Ok(()),
    }
}

/// Counts `why` among the distinct reasons kept (at most a few, so a run of failures cannot
/// grow the list).
pub fn note_stream_error(list: &mut StreamErrors, why: &str) {
    if let Some(entry) = list.iter_mut().find(|(w, _)| w == why) {
        entry.1 += 1;
    } else if list.len() < 5 {
        list.push((why.to_string(), 1));
    }
}
