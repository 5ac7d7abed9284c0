//! Command-line parsing with coturn's grammar (getopt_long): `--name value`, `--name=value`,
//! bare `--flag` (or `--flag=off`), short aliases `-p 3478` / `-p3478`, and bundled short flags
//! (`-vf`). Options whose value is optional take it only after `=`.

use super::options::{self, Arity, Opt, OptionSpec};
use super::{RawEntry, Source};

/// The command line, split into settings and the few options that steer the load itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliArgs {
    /// Settings, in order, keyed by canonical option name.
    pub entries: Vec<RawEntry>,
    /// Unknown options and similar non-fatal problems.
    pub warnings: Vec<String>,
    /// Missing values, positional arguments.
    pub errors: Vec<String>,
    /// `-h` / `--help`.
    pub help: bool,
    /// `--version`.
    pub version: bool,
    /// `--check-config`.
    pub check_config: bool,
    /// `--strict`.
    pub strict: bool,
    /// `--print-config`.
    pub print_config: bool,
    /// `-c FILE` / `--config FILE`.
    pub config: Option<String>,
    /// `-n` / `--no-config`.
    pub no_config: bool,
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> CliArgs {
    let mut out = CliArgs::default();
    let mut i = 0;
    let mut only_positional = false;
    // An optional-value option just seen without '=', to explain a following stray value.
    let mut bare_optional: Option<&str> = None;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let after_optional = bare_optional.take();
        if only_positional || !arg.starts_with('-') || arg == "-" {
            let hint = match after_optional {
                Some(name) => format!("--{name} takes its value only as --{name}={arg}"),
                None => "options start with --".to_string(),
            };
            out.errors.push(format!(
                "command line: unexpected argument {arg:?} ({hint})"
            ));
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match options::lookup(name) {
                Some(spec) => {
                    let value = match (spec.arity, inline) {
                        (Arity::Required, None) => match next_value(args, &mut i) {
                            Some(v) => Some(v),
                            None => {
                                out.errors
                                    .push(format!("command line: --{name} requires a value"));
                                continue;
                            }
                        },
                        (Arity::Optional, None) => {
                            bare_optional = Some(spec.name);
                            None
                        }
                        (_, v) => v,
                    };
                    out.apply(spec, value);
                }
                None => {
                    out.unknown(&format!("--{name}"), inline.is_none(), args, &mut i);
                }
            }
            continue;
        }
        // Short options, possibly bundled: -vf, -p3478, -p 3478.
        let shorts = &arg[1..];
        for (pos, c) in shorts.char_indices() {
            let rest = &shorts[pos + c.len_utf8()..];
            let Some(spec) = options::lookup_short(c) else {
                out.unknown(&format!("-{c}"), rest.is_empty(), args, &mut i);
                break;
            };
            if spec.arity == Arity::Flag {
                out.apply(spec, None);
                continue;
            }
            // getopt gives the rest of the word, or the next word, as the value; coturn warns
            // about `-p=3478` yet keeps the '=', which only produces a confusing error later.
            let value = if rest.is_empty() {
                next_value(args, &mut i)
            } else {
                Some(rest.strip_prefix('=').unwrap_or(rest).to_string())
            };
            match value {
                Some(v) => out.apply(spec, Some(v)),
                None => out.errors.push(format!(
                    "command line: -{c} ({}) requires a value",
                    spec.name
                )),
            }
            break;
        }
    }
    out
}

fn next_value(args: &[String], i: &mut usize) -> Option<String> {
    let v = args.get(*i)?.clone();
    *i += 1;
    Some(v)
}

impl CliArgs {
    fn apply(&mut self, spec: &'static OptionSpec, value: Option<String>) {
        match spec.opt {
            Opt::Help => self.help = true,
            Opt::Version => self.version = true,
            Opt::CheckConfig => self.check_config = true,
            Opt::Strict => self.strict = true,
            Opt::PrintConfig => self.print_config = true,
            Opt::NoConfig => self.no_config = true,
            Opt::Config => self.config = value,
            _ => self.entries.push(RawEntry {
                key: spec.name.to_string(),
                value,
                source: Source::CommandLine,
            }),
        }
    }

    /// An option missing from the table warns like an unknown file key. A following word that
    /// does not look like an option is taken as its value: positional arguments are errors
    /// anyway, so this keeps `--some-new-coturn-option value` a warning, not a failure.
    fn unknown(&mut self, shown: &str, may_take_next: bool, args: &[String], i: &mut usize) {
        self.warnings
            .push(format!("command line: unknown option \"{shown}\" ignored"));
        if may_take_next && args.get(*i).is_some_and(|a| !a.starts_with('-')) {
            *i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_conf::{args, key_values};

    /// Command lines and the entries they give, each with no error and no warning.
    #[test]
    fn spellings_give_entries_in_order() {
        type Entries = &'static [(&'static str, Option<&'static str>)];
        let cases: &[(&[&str], Entries)] = &[
            // Long options with a separate and an inline value.
            (
                &["--listening-port", "3479", "--min-port=50000"],
                &[
                    ("listening-port", Some("3479")),
                    ("min-port", Some("50000")),
                ],
            ),
            // Long flags with and without a value.
            (
                &["--fingerprint", "--no-tls=off"],
                &[("fingerprint", None), ("no-tls", Some("off"))],
            ),
            // Short options with a separate, an attached and an `=` value.
            (
                &["-p", "3479", "-p3480", "-p=3481"],
                &[
                    ("listening-port", Some("3479")),
                    ("listening-port", Some("3480")),
                    ("listening-port", Some("3481")),
                ],
            ),
            // Bundled short flags, the last one taking the next argument.
            (
                &["-vfr", "example.org"],
                &[
                    ("verbose", None),
                    ("fingerprint", None),
                    ("realm", Some("example.org")),
                ],
            ),
            // Aliases resolve to the canonical names.
            (
                &["--db", "/x", "--ca-file=/ca.pem"],
                &[("userdb", Some("/x")), ("CA-file", Some("/ca.pem"))],
            ),
            // An optional value is taken only with `=`.
            (
                &["--stale-nonce", "--stale-nonce=300"],
                &[("stale-nonce", None), ("stale-nonce", Some("300"))],
            ),
            // A value may start with a dash.
            (
                &["--static-auth-secret", "-secret-"],
                &[("static-auth-secret", Some("-secret-"))],
            ),
            // Unsupported options still consume their value.
            (
                &["--proc-user", "turnserver", "-d", "eth0", "--mobility"],
                &[
                    ("proc-user", Some("turnserver")),
                    ("listening-device", Some("eth0")),
                    ("mobility", None),
                ],
            ),
        ];
        for (argv, want) in cases {
            let c = parse(&args(argv));
            assert!(
                c.errors.is_empty() && c.warnings.is_empty(),
                "{argv:?}: {:?} {:?}",
                c.errors,
                c.warnings
            );
            assert_eq!(key_values(&c.entries), *want, "{argv:?}");
        }
    }

    #[test]
    fn an_optional_value_is_not_taken_from_the_next_argument() {
        let c = parse(&args(&["--stale-nonce", "300"]));
        assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
        assert!(c.errors[0].contains("--stale-nonce=300"), "{:?}", c.errors);
    }

    #[test]
    fn missing_value_is_an_error() {
        assert_eq!(parse(&args(&["--realm"])).errors.len(), 1);
        assert_eq!(parse(&args(&["-r"])).errors.len(), 1);
    }

    #[test]
    fn unknown_options_warn_and_swallow_their_value() {
        let c = parse(&args(&["--frobnicate", "7", "-Z", "--bogus=1", "-p", "1"]));
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("unknown option \"--frobnicate\""));
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(key_values(&c.entries), [("listening-port", Some("1"))]);
    }

    #[test]
    fn positional_arguments_are_errors() {
        let c = parse(&args(&["stray", "--", "--realm"]));
        assert_eq!(c.errors.len(), 2, "{:?}", c.errors);
        assert!(c.entries.is_empty());
    }

    #[test]
    fn load_steering_options() {
        let c = parse(&args(&["-c", "/etc/x.conf", "--check-config", "-n", "-h"]));
        assert_eq!(c.config.as_deref(), Some("/etc/x.conf"));
        assert!(c.check_config && c.no_config && c.help);
        assert!(c.entries.is_empty());
        let c = parse(&args(&["--config=/y.conf", "--help", "--version"]));
        assert_eq!(c.config.as_deref(), Some("/y.conf"));
        assert!(c.help && c.version);
        assert_eq!(
            parse(&args(&["-c/z.conf"])).config.as_deref(),
            Some("/z.conf")
        );
    }
}
