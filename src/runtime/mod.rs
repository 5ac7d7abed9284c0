//! The runtime: sockets, shard threads and signals around the sans-IO core.

pub mod accept_backoff;
pub mod address_report;
pub mod addresses;
pub mod auth_log;
pub mod cert_expiry;
pub mod client_input;
pub mod close_reason;
pub mod connection;
pub mod connection_limits;
pub mod control;
pub mod core_setup;
pub mod fast_path;
#[cfg(feature = "fault-injection")]
pub mod fault_injection;
pub mod io_stats;
pub mod metrics;
pub mod mmsg;
pub mod ops_stats;
pub mod poll_pacing;
pub mod port_probe;
pub mod preflight;
pub mod process_stats;
pub mod proxy_accept;
pub mod proxy_protocol;
pub mod ready;
pub mod relay_sends;
pub mod relay_sockets;
pub mod shard;
pub mod shard_health;
pub mod sockets;
pub mod stream_flush;
pub mod stream_framing;
pub mod tcp_handover;
pub mod tcp_relay;
pub mod tls_config;
pub mod tx_backlog;
pub mod udp_batch;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::config::{Config, ListenerSettings};
use crate::proto::server::Server;
use connection_limits::ConnectionLimits;
use control::{Control, ShardFlags};
use ops_stats::OpsStats;
use poll_pacing::PollPacing;
use relay_sockets::RelaySockets;
use shard::{Shard, ShardContext, ShardSockets, StreamPort};
use tls_config::{CertStore, TlsError};

/// Why the relay could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr} ({proto}): {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// "udp", "tcp" or "tls".
        proto: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Another process already holds a listening port.
    #[error("{proto} port {port} on {ip} is already in use by another process (a coturn or a second ferroturn still running?); stop it, or choose another listening-port/tls-listening-port")]
    PortTaken {
        /// "udp" or "tcp".
        proto: &'static str,
        /// The port.
        port: u16,
        /// The listening address.
        ip: IpAddr,
    },
    /// The relay port range is unusable.
    #[error("relay port range: {0}")]
    PortRange(#[from] crate::proto::ports::PortRangeError),
    /// The TLS certificate could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// Nothing to listen on.
    #[error("no listener is enabled (UDP, TCP and TLS are all off, or TLS has no certificate)")]
    NoListeners,
    /// The listening or relay addresses cannot work.
    #[error("{0}")]
    Addresses(#[from] addresses::AddressError),
    /// A shard could not be set up.
    #[error("cannot start shard: {0}")]
    Shard(io::Error),
    /// `kernel-fast-path = on` and the fast path cannot run.
    #[error("kernel-fast-path = on, but {0}")]
    FastPath(#[from] fast_path::FastPathError),
}

/// A running relay: its shard threads and the handles to steer them.
pub struct Runtime {
    shards: Vec<JoinHandle<io::Result<()>>>,
    control: Control,
    certs: Option<Arc<CertStore>>,
    watcher: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    /// UDP addresses bound.
    pub udp_listeners: Vec<SocketAddr>,
    /// TCP addresses bound, and whether each is a TLS port.
    pub tcp_listeners: Vec<(SocketAddr, StreamPort)>,
    /// Relay addresses (several of one family take turns per allocation).
    pub relay_addresses: Vec<IpAddr>,
    /// The kernel fast path, when it runs (dropped after the shards: detaches the program).
    fast_path: Option<fast_path::FastPath>,
}

/// How often certificate files are checked for changes.
const CERT_WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// Listener socket buffers asked for when `sock-buf-size` is not set: the kernel's 208 KB
/// default drops packets during scheduling stalls (see perf notes); the kernel caps the
/// request at net.core.rmem_max.
const DEFAULT_LISTENER_BUFFER: usize = 4 << 20;
const TCP_BACKLOG: i32 = 1024;
/// Most shards (relay threads) the runtime starts.
const MAX_SHARDS: usize = 256;

impl Runtime {
    /// Opens every socket and starts one shard per relay thread.
    pub fn start(config: &Config) -> Result<Runtime, StartError> {
        let threads = config
            .relay
            .threads
            .filter(|n| *n > 0)
            .or(config.relay.cpus)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            // RFC 6062 connection ids name their shard in 8 bits.
            .min(MAX_SHARDS);
        let plan = address_plan(config)?;
        let listen_ips = plan.listening.clone();
        for skipped in &plan.skipped {
            tracing::info!(ip = %skipped.0, why = skipped.1, "not relaying on this address");
        }
        for warning in &plan.warnings {
            tracing::warn!("{warning}");
        }
        for relay in &plan.relays {
            tracing::info!(
                ip = %relay.ip,
                advertised = %relay.advertised,
                why = relay.source.why(),
                "relay address"
            );
            if relay.source == addresses::RelaySource::LoopbackOnly {
                tracing::warn!(ip = %relay.ip, "relaying on loopback: only clients and peers on this host can use it");
            }
        }
        let relay_addresses = plan.relay_ips();

        let certs = match (&config.tls.cert, &config.tls.pkey) {
            (Some(cert), Some(key)) if !(config.listen.no_tls && config.listen.no_tcp) => {
                let store = CertStore::load(cert, key)?;
                tracing::info!(cert = %cert.display(), key = %key.display(), "TLS certificate loaded");
                Some(Arc::new(store))
            }
            _ => None,
        };
        let tls = certs
            .as_ref()
            .map(|c| tls_config::server_config(c.clone(), config.tls.no_tlsv1_2));

        let (udp_addrs, tcp_addrs) = listener_addresses(&config.listen, &listen_ips, tls.is_some());
        if udp_addrs.is_empty() && tcp_addrs.is_empty() {
            return Err(StartError::NoListeners);
        }
        if !config.listen.no_tls && tls.is_none() && !config.tls.has_pair() {
            tracing::info!("no cert/pkey configured: TLS listeners are off");
        }
        let listener_buffer = Some(
            config
                .relay
                .sock_buf_size
                .unwrap_or(DEFAULT_LISTENER_BUFFER),
        );
        let proxy = Arc::new(proxy_accept::ProxyPolicy::from_config(
            &config.listen.proxy_protocol,
        ));

        refuse_taken_ports(&udp_addrs, &tcp_addrs)?;
        // Every shard binds its own socket on each address (SO_REUSEPORT): the kernel spreads
        // clients, and keeps each 5-tuple or connection on one shard.
        let mut per_shard = Vec::with_capacity(threads);
        for shard in 0..threads {
            let mut sockets = ShardSockets {
                udp: Vec::new(),
                tcp: Vec::new(),
            };
            for addr in &udp_addrs {
                let (socket, granted) =
                    sockets::bind_udp(*addr, true, listener_buffer).map_err(|source| {
                        StartError::Listen {
                            addr: *addr,
                            proto: "udp",
                            source,
                        }
                    })?;
                if shard == 0 {
                    tracing::info!(
                        %addr,
                        recv_buffer = granted.recv,
                        send_buffer = granted.send,
                        "listening on UDP"
                    );
                }
                sockets.udp.push(socket);
            }
            for (addr, kind) in &tcp_addrs {
                let proto = if *kind == StreamPort::Tls {
                    "tls"
                } else {
                    "tcp"
                };
                let listener = sockets::listen_tcp(*addr, TCP_BACKLOG).map_err(|source| {
                    StartError::Listen {
                        addr: *addr,
                        proto,
                        source,
                    }
                })?;
                if shard == 0 {
                    let tls_too = *kind == StreamPort::Plain && tls.is_some();
                    let proxy_protocol = proxy.expects_header(addr.port());
                    tracing::info!(%addr, proto, also_tls = tls_too, proxy_protocol, "listening on TCP");
                }
                sockets.tcp.push((listener, *kind));
            }
            per_shard.push(sockets);
        }
        if tls.is_some() {
            tracing::info!(
                port = config.listen.tls_port,
                "DTLS is not served: TLS is on TCP only, with no UDP listener on the TLS port"
            );
        }

        let shared = Arc::new(core_setup::shared_from_config(config)?);
        let limits = Arc::new(ConnectionLimits::new(
            config.limits.max_tcp_connections,
            config.limits.max_tcp_connections_per_ip,
        ));
        let flags = Arc::new(ShardFlags::default());
        let listeners: Vec<SocketAddr> = udp_addrs
            .iter()
            .copied()
            .chain(tcp_addrs.iter().map(|(a, _)| *a))
            .collect();
        let server_addresses =
            core_setup::server_addresses(config, &listeners, &listen_ips, &relay_addresses);
        let core_config = Arc::new(core_setup::core_config_from(
            config,
            threads,
            &core_setup::Revocations::default(),
            &server_addresses,
        ));
        let fast_path = start_fast_path(config, &udp_addrs, &relay_addresses)?;
        let mut handles = control::ShardHandles::default();
        let epoch = Instant::now();
        let epoch_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let relay_buffer = config.relay.sock_buf_size;
        let mut shards = Vec::with_capacity(threads);
        let mut handovers = tcp_handover::Handover::channels(threads).into_iter();
        for (id, sockets) in per_shard.into_iter().enumerate() {
            let seed = rand::random::<u64>();
            let core = Server::new(
                shared.clone(),
                core_config.clone(),
                epoch,
                epoch_unix,
                seed,
                id as u16,
            );
            let stats = core.stats().clone();
            let io = Arc::new(io_stats::IoStats::default());
            let (commands_tx, commands_rx) = mpsc::channel();
            let (shard, waker) = Shard::new(
                id,
                core,
                sockets,
                |registry| RelaySockets::new(registry, &relay_addresses, relay_buffer),
                ShardContext {
                    tls: tls.clone(),
                    limits: limits.clone(),
                    flags: flags.clone(),
                    pacing: PollPacing::from_options(
                        config.relay.poll_interval_ms,
                        config.relay.poll_coalesce_us,
                    ),
                    io: io.clone(),
                    handover: handovers.next().expect("one hand-over end per shard"),
                    proxy: proxy.clone(),
                    routes: match &fast_path {
                        Some(fp) => Some(fp.shard_routes()?),
                        None => None,
                    },
                },
                commands_rx,
            )
            .map_err(StartError::Shard)?;
            handles.add(commands_tx, waker, stats, io);
            let handle = std::thread::Builder::new()
                .name(format!("ferroturn-shard-{id}"))
                .spawn({
                    let flags = flags.clone();
                    move || shard_health::supervise(id, &flags.health, &flags.stop, || shard.run())
                })
                .map_err(StartError::Shard)?;
            shards.push(handle);
        }
        let control = Control::new(
            handles,
            shared,
            limits,
            flags,
            config.clone(),
            server_addresses,
        );
        if let Some(store) = &certs {
            control.set_certificates(store.clone());
        }
        if let Some(fp) = &fast_path {
            control.set_fast_path(fp.stats());
        }
        control.set_ready();
        let watcher = certs
            .clone()
            .map(|store| spawn_cert_watcher(store, control.ops().clone()));
        tracing::info!(
            shards = threads,
            relay = %relay_addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            min_port = config.relay.min_port,
            max_port = config.relay.max_port,
            "relay started"
        );
        Ok(Runtime {
            shards,
            control,
            certs,
            watcher,
            udp_listeners: udp_addrs,
            tcp_listeners: tcp_addrs,
            relay_addresses,
            fast_path,
        })
    }

    /// Reloads the TLS certificate (SIGUSR2); the old one stays when the new one is broken.
    pub fn reload_certificates(&self) {
        match &self.certs {
            Some(store) => reload_logged(store, self.control.ops()),
            None => tracing::info!("no TLS certificate configured; nothing to reload"),
        }
    }

    /// The handle to steer and observe the relay from other threads.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Stops every shard and waits for them.
    pub fn stop(self) {
        self.control.stop_all();
        for handle in self.shards {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "shard failed"),
                Err(_) => tracing::error!("shard panicked"),
            }
        }
        // The shards removed their map entries as they stopped; now the program goes.
        if let Some(fp) = self.fast_path {
            let interfaces = fp.interfaces().join(",");
            drop(fp);
            tracing::info!(%interfaces, "kernel fast path detached");
        }
        if let Some((handle, stop)) = self.watcher {
            stop.store(true, Ordering::Relaxed);
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

/// Loads the kernel fast path as `kernel-fast-path` asks: `auto` logs why it does not run and
/// carries on in user space, `on` fails the start.
fn start_fast_path(
    config: &Config,
    udp: &[SocketAddr],
    relays: &[IpAddr],
) -> Result<Option<fast_path::FastPath>, StartError> {
    use crate::config::KernelFastPath;
    if config.relay.kernel_fast_path == KernelFastPath::Off {
        if fast_path::FastPath::built() {
            tracing::debug!("kernel fast path off (kernel-fast-path = off)");
        } else {
            tracing::info!(
                "kernel fast path compiled out: this binary was built without clang and libbpf-dev"
            );
        }
        return Ok(None);
    }
    let result = if udp.is_empty() {
        Err(fast_path::FastPathError::NoInterface)
    } else {
        fast_path::FastPath::start(udp, relays)
    };
    match result {
        Ok(fp) => {
            tracing::info!(
                interfaces = %fp.interfaces().join(","),
                "kernel fast path attached: UDP channel data is forwarded by the eBPF program"
            );
            Ok(Some(fp))
        }
        Err(e) if config.relay.kernel_fast_path == KernelFastPath::Auto => {
            tracing::warn!(reason = %e, "kernel fast path not in use (kernel-fast-path = auto); relaying in user space");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Fails when another process already listens on one of the ports: SO_REUSEPORT would
/// otherwise share it silently (see [`port_probe`]).
fn refuse_taken_ports(
    udp: &[SocketAddr],
    tcp: &[(SocketAddr, StreamPort)],
) -> Result<(), StartError> {
    let udp = udp.iter().map(|a| (*a, port_probe::ProbeProto::Udp, "udp"));
    let tcp = tcp
        .iter()
        .map(|(a, _)| (*a, port_probe::ProbeProto::Tcp, "tcp"));
    for (addr, probe, proto) in udp.chain(tcp) {
        match port_probe::held_by_another(addr, probe) {
            Ok(false) => {}
            Ok(true) => {
                return Err(StartError::PortTaken {
                    proto,
                    port: addr.port(),
                    ip: addr.ip(),
                })
            }
            Err(source) => {
                return Err(StartError::Listen {
                    addr,
                    proto,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Listening and relay addresses for `config` on this host.
pub fn address_plan(config: &Config) -> Result<addresses::AddressPlan, addresses::AddressError> {
    let interfaces = addresses::interface_addresses();
    addresses::plan(&addresses::AddressInput {
        relay_ips: &config.relay.ips,
        listening_ips: &config.listen.ips,
        external_ips: &config.relay.external_ips,
        interfaces: &interfaces,
    })
}

/// UDP and TCP listening addresses from the configuration.
fn listener_addresses(
    listen: &ListenerSettings,
    listen_ips: &[IpAddr],
    tls_available: bool,
) -> (Vec<SocketAddr>, Vec<(SocketAddr, StreamPort)>) {
    let plain_ports = listen.plain_ports();
    let tls_ports = listen.tls_ports();
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for ip in listen_ips {
        for port in &plain_ports {
            if !listen.no_udp {
                udp.push(SocketAddr::new(*ip, *port));
            }
            if !listen.no_tcp {
                tcp.push((SocketAddr::new(*ip, *port), StreamPort::Plain));
            }
        }
        if tls_available && !listen.no_tls {
            for port in &tls_ports {
                if !plain_ports.contains(port) {
                    tcp.push((SocketAddr::new(*ip, *port), StreamPort::Tls));
                }
            }
        }
    }
    (udp, tcp)
}

fn reload_logged(store: &CertStore, ops: &OpsStats) {
    let (cert, key) = store.paths();
    let result = store.reload();
    ops.cert_reload(result.is_ok());
    match result {
        Ok(()) => {
            tracing::info!(cert = %cert.display(), key = %key.display(), "TLS certificate reloaded")
        }
        Err(e) => {
            tracing::error!(error = %e, "TLS certificate reload failed; keeping the previous certificate")
        }
    }
}

/// Polls the certificate files and reloads them when they change (cert-manager, certbot).
fn spawn_cert_watcher(
    store: Arc<CertStore>,
    ops: Arc<OpsStats>,
) -> (JoinHandle<()>, Arc<AtomicBool>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("ferroturn-cert-watch".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::park_timeout(CERT_WATCH_INTERVAL);
                if !flag.load(Ordering::Relaxed) && store.changed_on_disk() {
                    reload_logged(&store, &ops);
                }
            }
        })
        .expect("spawn certificate watcher");
    (handle, stop)
}
