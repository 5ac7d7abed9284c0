//! Turning the validated configuration into the core's shared state.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use crate::config::{Config, UserKey};
use crate::proto::auth::nonce::NonceKey;
use crate::proto::auth::{AuthSettings, Authenticator, UserSecret};
use crate::proto::peer_policy::{PeerPolicy, ServerAddresses};
use crate::proto::ports::{PortPool, PortRangeError, Reservations};
use crate::proto::quota::Quotas;
use crate::proto::settings::{CoreConfig, ExternalMapping, Settings, Shared};

/// The core's behaviour switches for `config`, for a relay of `shards` shards (the server's
/// own addresses are left empty: [`core_config_from`] adds the bound ones).
pub fn settings_from_config(config: &Config, shards: usize) -> Settings {
    Settings {
        server_addresses: ServerAddresses::default(),
        include_reason: config.include_reason_string,
        sha256_integrity: config.sha256_integrity,
        rfc5766_channel_numbers: config.rfc5766_channel_numbers,
        unauthorized_rps: if config.unauthorized_ratelimit {
            config.unauthorized_ratelimit_rps
        } else {
            0
        },
        max_bps: config.max_bps,
        // Each shard enforces its share, so the hot path never touches a shared counter.
        bps_capacity_per_shard: config.bps_capacity / shards.max(1) as u64,
        software: !config.no_software_attribute,
        fingerprint: config.fingerprint,
        stale_nonce_secs: u64::from(config.stale_nonce),
        max_allocate_lifetime: config.max_allocate_lifetime,
        channel_lifetime: config.channel_lifetime,
        permission_lifetime: config.permission_lifetime,
        stun_only: config.stun_only,
        no_stun: config.no_stun,
        no_udp_relay: config.no_udp_relay,
        no_tcp_relay: config.no_tcp_relay,
        external_ips: config
            .external_ips
            .iter()
            .map(|e| ExternalMapping {
                public: e.public,
                private: e.private,
            })
            .collect(),
        alternate_servers: config
            .alternate_servers
            .iter()
            .map(|a| a.socket_addr(config.listening_port))
            .collect(),
        transport_alternate_servers: [
            (&config.udp_alternate_servers, config.listening_port),
            (&config.tcp_alternate_servers, config.listening_port),
            (&config.tls_alternate_servers, config.tls_listening_port),
        ]
        .map(|(list, port)| list.iter().map(|a| a.socket_addr(port)).collect()),
    }
}

/// Credential settings for `config`.
pub fn auth_from_config(config: &Config) -> Authenticator {
    let rest_secrets = if config.use_auth_secret {
        config
            .static_auth_secrets
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect()
    } else {
        Vec::new()
    };
    // As in coturn, REST credentials switch static users off ("shared secret overrides
    // username/password"); the configuration loader warns about it.
    let users = if config.lt_cred_mech && !config.use_auth_secret {
        config
            .users
            .iter()
            .map(|u| {
                let secret = match &u.key {
                    UserKey::Password(p) => UserSecret::Password(p.clone()),
                    UserKey::Md5Key(k) => UserSecret::Key(*k),
                };
                (u.name.clone(), secret)
            })
            .collect()
    } else {
        Vec::new()
    };
    Authenticator::new(AuthSettings {
        realm: config.realm.clone(),
        no_auth: config.no_auth,
        rest_secrets,
        rest_separator: config.rest_api_separator,
        users,
        strict_expiry: config.strict_expiry,
        rest_hmac: config.rest_api_hmac,
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
    local_ips.extend(config.external_ips.iter().map(|e| e.public));
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
        quotas: Quotas::new(config.user_quota, config.total_quota),
        ports: PortPool::new(config.min_port, config.max_port)?,
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
        auth: auth_from_config(config),
        peers: PeerPolicy::new(&config.peer_policy_settings()),
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
