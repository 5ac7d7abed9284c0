//! Counters of operator actions (configuration and certificate reloads), read by the metrics
//! endpoint so an alert can say that the last reload failed.

use crate::proto::counters::Counter;

/// Reload outcomes since start-up.
#[derive(Debug, Default)]
pub struct OpsStats {
    /// SIGHUP reloads applied.
    pub config_reloads_ok: Counter,
    /// SIGHUP reloads refused (the file did not load; the old configuration stays).
    pub config_reloads_failed: Counter,
    /// Certificate reloads (SIGUSR2 or a change on disk) that took the new pair.
    pub cert_reloads_ok: Counter,
    /// Certificate reloads that kept the old pair because the new one did not load.
    pub cert_reloads_failed: Counter,
}

impl OpsStats {
    /// Counts one configuration reload.
    pub fn config_reload(&self, ok: bool) {
        if ok {
            self.config_reloads_ok.inc()
        } else {
            self.config_reloads_failed.inc()
        }
    }

    /// Counts one certificate reload.
    pub fn cert_reload(&self, ok: bool) {
        if ok {
            self.cert_reloads_ok.inc()
        } else {
            self.cert_reloads_failed.inc()
        }
    }
}
