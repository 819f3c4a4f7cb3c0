//! The `taskbench-actix` binary as a user runs it: readiness line, serving, graceful stop.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_announces_serves_and_stops_gracefully() {
    taskbench_conformance::process::check_binary(env!("CARGO_BIN_EXE_taskbench-actix")).await;
}
