//! Process-level families: `sentinel_build_info`,
//! `sentinel_config_last_reload_successful`, and the standard `process_*`
//! gauges read from `/proc/self` (Linux only; elsewhere, or when `/proc` is
//! unreadable, they are simply absent — a scrape never fails over them).

use crate::metrics::expo::{Expo, MetricType};

/// Kernel ticks per second for `/proc/*/stat` times. `USER_HZ` is fixed at 100
/// in the Linux user ABI on every architecture we ship for, and reading
/// `sysconf(_SC_CLK_TCK)` would need `libc` and `unsafe`.
const USER_HZ: f64 = 100.0;

/// Renders the build and reload gauges, then the `process_*` gauges.
pub fn render_process(out: &mut Expo, version: &str, reload_ok: bool) {
    out.family(
        "sentinel_build_info",
        "Always 1; the version label says which build is running.",
        MetricType::Gauge,
    );
    out.sample_u64("sentinel_build_info", &[("version", version)], 1);
    out.family(
        "sentinel_config_last_reload_successful",
        "1 if the last configuration (re)load succeeded, 0 if it was rejected.",
        MetricType::Gauge,
    );
    out.sample_u64(
        "sentinel_config_last_reload_successful",
        &[],
        u64::from(reload_ok),
    );
    if let Some(p) = ProcStats::read() {
        p.render(out);
    }
}

/// What `/proc/self` tells about this process.
#[derive(Debug, Clone, PartialEq)]
struct ProcStats {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time_unix: Option<f64>,
    open_fds: Option<u64>,
}

impl ProcStats {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let btime = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_btime(&s));
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let mut p = parse(&stat, &status, btime)?;
        p.open_fds = open_fds;
        Some(p)
    }

    fn render(&self, out: &mut Expo) {
        out.family(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            MetricType::Counter,
        );
        out.sample("process_cpu_seconds_total", &[], self.cpu_seconds);
        out.family(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            MetricType::Gauge,
        );
        out.sample_u64("process_resident_memory_bytes", &[], self.resident_bytes);
        out.family(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            MetricType::Gauge,
        );
        out.sample_u64("process_virtual_memory_bytes", &[], self.virtual_bytes);
        if let Some(t) = self.start_time_unix {
            out.family(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                MetricType::Gauge,
            );
            out.sample("process_start_time_seconds", &[], t);
        }
        if let Some(n) = self.open_fds {
            out.family(
                "process_open_fds",
                "Number of open file descriptors.",
                MetricType::Gauge,
            );
            out.sample_u64("process_open_fds", &[], n);
        }
    }
}

/// `btime` (boot time, unix seconds) from `/proc/stat`.
fn parse_btime(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Parses `/proc/self/stat` (times, vsize, start) and `/proc/self/status`
/// (`VmRSS`, in kB — avoids needing the page size).
fn parse(stat: &str, status: &str, btime: Option<u64>) -> Option<ProcStats> {
    // The command name (field 2) is in parentheses and may itself contain
    // spaces and parentheses, so fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state) of proc(5), so field n is `fields[n - 3]`.
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let utime = field(14)?;
    let stime = field(15)?;
    let start_ticks = field(22)?;
    let vsize = field(23)?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(ProcStats {
        cpu_seconds: (utime + stime) as f64 / USER_HZ,
        resident_bytes: rss_kb * 1024,
        virtual_bytes: vsize,
        start_time_unix: btime.map(|b| b as f64 + start_ticks as f64 / USER_HZ),
        open_fds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse_with_awkward_command_names() {
        // comm contains a space and a ')' — the reason we split at the last ')'.
        let stat = "4242 (sen tinel) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 9 0 12345 1073741824 5000 18446744073709551615";
        let status = "Name:\tsentinel\nVmPeak:\t  2000 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        let p = parse(stat, status, parse_btime("cpu 1 2 3\nbtime 1700000000\n")).unwrap();
        assert_eq!(
            p,
            ProcStats {
                cpu_seconds: 3.0,
                resident_bytes: 20_971_520,
                virtual_bytes: 1_073_741_824,
                start_time_unix: Some(1_700_000_123.45),
                open_fds: None,
            }
        );
    }

    #[test]
    fn build_info_and_reload_flag_are_rendered() {
        let mut out = Expo::new();
        render_process(&mut out, "1.2.3", false);
        let text = out.into_string();
        let head = "# HELP sentinel_build_info Always 1; the version label says which build is running.\n\
                    # TYPE sentinel_build_info gauge\n\
                    sentinel_build_info{version=\"1.2.3\"} 1\n\
                    # HELP sentinel_config_last_reload_successful 1 if the last configuration (re)load succeeded, 0 if it was rejected.\n\
                    # TYPE sentinel_config_last_reload_successful gauge\n\
                    sentinel_config_last_reload_successful 0\n";
        assert!(text.starts_with(head), "{text}");
        // Tests run on Linux: /proc is there, so the process gauges are too.
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        assert!(text.contains("\nprocess_open_fds "), "{text}");
    }
}
