//! Rules between options, checked once every entry is applied: what coturn implies (a secret
//! means use-auth-secret), combinations that cannot work (no listener, an open relay, min-port
//! above max-port), and options accepted with a warning (cert without pkey, cipher-list, ...).

use super::build::Builder;
use super::options::Opt;

impl Builder {
    /// `"SOURCE: "` of where `opt` was last set, or nothing.
    pub(super) fn source_of(&self, opt: Opt) -> String {
        self.last
            .get(&opt)
            .map(|s| format!("{s}: "))
            .unwrap_or_default()
    }

    /// Applies the implied settings and records every cross-field error and warning.
    pub(super) fn cross_checks(&mut self) {
        // Settings coturn implies: a static-auth-secret means use-auth-secret, and users
        // without lt-cred-mech mean lt-cred-mech (with a warning). Kept for drop-in configs.
        if !self.cfg.auth.static_auth_secrets.is_empty() && !self.cfg.auth.use_auth_secret {
            self.cfg.auth.use_auth_secret = true;
            self.notices.push(
                "static-auth-secret is set without use-auth-secret; enabling use-auth-secret, as coturn does"
                    .to_string(),
            );
        }
        if !self.cfg.auth.users.is_empty()
            && !self.cfg.auth.lt_cred_mech
            && !self.cfg.auth.no_auth
            && !self.cfg.auth.use_auth_secret
        {
            self.cfg.auth.lt_cred_mech = true;
            self.warnings.push(format!(
                "{}user is given without lt-cred-mech; turning lt-cred-mech on, as coturn does",
                self.source_of(Opt::User)
            ));
        }

        let c = &self.cfg;
        if c.relay.min_port > c.relay.max_port {
            let at = match (self.last.get(&Opt::MinPort), self.last.get(&Opt::MaxPort)) {
                (_, Some(s)) | (Some(s), None) => format!("{s}: "),
                (None, None) => String::new(),
            };
            self.errors.push(format!(
                "{at}min-port {} is greater than max-port {}",
                c.relay.min_port, c.relay.max_port
            ));
        }
        if c.relay.poll_interval_ms > 0 && c.relay.poll_coalesce_us > 0 {
            self.errors.push(format!(
                "{}poll-coalesce-us and poll-interval-ms are both set: choose one way to pace the relay threads",
                self.source_of(Opt::PollCoalesceUs)
            ));
        }
        if c.listen.no_udp && c.listen.no_tcp && c.listen.no_tls {
            self.errors.push(
                "no-udp, no-tcp and no-tls are all set: there is nothing to listen on".to_string(),
            );
        }
        if c.protocol.stun_only && c.protocol.no_stun {
            self.errors
                .push("stun-only and no-stun are both set: there is nothing to serve".to_string());
        }
        if c.relay.no_udp && c.relay.no_tcp {
            self.errors.push(
                "no-udp-relay and no-tcp-relay are both set: no allocation could be made"
                    .to_string(),
            );
        }
        if c.limits.bps_capacity > 0 && c.limits.max_bps == 0 {
            self.errors.push(format!(
                "{}bps-capacity needs max-bps as well (as in coturn)",
                self.source_of(Opt::BpsCapacity)
            ));
        }

        let c = &self.cfg;
        if c.auth.no_auth && (c.auth.use_auth_secret || c.auth.lt_cred_mech) {
            self.errors.push(
                "no-auth cannot be combined with use-auth-secret or lt-cred-mech".to_string(),
            );
        } else if c.auth.use_auth_secret && c.auth.static_auth_secrets.is_empty() {
            self.errors.push(format!(
                "{}use-auth-secret is set but no static-auth-secret is configured (ferroturn has no secret database)",
                self.source_of(Opt::UseAuthSecret)
            ));
        } else if c.auth.lt_cred_mech && c.auth.users.is_empty() && !c.auth.use_auth_secret {
            self.errors.push(format!(
                "{}lt-cred-mech is set but no user is configured (ferroturn has no user database)",
                self.source_of(Opt::LtCredMech)
            ));
        } else if !c.auth.no_auth && !c.auth.use_auth_secret && !c.auth.lt_cred_mech {
            self.errors.push(
                "refusing to start as an open relay: configure use-auth-secret + static-auth-secret or lt-cred-mech + user, or set no-auth explicitly"
                    .to_string(),
            );
        }
        if c.auth.use_auth_secret && c.auth.lt_cred_mech && !c.auth.users.is_empty() {
            self.warnings.push(
                "both use-auth-secret and lt-cred-mech are set: REST API credentials take precedence and the static users are not used, as in coturn"
                    .to_string(),
            );
        }

        if c.listen.dtls {
            self.warnings.push(format!(
                "{}dtls: ferroturn does not serve DTLS; TLS clients use TCP (turns:), UDP clients plain TURN",
                self.source_of(Opt::Dtls)
            ));
        }
        if c.tls.cert.is_some() && c.tls.pkey.is_none() {
            self.warnings.push(format!(
                "{}cert is set without pkey; TLS needs both",
                self.source_of(Opt::Cert)
            ));
        }
        if c.tls.pkey.is_some() && c.tls.cert.is_none() {
            self.warnings.push(format!(
                "{}pkey is set without cert; TLS needs both",
                self.source_of(Opt::Pkey)
            ));
        }
        if c.credential_endpoint.token.is_some()
            && (!c.auth.use_auth_secret || c.auth.static_auth_secrets.is_empty())
        {
            self.errors.push(format!(
                "{}rest-api-token needs use-auth-secret and a static-auth-secret to sign credentials with",
                self.source_of(Opt::RestApiToken)
            ));
        }
        if c.tls.cipher_list.is_some() {
            self.warnings.push(format!(
                "{}cipher-list is ignored: ferroturn's TLS (rustls) offers only modern AEAD suites",
                self.source_of(Opt::CipherList)
            ));
        }
        if c.tls.dh_file.is_some() {
            self.warnings.push(format!(
                "{}dh-file is ignored: finite-field Diffie-Hellman is never offered (ECDHE only)",
                self.source_of(Opt::DhFile)
            ));
        }
        if c.tls.no_tlsv1 || c.tls.no_tlsv1_1 {
            self.notices.push(
                "no-tlsv1 / no-tlsv1_1: TLS 1.0 and 1.1 are never offered anyway".to_string(),
            );
        }
        let proxy = super::proxy_checks::check(c);
        for e in proxy.errors {
            let at = self.source_of(e.opt);
            self.errors.push(format!("{at}{}", e.text));
        }
        for w in proxy.warnings {
            let at = self.source_of(w.opt);
            self.warnings.push(format!("{at}{}", w.text));
        }
        let c = &self.cfg;
        if c.peers.allow_loopback {
            self.warnings.push(format!(
                "{}allow-loopback-peers: clients may relay to this host's loopback addresses; do not use in production",
                self.source_of(Opt::AllowLoopbackPeers)
            ));
        }
    }
}
