//! What the simulator reads from /proc: a process's resident memory (the broker's, to divide
//! by the connections it holds) and this process's open-file limit (each device is a socket).

use std::path::Path;

use anyhow::{Context, Result, anyhow};

/// Resident set size of `pid` in bytes (`VmRSS` in /proc/PID/status).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status_kib(&status, "VmRSS:")
        .map(|kib| kib * 1024)
        .ok_or_else(|| anyhow!("{path} has no VmRSS line"))
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// The soft limit on open files of this process, `None` when unlimited or unreadable.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string(Path::new("/proc/self/limits")).ok()?;
    limits_soft(&limits, "Max open files")
}

fn limits_soft(limits: &str, name: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vmrss_from_a_status_file() {
        let status = "Name:\tmosquitto\nVmPeak:\t  20000 kB\nVmRSS:\t    8124 kB\nThreads:\t1\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(8124));
        assert_eq!(status_kib("Name:\tx\n", "VmRSS:"), None);
    }

    #[test]
    fn reads_the_soft_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            20000                20000                files     \n";
        assert_eq!(limits_soft(limits, "Max open files"), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(limits_soft(unlimited, "Max open files"), None);
    }
}
