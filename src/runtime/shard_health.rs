//! Whether every shard thread is still alive. A shard that dies (a panic, an I/O error from its
//! event loop, or a return while the relay is not stopping) is reported here by its own thread
//! at once: `/readyz` turns red and the main loop exits non-zero, so a supervisor (systemd,
//! Kubernetes, Docker) restarts a relay that would otherwise keep running short of a shard,
//! its clients unanswered.

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// A dead shard: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFailure {
    /// The shard's index.
    pub shard: usize,
    /// What ended it, in words.
    pub cause: String,
}

/// The shards' deaths, written by the dying threads and read by the health checks.
#[derive(Debug, Default)]
pub struct ShardHealth {
    dead: AtomicUsize,
    first: Mutex<Option<ShardFailure>>,
}

impl ShardHealth {
    /// Records that `shard` died of `cause`.
    pub fn report(&self, shard: usize, cause: String) {
        tracing::error!(shard, cause = %cause, "relay thread died");
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(ShardFailure { shard, cause });
        self.dead.fetch_add(1, Ordering::Release);
    }

    /// Whether no shard has died.
    pub fn all_alive(&self) -> bool {
        self.dead.load(Ordering::Acquire) == 0
    }

    /// The first shard that died, if any.
    pub fn failure(&self) -> Option<ShardFailure> {
        if self.all_alive() {
            return None;
        }
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Runs `body` as the thread of shard `shard` and reports to `health` when it ends for any
/// reason but `stopping` being set: a panic (caught, so the report is made), an error, or a
/// plain return. Returns what the body returned, a panic as an error.
pub fn supervise(
    shard: usize,
    health: &ShardHealth,
    stopping: &AtomicBool,
    body: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let result = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(io::Error::other(format!(
            "panicked: {}",
            panic_message(payload.as_ref())
        ))),
    };
    match &result {
        Err(e) => health.report(shard, e.to_string()),
        Ok(()) if !stopping.load(Ordering::Relaxed) => {
            health.report(shard, "left its event loop unasked".to_string())
        }
        Ok(()) => {}
    }
    result
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stopping: bool, body: impl FnOnce() -> io::Result<()>) -> (ShardHealth, bool) {
        let health = ShardHealth::default();
        let flag = AtomicBool::new(stopping);
        let ok = supervise(3, &health, &flag, body).is_ok();
        (health, ok)
    }

    #[test]
    fn a_panic_is_caught_and_reported_with_its_message() {
        let (health, ok) = run(false, || panic!("boom {}", 7));
        assert!(!ok);
        assert!(!health.all_alive());
        let f = health.failure().unwrap();
        assert_eq!(f.shard, 3);
        assert_eq!(f.cause, "panicked: boom 7");
    }

    #[test]
    fn an_event_loop_error_is_reported() {
        let (health, ok) = run(false, || Err(io::Error::other("epoll_wait: EBADF")));
        assert!(!ok);
        assert_eq!(health.failure().unwrap().cause, "epoll_wait: EBADF");
    }

    #[test]
    fn returning_while_not_stopping_is_a_death_and_while_stopping_is_not() {
        let (health, ok) = run(false, || Ok(()));
        assert!(ok);
        assert_eq!(
            health.failure().unwrap().cause,
            "left its event loop unasked"
        );
        let (health, _) = run(true, || Ok(()));
        assert!(health.all_alive());
        assert_eq!(health.failure(), None);
    }

    #[test]
    fn the_first_death_is_kept() {
        let health = ShardHealth::default();
        health.report(1, "first".into());
        health.report(0, "second".into());
        assert_eq!(health.failure().unwrap().shard, 1);
    }

    /// `/readyz` of a relay whose shard died: red, and saying why; green before.
    #[test]
    fn readyz_turns_red_when_a_shard_dies() {
        use crate::config::Config;
        use crate::http::server::Request;
        use crate::proto::peer_policy::ServerAddresses;
        use crate::runtime::connection_limits::ConnectionLimits;
        use crate::runtime::control::{Control, ShardFlags, ShardHandles};
        use crate::runtime::core_setup::shared_from_config;
        use std::sync::Arc;

        let config = Config::default();
        let flags = Arc::new(ShardFlags::default());
        let control = Control::new(
            ShardHandles::default(),
            Arc::new(shared_from_config(&config).unwrap()),
            Arc::new(ConnectionLimits::new(0, 0)),
            flags.clone(),
            config,
            ServerAddresses::default(),
        );
        control.set_ready();
        let readyz = crate::http::api::metrics_handler(control.clone(), "/metrics".into());
        let ask = || {
            readyz(&Request {
                method: "GET".into(),
                path: "/readyz".into(),
                query: String::new(),
                bearer: None,
                body: Vec::new(),
            })
        };
        assert_eq!(ask().status, 200);
        assert!(control.shard_failure().is_none());

        let stopping = AtomicBool::new(false);
        let _ = supervise(1, &flags.health, &stopping, || panic!("injected"));
        let red = ask();
        assert_eq!(red.status, 503);
        assert_eq!(red.body, b"a relay thread died\n");
        assert!(!control.is_ready());
        assert_eq!(control.shard_failure().unwrap().shard, 1);
    }
}
