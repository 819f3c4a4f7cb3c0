//! Test support shared by the report's test binaries.
//!
//! Here rather than in `taskbench_report::fixture` because it drives the load generator's real
//! search state machine, and the report's library must not depend on the load generator.

use std::collections::BTreeMap;

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use taskbench_report::fixture::Shape;
use taskbench_report::model::{ModelKind, Results, Role};
use taskbench_results::Percentiles;

/// Results of one saturation-search scenario, `capacity`, with `repeats` searches per shape: each
/// shape's server is a queue whose capacity is its `rps` (with the run's noise), answering with
/// a p99 of `p50_us`·4.6/(1 − load); the searches (the real [`taskbench_loadgen::search::Search`])
/// look for the highest rate keeping p99 within 5 ms.
pub(crate) fn search_results(shapes: &[Shape], repeats: u32, seed: u64) -> Results {
    use taskbench_loadgen::scenario::SearchSpec;
    use taskbench_loadgen::search::{Judgement, Search};
    use taskbench_results::search::{Broke, Limit, SearchResult, SearchSettings, SearchStep, Stop};
    use taskbench_results::slo::Slo;
    let mut out = taskbench_report::fixture::results(&["capacity"], shapes, repeats, 2, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ea4c4);
    let frameworks: Vec<String> = shapes.iter().map(|s| s.framework.clone()).collect();
    let slo = Slo { p99_ms: Some(5.0), p999_ms: None, max_error_rate: Some(0.001) };
    let spec = SearchSpec {
        from: 500.0,
        max: 1_000_000.0,
        growth: 2.0,
        precision: 0.05,
        max_shortfall: 0.03,
        max_in_flight: 512,
        max_steps: 24,
        confirm: true,
    };
    let scenario = &mut out.scenarios[0];
    scenario.model = ModelKind::Search;
    for run in &mut scenario.runs {
        let Some(shape) = shapes.iter().find(|s| s.framework == run.framework) else { continue };
        let capacity = shape.rps * (1.0 + rng.random_range(-shape.noise..=shape.noise));
        let service_ms = shape.p50_us / 1000.0;
        let p99 = |rate: f64| {
            let rho = rate / capacity;
            if rho >= 1.0 { 2_000.0 } else { (service_ms * 4.6 / (1.0 - rho)).min(2_000.0) }
        };
        let mut search = Search::new(spec);
        let mut steps = Vec::new();
        while let Some((rate, phase)) = search.next_rate() {
            let latency = p99(rate);
            let achieved = rate.min(capacity);
            let mut broke = Vec::new();
            if latency > 5.0 {
                broke.push(Broke { limit: Limit::Latency, detail: format!("p99 {latency:.2} ms > 5 ms: FAIL") });
            }
            if achieved < rate * 0.97 {
                broke.push(Broke { limit: Limit::Shortfall, detail: format!("delivered {achieved:.0} of {rate:.0}") });
            }
            let judgement = Judgement { broke: broke.clone(), generator_limited: false, offered_rps: rate };
            let us = |ms: f64| (ms * 1000.0) as u64;
            let pct = |ms: f64| Percentiles {
                p50: us(ms / 4.6),
                p90: us(ms / 2.0),
                p99: us(ms),
                p999: us(ms * 1.5),
                max: us(ms * 2.0),
                mean: ms * 200.0,
            };
            steps.push(SearchStep {
                phase,
                rate,
                offered_rps: rate,
                achieved_rps: achieved,
                requests: (rate * 2.0) as u64,
                successes: (achieved * 2.0) as u64,
                error_rate: 0.0,
                dropped: 0,
                latency_us: pct(latency),
                all_latency_us: pct(latency),
                send_lag_p99_us: 40,
                generator_limited: false,
                warmup_secs: 1.0,
                measured_secs: 2.0,
                measure_started_unix_ms: None,
                pass: judgement.pass(),
                broke,
            });
            run.steps.push(taskbench_report::model::StepResources {
                rate,
                server_cpu_us_per_request: Some(1e6 / capacity * (0.9 + 0.1 * achieved / capacity)),
                cpu_cores: BTreeMap::from([(Role::Server, achieved / capacity)]),
                bottlenecks: Vec::new(),
                steal: None,
            });
            search.record(rate, &judgement);
        }
        let (stop, passed, broke_at) = search.outcome();
        let stop = stop.unwrap_or(Stop::Ended);
        let breaking = broke_at.and_then(|b| steps.iter().find(|s| !s.pass && s.rate == b));
        let conclusion = taskbench_results::search::conclusion(stop, passed, breaking, steps.last());
        if let Some(load) = run.load.as_mut() {
            load.model = ModelKind::Search;
            load.search = Some(SearchResult {
                settings: SearchSettings {
                    from: spec.from,
                    max: spec.max,
                    growth: spec.growth,
                    precision: spec.precision,
                    max_shortfall: spec.max_shortfall,
                    max_steps: spec.max_steps,
                    max_in_flight: spec.max_in_flight,
                    confirm: spec.confirm,
                    step_warmup_secs: 1.0,
                    step_secs: 2.0,
                    min_samples: 1_000,
                    slo,
                    error_budget: 0.001,
                },
                steps,
                max_sustainable_rps: passed,
                broke_at_rps: broke_at,
                stop,
                conclusion,
            });
        }
    }
    scenario.summary =
        taskbench_report::summary::summarise(scenario, &frameworks, taskbench_report::stats::DEFAULT_MIN_EFFECT, seed);
    out
}
