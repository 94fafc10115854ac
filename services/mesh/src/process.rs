//! Process metrics (`process_*`), read from `/proc` on every scrape.
//!
//! These are the names the Prometheus client libraries of every other
//! language export, so stock dashboards and alerts work unchanged.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Unit,
};

#[derive(Debug)]
pub(crate) struct ProcessCollector {
    /// Seconds since the epoch when this collector (so, the service) started.
    start_time: f64,
}

impl ProcessCollector {
    pub(crate) fn new() -> Self {
        // /proc/self/stat's starttime would be more precise, but it is in
        // clock ticks since boot; the service builds its metrics within
        // milliseconds of exec, which is precise enough for "restarted at".
        let start_time = procfs::process::Process::myself()
            .ok()
            .and_then(|p| p.stat().ok())
            .and_then(|stat| {
                let boot = procfs::boot_time_secs().ok()?;
                let ticks = procfs::ticks_per_second();
                Some(boot as f64 + stat.starttime as f64 / ticks as f64)
            })
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default()
            });
        Self { start_time }
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut encoder,
            "process_start_time",
            "Start time of the process since the Unix epoch.",
            Some(&Unit::Seconds),
            self.start_time,
        )?;
        // A scrape must not fail because /proc is unreadable (non-Linux
        // development machines): the other families are still worth having.
        let Ok(me) = procfs::process::Process::myself() else {
            return Ok(());
        };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            ConstCounter::new(cpu).encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent.",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?)?;
            let page = procfs::page_size() as f64;
            gauge(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size.",
                Some(&Unit::Bytes),
                stat.rss as f64 * page,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory",
                "Virtual memory size.",
                Some(&Unit::Bytes),
                stat.vsize as f64,
            )?;
            gauge(
                &mut encoder,
                "process_threads",
                "Number of OS threads.",
                None,
                stat.num_threads as f64,
            )?;
        }
        if let Ok(fds) = me.fd_count() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                fds as f64,
            )?;
        }
        if let Ok(limits) = me.limits()
            && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                max as f64,
            )?;
        }
        Ok(())
    }
}
