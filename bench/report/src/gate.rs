//! `taskbench gate`: the CI performance gate on one interleaved run. Two builds ran as two
//! contenders (`taskbench run --contender base=… --contender head=…`), alternating A B, B A, …,
//! so every repeat gives a pair measured minutes apart at most, and drift of the machine falls
//! on both sides. Head is judged against base pair by pair on each metric that is fair in the
//! scenario (see [`crate::summary::fair_in`]): throughput when the servers set the pace,
//! p50/p99 at equal load, server CPU per request, server peak memory, error rate.
//!
//! The rule, per metric: a **regression** when the exact sign-flip test is significant at 5%
//! (two-sided) and the median pair change is worse by at least the practical threshold
//! (`--min-effect`, 2%; 0.1 percentage point for error rates). Below 6 pairs the gate refuses to
//! judge (exit 2) rather than pass by default. Throughput and latency keep only the pairs where
//! they are fair (nothing but the server limited either run); CPU per request, peak memory and
//! error rate use every clean pair.

use serde::Serialize;

use crate::metric::Metric;
use crate::model::ModelKind;
use crate::model::{PairedComparison, Results, ScenarioResult};
use crate::stats::{self, MIN_PAIRS, Outcome};
use crate::summary::{self, joined};

/// One metric of one scenario, head against base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateRow {
    pub scenario: String,
    pub metric: Metric,
    pub label: &'static str,
    pub base_median: f64,
    pub head_median: f64,
    /// `a` is head, `b` is base: effects are `head / base - 1` (or `head - base`).
    pub comparison: PairedComparison,
    pub regression: bool,
    pub improvement: bool,
}

/// The outcome of a gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub run_id: String,
    pub base: String,
    pub head: String,
    pub min_effect: f64,
    pub rows: Vec<GateRow>,
    /// Why the gate fails besides regressions (head without clean runs, an incomplete run).
    pub failures: Vec<String>,
    /// Why the gate cannot judge (too few pairs): exit 2.
    pub cannot_judge: Vec<String>,
    /// What a reader should know (metrics not compared, and why).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("the practical threshold must be a fraction of at least 0 (0.02 = 2%), found {0}")]
    Threshold(f64),
    #[error(
        "the run has {} contender(s) ({}); expected two, base and head (taskbench run --contender base=PATH --contender head=PATH)",
        .0.len(),
        .0.join(", ")
    )]
    Contenders(Vec<String>),
    #[error("base and head are the same contender, `{0}`; expected two different ones")]
    Same(String),
    #[error("no contender `{0}` in the run (it has {1})")]
    Unknown(String, String),
}

/// Judges `head` against `base` (default: the run's first and second contenders).
pub fn gate(results: &Results, base: Option<&str>, head: Option<&str>, min_effect: f64) -> Result<Gate, GateError> {
    if !(min_effect.is_finite() && min_effect >= 0.0) {
        return Err(GateError::Threshold(min_effect));
    }
    let contenders = &results.config.frameworks;
    let pick = |given: Option<&str>, index: usize| -> Result<String, GateError> {
        match given {
            Some(name) if contenders.iter().any(|c| c == name) => Ok(name.to_owned()),
            Some(name) => Err(GateError::Unknown(name.to_owned(), contenders.join(", "))),
            None => contenders.get(index).cloned().ok_or_else(|| GateError::Contenders(contenders.clone())),
        }
    };
    let (base, head) = (pick(base, 0)?, pick(head, 1)?);
    if base == head {
        return Err(GateError::Same(base));
    }
    let mut out = Gate {
        run_id: results.id.clone(),
        base: base.clone(),
        head: head.clone(),
        min_effect,
        rows: Vec::new(),
        failures: Vec::new(),
        cannot_judge: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(why) = &results.incomplete {
        out.failures.push(format!("the run is incomplete ({why})"));
    }
    for (si, scenario) in results.scenarios.iter().enumerate() {
        judge_scenario(&mut out, scenario, results.config.seed ^ ((si as u64) << 16));
    }
    Ok(out)
}

fn judge_scenario(out: &mut Gate, scenario: &ScenarioResult, seed: u64) {
    let name = &scenario.name;
    let (base_clean, head_clean) =
        (summary::clean_runs(scenario, &out.base).len(), summary::clean_runs(scenario, &out.head).len());
    if head_clean == 0 || base_clean == 0 {
        let who = if head_clean == 0 { out.head.clone() } else { out.base.clone() };
        let why = scenario
            .runs
            .iter()
            .filter(|r| r.framework == who)
            .find_map(|r| r.unclean_because())
            .unwrap_or_else(|| "it did not run".to_owned());
        let line = format!("{name}: {who} has no clean run (first problem: {why})");
        // A broken head fails the gate; a broken base leaves nothing to judge against.
        if head_clean == 0 {
            out.failures.push(line)
        } else {
            out.cannot_judge.push(line)
        }
        return;
    }
    // Unclean runs (errors over budget, dropped sends) leave their pairs out; say how many, so a
    // head that breaks more often than base is visible even when the pairs left still pass.
    let total = |who: &str| scenario.runs.iter().filter(|r| r.framework == who).count();
    let (head_runs, base_runs) = (total(&out.head), total(&out.base));
    if head_clean < head_runs || base_clean < base_runs {
        out.notes.push(format!(
            "{name}: clean runs: {} {head_clean} of {head_runs}, {} {base_clean} of {base_runs}; pairs with an \
             unclean run are left out (see the run's report for why).",
            out.head, out.base
        ));
    }
    let limited_by = summary::limited_by(scenario);
    let metrics = summary::metrics_for(scenario);
    if scenario.model == ModelKind::Open {
        out.notes.push(format!(
            "{name}: an open-model scenario, whose throughput is fixed by its schedule: throughput was not judged \
             (server CPU per request stands for it; a closed-model scenario that only the server limits gates \
             throughput itself)."
        ));
    }
    for (k, metric) in metrics.into_iter().enumerate() {
        let label = metric.label();
        let Some(comparison) =
            summary::compare_paired(scenario, &out.head, &out.base, metric, out.min_effect, seed ^ k as u64)
        else {
            if limited_by.is_empty() {
                // Clean runs on both sides but no repeat where both measured it: nothing was judged.
                let why = if metric == Metric::MaxRps {
                    " (or in none did both searches end by the server breaking its SLO: see each search's conclusion)"
                } else {
                    ""
                };
                out.cannot_judge.push(format!("{name}: {label} was measured in no pair of clean runs{why}"));
            } else {
                let why = format!("limited by the {} in every pair", joined(&limited_by, " and "));
                out.notes.push(format!("{name}: {label} not judged: {why}."));
            }
            continue;
        };
        if comparison.left_out > 0 {
            out.notes.push(format!(
                "{name}: {} of {} pairs left out of {label}: limited by the {} in those repeats.",
                comparison.left_out,
                comparison.left_out + comparison.stats.n,
                joined(&limited_by, " and ")
            ));
        }
        if comparison.stats.n < MIN_PAIRS {
            let line = format!(
                "{name}: {} pairs of clean runs for {label}; a verdict needs {MIN_PAIRS} (use --repeats {MIN_PAIRS} or more)",
                comparison.stats.n
            );
            // Throughput and latency may lose pairs to a limit; the per-request metrics may not.
            if comparison.left_out > 0 {
                out.notes.push(format!("{line}: not judged"));
            } else {
                out.cannot_judge.push(line);
            }
            continue;
        }
        let median = |who: &str| stats::median(&summary::metric_values(scenario, who, metric));
        out.rows.push(GateRow {
            scenario: name.clone(),
            metric,
            label,
            base_median: median(&out.base),
            head_median: median(&out.head),
            regression: comparison.stats.outcome == Outcome::BBetter,
            improvement: comparison.stats.outcome == Outcome::ABetter,
            comparison,
        });
    }
}

impl Gate {
    /// Exit code: 0 pass, 1 a regression or a broken head, 2 could not judge.
    pub fn exit_code(&self) -> u8 {
        if !self.failures.is_empty() || self.rows.iter().any(|r| r.regression) {
            1
        } else if !self.cannot_judge.is_empty() || self.rows.is_empty() {
            2
        } else {
            0
        }
    }

    /// One line per reason the gate failed or could not judge.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines = self.failures.clone();
        lines.extend(
            self.rows.iter().filter(|r| r.regression).map(|r| format!("{}: {}", r.scenario, r.comparison.sentence)),
        );
        lines.extend(self.cannot_judge.iter().cloned());
        if self.rows.is_empty() && self.cannot_judge.is_empty() && self.failures.is_empty() {
            lines.push("nothing was judged: no scenario had clean pairs".to_owned());
        }
        lines
    }

    /// The gate as Markdown, for a CI job summary.
    pub fn markdown(&self) -> String {
        let regressions = self.rows.iter().filter(|r| r.regression).count();
        let status = match self.exit_code() {
            0 => format!("passed: no regression of {} against {}", self.head, self.base),
            1 if regressions > 0 => {
                format!("FAILED: {regressions} regression(s) of {} against {}", self.head, self.base)
            }
            1 => "FAILED".to_owned(),
            _ => "could not judge".to_owned(),
        };
        let mut md = format!("## taskbench gate: {status}\n\n");
        md.push_str(&format!(
            "One interleaved run (`{}`): {} and {} alternated repeat by repeat; each pair is judged on its own. \
             Practical threshold ±{:.1}% (±0.1 pp for error rates); exact sign-flip test at 5%, two-sided.\n\n",
            self.run_id,
            self.base,
            self.head,
            self.min_effect * 100.0
        ));
        for line in self.failures.iter().chain(&self.cannot_judge) {
            md.push_str(&format!("- **{line}**\n"));
        }
        if !self.rows.is_empty() {
            md.push_str(
                "\n| scenario | metric | base | head | head vs base, per pair | median | interval | p | verdict |\n",
            );
            md.push_str("|---|---|---:|---:|---|---:|---|---:|---|\n");
            for r in &self.rows {
                let s = &r.comparison.stats;
                let fmt = |x: f64| fmt_change(r.metric, x);
                let pairs = s.effects.iter().map(|e| fmt(*e)).collect::<Vec<_>>().join(" ");
                let kind = if s.interval == stats::IntervalKind::Ci { "95% CI" } else { "range" };
                let verdict = if r.regression {
                    "**regression**".to_owned()
                } else if r.improvement {
                    "improvement".to_owned()
                } else {
                    match s.outcome {
                        Outcome::Equivalent => format!("equivalent (±{})", fmt_plain(r.metric, s.min_effect)),
                        Outcome::BelowThreshold => "below threshold".to_owned(),
                        Outcome::Inconclusive => s
                            .needed_pairs
                            .map_or("inconclusive".to_owned(), |n| format!("inconclusive (~{n} pairs would tell)")),
                        _ => "no verdict".to_owned(),
                    }
                };
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {pairs} | {} | {kind} {} to {} | {:.3} | {verdict} |\n",
                    r.scenario,
                    r.label,
                    r.metric.format(r.base_median),
                    r.metric.format(r.head_median),
                    fmt(s.effect),
                    fmt(s.low),
                    fmt(s.high),
                    s.p_value,
                ));
            }
        }
        if !self.notes.is_empty() {
            md.push('\n');
            for n in &self.notes {
                md.push_str(&format!("- {n}\n"));
            }
        }
        md
    }
}

fn fmt_change(metric: Metric, x: f64) -> String {
    match metric.scale() {
        stats::Scale::Absolute => format!("{:+.2}pp", x * 100.0),
        stats::Scale::Relative => format!("{:+.1}%", x * 100.0),
    }
}

fn fmt_plain(metric: Metric, x: f64) -> String {
    match metric.scale() {
        stats::Scale::Absolute => format!("{:.2} pp", x * 100.0),
        stats::Scale::Relative => format!("{:.1}%", x * 100.0),
    }
}
