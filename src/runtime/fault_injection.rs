//! TEST-ONLY fault injection, compiled only with the cargo feature `fault-injection` (off by
//! default, never in release builds or packages): lets a test make a shard thread panic, to
//! prove that a dying relay thread is noticed (`tests/shard_death.rs`).
//!
//! When the environment variable [`PANIC_FILE_VAR`] names a file, every shard panics at the
//! first turn of its event loop after that file has appeared.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The variable naming the trigger file.
pub const PANIC_FILE_VAR: &str = "FAULT_INJECTION_SHARD_PANIC_FILE";

/// Panics when the trigger file exists.
pub fn maybe_panic(shard: usize) {
    static TRIGGER: OnceLock<Option<PathBuf>> = OnceLock::new();
    let trigger = TRIGGER.get_or_init(|| std::env::var_os(PANIC_FILE_VAR).map(PathBuf::from));
    if let Some(path) = trigger {
        if path.exists() {
            panic!(
                "fault injection: shard {shard} panics on request ({})",
                path.display()
            );
        }
    }
}
