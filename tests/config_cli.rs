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
    "listening-ip=127.0.0.1\nuse-auth-secret\nstatic-auth-secret=s3cr3t\nrealm=example.org\n";

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

#[test]
fn check_config_turns_warnings_into_errors() {
    let ok = conf_file("ok", GOOD);
    let out = ferroturn(&["-c", ok.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));

    let unknown = conf_file("unknown", &format!("{GOOD}no-such-option=1\nmobility\n"));
    let out = ferroturn(&["-c", unknown.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no-such-option"), "{err}");
    assert!(err.contains("mobility"), "{err}");
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
    ] {
        assert!(help.contains(option), "help lacks {option}");
    }
}
