//! What a SIGHUP reload does: which options changed between two loads, and which of those the
//! running relay takes over; the rest need a restart. The split is the option table's
//! [`Reload`] column, so adding an option decides its reload behaviour in the same row.

use super::options::{lookup, Reload, OPTIONS};
use super::Config;

/// The options whose values differ between two loads, by name, in table order (secrets are
/// named, never shown): what a reload line reports.
pub fn changed_options(old: &Config, new: &Config) -> Vec<&'static str> {
    let values = |c: &Config, name: &str| -> Vec<Option<String>> {
        c.settings
            .iter()
            .filter(|s| !s.ignored && s.name == name)
            .map(|s| s.value.clone())
            .collect()
    };
    OPTIONS
        .iter()
        .filter(|o| o.is_supported() && !o.cli_only)
        .filter(|o| {
            let (a, b) = (values(old, o.name), values(new, o.name));
            // Single options: only the last setting applies.
            if o.list {
                a != b
            } else {
                a.last() != b.last()
            }
        })
        .map(|o| o.name)
        .collect()
}

/// What a reload does with the options that changed between two loads, split by the option
/// table's [`Reload`] column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Changed options the running relay takes over.
    pub applied: Vec<&'static str>,
    /// Changed options read only at start-up: named in the log as needing a restart.
    pub needs_restart: Vec<&'static str>,
}

/// The changed options between `old` and `new` ([`changed_options`]), split into those a
/// reload applies and those that need a restart.
pub fn reload_plan(old: &Config, new: &Config) -> ReloadPlan {
    let mut plan = ReloadPlan::default();
    for name in changed_options(old, new) {
        match lookup(name).map(|o| o.reload) {
            Some(Reload::Live) => plan.applied.push(name),
            _ => plan.needs_restart.push(name),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_conf_str;

    const BASE: &str = "use-auth-secret\nstatic-auth-secret=north\n";

    fn plan(before: &str, after: &str) -> ReloadPlan {
        let old = from_conf_str(&format!("{BASE}{before}"), "old.conf").unwrap();
        let new = from_conf_str(&format!("{BASE}{after}"), "new.conf").unwrap();
        reload_plan(&old, &new)
    }

    #[test]
    fn nothing_changed_is_an_empty_plan() {
        assert_eq!(plan("realm=a\n", "realm=a\n"), ReloadPlan::default());
    }

    #[test]
    fn live_options_are_applied() {
        let p = plan(
            "user-quota=1\nmax-bps=0\nrealm=a\n",
            "user-quota=2\nmax-bps=9000\nrealm=b\n",
        );
        assert_eq!(p.applied, ["realm", "user-quota", "max-bps"]);
        assert!(p.needs_restart.is_empty());
    }

    #[test]
    fn options_read_at_start_up_are_named_as_needing_a_restart() {
        // The options a reload used to ignore without a word.
        let p = plan(
            "",
            "rest-api-port=9700\nrest-api-address=127.0.0.2\nmax-tcp-connections=5\n\
             max-tcp-connections-per-ip=2\npoll-interval-ms=3\nsock-buf-size=1048576\n",
        );
        assert!(p.applied.is_empty(), "{p:?}");
        for name in [
            "rest-api-port",
            "rest-api-address",
            "max-tcp-connections",
            "max-tcp-connections-per-ip",
            "poll-interval-ms",
            "sock-buf-size",
        ] {
            assert!(p.needs_restart.contains(&name), "{name}: {p:?}");
        }
        let p = plan("", "poll-coalesce-us=300\n");
        assert_eq!(p.needs_restart, ["poll-coalesce-us"], "{p:?}");
    }

    #[test]
    fn a_mixed_change_is_split() {
        let p = plan(
            "listening-port=3478\n",
            "listening-port=3479\nstale-nonce=60\n",
        );
        assert_eq!(p.applied, ["stale-nonce"]);
        assert_eq!(p.needs_restart, ["listening-port"]);
    }

    #[test]
    fn removing_an_option_counts_as_a_change() {
        let p = plan("sock-buf-size=1048576\n", "");
        assert_eq!(p.needs_restart, ["sock-buf-size"]);
    }

    #[test]
    fn every_option_that_acts_has_a_policy_and_listeners_need_a_restart() {
        for o in OPTIONS.iter().filter(|o| o.is_supported() && !o.cli_only) {
            let starts_something = o.name.ends_with("-port")
                || o.name.ends_with("-address")
                || o.name.starts_with("listening-")
                || [
                    "relay-ip",
                    "relay-threads",
                    "cert",
                    "pkey",
                    "prometheus",
                    "log-file",
                ]
                .contains(&o.name);
            if starts_something {
                assert_eq!(o.reload, Reload::Restart, "{}", o.name);
            }
        }
    }
}
