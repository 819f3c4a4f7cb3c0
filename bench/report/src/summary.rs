//! From runs to conclusions: which roles were saturated (bottleneck honesty), each framework's
//! medians over its clean repeats, framework ratios with confidence intervals, and the verdict.

use std::collections::BTreeMap;

use crate::model::{
    Bottleneck, CpuPlan, FrameworkSummary, ProcessStats, Ratio, RunRecord, ScenarioResult, SloTally, Summary,
};
use crate::stats;

/// Mean CPU at or above this share of a role's allotment, over the measured phase, counts as
/// saturated.
pub const SATURATED: f64 = 0.85;
/// A role must use at least this share of its allotment itself to be named as a limit when it
/// shares CPUs with others (so a nearly idle Postgres beside a busy load generator is not blamed).
pub const SIGNIFICANT_SHARE: f64 = 0.20;

/// The metrics ratios are computed for, and whether larger is better.
pub const RATIO_METRICS: [(&str, bool); 4] =
    [("rps", true), ("p50_us", false), ("p99_us", false), ("server_peak_rss_bytes", false)];

/// Roles whose CPUs were saturated during the measured phase, from each role's mean CPU over
/// exactly that phase (`ProcessStats::mean_cpu_cores`, measured from CPU-time counters).
/// A role's CPUs are shared with every role pinned to an overlapping set (or with everyone when
/// unpinned), so a load generator and a Postgres sharing one core are judged together.
pub fn bottlenecks(resources: &BTreeMap<String, ProcessStats>, cpus: &CpuPlan, logical_cpus: usize) -> Vec<Bottleneck> {
    let cores = |role: &str| resources.get(role).map_or(0.0, |s| s.mean_cpu_cores);
    let usage = [
        ("server", cpus.server.as_deref(), cores("server")),
        ("loadgen", cpus.loadgen.as_deref(), cores("loadgen")),
        ("postgres", cpus.db.as_deref(), cores("postgres")),
    ];
    let overlaps = |a: Option<&[usize]>, b: Option<&[usize]>| match (a, b) {
        (Some(a), Some(b)) => a.iter().any(|c| b.contains(c)),
        _ => true,
    };
    let mut out = Vec::new();
    for (role, set, own) in &usage[1..] {
        if !resources.contains_key(*role) {
            continue; // not observed (an external Postgres)
        }
        let allot = set.map_or(logical_cpus, <[usize]>::len).max(1) as f64;
        let sharers: Vec<&str> = usage.iter().filter(|(_, s, _)| overlaps(*set, *s)).map(|(r, _, _)| *r).collect();
        let together: f64 = usage.iter().filter(|(_, s, _)| overlaps(*set, *s)).map(|(_, _, u)| u).sum();
        let utilisation = together / allot;
        if utilisation >= SATURATED && own / allot >= SIGNIFICANT_SHARE {
            let detail = if sharers.len() > 1 {
                format!(
                    "{role} used {:.0}% of its {allot} CPU(s), which it shares with {}; together {:.0}%",
                    own / allot * 100.0,
                    sharers.iter().filter(|r| *r != role).copied().collect::<Vec<_>>().join(" and "),
                    utilisation * 100.0
                )
            } else {
                format!("{role} used {:.0}% of its {allot} CPU(s)", utilisation * 100.0)
            };
            out.push(Bottleneck { role: (*role).to_owned(), utilisation, detail });
        }
    }
    out
}

fn values(runs: &[&RunRecord], f: impl Fn(&RunRecord) -> Option<f64>) -> Vec<f64> {
    runs.iter().filter_map(|r| f(r)).collect()
}

fn metric(run: &RunRecord, name: &str) -> Option<f64> {
    let load = run.load.as_ref()?;
    let l = &load.total.latency_us;
    Some(match name {
        "rps" => load.total.rps,
        "p50_us" => l.p50 as f64,
        "p90_us" => l.p90 as f64,
        "p99_us" => l.p99 as f64,
        "p999_us" => l.p999 as f64,
        "max_us" => l.max as f64,
        "error_rate" => load.total.error_rate,
        "server_peak_rss_bytes" => run.resources.get("server")?.peak_rss_bytes as f64,
        "server_cpu_ms_per_1k_requests" => run.resources.get("server")?.cpu_ms_per_1k_requests?,
        "send_lag_p99_us" => load.open.as_ref()?.send_lag_us.p99 as f64,
        _ => return None,
    })
}

/// The clean runs of `framework` in `scenario`.
pub fn clean_runs<'a>(scenario: &'a ScenarioResult, framework: &str) -> Vec<&'a RunRecord> {
    scenario.runs.iter().filter(|r| r.framework == framework && r.is_clean()).collect()
}

/// A metric of `framework`'s clean runs, one value per repeat.
pub fn metric_values(scenario: &ScenarioResult, framework: &str, name: &str) -> Vec<f64> {
    values(&clean_runs(scenario, framework), |r| metric(r, name))
}

/// Summarises a scenario's runs for `frameworks` (in the order given); `None` when no
/// framework has a clean run.
pub fn summarise(scenario: &ScenarioResult, frameworks: &[String], seed: u64) -> Option<Summary> {
    let mut summaries = Vec::new();
    for (i, fw) in frameworks.iter().enumerate() {
        let runs = clean_runs(scenario, fw);
        if runs.is_empty() {
            continue;
        }
        let est = |name: &str, k: u64| stats::estimate(&values(&runs, |r| metric(r, name)), seed ^ (i as u64) << 8 ^ k);
        let cpu = values(&runs, |r| metric(r, "server_cpu_ms_per_1k_requests"));
        let lag = values(&runs, |r| metric(r, "send_lag_p99_us"));
        let judged: Vec<bool> = runs.iter().filter_map(|r| r.load.as_ref()?.slo.as_ref().map(|s| s.pass)).collect();
        summaries.push(FrameworkSummary {
            framework: fw.clone(),
            clean_runs: runs.len(),
            rps: est("rps", 1),
            p50_us: est("p50_us", 2),
            p90_us: est("p90_us", 3),
            p99_us: est("p99_us", 4),
            p999_us: est("p999_us", 5),
            max_us: est("max_us", 6),
            error_rate: est("error_rate", 7),
            server_peak_rss_bytes: est("server_peak_rss_bytes", 8),
            server_cpu_ms_per_1k_requests: (!cpu.is_empty()).then(|| stats::estimate(&cpu, seed ^ 9)),
            slo: (!judged.is_empty())
                .then(|| SloTally { met: judged.iter().filter(|p| **p).count(), judged: judged.len() }),
            send_lag_p99_us: (!lag.is_empty()).then(|| stats::estimate(&lag, seed ^ 10)),
        });
    }
    if summaries.is_empty() {
        return None;
    }
    let mut ratios = Vec::new();
    if let Some(first) = summaries.first().map(|s| s.framework.clone()) {
        for other in summaries.iter().skip(1) {
            for (k, (name, _)) in RATIO_METRICS.iter().enumerate() {
                let a = metric_values(scenario, &first, name);
                let b = metric_values(scenario, &other.framework, name);
                if let Some((ratio, ci_low, ci_high)) = stats::ratio(&a, &b, seed ^ 0x5eed ^ k as u64) {
                    ratios.push(Ratio {
                        metric: (*name).to_owned(),
                        numerator: first.clone(),
                        denominator: other.framework.clone(),
                        ratio,
                        ci_low,
                        ci_high,
                    });
                }
            }
        }
    }
    let mut limited_by: Vec<String> =
        scenario.runs.iter().flat_map(|r| r.bottlenecks.iter().map(|b| b.role.clone())).collect();
    limited_by.sort();
    limited_by.dedup();
    let verdict = verdict(scenario, &ratios, &limited_by);
    Some(Summary { frameworks: summaries, ratios, limited_by, verdict })
}

fn verdict(scenario: &ScenarioResult, ratios: &[Ratio], limited_by: &[String]) -> String {
    if !limited_by.is_empty() {
        return format!(
            "Limited by the {} (a saturated CPU, or a load generator that did not keep its schedule; see the runs): \
             these numbers measure it as much as the frameworks, so no winner is named. Give it more CPU (--cpus) or \
             lower the load.",
            limited_by.join(" and ")
        );
    }
    // At a fixed arrival rate throughput is set by the scenario; latency is what differs.
    let (metric, what, higher_better) =
        if scenario.model == "open" { ("p99_us", "p99 latency", false) } else { ("rps", "throughput", true) };
    let Some(r) = ratios.iter().find(|r| r.metric == metric) else {
        return "Only one framework has clean runs; nothing to compare.".to_owned();
    };
    let repeats = scenario.runs.iter().filter(|x| x.is_clean()).map(|x| x.repeat).max().unwrap_or(0);
    if scenario.runs.iter().filter(|x| x.is_clean() && x.framework == r.numerator).count() < 2
        || scenario.runs.iter().filter(|x| x.is_clean() && x.framework == r.denominator).count() < 2
    {
        return format!(
            "{what} ratio {} / {} = {:.3} from a single clean repeat ({repeats} run): no confidence interval, so no conclusion; use --repeats 3 or more.",
            r.numerator, r.denominator, r.ratio
        );
    }
    if r.ci_low <= 1.0 && r.ci_high >= 1.0 {
        return format!(
            "No significant {what} difference between {} and {} (ratio {:.3}, 95% CI {:.3}–{:.3}).",
            r.numerator, r.denominator, r.ratio, r.ci_low, r.ci_high
        );
    }
    let numerator_better = (r.ratio > 1.0) == higher_better;
    let (better, worse) =
        if numerator_better { (&r.numerator, &r.denominator) } else { (&r.denominator, &r.numerator) };
    let factor = if r.ratio >= 1.0 { r.ratio } else { 1.0 / r.ratio };
    let (lo, hi) = if r.ratio >= 1.0 { (r.ci_low, r.ci_high) } else { (1.0 / r.ci_high, 1.0 / r.ci_low) };
    let relation = if higher_better { "higher" } else { "lower" };
    let (shown, lo, hi) = if higher_better { (factor, lo, hi) } else { (1.0 / factor, 1.0 / hi, 1.0 / lo) };
    format!("{better} had {relation} {what} than {worse}: {shown:.3}× (95% CI {lo:.3}–{hi:.3}).")
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
        let mut resources = BTreeMap::from([
            ("server".to_owned(), role(0.9)),
            ("loadgen".to_owned(), role(0.15)),
            ("postgres".to_owned(), role(0.8)),
        ]);
        let found = bottlenecks(&resources, &plan, 2);
        assert_eq!(found.iter().map(|b| b.role.as_str()).collect::<Vec<_>>(), ["postgres"], "{found:?}");
        assert!(found[0].detail.contains("shares with loadgen"), "{}", found[0].detail);
        // Half as busy: nothing saturated. An external Postgres (not observed) is never named.
        resources.insert("postgres".to_owned(), role(0.4));
        assert!(bottlenecks(&resources, &plan, 2).is_empty());
        resources.remove("postgres");
        resources.insert("loadgen".to_owned(), role(0.95));
        let found = bottlenecks(&resources, &plan, 2);
        assert_eq!(found.iter().map(|b| b.role.as_str()).collect::<Vec<_>>(), ["loadgen"]);
    }
}
