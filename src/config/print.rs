//! `--print-config`: the effective configuration in `turnserver.conf` syntax, each value preceded
//! by a comment saying where it came from (default, file:line, environment variable, command line). Secrets are
//! never printed.

use std::fmt::Write as _;

use super::options::{Arity, Opt, OptionSpec, OPTIONS};
use super::{Config, Setting};

/// Options whose values are secrets: shown as their length only.
const SECRET_OPTIONS: &[&str] = &["static-auth-secret", "admin-token", "rest-api-token"];

/// The effective configuration as text.
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    out.push_str(
        "# ferroturn effective configuration (defaults < file < environment < command line)\n",
    );
    match &config.config_file {
        Some(f) => {
            let _ = writeln!(out, "# file: {}", f.display());
        }
        None => out.push_str("# file: none\n"),
    }
    for spec in OPTIONS.iter().filter(|o| o.is_supported() && !o.cli_only) {
        let set: Vec<&Setting> = config
            .settings
            .iter()
            .filter(|s| !s.ignored && s.name == spec.name)
            .collect();
        // Options that only confirm a built-in behaviour are worth a line only when given.
        let no_op = matches!(spec.opt, Opt::AlreadyDefault | Opt::NoMulticastPeers);
        if set.is_empty() {
            if !no_op {
                unset_line(&mut out, spec, config);
            }
            continue;
        }
        let shown: Vec<&Setting> = if spec.list {
            set
        } else {
            set.last().copied().into_iter().collect()
        };
        for s in shown {
            line(
                &mut out,
                &assignment(spec, s.value.as_deref()),
                &s.source.to_string(),
            );
        }
    }
    let ignored: Vec<&Setting> = config.settings.iter().filter(|s| s.ignored).collect();
    if !ignored.is_empty() {
        out.push_str("\n# recognised coturn options that ferroturn ignores:\n");
        for s in ignored {
            let text = match &s.value {
                Some(v) => format!("#{}={v}", s.name),
                None => format!("#{}", s.name),
            };
            line(&mut out, &text, &format!("{} (ignored)", s.source));
        }
    }
    if !config.overrides.is_empty() {
        out.push_str("\n# overridden by a higher layer:\n");
        for o in &config.overrides {
            let _ = writeln!(out, "#   {o}");
        }
    }
    out
}

/// `name=value` (or a bare flag), with secrets hidden.
fn assignment(spec: &OptionSpec, value: Option<&str>) -> String {
    let Some(v) = value else {
        return spec.name.to_string();
    };
    if SECRET_OPTIONS.contains(&spec.name) {
        return format!("{}=<secret, {} characters>", spec.name, v.chars().count());
    }
    if spec.opt == Opt::User {
        let name = v.split_once(':').map_or(v, |(n, _)| n);
        return format!("{}={name}:<secret>", spec.name);
    }
    format!("{}={v}", spec.name)
}

/// An option nobody set: its default, or what ferroturn does without it.
fn unset_line(out: &mut String, spec: &OptionSpec, config: &Config) {
    // coturn's implications: a secret switches use-auth-secret on, users switch lt-cred-mech on.
    let implied = match spec.opt {
        Opt::UseAuthSecret if config.auth.use_auth_secret => Some("implied by static-auth-secret"),
        Opt::LtCredMech if config.auth.lt_cred_mech => Some("implied by user"),
        _ => None,
    };
    if let Some(why) = implied {
        line(out, spec.name, why);
        return;
    }
    match (spec.arity, spec.default) {
        (Arity::Flag, _) => line(out, &format!("{}=off", spec.name), "default"),
        (_, Some(d)) => line(out, &format!("{}={d}", spec.name), "default"),
        (_, None) => line(out, &format!("#{}=", spec.name), "not set (default)"),
    }
}

/// The source goes on the line above the value: turnserver.conf has no trailing comments, and
/// the output should read back as a file.
fn line(out: &mut String, text: &str, source: &str) {
    let _ = writeln!(out, "# {source}\n{text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_with_search, LoadOutcome};

    fn load(conf: &str, env: &[(&str, &str)], args: &[&str]) -> Config {
        let dir = std::env::temp_dir().join(format!(
            "ferroturn-print-{}-{}",
            std::process::id(),
            args.len() + env.len()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("turnserver.conf");
        std::fs::write(&file, conf).expect("write");
        let mut all = vec!["-c".to_string(), file.display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let outcome = load_with_search(&all, &env, &[]);
        let _ = std::fs::remove_dir_all(&dir);
        match outcome {
            Ok(LoadOutcome::Run(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    /// The value line starting with `start`, joined with its source comment: "SOURCE | VALUE".
    fn line_of(text: &str, start: &str) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let i = lines
            .iter()
            .position(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting with {start:?} in\n{text}"));
        let source = lines[i - 1].trim_start_matches("# ");
        format!("{} | {source}", lines[i])
    }

    #[test]
    fn every_value_names_its_source() {
        let c = load(
            "realm=file.example\nstatic-auth-secret=topsecretvalue\nmin-port=40000\nproc-user=turn\n",
            &[("FERROTURN_REALM", "env.example")],
            &["--max-port", "40100", "--fingerprint"],
        );
        let t = render(&c);
        let realm = line_of(&t, "realm=");
        assert!(realm.starts_with("realm=env.example"), "{realm}");
        assert!(
            realm.ends_with("| environment variable FERROTURN_REALM"),
            "{realm}"
        );
        for (start, source) in [
            ("min-port=40000", "turnserver.conf:3"),
            ("max-port=40100", "| command line"),
            ("fingerprint", "| command line"),
            ("listening-port=3478", "| default"),
            ("no-tcp=off", "| default"),
            ("#cert=", "not set (default)"),
            ("use-auth-secret", "implied by static-auth-secret"),
            ("#proc-user=turn", "turnserver.conf:4 (ignored)"),
        ] {
            assert!(line_of(&t, start).ends_with(source), "{start}: {t}");
        }
        assert!(
            t.contains("realm from environment variable FERROTURN_REALM overrides"),
            "{t}"
        );
        assert!(!t.contains("topsecretvalue"), "{t}");
        assert!(line_of(&t, "static-auth-secret=").contains("<secret, 14 characters>"));
    }

    #[test]
    fn lists_show_every_value_and_users_hide_passwords() {
        let c = load(
            "lt-cred-mech\nuser=alice:hunter2\nuser=bob:0x00112233445566778899aabbccddeeff\nallowed-peer-ip=10.0.0.5\nallowed-peer-ip=10.0.0.6\n",
            &[],
            &[],
        );
        let t = render(&c);
        assert!(line_of(&t, "allowed-peer-ip=10.0.0.5").ends_with("turnserver.conf:4"));
        assert!(line_of(&t, "allowed-peer-ip=10.0.0.6").ends_with("turnserver.conf:5"));
        assert!(t.contains("user=alice:<secret>") && t.contains("user=bob:<secret>"));
        assert!(!t.contains("hunter2") && !t.contains("00112233"), "{t}");
    }

    #[test]
    fn output_reads_back_as_the_same_configuration() {
        let c = load(
            "realm=a.example\nuse-auth-secret\nstatic-auth-secret=s\nmin-port=40000\nmax-port=40010\nlistening-ip=127.0.0.1\n",
            &[],
            &["--total-quota", "7"],
        );
        // Secrets are hidden, so put one back before reading the text as a file.
        let text = render(&c).replace(
            "static-auth-secret=<secret, 1 characters>",
            "static-auth-secret=s",
        );
        let again = crate::config::from_conf_str(&text, "printed").expect("printed config loads");
        assert_eq!(again.auth.realm, "a.example");
        assert_eq!((again.relay.min_port, again.relay.max_port), (40000, 40010));
        assert_eq!(again.limits.total_quota, 7);
        assert_eq!(again.listen.ips, c.listen.ips);
        assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    }
}
