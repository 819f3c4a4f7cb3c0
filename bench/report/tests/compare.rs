//! `compare` on constructed results: what passes the gate, what fails it, and what it says.

mod common;

use taskbench_report::Results;
use taskbench_report::compare::{CompareError, CompareOptions, Comparison, Metric, Verdict, compare};
use taskbench_report::fixture::{Shape, results};

const SCENARIOS: &[&str] = &["crud-mix"];
const REPEATS: u32 = 5;
const SECS: u64 = 2;

fn run(axum: Shape, actix: Shape, seed: u64) -> Results {
    results(SCENARIOS, &[axum, actix], REPEATS, SECS, seed)
}

fn axum() -> Shape {
    Shape::new("axum", 5_000.0, 800.0)
}

fn actix() -> Shape {
    Shape::new("actix", 5_200.0, 760.0)
}

fn baseline() -> Results {
    run(axum(), actix(), 1)
}

fn check(baseline: &Results, new: &Results) -> Comparison {
    compare(baseline, new, &CompareOptions::default()).expect("comparable")
}

fn row(c: &Comparison, framework: &str, metric: Metric) -> Verdict {
    c.rows.iter().find(|r| r.framework == framework && r.metric == metric).map(|r| r.verdict).expect("row present")
}

/// Sets each repeat's measured throughput of `framework`, in order.
fn set_rps(results: &mut Results, framework: &str, values: &[f64]) {
    let runs = results.scenarios[0].runs.iter_mut().filter(|r| r.framework == framework);
    for (run, v) in runs.zip(values) {
        run.load.as_mut().expect("measured").total.rps = *v;
    }
}

#[test]
fn identical_runs_pass_with_no_significant_change() {
    let base = baseline();
    let c = check(&base, &base.clone());
    assert!(!c.failed(), "{}", c.markdown());
    assert_eq!(c.rows.len(), 10, "two frameworks x five metrics");
    assert!(c.rows.iter().all(|r| r.verdict == Verdict::NoSignificantChange && r.change == Some(0.0)), "{c:#?}");
    assert!(c.notes.is_empty() && c.failures.is_empty() && c.missing.is_empty(), "{c:#?}");
    let md = c.markdown();
    assert!(md.starts_with("## taskbench compare: passed: no regression beyond 5%"), "{md}");
    assert!(md.contains("| crud-mix | axum | rps | 5,0"), "{md}");
}

#[test]
fn a_20_percent_throughput_loss_fails_on_rps_only() {
    let new = run(Shape::new("axum", 4_000.0, 800.0), actix(), 2);
    let c = check(&baseline(), &new);
    assert!(c.failed());
    let regressions: Vec<_> = c.regressions().map(|r| (r.framework.as_str(), r.metric)).collect();
    assert_eq!(regressions, [("axum", Metric::Rps)], "{}", c.markdown());
    let r = c.regressions().next().expect("one");
    let (change, hi) = (r.change.expect("compared"), r.ci_high.expect("compared"));
    assert!((change + 0.2).abs() < 0.03 && hi < 0.0, "{r:?}");
    assert_ne!(row(&c, "actix", Metric::Rps), Verdict::Regression);
    let md = c.markdown();
    assert!(md.starts_with("## taskbench compare: FAILED: 1 regression(s) beyond 5%"), "{md}");
    // Regressions come first in the table, flagged in bold.
    let first = md.lines().find(|l| l.starts_with("| crud-mix")).expect("a data row");
    assert!(first.starts_with("| crud-mix | axum | rps |") && first.ends_with("| **regression** |"), "{first}");
    let lines = c.failure_lines();
    assert!(
        lines[0].starts_with("crud-mix/axum rps regressed -")
            && lines[0].contains("(95% CI -")
            && lines[0].ends_with("beyond the 5% threshold"),
        "{lines:?}"
    );
}

#[test]
fn run_to_run_noise_within_the_interval_passes() {
    // ±2% noise on every repeat: whatever the draw, no change beyond 5% can appear.
    let base = baseline();
    for seed in 2..10 {
        let c = check(&base, &run(axum(), actix(), seed));
        assert!(!c.failed(), "seed {seed}:\n{}", c.markdown());
        assert!(c.rows.iter().all(|r| r.verdict != Verdict::Improvement), "seed {seed}:\n{}", c.markdown());
    }
}

#[test]
fn thirty_percent_higher_latency_fails_on_p50_and_p99() {
    let new = run(Shape::new("axum", 5_000.0, 1_040.0), actix(), 3);
    let c = check(&baseline(), &new);
    assert!(c.failed());
    assert_eq!(row(&c, "axum", Metric::P50), Verdict::Regression);
    assert_eq!(row(&c, "axum", Metric::P99), Verdict::Regression);
    assert_ne!(row(&c, "axum", Metric::Rps), Verdict::Regression);
    assert!(c.markdown().contains("| crud-mix | axum | p99 |"));
}

#[test]
fn an_improvement_is_named_and_passes() {
    let new = run(Shape::new("axum", 6_000.0, 800.0), actix(), 4);
    let c = check(&baseline(), &new);
    assert!(!c.failed());
    assert_eq!(row(&c, "axum", Metric::Rps), Verdict::Improvement);
}

#[test]
fn a_significant_loss_inside_the_threshold_is_tolerated_unless_the_threshold_is_zero() {
    let quiet = |rps: f64, seed| {
        let mut shape = Shape::new("axum", rps, 800.0);
        shape.noise = 0.002;
        results(SCENARIOS, &[shape], REPEATS, SECS, seed)
    };
    let (base, new) = (quiet(5_000.0, 1), quiet(4_850.0, 2));
    let c = check(&base, &new);
    assert!(!c.failed(), "{}", c.markdown());
    assert_eq!(row(&c, "axum", Metric::Rps), Verdict::WithinThreshold);
    let strict = compare(&base, &new, &CompareOptions { max_regression: 0.0 }).expect("ok");
    assert!(strict.failed());
    assert_eq!(row(&strict, "axum", Metric::Rps), Verdict::Regression);
    assert!(strict.markdown().contains("beyond 0%"));
}

#[test]
fn a_large_but_noisy_change_is_not_called_and_says_so() {
    let mut base = baseline();
    let mut new = base.clone();
    set_rps(&mut base, "axum", &[1000.0, 1100.0, 900.0, 1050.0, 950.0]);
    set_rps(&mut new, "axum", &[930.0, 1090.0, 840.0, 990.0, 880.0]);
    let c = check(&base, &new);
    assert!(!c.failed(), "{}", c.markdown());
    assert_eq!(row(&c, "axum", Metric::Rps), Verdict::NoSignificantChange);
    assert!(
        c.notes.iter().any(|n| n.contains("crud-mix/axum: rps changed by -") && n.contains("too noisy")),
        "{:?}",
        c.notes
    );
}

#[test]
fn too_few_repeats_for_an_interval_call_nothing_and_say_so() {
    let runs = |rps: f64, repeats, seed| results(SCENARIOS, &[Shape::new("axum", rps, 800.0)], repeats, SECS, seed);
    // One or three repeats a side: no 95% interval exists (3 + 3: the widest covers 90%), so even
    // a 20% loss is not called, and the report says why instead of guessing.
    for repeats in [1, 3] {
        let base = runs(5_000.0, repeats, 1);
        let lower = check(&base, &runs(4_000.0, repeats, 2));
        assert!(!lower.failed(), "{}", lower.markdown());
        assert_eq!(row(&lower, "axum", Metric::Rps), Verdict::NoSignificantChange);
        let md = lower.markdown();
        assert!(md.contains("| range ") && md.contains("allow no 95% interval between two separate runs"), "{md}");
    }
    // Four a side allow one (97.1%): the same loss is a regression.
    let lower = check(&runs(5_000.0, 4, 1), &runs(4_000.0, 4, 2));
    assert_eq!(row(&lower, "axum", Metric::Rps), Verdict::Regression, "{}", lower.markdown());
}

#[test]
fn a_framework_missing_from_the_new_run_is_reported_not_failed_and_extras_are_noted() {
    let new = results(SCENARIOS, &[axum(), Shape::new("hyper", 6_000.0, 700.0)], REPEATS, SECS, 2);
    let c = check(&baseline(), &new);
    assert!(!c.failed(), "{}", c.markdown());
    assert_eq!(c.missing, ["crud-mix/actix"]);
    assert_eq!(row(&c, "actix", Metric::Rps), Verdict::Missing);
    assert!(c.notes.iter().any(|n| n.contains("crud-mix/hyper is only in the new run")), "{:?}", c.notes);
    assert!(c.markdown().contains("Missing from the new run (not failing): crud-mix/actix."));
}

#[test]
fn an_incomplete_new_run_or_one_without_clean_runs_fails_with_the_reason() {
    let mut new = baseline();
    new.incomplete = Some("interrupted (Ctrl-C)".into());
    let c = check(&baseline(), &new);
    assert!(c.failed() && c.regressions().next().is_none());
    assert!(c.failures[0].contains("the new run is incomplete (interrupted (Ctrl-C))"), "{:?}", c.failures);

    let mut new = baseline();
    for r in new.scenarios[0].runs.iter_mut().filter(|r| r.framework == "actix") {
        r.error = Some("the server exited with status 101".into());
    }
    let c = check(&baseline(), &new);
    assert!(c.failed());
    let md = c.markdown();
    assert!(
        md.contains("**Failed:** crud-mix/actix: the new run has no clean runs (5 run(s), first problem: error: the server exited with status 101) where the baseline has 5"),
        "{md}"
    );
}

#[test]
fn runs_without_a_common_scenario_cannot_be_compared() {
    let other = results(&["read-heavy"], &[axum()], 2, SECS, 1);
    let err = compare(&baseline(), &other, &CompareOptions::default()).expect_err("nothing in common");
    assert!(matches!(err, CompareError::NoCommonScenario { .. }));
    assert_eq!(
        err.to_string(),
        "the baseline and the new run share no scenario (baseline: crud-mix; new: read-heavy); expected at least one scenario run in both"
    );
}

#[test]
fn runs_made_differently_are_compared_with_a_warning() {
    let base = baseline();
    let mut new = base.clone();
    new.environment.machine.cpu_model = "Other CPU".into();
    new.environment.build_profile = "debug".into();
    new.config.duration_secs = Some(10.0);
    let c = check(&base, &new);
    assert!(!c.failed());
    let note = &c.notes[0];
    assert!(
        note.contains("CPU model `Constructed CPU` vs `Other CPU`")
            && note.contains("build profile `release` vs `debug`")
            && note.contains("duration override (s) `2` vs `10`"),
        "{note}"
    );
}

#[test]
fn the_same_inputs_give_the_same_verdicts_and_intervals() {
    let (base, new) = (baseline(), run(axum(), actix(), 7));
    assert_eq!(check(&base, &new), check(&base, &new));
}

/// Sets each repeat's error rate of `framework`, in order.
fn set_error_rate(results: &mut Results, framework: &str, values: &[f64]) {
    let runs = results.scenarios[0].runs.iter_mut().filter(|r| r.framework == framework);
    for (run, v) in runs.zip(values) {
        run.load.as_mut().expect("measured").total.error_rate = *v;
    }
}

#[test]
fn an_error_rate_increase_is_a_regression_even_from_zero() {
    let base = baseline();
    let mut new = base.clone();
    // 0.5% errors in every new repeat where the baseline had none: still clean (no budget in
    // these constructed runs), and throughput unchanged, but worse.
    set_error_rate(&mut new, "actix", &[0.005, 0.006, 0.004, 0.005, 0.005]);
    let c = check(&base, &new);
    assert!(c.failed(), "{}", c.markdown());
    assert_eq!(row(&c, "actix", Metric::ErrorRate), Verdict::Regression);
    assert_eq!(row(&c, "axum", Metric::ErrorRate), Verdict::NoSignificantChange);
    // A tiny increase, within 0.1 point, is tolerated.
    set_error_rate(&mut new, "actix", &[0.0004, 0.0005, 0.0003, 0.0004, 0.0004]);
    let c = check(&base, &new);
    assert_eq!(row(&c, "actix", Metric::ErrorRate), Verdict::WithinThreshold, "{}", c.markdown());
    assert!(!c.failed(), "{}", c.markdown());
}

#[test]
fn compare_gates_on_the_maximum_sustainable_throughput_of_a_search() {
    use common::search_results;
    let base = search_results(&[Shape::new("axum", 12_000.0, 150.0), Shape::new("actix", 9_000.0, 150.0)], 6, 1);
    let same = search_results(&[Shape::new("axum", 12_000.0, 150.0), Shape::new("actix", 9_000.0, 150.0)], 6, 2);
    let worse = search_results(&[Shape::new("axum", 12_000.0, 150.0), Shape::new("actix", 7_000.0, 150.0)], 6, 2);
    let c = check(&base, &same);
    assert_ne!(row(&c, "actix", Metric::MaxRps), Verdict::Regression, "{:#?}", c.rows);
    let c = check(&base, &worse);
    assert_eq!(row(&c, "actix", Metric::MaxRps), Verdict::Regression, "{:#?}", c.rows);
    assert_ne!(row(&c, "axum", Metric::MaxRps), Verdict::Regression);
}
