//! The kernel fast path: an eBPF TC ingress program (`bpf/relay.bpf.c`) forwards UDP channel
//! data between clients and peers for the channel bindings the shards put into its maps;
//! everything else reaches the sockets as before, and user space stays the complete relay.
//!
//! The program is compiled by the build script when clang is installed and embedded in the
//! binary; it is loaded with aya (pure Rust: no C library to link, so a machine with only the
//! Rust toolchain still builds) and attached with TCX links where the kernel has them (6.6+,
//! detached by the kernel when the process exits however it exits) or as a clsact filter
//! otherwise (detached on drop).

mod clock;
mod interfaces;
pub mod maps;
mod netlink;
mod shard_routes;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
#[cfg(ferroturn_fast_path)]
use std::sync::Mutex;

use thiserror::Error;

pub use shard_routes::{ShardRoutes, WriterStats};

use maps::Total;

/// Why the fast path is not running.
#[derive(Debug, Error)]
pub enum FastPathError {
    /// The binary was built without clang.
    #[error("this binary was built without the eBPF program (clang and libbpf-dev were not installed at build time)")]
    NotBuilt,
    /// No interface carries a UDP listener or relay address.
    #[error("no non-loopback interface carries a UDP listener or relay address")]
    NoInterface,
    /// The kernel refused the program or its maps.
    #[error("cannot load the eBPF program (needs CAP_BPF and CAP_NET_ADMIN, or root): {0}")]
    Load(String),
    /// The program could not be attached to an interface.
    #[error("cannot attach the eBPF program to {iface} (needs CAP_NET_ADMIN): {reason}")]
    Attach {
        /// The interface.
        iface: String,
        /// The kernel's or netlink's answer.
        reason: String,
    },
}

/// What the program carried, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelTotals {
    /// Client → peer.
    pub to_peer: Total,
    /// Peer → client.
    pub to_client: Total,
    /// Relay-to-relay on this host (also in both directions above).
    pub hairpin: Total,
    /// Changed, then dropped because a helper failed.
    pub failed: Total,
}

/// A loaded and attached program, and the handles to its maps.
pub struct FastPath {
    #[cfg(ferroturn_fast_path)]
    inner: loaded::Loaded,
    interfaces: Vec<String>,
    writer_stats: Arc<WriterStats>,
}

impl FastPath {
    /// Whether this binary carries the eBPF program (clang was there when it was built).
    pub fn built() -> bool {
        cfg!(ferroturn_fast_path)
    }

    /// Loads the program and attaches it to the ingress of every interface carrying one of
    /// `listeners` or `relays`.
    pub fn start(listeners: &[SocketAddr], relays: &[IpAddr]) -> Result<FastPath, FastPathError> {
        let mut ips: Vec<IpAddr> = listeners.iter().map(SocketAddr::ip).collect();
        ips.extend(relays);
        let interfaces = interfaces::carrying(&ips);
        if !cfg!(ferroturn_fast_path) {
            return Err(FastPathError::NotBuilt);
        }
        if interfaces.is_empty() {
            return Err(FastPathError::NoInterface);
        }
        #[cfg(ferroturn_fast_path)]
        {
            let inner = loaded::Loaded::attach(&interfaces)?;
            Ok(FastPath {
                inner,
                interfaces,
                writer_stats: Arc::default(),
            })
        }
        #[cfg(not(ferroturn_fast_path))]
        unreachable!("returned NotBuilt above")
    }

    /// The interfaces the program is attached to.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }

    /// A writer for one shard.
    pub fn shard_routes(&self) -> Result<ShardRoutes, FastPathError> {
        #[cfg(ferroturn_fast_path)]
        {
            let (c2p, p2c) = self.inner.map_handles()?;
            Ok(ShardRoutes::new(
                c2p,
                p2c,
                clock::MonoClock::new(),
                self.writer_stats.clone(),
            ))
        }
        #[cfg(not(ferroturn_fast_path))]
        Err(FastPathError::NotBuilt)
    }

    /// The reader for `/metrics`.
    pub fn stats(&self) -> FastPathStats {
        FastPathStats {
            #[cfg(ferroturn_fast_path)]
            totals: self.inner.totals.clone(),
            writers: self.writer_stats.clone(),
            interfaces: self.interfaces.clone(),
        }
    }
}

/// What `/metrics` reads: the program's per-CPU totals and the writers' counters.
#[derive(Clone)]
pub struct FastPathStats {
    #[cfg(ferroturn_fast_path)]
    totals: Arc<Mutex<aya::maps::PerCpuArray<aya::maps::MapData, Total>>>,
    writers: Arc<WriterStats>,
    interfaces: Vec<String>,
}

impl FastPathStats {
    /// The program's totals, summed over CPUs.
    pub fn totals(&self) -> KernelTotals {
        #[cfg(ferroturn_fast_path)]
        {
            let map = match self.totals.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            let read = |index: u32| -> Total {
                map.get(&index, 0)
                    .map(|per_cpu| {
                        per_cpu.iter().fold(Total::default(), |a, t| Total {
                            packets: a.packets + t.packets,
                            bytes: a.bytes + t.bytes,
                        })
                    })
                    .unwrap_or_default()
            };
            KernelTotals {
                to_peer: read(maps::TOTAL_TO_PEER),
                to_client: read(maps::TOTAL_TO_CLIENT),
                hairpin: read(maps::TOTAL_HAIRPIN),
                failed: read(maps::TOTAL_FAILED),
            }
        }
        #[cfg(not(ferroturn_fast_path))]
        KernelTotals::default()
    }

    /// Channel bindings in the maps, and announcements kept in user space.
    pub fn entries(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.writers.installed.load(Ordering::Relaxed),
            self.writers.declined.load(Ordering::Relaxed),
        )
    }

    /// The interfaces the program is attached to.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }
}

#[cfg(ferroturn_fast_path)]
mod loaded {
    use std::os::fd::AsFd;
    use std::sync::{Arc, Mutex};

    use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray};
    use aya::programs::{tc, SchedClassifier, TcAttachType};
    use aya::Ebpf;

    use super::maps::{C2pKey, P2cKey, Route, Total};
    use super::FastPathError;

    /// The object the build script compiled.
    static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/relay.bpf.o"));
    const PROGRAM: &str = "ferroturn_ingress";

    pub(super) struct Loaded {
        /// Owns the program and its links: dropping it detaches them.
        _ebpf: Ebpf,
        c2p: MapData,
        p2c: MapData,
        pub(super) totals: Arc<Mutex<PerCpuArray<MapData, Total>>>,
    }

    fn load_error(e: impl std::fmt::Display) -> FastPathError {
        FastPathError::Load(e.to_string())
    }

    fn take(ebpf: &mut Ebpf, name: &str) -> Result<Map, FastPathError> {
        ebpf.take_map(name)
            .ok_or_else(|| load_error(format!("the object has no map {name}")))
    }

    impl Loaded {
        pub(super) fn attach(interfaces: &[String]) -> Result<Loaded, FastPathError> {
            let mut ebpf = Ebpf::load(OBJECT).map_err(load_error)?;
            let program: &mut SchedClassifier = ebpf
                .program_mut(PROGRAM)
                .ok_or_else(|| load_error("the object has no program"))?
                .try_into()
                .map_err(load_error)?;
            program.load().map_err(load_error)?;
            for iface in interfaces {
                // TCX (kernel 6.6+) needs no qdisc; older kernels attach under clsact.
                if program.attach(iface, TcAttachType::Ingress).is_err() {
                    let _ = tc::qdisc_add_clsact(iface);
                    program.attach(iface, TcAttachType::Ingress).map_err(|e| {
                        FastPathError::Attach {
                            iface: iface.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                }
            }
            let Map::HashMap(c2p) = take(&mut ebpf, "FT_C2P")? else {
                return Err(load_error("FT_C2P is not a hash map"));
            };
            let Map::HashMap(p2c) = take(&mut ebpf, "FT_P2C")? else {
                return Err(load_error("FT_P2C is not a hash map"));
            };
            let totals =
                PerCpuArray::try_from(take(&mut ebpf, "FT_TOTALS")?).map_err(load_error)?;
            Ok(Loaded {
                _ebpf: ebpf,
                c2p,
                p2c,
                totals: Arc::new(Mutex::new(totals)),
            })
        }

        /// Handles of their own on both route maps (duplicated descriptors), for one shard.
        #[allow(clippy::type_complexity)]
        pub(super) fn map_handles(
            &self,
        ) -> Result<
            (
                BpfHashMap<MapData, C2pKey, Route>,
                BpfHashMap<MapData, P2cKey, Route>,
            ),
            FastPathError,
        > {
            let dup = |m: &MapData| -> Result<MapData, FastPathError> {
                let fd = m.fd().as_fd().try_clone_to_owned().map_err(load_error)?;
                MapData::from_fd(fd).map_err(load_error)
            };
            let c2p = BpfHashMap::try_from(Map::HashMap(dup(&self.c2p)?)).map_err(load_error)?;
            let p2c = BpfHashMap::try_from(Map::HashMap(dup(&self.p2c)?)).map_err(load_error)?;
            Ok((c2p, p2c))
        }
    }
}
