//! Tests of the whole load: layering of file, environment and command line, file lookup, and a
//! realistic Jitsi configuration.

use super::test_conf::{args, env};
use super::*;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory removed on drop (no tempfile crate in this project).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ferroturn-config-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("create dir");
        }
        fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Loads with a config file holding `conf`, never touching the real search path.
fn run(conf: &str, e: &[(&str, &str)], a: &[&str]) -> Result<Config, ConfigError> {
    let dir = TempDir::new("run");
    let file = dir.write("turnserver.conf", conf);
    let mut all = args(&["-c", file.to_str().unwrap_or_default()]);
    all.extend(args(a));
    match load_with_search(&all, &env(e), &[])? {
        LoadOutcome::Run(c) => Ok(c),
        other => panic!("unexpected outcome {other:?}"),
    }
}

const AUTH: &str = "use-auth-secret\nstatic-auth-secret=file-secret\n";

#[test]
fn cli_long_forms() {
    let c = run(
        AUTH,
        &[],
        &[
            "--listening-port",
            "4000",
            "--min-port=50000",
            "--fingerprint",
        ],
    )
    .expect("load");
    assert_eq!((c.listen.port, c.relay.min_port), (4000, 50000));
    assert!(c.protocol.fingerprint);
}

#[test]
fn cli_short_forms() {
    let c = run(AUTH, &[], &["-p", "4000", "-m2", "-X", "203.0.113.9", "-v"]).expect("load");
    assert_eq!(c.listen.port, 4000);
    assert_eq!(c.relay.threads, Some(2));
    assert_eq!(
        c.relay.external_ips[0].public,
        IpAddr::from([203, 0, 113, 9])
    );
    assert!(c.log.verbose);
}

#[test]
fn cli_overrides_file() {
    let c = run(
        &format!("{AUTH}listening-port=3000\nrealm=file"),
        &[],
        &["-p", "4000"],
    )
    .expect("load");
    assert_eq!(c.listen.port, 4000);
    assert_eq!(c.auth.realm, "file");
}

#[test]
fn env_overrides_file_and_cli_overrides_env() {
    let conf = format!("{AUTH}min-port=40000\nmax-port=41000\nfingerprint");
    let e = [
        ("FERROTURN_MIN_PORT", "40500"),
        ("FERROTURN_MAX_PORT", "42000"),
        ("FERROTURN_FINGERPRINT", "off"),
    ];
    let c = run(&conf, &e, &["--max-port=43000"]).expect("load");
    assert_eq!(c.relay.min_port, 40500);
    assert_eq!(c.relay.max_port, 43000);
    assert!(!c.protocol.fingerprint);
}

#[test]
fn a_list_on_a_higher_layer_replaces_the_lower_ones() {
    let c = run(
        AUTH,
        &[("FERROTURN_STATIC_AUTH_SECRET", "env1,env2")],
        &[
            "--static-auth-secret",
            "cli",
            "--static-auth-secret",
            "cli2",
        ],
    )
    .expect("load");
    assert_eq!(c.auth.static_auth_secrets, ["cli", "cli2"]);
    let c = run(AUTH, &[("FERROTURN_STATIC_AUTH_SECRET", "env1,env2")], &[]).expect("load");
    assert_eq!(c.auth.static_auth_secrets, ["env1", "env2"]);
    let c = run(AUTH, &[], &[]).expect("load");
    assert_eq!(c.auth.static_auth_secrets, ["file-secret"]);
}

#[test]
fn repeated_list_keys_accumulate_and_last_single_wins() {
    let c = from_conf_str(
        "lt-cred-mech\nuser=a:1\nuser=b:2\nrealm=first\nrealm=second\n--listening-port 1234",
        "t.conf",
    )
    .expect("load");
    assert_eq!(c.auth.users.len(), 2);
    assert_eq!(c.auth.realm, "second");
    assert_eq!(c.listen.port, 1234);
}

#[test]
fn env_only_secret_satisfies_auth() {
    let c = run(
        "",
        &[
            ("FERROTURN_USE_AUTH_SECRET", "true"),
            ("FERROTURN_STATIC_AUTH_SECRET", "s"),
        ],
        &[],
    )
    .expect("load");
    assert!(c.auth.use_auth_secret);
}

#[test]
fn errors_name_their_source() {
    let e = run(
        &format!("{AUTH}min-port=x"),
        &[("FERROTURN_MAX_PORT", "y")],
        &["--listening-port=z"],
    )
    .expect_err("bad values");
    assert_eq!(e.messages.len(), 3, "{e}");
    assert!(
        e.messages[0].contains("turnserver.conf:3: min-port:"),
        "{e}"
    );
    assert!(
        e.messages[1].starts_with("environment variable FERROTURN_MAX_PORT: max-port:"),
        "{e}"
    );
    assert!(
        e.messages[2].starts_with("command line: listening-port:"),
        "{e}"
    );
    assert_eq!(e.to_string().lines().count(), 3);
}

#[test]
fn unknown_cli_option_warns_and_check_config_reports_it() {
    let c = run(AUTH, &[], &["--frobnicate", "--check-config"]).expect("load");
    assert!(c.check_config);
    assert_eq!(
        c.warnings,
        ["command line: unknown option \"--frobnicate\" ignored"]
    );
    assert!(c.check().is_err());
    let c = run(AUTH, &[], &["--check-config"]).expect("load");
    assert!(c.check().is_ok());
}

#[test]
fn positional_argument_is_an_error() {
    let e = run(AUTH, &[], &["extra"]).expect_err("positional");
    assert!(e.messages[0].contains("unexpected argument"), "{e}");
}

#[test]
fn help_and_version_short_circuit() {
    match load_with_search(&args(&["--bogus", "-h"]), &[], &[]) {
        Ok(LoadOutcome::Help(h)) => assert!(h.contains("--listening-port")),
        other => panic!("{other:?}"),
    }
    match load_with_search(&args(&["--version"]), &[], &[]) {
        Ok(LoadOutcome::Version(v)) => assert!(v.starts_with("ferroturn ")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn open_relay_refused_without_any_file() {
    let e = load_with_search(&[], &[], &[]).expect_err("open relay");
    assert!(
        e.messages[0].starts_with("refusing to start as an open relay"),
        "{e}"
    );
    match load_with_search(&args(&["--no-auth"]), &[], &[]) {
        Ok(LoadOutcome::Run(c)) => {
            assert!(c.auth.no_auth && c.config_file.is_none());
            assert!(
                c.notices[0].contains("no turnserver.conf found"),
                "{:?}",
                c.notices
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreadable_explicit_file_is_an_error() {
    let dir = TempDir::new("missing");
    let missing = dir.0.join("nope.conf");
    let e = load_with_search(
        &args(&["-c", missing.to_str().unwrap_or_default(), "--no-auth"]),
        &[],
        &[],
    )
    .expect_err("missing file");
    assert!(e.messages[0].starts_with("cannot read config file"), "{e}");
    let e = load_with_search(
        &args(&["--no-auth"]),
        &env(&[("FERROTURN_CONFIG", missing.to_str().unwrap_or_default())]),
        &[],
    )
    .expect_err("missing file via env");
    assert!(e.messages[0].starts_with("cannot read config file"), "{e}");
}

#[test]
fn search_path_order() {
    let dir = TempDir::new("search");
    let dirs = [dir.0.join("a"), dir.0.join("b"), dir.0.join("c")];
    assert_eq!(find_config_file(&dirs), None);
    let in_c = dir.write("c/turnserver.conf", AUTH);
    assert_eq!(find_config_file(&dirs), Some(in_c));
    let in_b = dir.write("b/turnserver.conf", AUTH);
    assert_eq!(find_config_file(&dirs), Some(in_b.clone()));
    // A directory named like the file is not a file.
    fs::create_dir_all(dir.0.join("a/turnserver.conf")).expect("mkdir");
    assert_eq!(find_config_file(&dirs), Some(in_b.clone()));

    match load_with_search(&[], &[], &dirs) {
        Ok(LoadOutcome::Run(c)) => assert_eq!(c.config_file, Some(in_b)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_config_skips_the_search() {
    let dir = TempDir::new("noconf");
    dir.write("turnserver.conf", "realm=from-file\nno-auth");
    let dirs = [dir.0.clone()];
    match load_with_search(&args(&["-n", "--no-auth"]), &[], &dirs) {
        Ok(LoadOutcome::Run(c)) => {
            assert_eq!(c.auth.realm, DEFAULT_REALM);
            assert!(c.config_file.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn default_search_dirs_follow_coturn_order() {
    let d: Vec<String> = default_search_dirs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        d,
        [
            "./",
            "./etc/",
            "../etc/",
            "/etc/",
            "/etc/coturn/",
            "/etc/ferroturn/",
            "/usr/local/etc/",
            "/usr/local/etc/coturn/",
        ]
    );
}

#[test]
fn peer_policy_from_config() {
    use crate::proto::peer_policy::PeerPolicy;
    let c = from_conf_str(
        "no-auth\nallowed-peer-ip=10.1.0.0/16\ndenied-peer-ip=8.8.8.8\nallow-loopback-peers",
        "t",
    )
    .expect("load");
    let p = PeerPolicy::new(&c.peers);
    assert!(p.is_allowed(IpAddr::from([10, 1, 2, 3])));
    assert!(p.is_allowed(IpAddr::from([127, 0, 0, 1])));
    assert!(!p.is_allowed(IpAddr::from([8, 8, 8, 8])));
    assert!(!p.is_allowed(IpAddr::from([10, 2, 0, 1])));
}

const JITSI_CONF: &str = r#"# coturn configuration as a Jitsi Meet deployment ships it
use-auth-secret
static-auth-secret=Zx9#kq2:VvR8wLp0"quote
realm=meet.example.com
listening-port=3478
tls-listening-port=5349
min-port=49160
max-port=49200
external-ip=203.0.113.5
fingerprint
no-multicast-peers
no-cli
no-tlsv1
no-tlsv1_1
denied-peer-ip=10.0.0.0-10.255.255.255
cert=/etc/ssl/x.pem
pkey=/etc/ssl/x.key
log-file=stdout
simple-log
"#;

#[test]
fn realistic_jitsi_config() {
    let c = from_conf_str(JITSI_CONF, "/etc/turnserver.conf").expect("jitsi config loads");
    assert!(c.auth.use_auth_secret);
    assert_eq!(c.auth.static_auth_secrets, ["Zx9#kq2:VvR8wLp0\"quote"]);
    assert_eq!(c.auth.realm, "meet.example.com");
    assert_eq!((c.listen.port, c.listen.tls_port), (3478, 5349));
    assert_eq!((c.relay.min_port, c.relay.max_port), (49160, 49200));
    assert_eq!(
        c.relay.external_ips,
        [ExternalIp {
            public: IpAddr::from([203, 0, 113, 5]),
            private: None
        }]
    );
    assert!(c.protocol.fingerprint && c.tls.no_tlsv1 && c.tls.no_tlsv1_1 && !c.tls.no_tlsv1_2);
    assert_eq!(c.peers.denied, ["10.0.0.0/8".parse().expect("range")]);
    assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/ssl/x.pem")));
    assert_eq!(c.tls.pkey, Some(PathBuf::from("/etc/ssl/x.key")));
    assert_eq!(c.log.file, LogTarget::Stdout);
    assert!(c.log.simple);
    // A stock Jitsi config must pass --check-config.
    assert!(c.check().is_ok(), "{:?}", c.warnings);
    assert_eq!(c.notices.len(), 2, "{:?}", c.notices);
}

#[test]
fn rfc5766_channel_numbers_is_off_by_default_and_a_flag() {
    let c = run(AUTH, &[], &[]).expect("load");
    assert!(!c.protocol.rfc5766_channel_numbers);
    let c = run(&format!("{AUTH}rfc5766-channel-numbers\n"), &[], &[]).expect("load");
    assert!(c.protocol.rfc5766_channel_numbers);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c = run(AUTH, &[], &["--rfc5766-channel-numbers"]).expect("load");
    assert!(c.protocol.rfc5766_channel_numbers);
}

#[test]
fn dtls_is_accepted_with_a_warning_and_no_dtls_quietly() {
    let c = run(&format!("{AUTH}dtls\n"), &[], &[]).expect("load");
    let w = &c.warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("does not serve DTLS"), "{w:?}");
    assert!(w[0].contains("turnserver.conf:3"), "{w:?}");
    let c = run(&format!("{AUTH}no-dtls\n"), &[], &[]).expect("load");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let help = help::render();
    assert!(help.contains("DTLS is not served"));
    assert!(!help.contains("(and DTLS)"));
}

/// Every option of coturn 4.17.1's turnserver (its long_options table), and the ones 4.17
/// removed that 4.6-era files still carry: all recognised, none "unknown".
#[test]
fn every_coturn_4_17_option_and_the_removed_ones_are_recognised() {
    const COTURN_4_17: &[&str] = &[
        "CA-file",
        "Verbose",
        "acme-redirect",
        "allocation-default-address-family",
        "allow-loopback-peers",
        "allowed-peer-ip",
        "alt-listening-port",
        "alt-tls-listening-port",
        "alternate-server",
        "aux-server",
        "bps-capacity",
        "cert",
        "channel-lifetime",
        "check-origin-consistency",
        "cipher-list",
        "cli",
        "cli-ip",
        "cli-max-output-sessions",
        "cli-password",
        "cli-port",
        "cpus",
        "daemon",
        "db",
        "denied-peer-ip",
        "dh-file",
        "dh1066",
        "dh566",
        "drain-min-allocations",
        "drop-invalid-packets",
        "drop-invalid-packets-log",
        "dtls",
        "ec-curve-name",
        "external-ip",
        "fingerprint",
        "include-reason-string",
        "keep-address-family",
        "listening-device",
        "listening-ip",
        "listening-port",
        "log-binding",
        "log-file",
        "log-min-level",
        "lt-cred-mech",
        "max-allocate-lifetime",
        "max-allocate-timeout",
        "max-bps",
        "max-port",
        "min-port",
        "mobility",
        "mongo-userdb",
        "multiplex-peer",
        "multiplex-peer-max-peers",
        "multiplex-peer-port",
        "mysql-userdb",
        "new-log-timestamp",
        "new-log-timestamp-format",
        "no-auth",
        "no-auth-pings",
        "no-cli",
        "no-dtls",
        "no-dynamic-ip-list",
        "no-dynamic-realms",
        "no-multicast-peers",
        "no-rfc5780",
        "no-software-attribute",
        "no-stdout-log",
        "no-stun",
        "no-tcp",
        "no-tcp-relay",
        "no-tls",
        "no-tlsv1_2",
        "no-udp",
        "no-udp-relay",
        "oauth",
        "permission-lifetime",
        "pidfile",
        "pkey",
        "pkey-pwd",
        "proc-group",
        "proc-user",
        "prometheus",
        "prometheus-address",
        "prometheus-cert",
        "prometheus-key",
        "prometheus-path",
        "prometheus-port",
        "prometheus-tls",
        "prometheus-username-labels",
        "psql-userdb",
        "raw-public-keys",
        "realm",
        "redis-statsdb",
        "redis-userdb",
        "relay-device",
        "relay-ip",
        "relay-threads",
        "respond-http-unsupported",
        "response-origin-only-with-rfc5780",
        "rest-api-separator",
        "rfc3489-compatibility",
        "rfc5766-channel-numbers",
        "rfc5780",
        "secret-key-file",
        "secure-stun",
        "server-name",
        "server-relay",
        "simple-log",
        "sock-buf-size",
        "software-attribute",
        "sql-userdb",
        "stale-nonce",
        "stateless-nonce",
        "stateless-nonce-secret",
        "static-auth-secret",
        "stun-backward-compatibility",
        "stun-only",
        "syslog",
        "syslog-facility",
        "tcp-alternate-server",
        "tcp-proxy-port",
        "tls-alternate-server",
        "tls-listening-port",
        "tlsv1",
        "tlsv1_1",
        "total-quota",
        "udp-alternate-server",
        "udp-gso",
        "udp-recvmmsg",
        "udp-recvmmsg-log",
        "udp-self-balance",
        "udp-sendmmsg-log",
        "unauthorized-ratelimit",
        "unauthorized-ratelimit-rps",
        "use-auth-secret",
        "user",
        "user-quota",
        "userdb",
        "verbose",
        "version",
        "web-admin",
        "web-admin-ip",
        "web-admin-listen-on-workers",
        "web-admin-port",
    ];
    const REMOVED_SINCE_4_6: &[&str] = &[
        "ne",
        "no-sslv2",
        "no-sslv3",
        "no-stun-backward-compatibility",
        "no-tlsv1",
        "no-tlsv1_1",
        "prod",
        "secret-ts-exp-time",
    ];
    for name in COTURN_4_17.iter().chain(REMOVED_SINCE_4_6) {
        assert!(options::lookup(name).is_some(), "{name} is not recognised");
    }
}

#[test]
fn coturn_4_17_options_take_their_meaning() {
    let c = run(
        &format!(
            "{AUTH}cpus=3\nlog-min-level=WARNING\nprometheus-path=/m\ndrain-min-allocations=5\n\
             udp-alternate-server=203.0.113.1\ntcp-alternate-server=203.0.113.2:3479\n\
             tls-alternate-server=203.0.113.3\nprod\nstateless-nonce\ndrop-invalid-packets\n\
             udp-recvmmsg\nno-sslv3\nsecret-ts-exp-time=3600\n"
        ),
        &[],
        &[],
    )
    .expect("load");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.relay.cpus, Some(3));
    assert_eq!(c.log.min_level, Some("warn"));
    assert_eq!(c.metrics.path, "/m");
    assert_eq!(c.drain.min_allocations, 5);
    assert_eq!(
        c.drain.alternate_servers.udp[0]
            .socket_addr(3478)
            .to_string(),
        "203.0.113.1:3478"
    );
    assert_eq!(
        c.drain.alternate_servers.tcp[0]
            .socket_addr(3478)
            .to_string(),
        "203.0.113.2:3479"
    );
    assert_eq!(c.drain.alternate_servers.tls.len(), 1);
    assert!(
        c.protocol.no_software_attribute,
        "prod is no-software-attribute"
    );

    // What ferroturn always does cannot be switched off; options it lacks warn.
    let c = run(
        &format!("{AUTH}stateless-nonce=false\nudp-gso\nmultiplex-peer\ntlsv1\n"),
        &[],
        &[],
    )
    .expect("load");
    assert_eq!(c.warnings.len(), 4, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("stateless-nonce cannot be switched off"));
    assert!(c.warnings[1].contains("\"udp-gso\" is not supported"));

    for bad in [
        "cpus=0",
        "log-min-level=loud",
        "prometheus-path=metrics",
        "drain-min-allocations=x",
    ] {
        let e = run(&format!("{AUTH}{bad}\n"), &[], &[]).expect_err(bad);
        let name = bad.split('=').next().unwrap_or_default();
        assert!(e.to_string().contains(name), "{bad}: {e}");
    }
}

#[test]
fn rest_api_hmac_is_sha1_by_default_or_sha256() {
    use crate::proto::auth::rest::RestHmac;
    assert_eq!(
        run(AUTH, &[], &[]).expect("load").auth.rest_api_hmac,
        RestHmac::Sha1
    );
    let c = run(&format!("{AUTH}rest-api-hmac=sha256\n"), &[], &[]).expect("load");
    assert_eq!(c.auth.rest_api_hmac, RestHmac::Sha256);
    let e = run(&format!("{AUTH}rest-api-hmac=md5\n"), &[], &[]).expect_err("md5");
    assert!(e.to_string().contains("rest-api-hmac"), "{e}");
}
