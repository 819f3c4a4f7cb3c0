//! From runs to conclusions: which roles were saturated (bottleneck honesty), each framework's
//! medians over its clean repeats, paired comparisons of the contenders, and the verdict.

use std::collections::BTreeMap;

use crate::metric::Metric;
use crate::model::{
    Bottleneck, CpuPlan, FrameworkSummary, ModelKind, PairedComparison, ProcessStats, Role, RunRecord, ScenarioResult,
    SloTally, Summary,
};
use crate::stats::{self, MIN_PAIRS, Outcome, PairedStats, Scale};

/// Mean CPU at or above this share of a role's allotment, over the measured phase, counts as
/// saturated.
pub const SATURATED: f64 = 0.85;
/// A role must use at least this share of its allotment itself to be named as a limit when it
/// shares CPUs with others (so a nearly idle Postgres beside a busy load generator is not blamed).
pub const SIGNIFICANT_SHARE: f64 = 0.20;

/// Roles whose CPUs were saturated during the measured phase, from each role's mean CPU over
/// exactly that phase (`ProcessStats::mean_cpu_cores`, measured from CPU-time counters).
/// A role's CPUs are shared with every role pinned to an overlapping set (or with everyone when
/// unpinned), so a load generator and a Postgres sharing one core are judged together.
pub fn bottlenecks(resources: &BTreeMap<Role, ProcessStats>, cpus: &CpuPlan, logical_cpus: usize) -> Vec<Bottleneck> {
    let usage = Role::ALL.map(|role| (role, cpus.of(role), resources.get(&role).map_or(0.0, |s| s.mean_cpu_cores)));
    let overlaps = |a: Option<&[usize]>, b: Option<&[usize]>| match (a, b) {
        (Some(a), Some(b)) => a.iter().any(|c| b.contains(c)),
        _ => true,
    };
    let mut out = Vec::new();
    // The server is what is measured: it is never a limit, whatever it used.
    for &(role, set, own) in [Role::Loadgen, Role::Postgres].iter().filter_map(|r| usage.iter().find(|u| u.0 == *r)) {
        if !resources.contains_key(&role) {
            continue; // not observed (an external Postgres)
        }
        let allot = set.map_or(logical_cpus, <[usize]>::len).max(1) as f64;
        let sharers: Vec<Role> = usage.iter().filter(|(_, s, _)| overlaps(set, *s)).map(|(r, ..)| *r).collect();
        let together: f64 = usage.iter().filter(|(_, s, _)| overlaps(set, *s)).map(|(_, _, u)| u).sum();
        let utilisation = together / allot;
        if utilisation >= SATURATED && own / allot >= SIGNIFICANT_SHARE {
            let detail = if sharers.len() > 1 {
                let others: Vec<Role> = sharers.into_iter().filter(|r| *r != role).collect();
                format!(
                    "{role} used {:.0}% of its {allot} CPU(s), which it shares with {}; together {:.0}%",
                    own / allot * 100.0,
                    joined(&others, " and "),
                    utilisation * 100.0
                )
            } else {
                format!("{role} used {:.0}% of its {allot} CPU(s)", utilisation * 100.0)
            };
            out.push(Bottleneck { role, utilisation, detail });
        }
    }
    out
}

fn values(runs: &[&RunRecord], f: impl Fn(&RunRecord) -> Option<f64>) -> Vec<f64> {
    runs.iter().filter_map(|r| f(r)).collect()
}

/// The clean runs of `framework` in `scenario`.
pub fn clean_runs<'a>(scenario: &'a ScenarioResult, framework: &str) -> Vec<&'a RunRecord> {
    scenario.runs.iter().filter(|r| r.framework == framework && r.is_clean()).collect()
}

/// A metric of `framework`'s clean runs, one value per repeat.
pub fn metric_values(scenario: &ScenarioResult, framework: &str, metric: Metric) -> Vec<f64> {
    values(&clean_runs(scenario, framework), |r| metric.of(r))
}

/// Whether runs can fairly compare `metric`. Throughput only in the closed model and when no run
/// was limited by anything but the server; latency when the load was equal and the generator
/// kept it (open model: the generator kept its schedule; closed model: nothing else limited);
/// CPU per request, peak memory and error rate always: they are per request, whatever set the
/// rate.
pub fn fair_in(metric: Metric, open: bool, runs: &[&RunRecord]) -> bool {
    let limited =
        |role: Option<Role>| runs.iter().any(|r| r.bottlenecks.iter().any(|b| role.is_none_or(|x| b.role == x)));
    match metric {
        // The maximum is the server's only when the server broke (not the search's `max`, not the
        // generator) and nothing else ran out of CPU where it broke.
        Metric::MaxRps => {
            !limited(None)
                && runs
                    .iter()
                    .all(|r| r.load.as_ref().and_then(|l| l.search.as_ref()).is_some_and(|s| s.found_by_server()))
        }
        Metric::Rps => !open && !limited(None),
        Metric::P50 | Metric::P99 if open => !limited(Some(Role::Loadgen)),
        Metric::P50 | Metric::P99 => !limited(None),
        _ => true,
    }
}

/// The pairs of `a` and `b` on a metric: one per repeat in which both ran clean and measured it,
/// and the number of such repeats left out because the metric was not fair there ([`fair_in`]).
pub fn pairs(scenario: &ScenarioResult, a: &str, b: &str, metric: Metric) -> (Vec<u32>, Vec<(f64, f64)>, usize) {
    let (mut repeats, mut values, mut left_out) = (Vec::new(), Vec::new(), 0);
    let mut seen: Vec<u32> = scenario.runs.iter().map(|r| r.repeat).collect();
    seen.sort_unstable();
    seen.dedup();
    let open = scenario.model == ModelKind::Open;
    for repeat in seen {
        let find = |fw: &str| scenario.runs.iter().find(|r| r.repeat == repeat && r.framework == fw && r.is_clean());
        let (Some(ra), Some(rb)) = (find(a), find(b)) else { continue };
        let (Some(x), Some(y)) = (metric.of(ra), metric.of(rb)) else { continue };
        if !fair_in(metric, open, &[ra, rb]) {
            left_out += 1;
            continue;
        }
        repeats.push(repeat);
        values.push((x, y));
    }
    (repeats, values, left_out)
}

/// `a` against `b` on `metric`, pair by pair, judged with the practical threshold `min_effect`.
pub fn compare_paired(
    scenario: &ScenarioResult,
    a: &str,
    b: &str,
    metric: Metric,
    min_effect: f64,
    seed: u64,
) -> Option<PairedComparison> {
    let (repeats, values, left_out): (Vec<u32>, Vec<(f64, f64)>, usize) = {
        let (r, v, left_out) = pairs(scenario, a, b, metric);
        // Only pairs the statistics can use, so `repeats` lines up with the effects.
        let usable = |(x, y): (f64, f64)| {
            x.is_finite() && y.is_finite() && (metric.scale() == Scale::Absolute || (x > 0.0 && y > 0.0))
        };
        let (r, v) = r.into_iter().zip(v).filter(|(_, p)| usable(*p)).unzip();
        (r, v, left_out)
    };
    if values.is_empty() {
        return None;
    }
    let stats = stats::paired(&values, metric.scale(), metric.higher_is_better(), metric.threshold(min_effect), seed);
    let sentence = sentence(metric, a, b, &stats);
    Some(PairedComparison {
        metric,
        a: a.to_owned(),
        b: b.to_owned(),
        higher_is_better: metric.higher_is_better(),
        repeats,
        left_out,
        stats,
        sentence,
    })
}

/// A relative change as a signed percentage, or an absolute one in percentage points.
fn signed(metric: Metric, x: f64) -> String {
    match metric.scale() {
        Scale::Relative => format!("{:+.1}%", x * 100.0),
        Scale::Absolute => format!("{:+.2} pp", x * 100.0),
    }
}

fn magnitude(metric: Metric, x: f64) -> String {
    match metric.scale() {
        Scale::Relative => format!("{:.1}%", x.abs() * 100.0),
        Scale::Absolute => format!("{:.2} pp", x.abs() * 100.0),
    }
}

fn p_text(p: f64) -> String {
    if p < 0.001 { "p < 0.001".to_owned() } else { format!("p = {p:.3}") }
}

/// The outcome of a paired comparison in words a reviewer can check.
pub fn sentence(metric: Metric, a: &str, b: &str, s: &PairedStats) -> String {
    let label = metric.label();
    let threshold = match metric.scale() {
        Scale::Relative => format!("±{:.1}%", s.min_effect * 100.0),
        Scale::Absolute => format!("±{:.2} pp", s.min_effect * 100.0),
    };
    let ab = format!(
        "{a} vs {b} {} (95% CI {} to {}; {} pairs, sign-flip {})",
        signed(metric, s.effect),
        signed(metric, s.low),
        signed(metric, s.high),
        s.n,
        p_text(s.p_value)
    );
    match s.outcome {
        Outcome::ABetter | Outcome::BBetter => {
            let a_wins = s.outcome == Outcome::ABetter;
            let (winner, loser) = if a_wins { (a, b) } else { (b, a) };
            // The change from the loser to the winner. The interval is quoted as measured (A vs
            // B, signed): the test, not the interval, decides significance (see `stats::paired`),
            // so the interval may reach past zero, and it must be read that way.
            let w = if a_wins {
                s.effect
            } else if metric.scale() == Scale::Relative {
                1.0 / (1.0 + s.effect) - 1.0
            } else {
                -s.effect
            };
            let direction = if w > 0.0 { "higher" } else { "lower" };
            let agree = if s.effect > 0.0 { s.a_higher } else { s.a_lower };
            format!(
                "{winner} {} {direction} than {loser} by {} ({agree} of {} pairs agree, sign-flip {}; {a} vs {b} {}, \
                 95% CI {} to {})",
                label,
                magnitude(metric, w),
                s.n,
                p_text(s.p_value),
                signed(metric, s.effect),
                signed(metric, s.low),
                signed(metric, s.high)
            )
        }
        Outcome::Equivalent => format!("{label} equivalent within {threshold}: {ab}"),
        Outcome::BelowThreshold => {
            format!("{label} differs, but by less than {threshold} (no practical difference): {ab}")
        }
        Outcome::Inconclusive => format!(
            "{label} inconclusive: {ab}; about {} pairs would tell",
            s.needed_pairs.map_or_else(|| "more".to_owned(), |n| n.to_string())
        ),
        Outcome::TooFewPairs => format!(
            "{label}: {a} vs {b} ranged {} to {} over {} pairs (a range, covering the median {:.0}% of the time; a 95% \
             interval needs {MIN_PAIRS} pairs), so no verdict",
            signed(metric, s.low),
            signed(metric, s.high),
            s.n,
            s.coverage * 100.0
        ),
    }
}

/// The roles that limited at least one run of the scenario, sorted.
pub fn limited_by(scenario: &ScenarioResult) -> Vec<Role> {
    let mut roles: Vec<Role> = scenario.runs.iter().flat_map(|r| r.bottlenecks.iter().map(|b| b.role)).collect();
    roles.sort();
    roles.dedup();
    roles
}

/// The metrics contenders are compared on in `scenario`: throughput in the closed model only (in
/// the open model the schedule fixes it), latency, CPU per request, peak memory and error rate.
/// Each comparison then keeps only the pairs where its metric is fair ([`fair_in`]).
pub fn metrics_for(scenario: &ScenarioResult) -> Vec<Metric> {
    if scenario.model == ModelKind::Search {
        // Latency and errors are within the SLO at each maximum by construction; CPU per request
        // and memory are read at each contender's own maximum.
        return vec![Metric::MaxRps, Metric::Cpu, Metric::PeakRss];
    }
    let mut metrics = if scenario.model == ModelKind::Open { vec![] } else { vec![Metric::Rps] };
    metrics.extend([Metric::P50, Metric::P99, Metric::Cpu, Metric::PeakRss, Metric::ErrorRate]);
    metrics
}

/// Summarises a scenario's runs for `frameworks` (in the order given), judging differences with
/// the practical threshold `min_effect`; `None` when no framework has a clean run.
pub fn summarise(scenario: &ScenarioResult, frameworks: &[String], min_effect: f64, seed: u64) -> Option<Summary> {
    let mut summaries = Vec::new();
    for fw in frameworks {
        let runs = clean_runs(scenario, fw);
        if runs.is_empty() {
            continue;
        }
        let measured = |metric: Metric| values(&runs, |r| metric.of(r));
        let est = |metric: Metric| stats::estimate(&measured(metric));
        let some_est = |metric: Metric| Some(measured(metric)).filter(|v| !v.is_empty()).map(|v| stats::estimate(&v));
        let judged: Vec<bool> = runs.iter().filter_map(|r| r.load.as_ref()?.slo.as_ref().map(|s| s.pass)).collect();
        summaries.push(FrameworkSummary {
            framework: fw.clone(),
            clean_runs: runs.len(),
            rps: est(Metric::Rps),
            p50_us: est(Metric::P50),
            p90_us: est(Metric::P90),
            p99_us: est(Metric::P99),
            p999_us: est(Metric::P999),
            max_us: est(Metric::Max),
            error_rate: est(Metric::ErrorRate),
            server_peak_rss_bytes: some_est(Metric::PeakRss),
            server_cpu_ms_per_1k_requests: some_est(Metric::Cpu),
            slo: (!judged.is_empty())
                .then(|| SloTally { met: judged.iter().filter(|p| **p).count(), judged: judged.len() }),
            send_lag_p99_us: some_est(Metric::SendLagP99),
            max_sustainable_rps: some_est(Metric::MaxRps),
        });
    }
    if summaries.is_empty() {
        return None;
    }
    let limited_by = limited_by(scenario);
    let metrics = metrics_for(scenario);
    let mut comparisons = Vec::new();
    if let Some(first) = summaries.first().map(|s| s.framework.clone()) {
        for (oi, other) in summaries.iter().skip(1).enumerate() {
            for (k, metric) in metrics.iter().enumerate() {
                let seed = seed ^ ((oi as u64) << 8) ^ k as u64;
                comparisons.extend(compare_paired(scenario, &first, &other.framework, *metric, min_effect, seed));
            }
        }
    }
    let headline = headline_metric(scenario);
    let throughput_compared = comparisons.iter().any(|c| c.metric == headline);
    let verdict = verdict(scenario, &comparisons, &limited_by);
    Some(Summary { frameworks: summaries, comparisons, limited_by, throughput_compared, min_effect, verdict })
}

fn verdict(scenario: &ScenarioResult, comparisons: &[PairedComparison], limited_by: &[Role]) -> String {
    if comparisons.is_empty() {
        return "Only one contender has clean runs; nothing to compare.".to_owned();
    }
    let find = |metric: Metric| comparisons.iter().find(|c| c.metric == metric).map(|c| c.sentence.clone());
    let mut efficiency: Vec<String> = [Metric::Cpu, Metric::PeakRss].into_iter().filter_map(find).collect();
    if let Some(c) = comparisons.iter().find(|c| c.metric == Metric::ErrorRate)
        && c.stats.outcome != Outcome::Equivalent
    {
        efficiency.push(c.sentence.clone());
    }
    let open = scenario.model == ModelKind::Open;
    let search = scenario.model == ModelKind::Search;
    let headline = comparisons.iter().find(|c| c.metric == headline_metric(scenario));
    let limits = joined(limited_by, " and ");
    let mut out = match headline {
        Some(c) if c.left_out == 0 => format!("{}.", capitalised(&c.sentence)),
        Some(c) => format!(
            "{} ({} pair(s) left out: limited by the {limits} in those repeats).",
            capitalised(&c.sentence),
            c.left_out
        ),
        None if search => {
            let why: Vec<String> = scenario
                .runs
                .iter()
                .filter_map(|r| Some((r, r.load.as_ref()?.search.as_ref()?)))
                .filter(|(r, s)| !s.found_by_server() || !r.bottlenecks.is_empty())
                .map(|(r, s)| format!("{} repeat {}: {}", r.framework, r.repeat, s.conclusion))
                .take(2)
                .collect();
            format!(
                "Maximum sustainable throughput was not compared: in no pair did both servers break their SLO \
                 with nothing else limiting them ({}).",
                if why.is_empty() { "too few clean pairs".to_owned() } else { why.join("; ") }
            )
        }
        None if !limited_by.is_empty() => format!(
            "{} was not compared: the {limits} limited the runs (a saturated CPU, or a load generator that did \
             not keep its schedule; see the runs), so it would measure that, not the servers.",
            if open { "Latency" } else { "Throughput" }
        ),
        None => String::new(),
    };
    if out.is_empty() && efficiency.is_empty() {
        return "No difference beyond the error rate's tolerance, and nothing else was compared.".to_owned();
    }
    if !efficiency.is_empty() {
        let lead = if search {
            "At each contender's own maximum (peak memory: over the whole search): "
        } else if limited_by.is_empty() {
            ""
        } else {
            "At equal delivered load: "
        };
        if !out.is_empty() {
            out.push(' ');
        }
        if lead.is_empty() {
            let sentences: Vec<String> = efficiency.iter().map(|s| capitalised(s)).collect();
            out.push_str(&format!("{}.", sentences.join(". ")));
        } else {
            out.push_str(&format!("{lead}{}.", efficiency.join("; ")));
        }
    }
    out
}

/// What a scenario is mainly compared on: throughput (closed model), p99 at the scheduled rate
/// (open model) or the maximum sustainable throughput (search).
pub fn headline_metric(scenario: &ScenarioResult) -> Metric {
    match scenario.model {
        ModelKind::Open => Metric::P99,
        ModelKind::Search => Metric::MaxRps,
        ModelKind::Closed => Metric::Rps,
    }
}

/// Names joined by `sep`, as `[a, b].join(sep)` does for strings.
pub fn joined(items: &[impl std::fmt::Display], sep: &str) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(sep)
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(cores: f64) -> ProcessStats {
        ProcessStats {
            pids: vec![1],
            peak_rss_bytes: 1,
            sampled_peak_rss_bytes: 1,
            mean_rss_bytes: 1,
            idle_rss_bytes: None,
            cpu_seconds: cores * 10.0,
            mean_cpu_cores: cores,
            cpu_ms_per_1k_requests: None,
            allotted_cpus: 1,
        }
    }

    #[test]
    fn a_shared_core_names_the_role_that_filled_it() {
        let plan = CpuPlan { server: Some(vec![0]), loadgen: Some(vec![1]), db: Some(vec![1]), origin: "test".into() };
        let mut resources =
            BTreeMap::from([(Role::Server, role(0.9)), (Role::Loadgen, role(0.15)), (Role::Postgres, role(0.8))]);
        let found = bottlenecks(&resources, &plan, 2);
        assert_eq!(found.iter().map(|b| b.role).collect::<Vec<_>>(), [Role::Postgres], "{found:?}");
        assert!(found[0].detail.contains("shares with loadgen"), "{}", found[0].detail);
        // Half as busy: nothing saturated. An external Postgres (not observed) is never named.
        resources.insert(Role::Postgres, role(0.4));
        assert!(bottlenecks(&resources, &plan, 2).is_empty());
        resources.remove(&Role::Postgres);
        resources.insert(Role::Loadgen, role(0.95));
        let found = bottlenecks(&resources, &plan, 2);
        assert_eq!(found.iter().map(|b| b.role).collect::<Vec<_>>(), [Role::Loadgen]);
    }
}
