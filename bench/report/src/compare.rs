//! `taskbench compare`: a NEW run against a BASELINE run made separately (another day, another
//! commit), per scenario, framework and metric, with the relative change (the Hodges–Lehmann
//! shift), its exact Mann–Whitney 95% confidence interval and a verdict; rendered as a Markdown
//! table. Two separate runs are not paired, so drift of the machine between them is read as
//! change: for a CI gate, `taskbench gate` on one interleaved run is the trustworthy tool.
//!
//! The rule: a change is a regression when its point estimate is worse than the threshold *and*
//! its 95% interval lies entirely on the worse side of zero. Requiring both keeps the gate quiet
//! on noise (a wide interval straddles zero) and on real but tolerated changes (inside the
//! threshold), and loud on a clear loss.
//!
//! Error rates are compared in absolute terms (a baseline of zero errors has no relative
//! change): a regression when every clean new repeat failed more often than every clean
//! baseline repeat and the medians differ by more than [`ERROR_RATE_TOLERANCE`]. A new run whose
//! repeats all broke the error budget has no clean run at all and fails the gate outright.

use serde::Serialize;

pub use crate::bencher::bencher_metric_format;
use crate::model::{Results, ScenarioResult};
use crate::stats::IntervalKind;
use crate::{stats, summary};

mod markdown;

use markdown::{interval, percent};

pub use crate::metric::{ERROR_RATE_TOLERANCE, Metric};

/// The default `--max-regression`: 5%.
pub const DEFAULT_MAX_REGRESSION: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// Largest tolerated worsening, as a fraction (0.05 = 5%).
    pub max_regression: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self { max_regression: DEFAULT_MAX_REGRESSION }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly worse, by more than the threshold: fails the gate.
    Regression,
    /// Significantly better, by more than the threshold.
    Improvement,
    /// The 95% interval includes no change.
    NoSignificantChange,
    /// Significantly different (either way), but by less than the threshold.
    WithinThreshold,
    /// In the baseline, absent from the new run: reported, not failing.
    Missing,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::NoSignificantChange => "no significant change",
            Verdict::WithinThreshold => "within threshold",
            Verdict::Missing => "missing",
        }
    }
}

/// One scenario, framework and metric. The new-side fields are `None` for [`Verdict::Missing`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub scenario: String,
    pub framework: String,
    pub metric: Metric,
    /// Median over the baseline's clean repeats.
    pub baseline_median: f64,
    /// Median over the new run's clean repeats.
    pub new_median: Option<f64>,
    /// `new / baseline - 1`: -0.2 is 20% less.
    pub change: Option<f64>,
    /// Exact 95% interval of `change` (or, with too few repeats for one, the range of the
    /// pairwise changes: see the notes).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Clean repeats on each side; with one on either side the interval is the point itself.
    pub baseline_repeats: usize,
    pub new_repeats: usize,
    /// The interval is only the range of the changes (too few repeats for a 95% interval, or
    /// the error rate's extremes): nothing is called significant on it.
    pub ci_is_range: bool,
    pub verdict: Verdict,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub max_regression: f64,
    pub baseline_id: String,
    pub new_id: String,
    pub rows: Vec<Row>,
    /// `scenario/framework` pairs in the baseline that the new run lacks.
    pub missing: Vec<String>,
    /// Why the gate fails besides regressions (an incomplete new run, a framework without clean runs).
    pub failures: Vec<String>,
    /// What a reader should know but does not fail the gate (differing machines, extra scenarios).
    pub notes: Vec<String>,
}

/// Why two results cannot be compared at all.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("the maximum regression must be a fraction of at least 0 (0.05 = 5%), found {0}")]
    Threshold(f64),
    #[error(
        "the baseline and the new run share no scenario (baseline: {}; new: {}); expected at least one scenario run in both",
        list(.baseline),
        list(.new)
    )]
    NoCommonScenario { baseline: Vec<String>, new: Vec<String> },
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
}

/// Compares `new` against `baseline`.
pub fn compare(baseline: &Results, new: &Results, opts: &CompareOptions) -> Result<Comparison, CompareError> {
    if !(opts.max_regression.is_finite() && opts.max_regression >= 0.0) {
        return Err(CompareError::Threshold(opts.max_regression));
    }
    let names = |r: &Results| r.scenarios.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    if !baseline.scenarios.iter().any(|b| new.scenarios.iter().any(|n| n.name == b.name)) {
        return Err(CompareError::NoCommonScenario { baseline: names(baseline), new: names(new) });
    }
    let mut out = Comparison {
        max_regression: opts.max_regression,
        baseline_id: baseline.id.clone(),
        new_id: new.id.clone(),
        rows: Vec::new(),
        missing: Vec::new(),
        failures: Vec::new(),
        notes: environment_notes(baseline, new),
    };
    if let Some(why) = &new.incomplete {
        out.failures.push(format!("the new run is incomplete ({why}), so it may lack what the baseline measured"));
    }
    if let Some(why) = &baseline.incomplete {
        out.notes.push(format!("The baseline run is incomplete ({why}); only what it measured is compared."));
    }
    for base in &baseline.scenarios {
        let Some(next) = new.scenarios.iter().find(|n| n.name == base.name) else {
            for fw in base.frameworks() {
                missing(&mut out, base, &fw);
            }
            continue;
        };
        scenario_notes(&mut out, base, next);
        let known = base.frameworks();
        for fw in &known {
            compare_framework(&mut out, base, next, fw, opts.max_regression);
        }
        for fw in next.frameworks().iter().filter(|fw| !known.contains(fw)) {
            out.notes.push(format!("{}/{fw} is only in the new run; not compared.", base.name));
        }
    }
    for extra in new.scenarios.iter().filter(|n| !baseline.scenarios.iter().any(|b| b.name == n.name)) {
        out.notes.push(format!("Scenario {} is only in the new run; not compared.", extra.name));
    }
    Ok(out)
}

fn missing(out: &mut Comparison, base: &ScenarioResult, fw: &str) {
    let repeats = summary::clean_runs(base, fw).len();
    if repeats == 0 {
        return; // nothing measured in the baseline either
    }
    out.missing.push(format!("{}/{fw}", base.name));
    for metric in Metric::COMPARED {
        let values = summary::metric_values(base, fw, metric);
        if values.is_empty() {
            continue;
        }
        out.rows.push(Row {
            scenario: base.name.clone(),
            framework: fw.to_owned(),
            metric,
            baseline_median: stats::median(&values),
            new_median: None,
            change: None,
            ci_low: None,
            ci_high: None,
            baseline_repeats: repeats,
            new_repeats: 0,
            ci_is_range: false,
            verdict: Verdict::Missing,
        });
    }
}

fn compare_framework(out: &mut Comparison, base: &ScenarioResult, next: &ScenarioResult, fw: &str, max: f64) {
    let pair = format!("{}/{fw}", base.name);
    let base_repeats = summary::clean_runs(base, fw).len();
    if base_repeats == 0 {
        out.notes.push(format!("{pair} has no clean runs in the baseline; nothing to compare it against."));
        return;
    }
    let runs: Vec<_> = next.runs.iter().filter(|r| r.framework == fw).collect();
    if runs.is_empty() {
        missing(out, base, fw);
        return;
    }
    let new_repeats = summary::clean_runs(next, fw).len();
    if new_repeats == 0 {
        let why = runs.iter().find_map(|r| r.unclean_because()).unwrap_or_else(|| "nothing measured".to_owned());
        out.failures.push(format!(
            "{pair}: the new run has no clean runs ({} run(s), first problem: {why}) where the baseline has {base_repeats}",
            runs.len()
        ));
        return;
    }
    for metric in Metric::COMPARED {
        let b = summary::metric_values(base, fw, metric);
        let n = summary::metric_values(next, fw, metric);
        if b.is_empty() && n.is_empty() {
            continue; // not a metric of this scenario's model (a search's maximum, a closed model's…)
        }
        if b.is_empty() || n.is_empty() {
            let side = if b.is_empty() { "the baseline" } else { "the new run" };
            out.notes.push(format!("{pair}: {} was not measured in {side}; not compared.", metric.short_label()));
            continue;
        }
        let Some((change, ci_low, ci_high, kind, coverage)) = stats::unpaired(&n, &b) else {
            out.notes.push(format!("{pair}: a {} of zero on one side; no relative change.", metric.short_label()));
            continue;
        };
        let verdict = if kind == IntervalKind::Range {
            // Too few repeats for any 95% interval: nothing can be called significant.
            let note = format!(
                "{pair}: {} and {} clean repeats allow no 95% interval between two separate runs (the widest \
                 covers {:.0}%), so no change is called.",
                b.len(),
                n.len(),
                coverage * 100.0
            );
            if !out.notes.contains(&note) {
                out.notes.push(note);
            }
            Verdict::NoSignificantChange
        } else {
            judge(metric, change, ci_low, ci_high, max)
        };
        if kind == IntervalKind::Ci && verdict == Verdict::NoSignificantChange && worse_by(metric, change) > max {
            out.notes.push(format!(
                "{pair}: {} changed by {} but its 95% CI ({}) includes no change: too noisy to call; more repeats would tell.",
                metric.short_label(),
                percent(change),
                interval(ci_low, ci_high)
            ));
        }
        out.rows.push(Row {
            scenario: base.name.clone(),
            framework: fw.to_owned(),
            metric,
            baseline_median: stats::median(&b),
            new_median: Some(stats::median(&n)),
            change: Some(change),
            ci_low: Some(ci_low),
            ci_high: Some(ci_high),
            baseline_repeats: b.len(),
            new_repeats: n.len(),
            ci_is_range: kind == IntervalKind::Range,
            verdict,
        });
    }
    error_rate_row(out, base, next, fw);
}

/// The absolute error-rate comparison (see the module documentation).
fn error_rate_row(out: &mut Comparison, base: &ScenarioResult, next: &ScenarioResult, fw: &str) {
    let b = summary::metric_values(base, fw, Metric::ErrorRate);
    let n = summary::metric_values(next, fw, Metric::ErrorRate);
    if b.is_empty() || n.is_empty() {
        return;
    }
    let range = |v: &[f64]| (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max));
    let ((b_min, b_max), (n_min, n_max)) = (range(&b), range(&n));
    let change = stats::median(&n) - stats::median(&b);
    let (ci_low, ci_high) = (n_min - b_max, n_max - b_min);
    let verdict = if ci_low > 0.0 && change > ERROR_RATE_TOLERANCE {
        Verdict::Regression
    } else if ci_high < 0.0 && -change > ERROR_RATE_TOLERANCE {
        Verdict::Improvement
    } else if ci_low > 0.0 || ci_high < 0.0 {
        Verdict::WithinThreshold
    } else {
        Verdict::NoSignificantChange
    };
    out.rows.push(Row {
        scenario: base.name.clone(),
        framework: fw.to_owned(),
        metric: Metric::ErrorRate,
        baseline_median: stats::median(&b),
        new_median: Some(stats::median(&n)),
        change: Some(change),
        ci_low: Some(ci_low),
        ci_high: Some(ci_high),
        baseline_repeats: b.len(),
        new_repeats: n.len(),
        ci_is_range: true,
        verdict,
    });
}

/// How much worse a relative change is for `metric` (negative: better).
fn worse_by(metric: Metric, change: f64) -> f64 {
    if metric.higher_is_better() { -change } else { change }
}

/// The verdict rule (see the module documentation). `change` and its interval are relative
/// (`new / baseline - 1`); `max` is the tolerated worsening as a fraction.
pub fn judge(metric: Metric, change: f64, ci_low: f64, ci_high: f64, max: f64) -> Verdict {
    let worse = worse_by(metric, change);
    // The interval in "worse" terms: its lower end is the most favourable reading.
    let (least_worse, most_worse) = if metric.higher_is_better() { (-ci_high, -ci_low) } else { (ci_low, ci_high) };
    if least_worse > 0.0 {
        if worse > max { Verdict::Regression } else { Verdict::WithinThreshold }
    } else if most_worse < 0.0 {
        if -worse > max { Verdict::Improvement } else { Verdict::WithinThreshold }
    } else {
        Verdict::NoSignificantChange
    }
}

fn environment_notes(baseline: &Results, new: &Results) -> Vec<String> {
    let (b, n) = (&baseline.environment, &new.environment);
    let (bc, nc) = (&baseline.config, &new.config);
    let mut diffs = Vec::new();
    let mut differ = |what: &str, x: String, y: String| {
        if x != y {
            diffs.push(format!("{what} `{x}` vs `{y}`"));
        }
    };
    differ("CPU model", b.machine.cpu_model.clone(), n.machine.cpu_model.clone());
    differ("logical CPUs", b.machine.logical_cpus.to_string(), n.machine.logical_cpus.to_string());
    differ("physical cores", opt(b.machine.physical_cores), opt(n.machine.physical_cores));
    differ("memory", b.machine.memory_bytes.to_string(), n.machine.memory_bytes.to_string());
    differ("build profile", b.build_profile.clone(), n.build_profile.clone());
    differ("rustc", opt(b.rustc.as_ref()), opt(n.rustc.as_ref()));
    differ("duration override (s)", opt(bc.duration_secs), opt(nc.duration_secs));
    differ("warm-up override (s)", opt(bc.warmup_secs), opt(nc.warmup_secs));
    differ("quick", bc.quick.to_string(), nc.quick.to_string());
    let db = |c: &crate::model::RunConfig| format!("{} durable={}", c.db.kind, opt(c.db.durable));
    differ("database", db(bc), db(nc));
    let cpus = |c: &crate::model::CpuPlan| format!("server {:?}, loadgen {:?}, db {:?}", c.server, c.loadgen, c.db);
    differ("CPU plan", cpus(&bc.cpus), cpus(&nc.cpus));
    differ("server workers", bc.server_workers.to_string(), nc.server_workers.to_string());
    differ("server pool size", bc.server_pool_size.to_string(), nc.server_pool_size.to_string());
    differ("targets", format!("{:?}", bc.targets), format!("{:?}", nc.targets));
    differ("guarantees given up", bc.lost_guarantees.join("; "), nc.lost_guarantees.join("; "));
    if diffs.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "The two runs were made differently ({}): the changes below measure that difference too, so they are not \
         a like-for-like comparison. Run both on the same machine with the same settings.",
        diffs.join("; ")
    )]
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
}

fn scenario_notes(out: &mut Comparison, base: &ScenarioResult, next: &ScenarioResult) {
    if base.duration_secs != next.duration_secs || base.warmup_secs != next.warmup_secs {
        out.notes.push(format!(
            "Scenario {} ran {}s (+{}s warm-up) in the baseline and {}s (+{}s) in the new run.",
            base.name, base.duration_secs, base.warmup_secs, next.duration_secs, next.warmup_secs
        ));
    }
    if base.source != next.source {
        out.notes.push(format!(
            "Scenario {}'s definition differs between the runs: its changes are part of what is compared.",
            base.name
        ));
    }
}

impl Comparison {
    /// Whether the gate fails: a regression, an incomplete new run, or a framework that stopped
    /// producing clean runs.
    pub fn failed(&self) -> bool {
        !self.failures.is_empty() || self.regressions().next().is_some()
    }

    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regression)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_rule_needs_both_significance_and_the_threshold() {
        use Verdict::*;
        // (metric, change, ci_low, ci_high) -> verdict at a 5% threshold
        let cases = [
            (Metric::Rps, -0.20, -0.22, -0.18, Regression),
            (Metric::Rps, -0.20, -0.30, 0.01, NoSignificantChange), // too noisy to call
            (Metric::Rps, -0.03, -0.04, -0.02, WithinThreshold),
            (Metric::Rps, -0.05, -0.06, -0.04, WithinThreshold), // exactly the threshold is tolerated
            (Metric::Rps, 0.20, 0.18, 0.22, Improvement),
            (Metric::Rps, 0.03, 0.02, 0.04, WithinThreshold),
            (Metric::Rps, 0.0, 0.0, 0.0, NoSignificantChange), // one identical repeat each
            (Metric::P99, 0.30, 0.25, 0.35, Regression),       // latency: higher is worse
            (Metric::P99, -0.30, -0.35, -0.25, Improvement),
            (Metric::P50, 0.10, -0.01, 0.20, NoSignificantChange),
            (Metric::PeakRss, 0.08, 0.07, 0.09, Regression),
            (Metric::PeakRss, 0.08, 0.08, 0.08, Regression), // one repeat: the point is the interval
        ];
        for (metric, change, lo, hi, expected) in cases {
            assert_eq!(judge(metric, change, lo, hi, 0.05), expected, "{metric:?} {change} [{lo}, {hi}]");
        }
        assert_eq!(
            judge(Metric::Rps, -0.01, -0.02, -0.005, 0.0),
            Regression,
            "a zero threshold fails any significant loss"
        );
    }
}
