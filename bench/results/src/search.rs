//! A saturation search's record (see the load generator's `search` module for how it runs): every
//! step as measured, the settings, where it stopped and why, and the outcome in a sentence.

use serde::{Deserialize, Serialize};

use crate::Percentiles;
use crate::slo::Slo;

/// Which phase of the search a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Geometric steps from `from` towards `max`.
    Grow,
    /// Bisection between the last passing and the first breaking rate.
    Bisect,
    /// The same rate again after a break: the break counts only if this step breaks too.
    Confirm,
}

/// What broke in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// A latency percentile over the SLO.
    Latency,
    /// More failed requests than the error budget.
    Errors,
    /// Sends dropped: the server held `max_in_flight` requests and the backlog overflowed.
    Dropped,
    /// Fewer successful answers delivered than offered, beyond `max_shortfall`.
    Shortfall,
    /// The step ended early (interrupted, or the target died).
    Incomplete,
}

/// One limit broken in a step, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Broke {
    pub limit: Limit,
    /// e.g. `p99 7.31 ms > 5 ms`.
    pub detail: String,
}

/// One step of a search, as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchStep {
    pub phase: Phase,
    /// The constant rate the step scheduled, requests per second.
    pub rate: f64,
    /// Sends per second the engine actually made.
    pub offered_rps: f64,
    /// Successful answers per second the server delivered in the step (by completion time, see
    /// [`crate::LoadResult::delivered_rps`]).
    pub achieved_rps: f64,
    pub requests: u64,
    pub successes: u64,
    pub error_rate: f64,
    pub dropped: u64,
    /// Latency of the successful answers, from the intended send time.
    pub latency_us: Percentiles,
    /// Latency of every request, errors included (what the SLO judges, with the above).
    pub all_latency_us: Percentiles,
    pub send_lag_p99_us: u64,
    /// The step broke and the load generator could explain it (the load generator's `search::Judgement`).
    pub generator_limited: bool,
    pub warmup_secs: f64,
    pub measured_secs: f64,
    /// Start of the step's measured phase, ms since the Unix epoch (to line up samples).
    pub measure_started_unix_ms: Option<u64>,
    pub pass: bool,
    pub broke: Vec<Broke>,
}

/// Why a search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The passing and breaking rates are within `precision`: the maximum is found.
    Converged,
    /// Every rate up to `max` passed: the maximum is at least `max`.
    ReachedMax,
    /// The first rate, `from`, already broke: the maximum is below it.
    BrokeAtFirstRate,
    /// A step broke while the load generator could not keep its schedule: the limit found is the
    /// generator's, not the server's.
    GeneratorLimited,
    /// `max_steps` ran out before `precision` was reached: the maximum lies between the two rates.
    StepBudget,
    /// A step ended early (Ctrl-C, the target died).
    Ended,
}

/// The settings a search ran with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchSettings {
    pub from: f64,
    pub max: f64,
    pub growth: f64,
    pub precision: f64,
    pub max_shortfall: f64,
    pub max_steps: u32,
    pub max_in_flight: usize,
    /// Whether a break counted only when a retry at the same rate broke too.
    #[serde(default)]
    pub confirm: bool,
    /// Warm-up and shortest measured time of each step.
    pub step_warmup_secs: f64,
    pub step_secs: f64,
    /// Successful answers each step collects at least (a step at a low rate measures longer).
    pub min_samples: u64,
    /// The SLO each step is judged on.
    pub slo: Slo,
    /// The error budget applied (the SLO's, or the load generator's `search::DEFAULT_ERROR_BUDGET`).
    pub error_budget: f64,
}

/// A search's outcome: every step, the maximum sustainable rate and where it broke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchResult {
    pub settings: SearchSettings,
    pub steps: Vec<SearchStep>,
    /// The highest rate a step sustained (passed at); absent when none did.
    pub max_sustainable_rps: Option<f64>,
    /// The lowest rate above it that broke; absent when none did (see `stop`).
    pub broke_at_rps: Option<f64>,
    pub stop: Stop,
    /// The outcome in a sentence, e.g. `sustained 41,000 req/s; broke at 43,000 req/s: p99 7.3 ms > 5 ms`.
    pub conclusion: String,
}

impl SearchResult {
    /// True when the maximum was set by the server breaking its SLO (or keeping up), not by the
    /// search's bounds, its step budget before anything broke, or the load generator: the figure
    /// is the server's maximum and can be compared between servers. Otherwise it is a lower bound.
    pub fn found_by_server(&self) -> bool {
        matches!(self.stop, Stop::Converged | Stop::StepBudget)
            && self.max_sustainable_rps.is_some()
            && self.broke_at_rps.is_some()
    }

    /// Every step as a terminal table, then the conclusion.
    pub fn table(&self) -> String {
        let mut out = format!(
            "saturation search ({} steps; figures above are the step at the maximum sustainable rate):\n{:>4} {:>7} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>9}  verdict\n",
            self.steps.len(),
            "step",
            "phase",
            "rate/s",
            "offered/s",
            "achieved/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "errors",
            "lag p99"
        );
        for (i, s) in self.steps.iter().enumerate() {
            let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
            let verdict = if s.pass {
                "pass".to_owned()
            } else {
                format!("BROKE: {}", s.broke.iter().map(|b| b.detail.as_str()).collect::<Vec<_>>().join("; "))
            };
            out.push_str(&format!(
                "{:>4} {:>7} {:>10.0} {:>10.0} {:>10.0} {:>9} {:>9} {:>9} {:>7.3}% {:>6} µs  {verdict}{}\n",
                i + 1,
                match s.phase {
                    Phase::Grow => "grow",
                    Phase::Bisect => "bisect",
                    Phase::Confirm => "confirm",
                },
                s.rate,
                s.offered_rps,
                s.achieved_rps,
                ms(s.latency_us.p50),
                ms(s.latency_us.p99.max(s.all_latency_us.p99)),
                ms(s.latency_us.p999.max(s.all_latency_us.p999)),
                s.error_rate * 100.0,
                s.send_lag_p99_us,
                if s.generator_limited { " (generator behind schedule)" } else { "" }
            ));
        }
        out.push_str(&format!("maximum sustainable throughput: {}\n", self.conclusion));
        out
    }

    /// The first step that broke at `broke_at_rps`.
    pub fn breaking_step(&self) -> Option<&SearchStep> {
        let at = self.broke_at_rps?;
        self.steps.iter().find(|s| !s.pass && s.rate == at)
    }
}

/// `41,200`.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

/// The outcome in a sentence.
pub fn conclusion(stop: Stop, passed: Option<f64>, broke_at: Option<&SearchStep>, last: Option<&SearchStep>) -> String {
    let rps = |x: f64| format!("{} req/s", thousands(x));
    let why = |s: &SearchStep| s.broke.iter().map(|b| b.detail.clone()).collect::<Vec<_>>().join("; ");
    match stop {
        Stop::StepBudget if broke_at.is_none() => format!(
            "the step budget ran out before any rate broke: sustained every rate up to {}, so the maximum is at least \
             that (raise `max_steps` or `growth`)",
            rps(passed.unwrap_or(0.0))
        ),
        Stop::Converged | Stop::StepBudget => {
            let (p, b) = (passed.unwrap_or(0.0), broke_at.map_or(0.0, |s| s.rate));
            let budget = if stop == Stop::StepBudget {
                " (the step budget ran out before the precision was reached)"
            } else {
                ""
            };
            format!("sustained {}; broke at {}: {}{budget}", rps(p), rps(b), broke_at.map(why).unwrap_or_default())
        }
        Stop::ReachedMax => format!(
            "sustained every rate up to the search's max, {}: the maximum is at least that (raise `max`)",
            rps(passed.unwrap_or(0.0))
        ),
        Stop::BrokeAtFirstRate => format!(
            "broke at the first rate, {}: {} (lower `from`)",
            rps(broke_at.map_or(0.0, |s| s.rate)),
            broke_at.map(why).unwrap_or_default()
        ),
        Stop::GeneratorLimited => {
            let offered = last.map_or(0.0, |s| s.offered_rps);
            let sustained = passed.map_or_else(|| "no rate".to_owned(), |p| format!("at least {}", rps(p)));
            if let Some(b) = broke_at {
                return format!(
                    "sustained {sustained}; broke at {} ({}); the generator could not keep {} to narrow it further (send \
                     lag p99 {} µs), so the maximum lies in between",
                    rps(b.rate),
                    why(b),
                    rps(last.map_or(0.0, |s| s.rate)),
                    last.map_or(0, |s| s.send_lag_p99_us)
                );
            }
            format!(
                "the generator could not keep {} on its CPUs (offered {}, send lag p99 {} µs, enough to explain the \
                 break): the server sustained {sustained}, and its limit was not reached",
                rps(last.map_or(0.0, |s| s.rate)),
                rps(offered),
                last.map_or(0, |s| s.send_lag_p99_us)
            )
        }
        Stop::Ended => format!(
            "the search ended early{}: {}",
            passed.map(|p| format!(" after sustaining {}", rps(p))).unwrap_or_default(),
            last.map(why).unwrap_or_default()
        ),
    }
}
