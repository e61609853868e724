//! `process_*` metrics (CPU, memory, file descriptors, start time) read from Linux `/proc` at
//! scrape time, with the names Prometheus's Go client uses so existing dashboards work.
//! Values that cannot be read (another OS, a restricted /proc) are simply omitted.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux reports CPU times in clock ticks of USER_HZ, which is 100 on every mainstream
/// architecture; reading the real value needs `sysconf`, an unsafe call we avoid.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug)]
pub(super) struct ProcessCollector {
    start_time_seconds: Option<f64>,
}

impl ProcessCollector {
    pub(super) fn new() -> Self {
        Self {
            start_time_seconds: read_start_time_seconds(),
        }
    }
}

/// Fields of `/proc/self/stat` after the command name, which may itself contain spaces.
fn stat_fields() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    Some(after_comm.split_whitespace().map(str::to_owned).collect())
}

/// Field `number` of /proc/self/stat as proc(5) numbers them (1 = pid, 3 = state).
fn stat_field(fields: &[String], number: usize) -> Option<f64> {
    fields.get(number.checked_sub(3)?)?.parse().ok()
}

fn read_start_time_seconds() -> Option<f64> {
    let fields = stat_fields()?;
    let start_ticks = stat_field(&fields, 22)?;
    let boot_time: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot_time + start_ticks / CLOCK_TICKS_PER_SECOND)
}

fn status_kib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix(field))?;
    let kib: f64 = line
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<f64>,
) -> std::fmt::Result {
    let Some(value) = value else { return Ok(()) };
    let gauge = ConstGauge::new(value);
    let metric_encoder = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    gauge.encode(metric_encoder)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let fields = stat_fields();
        let cpu_seconds = fields.as_deref().and_then(|fields| {
            Some((stat_field(fields, 14)? + stat_field(fields, 15)?) / CLOCK_TICKS_PER_SECOND)
        });
        if let Some(cpu_seconds) = cpu_seconds {
            let counter = ConstCounter::new(cpu_seconds);
            // The OpenMetrics encoder appends `_total` to counter names.
            let metric_encoder = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric_encoder)?;
        }
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as f64);
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors.",
            open_fds,
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max_fds(),
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            status_kib("VmSize"),
        )?;
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            status_kib("VmRSS"),
        )?;
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds,
        )
    }
}
