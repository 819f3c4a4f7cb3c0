//! The result of one load run, built from the merged recordings of its measured phase (the
//! types are `taskbench-results`').

use std::collections::BTreeMap;
use std::time::Duration;

use taskbench_results::{Figures, LoadResult, ModelKind, Percentiles, Second, encode_histogram};

use crate::record::{OpRecord, Recorder};

/// This process's `VmHWM` in bytes (Linux).
fn own_vm_hwm() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok())?;
    Some(kib * 1024)
}

fn figures(rec: &OpRecord, secs: f64) -> Figures {
    let errors: u64 = rec.errors.values().sum();
    let successes = rec.requests.saturating_sub(errors);
    let mut all = rec.latency.clone();
    let _ = all.add(&rec.error_latency);
    Figures {
        requests: rec.requests,
        successes,
        errors,
        errors_by_kind: rec.errors.clone(),
        error_rate: if rec.requests == 0 { 0.0 } else { errors as f64 / rec.requests as f64 },
        rps: if secs > 0.0 { successes as f64 / secs } else { 0.0 },
        latency_us: Percentiles::of(&rec.latency),
        service_us: Percentiles::of(&rec.service),
        error_latency_us: Percentiles::of(&rec.error_latency),
        all_latency_us: Percentiles::of(&all),
        latency_hdr: encode_histogram(&rec.latency),
        service_hdr: encode_histogram(&rec.service),
        error_hdr: encode_histogram(&rec.error_latency),
    }
}

/// Builds the result from merged recordings of a measured phase of length `measured`.
pub fn from_recorder(scenario: &str, model: ModelKind, target: &str, rec: &Recorder, measured: Duration) -> LoadResult {
    let secs = measured.as_secs_f64();
    let mut total = OpRecord::default();
    let mut per_op = BTreeMap::new();
    for (op, r) in &rec.ops {
        total.add(r);
        per_op.insert(op.name().to_owned(), figures(r, secs));
    }
    // Only the whole seconds the measured phase covers: answers that ended after it are in
    // the totals but not in the series, and a partial last second (which would mix answers
    // from inside and after the phase) is trimmed.
    let whole = (secs + 1e-6).floor() as usize;
    let series = rec
        .intervals
        .iter()
        .take(whole)
        .enumerate()
        .map(|(i, s)| Second {
            second: i as u64,
            requests: s.requests,
            errors: s.errors,
            p50_us: if s.latency.is_empty() { 0 } else { s.latency.value_at_quantile(0.5) },
            p99_us: if s.latency.is_empty() { 0 } else { s.latency.value_at_quantile(0.99) },
        })
        .collect();
    LoadResult {
        scenario: scenario.to_owned(),
        model,
        target: target.to_owned(),
        measured_secs: secs,
        warmup_requests: rec.warmup_requests,
        total: figures(&total, secs),
        per_op,
        series,
        open: None,
        slo: None,
        incomplete: None,
        measure_started_unix_ms: rec.measure_started_unix_ms(),
        generator_peak_rss_bytes: own_vm_hwm(),
        search: None,
        delivered_rps: {
            let lag = std::time::Duration::from_micros(Percentiles::of(&total.latency).p50);
            rec.delivered_rps(measured, lag)
        },
        agent: None,
        agents: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use taskbench_results::slo::{Slo, SloReport};
    use taskbench_results::{ErrorKind, Figures};

    use super::*;
    use crate::record::Outcome;
    use crate::scenario::Op;

    fn figures(successes: u64, timeouts: u64) -> Figures {
        let start = Instant::now();
        let mut rec = Recorder::new(start);
        let mut add = |latency: Duration, error: Option<ErrorKind>| {
            rec.record(&Outcome { op: Op::Health, intended: start, latency, service: Some(latency), error });
        };
        (0..successes).for_each(|_| add(Duration::from_micros(100), None));
        (0..timeouts).for_each(|_| add(Duration::from_secs(5), Some(ErrorKind::Timeout)));
        from_recorder("t", ModelKind::Open, "http://127.0.0.1:1", &rec, Duration::from_secs(1)).total
    }

    #[test]
    fn slow_failures_cannot_hide_from_a_latency_objective() {
        let slo = Slo { p99_ms: Some(1.0), p999_ms: None, max_error_rate: Some(0.05) };
        let clean = SloReport::judge(&slo, &figures(1000, 0)).expect("judged");
        assert!(clean.pass, "{}", clean.describe());
        // 2% timeouts: within the error budget, and the successes alone are fast, but a user
        // waited 5 s for one request in fifty.
        let slow = SloReport::judge(&slo, &figures(1000, 20)).expect("judged");
        assert!(slow.error_budget().is_some_and(|c| c.pass), "{}", slow.describe());
        assert!(!slow.pass, "the p99 objective sees the timeouts: {}", slow.describe());
    }

    #[test]
    fn no_objective_no_report_and_no_success_fails() {
        assert_eq!(SloReport::judge(&Slo::default(), &figures(10, 0)), None);
        let slo = Slo { p99_ms: Some(1000.0), ..Slo::default() };
        assert!(!SloReport::judge(&slo, &figures(0, 3)).expect("judged").pass, "nothing answered");
    }
}
