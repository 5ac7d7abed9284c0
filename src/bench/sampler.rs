//! Reads CPU time and memory of a process from /proc, and CPU steal from /proc/stat.

use std::time::Instant;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime, seconds.
    pub cpu_s: f64,
    /// VmRSS, KiB.
    pub rss_kib: u64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime in seconds from the text of /proc/PID/stat.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the file, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// VmRSS in KiB from the text of /proc/PID/status.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The /proc directory of process `pid` (0 = this process).
fn proc_dir(pid: u32) -> String {
    if pid == 0 {
        "/proc/self".to_string()
    } else {
        format!("/proc/{pid}")
    }
}

/// Samples a process; `None` when it is gone. `pid` 0 means this process.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let dir = proc_dir(pid);
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    Some(ProcSample {
        at: Instant::now(),
        cpu_s: parse_stat_cpu(&stat)?,
        rss_kib: parse_status_rss(&status)?,
    })
}

/// Open file descriptors of process `pid` (0 = this process).
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(
        std::fs::read_dir(format!("{}/fd", proc_dir(pid)))
            .ok()?
            .count(),
    )
}

/// CPU of a process between two samples, as a fraction of one core.
pub fn cpu_share(a: &ProcSample, b: &ProcSample) -> f64 {
    let wall = b.at.saturating_duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        0.0
    } else {
        (b.cpu_s - a.cpu_s) / wall
    }
}

/// Machine-wide (total, steal) jiffies from /proc/stat.
pub fn steal_counters() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_proc_stat(&text)
}

/// (total, steal) from the first line of /proc/stat.
pub fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let total: u64 = nums.iter().take(8).sum();
    Some((total, *nums.get(7)?))
}

/// Busy time of one CPU in seconds since boot (user + nice + system + irq + softirq from its
/// /proc/stat line): where a kernel fast path's softirq work shows, which the server process's
/// own CPU time never includes.
pub fn core_sample(cpu: usize) -> Option<CoreSample> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let (busy, irq) = parse_core_busy(&text, cpu)?;
    Some(CoreSample {
        at: Instant::now(),
        busy_s: busy as f64 / clock_ticks(),
        irq_s: irq as f64 / clock_ticks(),
    })
}

/// One reading of a CPU's counters.
#[derive(Debug, Clone, Copy)]
pub struct CoreSample {
    /// When it was taken.
    pub at: Instant,
    /// user + nice + system + irq + softirq, seconds.
    pub busy_s: f64,
    /// irq + softirq, seconds: the part no process is charged for.
    pub irq_s: f64,
}

/// (busy, irq + softirq) jiffies of `cpuN` in the text of /proc/stat.
pub fn parse_core_busy(text: &str, cpu: usize) -> Option<(u64, u64)> {
    let name = format!("cpu{cpu}");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let at = |i: usize| nums.get(i).copied().unwrap_or(0);
    Some((at(0) + at(1) + at(2) + at(5) + at(6), at(5) + at(6)))
}

/// Steal between two readings, as a fraction of all CPU time.
pub fn steal_share(a: (u64, u64), b: (u64, u64)) -> f64 {
    let total = b.0.saturating_sub(a.0);
    if total == 0 {
        0.0
    } else {
        b.1.saturating_sub(a.1) as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (turn server) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 3 0 100 200000000 3000 18446744073709551615";
        let cpu = parse_stat_cpu(stat).unwrap();
        assert!((cpu - 400.0 / clock_ticks()).abs() < 1e-9);
        assert_eq!(
            parse_status_rss("Name:\tx\nVmRSS:\t   12345 kB\n"),
            Some(12345)
        );
        assert_eq!(parse_status_rss("Name:\tx\n"), None);
        let per_core =
            "cpu  9 9 9 9 9 9 9 9\ncpu0 1 2 3 400 5 6 7 8 0 0\ncpu1 10 0 20 5 0 3 40 1\n";
        assert_eq!(
            parse_core_busy(per_core, 0),
            Some((1 + 2 + 3 + 6 + 7, 6 + 7))
        );
        assert_eq!(
            parse_core_busy(per_core, 1),
            Some((10 + 20 + 3 + 40, 3 + 40))
        );
        assert_eq!(parse_core_busy(per_core, 2), None);
        let ps = "cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_proc_stat(ps), Some((1000, 35)));
        assert!((steal_share((1000, 35), (2000, 135)) - 0.1).abs() < 1e-9);
    }

    #[test]
    fn samples_itself() {
        let s = sample(0).unwrap();
        assert!(s.rss_kib > 0);
        let before = open_fds(0).unwrap();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(open_fds(0).unwrap(), before + 1);
        drop(f);
    }
}
