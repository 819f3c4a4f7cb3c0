//! The closed model through Goose against real servers on loopback: shipped closed scenarios run
//! clean on both frameworks, a stall hides in the closed model's tail but not in the open
//! model's (coordinated omission), and a target that dies mid-run ends it with what was measured.

use std::time::Duration;

mod support;
use support::{dying_server, shipped, stalling_server};

use taskbench_conformance::{Framework, spawn_app};
use taskbench_loadgen::scenario::{LoadModel, Rate};
use taskbench_loadgen::{Options, Scenario, run};

/// Shortens a scenario for tests and makes it closed-model with `users` users: a short warm-up
/// (the ramp fits in it), a short measured phase, little seed data.
fn brief_closed(mut s: Scenario, users: u32, duration: Duration) -> Scenario {
    s.load.warmup = Duration::from_millis(500);
    s.load.duration = duration;
    s.load.model = LoadModel::Closed { users, ramp: Duration::from_millis(200), think_time: Duration::ZERO };
    s.data.users = s.data.users.min(8);
    s.data.tasks_per_user = s.data.tasks_per_user.min(10);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_scenarios_run_with_zero_errors_on_both_servers() {
    for framework in Framework::ALL {
        let app = spawn_app(framework).await;
        for name in ["read-heavy", "write-heavy", "crud-mix", "auth"] {
            let mut scenario = brief_closed(shipped(name), 4, Duration::from_secs(1));
            if name == "crud-mix" {
                // Two users per seeded account: they must not trip over each other's tasks.
                scenario.data.users = 2;
            }
            let result = run(&scenario, &app.url(""), Options::default()).await.expect("the run starts");
            let table = result.summary_table();
            let on = format!("{name} on {}:\n{table}", framework.name());
            assert_eq!(result.model, taskbench_results::ModelKind::Closed, "{on}");
            assert!(result.incomplete.is_none(), "{on}{:?}", result.incomplete);
            assert_eq!(result.total.errors, 0, "{on}{:?}", result.total.errors_by_kind);
            assert!(result.total.requests >= 50, "{on}");
            assert_eq!(result.measured_secs, 1.0, "{on}");
            assert!(result.warmup_requests > 0, "warm-up requests are counted apart: {on}");
            assert_eq!(result.series.len(), 1, "only the 1 s measured phase is recorded: {on}");
            // The series counts answers by when they ended: the last request of each user may
            // end after the phase, and is in the totals only.
            let in_series = result.series[0].requests;
            assert!(in_series <= result.total.requests && in_series + 4 >= result.total.requests, "{on}");
            for step in &scenario.steps {
                let op =
                    result.per_op.get(step.op.name()).unwrap_or_else(|| panic!("{} missing: {on}", step.op.name()));
                assert!(op.requests > 0 && op.latency_us.p50 > 0 && op.latency_hdr.len() > 10, "{on}");
            }
            assert_eq!(result.per_op.values().map(|f| f.requests).sum::<u64>(), result.total.requests, "{on}");
            assert!(result.total.latency_us.p50 > 0 && result.total.latency_us.max >= result.total.latency_us.p99);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_hides_in_the_closed_tail_but_shows_in_the_open_one() {
    let stall = Duration::from_millis(400);
    let stall_us = stall.as_micros() as u64;

    // Closed: one user; during the stall it waits for its one answer and sends nothing else,
    // so the stall is a single slow sample among thousands.
    let (url, server) = stalling_server(stall).await;
    let mut closed = shipped("plaintext-floor");
    closed.load.warmup = Duration::ZERO;
    closed.load.duration = Duration::from_secs(3);
    closed.load.model = LoadModel::Closed { users: 1, ramp: Duration::ZERO, think_time: Duration::ZERO };
    let closed = run(&closed, &url, Options::default()).await.expect("closed run");
    server.abort();

    // Open: the settings of the open model's stall test.
    let (url, server) = stalling_server(stall).await;
    let mut open = shipped("plaintext-floor");
    open.load.warmup = Duration::ZERO;
    open.load.duration = Duration::from_secs(3);
    open.load.model = LoadModel::Open { rate: Rate::Fixed(500.0), max_in_flight: 1 };
    let open = run(&open, &url, Options::default()).await.expect("open run");
    server.abort();

    let (c, o) = (closed.total.latency_us, open.total.latency_us);
    // The open run drops what its one-slot backlog cannot hold during the stall; nothing else fails.
    let dropped = open.open.as_ref().map_or(0, |o| o.dropped_sends);
    assert_eq!(
        (closed.total.errors, open.total.errors),
        (0, dropped),
        "{}{}",
        closed.summary_table(),
        open.summary_table()
    );
    // With more than 1000 samples, one slow sample lies beyond the 99.9th percentile.
    assert!(closed.total.requests > 1500, "the premise: enough closed samples\n{}", closed.summary_table());
    assert!(c.max >= stall_us, "the closed run met the stall too: max {} µs", c.max);
    assert!(o.max >= stall_us, "the open run met the stall: max {} µs", o.max);
    assert!(o.p999 >= stall_us * 9 / 10, "the open p99.9 {} µs shows the {stall_us} µs stall", o.p999);
    assert!(
        c.p999 < stall_us / 4,
        "the closed p99.9 {} µs hides the {stall_us} µs stall (coordinated omission)",
        c.p999
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_ends_it_with_the_partial_result() {
    let (url, server) = dying_server(Duration::from_millis(1500)).await;
    let mut scenario = shipped("plaintext-floor");
    scenario.load.warmup = Duration::from_millis(300);
    scenario.load.duration = Duration::from_secs(5);
    scenario.load.timeout = Duration::from_millis(500);
    scenario.load.model = LoadModel::Closed { users: 2, ramp: Duration::ZERO, think_time: Duration::ZERO };
    // Goose's run time (whole seconds) bounds the run: 6 s here.
    let result = tokio::time::timeout(Duration::from_secs(20), run(&scenario, &url, Options::default()))
        .await
        .expect("the run ends by itself")
        .expect("the run starts");
    server.await.expect("server task");
    let table = result.summary_table();
    assert!(result.incomplete.as_deref().is_some_and(|r| r.contains("stopped accepting")), "{table}");
    assert!(result.total.requests > 100, "what was measured before is kept: {table}");
    assert!(result.total.errors > 0, "the failures are counted: {table}");
    assert!(result.measured_secs < 4.5, "the measured phase ended with the target: {}", result.measured_secs);
}

#[tokio::test]
async fn a_closed_run_refuses_remote_targets() {
    let err = run(&shipped("crud-mix"), "http://192.168.1.1:80", Options::default()).await.expect_err("not loopback");
    assert!(err.to_string().contains("loopback"), "{err}");
}
