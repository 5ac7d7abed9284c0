//! `ferroturn jitsi` as an operator runs it: README's docker-jitsi-meet lines are what `init`
//! writes, and `jitsi check` reads the relay as the server does (environment and env files),
//! prints its relay range and addresses, and fails on TURN offered over UDP only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs the binary with `env` as its only FERROTURN_* variables.
fn ferroturn(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferroturn"));
    for (key, _) in std::env::vars() {
        if key.starts_with("FERROTURN_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied())
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run ferroturn")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferroturn-jitsi-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The `.env` lines of the secret `init` wrote into `dir`.
fn secret_of(dir: &Path) -> String {
    let env = std::fs::read_to_string(dir.join("jitsi-turn.env")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix("TURN_CREDENTIALS="))
        .unwrap()
        .to_string()
}

#[test]
fn readme_docker_jitsi_meet_lines_are_what_init_writes() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let (before, rest) = readme
        .split_once("<!-- jitsi-init-env:")
        .expect("README marks the init output");
    let block: String = rest
        .split_once("-->\n")
        .unwrap()
        .1
        .split_once("<!-- /jitsi-init-env -->")
        .unwrap()
        .0
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    // The command is the last `ferroturn jitsi init` line before the block.
    let command = before
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("ferroturn jitsi init "))
        .expect("README shows the init command");
    let dir = tmpdir("readme");
    let mut args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    let out = args.iter().position(|a| a == "--out").unwrap();
    args[out + 1] = dir.join("out").display().to_string();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = ferroturn(&argv, &[]);
    assert!(o.status.success(), "{command}: {o:?}");
    let written = std::fs::read_to_string(dir.join("out/jitsi-turn.env")).unwrap();
    let secret = secret_of(&dir.join("out"));
    assert_eq!(
        written.replace(&secret, "<64 hex characters>"),
        block,
        "README's docker-jitsi-meet lines differ from what `{command}` writes"
    );
    // And what it writes passes its own check.
    let conf = dir.join("out/turnserver.conf").display().to_string();
    let env = dir.join("out/jitsi-turn.env").display().to_string();
    let o = ferroturn(&["jitsi", "check", "--conf", &conf, &env], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
}

#[test]
fn check_applies_the_servers_environment_layer() {
    let dir = tmpdir("envlayer");
    assert!(ferroturn(
        &[
            "jitsi",
            "init",
            "--host",
            "turn.example.org",
            "--out",
            &dir.display().to_string()
        ],
        &[]
    )
    .status
    .success());
    let secret = secret_of(&dir);
    let env = dir.join("jitsi-turn.env").display().to_string();
    // The compose layout: the secret is not in the file, compose passes it in the environment.
    let conf = "docker/turnserver.conf";
    let o = ferroturn(&["jitsi", "check", "--conf", conf, &env], &[]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no static-auth-secret") && err.contains("--env-file"),
        "{err}"
    );

    let o = ferroturn(
        &["jitsi", "check", "--conf", conf, &env],
        &[("FERROTURN_STATIC_AUTH_SECRET", &secret)],
    );
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("FERROTURN_STATIC_AUTH_SECRET (from the environment)"),
        "{text}"
    );
    assert!(text.contains(&format!("OK: {env} agrees")), "{text}");
    assert!(
        !text.contains(&secret),
        "the secret is never printed: {text}"
    );

    // A systemd EnvironmentFile / docker env_file, overriding the environment.
    let file = write(
        &dir,
        "relay.env",
        &format!("FERROTURN_STATIC_AUTH_SECRET={secret}\nFERROTURN_LISTENING_PORT=3479\n"),
    );
    let o = ferroturn(
        &["jitsi", "check", "--conf", conf, "--env-file", &file, &env],
        &[("FERROTURN_STATIC_AUTH_SECRET", "some-other-secret")],
    );
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        !text.contains("secrets differ"),
        "the file's secret wins: {text}"
    );
    assert!(text.contains("listening-port is 3479"), "{text}");
}

#[test]
fn check_prints_the_relay_range_and_warns_when_it_is_small() {
    let dir = tmpdir("range");
    assert!(ferroturn(
        &[
            "jitsi",
            "init",
            "--host",
            "turn.example.org",
            "--relay-ports",
            "49000-49020",
            "--out",
            &dir.display().to_string(),
        ],
        &[]
    )
    .status
    .success());
    let conf = dir.join("turnserver.conf").display().to_string();
    let env = dir.join("jitsi-turn.env").display().to_string();
    let o = ferroturn(&["jitsi", "check", "--conf", &conf, &env], &[]);
    let text = stdout(&o);
    // A small range is worth a warning, not a failure: both sides still agree.
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("relay: relay ports 49000-49020/udp: 21 ports, so at most 21 relayed allocations at once"),
        "{text}"
    );
    assert!(
        text.contains("relay: listening on every interface address"),
        "{text}"
    );
    assert!(
        text.contains("relay: relaying from every non-loopback"),
        "{text}"
    );
    assert!(
        text.contains("warning: the relay range 49000-49020")
            && text.contains("about 10 participants"),
        "{text}"
    );
    let o = ferroturn(
        &[
            "jitsi",
            "check",
            "--participants",
            "10",
            "--conf",
            &conf,
            &env,
        ],
        &[],
    );
    assert!(!stdout(&o).contains("warning:"), "{}", stdout(&o));
}

#[test]
fn check_fails_on_turn_over_udp_only_unless_allowed() {
    let dir = tmpdir("udp");
    let o = ferroturn(
        &[
            "jitsi",
            "init",
            "--host",
            "turn.example.org",
            "--transports",
            "udp",
            "--out",
            &dir.display().to_string(),
        ],
        &[],
    );
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("UDP only"),
        "init warns too"
    );
    let conf = dir.join("turnserver.conf").display().to_string();
    let env = dir.join("jitsi-turn.env").display().to_string();
    let o = ferroturn(&["jitsi", "check", "--conf", &conf, &env], &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("WARNING:") && text.contains("useTurnUdp"),
        "{text}"
    );
    assert!(!text.contains("OK:"), "{text}");
    let o = ferroturn(
        &["jitsi", "check", "--allow-udp-only", "--conf", &conf, &env],
        &[],
    );
    assert!(o.status.success(), "{}", stdout(&o));
    // The README's earlier snippet: TURN_TRANSPORT=udp with a TURNS_HOST and no certificate.
    let old = write(
        &dir,
        "old.env",
        &format!(
            "TURN_CREDENTIALS={}\nTURN_HOST=turn.example.org\nTURN_PORT=3478\nTURN_TRANSPORT=udp\nTURNS_HOST=turn.example.org\nTURNS_PORT=5349\n",
            secret_of(&dir)
        ),
    );
    let o = ferroturn(&["jitsi", "check", "--conf", &conf, &old], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("no-tls"), "{}", stdout(&o));
}

/// A Debian-style Prosody layout: the main file includes `conf.d/*.cfg.lua`, whose host file
/// builds its values with `..`, arithmetic and `local`s.
fn prosody_layout(dir: &Path, secret: &str, port: &str) -> String {
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let (a, b) = secret.split_at(20);
    write(
        &dir.join("conf.d"),
        "meet.example.org.cfg.lua",
        &format!(
            "VirtualHost \"meet.example.org\"\n\
             \x20   modules_enabled = {{ \"external_services\" }}\n\
             \x20   local port = {port}\n\
             \x20   local turn_host = \"turn\" .. \".example.org\"\n\
             \x20   external_service_secret = \"{a}\" .. \"{b}\"\n\
             \x20   external_services = {{\n\
             \x20       {{ type = \"turn\", host = turn_host, port = port, transport = \"udp\", secret = true, ttl = 24 * 3600 }};\n\
             \x20       {{ type = \"turn\", host = turn_host, port = port, transport = \"tcp\", secret = true, ttl = 24 * 3600 }};\n\
             \x20   }}\n"
        ),
    );
    write(
        dir,
        "prosody.cfg.lua",
        "admins = { \"focus@auth.\" .. \"meet.example.org\" }\nInclude \"conf.d/*.cfg.lua\"\n",
    )
}

#[test]
fn check_follows_prosody_includes_and_evaluates_concatenation() {
    let dir = tmpdir("include");
    let out = dir.join("init");
    assert!(ferroturn(
        &[
            "jitsi",
            "init",
            "--host",
            "turn.example.org",
            "--out",
            &out.display().to_string()
        ],
        &[]
    )
    .status
    .success());
    let conf = out.join("turnserver.conf").display().to_string();
    let secret = secret_of(&out);
    let main = prosody_layout(&dir.join("ok"), &secret, "3000 + 478");
    let o = ferroturn(&["jitsi", "check", "--conf", &conf, &main], &[]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains(&format!("OK: {main} agrees")), "{text}");
    assert!(!text.contains("note:"), "everything was evaluated: {text}");

    // A wrong port in the included file is found and placed there.
    let main = prosody_layout(&dir.join("port"), &secret, "3479");
    let o = ferroturn(&["jitsi", "check", "--conf", &conf, &main], &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("port mismatch") && text.contains("meet.example.org.cfg.lua line 6"),
        "{text}"
    );

    // Prosody refuses a missing included file; so does check.
    let broken = write(
        &dir,
        "broken.cfg.lua",
        "external_services = {}\nInclude \"nowhere.cfg.lua\"\n",
    );
    let o = ferroturn(&["jitsi", "check", "--conf", &conf, &broken], &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("nowhere.cfg.lua") && text.contains("refuses to start"),
        "{text}"
    );
}

#[test]
fn credentials_take_the_secret_from_the_environment_layer_too() {
    let args = [
        "jitsi",
        "credentials",
        "--json",
        "--now",
        "1700000000",
        "--user",
        "alice",
    ];
    let from_env = ferroturn(
        &[&args[..], &["--conf", "docker/turnserver.conf"]].concat(),
        &[("FERROTURN_STATIC_AUTH_SECRET", "env-secret-0123456789")],
    );
    assert!(from_env.status.success(), "{from_env:?}");
    let direct = ferroturn(
        &[&args[..], &["--secret", "env-secret-0123456789"]].concat(),
        &[],
    );
    assert_eq!(stdout(&from_env), stdout(&direct));
}
