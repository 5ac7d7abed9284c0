//! Steering the shards from other threads (signals, the admin API, metrics) without sharing
//! their state: commands go in over a channel and the shard is woken to read them.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mio::Waker;

use super::connection_limits::ConnectionLimits;
use super::core_setup::{core_config_from, Revocations};
use super::io_stats::IoStats;
use super::ops_stats::OpsStats;
use super::shard_health::{ShardFailure, ShardHealth};
use super::tls_config::CertStore;
use crate::config::Config;
use crate::proto::auth::secret_id;
use crate::proto::peer_policy::ServerAddresses;
use crate::proto::server::CoreStats;
use crate::proto::settings::{CoreConfigRef, SharedRef};

/// How long a control request waits for every shard to answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A live allocation as the admin API shows it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Session id (unique in the process).
    pub id: u64,
    /// Shard that owns it.
    pub shard: usize,
    /// USERNAME it authenticated with.
    pub username: String,
    /// Quota id (user part of a REST username).
    pub user_id: String,
    /// Client transport.
    pub transport: &'static str,
    /// Client address.
    pub client: SocketAddr,
    /// Relay socket address.
    pub relay: SocketAddr,
    /// Advertised relayed address.
    pub relayed: SocketAddr,
    /// The IPv6 relay of a dual allocation: relay socket address and advertised address.
    pub additional: Option<(SocketAddr, SocketAddr)>,
    /// Seconds since it was created.
    pub age_secs: u64,
    /// Seconds until it expires unless refreshed.
    pub expires_in_secs: u64,
    /// Payload bytes client → peers.
    pub bytes_to_peers: u64,
    /// Payload bytes peers → client.
    pub bytes_to_client: u64,
    /// Packets client → peers.
    pub packets_to_peers: u64,
    /// Packets peers → client.
    pub packets_to_client: u64,
    /// Peer IPs with a live permission.
    pub permissions: Vec<IpAddr>,
    /// Live channel bindings.
    pub channels: Vec<(u16, SocketAddr)>,
    /// Id of the REST secret it used, if any.
    pub secret_id: Option<u64>,
}

/// Which sessions to end.
#[derive(Debug, Clone)]
pub enum SessionFilter {
    /// One session.
    Id(u64),
    /// Every session of a user (quota id).
    User(String),
    /// Every session authenticated by a REST secret.
    Secret(u64),
}

/// A request to one shard.
pub enum ShardCommand {
    /// Use this configuration from now on.
    SetConfig(CoreConfigRef),
    /// Report live sessions.
    ListSessions(Sender<Vec<SessionInfo>>),
    /// End the selected sessions and report how many ended.
    EndSessions(SessionFilter, Sender<usize>),
}

/// The channel end a shard reads.
pub type CommandReceiver = Receiver<ShardCommand>;

/// Signals every shard checks on each turn.
#[derive(Default)]
pub struct ShardFlags {
    /// Leave the event loop.
    pub stop: AtomicBool,
    /// Refuse new allocations.
    pub draining: AtomicBool,
    /// Which shard threads died.
    pub health: ShardHealth,
}

struct ShardHandle {
    commands: Sender<ShardCommand>,
    waker: Arc<Waker>,
    stats: Arc<CoreStats>,
    io: Arc<IoStats>,
}

/// A handle to steer and observe the running relay; cheap to clone into other threads.
#[derive(Clone)]
pub struct Control {
    inner: Arc<ControlInner>,
}

struct ControlInner {
    shards: Vec<ShardHandle>,
    flags: Arc<ShardFlags>,
    shared: SharedRef,
    limits: Arc<ConnectionLimits>,
    revocations: Mutex<Revocations>,
    config: Mutex<Config>,
    server_addresses: ServerAddresses,
    ready: AtomicBool,
    ops: Arc<OpsStats>,
    certs: OnceLock<Arc<CertStore>>,
    fast_path: OnceLock<super::fast_path::FastPathStats>,
}

impl Control {
    pub(super) fn new(
        shards: ShardHandles,
        shared: SharedRef,
        limits: Arc<ConnectionLimits>,
        flags: Arc<ShardFlags>,
        config: Config,
        server_addresses: ServerAddresses,
    ) -> Self {
        Control {
            inner: Arc::new(ControlInner {
                shards: shards.0,
                flags,
                shared,
                limits,
                revocations: Mutex::new(Revocations::default()),
                config: Mutex::new(config),
                server_addresses,
                ready: AtomicBool::new(false),
                ops: Arc::new(OpsStats::default()),
                certs: OnceLock::new(),
                fast_path: OnceLock::new(),
            }),
        }
    }

    /// Reload counters.
    pub fn ops(&self) -> &Arc<OpsStats> {
        &self.inner.ops
    }

    /// The TLS certificate store, when TLS is configured.
    pub fn certificates(&self) -> Option<&Arc<CertStore>> {
        self.inner.certs.get()
    }

    pub(super) fn set_certificates(&self, store: Arc<CertStore>) {
        let _ = self.inner.certs.set(store);
    }

    pub(super) fn set_fast_path(&self, stats: super::fast_path::FastPathStats) {
        let _ = self.inner.fast_path.set(stats);
    }

    /// The kernel fast path's counters, when it runs.
    pub fn fast_path(&self) -> Option<&super::fast_path::FastPathStats> {
        self.inner.fast_path.get()
    }

    pub(super) fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Relaxed);
    }

    /// Listeners bound, every shard thread alive, and not draining.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed)
            && !self.is_draining()
            && self.inner.flags.health.all_alive()
    }

    /// The first shard thread that died, if one did (the relay then exits non-zero).
    pub fn shard_failure(&self) -> Option<ShardFailure> {
        self.inner.flags.health.failure()
    }

    /// Whether new allocations are refused.
    pub fn is_draining(&self) -> bool {
        self.inner.flags.draining.load(Ordering::Relaxed)
    }

    /// Stops (or resumes) accepting new allocations.
    pub fn set_draining(&self, draining: bool) {
        self.inner.flags.draining.store(draining, Ordering::Relaxed);
        self.wake_all();
    }

    /// Live allocations across all shards.
    pub fn allocation_count(&self) -> u32 {
        self.inner.shared.quotas.total_in_use()
    }

    /// Every shard's counters.
    pub fn shard_stats(&self) -> Vec<Arc<CoreStats>> {
        self.inner.shards.iter().map(|s| s.stats.clone()).collect()
    }

    /// Every shard's I/O counters (drops at the sockets, accept failures).
    pub fn io_stats(&self) -> Vec<Arc<IoStats>> {
        self.inner.shards.iter().map(|s| s.io.clone()).collect()
    }

    /// Shared state (ports, quotas).
    pub fn shared(&self) -> &SharedRef {
        &self.inner.shared
    }

    /// Open TCP/TLS connections.
    pub fn tcp_connections(&self) -> usize {
        self.inner.limits.total()
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.inner
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies a new (already validated) configuration to every shard: credentials, realm,
    /// peer lists, quotas, bandwidth limits, lifetimes. Options marked `Reload::Restart` in the
    /// option table (listeners, relay range, TLS files, ...) do not take effect; the caller
    /// names those (`config::reload_plan`).
    pub fn apply_config(&self, config: Config) {
        self.inner
            .shared
            .quotas
            .set_limits(config.limits.user_quota, config.limits.total_quota);
        *self.inner.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
        self.broadcast_config();
    }

    /// Lists live sessions of every shard.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let (tx, rx) = mpsc::channel();
        let asked = self.send_all(|| ShardCommand::ListSessions(tx.clone()));
        drop(tx);
        let mut all = Vec::new();
        for _ in 0..asked {
            match rx.recv_timeout(REPLY_TIMEOUT) {
                Ok(list) => all.extend(list),
                Err(_) => break,
            }
        }
        all.sort_by_key(|s| s.id);
        all
    }

    /// Ends one session; returns whether it existed.
    pub fn end_session(&self, id: u64) -> bool {
        self.end_sessions(SessionFilter::Id(id)) > 0
    }

    /// Refuses a user from now on and ends their live sessions; returns how many ended.
    pub fn revoke_user(&self, user_id: &str) -> usize {
        self.revocations().users.insert(user_id.to_string());
        self.broadcast_config();
        self.end_sessions(SessionFilter::User(user_id.to_string()))
    }

    /// Refuses a REST secret from now on and ends the sessions it authenticated; returns how
    /// many ended.
    pub fn revoke_secret(&self, secret: &str) -> usize {
        let id = secret_id(secret.as_bytes());
        self.revocations().secrets.insert(id);
        self.broadcast_config();
        self.end_sessions(SessionFilter::Secret(id))
    }

    fn end_sessions(&self, filter: SessionFilter) -> usize {
        let (tx, rx) = mpsc::channel();
        let asked = self.send_all(|| ShardCommand::EndSessions(filter.clone(), tx.clone()));
        drop(tx);
        (0..asked)
            .map_while(|_| rx.recv_timeout(REPLY_TIMEOUT).ok())
            .sum()
    }

    fn revocations(&self) -> std::sync::MutexGuard<'_, Revocations> {
        self.inner
            .revocations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn broadcast_config(&self) {
        let config = self.config();
        let revoked = self.revocations().clone();
        let core = Arc::new(core_config_from(
            &config,
            self.inner.shards.len(),
            &revoked,
            &self.inner.server_addresses,
        ));
        self.send_all(|| ShardCommand::SetConfig(core.clone()));
    }

    fn send_all(&self, mut make: impl FnMut() -> ShardCommand) -> usize {
        let mut sent = 0;
        for shard in &self.inner.shards {
            if shard.commands.send(make()).is_ok() {
                let _ = shard.waker.wake();
                sent += 1;
            }
        }
        sent
    }

    pub(super) fn stop_all(&self) {
        self.inner.flags.stop.store(true, Ordering::Relaxed);
        self.wake_all();
    }

    fn wake_all(&self) {
        for shard in &self.inner.shards {
            let _ = shard.waker.wake();
        }
    }
}

/// The shard handles collected while the shards are created.
#[derive(Default)]
pub(super) struct ShardHandles(Vec<ShardHandle>);

impl ShardHandles {
    pub(super) fn add(
        &mut self,
        commands: Sender<ShardCommand>,
        waker: Arc<Waker>,
        stats: Arc<CoreStats>,
        io: Arc<IoStats>,
    ) {
        self.0.push(ShardHandle {
            commands,
            waker,
            stats,
            io,
        });
    }
}
