//! Turning the validated configuration into the core's shared state.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use crate::config::{AuthenticationSettings, Config};
use crate::proto::auth::nonce::NonceKey;
use crate::proto::auth::{AuthSettings, Authenticator};
use crate::proto::peer_policy::{PeerPolicy, ServerAddresses};
use crate::proto::ports::{PortPool, PortRangeError, Reservations};
use crate::proto::quota::Quotas;
use crate::proto::settings::{CoreConfig, Settings, Shared};

/// The core's behaviour switches for `config`, for a relay of `shards` shards (the server's
/// own addresses are left empty: [`core_config_from`] adds the bound ones).
pub fn settings_from_config(config: &Config, shards: usize) -> Settings {
    Settings {
        server_addresses: ServerAddresses::default(),
        include_reason: config.protocol.include_reason_string,
        sha256_integrity: config.auth.sha256_integrity,
        rfc5766_channel_numbers: config.protocol.rfc5766_channel_numbers,
        unauthorized_rps: if config.limits.unauthorized_ratelimit {
            config.limits.unauthorized_ratelimit_rps
        } else {
            0
        },
        max_bps: config.limits.max_bps,
        // Each shard enforces its share, so the hot path never touches a shared counter.
        bps_capacity_per_shard: config.limits.bps_capacity / shards.max(1) as u64,
        software: !config.protocol.no_software_attribute,
        fingerprint: config.protocol.fingerprint,
        stale_nonce_secs: u64::from(config.auth.stale_nonce),
        max_allocate_lifetime: config.limits.max_allocate_lifetime,
        channel_lifetime: config.limits.channel_lifetime,
        permission_lifetime: config.limits.permission_lifetime,
        stun_only: config.protocol.stun_only,
        no_stun: config.protocol.no_stun,
        no_udp_relay: config.relay.no_udp,
        no_tcp_relay: config.relay.no_tcp,
        external_ips: config.relay.external_ips.clone(),
        alternate_servers: config
            .drain
            .alternate_servers
            .any
            .iter()
            .map(|a| a.socket_addr(config.listen.port))
            .collect(),
        transport_alternate_servers: [
            (&config.drain.alternate_servers.udp, config.listen.port),
            (&config.drain.alternate_servers.tcp, config.listen.port),
            (&config.drain.alternate_servers.tls, config.listen.tls_port),
        ]
        .map(|(list, port)| list.iter().map(|a| a.socket_addr(port)).collect()),
    }
}

/// The core's credential checks for `auth`.
pub fn authenticator(auth: &AuthenticationSettings) -> Authenticator {
    let rest_secrets = if auth.use_auth_secret {
        auth.static_auth_secrets
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect()
    } else {
        Vec::new()
    };
    // As in coturn, REST credentials switch static users off ("shared secret overrides
    // username/password"); the configuration loader warns about it.
    let users = if auth.lt_cred_mech && !auth.use_auth_secret {
        auth.users
            .iter()
            .map(|u| (u.name.clone(), u.key.clone()))
            .collect()
    } else {
        Vec::new()
    };
    Authenticator::new(AuthSettings {
        realm: auth.realm.clone(),
        no_auth: auth.no_auth,
        rest_secrets,
        rest_separator: auth.rest_api_separator,
        users,
        strict_expiry: auth.strict_expiry,
        rest_hmac: auth.rest_api_hmac,
    })
}

/// The addresses the relay answers on, which clients may not use as peers: every listener, and
/// the relay, listening and external IPs a wildcard listener is reached on.
pub fn server_addresses(
    config: &Config,
    listeners: &[SocketAddr],
    listen_ips: &[IpAddr],
    relay_ips: &[IpAddr],
) -> ServerAddresses {
    let mut local_ips: Vec<IpAddr> = relay_ips.to_vec();
    local_ips.extend(listen_ips.iter().filter(|ip| !ip.is_unspecified()));
    local_ips.extend(config.relay.external_ips.iter().map(|e| e.public));
    local_ips.sort();
    local_ips.dedup();
    let mut listeners = listeners.to_vec();
    listeners.sort();
    listeners.dedup();
    ServerAddresses {
        listeners,
        local_ips,
    }
}

/// The fixed state all shards share, built from `config`.
pub fn shared_from_config(config: &Config) -> Result<Shared, PortRangeError> {
    Ok(Shared {
        nonce_key: NonceKey::generate(&mut rand::rngs::OsRng),
        quotas: Quotas::new(config.limits.user_quota, config.limits.total_quota),
        ports: PortPool::new(config.relay.min_port, config.relay.max_port)?,
        reservations: Reservations::new(),
    })
}

/// The reloadable part of the core's configuration, with the admin API's revocations applied.
pub fn core_config_from(
    config: &Config,
    shards: usize,
    revoked: &Revocations,
    server: &ServerAddresses,
) -> CoreConfig {
    CoreConfig {
        auth: authenticator(&config.auth),
        peers: PeerPolicy::new(&config.peers),
        settings: Settings {
            server_addresses: server.clone(),
            ..settings_from_config(config, shards)
        },
        revoked_users: revoked.users.clone(),
        revoked_secrets: revoked.secrets.clone(),
    }
}

/// Users and secrets revoked through the admin API; they stay revoked across reloads until the
/// process restarts.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    /// Quota ids (REST user part or static user name).
    pub users: HashSet<String>,
    /// REST secrets by id.
    pub secrets: HashSet<u64>,
}
