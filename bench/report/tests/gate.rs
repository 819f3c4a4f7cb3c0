//! `taskbench gate` on constructed interleaved runs: what passes, what fails, what it refuses.

use taskbench_report::fixture::{Shape, results};
use taskbench_report::gate::{GateError, gate};
use taskbench_report::model::Metric;

const DEFAULT: f64 = taskbench_report::stats::DEFAULT_MIN_EFFECT;

fn run(head: Shape, repeats: u32, seed: u64) -> taskbench_report::Results {
    results(&["gate"], &[Shape::new("base", 40_000.0, 400.0), head], repeats, 4, seed)
}

#[test]
fn identical_contenders_never_fail_the_gate() {
    for seed in 1..=20 {
        let r = run(Shape::new("head", 40_000.0, 400.0), 8, seed);
        let g = gate(&r, None, None, DEFAULT).expect("judged");
        assert_eq!((g.base.as_str(), g.head.as_str()), ("base", "head"), "first and second contender by default");
        assert_ne!(g.exit_code(), 1, "seed {seed}:\n{}", g.markdown());
        assert!(g.rows.iter().any(|r| r.metric == Metric::Rps), "a closed model's throughput is judged");
    }
}

#[test]
fn a_thirty_percent_slower_head_fails_on_throughput_and_latency() {
    let r = run(Shape::new("head", 28_000.0, 570.0), 6, 3);
    let g = gate(&r, None, None, DEFAULT).expect("judged");
    assert_eq!(g.exit_code(), 1, "{}", g.markdown());
    let failed: Vec<Metric> = g.rows.iter().filter(|r| r.regression).map(|r| r.metric).collect();
    assert!(failed.contains(&Metric::Rps) && failed.contains(&Metric::P50), "{failed:?}");
    let md = g.markdown();
    assert!(md.starts_with("## taskbench gate: FAILED"), "{md}");
    assert!(md.contains("| gate | throughput |") && md.contains("**regression**"), "{md}");
    let lines = g.failure_lines();
    assert!(lines.iter().any(|l| l.contains("base throughput higher than head by")), "{lines:?}");
    // The other way round it is an improvement, and passes.
    let g = gate(&r, Some("head"), Some("base"), DEFAULT).expect("judged");
    assert_eq!(g.exit_code(), 0, "{}", g.markdown());
    assert!(g.rows.iter().any(|r| r.metric == Metric::Rps && r.improvement));
}

#[test]
fn too_few_pairs_cannot_be_judged() {
    let r = run(Shape::new("head", 28_000.0, 570.0), 3, 1);
    let g = gate(&r, None, None, DEFAULT).expect("judged");
    assert_eq!(g.exit_code(), 2, "three pairs allow no 95% interval: {}", g.markdown());
    assert!(
        g.failure_lines().iter().any(|l| l.contains("3 pairs") && l.contains("needs 6")),
        "{:?}",
        g.failure_lines()
    );
}

#[test]
fn a_head_without_clean_runs_fails_and_bad_requests_are_refused() {
    let mut r = run(Shape::new("head", 40_000.0, 400.0), 6, 1);
    for run in r.scenarios[0].runs.iter_mut().filter(|run| run.framework == "head") {
        run.error = Some("server exited with status 101".into());
    }
    let g = gate(&r, None, None, DEFAULT).expect("judged");
    assert_eq!(g.exit_code(), 1);
    assert!(
        g.failures[0].contains("head has no clean run") && g.failures[0].contains("status 101"),
        "{:?}",
        g.failures
    );
    assert!(matches!(gate(&r, Some("nope"), None, DEFAULT), Err(GateError::Unknown(..))));
    assert!(matches!(gate(&r, Some("head"), Some("head"), DEFAULT), Err(GateError::Same(_))));
    let one = results(&["gate"], &[Shape::new("base", 1.0, 1.0)], 6, 4, 1);
    let err = gate(&one, None, None, DEFAULT).expect_err("one contender");
    assert!(err.to_string().contains("expected two, base and head"), "{err}");
}
