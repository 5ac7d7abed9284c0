//! The binary's answers to bad configuration: a clear message naming the line, a non-zero exit,
//! and no relay started.

use std::path::PathBuf;
use std::process::{Command, Output};

fn ferroturn(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferroturn"));
    // The test's own environment must not leak configuration into the server under test.
    for (key, _) in std::env::vars() {
        if key.starts_with("FERROTURN_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ferroturn")
}

fn conf_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferroturn-cfg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("turnserver.conf");
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str =
    "listening-ip=127.0.0.1\nuse-auth-secret\nstatic-auth-secret=s3cr3t-long-enough-0123\nrealm=example.org\n";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_values_stop_start_up_naming_the_line() {
    let cases = [
        ("min-port=60000\nmax-port=50000\n", "greater than max-port"),
        ("listening-port=70000\n", "listening-port"),
        ("relay-ip=300.1.1.1\n", "relay-ip"),
        ("denied-peer-ip=10.0.0.9-10.0.0.1\n", "denied-peer-ip"),
        ("user=nocolon\n", "user"),
        ("rest-api-separator=::\n", "rest-api-separator"),
        ("poll-interval-ms=50\n", "poll-interval-ms"),
        ("poll-coalesce-us=6000\n", "poll-coalesce-us"),
        ("poll-coalesce-us=soon\n", "poll-coalesce-us"),
        (
            "poll-coalesce-us=300\npoll-interval-ms=1\n",
            "poll-coalesce-us and poll-interval-ms are both set",
        ),
    ];
    for (i, (extra, needle)) in cases.iter().enumerate() {
        let path = conf_file(&format!("bad{i}"), &format!("{GOOD}{extra}"));
        let out = ferroturn(&["-c", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("turnserver.conf"), "{extra}: {err}");
        assert!(
            err.contains(needle),
            "{extra}: expected {needle:?} in {err}"
        );
    }
}

#[test]
fn refuses_to_run_as_an_open_relay() {
    let path = conf_file("open", "listening-ip=127.0.0.1\n");
    let out = ferroturn(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("open relay"), "{}", stderr(&out));
}

#[test]
fn unreadable_config_file_is_an_error() {
    let out = ferroturn(&["-c", "/nonexistent/turnserver.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/turnserver.conf"));
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn check(path: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec!["-c", path.to_str().unwrap(), "--check-config"];
    args.extend(extra);
    ferroturn(&args)
}

#[test]
fn check_config_warns_on_ignored_options_and_strict_fails() {
    let ok = conf_file("ok", GOOD);
    let out = check(&ok, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("configuration OK"));

    let unknown = conf_file("unknown", &format!("{GOOD}no-such-option=1\nmobility\n"));
    let out = check(&unknown, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: ") && err.contains("no-such-option"),
        "{err}"
    );
    assert!(err.contains("mobility"), "{err}");
    assert!(stdout(&out).contains("configuration OK, 2 warning(s)"));

    let out = check(&unknown, &["--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--strict"), "{}", stderr(&out));

    // A value that stops start-up is an error under --check-config too: exit 1.
    let bad = conf_file("checkbad", &format!("{GOOD}min-port=x\n"));
    assert_eq!(check(&bad, &[]).status.code(), Some(1));
}

/// Debian's jitsi-meet-turnserver file, as shipped (with a certificate that exists).
fn debian_jitsi_coturn_conf(cert: &str, key: &str) -> String {
    format!(
        "use-auth-secret\n\
         keep-address-family\n\
         static-auth-secret=0f3c2b1a9e8d7c6b5a4f3e2d1c0b9a8f\n\
         realm=meet.example.org\n\
         cert={cert}\n\
         pkey={key}\n\
         no-multicast-peers\n\
         no-cli\n\
         no-loopback-peers\n\
         no-tcp-relay\n\
         no-tcp\n\
         listening-ip=127.0.0.1\n\
         listening-port=3478\n\
         tls-listening-port=5349\n\
         no-tlsv1\n\
         no-tlsv1_1\n\
         cipher-list=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256\n\
         denied-peer-ip=10.0.0.0-10.255.255.255\n\
         denied-peer-ip=192.168.0.0-192.168.255.255\n\
         syslog\n"
    )
}

fn write_cert_pair(dir_name: &str) -> (PathBuf, PathBuf) {
    let dir = conf_file(dir_name, "").parent().unwrap().to_path_buf();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn typical_debian_jitsi_coturn_file_passes_check_config() {
    let (cert, key) = write_cert_pair("jitsi-certs");
    let conf = debian_jitsi_coturn_conf(cert.to_str().unwrap(), key.to_str().unwrap());
    let path = conf_file("jitsi", &conf);
    let out = check(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    // Ignored with a warning, never an error.
    assert!(
        err.contains("keep-address-family") && err.contains("cipher-list"),
        "{err}"
    );
    assert!(!err.contains("error:"), "{err}");
    // Accepted without comment: they are what ferroturn does anyway.
    for quiet in ["no-loopback-peers", "syslog\"", "no-cli"] {
        assert!(!err.contains(quiet), "{quiet} should not warn: {err}");
    }
    // The same file with its certificate gone: start-up would fail, so the check fails.
    let gone = conf_file(
        "jitsi-nocert",
        &debian_jitsi_coturn_conf("/nonexistent/jitsi.crt", "/nonexistent/jitsi.key"),
    );
    let out = check(&gone, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/jitsi.crt"),
        "{}",
        stderr(&out)
    );
}

/// Every case `--check-config` rejects, start-up rejects too (and the other way round).
#[test]
fn check_config_and_start_up_agree() {
    let cases = [
        (
            "cert=/nonexistent/c.pem\npkey=/nonexistent/k.pem\n",
            "/nonexistent/c.pem",
        ),
        (
            "min-port=3000\nmax-port=4000\nlistening-port=3478\n",
            "contains the UDP listening-port 3478",
        ),
    ];
    for (i, (extra, needle)) in cases.iter().enumerate() {
        let path = conf_file(&format!("agree{i}"), &format!("{GOOD}{extra}"));
        let out = check(&path, &[]);
        assert_eq!(out.status.code(), Some(1), "{extra}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{extra}: {}", stderr(&out));
        // Start-up stops before opening anything, with the same message.
        let out = ferroturn(&["-c", path.to_str().unwrap(), "--listening-port", "3478"]);
        assert_eq!(out.status.code(), Some(1), "{extra}: {}", stderr(&out));
        assert!(stdout(&out).contains(needle), "{extra}: {}", stdout(&out));
    }
    // A log file start-up cannot open: both refuse (start-up before logging starts, exit 2).
    let path = conf_file(
        "agreelog",
        &format!("{GOOD}log-file=/nonexistent-dir/turn.log\n"),
    );
    let out = check(&path, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent-dir"),
        "{}",
        stderr(&out)
    );
    let out = ferroturn(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A TLS port without a certificate is a warning for both.
    let path = conf_file("tlsport", &format!("{GOOD}tls-listening-port=5349\n"));
    let out = check(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no TLS listener will be opened"),
        "{}",
        stderr(&out)
    );
    assert_eq!(check(&path, &["--strict"]).status.code(), Some(1));
}

#[test]
fn print_config_names_every_source() {
    let path = conf_file("print", &format!("{GOOD}min-port=40000\n"));
    let out = Command::new(env!("CARGO_BIN_EXE_ferroturn"))
        .args([
            "-c",
            path.to_str().unwrap(),
            "--print-config",
            "--max-port",
            "40100",
        ])
        .env("FERROTURN_REALM", "env.example.org")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let has = |start: &str, end: &str| {
        let lines: Vec<&str> = text.lines().collect();
        // The source is the comment line above the value.
        lines
            .windows(2)
            .any(|w| w[1].starts_with(start) && w[0].ends_with(end))
    };
    assert!(
        has(
            "realm=env.example.org",
            "# environment variable FERROTURN_REALM"
        ),
        "{text}"
    );
    assert!(has("min-port=40000", "turnserver.conf:5"), "{text}");
    assert!(has("max-port=40100", "# command line"), "{text}");
    assert!(has("listening-port=3478", "# default"), "{text}");
    assert!(
        text.contains("realm from environment variable FERROTURN_REALM overrides"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[test]
fn command_line_overrides_and_help() {
    let path = conf_file("cli", GOOD);
    let out = ferroturn(&[
        "-c",
        path.to_str().unwrap(),
        "--min-port",
        "9",
        "--max-port=8",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("command line"), "{}", stderr(&out));

    let out = ferroturn(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--listening-port",
        "--static-auth-secret",
        "--allowed-peer-ip",
        "-X, --external-ip",
        "\n  jitsi ",
        "\n  admin ",
        "\n  bench ",
    ] {
        assert!(help.contains(option), "help lacks {option}");
    }
}
