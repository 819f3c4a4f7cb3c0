//! The open-model engine against real servers on loopback: shipped scenarios run clean, a stall
//! shows in the corrected tail (no coordinated omission), and failures end runs clearly.

use std::time::Duration;

mod support;
use support::{dying_server, half_failing_server, scenarios_dir, shipped, stalling_server};

use taskbench_conformance::{Framework, spawn_app};
use taskbench_loadgen::scenario::{LoadModel, Rate};
use taskbench_loadgen::{LoadError, Options, Scenario, run};
use taskbench_results::{ErrorKind, decode_histogram};

/// Shortens a scenario for tests: the run stays bounded whatever the file says.
fn brief(mut s: Scenario, rate: f64, secs: u64) -> Scenario {
    s.load.warmup = Duration::from_millis(300);
    s.load.duration = Duration::from_secs(secs);
    if let LoadModel::Open { max_in_flight, .. } = s.load.model {
        s.load.model = LoadModel::Open { rate: Rate::Fixed(rate), max_in_flight };
    }
    s
}

#[test]
fn every_shipped_scenario_parses() {
    let mut names: Vec<String> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/")
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .filter(|n| n != "README")
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "auth",
            "capacity-json",
            "capacity-read",
            "crud-mix",
            "gate",
            "json-floor",
            "plaintext-floor",
            "read-heavy",
            "smoke",
            "write-heavy"
        ]
    );
    for name in names {
        let s = shipped(&name);
        assert_eq!(s.name, name, "the file's name matches its `name`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_scenarios_run_with_zero_errors_on_both_servers() {
    for framework in Framework::ALL {
        let app = spawn_app(framework).await;
        for name in ["smoke", "json-floor", "plaintext-floor"] {
            let scenario = brief(shipped(name), 150.0, 1);
            let result = run(&scenario, &app.url(""), Options::default()).await.expect("the run starts");
            assert!(result.incomplete.is_none(), "{name} on {}: {:?}", framework.name(), result.incomplete);
            assert!(result.total.requests >= 100, "{name} on {}: {}", framework.name(), result.summary_table());
            assert_eq!(result.total.errors, 0, "{name} on {}:\n{}", framework.name(), result.summary_table());
            assert!(result.warmup_requests > 0, "warm-up requests are counted apart");
            assert!(!result.series.is_empty() && result.total.latency_hdr.len() > 10);
            let open = result.open.as_ref().expect("open stats");
            assert_eq!(open.scheduled, result.total.requests, "every scheduled request is accounted for");
            assert_eq!(open.sent, open.scheduled, "{name}: nothing dropped at 150 rps");
            let lag = decode_histogram(&open.send_lag_hdr).expect("send-lag histogram");
            assert_eq!(lag.len(), open.sent - open.queued_sends, "every unqueued send's lag is recorded");
            assert!(result.slo.as_ref().is_some_and(|s| s.checks.len() >= 2), "the [slo] is judged: {:?}", result.slo);
            assert_eq!(result.unclean_because(), None, "{name}: {}", result.summary_table());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_the_corrected_tail_but_not_in_service_time() {
    let stall = Duration::from_millis(400);
    let (url, server) = stalling_server(stall).await;
    let mut scenario = brief(shipped("plaintext-floor"), 500.0, 3);
    scenario.load.warmup = Duration::ZERO;
    // One request at a time: requests due during the stall wait for the slot, as behind a
    // blocked connection, and are sent late.
    scenario.load.model = LoadModel::Open { rate: Rate::Fixed(500.0), max_in_flight: 1 };
    let result = run(&scenario, &url, Options::default()).await.expect("run");
    server.abort();
    let stall_us = stall.as_micros() as u64;
    let (latency, service) = (result.total.latency_us, result.total.service_us);
    assert!(result.total.requests > 1000, "{}", result.summary_table());
    assert!(latency.max >= stall_us, "corrected max {} µs covers the {stall_us} µs stall", latency.max);
    assert!(latency.p999 >= stall_us * 9 / 10, "corrected p99.9 {} µs shows the stall", latency.p999);
    assert!(
        service.p999 < stall_us / 4,
        "service-time p99.9 {} µs does not: only one request was slow to serve",
        service.p999
    );
    let open = result.open.expect("open stats");
    assert!(open.late_sends > 50, "requests due during the stall were sent late: {open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_is_a_clear_error_within_seconds() {
    // Bind then drop: a loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let scenario = brief(shipped("smoke"), 100.0, 1);
    let url = format!("http://127.0.0.1:{port}");
    let pending = run(&scenario, &url, Options::default());
    let outcome =
        tokio::time::timeout(Duration::from_secs(10), pending).await.expect("fails within seconds, not hangs");
    let err = outcome.expect_err("nothing listens there");
    assert!(matches!(err, LoadError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("is the server running?"), "{err}");
    let err = run(&scenario, "http://192.168.1.1:80", Options::default()).await.expect_err("not loopback");
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_ends_it_with_the_partial_result() {
    let (url, server) = dying_server(Duration::from_millis(1500)).await;
    let mut scenario = brief(shipped("plaintext-floor"), 400.0, 10);
    scenario.load.timeout = Duration::from_millis(500);
    let result = tokio::time::timeout(Duration::from_secs(20), run(&scenario, &url, Options::default()))
        .await
        .expect("the run ends by itself")
        .expect("the run starts");
    server.await.expect("server task");
    assert!(result.incomplete.as_deref().is_some_and(|r| r.contains("stopped accepting")), "{:?}", result.incomplete);
    assert!(result.total.requests > 100, "what was measured before is kept: {}", result.summary_table());
    assert!(result.total.errors > 0, "the failures are counted: {}", result.summary_table());
    assert!(result.measured_secs < 9.0, "ended early: {}", result.measured_secs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_with_a_full_backlog_loses_no_request_from_the_figures() {
    // Everything stalls for 1.5 s at 400 rps with one slot: 600 sends fall due, the backlog
    // holds 64, the rest are dropped.
    let (url, server) = stalling_server(Duration::from_millis(1500)).await;
    let mut scenario = brief(shipped("plaintext-floor"), 400.0, 3);
    scenario.load.warmup = Duration::ZERO;
    scenario.load.model = LoadModel::Open { rate: Rate::Fixed(400.0), max_in_flight: 1 };
    let result = run(&scenario, &url, Options::default()).await.expect("run");
    server.abort();
    let open = result.open.clone().expect("open stats");
    let table = result.summary_table();
    assert!(open.dropped_sends > 100, "sends were dropped during the stall: {table}");
    assert_eq!(open.scheduled, 1200, "3 s at 400 rps: {table}");
    let (ok, failed) = (
        decode_histogram(&result.total.latency_hdr).expect("success histogram").len(),
        decode_histogram(&result.total.error_hdr).expect("error histogram").len(),
    );
    assert_eq!(ok + failed, open.scheduled, "histogram counts add up to the schedule: {table}");
    assert_eq!(open.sent + open.dropped_sends, open.scheduled, "{table}");
    assert_eq!(result.total.errors_by_kind.get(&ErrorKind::Dropped), Some(&open.dropped_sends), "{table}");
    assert_eq!(result.total.requests, open.scheduled);
    assert!(result.unclean_because().is_some_and(|w| w.contains("dropped")), "a run with drops is not clean: {table}");
    assert!(open.late_sends <= open.sent, "late sends are counted once each: {open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_are_not_throughput_and_break_the_slo() {
    let (url, server) = half_failing_server().await;
    let scenario = brief(shipped("plaintext-floor"), 300.0, 2);
    let result = run(&scenario, &url, Options::default()).await.expect("run");
    server.abort();
    let table = result.summary_table();
    let total = &result.total;
    assert_eq!(total.successes + total.errors, total.requests, "{table}");
    let half = total.requests / 2;
    assert!(total.errors.abs_diff(half) <= 2 && total.successes.abs_diff(half) <= 2, "{table}");
    let goodput = total.successes as f64 / result.measured_secs;
    assert!((total.rps - goodput).abs() < 1e-6, "rps counts successes only: {} vs {goodput}", total.rps);
    assert_eq!(decode_histogram(&total.latency_hdr).expect("hdr").len(), total.successes, "errors kept out");
    assert_eq!(decode_histogram(&total.error_hdr).expect("hdr").len(), total.errors);
    assert_eq!(total.errors_by_kind.get(&ErrorKind::Status5xx), Some(&total.errors));
    let slo = result.slo.as_ref().expect("plaintext-floor has an [slo]");
    assert!(!slo.pass, "a 50% error rate breaks a zero error budget: {}", slo.describe());
    assert!(result.unclean_because().is_some_and(|w| w.contains("error budget")), "{table}");
    assert!(table.contains("SLO BROKEN"), "{table}");
}
