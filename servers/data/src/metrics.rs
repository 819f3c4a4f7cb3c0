//! Prometheus metrics of one app instance: request counts and durations by route, and the
//! process's own resources.

use std::time::Duration;

use prometheus::{
    Counter, Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Per-app registry (not the global one), so two apps in one process (tests, benches) keep
/// separate counts.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    process: ProcessMetrics,
}

/// Bucket bounds in seconds, dense below a millisecond where a local API lives.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Time to produce a response").buckets(BUCKETS.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        let process = ProcessMetrics::new(&registry)?;
        Ok(Self { registry, requests, duration, process })
    }

    /// Records one answered request. `route` is the matched pattern (e.g. `/api/v1/tasks/{id}`),
    /// never the raw path, so label cardinality stays bounded.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.requests.with_label_values(&[method, route, status.as_str()]).inc();
        self.duration.with_label_values(&[route]).observe(elapsed.as_secs_f64());
    }

    /// The text exposition format served at `/metrics`.
    pub fn render(&self) -> String {
        self.process.update();
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The standard Prometheus process metrics, read from `/proc/self` at each scrape: what
/// `taskbench run --server-resources metrics` samples, as it would on a server on another
/// machine. Written here rather than with the `prometheus` crate's own process collector, which
/// counts CPU time in whole seconds (an integer counter): a sampler reading it every 250 ms would
/// see nothing move for seconds, then a jump.
#[derive(Debug, Clone)]
struct ProcessMetrics {
    /// Held across reading the CPU counter and adding to it: two scrapes at once (Prometheus
    /// and taskbench's sampler) would otherwise both add the same difference.
    updating: std::sync::Arc<std::sync::Mutex<()>>,
    cpu_seconds: Counter,
    resident_bytes: IntGauge,
    virtual_bytes: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    threads: IntGauge,
    start_time: Gauge,
}

impl ProcessMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let me = Self {
            updating: std::sync::Arc::default(),
            cpu_seconds: Counter::new("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")?,
            resident_bytes: IntGauge::new("process_resident_memory_bytes", "Resident memory size in bytes.")?,
            virtual_bytes: IntGauge::new("process_virtual_memory_bytes", "Virtual memory size in bytes.")?,
            open_fds: IntGauge::new("process_open_fds", "Number of open file descriptors.")?,
            max_fds: IntGauge::new("process_max_fds", "Maximum number of open file descriptors.")?,
            threads: IntGauge::new("process_threads", "Number of OS threads in the process.")?,
            start_time: Gauge::new(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            )?,
        };
        registry.register(Box::new(me.cpu_seconds.clone()))?;
        for gauge in [&me.resident_bytes, &me.virtual_bytes, &me.open_fds, &me.max_fds, &me.threads] {
            registry.register(Box::new(gauge.clone()))?;
        }
        registry.register(Box::new(me.start_time.clone()))?;
        Ok(me)
    }

    /// Reads `/proc/self` now; a value that cannot be read keeps its last one.
    #[cfg(target_os = "linux")]
    fn update(&self) {
        use procfs::process::{LimitValue, Process};
        let _one_at_a_time = self.updating.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Ok(me) = Process::myself() else { return };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            self.cpu_seconds.inc_by((cpu - self.cpu_seconds.get()).max(0.0));
            self.resident_bytes.set((stat.rss * procfs::page_size()) as i64);
            self.virtual_bytes.set(stat.vsize as i64);
            self.threads.set(stat.num_threads);
            if let Ok(boot) = procfs::boot_time_secs() {
                self.start_time.set(boot as f64 + stat.starttime as f64 / ticks);
            }
        }
        if let Ok(fds) = me.fd_count() {
            self.open_fds.set(fds as i64);
        }
        if let Ok(LimitValue::Value(max)) = me.limits().map(|l| l.max_open_files.soft_limit) {
            self.max_fds.set(max as i64);
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn update(&self) {}
}

/// The route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
