//! `taskbench run` as a user runs it: the real binary, real server processes, a throw-away
//! Postgres cluster, load on loopback. The server binaries are the ones `cargo test --workspace`
//! builds next to this one (`--server-bin`), so the test never runs cargo itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TASKBENCH: &str = env!("CARGO_BIN_EXE_taskbench");

fn server_bin(framework: &str) -> String {
    let path = Path::new(TASKBENCH).with_file_name(format!("taskbench-{framework}"));
    assert!(
        path.is_file(),
        "{} is missing: run the README's test command (`cargo test --workspace`), which builds the servers, \
         or `cargo build -p taskbench-{framework}` first",
        path.display()
    );
    format!("{framework}={}", path.display())
}

fn taskbench_run(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(TASKBENCH);
    cmd.args(["run", "--no-build", "--quiet", "--out"]).arg(out);
    if !extra.contains(&"--db") {
        cmd.args(["--db", "local"]);
    }
    cmd.args(["--server-bin", &server_bin("axum"), "--server-bin", &server_bin("actix")]).args(extra);
    cmd
}

fn results_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).expect("results.json is JSON")
}

#[test]
fn a_smoke_run_compares_both_frameworks_and_writes_valid_results_and_charts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let output =
        taskbench_run(&out, &["--scenario", "smoke", "--duration", "2s", "--warmup", "500ms", "--repeats", "1"])
            .output()
            .expect("taskbench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}; stderr:\n{stderr}", output.status.code());
    assert!(stderr.contains(&format!("results in {}", out.display())), "says where it wrote: {stderr}");

    let results = results_json(&out);
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("report/results.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let violations: Vec<String> =
        validator.iter_errors(&results).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(violations.is_empty(), "results.json violates its schema: {violations:#?}");
    assert!(results["incomplete"].is_null(), "complete: {}", results["incomplete"]);
    assert_eq!(results["config"]["frameworks"], serde_json::json!(["axum", "actix"]));

    let scenario = &results["scenarios"][0];
    assert_eq!(scenario["name"], "smoke");
    for framework in ["axum", "actix"] {
        let runs: Vec<&serde_json::Value> =
            scenario["runs"].as_array().expect("runs").iter().filter(|r| r["framework"] == framework).collect();
        assert_eq!(runs.len(), 1, "one repeat of {framework}");
        let run = runs[0];
        assert!(run["error"].is_null(), "{framework}: {}", run["error"]);
        let total = &run["load"]["total"];
        assert!(total["requests"].as_u64().expect("requests") > 50, "{framework} served requests: {total}");
        assert_eq!(total["errors"], 0, "{framework} without errors: {}", total["errors_by_kind"]);
        for role in ["server", "postgres", "loadgen"] {
            let r = &run["resources"][role];
            assert!(r["peak_rss_bytes"].as_u64().unwrap_or(0) > 1 << 20, "{framework} {role} memory sampled: {r}");
            assert!(r["cpu_seconds"].as_f64().unwrap_or(-1.0) >= 0.0, "{framework} {role} CPU: {r}");
        }
        assert!(run["samples"].as_array().expect("samples").len() >= 4, "sampled every 250 ms");
        let server = &run["resources"]["server"];
        assert!(server["idle_rss_bytes"].as_u64().unwrap_or(0) > 1 << 20, "idle memory recorded: {server}");
        assert!(
            server["peak_rss_bytes"].as_u64() >= server["sampled_peak_rss_bytes"].as_u64(),
            "the high-water mark is never below a sample: {server}"
        );
        let open = &run["load"]["open"];
        assert_eq!(open["scheduled"], total["requests"], "{framework}: every scheduled request counted: {open}");
        assert!(open["send_lag_us"]["p99"].as_u64().is_some(), "{framework}: send lag recorded: {open}");
        assert!(run["load"]["slo"]["pass"].is_boolean(), "{framework}: the [slo] is judged: {}", run["load"]["slo"]);
    }
    let summary = &scenario["summary"];
    assert_eq!(summary["frameworks"].as_array().expect("per framework").len(), 2);
    assert!(summary["verdict"].as_str().is_some_and(|v| !v.is_empty()));

    for file in ["report.md", "report.html"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("axum") && text.contains("actix"), "{file} names both frameworks");
    }
    let charts: Vec<PathBuf> = std::fs::read_dir(out.join("charts"))
        .expect("charts/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    assert!(charts.len() >= 5, "five charts for the scenario: {charts:?}");
    for chart in &charts {
        let svg = std::fs::read_to_string(chart).expect("chart");
        assert!(svg.contains("<svg") && svg.len() > 2_000, "{} is a real image", chart.display());
        assert!(
            svg.contains("<polyline") || svg.contains("<path") || svg.contains("<rect"),
            "{} draws",
            chart.display()
        );
    }

    // The report re-renders from results.json alone.
    std::fs::remove_file(out.join("report.md")).expect("remove");
    let status = Command::new(TASKBENCH).arg("report").arg(&out).status().expect("report runs");
    assert!(status.success());
    assert!(out.join("report.md").is_file(), "taskbench report rewrote report.md");
}

/// Processes whose environment carries `marker`: everything `taskbench run` started inherits it.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{pid}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

#[test]
fn ctrl_c_stops_everything_and_keeps_the_partial_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let marker = format!("TASKBENCH_TEST_MARKER={:x}", std::process::id() as u64 * 7919 + 17);
    let (key, value) = marker.split_once('=').expect("k=v");
    let mut child =
        taskbench_run(&out, &["--scenario", "smoke", "--duration", "60s", "--warmup", "500ms", "--repeats", "1"])
            .env(key, value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("taskbench starts");

    wait_until_measuring(&mut child, &out);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!processes_with(&marker).is_empty(), "the run's processes carry the marker");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT");

    let code = exit_code_within(&mut child, Duration::from_secs(60), "Ctrl-C");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert_eq!(code, Some(1), "an interrupted run exits 1; stderr:\n{stderr}");

    let results = results_json(&out);
    assert!(results["incomplete"].as_str().is_some_and(|s| s.contains("interrupted")), "{}", results["incomplete"]);
    let run = &results["scenarios"][0]["runs"][0];
    assert_eq!(run["framework"], "axum");
    assert!(run["load"]["total"]["requests"].as_u64().unwrap_or(0) > 50, "what was measured is kept: {run}");
    assert!(run["load"]["incomplete"].is_string(), "the run is marked incomplete");
    assert!(out.join("report.md").is_file(), "the report of the partial run is written");

    assert_nothing_left(&marker, "Ctrl-C");
}

/// Waits (bounded) until the first framework of a smoke run is being measured.
fn wait_until_measuring(child: &mut std::process::Child, out: &Path) {
    let measuring = out.join("logs/smoke-axum-1-loadgen.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !measuring.exists() {
        assert!(Instant::now() < deadline, "the first run never started");
        assert!(child.try_wait().expect("try_wait").is_none(), "taskbench exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Servers, load generator and the Postgres cluster are gone (the cluster's supervisor removes it
/// as soon as its owner lets go; allow it a moment).
fn assert_nothing_left(marker: &str, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left running after {after}: {left:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (bounded) for `child` to exit and returns its exit code.
fn exit_code_within(child: &mut std::process::Child, within: Duration, what: &str) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        assert!(Instant::now() < deadline, "taskbench did not stop within {within:?} of {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Postgres stops while a run measures: the run is recorded as failed with the reason, what it
/// measured is kept, the whole run ends as incomplete (exit 1), and nothing is left running.
#[test]
fn a_database_that_dies_mid_run_fails_the_run_with_the_reason_and_leaves_nothing_running() {
    use taskbench_provision::{Postgres, ProvisionOptions};
    let mut postgres = Postgres::start_local(&ProvisionOptions { durable: false }).expect("a local cluster");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let marker = format!("TASKBENCH_TEST_MARKER={:x}", std::process::id() as u64 * 7907 + 29);
    let (key, value) = marker.split_once('=').expect("k=v");
    let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
    let db = format!("url:{}", postgres.url());
    let mut child = taskbench_run(
        &out,
        &["--db", &db, "--scenario", "smoke", "--duration", "6s", "--warmup", "500ms", "--repeats", "1"],
    )
    .env(key, value)
    .stdout(Stdio::null())
    .stderr(stderr)
    .spawn()
    .expect("taskbench starts");

    wait_until_measuring(&mut child, &out);
    std::thread::sleep(Duration::from_secs(2));
    postgres.interrupt().expect("Postgres stopped");

    let code = exit_code_within(&mut child, Duration::from_secs(90), "the database going away");
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    assert_eq!(code, Some(1), "a run that lost its database exits 1; stderr:\n{stderr}");
    let results = results_json(&out);
    assert!(
        results["incomplete"].as_str().is_some_and(|s| s.contains("database became unavailable")),
        "{}",
        results["incomplete"]
    );
    let run = &results["scenarios"][0]["runs"][0];
    assert!(
        run["error"].as_str().is_some_and(|e| e.starts_with("database: unreachable at the end of the run")),
        "the run says why it failed: {}",
        run["error"]
    );
    assert!(run["load"]["total"]["requests"].as_u64().unwrap_or(0) > 50, "what was measured is kept: {run}");
    assert_eq!(results["scenarios"][0]["runs"].as_array().map(Vec::len), Some(1), "no run after the loss");
    assert!(out.join("report.md").is_file(), "the report of the partial run is written");
    assert_nothing_left(&marker, "the database died");
}

#[test]
fn bad_input_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, says) in [
        (&["--frameworks", "rocket"][..], "unknown framework `rocket`"),
        (&["--server-bin", "rocket=/bin/true"][..], "unknown framework `rocket`"),
        (&["--scenario", "no-such-scenario"][..], "no-such-scenario"),
        (&["--cpus", "server=banana"][..], "is not a CPU number"),
        (&["--duration", "soon"][..], "--duration"),
        (&["--db", "url:postgres://127.0.0.1:1/nothing"][..], "127.0.0.1:1"),
    ] {
        let output = taskbench_run(&dir.path().join("bad"), args).output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?} should say {says:?}: {stderr}");
    }
}
