//! The relay's configuration as the server would load it: the `turnserver.conf` named on the
//! command line with the `FERROTURN_*` environment layered over it by the server's own loader
//! ([`crate::config::load_with_search`]), so `jitsi check` sees a secret or a port that a
//! compose file or a systemd `EnvironmentFile` passes in the environment.

use std::path::{Path, PathBuf};

use super::parse_env;
use crate::config::options::ENV_PREFIX;
use crate::config::{load_with_search, Config, LoadOutcome};

/// Variables that steer which file the server reads; `--conf` already names it.
const STEERING: [&str; 2] = ["FERROTURN_CONFIG", "FERROTURN_NO_CONFIG"];

/// The loaded configuration and what the environment contributed.
#[derive(Debug)]
pub struct RelayConf {
    /// The effective configuration.
    pub config: Config,
    /// `VAR (from WHERE)` for every variable applied over the file, values left out.
    pub applied: Vec<String>,
    /// Variables ignored, with the reason.
    pub ignored: Vec<String>,
}

/// Loads `conf` with `process_env` (the caller's environment) and then each of `env_files`
/// (docker/systemd `KEY=VALUE` files) over it, a later source replacing an earlier one's
/// variable of the same name, as `docker run --env-file` and systemd do.
pub fn load(
    conf: &Path,
    process_env: &[(String, String)],
    env_files: &[PathBuf],
) -> Result<RelayConf, String> {
    let mut vars: Vec<(String, String, String)> = process_env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone(), "the environment".to_string()))
        .collect();
    for file in env_files {
        let text = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed = parse_env::parse(&String::from_utf8_lossy(&text));
        for (k, v) in parsed
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        {
            vars.retain(|(name, _, _)| *name != k);
            vars.push((k, v, file.display().to_string()));
        }
    }
    let mut ignored = Vec::new();
    vars.retain(|(k, _, from)| {
        let steering = STEERING.contains(&k.as_str());
        if steering {
            ignored.push(format!("{k} (from {from}): --conf names the file"));
        }
        !steering
    });
    let applied = vars
        .iter()
        .filter(|(_, v, _)| !v.is_empty())
        .map(|(k, _, from)| format!("{k} (from {from})"))
        .collect();
    let env: Vec<(String, String)> = vars.into_iter().map(|(k, v, _)| (k, v)).collect();
    let args = ["-c".to_string(), conf.display().to_string()];
    match load_with_search(&args, &env, &[]) {
        Ok(LoadOutcome::Run(config)) => Ok(RelayConf {
            config,
            applied,
            ignored,
        }),
        Ok(_) => Err("unexpected help/version request".into()),
        Err(e) => {
            let hint = if e.to_string().contains("no static-auth-secret") {
                "\n(a container or systemd unit may pass it as FERROTURN_STATIC_AUTH_SECRET: set \
                 that in the environment of this command, or give the file with --env-file)"
            } else {
                ""
            };
            Err(format!("{} does not load:\n{e}{hint}", conf.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_conf::env;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ferroturn-relay-conf-{}-{}",
            std::process::id(),
            crate::jitsi::secret::generate()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn environment_then_env_files_layer_over_the_file() {
        let conf = tmp(
            "turnserver.conf",
            "use-auth-secret\nrealm=r\nmin-port=49000\nmax-port=49020\n",
        );
        let file = tmp(
            "relay.env",
            "# systemd EnvironmentFile\nFERROTURN_MAX_PORT=49100\nFERROTURN_STATIC_AUTH_SECRET=from-file\nOTHER=x\n",
        );
        let r = load(
            &conf,
            &env(&[
                ("FERROTURN_STATIC_AUTH_SECRET", "from-env"),
                ("FERROTURN_MIN_PORT", "49010"),
                ("PATH", "/bin"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(r.config.auth.static_auth_secrets, ["from-env"]);
        assert_eq!(
            (r.config.relay.min_port, r.config.relay.max_port),
            (49010, 49020)
        );
        let r = load(
            &conf,
            &env(&[
                ("FERROTURN_STATIC_AUTH_SECRET", "from-env"),
                ("FERROTURN_MIN_PORT", "49010"),
            ]),
            std::slice::from_ref(&file),
        )
        .unwrap();
        // The file replaces the variable, it does not add a second secret.
        assert_eq!(r.config.auth.static_auth_secrets, ["from-file"]);
        assert_eq!(
            (r.config.relay.min_port, r.config.relay.max_port),
            (49010, 49100)
        );
        assert_eq!(r.applied.len(), 3, "{:?}", r.applied);
        assert!(r
            .applied
            .iter()
            .any(|a| a.starts_with("FERROTURN_MAX_PORT (from ") && a.contains("relay.env")));
    }

    #[test]
    fn steering_variables_are_ignored_and_bad_values_are_errors() {
        let conf = tmp("turnserver.conf", "use-auth-secret\nstatic-auth-secret=s\n");
        let r = load(
            &conf,
            &env(&[
                ("FERROTURN_NO_CONFIG", "1"),
                ("FERROTURN_CONFIG", "/nonexistent"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            r.config.auth.static_auth_secrets,
            ["s"],
            "the file was read"
        );
        assert_eq!(r.ignored.len(), 2);
        let e = load(&conf, &env(&[("FERROTURN_MIN_PORT", "many")]), &[]).unwrap_err();
        assert!(e.contains("FERROTURN_MIN_PORT"), "{e}");
        let bare = tmp("turnserver.conf", "use-auth-secret\n");
        let e = load(&bare, &[], &[]).unwrap_err();
        assert!(
            e.contains("FERROTURN_STATIC_AUTH_SECRET") && e.contains("--env-file"),
            "{e}"
        );
        let e = load(&conf, &[], &[PathBuf::from("/nonexistent/env")]).unwrap_err();
        assert!(e.contains("/nonexistent/env"), "{e}");
    }
}
