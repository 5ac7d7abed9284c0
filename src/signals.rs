//! Process signals, received synchronously by the control thread.
//!
//! The signals are blocked before any shard thread starts, so every thread inherits the mask
//! and only the thread calling [`SignalSet::wait`] ever sees them.

/// The signals ferroturn reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: shut down.
    Terminate,
    /// SIGINT: shut down.
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

    /// Waits for the next handled signal.
    pub fn wait(&self) -> Signal {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: sigwait reads the set and writes one int.
            let rc = unsafe { libc::sigwait(&self.0, &mut sig) };
            if rc != 0 {
                continue;
            }
            match sig {
                libc::SIGTERM => return Signal::Terminate,
                libc::SIGINT => return Signal::Interrupt,
                libc::SIGHUP => return Signal::Hangup,
                libc::SIGUSR1 => return Signal::User1,
                libc::SIGUSR2 => return Signal::User2,
                _ => continue,
            }
        }
    }
}
