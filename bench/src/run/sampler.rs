//! Resource sampling during a run: memory and CPU time of the server, Postgres (the postmaster
//! and every backend) and the load generator, every `interval`, with `sysinfo`, plus what
//! sampling cannot see, read from `/proc`: the kernel's memory high-water mark (`VmHWM`) and,
//! for Postgres, proportional set size (`Pss` in `smaps_rollup`), so shared buffers are counted
//! once instead of once per backend that touched them.
//!
//! CPU is never sysinfo's per-sample percentage (its machine-wide denominator refreshes at most
//! every 200 ms, so short or late ticks read wrong): each reading keeps the accumulated CPU
//! time and a monotonic timestamp, and every figure is a difference of CPU time over the true
//! time between two readings, interpolated at the measured phase's exact start and end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use taskbench_loadgen::client::{HttpClient, Target};
use taskbench_report::model::{ProcessStats, Role, Sample};

/// The processes of one measured run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watched {
    /// The server process, when taskbench started it (else it is scraped).
    pub(crate) server: Option<u32>,
    pub(crate) loadgen: u32,
    /// The postmaster, when Postgres runs on this machine under our control.
    pub(crate) postgres: Option<u32>,
}

/// Every this many ticks a reading is *full*: it scans every process of the machine (to find new
/// Postgres backends) and reads Postgres's PSS anew; the readings in between refresh only the
/// processes already known and carry PSS forward. Scanning `/proc` and reading `smaps_rollup`
/// (which walks each backend's page tables: about 0.2 ms a process here, 4 ms for a pool of
/// backends) run on the CPUs the load generator shares, and every such stall showed up in the
/// open model's send lag. Postgres memory moves slowly; every role's CPU is still read every tick.
const FULL_EVERY: usize = 8;

/// One raw reading: per role, memory and accumulated CPU time.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    pub(crate) unix_ms: u64,
    /// Microseconds since the sampler started, on the monotonic clock.
    pub(crate) mono_us: u64,
    pub(crate) roles: BTreeMap<Role, RoleReading>,
    /// The machine's CPU time stolen by the hypervisor, and all its CPU time, in ticks
    /// (`/proc/stat`), when readable.
    pub(crate) steal_ticks: Option<(u64, u64)>,
}

/// `(steal, total)` of the machine's CPU time in clock ticks, from the first line of `/proc/stat`
/// (`cpu user nice system idle iowait irq softirq steal …`).
fn steal_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // guest and guest_nice (9th, 10th) are already counted in user and nice.
    let total: u64 = fields.iter().take(8).sum();
    Some((*fields.get(7)?, total))
}

/// The share of the machine's CPU time the hypervisor took (steal) between `start_ms` and
/// `end_ms`, from the readings closest outside the window (or its edges); `None` without two
/// readings or on a machine that reports no time.
pub(crate) fn steal_share(readings: &[Reading], start_ms: u64, end_ms: u64) -> Option<f64> {
    let with: Vec<(u64, (u64, u64))> = readings.iter().filter_map(|r| Some((r.unix_ms, r.steal_ticks?))).collect();
    let from = with.iter().rev().find(|(t, _)| *t <= start_ms).or_else(|| with.first())?;
    let to = with.iter().find(|(t, _)| *t >= end_ms).or_else(|| with.last())?;
    let (steal, total) = (to.1.0.checked_sub(from.1.0)?, to.1.1.checked_sub(from.1.1)?);
    (total > 0).then(|| steal as f64 / total as f64)
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RoleReading {
    pub(crate) pids: Vec<u32>,
    /// RSS; for Postgres, PSS.
    pub(crate) mem: u64,
    pub(crate) cpu_ms: u64,
}

/// The server's memory and accumulated CPU time from its Prometheus `/metrics`: the standard
/// process metrics, which both servers export (`process_resident_memory_bytes`,
/// `process_cpu_seconds_total`). `None` when the server does not answer or lacks them.
pub(crate) async fn scrape(client: &HttpClient, target: &Target) -> Option<RoleReading> {
    let request = taskbench_loadgen::ops::metrics();
    match taskbench_loadgen::client::send(client, target, &request, Duration::from_secs(2)).await {
        taskbench_loadgen::client::Reply::Answer { status: 200, body } => {
            let (mem, cpu_ms) = process_metrics(std::str::from_utf8(&body).ok()?)?;
            Some(RoleReading { pids: Vec::new(), mem, cpu_ms })
        }
        _ => None,
    }
}

/// `(resident bytes, CPU ms)` from a Prometheus text exposition. Written by hand: two unlabelled
/// samples, `NAME VALUE` on a line each; a parser crate would bring a dependency for that.
fn process_metrics(text: &str) -> Option<(u64, u64)> {
    let value = |name: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.split_whitespace().next()?.parse::<f64>().ok())
    };
    let mem = value("process_resident_memory_bytes")?;
    let cpu = value("process_cpu_seconds_total")?;
    Some((mem as u64, (cpu * 1000.0).round() as u64))
}

/// Samples `watched` every `interval` until `stop` fires; returns the readings, and the
/// high-water marks of the server and the load generator read just before stopping. With
/// `scrape`, the server's memory and CPU come from its `/metrics` instead of `/proc` (a server on
/// another machine), and it has no high-water mark.
pub(crate) async fn sample(
    watched: Watched,
    interval: Duration,
    scrape_from: Option<Target>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (Vec<Reading>, BTreeMap<Role, u64>) {
    let client = taskbench_loadgen::client::http_client(1);
    let mut failed_scrapes = 0usize;
    let mut system = System::new();
    let mut readings = Vec::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let origin = Instant::now();
    let mut pss = BTreeMap::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let full = readings.len() % FULL_EVERY == 0;
        // The scrape first: the reading's time is taken after its answer, which a busy server
        // may be slow to give.
        let server = match &scrape_from {
            Some(target) => Some(scrape(&client, target).await),
            None => None,
        };
        let mut reading = read_now(&mut system, watched, origin, full, &mut pss);
        scraped(&mut reading, server, &mut failed_scrapes);
        readings.push(reading);
    }
    // One last reading at the stop, so the window's end is bracketed.
    let server = match &scrape_from {
        Some(target) => Some(scrape(&client, target).await),
        None => None,
    };
    let mut last = read_now(&mut system, watched, origin, false, &mut pss);
    scraped(&mut last, server, &mut failed_scrapes);
    readings.push(last);
    if failed_scrapes > 0 {
        tracing::warn!(
            failed_scrapes,
            readings = readings.len(),
            "the server's /metrics did not answer with process_resident_memory_bytes and process_cpu_seconds_total \
             every time: its resources are missing from those samples"
        );
    }
    let server = watched.server.filter(|_| scrape_from.is_none()).map(|pid| (Role::Server, pid));
    let hwm = server
        .into_iter()
        .chain([(Role::Loadgen, watched.loadgen)])
        .filter_map(|(role, pid)| Some((role, vm_hwm(pid)?)))
        .collect();
    (readings, hwm)
}

/// The server's part of `reading` from a scrape (`Some`) instead of `/proc`; a scrape that got
/// nothing leaves the server out of that reading (never read as zero) and is counted.
fn scraped(reading: &mut Reading, server: Option<Option<RoleReading>>, failed: &mut usize) {
    match server {
        None => {}
        Some(Some(s)) => {
            reading.roles.insert(Role::Server, s);
        }
        Some(None) => {
            reading.roles.remove(&Role::Server);
            *failed += 1;
        }
    }
}

/// `pss` keeps each Postgres process's last PSS (its keys are the backends known); a `full`
/// reading scans every process and reads PSS anew (see [`FULL_EVERY`]).
fn read_now(
    system: &mut System,
    watched: Watched,
    origin: Instant,
    full: bool,
    pss: &mut BTreeMap<u32, u64>,
) -> Reading {
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
    if full {
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    } else {
        let mut known: Vec<Pid> =
            [watched.loadgen].into_iter().chain(watched.server).chain(watched.postgres).map(Pid::from_u32).collect();
        known.extend(pss.keys().copied().map(Pid::from_u32));
        system.refresh_processes_specifics(ProcessesToUpdate::Some(&known), true, kind);
    }
    let mono_us = origin.elapsed().as_micros() as u64;
    let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut roles = BTreeMap::new();
    let mut add = |role, reading: Option<RoleReading>| {
        // A role whose processes are gone (the load generator exits as its run ends) is left
        // out of the reading rather than read as zero.
        if let Some(r) = reading {
            roles.insert(role, r);
        }
    };
    if let Some(server) = watched.server {
        add(Role::Server, read(system, &[server], None));
    }
    add(Role::Loadgen, read(system, &[watched.loadgen], None));
    if let Some(postmaster) = watched.postgres {
        let pm = Pid::from_u32(postmaster);
        let mut pids = vec![postmaster];
        pids.extend(system.processes().iter().filter(|(_, p)| p.parent() == Some(pm)).map(|(pid, _)| pid.as_u32()));
        if full {
            pss.clear();
        }
        add(Role::Postgres, read(system, &pids, Some(pss)));
    }
    Reading { unix_ms, mono_us, roles, steal_ticks: steal_ticks() }
}

/// The role's processes that are alive, summed; `None` when none is. With `pss`, memory is
/// PSS (from the cache, or read and cached), else RSS.
fn read(system: &System, pids: &[u32], mut pss: Option<&mut BTreeMap<u32, u64>>) -> Option<RoleReading> {
    let mut r = RoleReading::default();
    for &pid in pids {
        if let Some(p) = system.process(Pid::from_u32(pid)) {
            r.pids.push(pid);
            r.mem += match pss.as_deref_mut() {
                Some(cache) => *cache
                    .entry(pid)
                    .or_insert_with(|| proc_kib(pid, "smaps_rollup", "Pss:").map_or(p.memory(), |k| k * 1024)),
                None => p.memory(),
            };
            r.cpu_ms += p.accumulated_cpu_time();
        }
    }
    (!r.pids.is_empty()).then_some(r)
}

/// A `Key:   123 kB` line of `/proc/PID/FILE`, in KiB.
fn proc_kib(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// The kernel's resident-memory high-water mark of `pid`, in bytes.
pub(crate) fn vm_hwm(pid: u32) -> Option<u64> {
    proc_kib(pid, "status", "VmHWM:").map(|k| k * 1024)
}

/// The resident memory of `pid` now, in bytes.
pub(crate) fn vm_rss(pid: u32) -> Option<u64> {
    proc_kib(pid, "status", "VmRSS:").map(|k| k * 1024)
}

/// Turns readings into samples timed from the start of the measured phase, each with the CPU
/// used since the previous reading over the true time between them (the first reading has no
/// predecessor and is dropped).
pub(crate) fn samples(readings: &[Reading], measure_start_unix_ms: u64) -> Vec<Sample> {
    readings
        .windows(2)
        .map(|pair| {
            let (a, b) = (&pair[0], &pair[1]);
            let secs = b.mono_us.saturating_sub(a.mono_us) as f64 / 1e6;
            let pct = |role: Role| {
                let (x, y) = (a.roles.get(&role)?, b.roles.get(&role)?);
                let cpu = y.cpu_ms.saturating_sub(x.cpu_ms) as f64 / 1000.0;
                Some(if secs > 0.0 { (cpu / secs * 100.0) as f32 } else { 0.0 })
            };
            let mem = |role: Role| b.roles.get(&role).map(|x| x.mem);
            Sample {
                t_ms: b.unix_ms as i64 - measure_start_unix_ms as i64,
                server_rss: mem(Role::Server).unwrap_or(0),
                server_cpu: pct(Role::Server).unwrap_or(0.0),
                postgres_rss: mem(Role::Postgres),
                postgres_cpu: pct(Role::Postgres),
                loadgen_rss: mem(Role::Loadgen).unwrap_or(0),
                loadgen_cpu: pct(Role::Loadgen).unwrap_or(0.0),
            }
        })
        .collect()
}

/// A role's accumulated CPU seconds at `unix_ms`, interpolated linearly between the readings
/// around it. Past the last reading (the load generator exits a few ms after its measured phase,
/// usually before the next tick) the last interval's rate is carried on; before the first, the
/// first reading is used.
fn cpu_at(readings: &[&Reading], role: Role, unix_ms: f64) -> Option<f64> {
    let points: Vec<(f64, f64)> =
        readings.iter().filter_map(|r| Some((r.unix_ms as f64, r.roles.get(&role)?.cpu_ms as f64 / 1000.0))).collect();
    let line = |(t0, c0): (f64, f64), (t1, c1): (f64, f64)| {
        let f = if t1 > t0 { (unix_ms - t0) / (t1 - t0) } else { 1.0 };
        c0 + (c1 - c0) * f
    };
    match points.iter().position(|(t, _)| *t >= unix_ms) {
        Some(0) => points.first().map(|p| p.1),
        Some(i) => Some(line(points[i - 1], points[i])),
        None if points.len() >= 2 => Some(line(points[points.len() - 2], points[points.len() - 1])),
        None => points.last().map(|p| p.1),
    }
}

/// What [`stats`] needs besides the readings.
#[derive(Debug, Clone)]
pub(crate) struct Window<'a> {
    /// The measured phase on the wall clock, Unix ms.
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    /// Successful requests in the phase.
    pub(crate) successes: u64,
    pub(crate) allotted: &'a BTreeMap<Role, usize>,
    /// `VmHWM` by role, read at the end.
    pub(crate) hwm: &'a BTreeMap<Role, u64>,
    /// The server's RSS once ready, before any load.
    pub(crate) idle_server_rss: Option<u64>,
}

/// Per-role resource use over the measured window.
pub(crate) fn stats(readings: &[Reading], w: &Window<'_>) -> BTreeMap<Role, ProcessStats> {
    let mut out = BTreeMap::new();
    let all: Vec<&Reading> = readings.iter().collect();
    let inside: Vec<&Reading> =
        all.iter().copied().filter(|r| r.unix_ms >= w.start_ms && r.unix_ms <= w.end_ms).collect();
    let secs = w.end_ms.saturating_sub(w.start_ms) as f64 / 1000.0;
    for role in Role::ALL {
        let series: Vec<&RoleReading> = inside.iter().filter_map(|r| r.roles.get(&role)).collect();
        let (Some(from), Some(to)) = (cpu_at(&all, role, w.start_ms as f64), cpu_at(&all, role, w.end_ms as f64))
        else {
            continue;
        };
        if series.is_empty() {
            continue;
        }
        // Backends that exit mid-window take their CPU time with them; never go negative.
        let cpu_seconds = (to - from).max(0.0);
        let sampled_peak = series.iter().map(|r| r.mem).max().unwrap_or(0);
        let mut pids: Vec<u32> = series.iter().flat_map(|r| r.pids.iter().copied()).collect();
        pids.sort_unstable();
        pids.dedup();
        out.insert(
            role,
            ProcessStats {
                pids,
                peak_rss_bytes: w.hwm.get(&role).copied().unwrap_or(sampled_peak).max(sampled_peak),
                sampled_peak_rss_bytes: sampled_peak,
                mean_rss_bytes: series.iter().map(|r| r.mem).sum::<u64>() / series.len() as u64,
                idle_rss_bytes: if role == Role::Server { w.idle_server_rss } else { None },
                cpu_seconds,
                mean_cpu_cores: if secs > 0.0 { cpu_seconds / secs } else { 0.0 },
                cpu_ms_per_1k_requests: (w.successes > 0).then(|| cpu_seconds * 1e6 / w.successes as f64),
                allotted_cpus: w.allotted.get(&role).copied().unwrap_or(1),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readings every `every_ms` of a server that burns CPU at a steady 0.6 cores, the first
    /// one `offset_ms` after t = 0 (Unix ms 1_000_000 + t).
    fn steady(every_ms: u64, offset_ms: u64, until_ms: u64) -> Vec<Reading> {
        (0..)
            .map(|i| offset_ms + i * every_ms)
            .take_while(|t| *t <= until_ms)
            .map(|t| Reading {
                unix_ms: 1_000_000 + t,
                mono_us: t * 1000,
                roles: BTreeMap::from([(
                    Role::Server,
                    RoleReading { pids: vec![7], mem: 50 << 20, cpu_ms: (t as f64 * 0.6) as u64 },
                )]),
                // 2 CPUs at 100 ticks/s; the hypervisor takes a tenth of them from t = 5 s on.
                steal_ticks: Some((t.saturating_sub(5_000) / 50, t / 5)),
            })
            .collect()
    }

    #[test]
    fn steal_is_the_share_of_the_machines_cpu_time_the_hypervisor_took_in_the_window() {
        let readings = steady(250, 0, 14_000);
        let before = steal_share(&readings, 1_000_000 + 1_000, 1_000_000 + 5_000).expect("readable");
        assert!(before.abs() < 1e-9, "{before}");
        let after = steal_share(&readings, 1_000_000 + 6_000, 1_000_000 + 12_000).expect("readable");
        assert!((after - 0.1).abs() < 0.01, "{after}");
        assert_eq!(steal_share(&[], 0, 1), None);
    }

    fn window<'a>(allotted: &'a BTreeMap<Role, usize>, hwm: &'a BTreeMap<Role, u64>) -> Window<'a> {
        Window {
            start_ms: 1_000_000 + 2_000,
            end_ms: 1_000_000 + 12_000,
            successes: 60_000,
            allotted,
            hwm,
            idle_server_rss: Some(20 << 20),
        }
    }

    #[test]
    fn cpu_comes_from_cpu_time_over_the_exact_window_whatever_the_interval() {
        let allotted = BTreeMap::from([(Role::Server, 1)]);
        let hwm = BTreeMap::new();
        // 100 ms and 250 ms intervals, neither aligned with the window's start or end.
        let fast = stats(&steady(100, 37, 14_000), &window(&allotted, &hwm));
        let slow = stats(&steady(250, 180, 14_000), &window(&allotted, &hwm));
        let (fast, slow) = (&fast[&Role::Server], &slow[&Role::Server]);
        for s in [fast, slow] {
            assert!((s.cpu_seconds - 6.0).abs() < 0.01, "0.6 cores over 10 s: {}", s.cpu_seconds);
            assert!((s.mean_cpu_cores - 0.6).abs() < 0.001, "{}", s.mean_cpu_cores);
            let per_1k = s.cpu_ms_per_1k_requests.expect("requests");
            assert!((per_1k - 100.0).abs() < 0.2, "6 s of CPU over 60k requests: {per_1k}");
        }
        assert!((fast.cpu_seconds - slow.cpu_seconds).abs() < 0.01);
        // Every sample reads 60% whatever the interval.
        for s in
            samples(&steady(100, 37, 14_000), 1_002_000).iter().chain(&samples(&steady(250, 180, 14_000), 1_002_000))
        {
            assert!((s.server_cpu - 60.0).abs() < 1.5, "{}", s.server_cpu);
        }
    }

    #[test]
    fn a_role_that_exits_before_the_window_ends_is_extrapolated_not_zeroed() {
        let allotted = BTreeMap::from([(Role::Server, 1)]);
        let hwm = BTreeMap::new();
        // The last reading is 200 ms before the window's end; the process is gone after it.
        let s = &stats(&steady(250, 0, 11_800), &window(&allotted, &hwm))[&Role::Server];
        assert!((s.cpu_seconds - 6.0).abs() < 0.02, "0.6 cores over 10 s: {}", s.cpu_seconds);
    }

    #[test]
    fn peak_memory_is_the_high_water_mark_when_the_kernel_has_one() {
        let allotted = BTreeMap::from([(Role::Server, 1)]);
        let hwm = BTreeMap::from([(Role::Server, 300 << 20)]);
        let s = &stats(&steady(250, 0, 14_000), &window(&allotted, &hwm))[&Role::Server];
        assert_eq!((s.peak_rss_bytes, s.sampled_peak_rss_bytes), (300 << 20, 50 << 20));
        assert_eq!(s.idle_rss_bytes, Some(20 << 20));
    }

    #[test]
    fn this_process_has_a_high_water_mark_at_least_its_resident_memory() {
        // Resident memory first: the high-water mark read after it can only be higher.
        let rss = vm_rss(std::process::id()).expect("VmRSS");
        let hwm = vm_hwm(std::process::id()).expect("VmHWM");
        assert!(hwm >= rss && rss > 0, "hwm {hwm} rss {rss}");
    }

    #[test]
    fn the_process_metrics_are_read_off_the_exposition() {
        let text = "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
                    # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.27\n\
                    process_resident_memory_bytes 2.8672e+07\nprocess_resident_memory_bytes_max 1\n";
        assert_eq!(process_metrics(text), Some((28_672_000, 1_270)));
        assert_eq!(process_metrics("http_requests_total 3\n"), None);
    }

    /// The remote path (a server's own /metrics) against the local one (/proc) on the same
    /// server process: they read the same kernel counters, so they agree within what separates
    /// the two reads (a few ms, and the scrape's own work) and the 10 ms tick CPU time counts in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_read_through_its_metrics_agrees_with_proc() {
        let test_binary = std::env::current_exe().expect("the test binary");
        let dir = test_binary.parent().and_then(std::path::Path::parent).expect("target/debug");
        let binary = dir.join("taskbench-axum");
        let server = taskbench_conformance::process::ServerProcess::start(binary.to_str().expect("utf-8"), &[]).await;
        let target = Target::parse(&server.base_url).expect("target");
        let client = taskbench_loadgen::client::http_client(4);
        let watched = Watched { server: Some(server.pid()), loadgen: std::process::id(), postgres: None };
        let (mut system, mut pss, origin) = (System::new(), BTreeMap::new(), Instant::now());
        let mut proc_now = || read_now(&mut system, watched, origin, true, &mut pss).roles[&Role::Server].clone();
        let (proc_before, scrape_before) = (proc_now(), scrape(&client, &target).await.expect("metrics answer"));
        let request = taskbench_loadgen::ops::health();
        for _ in 0..3_000 {
            let _ = taskbench_loadgen::client::send(&client, &target, &request, Duration::from_secs(5)).await;
        }
        let (proc_after, scrape_after) = (proc_now(), scrape(&client, &target).await.expect("metrics answer"));
        let cpu = |a: &RoleReading, b: &RoleReading| b.cpu_ms.saturating_sub(a.cpu_ms) as f64;
        let (by_proc, by_scrape) = (cpu(&proc_before, &proc_after), cpu(&scrape_before, &scrape_after));
        assert!(by_proc > 50.0, "the requests cost the server CPU: {by_proc} ms");
        assert!((by_proc - by_scrape).abs() <= 20.0 + 0.1 * by_proc, "CPU ms: /proc {by_proc}, /metrics {by_scrape}");
        let (rss_proc, rss_scrape) = (proc_after.mem as f64, scrape_after.mem as f64);
        assert!((rss_proc - rss_scrape).abs() <= 0.05 * rss_proc, "RSS: /proc {rss_proc}, /metrics {rss_scrape}");
    }
}
