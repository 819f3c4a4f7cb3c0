//! One result from the results of N load agents that shared a run (`taskbench loadgen --agent
//! I/N --start-at …`, then `taskbench merge`). Histograms are added, never percentiles
//! averaged: every percentile of the merged result is read off the summed histograms, so it is
//! the percentile of all the requests, as one generator would have recorded it. Counts are
//! summed; the per-second series are lined up on the wall clock.
//!
//! Written by hand: merging is a few sums over this crate's own types, and no crate knows them.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::slo::{Slo, SloMetric, SloReport};
use crate::{
    Figures, HistogramError, LoadResult, OpenStats, Percentiles, Second, decode_histogram, encode_histogram,
    generator_limited, new_histogram,
};

/// Which share of a run one agent took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentShare {
    /// 0-based: agent `index` of `count` (a Kubernetes Indexed Job's completion index).
    pub index: u32,
    pub count: u32,
    /// The common instant the agents were told to start at, Unix ms.
    pub start_at_unix_ms: Option<u64>,
}

/// How the agents of a merged result lined up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MergedAgents {
    pub count: u32,
    /// When each agent's measured phase began by its own clock, by agent index (Unix ms).
    pub measure_started_unix_ms: Vec<Option<u64>>,
    /// The latest minus the earliest of those starts: clock skew between the agents' machines
    /// plus how late each began. Percentiles are unaffected (each latency is timed on one
    /// agent's clock); the per-second series are blurred by it.
    pub start_spread_ms: u64,
    /// Measured requests of each agent, by index.
    pub requests: Vec<u64>,
}

/// Why results cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: expected the results of every agent of one run")]
    Empty,
    #[error("{0} was not written by an agent (taskbench loadgen --agent I/N); expected one result per agent")]
    NotAnAgent(String),
    #[error("the results are of different runs: {0}")]
    Mismatch(String),
    #[error("agent {index}/{count} is {what}; expected each of 0/{count} to {last}/{count} once", last = .count.saturating_sub(1))]
    Agents { index: u32, count: u32, what: &'static str },
    #[error("{given} result(s) given for a run of {count} agent(s); expected one per agent")]
    Count { given: usize, count: u32 },
    #[error("a saturation search runs on one agent; its results cannot be merged")]
    Search,
    #[error("a histogram of {0} cannot be read: {1}")]
    Histogram(String, HistogramError),
}

/// Merges the results of every agent of one run, named by `names` (file names, for errors).
pub fn merge(parts: &[LoadResult], names: &[String]) -> Result<LoadResult, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("result {}", i + 1));
    let mut shares = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        shares.push(part.agent.ok_or_else(|| MergeError::NotAnAgent(name(i)))?);
        if part.search.is_some() {
            return Err(MergeError::Search);
        }
        for (what, a, b) in [
            ("scenario", &first.scenario, &part.scenario),
            ("model", &first.model.to_string(), &part.model.to_string()),
        ] {
            if a != b {
                return Err(MergeError::Mismatch(format!("{what} `{a}` in {} but `{b}` in {}", name(0), name(i))));
            }
        }
    }
    check_agents(&shares)?;
    if let Some(i) = shares.iter().position(|s| s.start_at_unix_ms != shares[0].start_at_unix_ms) {
        return Err(MergeError::Mismatch(format!(
            "{} started at {:?} but {} at {:?} (--start-at)",
            name(0),
            shares[0].start_at_unix_ms,
            name(i),
            shares[i].start_at_unix_ms
        )));
    }
    let starts: Vec<u64> = parts.iter().filter_map(|p| p.measure_started_unix_ms).collect();
    let earliest = starts.iter().min().copied();
    // The agents measured the same phase, each on its own clock: rates are over its length, not
    // over the spread of their starts (clock skew would otherwise read as lower throughput).
    let measured_secs = parts.iter().map(|p| p.measured_secs).fold(0.0, f64::max);
    let hist = |i: usize, what: &str, s: &str| {
        decode_histogram(s).map_err(|e| MergeError::Histogram(format!("{} ({what})", name(i)), e))
    };
    let totals: Vec<(usize, &Figures)> = parts.iter().map(|p| &p.total).enumerate().collect();
    let total = figures(&totals, measured_secs, &|i, w, s| hist(i, w, s))?;
    let mut per_op = BTreeMap::new();
    let ops: std::collections::BTreeSet<&String> = parts.iter().flat_map(|p| p.per_op.keys()).collect();
    for op in ops {
        let of: Vec<(usize, &Figures)> =
            parts.iter().enumerate().filter_map(|(i, p)| Some((i, p.per_op.get(op)?))).collect();
        per_op.insert(op.clone(), figures(&of, measured_secs, &|i, w, s| hist(i, w, s))?);
    }
    let open = match parts.iter().map(|p| p.open.as_ref()).collect::<Option<Vec<_>>>() {
        Some(open) => Some(open_stats(&open, measured_secs, total.latency_us.p99, &|i, w, s| hist(i, w, s))?),
        None => None,
    };
    let mut incomplete: Vec<String> = parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.incomplete.as_ref().map(|why| format!("agent {}: {why}", shares[i].index)))
        .collect();
    incomplete.sort();
    let slo = first.slo.as_ref().and_then(|report| SloReport::judge(&slo_of(report), &total));
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| shares[i].index);
    Ok(LoadResult {
        scenario: first.scenario.clone(),
        model: first.model,
        target: first.target.clone(),
        measured_secs,
        warmup_requests: parts.iter().map(|p| p.warmup_requests).sum(),
        total,
        per_op,
        series: series(parts, earliest),
        open,
        slo,
        incomplete: (!incomplete.is_empty()).then(|| incomplete.join("; ")),
        measure_started_unix_ms: earliest,
        generator_peak_rss_bytes: parts.iter().filter_map(|p| p.generator_peak_rss_bytes).max(),
        search: None,
        // Each agent's is a rate over its own shifted window; together they delivered the sum.
        delivered_rps: parts.iter().map(|p| p.delivered_rps).sum(),
        agent: None,
        agents: Some(MergedAgents {
            count: shares[0].count,
            measure_started_unix_ms: order.iter().map(|&i| parts[i].measure_started_unix_ms).collect(),
            start_spread_ms: starts.iter().max().zip(earliest).map_or(0, |(hi, lo)| hi - lo),
            requests: order.iter().map(|&i| parts[i].total.requests).collect(),
        }),
    })
}

/// Every agent of one `count`, each exactly once.
fn check_agents(shares: &[AgentShare]) -> Result<(), MergeError> {
    let count = shares[0].count;
    // Before anything sized by `count`, which comes from a file.
    if count as usize != shares.len() {
        let given = shares.len();
        return match shares.iter().find(|s| s.index >= count) {
            Some(s) => Err(MergeError::Agents { index: s.index, count, what: "out of range" }),
            None if given < count as usize => {
                let missing = (0..count).find(|i| !shares.iter().any(|s| s.index == *i)).unwrap_or(0);
                Err(MergeError::Agents { index: missing, count, what: "missing" })
            }
            None => Err(MergeError::Count { given, count }),
        };
    }
    let mut seen = vec![false; count as usize];
    for share in shares {
        let bad = |what| MergeError::Agents { index: share.index, count, what };
        if share.count != count {
            return Err(MergeError::Mismatch(format!("agents of {count} and of {} agents", share.count)));
        }
        match seen.get_mut(share.index as usize) {
            None => return Err(bad("out of range")),
            Some(true) => return Err(bad("given twice")),
            Some(s) => *s = true,
        }
    }
    match seen.iter().position(|s| !s) {
        Some(missing) => Err(MergeError::Agents { index: missing as u32, count, what: "missing" }),
        None => Ok(()),
    }
}

type Decode<'a> = dyn Fn(usize, &str, &str) -> Result<Histogram<u64>, MergeError> + 'a;

/// The sum of the parts' histograms named by `pick`; each part comes with its index in the
/// merge (for errors).
fn summed(
    parts: &[(usize, &Figures)],
    what: &str,
    pick: fn(&Figures) -> &str,
    decode: &Decode<'_>,
) -> Result<Histogram<u64>, MergeError> {
    let mut sum = new_histogram();
    for (i, f) in parts {
        // Both sides have the same bounds (1 µs to 60 s), so adding cannot fail.
        let _ = sum.add(decode(*i, what, pick(f))?);
    }
    Ok(sum)
}

fn figures(parts: &[(usize, &Figures)], secs: f64, decode: &Decode<'_>) -> Result<Figures, MergeError> {
    let latency = summed(parts, "latency", |f| &f.latency_hdr, decode)?;
    let service = summed(parts, "service time", |f| &f.service_hdr, decode)?;
    let errors_h = summed(parts, "error latency", |f| &f.error_hdr, decode)?;
    let mut all = latency.clone();
    let _ = all.add(&errors_h);
    let requests: u64 = parts.iter().map(|(_, f)| f.requests).sum();
    let successes: u64 = parts.iter().map(|(_, f)| f.successes).sum();
    let errors: u64 = parts.iter().map(|(_, f)| f.errors).sum();
    let mut by_kind = BTreeMap::new();
    for (kind, n) in parts.iter().flat_map(|(_, f)| &f.errors_by_kind) {
        *by_kind.entry(*kind).or_insert(0) += n;
    }
    Ok(Figures {
        requests,
        successes,
        errors,
        errors_by_kind: by_kind,
        error_rate: if requests == 0 { 0.0 } else { errors as f64 / requests as f64 },
        rps: if secs > 0.0 { successes as f64 / secs } else { 0.0 },
        latency_us: Percentiles::of(&latency),
        service_us: Percentiles::of(&service),
        error_latency_us: Percentiles::of(&errors_h),
        all_latency_us: Percentiles::of(&all),
        latency_hdr: encode_histogram(&latency),
        service_hdr: encode_histogram(&service),
        error_hdr: encode_histogram(&errors_h),
    })
}

fn open_stats(
    parts: &[&OpenStats],
    secs: f64,
    latency_p99_us: u64,
    decode: &Decode<'_>,
) -> Result<OpenStats, MergeError> {
    let mut lag = new_histogram();
    for (i, o) in parts.iter().enumerate() {
        let _ = lag.add(decode(i, "send lag", &o.send_lag_hdr)?);
    }
    let sum = |f: fn(&OpenStats) -> u64| parts.iter().map(|o| f(o)).sum::<u64>();
    let sent = sum(|o| o.sent);
    let send_lag_us = Percentiles::of(&lag);
    Ok(OpenStats {
        target_rps: parts.iter().map(|o| o.target_rps).sum(),
        scheduled: sum(|o| o.scheduled),
        sent,
        offered_rps: if secs > 0.0 { sent as f64 / secs } else { 0.0 },
        late_sends: sum(|o| o.late_sends),
        queued_sends: sum(|o| o.queued_sends),
        dropped_sends: sum(|o| o.dropped_sends),
        max_in_flight: parts.iter().map(|o| o.max_in_flight).sum(),
        generator_limited: generator_limited(send_lag_us.p99, latency_p99_us),
        send_lag_us,
        send_lag_hdr: encode_histogram(&lag),
    })
}

/// The parts' seconds on the merged clock: an agent's second `s` is merged second
/// `s + round((its start − the earliest start) / 1 s)`. Counts are summed; a second's p50 and p99
/// are the highest of the agents' (per-second histograms are not kept, and percentiles must not
/// be averaged): an upper bound, said so in the README.
fn series(parts: &[LoadResult], earliest: Option<u64>) -> Vec<Second> {
    let mut merged: BTreeMap<u64, Second> = BTreeMap::new();
    for part in parts {
        let offset = match (part.measure_started_unix_ms, earliest) {
            (Some(start), Some(from)) => ((start - from) as f64 / 1000.0).round() as u64,
            _ => 0,
        };
        for s in &part.series {
            let at = s.second + offset;
            let m = merged.entry(at).or_insert(Second { second: at, requests: 0, errors: 0, p50_us: 0, p99_us: 0 });
            m.requests += s.requests;
            m.errors += s.errors;
            m.p50_us = m.p50_us.max(s.p50_us);
            m.p99_us = m.p99_us.max(s.p99_us);
        }
    }
    merged.into_values().collect()
}

/// The objectives a report was judged on.
fn slo_of(report: &SloReport) -> Slo {
    let limit = |metric| report.checks.iter().find(|c| c.metric == metric).map(|c| c.limit);
    Slo {
        p99_ms: limit(SloMetric::P99Ms),
        p999_ms: limit(SloMetric::P999Ms),
        max_error_rate: limit(SloMetric::ErrorRate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelKind;

    fn figures(latencies_us: &[u64]) -> Figures {
        let mut h = new_histogram();
        for l in latencies_us {
            h.saturating_record(*l);
        }
        let empty = encode_histogram(&new_histogram());
        Figures {
            requests: latencies_us.len() as u64,
            successes: latencies_us.len() as u64,
            errors: 0,
            errors_by_kind: BTreeMap::new(),
            error_rate: 0.0,
            rps: 0.0,
            latency_us: Percentiles::of(&h),
            service_us: Percentiles::of(&h),
            error_latency_us: Percentiles::default(),
            all_latency_us: Percentiles::of(&h),
            latency_hdr: encode_histogram(&h),
            service_hdr: encode_histogram(&h),
            error_hdr: empty,
        }
    }

    fn part(index: u32, count: u32, start_ms: u64, latencies_us: &[u64]) -> LoadResult {
        LoadResult {
            scenario: "s".into(),
            model: ModelKind::Closed,
            target: "http://127.0.0.1:1".into(),
            measured_secs: 2.0,
            warmup_requests: 1,
            total: figures(latencies_us),
            per_op: BTreeMap::from([("list_tasks".to_owned(), figures(latencies_us))]),
            series: vec![Second { second: 0, requests: latencies_us.len() as u64, errors: 0, p50_us: 5, p99_us: 9 }],
            open: None,
            slo: None,
            incomplete: None,
            measure_started_unix_ms: Some(start_ms),
            generator_peak_rss_bytes: Some(1 << 20),
            search: None,
            delivered_rps: Some(1.0),
            agent: Some(AgentShare { index, count, start_at_unix_ms: Some(1_000) }),
            agents: None,
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("a{i}.json")).collect()
    }

    #[test]
    fn percentiles_come_from_the_summed_histograms_and_skew_does_not_dilute_rates() {
        // One fast agent and one slow one: averaging their p50s would say 505 µs; the sum says
        // the median request took 10 µs.
        let fast = part(0, 2, 1_000, &[10, 10, 10, 10, 10, 10]);
        let slow = part(1, 2, 1_400, &[1_000, 1_000]);
        let merged = merge(&[fast, slow], &names(2)).expect("merges");
        assert_eq!(merged.total.requests, 8);
        assert_eq!(merged.total.latency_us.p50, 10);
        assert!(merged.total.latency_us.p99 >= 999, "{:?}", merged.total.latency_us);
        assert_eq!(merged.measured_secs, 2.0, "the agents' phase, not the phase plus their 400 ms of skew");
        assert_eq!(merged.total.rps, 4.0);
        let agents = merged.agents.expect("agents");
        assert_eq!((agents.start_spread_ms, agents.requests.clone()), (400, vec![6, 2]));
        assert_eq!(merged.per_op["list_tasks"].requests, 8);
        assert_eq!(merged.warmup_requests, 2);
    }

    #[test]
    fn what_is_not_one_run_of_every_agent_is_refused_without_trusting_the_count() {
        let err = |parts: Vec<LoadResult>| merge(&parts, &names(parts.len())).expect_err("refused").to_string();
        assert!(err(vec![part(0, 2, 0, &[1])]).contains("agent 1/2 is missing"));
        assert!(err(vec![part(0, 2, 0, &[1]), part(0, 2, 0, &[1])]).contains("agent 0/2 is given twice"));
        // A count from a hostile file is checked against what was given before anything is sized by it.
        assert!(err(vec![part(0, u32::MAX, 0, &[1])]).contains("missing"));
        assert!(err(vec![part(0, 0, 0, &[1])]).contains("agent 0/0 is out of range"));
        let mut late = part(1, 2, 0, &[1]);
        late.agent = Some(AgentShare { index: 1, count: 2, start_at_unix_ms: Some(9_999) });
        assert!(err(vec![part(0, 2, 0, &[1]), late]).contains("--start-at"));
        let mut alone = part(1, 2, 0, &[1]);
        alone.agent = None;
        assert!(err(vec![part(0, 2, 0, &[1]), alone]).contains("a1.json was not written by an agent"));
        let mut other = part(1, 2, 0, &[1]);
        other.scenario = "t".into();
        assert!(err(vec![part(0, 2, 0, &[1]), other]).contains("scenario `s`"));
    }
}
