//! Judging a run against its scenario's `[slo]`, in the manner of k6 thresholds: each objective
//! the file states becomes a check with its limit, what was measured and pass/fail.

use serde::{Deserialize, Serialize};

use crate::result::Figures;
use crate::scenario::Slo;

/// What an objective bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// p99 of the successful answers' latency, in ms.
    P99Ms,
    /// p99.9 of the successful answers' latency, in ms.
    P999Ms,
    /// Failed (errored or dropped) share of the measured requests.
    ErrorRate,
}

impl SloMetric {
    /// How the scenario file and the reports name it.
    pub fn label(self) -> &'static str {
        match self {
            SloMetric::P99Ms => "p99",
            SloMetric::P999Ms => "p99.9",
            SloMetric::ErrorRate => "error rate",
        }
    }
}

/// One objective, judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SloCheck {
    pub metric: SloMetric,
    pub limit: f64,
    pub measured: f64,
    pub pass: bool,
}

impl SloCheck {
    /// `p99 3.20 ms ≤ 5 ms: pass`.
    pub fn describe(&self) -> String {
        let (m, l) = match self.metric {
            SloMetric::ErrorRate => (format!("{:.4}%", self.measured * 100.0), format!("{:.4}%", self.limit * 100.0)),
            _ => (format!("{:.2} ms", self.measured), format!("{} ms", self.limit)),
        };
        let verdict = if self.pass { "pass" } else { "FAIL" };
        let op = if self.pass { "≤" } else { ">" };
        format!("{} {m} {op} {l}: {verdict}", self.metric.label())
    }
}

/// Every objective of a run, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SloReport {
    pub checks: Vec<SloCheck>,
    /// True when every check passed.
    pub pass: bool,
}

impl SloReport {
    /// Judges `figures` against `slo`; `None` when the scenario states no objective.
    pub fn judge(slo: &Slo, figures: &Figures) -> Option<Self> {
        let ms = |us: u64| us as f64 / 1000.0;
        let checks: Vec<SloCheck> = [
            (SloMetric::P99Ms, slo.p99_ms, ms(figures.latency_us.p99)),
            (SloMetric::P999Ms, slo.p999_ms, ms(figures.latency_us.p999)),
            (SloMetric::ErrorRate, slo.max_error_rate, figures.error_rate),
        ]
        .into_iter()
        .filter_map(|(metric, limit, measured)| {
            // A run that answered nothing successfully has no latency to judge: it fails.
            let no_latency = metric != SloMetric::ErrorRate && figures.successes == 0;
            limit.map(|limit| SloCheck { metric, limit, measured, pass: !no_latency && measured <= limit })
        })
        .collect();
        (!checks.is_empty()).then(|| Self { pass: checks.iter().all(|c| c.pass), checks })
    }

    /// The error-budget check, when the scenario sets one.
    pub fn error_budget(&self) -> Option<&SloCheck> {
        self.checks.iter().find(|c| c.metric == SloMetric::ErrorRate)
    }

    /// `p99 3.20 ms ≤ 5 ms: pass; error rate 0.0000% ≤ 0.1000%: pass`.
    pub fn describe(&self) -> String {
        self.checks.iter().map(SloCheck::describe).collect::<Vec<_>>().join("; ")
    }
}
