//! Process signals, received synchronously by the control thread.
//!
//! The signals are blocked before any shard thread starts, so every thread inherits the mask
//! and only the thread calling [`SignalSet::wait_timeout`] ever sees them.

use std::time::Duration;

/// The signals ferroturn reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: drain with a deadline, then exit.
    Terminate,
    /// SIGINT: stop now.
    Interrupt,
    /// SIGHUP: reload the configuration.
    Hangup,
    /// SIGUSR1: start draining.
    User1,
    /// SIGUSR2: reload certificates.
    User2,
}

/// A blocked set of signals to wait on.
pub struct SignalSet(libc::sigset_t);

const HANDLED: [libc::c_int; 5] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

impl SignalSet {
    /// Blocks the handled signals in the calling thread (and the threads it starts later).
    pub fn block() -> SignalSet {
        // SAFETY: sigset manipulation on a local, then pthread_sigmask for this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in HANDLED {
                libc::sigaddset(&mut set, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            SignalSet(set)
        }
    }

    /// Waits up to `timeout` for the next handled signal.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Signal> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: sigtimedwait reads the set and the timeout; no siginfo is requested.
        let sig = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        match sig {
            libc::SIGTERM => Some(Signal::Terminate),
            libc::SIGINT => Some(Signal::Interrupt),
            libc::SIGHUP => Some(Signal::Hangup),
            libc::SIGUSR1 => Some(Signal::User1),
            libc::SIGUSR2 => Some(Signal::User2),
            _ => None,
        }
    }
}
