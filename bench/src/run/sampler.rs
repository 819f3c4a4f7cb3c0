//! Resource sampling during a run: resident memory and CPU of the server, Postgres (the
//! postmaster and every backend) and the load generator, every `interval`, with `sysinfo`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use taskbench_report::model::{ProcessStats, Sample};

/// The processes of one measured run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watched {
    pub(crate) server: u32,
    pub(crate) loadgen: u32,
    /// The postmaster, when Postgres runs on this machine under our control.
    pub(crate) postgres: Option<u32>,
}

/// One raw reading: per role, RSS, CPU % since the last reading, and accumulated CPU ms.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    pub(crate) unix_ms: u64,
    roles: BTreeMap<&'static str, RoleReading>,
}

#[derive(Debug, Clone, Default)]
struct RoleReading {
    pids: Vec<u32>,
    rss: u64,
    cpu_pct: f32,
    cpu_ms: u64,
}

/// Samples `watched` every `interval` until `stop` fires; returns the readings.
pub(crate) async fn sample(
    watched: Watched,
    interval: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Reading> {
    let mut system = System::new();
    let mut readings = Vec::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut roles = BTreeMap::new();
        roles.insert("server", read(&system, &[watched.server]));
        roles.insert("loadgen", read(&system, &[watched.loadgen]));
        if let Some(postmaster) = watched.postgres {
            let pm = Pid::from_u32(postmaster);
            let mut pids = vec![postmaster];
            pids.extend(system.processes().iter().filter(|(_, p)| p.parent() == Some(pm)).map(|(pid, _)| pid.as_u32()));
            roles.insert("postgres", read(&system, &pids));
        }
        readings.push(Reading { unix_ms, roles });
    }
    readings
}

fn read(system: &System, pids: &[u32]) -> RoleReading {
    let mut r = RoleReading::default();
    for &pid in pids {
        if let Some(p) = system.process(Pid::from_u32(pid)) {
            r.pids.push(pid);
            r.rss += p.memory();
            r.cpu_pct += p.cpu_usage();
            r.cpu_ms += p.accumulated_cpu_time();
        }
    }
    r
}

/// Turns readings into samples timed from the start of the measured phase. The first reading
/// has no CPU figure yet (CPU use is a difference between readings), so it is dropped.
pub(crate) fn samples(readings: &[Reading], measure_start_unix_ms: u64) -> Vec<Sample> {
    readings
        .iter()
        .skip(1)
        .map(|r| {
            let role = |name: &str| r.roles.get(name);
            Sample {
                t_ms: r.unix_ms as i64 - measure_start_unix_ms as i64,
                server_rss: role("server").map_or(0, |x| x.rss),
                server_cpu: role("server").map_or(0.0, |x| x.cpu_pct),
                postgres_rss: role("postgres").map(|x| x.rss),
                postgres_cpu: role("postgres").map(|x| x.cpu_pct),
                loadgen_rss: role("loadgen").map_or(0, |x| x.rss),
                loadgen_cpu: role("loadgen").map_or(0.0, |x| x.cpu_pct),
            }
        })
        .collect()
}

/// Per-role resource use over the measured window `[start, end]` (Unix ms).
pub(crate) fn stats(
    readings: &[Reading],
    start_ms: u64,
    end_ms: u64,
    requests: u64,
    allotted: &BTreeMap<&'static str, usize>,
) -> BTreeMap<String, ProcessStats> {
    let window: Vec<&Reading> = readings.iter().filter(|r| r.unix_ms >= start_ms && r.unix_ms <= end_ms).collect();
    let mut out = BTreeMap::new();
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return out;
    };
    for role in ["server", "postgres", "loadgen"] {
        let series: Vec<&RoleReading> = window.iter().filter_map(|r| r.roles.get(role)).collect();
        if series.is_empty() {
            continue;
        }
        let (Some(a), Some(b)) = (first.roles.get(role), last.roles.get(role)) else { continue };
        // Backends that exit mid-window take their CPU time with them; never go negative.
        let cpu_seconds = b.cpu_ms.saturating_sub(a.cpu_ms) as f64 / 1000.0;
        let secs = (last.unix_ms.saturating_sub(first.unix_ms)) as f64 / 1000.0;
        let mut pids: Vec<u32> = series.iter().flat_map(|r| r.pids.iter().copied()).collect();
        pids.sort_unstable();
        pids.dedup();
        out.insert(
            role.to_owned(),
            ProcessStats {
                pids,
                peak_rss_bytes: series.iter().map(|r| r.rss).max().unwrap_or(0),
                mean_rss_bytes: series.iter().map(|r| r.rss).sum::<u64>() / series.len() as u64,
                cpu_seconds,
                mean_cpu_cores: if secs > 0.0 { cpu_seconds / secs } else { 0.0 },
                cpu_ms_per_1k_requests: (requests > 0).then(|| cpu_seconds * 1000.0 / requests as f64 * 1000.0),
                allotted_cpus: allotted.get(role).copied().unwrap_or(1),
            },
        );
    }
    out
}
