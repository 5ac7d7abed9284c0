//! `ferroturn jitsi init`: writes the relay's and Prosody's files from one plan, never
//! overwriting without `--force`, and `--rotate` for a second secret.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::plan::Plan;
use super::secret::fingerprint;
use super::{render_conf, render_env, render_k8s, render_lua};

/// Names of the files written into the output directory.
pub mod names {
    /// The relay's configuration.
    pub const CONF: &str = "turnserver.conf";
    /// docker-jitsi-meet `.env` fragment.
    pub const ENV: &str = "jitsi-turn.env";
    /// Jitsi Meet web `custom-config.js`.
    pub const CUSTOM_CONFIG: &str = "custom-config.js";
    /// Kubernetes Secret.
    pub const SECRET: &str = "jitsi-turn-secret.yaml";
    /// jitsi-helm values fragment.
    pub const HELM: &str = "jitsi-helm-values.yaml";
    /// Prosody Lua fragment.
    pub const LUA: &str = "prosody-turn.cfg.lua";
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    /// File name inside the output directory.
    pub name: &'static str,
    /// Contents.
    pub text: String,
    /// Holds the secret: written readable by the owner only.
    pub secret: bool,
    /// Where it goes, for the summary.
    pub goes_to: &'static str,
}

/// Every file of a fresh setup.
pub fn files(plan: &Plan) -> Vec<OutFile> {
    vec![
        OutFile {
            name: names::CONF,
            text: render_conf::render(plan),
            secret: true,
            goes_to: "the relay: /etc/ferroturn/turnserver.conf (or /etc/coturn/ in the coturn container)",
        },
        OutFile {
            name: names::ENV,
            text: render_env::render_env(plan),
            secret: true,
            goes_to: "docker-jitsi-meet: append to its .env",
        },
        OutFile {
            name: names::CUSTOM_CONFIG,
            text: render_env::render_custom_config(plan),
            secret: false,
            goes_to: "docker-jitsi-meet: ~/.jitsi-meet-cfg/web/custom-config.js",
        },
        OutFile {
            name: names::SECRET,
            text: render_k8s::render_secret(plan),
            secret: true,
            goes_to: "Kubernetes: kubectl apply -n NAMESPACE -f",
        },
        OutFile {
            name: names::HELM,
            text: render_k8s::render_helm_values(plan),
            secret: false,
            goes_to: "Kubernetes: helm upgrade ... -f (jitsi-helm values)",
        },
        OutFile {
            name: names::LUA,
            text: render_lua::render(plan),
            secret: true,
            goes_to: "Prosody without docker: inside your Jitsi VirtualHost",
        },
    ]
}

/// What went wrong while writing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Files exist and `--force` was not given.
    #[error("refusing to overwrite existing files (use --force, or --rotate to add a secret): {}", .0.join(", "))]
    Exists(Vec<String>),
    /// `--rotate` without a configuration to rotate.
    #[error("--rotate needs the existing {0}; run init without --rotate first")]
    NothingToRotate(String),
    /// The configuration could not be edited.
    #[error(transparent)]
    Rotate(#[from] render_conf::RotateError),
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes a fresh setup into `dir`; returns the paths written.
pub fn write_fresh(
    plan: &Plan,
    dir: &Path,
    force: bool,
) -> Result<Vec<(PathBuf, OutFile)>, InitError> {
    let all = files(plan);
    if !force {
        let existing: Vec<String> = all
            .iter()
            .map(|f| dir.join(f.name))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(InitError::Exists(existing));
        }
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut written = Vec::new();
    for f in all {
        let path = dir.join(f.name);
        write_file(&path, &f.text, f.secret)?;
        written.push((path, f));
    }
    Ok(written)
}

/// What `--rotate` did.
#[derive(Debug)]
pub struct Rotated {
    /// Files written or edited.
    pub written: Vec<(PathBuf, OutFile)>,
    /// The secrets that were in turnserver.conf before.
    pub old_secrets: Vec<String>,
}

/// Adds `plan.secret` to the existing turnserver.conf in `dir` (keeping the old lines) and
/// rewrites the Prosody-side files with it. Files that carry no secret are written only when
/// missing.
pub fn rotate(plan: &Plan, dir: &Path, date: &str) -> Result<Rotated, InitError> {
    let conf_path = dir.join(names::CONF);
    if !conf_path.is_file() {
        return Err(InitError::NothingToRotate(conf_path.display().to_string()));
    }
    let existing = fs::read_to_string(&conf_path).map_err(io_err(&conf_path))?;
    let (edited, old_secrets) = render_conf::add_secret(
        &existing,
        &conf_path.display().to_string(),
        &plan.secret,
        date,
    )?;
    let mut written = Vec::new();
    for f in files(plan) {
        let path = dir.join(f.name);
        let text = if f.name == names::CONF {
            edited.clone()
        } else if f.secret || !path.exists() {
            f.text.clone()
        } else {
            continue;
        };
        write_file(&path, &text, f.secret)?;
        written.push((path, OutFile { text, ..f }));
    }
    Ok(Rotated {
        written,
        old_secrets,
    })
}

/// The instructions printed after a rotation.
pub fn retire_instructions(dir: &Path, old: &[String], ttl: u32) -> String {
    let conf = dir.join(names::CONF);
    let mut s = String::from(
        "Both secrets are valid now. To retire the old one:\n\
         1. Restart ferroturn so it loads the new line (SIGHUP reload is not available yet).\n\
         2. Deploy the new Prosody-side file(s) written above and restart Prosody.\n",
    );
    s.push_str(&format!(
        "3. Wait until credentials signed with the old secret have expired: TURN_TTL is {ttl} s.\n\
         4. Delete the old line(s) from {} and restart ferroturn:\n",
        conf.display()
    ));
    for secret in old {
        let prefix: String = secret.chars().take(12).collect();
        s.push_str(&format!(
            "     sed -i '/^static-auth-secret={prefix}/d' {}    # {}\n",
            conf.display(),
            fingerprint(secret)
        ));
    }
    s
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), InitError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if secret {
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(text.as_bytes()).map_err(io_err(path))?;
    if secret {
        // `mode` applies only when the file is created; an existing one is tightened too.
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    }
    Ok(())
}

/// `YYYY-MM-DD` (UTC) of a Unix time, for the comment `--rotate` writes.
pub fn utc_date(unix: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_conf_str;
    use crate::jitsi::plan::tests::sample;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ferroturn-jitsi-{name}-{}-{}",
            std::process::id(),
            crate::jitsi::secret::generate()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_all_files_and_never_overwrites_without_force() {
        let dir = tmp("fresh");
        let plan = sample();
        let w = write_fresh(&plan, &dir, false).unwrap();
        assert_eq!(w.len(), 6);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir.join(names::CONF))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let before = fs::read_to_string(dir.join(names::CONF)).unwrap();
        let mut other = sample();
        other.secret = "e".repeat(64);
        assert!(
            matches!(write_fresh(&other, &dir, false), Err(InitError::Exists(v)) if v.len() == 6)
        );
        assert_eq!(fs::read_to_string(dir.join(names::CONF)).unwrap(), before);
        write_fresh(&other, &dir, true).unwrap();
        assert!(fs::read_to_string(dir.join(names::CONF))
            .unwrap()
            .contains(&"e".repeat(64)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotate_keeps_old_secret_in_conf_and_moves_prosody_to_the_new() {
        let dir = tmp("rotate");
        let plan = sample();
        assert!(matches!(
            rotate(&plan, &dir, "d"),
            Err(InitError::NothingToRotate(_))
        ));
        write_fresh(&plan, &dir, false).unwrap();
        let mut next = sample();
        next.secret = "f".repeat(64);
        let r = rotate(&next, &dir, "2025-01-01").unwrap();
        assert_eq!(r.old_secrets, [plan.secret.as_str()]);
        let conf = from_conf_str(&fs::read_to_string(dir.join(names::CONF)).unwrap(), "c").unwrap();
        assert_eq!(
            conf.auth.static_auth_secrets,
            [next.secret.clone(), plan.secret.clone()]
        );
        let env = fs::read_to_string(dir.join(names::ENV)).unwrap();
        assert!(env.contains(&next.secret) && !env.contains(&plan.secret));
        let text = retire_instructions(&dir, &r.old_secrets, 86_400);
        assert!(text.contains(&format!("/^static-auth-secret={}/d", &plan.secret[..12])));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
    }
}
