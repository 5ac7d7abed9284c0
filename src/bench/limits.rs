//! Process limits and the target-address guard.

use std::net::SocketAddr;

/// Raises the open-file limit to the hard limit (each allocation needs its own socket);
/// returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

/// Refuses targets off this machine unless explicitly allowed: the tool is a load generator.
pub fn check_target(server: SocketAddr, allow_non_loopback: bool) -> Result<(), String> {
    if server.ip().is_loopback() || allow_non_loopback {
        Ok(())
    } else {
        Err(format!(
            "refusing to load {server}: only loopback targets (127.0.0.0/8, ::1) unless --allow-non-loopback"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_by_default() {
        assert!(check_target("127.0.0.1:3478".parse().unwrap(), false).is_ok());
        assert!(check_target("[::1]:3478".parse().unwrap(), false).is_ok());
        assert!(check_target("192.0.2.1:3478".parse().unwrap(), false).is_err());
        assert!(check_target("192.0.2.1:3478".parse().unwrap(), true).is_ok());
    }

    #[test]
    fn nofile_is_at_least_what_it_was() {
        assert!(raise_nofile() >= 256);
    }
}
