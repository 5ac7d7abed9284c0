//! The process collector Prometheus' client libraries export (`process_*`), read from
//! `/proc/self` at scrape time: CPU time, resident memory, open file descriptors against the
//! limit, threads and start time.

use std::fs;

/// One reading; a field is `None` when `/proc` does not say (not Linux, restricted procfs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<f64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<f64>,
    /// The soft RLIMIT_NOFILE.
    pub max_fds: Option<f64>,
    /// Threads.
    pub threads: Option<f64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

/// Reads the current process.
pub fn read() -> ProcessStats {
    // SAFETY: sysconf and getrlimit only read process settings into the given memory.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let mut stats = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s, ticks as f64, page as f64, boot_time()))
        .unwrap_or_default();
    stats.open_fds = fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as above.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        stats.max_fds = Some(limit.rlim_cur as f64);
    }
    stats
}

/// `btime` of /proc/stat: boot time, seconds since the epoch.
fn boot_time() -> Option<f64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Parses `/proc/self/stat` (proc(5)): fields after the parenthesised command name, which may
/// itself contain spaces and parentheses.
fn parse_stat(text: &str, ticks: f64, page: f64, boot: Option<f64>) -> Option<ProcessStats> {
    if ticks <= 0.0 || page <= 0.0 {
        return None;
    }
    let after = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; proc(5) numbers from 1.
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |field: usize| -> Option<f64> { f.get(field - 3)?.parse().ok() };
    let cpu = (num(14)? + num(15)?) / ticks;
    Some(ProcessStats {
        cpu_seconds: Some(cpu),
        threads: num(20),
        start_time_seconds: boot.and_then(|b| Some(b + num(22)? / ticks)),
        virtual_bytes: num(23),
        resident_bytes: num(24).map(|pages| pages * page),
        open_fds: None,
        max_fds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_an_awkward_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss ...
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 123456789 300 18446744073709551615";
        let s = parse_stat(line, 100.0, 4096.0, Some(1_700_000_000.0)).expect("parses");
        assert_eq!(s.cpu_seconds, Some(3.0));
        assert_eq!(s.threads, Some(7.0));
        assert_eq!(s.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(s.virtual_bytes, Some(123_456_789.0));
        assert_eq!(s.resident_bytes, Some(300.0 * 4096.0));
        assert!(parse_stat("garbage", 100.0, 4096.0, None).is_none());
    }

    #[test]
    fn reads_this_process() {
        let s = read();
        assert!(s.resident_bytes.is_some_and(|b| b > 0.0), "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 1.0), "{s:?}");
        assert!(s.max_fds.is_some_and(|n| n >= 1.0), "{s:?}");
        assert!(s.open_fds <= s.max_fds, "{s:?}");
    }
}
