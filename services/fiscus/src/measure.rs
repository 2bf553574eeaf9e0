//! What the benchmarks share: durations on the command line, this process's
//! CPU time and memory (or another process's), and percentiles.

use std::time::Duration;

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s or 2m"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "ms" => Ok(Duration::from_millis(n)),
        _ => Err(format!("{s:?}: unit must be ms, s or m")),
    }
}

/// This process's CPU seconds (user + system) and peak RSS in MiB, from /proc.
pub(crate) fn process_usage() -> (f64, f64) {
    let u = usage_of("self");
    (u.cpu_s, u.peak_rss_mib)
}

/// What /proc says about one process.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// CPU seconds, user + system.
    pub cpu_s: f64,
    /// Resident memory now (VmRSS), MiB.
    pub rss_mib: f64,
    /// Peak resident memory (VmHWM), MiB.
    pub peak_rss_mib: f64,
}

/// CPU seconds (user + system) in a /proc `stat` line (of a process or a
/// thread); 0 if it does not parse.
fn stat_cpu_s(stat: &str) -> f64 {
    // Fields after the command name, which ends with ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// The usage of process `pid` (a number, or `self`); zeros when it is gone.
pub(crate) fn usage_of(pid: &str) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let cpu_s = stat_cpu_s(&stat);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Usage {
        cpu_s,
        rss_mib: kib("VmRSS:") / 1024.0,
        peak_rss_mib: kib("VmHWM:") / 1024.0,
    }
}

/// CPU seconds (user + system) of this process's threads whose name starts
/// with `prefix` (e.g. `fjall:` for the storage engine's flush and compaction
/// workers), from /proc/self/task. Threads that have exited are not counted.
pub(crate) fn threads_cpu(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (name, _) = stat.split_once(" (")?.1.rsplit_once(')')?;
            name.starts_with(prefix).then(|| stat_cpu_s(&stat))
        })
        .sum()
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The kinds of a devnet's processes, each found in their names.
pub(crate) const PROCESS_ROLES: [&str; 7] = [
    "contract-executor",
    "ledger-store",
    "gossip-gateway",
    "exchange-adapter",
    "orderer",
    "identity-ca",
    "nats-server",
];
