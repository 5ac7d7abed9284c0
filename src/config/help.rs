//! `--help` text, rendered from the option table so it cannot drift from what is parsed.

use std::fmt::Write as _;

use super::options::{Arity, Group, OptionSpec, OPTIONS};

/// Column where help text starts; longer option columns push the text to the next line.
const HELP_COLUMN: usize = 42;

/// The subcommands `main` dispatches on, with one line each.
pub const SUBCOMMANDS: &[(&str, &str)] = &[
    (
        "jitsi",
        "Write and check the Jitsi/Prosody side of the TURN secret (init, check, credentials)",
    ),
    (
        "admin",
        "Client of the admin API: status, sessions, end, revoke-user, revoke-secret, drain",
    ),
    (
        "bench",
        "TURN load generator: fixed load, ramp to capacity, allocation rate, memory per allocation",
    ),
];

/// The full `--help` text.
pub fn render() -> String {
    let mut out = String::new();
    out.push_str("ferroturn: TURN/STUN relay, a drop-in replacement for coturn\n\n");
    out.push_str("Usage: ferroturn [-c FILE | -n] [OPTIONS]\n");
    out.push_str("       ferroturn <SUBCOMMAND> [ARGS]   (each takes --help)\n\n");
    out.push_str("Subcommands:\n");
    for (name, what) in SUBCOMMANDS {
        let _ = writeln!(out, "  {name:<10}{what}");
    }
    out.push('\n');
    out.push_str(
        "Settings are read from turnserver.conf (same syntax as coturn: key=value, key value or a\n\
         bare flag per line), then from FERROTURN_<OPTION> environment variables (e.g.\n\
         FERROTURN_STATIC_AUTH_SECRET; lists are comma-separated), then from the command line;\n\
         later sources override earlier ones and repeatable options accumulate. Flags accept an\n\
         optional =on/off.\n",
    );
    for group in Group::ALL {
        let supported: Vec<&OptionSpec> = OPTIONS
            .iter()
            .filter(|o| o.group == group && o.is_supported())
            .collect();
        if !supported.is_empty() {
            let _ = write!(out, "\n{}:\n", group.title());
            for o in supported {
                render_option(&mut out, o);
            }
        }
    }
    let ignored: Vec<&str> = OPTIONS
        .iter()
        .filter(|o| !o.is_supported())
        .map(|o| o.name)
        .collect();
    out.push_str("\nRecognised coturn options that ferroturn ignores (with a warning):\n");
    wrap_words(&mut out, &ignored, "  ", 100);
    out
}

fn render_option(out: &mut String, o: &OptionSpec) {
    let mut left = String::from("  ");
    match o.short {
        Some(c) => {
            let _ = write!(left, "-{c}, ");
        }
        None => left.push_str("    "),
    }
    let _ = write!(left, "--{}", o.name);
    match o.arity {
        Arity::Flag => {}
        Arity::Required => {
            let _ = write!(left, " <{}>", o.value_name);
        }
        Arity::Optional => {
            let _ = write!(left, "[=<{}>]", o.value_name);
        }
    }
    let mut help = o.help.to_string();
    if let Some(d) = o.default {
        let _ = write!(help, " [default: {d}]");
    }
    if left.len() + 2 > HELP_COLUMN {
        let _ = writeln!(out, "{left}\n{:HELP_COLUMN$}{help}", "");
    } else {
        let _ = writeln!(out, "{left:HELP_COLUMN$}{help}");
    }
}

fn wrap_words(out: &mut String, words: &[&str], indent: &str, width: usize) {
    let mut line = String::from(indent);
    for (i, w) in words.iter().enumerate() {
        let sep = if i + 1 < words.len() { "," } else { "" };
        if line.len() > indent.len() && line.len() + w.len() + 2 > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        let _ = write!(line, "{w}{sep} ");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_implemented_option_with_its_short_alias() {
        let h = render();
        for o in OPTIONS.iter().filter(|o| o.is_supported()) {
            assert!(h.contains(&format!("--{}", o.name)), "missing --{}", o.name);
            if let Some(c) = o.short {
                assert!(h.contains(&format!("-{c}, --{}", o.name)), "missing -{c}");
            }
        }
    }

    #[test]
    fn lists_every_ignored_option() {
        let h = render();
        for o in OPTIONS.iter().filter(|o| !o.is_supported()) {
            assert!(h.contains(o.name), "missing {}", o.name);
        }
    }

    #[test]
    fn shows_usage_groups_and_defaults() {
        let h = render();
        assert!(h.contains("Usage: ferroturn"));
        for g in Group::ALL {
            assert!(h.contains(&format!("{}:\n", g.title())), "{}", g.title());
        }
        assert!(h.contains("-p, --listening-port <PORT>"));
        assert!(h.contains("[default: 3478]"));
        assert!(h.contains("--stale-nonce[=<SECONDS>]"));
        for sub in ["jitsi", "admin", "bench"] {
            assert!(
                h.contains(&format!("\n  {sub} ")),
                "help lacks the {sub} subcommand"
            );
        }
    }

    #[test]
    fn lines_are_reasonably_short() {
        for line in render().lines() {
            assert!(line.chars().count() <= 200, "{line}");
        }
    }
}
