//! The process's own families, under the names Prometheus' client libraries give them
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), read from `/proc/self`
//! at scrape time. Off Linux, or when `/proc` cannot be read, they are described without a
//! sample.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// Clock ticks a second in `/proc/self/stat` (USER_HZ, fixed at 100 by Linux's ABI).
const TICKS: f64 = 100.0;

/// What `/proc/self` tells.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    threads: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
}

/// Registers the process families.
pub(super) fn register(f: &mut super::Families) {
    let figures = read();
    let gauge = |v: Option<f64>| {
        let g = Gauge::<f64, AtomicU64>::default();
        if let Some(v) = v {
            g.set(v);
        }
        g
    };
    let cpu = Counter::<f64, AtomicU64>::default();
    if let Some(f) = &figures {
        cpu.inc_by(f.cpu_seconds);
    }
    let get = |pick: fn(&Figures) -> f64| figures.as_ref().map(pick);
    f.add(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds",
        cpu,
    );
    for (name, help, value) in [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            get(|f| f.resident_bytes),
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            get(|f| f.virtual_bytes),
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            get(|f| f.start_time_seconds),
        ),
        (
            "process_open_fds",
            "Number of open file descriptors",
            get(|f| f.open_fds),
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors",
            get(|f| f.max_fds),
        ),
        (
            "process_threads",
            "Number of OS threads",
            get(|f| f.threads),
        ),
    ] {
        f.add(name, help, gauge(value));
    }
}

fn read() -> Option<Figures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let mut figures = parse(&stat, &status, &boot)?;
    figures.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    figures.max_fds = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?.0 as f64;
    Some(figures)
}

/// The figures in `/proc/self/stat`, `/proc/self/status` and `/proc/stat` (boot time).
fn parse(stat: &str, status: &str, boot: &str) -> Option<Figures> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // Field n of proc(5) is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
            .map(|v| v * 1024.0)
    };
    let boot_time = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(Figures {
        cpu_seconds: (field(14)? + field(15)?) / TICKS,
        threads: field(20)?,
        start_time_seconds: boot_time + field(22)? / TICKS,
        resident_bytes: kb("VmRSS:")?,
        virtual_bytes: kb("VmSize:")?,
        open_fds: 0.0,
        max_fds: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_self_is_read_as_proc_5_lays_it_out() {
        let stat = "4242 (conflux (bal)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 150 0 0 20 0 \
                    7 0 123400 812000000 20000 18446744073709551615";
        let status = "Name:\tconflux\nVmSize:\t  793000 kB\nVmRSS:\t   80000 kB\n";
        let boot = "cpu  1 2 3\nbtime 1765000000\nprocesses 9\n";
        let f = parse(stat, status, boot).unwrap();
        assert_eq!(f.cpu_seconds, 4.0);
        assert_eq!(f.threads, 7.0);
        assert_eq!(f.start_time_seconds, 1_765_000_000.0 + 1234.0);
        assert_eq!(f.resident_bytes, 80_000.0 * 1024.0);
        assert_eq!(f.virtual_bytes, 793_000.0 * 1024.0);
        assert!(read().is_some(), "this process's /proc/self reads");
    }
}
