//! Judging a run against its scenario's `[slo]`, in the manner of k6 thresholds: each objective
//! the file states becomes a check with its limit, what was measured and pass/fail.

use serde::{Deserialize, Serialize};

use crate::result::Figures;
use crate::scenario::Slo;

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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::record::{ErrorKind, Outcome, Recorder};
    use crate::result::LoadResult;
    use crate::scenario::Op;

    fn figures(successes: u64, timeouts: u64) -> Figures {
        let start = Instant::now();
        let mut rec = Recorder::new(start);
        let mut add = |latency: Duration, error: Option<ErrorKind>| {
            rec.record(&Outcome { op: Op::Health, intended: start, latency, service: Some(latency), error });
        };
        (0..successes).for_each(|_| add(Duration::from_micros(100), None));
        (0..timeouts).for_each(|_| add(Duration::from_secs(5), Some(ErrorKind::Timeout)));
        LoadResult::from_recorder("t", "open", "http://127.0.0.1:1", &rec, Duration::from_secs(1)).total
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
