//! The Prometheus exposition: per-shard counters summed at scrape time, so the relay path only
//! ever bumps its own shard's counters.

use std::sync::Arc;

use prometheus::proto::{
    Bucket, Counter as PCounter, Gauge as PGauge, Histogram as PHistogram, LabelPair, Metric,
    MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use super::control::Control;
use super::io_stats::IoStats;
use super::process_stats;
use crate::proto::counters::{Counter, Traffic};
use crate::proto::flow::Transport;
use crate::proto::server::{CoreStats, LIFETIME_BUCKETS};

const TRANSPORTS: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

/// A metric family under construction.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    metrics: Vec<Metric>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: MetricType) -> Self {
        Family {
            name,
            help,
            kind,
            metrics: Vec::new(),
        }
    }

    fn value(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name(k.to_string());
                    l.set_value(v.to_string());
                    l
                })
                .collect(),
        );
        match self.kind {
            MetricType::COUNTER => {
                let mut c = PCounter::default();
                c.set_value(value);
                m.set_counter(c);
            }
            _ => {
                let mut g = PGauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }
        }
        self.metrics.push(m);
        self
    }

    fn build(self) -> MetricFamily {
        let mut f = MetricFamily::default();
        f.set_name(self.name.to_string());
        f.set_help(self.help.to_string());
        f.set_field_type(self.kind);
        f.set_metric(self.metrics);
        f
    }
}

fn counter(name: &'static str, help: &'static str, value: f64) -> MetricFamily {
    Family::new(name, help, MetricType::COUNTER)
        .value(&[], value)
        .build()
}

fn gauge(name: &'static str, help: &'static str, value: f64) -> MetricFamily {
    Family::new(name, help, MetricType::GAUGE)
        .value(&[], value)
        .build()
}

/// Renders every metric in the text exposition format.
pub fn render(control: &Control) -> String {
    let stats = control.shard_stats();
    let sum = |f: &dyn Fn(&CoreStats) -> &Counter| -> f64 {
        stats.iter().map(|s| f(s).get() as f64).sum()
    };
    let packets = |f: &dyn Fn(&CoreStats) -> &Traffic| -> f64 {
        stats.iter().map(|s| f(s).packets.get() as f64).sum()
    };
    let bytes = |f: &dyn Fn(&CoreStats) -> &Traffic| -> f64 {
        stats.iter().map(|s| f(s).bytes.get() as f64).sum()
    };
    let mut families = Vec::new();
    // What the kernel fast path forwarded never passed the core's counters: add it, so the
    // relayed totals stay exact.
    let kernel = control.fast_path().map(|f| f.totals()).unwrap_or_default();
    let (k_to_peer, k_to_client) = (kernel.to_peer, kernel.to_client);

    // coturn-compatible names, updated live rather than when sessions end.
    let mut live = Family::new(
        "turn_total_allocations",
        "Live allocations by client transport",
        MetricType::GAUGE,
    );
    for t in TRANSPORTS {
        let n: u64 = stats.iter().map(|s| s.active_allocations(t)).sum();
        live = live.value(&[("type", t.as_str())], n as f64);
    }
    families.push(live.build());
    families.extend([
        counter(
            "turn_total_traffic_rcvp",
            "Data packets received from clients",
            packets(&|s| &s.from_clients) + k_to_peer.packets as f64,
        ),
        counter(
            "turn_total_traffic_rcvb",
            "Payload bytes received from clients",
            bytes(&|s| &s.from_clients) + k_to_peer.bytes as f64,
        ),
        counter(
            "turn_total_traffic_sentp",
            "Data packets relayed to clients",
            packets(&|s| &s.to_clients) + k_to_client.packets as f64,
        ),
        counter(
            "turn_total_traffic_sentb",
            "Payload bytes relayed to clients",
            bytes(&|s| &s.to_clients) + k_to_client.bytes as f64,
        ),
        counter(
            "turn_total_traffic_peer_rcvp",
            "Datagrams received from peers",
            packets(&|s| &s.from_peers) + k_to_client.packets as f64,
        ),
        counter(
            "turn_total_traffic_peer_rcvb",
            "Payload bytes received from peers",
            bytes(&|s| &s.from_peers) + k_to_client.bytes as f64,
        ),
        counter(
            "turn_total_traffic_peer_sentp",
            "Datagrams relayed to peers",
            packets(&|s| &s.to_peers) + k_to_peer.packets as f64,
        ),
        counter(
            "turn_total_traffic_peer_sentb",
            "Payload bytes relayed to peers",
            bytes(&|s| &s.to_peers) + k_to_peer.bytes as f64,
        ),
        counter(
            "stun_binding_request",
            "STUN Binding requests",
            sum(&|s| &s.binding_requests),
        ),
        counter(
            "stun_binding_response",
            "STUN Binding success responses",
            sum(&|s| &s.binding_responses),
        ),
        counter(
            "stun_binding_error",
            "STUN Binding error responses",
            sum(&|s| &s.binding_errors),
        ),
    ]);

    // ferroturn's own.
    let mut created = Family::new(
        "ferroturn_allocations_created_total",
        "Allocations created by client transport",
        MetricType::COUNTER,
    );
    let mut ended = Family::new(
        "ferroturn_allocations_ended_total",
        "Allocations ended by client transport",
        MetricType::COUNTER,
    );
    for (i, t) in TRANSPORTS.iter().enumerate() {
        created = created.value(
            &[("transport", t.as_str())],
            sum(&|s| &s.allocations_created[i]),
        );
        ended = ended.value(
            &[("transport", t.as_str())],
            sum(&|s| &s.allocations_ended[i]),
        );
    }
    families.push(created.build());
    families.push(ended.build());
    families.push(lifetime_histogram(&stats));
    families.extend(dual_allocation_metrics(&stats));
    let mut auth = Family::new(
        "ferroturn_auth_failures_total",
        "Refused credentials by reason",
        MetricType::COUNTER,
    );
    for (reason, value) in [
        ("stale_nonce", sum(&|s| &s.auth_stale_nonce)),
        ("bad_credentials", sum(&|s| &s.auth_bad_credentials)),
        ("expired", sum(&|s| &s.auth_expired)),
        ("revoked", sum(&|s| &s.auth_revoked)),
        ("malformed", sum(&|s| &s.auth_malformed)),
    ] {
        auth = auth.value(&[("reason", reason)], value);
    }
    families.push(auth.build());
    families.extend([
        counter(
            "ferroturn_auth_challenges_total",
            "401 challenges to requests without credentials (the normal first round trip)",
            sum(&|s| &s.auth_challenges),
        ),
        counter(
            "ferroturn_error_responses_total",
            "Error responses sent",
            sum(&|s| &s.error_responses),
        ),
        counter(
            "ferroturn_quota_refusals_total",
            "Allocations refused by user-quota or total-quota",
            sum(&|s| &s.quota_refusals),
        ),
        counter(
            "ferroturn_forbidden_peer_total",
            "Requests refused because the peer address is not allowed",
            sum(&|s| &s.forbidden_peer),
        ),
        counter(
            "ferroturn_unauthorized_ratelimited_total",
            "Requests dropped unanswered because their source used up its 401/438 budget (unauthorized-ratelimit)",
            sum(&|s| &s.challenges_ratelimited),
        ),
    ]);
    let mut dropped_p = Family::new(
        "ferroturn_dropped_packets_total",
        "Packets dropped by reason",
        MetricType::COUNTER,
    );
    let mut dropped_b = Family::new(
        "ferroturn_dropped_bytes_total",
        "Bytes dropped by reason",
        MetricType::COUNTER,
    );
    type Pick = fn(&CoreStats) -> &Traffic;
    let reasons: [(&str, Pick); 4] = [
        ("malformed", |s| &s.dropped_malformed),
        ("no_permission", |s| &s.dropped_no_permission),
        ("no_allocation", |s| &s.dropped_no_allocation),
        ("bandwidth", |s| &s.dropped_bandwidth),
    ];
    for (reason, pick) in reasons {
        dropped_p = dropped_p.value(&[("reason", reason)], packets(&pick));
        dropped_b = dropped_b.value(&[("reason", reason)], bytes(&pick));
    }
    // Drops at the sockets (runtime I/O), beside the core's.
    let io = control.io_stats();
    let io_sum =
        |f: &dyn Fn(&IoStats) -> &Counter| -> f64 { io.iter().map(|s| f(s).get() as f64).sum() };
    // The kernel reports how many datagrams overflowed a queue, not their size.
    dropped_p = dropped_p.value(
        &[("reason", "queue_full")],
        io_sum(&|s| &s.dropped_queue_full),
    );
    type IoPick = fn(&IoStats) -> &Traffic;
    let io_reasons: [(&str, IoPick); 3] = [
        ("send_again", |s| &s.dropped_send_again),
        ("send_error", |s| &s.dropped_send_error),
        ("client_backlog", |s| &s.dropped_client_backlog),
    ];
    for (reason, pick) in io_reasons {
        dropped_p = dropped_p.value(&[("reason", reason)], io_sum(&|s| &pick(s).packets));
        dropped_b = dropped_b.value(&[("reason", reason)], io_sum(&|s| &pick(s).bytes));
    }
    families.push(dropped_p.build());
    families.push(dropped_b.build());
    families.push(
        Family::new(
            "ferroturn_accept_errors_total",
            "Failed accept() calls on TCP/TLS listeners by reason (fd_limit pauses accepting)",
            MetricType::COUNTER,
        )
        .value(&[("reason", "fd_limit")], io_sum(&|s| &s.accept_fd_limit))
        .value(&[("reason", "other")], io_sum(&|s| &s.accept_other))
        .build(),
    );
    families.push(
        Family::new(
            "ferroturn_proxy_protocol_connections_total",
            "Connections to proxy-protocol-port listeners by outcome (accepted; closed: untrusted source, missing or malformed header, timeout)",
            MetricType::COUNTER,
        )
        .value(&[("result", "accepted")], io_sum(&|s| &s.proxy_accepted))
        .value(&[("result", "untrusted")], io_sum(&|s| &s.proxy_untrusted))
        .value(&[("result", "missing")], io_sum(&|s| &s.proxy_missing))
        .value(&[("result", "malformed")], io_sum(&|s| &s.proxy_malformed))
        .value(&[("result", "timeout")], io_sum(&|s| &s.proxy_timeout))
        .build(),
    );
    families.push(counter(
        "ferroturn_tls_handshakes_deferred_total",
        "Loop turns that left handshake work for the next turn to keep relaying",
        io_sum(&|s| &s.tls_handshakes_deferred),
    ));
    families.push(counter(
        "ferroturn_poll_waits_total",
        "Waits before polling that let packets gather (poll-interval-ms, poll-coalesce-us)",
        io_sum(&|s| &s.poll_waits),
    ));
    families.extend(tcp_relay_families(&stats, &io));
    let mut per_shard = Family::new(
        "ferroturn_shard_packets_total",
        "Relayed packets per shard and direction",
        MetricType::COUNTER,
    );
    for (i, s) in stats.iter().enumerate() {
        let shard = i.to_string();
        per_shard = per_shard
            .value(
                &[("shard", &shard), ("direction", "to_peer")],
                s.to_peers.packets.get() as f64,
            )
            .value(
                &[("shard", &shard), ("direction", "to_client")],
                s.to_clients.packets.get() as f64,
            );
    }
    families.push(per_shard.build());
    families.extend(fast_path_families(control));
    let pool = &control.shared().ports;
    families.push(
        Family::new(
            "ferroturn_relay_ports",
            "Relay ports by state",
            MetricType::GAUGE,
        )
        .value(&[("state", "in_use")], pool.in_use() as f64)
        .value(
            &[("state", "free")],
            pool.capacity().saturating_sub(pool.in_use()) as f64,
        )
        .build(),
    );
    families.extend([
        gauge(
            "ferroturn_tcp_connections",
            "Open TCP/TLS client connections",
            control.tcp_connections() as f64,
        ),
        gauge(
            "ferroturn_draining",
            "1 while new allocations are refused",
            f64::from(u8::from(control.is_draining())),
        ),
        gauge(
            "ferroturn_shards",
            "Relay shards (threads)",
            stats.len() as f64,
        ),
    ]);

    families.extend(operations(control, &stats));
    families.extend(process_families());

    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = TextEncoder::new().encode(&families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// RFC 6062 TCP relay: connections by event, bytes by direction, drops.
fn tcp_relay_families(stats: &[Arc<CoreStats>], io: &[Arc<IoStats>]) -> Vec<MetricFamily> {
    let sum = |f: &dyn Fn(&CoreStats) -> &Counter| -> f64 {
        stats.iter().map(|s| f(s).get() as f64).sum()
    };
    let io_sum =
        |f: &dyn Fn(&IoStats) -> &Counter| -> f64 { io.iter().map(|s| f(s).get() as f64).sum() };
    let opened = sum(&|s| &s.tcp_connections_opened);
    let closed = sum(&|s| &s.tcp_connections_closed);
    vec![
        Family::new(
            "ferroturn_tcp_relay_connections_total",
            "RFC 6062 peer connections by event: opened (Connect succeeded or a permitted peer connected), bound (ConnectionBind), closed, refused (no permission or over the per-allocation bounds), connect_failed (447), bind_timeout (no ConnectionBind in 30 s), dropped (connection limits, hand-over queue full)",
            MetricType::COUNTER,
        )
        .value(&[("event", "opened")], opened)
        .value(&[("event", "bound")], sum(&|s| &s.tcp_connections_bound))
        .value(&[("event", "closed")], closed)
        .value(&[("event", "refused")], sum(&|s| &s.tcp_connections_refused))
        .value(&[("event", "connect_failed")], sum(&|s| &s.tcp_connect_failures))
        .value(&[("event", "bind_timeout")], sum(&|s| &s.tcp_bind_timeouts))
        .value(&[("event", "dropped")], io_sum(&|s| &s.tcp_relay_dropped))
        .build(),
        gauge(
            "ferroturn_tcp_relay_connections",
            "Live RFC 6062 peer connections (pending and bound)",
            (opened - closed).max(0.0),
        ),
        Family::new(
            "ferroturn_tcp_relay_bytes_total",
            "Bytes relayed over RFC 6062 data connections by direction",
            MetricType::COUNTER,
        )
        .value(
            &[("direction", "to_peer")],
            stats.iter().map(|s| s.tcp_to_peers.bytes.get() as f64).sum(),
        )
        .value(
            &[("direction", "to_client")],
            stats.iter().map(|s| s.tcp_to_clients.bytes.get() as f64).sum(),
        )
        .build(),
        counter(
            "ferroturn_tcp_relay_handovers_total",
            "ConnectionBind connections handed to the shard that owns their allocation",
            io_sum(&|s| &s.tcp_relay_handovers),
        ),
    ]
}

/// Relay sockets by family and dual allocations (RFC 8656 §7.2): a dual allocation counts once
/// in the allocation metrics and once per family here.
fn dual_allocation_metrics(stats: &[Arc<CoreStats>]) -> Vec<MetricFamily> {
    let mut sockets = Family::new(
        "ferroturn_relay_sockets",
        "Live relay sockets by address family (a dual allocation holds one of each)",
        MetricType::GAUGE,
    );
    let mut refused = Family::new(
        "ferroturn_dual_allocation_family_refusals_total",
        "Dual allocations served in one family only (ADDRESS-ERROR-CODE), by the family left out",
        MetricType::COUNTER,
    );
    for (i, family) in ["ipv4", "ipv6"].into_iter().enumerate() {
        let live: u64 = stats.iter().map(|s| s.live_relays(i)).sum();
        let partial: u64 = stats.iter().map(|s| s.dual_family_refusals[i].get()).sum();
        sockets = sockets.value(&[("family", family)], live as f64);
        refused = refused.value(&[("family", family)], partial as f64);
    }
    let dual: u64 = stats.iter().map(|s| s.dual_allocations.get()).sum();
    vec![
        sockets.build(),
        counter(
            "ferroturn_dual_allocations_total",
            "Dual allocations (ADDITIONAL-ADDRESS-FAMILY) served in both families",
            dual as f64,
        ),
        refused.build(),
    ]
}

/// Build, quota, certificate and reload metrics: what the shipped alert rules watch.
fn operations(control: &Control, stats: &[Arc<CoreStats>]) -> Vec<MetricFamily> {
    let live: u64 = stats
        .iter()
        .map(|s| {
            TRANSPORTS
                .iter()
                .map(|t| s.active_allocations(*t))
                .sum::<u64>()
        })
        .sum();
    let ops = control.ops();
    let mut out = vec![
        Family::new(
            "ferroturn_build_info",
            "Always 1; the labels say which build is running",
            MetricType::GAUGE,
        )
        .value(&[("version", env!("CARGO_PKG_VERSION"))], 1.0)
        .build(),
        gauge(
            "ferroturn_allocations",
            "Live allocations, all transports",
            live as f64,
        ),
        gauge(
            "ferroturn_allocation_quota",
            "total-quota: the most live allocations allowed; 0 = unlimited",
            f64::from(control.config().limits.total_quota),
        ),
        Family::new(
            "ferroturn_config_reloads_total",
            "SIGHUP reloads by result (failure: the file did not load and the old configuration stayed)",
            MetricType::COUNTER,
        )
        .value(&[("result", "success")], ops.config_reloads_ok.get() as f64)
        .value(&[("result", "failure")], ops.config_reloads_failed.get() as f64)
        .build(),
        Family::new(
            "ferroturn_certificate_reloads_total",
            "TLS certificate reloads by result (failure: the old certificate stayed in use)",
            MetricType::COUNTER,
        )
        .value(&[("result", "success")], ops.cert_reloads_ok.get() as f64)
        .value(&[("result", "failure")], ops.cert_reloads_failed.get() as f64)
        .build(),
    ];
    if let Some(not_after) = control.certificates().and_then(|c| c.not_after()) {
        out.push(gauge(
            "ferroturn_tls_certificate_expiry_timestamp_seconds",
            "When the TLS certificate in use expires (notAfter), seconds since the Unix epoch",
            not_after as f64,
        ));
    }
    out
}

/// The standard process collector's metrics (names as every Prometheus client library uses).
fn process_families() -> Vec<MetricFamily> {
    let p = process_stats::read();
    let mut out = Vec::new();
    let mut add = |name, help, kind, value: Option<f64>| {
        if let Some(v) = value {
            out.push(Family::new(name, help, kind).value(&[], v).build());
        }
    };
    use MetricType::{COUNTER, GAUGE};
    add(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds",
        COUNTER,
        p.cpu_seconds,
    );
    add(
        "process_resident_memory_bytes",
        "Resident memory size in bytes",
        GAUGE,
        p.resident_bytes,
    );
    add(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes",
        GAUGE,
        p.virtual_bytes,
    );
    add(
        "process_open_fds",
        "Number of open file descriptors",
        GAUGE,
        p.open_fds,
    );
    add(
        "process_max_fds",
        "Maximum number of open file descriptors (soft RLIMIT_NOFILE)",
        GAUGE,
        p.max_fds,
    );
    add(
        "process_threads",
        "Number of OS threads in the process",
        GAUGE,
        p.threads,
    );
    add(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds",
        GAUGE,
        p.start_time_seconds,
    );
    out
}

fn lifetime_histogram(stats: &[Arc<CoreStats>]) -> MetricFamily {
    let mut h = PHistogram::default();
    let mut cumulative = 0u64;
    let mut buckets = Vec::new();
    for (i, upper) in LIFETIME_BUCKETS.iter().enumerate() {
        cumulative += stats
            .iter()
            .map(|s| s.lifetime_buckets[i].get())
            .sum::<u64>();
        let mut b = Bucket::default();
        b.set_upper_bound(*upper as f64);
        b.set_cumulative_count(cumulative);
        buckets.push(b);
    }
    cumulative += stats
        .iter()
        .map(|s| s.lifetime_buckets[LIFETIME_BUCKETS.len()].get())
        .sum::<u64>();
    h.set_bucket(buckets);
    h.set_sample_count(cumulative);
    h.set_sample_sum(
        stats
            .iter()
            .map(|s| s.lifetime_seconds_sum.get() as f64)
            .sum(),
    );
    let mut m = Metric::default();
    m.set_histogram(h);
    let mut f = MetricFamily::default();
    f.set_name("ferroturn_allocation_lifetime_seconds".to_string());
    f.set_help("Lifetime of ended allocations".to_string());
    f.set_field_type(MetricType::HISTOGRAM);
    f.set_metric(vec![m]);
    f
}

/// The kernel fast path: what the eBPF program carried and how many bindings it holds.
fn fast_path_families(control: &Control) -> Vec<MetricFamily> {
    let stats = control.fast_path();
    let totals = stats.map(|f| f.totals()).unwrap_or_default();
    let (installed, declined) = stats.map_or((0, 0), |f| f.entries());
    let mut packets = Family::new(
        "ferroturn_fast_path_packets_total",
        "Packets the kernel fast path forwarded without user space, by direction (hairpin: between two allocations of this relay, also counted in both directions)",
        MetricType::COUNTER,
    );
    let mut bytes = Family::new(
        "ferroturn_fast_path_bytes_total",
        "Payload bytes the kernel fast path forwarded, by direction",
        MetricType::COUNTER,
    );
    for (direction, t) in [
        ("to_peer", totals.to_peer),
        ("to_client", totals.to_client),
        ("hairpin", totals.hairpin),
    ] {
        packets = packets.value(&[("direction", direction)], t.packets as f64);
        bytes = bytes.value(&[("direction", direction)], t.bytes as f64);
    }
    vec![
        gauge(
            "ferroturn_fast_path_enabled",
            "Whether the kernel fast path is attached (kernel-fast-path)",
            f64::from(u8::from(stats.is_some())),
        ),
        packets.build(),
        bytes.build(),
        counter(
            "ferroturn_fast_path_dropped_total",
            "Packets the fast path had changed and then dropped because a kernel helper failed",
            totals.failed.packets as f64,
        ),
        gauge(
            "ferroturn_fast_path_channels",
            "Channel bindings the kernel fast path forwards",
            installed as f64,
        ),
        counter(
            "ferroturn_fast_path_declined_total",
            "Channel bindings kept in user space: no usable egress interface, a wildcard listener, or a full map",
            declined as f64,
        ),
    ]
}
