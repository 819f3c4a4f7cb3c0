//! `taskbench loadgen` as a user runs it: against a real server, with a bad scenario file, and
//! against targets it must refuse or cannot reach.

use std::process::{Command, Output};

use taskbench_conformance::{Framework, spawn_app};

fn taskbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskbench")).args(args).output().expect("running taskbench")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_drives_a_running_server_and_prints_json() {
    let app = spawn_app(Framework::Actix).await;
    let target = app.url("");
    let out = tokio::task::spawn_blocking(move || {
        taskbench(&[
            "loadgen",
            "--scenario",
            "smoke",
            "--target",
            &target,
            "--duration",
            "1s",
            "--warmup",
            "300ms",
            "--json",
        ])
    })
    .await
    .expect("join");
    assert!(out.status.success(), "exit {:?}: {}", out.status, stderr(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON result");
    assert_eq!(result["scenario"], "smoke");
    assert!(result["total"]["requests"].as_u64().is_some_and(|n| n > 50), "{result}");
    assert_eq!(result["total"]["errors"], 0, "{}", result["total"]);
    assert!(result["per_op"]["list_tasks"]["latency_us"]["p99"].as_u64().is_some_and(|p| p > 0));
}

#[test]
fn a_bad_scenario_file_is_rejected_before_anything_starts() {
    let dir = std::env::temp_dir().join(format!("taskbench-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.toml");
    let text = "name = \"bad\"\n[load]\nmodel = \"open\"\nrate = 10\nduration = \"1s\"\n[[steps]]\nop = \"health\"\nweight = -3\n";
    std::fs::write(&file, text).expect("write");
    // The target does not exist either: the scenario error must come first.
    let out = taskbench(&["loadgen", "--scenario", file.to_str().expect("utf-8"), "--target", "http://127.0.0.1:9"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.toml line 8: `weight` must be a positive integer, found -3"), "{err}");
}

#[test]
fn unreachable_and_non_loopback_targets_are_clear_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let out = taskbench(&["loadgen", "--scenario", "smoke", "--target", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot reach") && stderr(&out).contains("is the server running?"),
        "{}",
        stderr(&out)
    );
    let out = taskbench(&["loadgen", "--scenario", "smoke", "--target", "http://10.1.2.3:80"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dying_mid_run_exits_non_zero_with_the_partial_result() {
    let app = spawn_app(Framework::Axum).await;
    let target = app.url("");
    let out_file = std::env::temp_dir().join(format!("taskbench-partial-{}.json", std::process::id()));
    let out_arg = out_file.to_str().expect("utf-8").to_owned();
    let run = tokio::task::spawn_blocking(move || {
        taskbench(&[
            "loadgen",
            "--scenario",
            "plaintext-floor",
            "--target",
            &target,
            "--rate",
            "300",
            "--warmup",
            "200ms",
            "--duration",
            "8s",
            "--out",
            &out_arg,
        ])
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    drop(app); // stops the server: listener and connections close
    let out = run.await.expect("join");
    assert_eq!(out.status.code(), Some(1), "incomplete run: {}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("INCOMPLETE"), "{table}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).expect("partial result written")).expect("json");
    let _ = std::fs::remove_file(&out_file);
    assert!(saved["total"]["requests"].as_u64().is_some_and(|n| n > 100), "{}", saved["total"]);
    assert!(saved["total"]["errors"].as_u64().is_some_and(|n| n > 0), "{}", saved["total"]);
    assert!(saved["incomplete"].is_string());
}

/// A server whose `/bench/plaintext` answers every other request with a 500.
async fn half_failing_server() -> String {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let count = Arc::new(AtomicU64::new(0));
    let handler = move || {
        let count = count.clone();
        async move {
            match count.fetch_add(1, Ordering::Relaxed) % 2 {
                0 => (axum::http::StatusCode::OK, "Hello, World!"),
                _ => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no"),
            }
        }
    };
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route("/bench/plaintext", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_run_that_breaks_its_slo_exits_3_and_errors_are_not_throughput() {
    let target = half_failing_server().await;
    let out = tokio::task::spawn_blocking(move || {
        taskbench(&[
            "loadgen",
            "--scenario",
            "plaintext-floor",
            "--target",
            &target,
            "--rate",
            "200",
            "--warmup",
            "200ms",
            "--duration",
            "1s",
            "--json",
        ])
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(3), "a broken SLO: {}", stderr(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON result");
    let total = &result["total"];
    let (requests, successes) = (total["requests"].as_f64().unwrap_or(0.0), total["successes"].as_f64().unwrap_or(0.0));
    assert!((successes / requests - 0.5).abs() < 0.02, "{total}");
    let rps = total["rps"].as_f64().unwrap_or(0.0);
    assert!((rps - successes / result["measured_secs"].as_f64().unwrap_or(1.0)).abs() < 1e-6, "goodput: {total}");
    assert_eq!(result["slo"]["pass"], false, "{}", result["slo"]);
    assert!(stderr(&out).contains("broke its SLO"), "{}", stderr(&out));
}
