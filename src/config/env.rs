//! `FERROTURN_<OPTION>` environment variables, for containers where editing a file is awkward.
//!
//! The variable name is the option name upper-cased with `-` turned into `_`
//! (`FERROTURN_STATIC_AUTH_SECRET`); `Verbose` is `FERROTURN_VERY_VERBOSE`. List options split
//! their value on commas. An empty variable counts as unset, because compose files and charts
//! often pass `VAR=` for "not configured". The environment is an input, never read here, so tests
//! can feed it.

use super::options::{self, Arity, Opt, ENV_PREFIX};
use super::{RawEntry, Source};

/// The settings found in the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvArgs {
    /// Settings keyed by canonical option name.
    pub entries: Vec<RawEntry>,
    /// Variables with our prefix that match no option, or options that make no sense here.
    pub warnings: Vec<String>,
    /// Bad values for the load-steering variables.
    pub errors: Vec<String>,
    /// `FERROTURN_CONFIG`: the configuration file (a `-c` on the command line wins).
    pub config: Option<String>,
    /// `FERROTURN_NO_CONFIG` is on.
    pub no_config: bool,
}

/// Picks the `FERROTURN_*` variables out of `env`.
pub fn parse(env: &[(String, String)]) -> EnvArgs {
    let mut out = EnvArgs::default();
    for (var, value) in env {
        if !var.starts_with(ENV_PREFIX) || value.is_empty() {
            continue;
        }
        let source = Source::Env { var: var.clone() };
        let Some(spec) = options::lookup_env(var) else {
            out.warnings
                .push(format!("{source}: does not name any option, ignored"));
            continue;
        };
        match spec.opt {
            Opt::Config => out.config = Some(value.clone()),
            Opt::NoConfig => match parse_bool(value) {
                Some(b) => out.no_config = b,
                None => out.errors.push(format!(
                    "{source}: {}: {value:?} is not a boolean (use 1/true/yes/on or 0/false/no/off)",
                    spec.name
                )),
            },
            _ if spec.cli_only => out.warnings.push(format!(
                "{source}: option \"{}\" is only valid on the command line, ignored",
                spec.name
            )),
            _ if spec.list => {
                for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    out.entries.push(RawEntry {
                        key: spec.name.to_string(),
                        value: Some(item.to_string()),
                        source: source.clone(),
                    });
                }
            }
            _ => out.entries.push(RawEntry {
                key: spec.name.to_string(),
                value: Some(match spec.arity {
                    Arity::Flag => value.trim().to_string(),
                    _ => value.clone(),
                }),
                source,
            }),
        }
    }
    out
}

/// Parses the boolean words accepted for flags everywhere (case-insensitive).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_conf::{env, key_values};

    #[test]
    fn maps_names_and_ignores_other_variables() {
        let e = parse(&env(&[
            ("PATH", "/bin"),
            ("FERROTURN_MIN_PORT", "50000"),
            ("FERROTURN_STATIC_AUTH_SECRET", "s3cret"),
            ("FERROTURN_FINGERPRINT", "yes"),
        ]));
        assert_eq!(
            key_values(&e.entries),
            vec![
                ("min-port", Some("50000")),
                ("static-auth-secret", Some("s3cret")),
                ("fingerprint", Some("yes")),
            ]
        );
        assert!(e.warnings.is_empty());
    }

    #[test]
    fn lists_split_on_commas() {
        let e = parse(&env(&[(
            "FERROTURN_EXTERNAL_IP",
            "203.0.113.5, 2001:db8::5,",
        )]));
        assert_eq!(
            key_values(&e.entries),
            vec![
                ("external-ip", Some("203.0.113.5")),
                ("external-ip", Some("2001:db8::5")),
            ]
        );
    }

    #[test]
    fn empty_variables_are_unset() {
        let e = parse(&env(&[("FERROTURN_REALM", "")]));
        assert!(e.entries.is_empty() && e.warnings.is_empty());
    }

    #[test]
    fn unknown_and_cli_only_variables_warn() {
        let e = parse(&env(&[
            ("FERROTURN_BOGUS", "1"),
            ("FERROTURN_CHECK_CONFIG", "1"),
        ]));
        assert_eq!(e.warnings.len(), 2, "{:?}", e.warnings);
        assert!(e.warnings[0].contains("FERROTURN_BOGUS"));
    }

    #[test]
    fn config_steering_variables() {
        let e = parse(&env(&[
            ("FERROTURN_CONFIG", "/etc/x.conf"),
            ("FERROTURN_NO_CONFIG", "on"),
        ]));
        assert_eq!(e.config.as_deref(), Some("/etc/x.conf"));
        assert!(e.no_config);
        assert_eq!(
            parse(&env(&[("FERROTURN_NO_CONFIG", "maybe")]))
                .errors
                .len(),
            1
        );
    }

    #[test]
    fn booleans() {
        for t in ["1", "true", "YES", "On"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "false", "No", "OFF"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("2"), None);
        assert_eq!(parse_bool(""), None);
    }
}
