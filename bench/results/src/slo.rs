//! Judging a run against its scenario's `[slo]`, in the manner of k6 thresholds: each objective
//! the file states becomes a check with its limit, what was measured and pass/fail.

use serde::{Deserialize, Serialize};

use crate::Figures;

/// Service-level objective, judged on every run (see [`SloReport::judge`]): p99 and p99.9 latency
/// (the worse of the successes' and of every request's), and the share of requests that failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// 0.001 = at most one request in a thousand may fail. A run over it is not clean.
    pub max_error_rate: Option<f64>,
}

/// What an objective bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// p99 latency in ms: the worse of the successes' and of every request's (errors included).
    P99Ms,
    /// p99.9 latency in ms, judged the same way.
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
        // The worse of the two: slow failures (timeouts) cannot hide from a latency objective,
        // and fast failures cannot pull it down.
        let (ok, all) = (&figures.latency_us, &figures.all_latency_us);
        let checks: Vec<SloCheck> = [
            (SloMetric::P99Ms, slo.p99_ms, ms(ok.p99.max(all.p99))),
            (SloMetric::P999Ms, slo.p999_ms, ms(ok.p999.max(all.p999))),
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
