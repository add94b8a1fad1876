//! The benchmarks' memory figure: a process's peak resident memory (VmHWM), read from /proc.

/// Peak resident memory of `process` (a pid, or `self`) so far, in MiB; None off Linux or once
/// the process is gone.
pub fn peak_rss_mib(process: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
