//! The runtime: sockets, shard threads and signals around the sans-IO core.

pub mod addresses;
pub mod core_setup;
pub mod relay_sockets;
pub mod shard;
pub mod udp_socket;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mio::Waker;
use thiserror::Error;

use crate::config::Config;
use crate::proto::server::Server;
use relay_sockets::RelaySockets;
use shard::{Shard, ShardControl};

/// Why the relay could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The relay port range is unusable.
    #[error("relay port range: {0}")]
    PortRange(#[from] crate::proto::ports::PortRangeError),
    /// Nothing to listen on.
    #[error("no listener is enabled (UDP is off and TCP/TLS listeners are not available)")]
    NoListeners,
    /// No relay address could be found.
    #[error("no relay address: set relay-ip")]
    NoRelayAddress,
    /// A shard could not be set up.
    #[error("cannot start shard: {0}")]
    Shard(io::Error),
}

/// A running relay: its shard threads and the handles to steer them.
pub struct Runtime {
    shards: Vec<(JoinHandle<io::Result<()>>, Arc<Waker>)>,
    control: Arc<ShardControl>,
    /// UDP addresses actually bound (one per listening address and port).
    pub udp_listeners: Vec<SocketAddr>,
    /// Relay addresses per family.
    pub relay_addresses: (Option<IpAddr>, Option<IpAddr>),
}

impl Runtime {
    /// Opens every socket and starts one shard per relay thread.
    pub fn start(config: &Config) -> Result<Runtime, StartError> {
        let threads = config
            .relay_threads
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let listen_ips = addresses::listening_addresses(&config.listening_ips);
        let interfaces = addresses::interface_addresses();
        let relay_addresses =
            addresses::relay_addresses(&config.relay_ips, &listen_ips, &interfaces);
        if relay_addresses == (None, None) {
            return Err(StartError::NoRelayAddress);
        }
        let mut ports = vec![config.listening_port];
        ports.extend(config.alt_listening_port);
        let mut udp_addrs = Vec::new();
        if !config.no_udp {
            for ip in &listen_ips {
                for port in &ports {
                    udp_addrs.push(SocketAddr::new(*ip, *port));
                }
            }
        }
        if udp_addrs.is_empty() {
            return Err(StartError::NoListeners);
        }
        let listener_buffer = Some(config.sock_buf_size.unwrap_or(DEFAULT_LISTENER_BUFFER));

        // Every shard binds its own socket on each address (SO_REUSEPORT).
        let mut per_shard = Vec::with_capacity(threads);
        for shard in 0..threads {
            let mut sockets = Vec::with_capacity(udp_addrs.len());
            for addr in &udp_addrs {
                let (socket, granted) = udp_socket::bind_udp(*addr, true, listener_buffer)
                    .map_err(|source| StartError::Listen {
                        addr: *addr,
                        source,
                    })?;
                if shard == 0 {
                    tracing::info!(
                        %addr,
                        recv_buffer = granted.recv,
                        send_buffer = granted.send,
                        "listening on UDP"
                    );
                }
                sockets.push(socket);
            }
            per_shard.push(sockets);
        }

        let shared = Arc::new(core_setup::shared_from_config(config)?);
        let control = Arc::new(ShardControl::default());
        let epoch = Instant::now();
        let epoch_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let relay_buffer = config.sock_buf_size;
        let mut shards = Vec::with_capacity(threads);
        for (id, listeners) in per_shard.into_iter().enumerate() {
            let seed = rand::random::<u64>();
            let core = Server::new(shared.clone(), epoch, epoch_unix, seed);
            let (v4, v6) = relay_addresses;
            let (shard, waker) = Shard::new(
                id,
                core,
                listeners,
                |registry| RelaySockets::new(registry, v4, v6, relay_buffer),
                control.clone(),
            )
            .map_err(StartError::Shard)?;
            let handle = std::thread::Builder::new()
                .name(format!("ferroturn-shard-{id}"))
                .spawn(move || shard.run())
                .map_err(StartError::Shard)?;
            shards.push((handle, waker));
        }
        tracing::info!(
            shards = threads,
            relay_v4 = ?relay_addresses.0,
            relay_v6 = ?relay_addresses.1,
            min_port = config.min_port,
            max_port = config.max_port,
            "relay started"
        );
        Ok(Runtime {
            shards,
            control,
            udp_listeners: udp_addrs,
            relay_addresses,
        })
    }

    /// Stops accepting new allocations (or resumes).
    pub fn set_draining(&self, draining: bool) {
        self.control
            .draining
            .store(draining, std::sync::atomic::Ordering::Relaxed);
        self.wake_all();
    }

    /// Stops every shard and waits for them.
    pub fn stop(self) {
        self.control
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake_all();
        for (handle, _) in self.shards {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "shard failed"),
                Err(_) => tracing::error!("shard panicked"),
            }
        }
    }

    fn wake_all(&self) {
        for (_, waker) in &self.shards {
            let _ = waker.wake();
        }
    }
}

/// Listener socket buffers asked for when `sock-buf-size` is not set: the kernel's 208 KB
/// default drops packets during scheduling stalls (see perf notes); the kernel caps the
/// request at net.core.rmem_max.
const DEFAULT_LISTENER_BUFFER: usize = 4 << 20;
