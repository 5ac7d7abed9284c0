//! Test helpers: command lines and environments as the loader takes them, and a configuration
//! loaded from `turnserver.conf` text placed after a minimal valid authentication setup, so a
//! test writes only the lines it is about. Those start on line 3 of `turnserver.conf`, which is
//! how messages name them.

use super::{from_conf_str, Config, ConfigError, RawEntry};

/// A command line (without the program name) as [`super::load`] takes it.
pub(crate) fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// An environment as [`super::load`] takes it.
pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Entries as (option, value) pairs, to compare with what a reader should give.
pub(crate) fn key_values(entries: &[RawEntry]) -> Vec<(&str, Option<&str>)> {
    entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_deref()))
        .collect()
}

/// The lines every text is placed after (lines 1 and 2).
const AUTH: &str = "use-auth-secret\nstatic-auth-secret=s\n";

fn load(text: &str) -> Result<Config, ConfigError> {
    from_conf_str(&format!("{AUTH}{text}"), "turnserver.conf")
}

/// The configuration `text` makes; panics with the errors when it does not load.
pub(super) fn ok(text: &str) -> Config {
    load(text).unwrap_or_else(|e| panic!("unexpected error for {text:?}:\n{e}"))
}

/// The errors for `text`; panics when it loads.
pub(super) fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.messages,
    }
}

/// The one error for `text`; panics when it loads or gives several.
pub(super) fn one_error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    e.into_iter().next().unwrap_or_default()
}
