//! Saturation search: the highest constant arrival rate a server sustains while it keeps the
//! scenario's `[slo]`, found with the open-model engine.
//!
//! Steps offer constant rates: first geometric (`from`, `from·growth`, … up to `max`) until a
//! step breaks, then bisection between the last rate that passed and the first that broke, until
//! they are within `precision` of each other. Each step warms up (the scenario's `warmup`), then
//! measures at least `duration`, longer when the percentile the SLO judges needs more samples at
//! that rate (ten beyond the percentile: 1,000 answers for a p99, 10,000 for a p99.9). A step
//! breaks when its latency percentile exceeds the SLO, its error rate exceeds the budget, a send
//! was dropped, or the server fell behind: successful answers delivered within the step short of
//! the offered rate by more than `max_shortfall`.
//!
//! The result never names a rate that was not sustained: `max_sustainable_rps` is the highest
//! rate a step passed at. And it never blames the server for the harness: when a step broke while
//! the engine itself could not keep its schedule (its send lag, see
//! [`taskbench_results::generator_limited`]), the search stops there and says the generator was the
//! limit. (Postgres running out of CPU is judged by the harness that samples it, from the same
//! steps' time windows.)
//!
//! The search itself ([`Search`]) is a state machine fed with judgements, so it is tested against
//! a simulated server in the unit tests below; [`run`] feeds it with real steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskbench_results::search::{Broke, Limit, Phase, SearchResult, SearchSettings, SearchStep, Stop, conclusion};
use taskbench_results::slo::{Slo, SloMetric, SloReport};
use taskbench_results::{LoadResult, ModelKind};

use crate::client::{HttpClient, Target};
use crate::ops::UserState;
use crate::scenario::{LoadModel, Rate, Scenario, SearchSpec};

/// The error budget of a step when the scenario's `[slo]` sets none: one request in a thousand.
pub const DEFAULT_ERROR_BUDGET: f64 = 0.001;

/// Answers beyond the judged percentile a step must collect: 10 (so a p99 rests on 1,000
/// answers and a p99.9 on 10,000, not on one or two slow requests).
const TAIL_SAMPLES: f64 = 10.0;

/// How a step went: passed, or what broke; and whether the break could be the generator's.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub broke: Vec<Broke>,
    /// The step broke, and the load generator could explain it: it did not offer the rate, or
    /// its send lag accounts for the latency over the SLO (see [`judge`]).
    pub generator_limited: bool,
    /// What the engine actually offered (sends per second).
    pub offered_rps: f64,
}

impl Judgement {
    pub fn pass(&self) -> bool {
        self.broke.is_empty()
    }
}

/// The search as a state machine: ask [`Search::next_rate`], measure, [`Search::record`].
#[derive(Debug, Clone)]
pub struct Search {
    spec: SearchSpec,
    passed: Option<f64>,
    broke: Option<f64>,
    steps: u32,
    next: Option<(f64, Phase)>,
    stop: Option<Stop>,
    /// The rate being run again to confirm its break.
    retrying: Option<f64>,
}

impl Search {
    pub fn new(spec: SearchSpec) -> Self {
        Self {
            spec,
            passed: None,
            broke: None,
            steps: 0,
            next: Some((spec.from, Phase::Grow)),
            stop: None,
            retrying: None,
        }
    }

    /// The rate of the next step, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<(f64, Phase)> {
        if self.stop.is_some() { None } else { self.next }
    }

    /// Takes the judgement of the step run at `rate`.
    pub fn record(&mut self, rate: f64, judgement: &Judgement) {
        self.steps += 1;
        if judgement.broke.iter().any(|b| b.limit == Limit::Incomplete) {
            self.stop = Some(Stop::Ended);
            return;
        }
        let retry = self.retrying.take() == Some(rate);
        if !judgement.pass() && self.spec.confirm && !retry {
            if self.steps >= self.spec.max_steps {
                self.stop = Some(Stop::StepBudget);
                return;
            }
            // Not judged yet: the same rate once more.
            self.retrying = Some(rate);
            self.next = Some((rate, Phase::Confirm));
            return;
        }
        if !judgement.pass() && judgement.generator_limited {
            // Not the server's failure: nothing is learnt about it at this rate.
            self.stop = Some(Stop::GeneratorLimited);
            return;
        }
        if judgement.pass() {
            self.passed = Some(self.passed.map_or(rate, |p| p.max(rate)));
        } else {
            self.broke = Some(self.broke.map_or(rate, |b| b.min(rate)));
        }
        let next = match (self.passed, self.broke) {
            (_, None) if rate >= self.spec.max => {
                self.stop = Some(Stop::ReachedMax);
                return;
            }
            (_, None) => ((rate * self.spec.growth).min(self.spec.max), Phase::Grow),
            (None, Some(_)) => {
                self.stop = Some(Stop::BrokeAtFirstRate);
                return;
            }
            (Some(p), Some(b)) if (b - p) / p <= self.spec.precision => {
                self.stop = Some(Stop::Converged);
                return;
            }
            (Some(p), Some(b)) => ((p + b) / 2.0, Phase::Bisect),
        };
        if self.steps >= self.spec.max_steps {
            self.stop = Some(Stop::StepBudget);
            return;
        }
        self.next = Some(next);
    }

    /// Why it stopped (`None` while it runs), the highest rate passed and the lowest that broke.
    pub fn outcome(&self) -> (Option<Stop>, Option<f64>, Option<f64>) {
        (self.stop, self.passed, self.broke)
    }
}

/// Answers a step must collect to judge `slo`'s percentile (p99: 1,000; p99.9: 10,000).
pub fn min_samples(slo: &Slo) -> u64 {
    let q = if slo.p999_ms.is_some() { 0.999 } else { 0.99 };
    (TAIL_SAMPLES / (1.0 - q)).round() as u64
}

/// The measured time of a step at `rate`: `shortest`, or long enough for `samples` answers.
pub fn step_duration(rate: f64, shortest: Duration, samples: u64) -> Duration {
    let needed = Duration::from_secs_f64((samples as f64 / rate.max(f64::MIN_POSITIVE)).min(3600.0));
    // Whole 100 ms, so the per-second series and the step's bookkeeping line up cleanly.
    let needed = Duration::from_millis(needed.as_millis().div_ceil(100) as u64 * 100);
    shortest.max(needed)
}

/// Successful answers per second the server delivered in the step
/// ([`LoadResult::delivered_rps`]); the goodput when that was not recorded.
pub fn achieved_rps(result: &LoadResult) -> f64 {
    result.delivered_rps.unwrap_or(result.total.rps)
}

/// Judges a step measured at `rate` against `slo`, the error budget and `max_shortfall`.
pub fn judge(result: &LoadResult, rate: f64, slo: &Slo, error_budget: f64, max_shortfall: f64) -> Judgement {
    let mut broke = Vec::new();
    if let Some(why) = &result.incomplete {
        broke.push(Broke { limit: Limit::Incomplete, detail: format!("ended early: {why}") });
    }
    let open = result.open.as_ref();
    // The engine's own pacing error, part of every latency it measured.
    let lag_ms = open.map_or(0.0, |o| o.send_lag_us.p99 as f64 / 1000.0);
    // Whether every latency objective broken would have held without that error.
    let mut within_without_lag = true;
    // Latency objectives only: the error budget is judged below, with the search's default.
    let latency_slo = Slo { max_error_rate: None, ..*slo };
    if let Some(report) = SloReport::judge(&latency_slo, &result.total) {
        for check in report.checks.iter().filter(|c| !c.pass && c.metric != SloMetric::ErrorRate) {
            within_without_lag &= result.total.successes > 0 && check.measured - lag_ms <= check.limit;
            broke.push(Broke { limit: Limit::Latency, detail: check.describe() });
        }
    }
    if result.total.error_rate > error_budget {
        broke.push(Broke {
            limit: Limit::Errors,
            detail: format!(
                "error rate {:.3}% > {:.3}% ({} of {} failed)",
                result.total.error_rate * 100.0,
                error_budget * 100.0,
                result.total.errors,
                result.total.requests
            ),
        });
    }
    let dropped = open.map_or(0, |o| o.dropped_sends);
    if dropped > 0 {
        broke.push(Broke {
            limit: Limit::Dropped,
            detail: format!(
                "{dropped} sends dropped: {} requests in flight and the backlog full",
                open.map_or(0, |o| o.max_in_flight)
            ),
        });
    }
    let achieved = achieved_rps(result);
    if achieved < rate * (1.0 - max_shortfall) {
        broke.push(Broke {
            limit: Limit::Shortfall,
            detail: format!(
                "delivered {achieved:.0} successful answers/s of {rate:.0} offered ({:.1}% short, more than {:.1}%)",
                (1.0 - achieved / rate) * 100.0,
                max_shortfall * 100.0
            ),
        });
    }
    let offered_rps = open.map_or(result.total.rps, |o| o.offered_rps);
    // A break is the generator's, not the server's, when the generator fell behind its schedule
    // and its lag accounts for everything broken: latency objectives the server kept once the
    // generator's lag (its p99) is taken out, and a shortfall no larger than the sends it made
    // late. Errors and drops are the server's. (Every scheduled request is sent, late or not, so
    // the count of sends cannot tell a slow generator: its lag does.)
    let lagging = open.is_some_and(|o| o.generator_limited);
    // A shortfall the engine's own lateness could account for: answers missing from the
    // delivery window are at most the sends that left later than planned, by up to its lag.
    let secs = result.measured_secs.max(f64::MIN_POSITIVE);
    let short_by_lag = achieved >= rate * (1.0 - max_shortfall - lag_ms / 1000.0 / secs);
    let explained = broke.iter().all(|b| match b.limit {
        Limit::Latency => within_without_lag,
        Limit::Shortfall => short_by_lag,
        // Errors, drops and an early end are the server's (or the run's), whatever the engine did.
        Limit::Errors | Limit::Dropped | Limit::Incomplete => false,
    });
    let generator_limited = !broke.is_empty() && lagging && explained;
    Judgement { broke, generator_limited, offered_rps }
}

/// The settings `spec` runs with under `scenario`'s warm-up, step duration and SLO.
pub fn settings(spec: &SearchSpec, scenario: &Scenario) -> SearchSettings {
    SearchSettings {
        from: spec.from,
        max: spec.max,
        growth: spec.growth,
        precision: spec.precision,
        max_shortfall: spec.max_shortfall,
        max_steps: spec.max_steps,
        max_in_flight: spec.max_in_flight,
        confirm: spec.confirm,
        step_warmup_secs: scenario.load.warmup.as_secs_f64(),
        step_secs: scenario.load.duration.as_secs_f64(),
        min_samples: min_samples(&scenario.slo),
        slo: scenario.slo,
        error_budget: scenario.slo.max_error_rate.unwrap_or(DEFAULT_ERROR_BUDGET),
    }
}

/// Runs a search with prepared `users` against `target`. The result's figures (`total`, `per_op`,
/// `series`, `open`, `slo`) are those of the step at the maximum sustainable rate (or of the
/// first step, when none passed), and `search` holds every step.
pub async fn run(
    scenario: &Scenario,
    spec: SearchSpec,
    client: HttpClient,
    target: Target,
    users: Vec<UserState>,
) -> LoadResult {
    let users: Arc<[Mutex<UserState>]> = users.into_iter().map(Mutex::new).collect();
    let settings = settings(&spec, scenario);
    let interrupted = Arc::new(AtomicBool::new(false));
    let on_interrupt = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
            }
        })
    };
    let mut search = Search::new(spec);
    let mut steps: Vec<SearchStep> = Vec::new();
    // The step whose figures the result carries: the highest that passed, else the first.
    let mut shown: Option<(bool, f64, LoadResult)> = None;
    let mut ended: Option<String> = None;
    while let Some((rate, phase)) = search.next_rate() {
        if interrupted.load(Ordering::Relaxed) {
            ended = Some("interrupted (SIGINT)".to_owned());
            break;
        }
        let mut step = scenario.clone();
        step.load.duration = step_duration(rate, scenario.load.duration, settings.min_samples);
        step.load.model = LoadModel::Open { rate: Rate::Fixed(rate), max_in_flight: spec.max_in_flight };
        tracing::info!(rate, ?phase, secs = step.load.duration.as_secs_f64(), "search step");
        let mut result = crate::open::run_shared(
            &step,
            client.clone(),
            target.clone(),
            users.clone(),
            Rate::Fixed(rate),
            spec.max_in_flight,
            None,
        )
        .await;
        result.slo = SloReport::judge(&scenario.slo, &result.total);
        if interrupted.load(Ordering::Relaxed) && result.incomplete.is_none() {
            result.incomplete = Some("interrupted (SIGINT)".to_owned());
        }
        let judgement = judge(&result, rate, &scenario.slo, settings.error_budget, spec.max_shortfall);
        if result.incomplete.is_some() {
            ended.clone_from(&result.incomplete);
        }
        tracing::info!(
            rate,
            pass = judgement.pass(),
            broke = ?judgement.broke.iter().map(|b| b.detail.as_str()).collect::<Vec<_>>(),
            "search step judged"
        );
        steps.push(SearchStep {
            phase,
            rate,
            offered_rps: judgement.offered_rps,
            achieved_rps: achieved_rps(&result),
            requests: result.total.requests,
            successes: result.total.successes,
            error_rate: result.total.error_rate,
            dropped: result.open.as_ref().map_or(0, |o| o.dropped_sends),
            latency_us: result.total.latency_us,
            all_latency_us: result.total.all_latency_us,
            send_lag_p99_us: result.open.as_ref().map_or(0, |o| o.send_lag_us.p99),
            generator_limited: judgement.generator_limited,
            warmup_secs: step.load.warmup.as_secs_f64(),
            measured_secs: result.measured_secs,
            measure_started_unix_ms: result.measure_started_unix_ms,
            pass: judgement.pass(),
            broke: judgement.broke.clone(),
        });
        search.record(rate, &judgement);
        let better = match &shown {
            None => true,
            Some((passed, r, _)) => judgement.pass() && (!passed || rate > *r),
        };
        if better {
            shown = Some((judgement.pass(), rate, result));
        }
    }
    on_interrupt.abort();
    let (stop, passed, broke) = search.outcome();
    let stop = stop.unwrap_or(Stop::Ended);
    let breaking = broke.and_then(|b| steps.iter().find(|s| !s.pass && s.rate == b));
    let conclusion = conclusion(stop, passed, breaking, steps.last());
    let mut result = match shown {
        Some((_, _, r)) => r,
        None => crate::result::from_recorder(
            &scenario.name,
            ModelKind::Search,
            &target.base,
            &crate::record::Recorder::new(std::time::Instant::now()),
            Duration::ZERO,
        ),
    };
    result.model = ModelKind::Search;
    if stop == Stop::Ended {
        result.incomplete = ended.or_else(|| Some("the search ended early".to_owned()));
    }
    result.search =
        Some(SearchResult { settings, steps, max_sustainable_rps: passed, broke_at_rps: broke, stop, conclusion });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(from: f64, max: f64) -> SearchSpec {
        SearchSpec {
            from,
            max,
            growth: 2.0,
            precision: 0.05,
            max_shortfall: 0.03,
            max_in_flight: 256,
            max_steps: 24,
            confirm: true,
        }
    }

    /// A server as a single queue (M/M/1) with a known capacity: at utilisation ρ = rate /
    /// capacity its p99 latency is `service·ln(100)/(1 − ρ)`, and above capacity it delivers only
    /// its capacity while its queue grows without bound. `errors_above`: from that rate on, 1% of
    /// its answers are errors.
    struct Simulated {
        capacity: f64,
        service_ms: f64,
        errors_above: f64,
        /// The generator cannot offer more than this.
        generator_max: f64,
    }

    impl Simulated {
        /// In a 3 s step: below capacity the M/M/1 p99, at most the step's length (a queue cannot
        /// be older than the step); at or above capacity the queue grows through the whole step.
        fn p99_ms(&self, rate: f64) -> f64 {
            let rho = rate / self.capacity;
            if rho >= 1.0 { 3_000.0 } else { (self.service_ms * 100f64.ln() / (1.0 - rho)).min(3_000.0) }
        }

        /// The highest rate keeping `p99 ≤ slo_ms`: the knee the search should find.
        fn knee(&self, slo_ms: f64) -> f64 {
            let by_latency = self.capacity * (1.0 - self.service_ms * 100f64.ln() / slo_ms);
            by_latency.min(self.errors_above).min(self.capacity)
        }

        fn judge(&self, rate: f64, slo_ms: f64, shortfall: f64) -> Judgement {
            let mut broke = Vec::new();
            let offered = rate.min(self.generator_max);
            let p99 = self.p99_ms(offered);
            if p99 > slo_ms {
                broke.push(Broke { limit: Limit::Latency, detail: format!("p99 {p99:.2} ms > {slo_ms} ms") });
            }
            if rate >= self.errors_above {
                broke.push(Broke { limit: Limit::Errors, detail: "error rate 1% > 0.1%".into() });
            }
            let achieved = offered.min(self.capacity);
            if achieved < rate * (1.0 - shortfall) {
                broke.push(Broke { limit: Limit::Shortfall, detail: format!("delivered {achieved:.0}") });
            }
            Judgement { broke, generator_limited: rate > self.generator_max, offered_rps: offered }
        }
    }

    /// Runs a whole search against the model; returns the search and every rate judged.
    fn search(model: &Simulated, spec: SearchSpec, slo_ms: f64) -> (Search, Vec<(f64, bool)>) {
        let mut search = Search::new(spec);
        let mut seen = Vec::new();
        while let Some((rate, _)) = search.next_rate() {
            let j = model.judge(rate, slo_ms, spec.max_shortfall);
            seen.push((rate, j.pass()));
            search.record(rate, &j);
            assert!(seen.len() <= spec.max_steps as usize, "the step budget holds");
        }
        (search, seen)
    }

    #[test]
    fn it_finds_a_known_capacity_within_the_precision_and_never_reports_an_unsustained_rate() {
        for capacity in [800.0, 5_000.0, 12_345.0, 47_000.0, 99_000.0] {
            for service_ms in [0.05, 0.2] {
                let model =
                    Simulated { capacity, service_ms, errors_above: f64::INFINITY, generator_max: f64::INFINITY };
                let slo = 5.0;
                let knee = model.knee(slo);
                let (s, seen) = search(&model, spec(100.0, 1_000_000.0), slo);
                let (stop, passed, broke) = s.outcome();
                assert_eq!(stop, Some(Stop::Converged), "capacity {capacity}: {seen:?}");
                let (p, b) = (passed.expect("a rate passed"), broke.expect("a rate broke"));
                // Never a rate it did not sustain; and the truth lies between what passed and what broke.
                assert!(p <= knee && knee < b, "knee {knee} outside [{p}, {b}): {seen:?}");
                assert!(seen.iter().any(|(r, ok)| *r == p && *ok), "{p} was measured and passed");
                assert!((b - p) / p <= 0.05, "within the precision: {p}..{b}");
                assert!((knee - p) / knee <= 0.05, "found {p} of {knee}");
                // Every rate that passed is at or below the reported maximum.
                assert!(seen.iter().filter(|(_, ok)| *ok).all(|(r, _)| *r <= p), "{seen:?}");
            }
        }
    }

    #[test]
    fn one_hiccup_does_not_end_a_search_but_a_confirmed_break_does() {
        let model = Simulated { capacity: 10_000.0, service_ms: 0.1, errors_above: f64::INFINITY, generator_max: 1e9 };
        // The machine hiccups once, in the step at 2,000 req/s: its p99 breaks the SLO there.
        let run = |confirm: bool| {
            let spec = SearchSpec { confirm, ..spec(500.0, 1e6) };
            let mut search = Search::new(spec);
            let (mut seen, mut hiccup) = (Vec::new(), true);
            while let Some((rate, phase)) = search.next_rate() {
                let mut j = model.judge(rate, 5.0, spec.max_shortfall);
                if rate == 2_000.0 && std::mem::take(&mut hiccup) {
                    j.broke.push(Broke { limit: Limit::Latency, detail: "p99 9 ms > 5 ms".into() });
                }
                seen.push((rate, phase, j.pass()));
                search.record(rate, &j);
            }
            (search.outcome(), seen)
        };
        let ((stop, passed, _), seen) = run(true);
        assert_eq!(stop, Some(Stop::Converged));
        assert!(seen.contains(&(2_000.0, Phase::Confirm, true)), "the retry passed: {seen:?}");
        assert!(passed.is_some_and(|p| p > 8_000.0), "the search went on to the real knee: {passed:?}");
        // Every break it reports was confirmed: the rate broke twice in a row.
        let ((_, passed, broke), _) = run(false);
        assert_eq!(broke, Some(2_000.0), "unconfirmed, one hiccup ends the search there");
        assert!(passed.is_some_and(|p| p < 2_000.0), "{passed:?}");
    }

    #[test]
    fn the_keep_up_limit_stops_a_server_with_no_latency_objective_in_reach() {
        // A lax SLO (10 s): only falling behind can stop it, at its capacity.
        let model = Simulated { capacity: 3_000.0, service_ms: 0.1, errors_above: f64::INFINITY, generator_max: 1e9 };
        let (s, seen) = search(&model, spec(250.0, 100_000.0), 10_000.0);
        let (stop, passed, broke) = s.outcome();
        assert_eq!(stop, Some(Stop::Converged));
        let (p, b) = (passed.expect("a rate passed"), broke.expect("a rate broke"));
        // Up to the shortfall tolerance above capacity passes, by definition; nothing beyond.
        assert!(p <= 3_000.0 / 0.97 && b > 3_000.0, "{p}..{b} around the capacity: {seen:?}");
        assert!(seen.iter().filter(|(r, _)| *r > 3_000.0 / 0.97).all(|(_, ok)| !ok), "{seen:?}");
    }

    #[test]
    fn it_stops_on_errors() {
        let model = Simulated { capacity: 1e6, service_ms: 0.01, errors_above: 7_000.0, generator_max: f64::INFINITY };
        let (s, seen) = search(&model, spec(1_000.0, 1e6), 50.0);
        let (stop, passed, broke) = s.outcome();
        assert_eq!(stop, Some(Stop::Converged), "{seen:?}");
        assert!(passed.is_some_and(|p| p < 7_000.0) && broke.is_some_and(|b| b >= 7_000.0), "{seen:?}");
        assert!(seen.iter().all(|(r, ok)| *ok == (*r < 7_000.0)), "{seen:?}");
    }

    #[test]
    fn a_generator_that_falls_behind_ends_the_search_without_blaming_the_server() {
        let model = Simulated { capacity: 1e6, service_ms: 0.01, errors_above: f64::INFINITY, generator_max: 20_000.0 };
        let (s, seen) = search(&model, spec(5_000.0, 1e6), 5.0);
        let (stop, passed, broke) = s.outcome();
        assert_eq!(stop, Some(Stop::GeneratorLimited), "{seen:?}");
        assert_eq!(passed, Some(20_000.0));
        assert_eq!(broke, None, "the step the generator could not offer is not the server's failure");
        assert_eq!(seen.last().map(|s| s.0), Some(40_000.0));
    }

    #[test]
    fn bounds_first_step_and_budget() {
        let fast =
            Simulated { capacity: 1e9, service_ms: 0.001, errors_above: f64::INFINITY, generator_max: f64::INFINITY };
        let (s, seen) = search(&fast, spec(1_000.0, 6_000.0), 5.0);
        assert_eq!(s.outcome(), (Some(Stop::ReachedMax), Some(6_000.0), None));
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            [1_000.0, 2_000.0, 4_000.0, 6_000.0],
            "max is offered"
        );
        let slow =
            Simulated { capacity: 500.0, service_ms: 1.0, errors_above: f64::INFINITY, generator_max: f64::INFINITY };
        let (s, seen) = search(&slow, spec(1_000.0, 6_000.0), 5.0);
        assert_eq!(s.outcome(), (Some(Stop::BrokeAtFirstRate), None, Some(1_000.0)));
        assert_eq!(seen, [(1_000.0, false), (1_000.0, false)], "a break is confirmed once");
        let model = Simulated { capacity: 10_000.0, service_ms: 0.1, errors_above: f64::INFINITY, generator_max: 1e9 };
        let (s, seen) = search(&model, SearchSpec { max_steps: 6, ..spec(100.0, 1e6) }, 5.0);
        assert_eq!(s.outcome().0, Some(Stop::StepBudget), "{seen:?}");
        assert_eq!(seen.len(), 6);
    }

    /// A measured step: `per_second` successes of 200 µs in each of 2 seconds, plus `slow` of 20 ms.
    fn step(per_second: u64, slow: u64, failed: u64) -> LoadResult {
        use taskbench_results::ErrorKind;

        use crate::record::{Outcome, Recorder};
        let start = std::time::Instant::now();
        let mut rec = Recorder::new(start);
        for second in 0..2u64 {
            for i in 0..per_second {
                let intended = start + Duration::from_micros(second * 1_000_000 + i * 1_000_000 / per_second);
                let latency = Duration::from_micros(if i < slow { 20_000 } else { 200 });
                let error = (i < failed).then_some(ErrorKind::Status5xx);
                rec.record(&Outcome { op: crate::Op::Json, intended, latency, service: Some(latency), error });
            }
        }
        crate::result::from_recorder("t", ModelKind::Open, "http://127.0.0.1:1", &rec, Duration::from_secs(2))
    }

    #[test]
    fn a_measured_step_is_judged_on_its_slo_its_errors_and_whether_it_kept_up() {
        let slo = Slo { p99_ms: Some(5.0), ..Slo::default() };
        let ok = judge(&step(1_000, 0, 0), 1_000.0, &slo, 0.001, 0.03);
        assert!(ok.pass(), "{:?}", ok.broke);
        // Delivered 1,000/s of 1,100 offered: 9% short.
        let behind = judge(&step(1_000, 0, 0), 1_100.0, &slo, 0.001, 0.03);
        assert_eq!(behind.broke.iter().map(|b| b.limit).collect::<Vec<_>>(), [Limit::Shortfall], "{:?}", behind.broke);
        assert!(behind.broke[0].detail.contains("1000 successful answers/s of 1100"), "{}", behind.broke[0].detail);
        // 2% of the answers took 20 ms: the p99 breaks 5 ms.
        let slow = judge(&step(1_000, 20, 0), 1_000.0, &slo, 0.001, 0.03);
        assert_eq!(slow.broke.iter().map(|b| b.limit).collect::<Vec<_>>(), [Limit::Latency], "{:?}", slow.broke);
        // 0.5% failed: over the 0.1% budget, and (1% short of goodput) within the keep-up tolerance.
        let failing = judge(&step(1_000, 0, 5), 1_000.0, &slo, 0.001, 0.03);
        assert_eq!(failing.broke.iter().map(|b| b.limit).collect::<Vec<_>>(), [Limit::Errors], "{:?}", failing.broke);
    }

    #[test]
    fn a_break_the_generators_lag_explains_is_the_generators_and_a_larger_one_the_servers() {
        let slo = Slo { p99_ms: Some(5.0), ..Slo::default() };
        // p99 ≈ 20 ms because of 2% slow answers; the engine lagged 16 ms (p99): without its lag the
        // p99 would be within 5 ms, so the break may be the generator's.
        let mut result = step(1_000, 20, 0);
        let open = |lag_p99: u64| taskbench_results::OpenStats {
            target_rps: 1_000.0,
            scheduled: 2_000,
            sent: 2_000,
            offered_rps: 1_000.0,
            late_sends: 0,
            queued_sends: 0,
            dropped_sends: 0,
            max_in_flight: 64,
            send_lag_us: taskbench_results::Percentiles { p99: lag_p99, ..taskbench_results::Percentiles::default() },
            send_lag_hdr: String::new(),
            generator_limited: taskbench_results::generator_limited(lag_p99, 20_000),
        };
        result.open = Some(open(16_000));
        let j = judge(&result, 1_000.0, &slo, 0.001, 0.03);
        assert!(!j.pass() && j.generator_limited, "{j:?}");
        // A 2 ms lag explains 2 of the 15 ms over: the server broke it.
        result.open = Some(open(2_000));
        let j = judge(&result, 1_000.0, &slo, 0.001, 0.03);
        assert!(!j.pass() && !j.generator_limited, "{j:?}");
        // Whatever the lag, errors are the server's.
        let mut failing = step(1_000, 0, 5);
        failing.open = Some(open(16_000));
        assert!(!judge(&failing, 1_000.0, &slo, 0.001, 0.03).generator_limited);
    }

    #[test]
    fn steps_last_long_enough_for_their_percentile() {
        let p99 = Slo { p99_ms: Some(5.0), ..Slo::default() };
        let p999 = Slo { p999_ms: Some(20.0), ..p99 };
        assert_eq!((min_samples(&p99), min_samples(&p999)), (1_000, 10_000));
        let s = Duration::from_secs(2);
        assert_eq!(step_duration(10_000.0, s, 1_000), s, "fast enough in the shortest step");
        assert_eq!(step_duration(200.0, s, 1_000), Duration::from_secs(5));
        assert_eq!(step_duration(3_000.0, s, 10_000), Duration::from_millis(3_400));
    }
}
