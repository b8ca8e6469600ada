//! Peak memory, as the kernel counts it.

/// Peak resident set size of this process in bytes (`VmHWM` in /proc/self/status), if the
/// platform exposes it.
pub fn peak_rss_bytes() -> Option<u64> {
    peak_rss_of(std::process::id())
}

/// Peak RSS of a running process (`VmHWM` in /proc/PID/status). The high-water mark only
/// grows, so the last value read before the process exits is its peak, give or take what it
/// allocated in its final polling interval.
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resident set size of this process now (`VmRSS`), to attribute memory to phases.
pub fn current_rss_bytes() -> Option<u64> {
    status_kib(std::process::id(), "VmRSS:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
