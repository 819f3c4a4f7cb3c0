//! A saturation search as a user runs it: `taskbench run` on a search scenario, both real
//! servers, a throw-away Postgres cluster, load on loopback, with a small step budget.

use std::path::Path;
use std::process::Command;

const TASKBENCH: &str = env!("CARGO_BIN_EXE_taskbench");

fn server_bin(framework: &str) -> String {
    let path = Path::new(TASKBENCH).with_file_name(format!("taskbench-{framework}"));
    assert!(path.is_file(), "{} is missing: run `cargo test --workspace`, which builds the servers", path.display());
    format!("{framework}={}", path.display())
}

/// A search small enough for a test: from 500 req/s, ×4 per step, at most 4 steps of 0.5 s (2 s
/// at 500 req/s, for the p99's 1,000 answers), on the JSON endpoint: the servers under test are
/// debug builds, which spend about a millisecond of CPU on a task read, so a database-backed
/// search would mostly measure that.
const SEARCH: &str = r#"
name = "search-test"
description = "a small saturation search"
[data]
users = 4
tasks_per_user = 5
seed = 7
[load]
model = "search"
from = 500
max = 1000000
growth = 4
max_steps = 4
warmup = "300ms"
step_duration = "500ms"
max_in_flight = 256
[[steps]]
op = "json"
weight = 1
[slo]
p99_ms = 50
max_error_rate = 0.001
"#;

#[test]
fn a_search_finds_a_maximum_for_each_framework_and_draws_the_curve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("search-test.toml");
    std::fs::write(&scenario, SEARCH).expect("scenario written");
    let out = dir.path().join("run");
    let output = Command::new(TASKBENCH)
        .args(["run", "--no-build", "--db", "local", "--repeats", "1", "--out"])
        .arg(&out)
        .arg("--scenario")
        .arg(&scenario)
        .args(["--server-bin", &server_bin("axum"), "--server-bin", &server_bin("actix")])
        .output()
        .expect("taskbench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Exit 0 or 1: a search whose every step broke would be 1, and is checked below.
    assert!(matches!(output.status.code(), Some(0 | 1)), "exit {:?}; stderr:\n{stderr}", output.status.code());

    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let results: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("report/results.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let violations: Vec<String> =
        validator.iter_errors(&results).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(violations.is_empty(), "results.json violates its schema: {violations:#?}");

    let scenario = &results["scenarios"][0];
    assert_eq!(scenario["model"], "search");
    for framework in ["axum", "actix"] {
        let run = scenario["runs"].as_array().expect("runs").iter().find(|r| r["framework"] == framework);
        let run = run.unwrap_or_else(|| panic!("{framework} ran"));
        assert!(run["error"].is_null(), "{framework}: {}", run["error"]);
        let search = &run["load"]["search"];
        let steps = search["steps"].as_array().expect("steps");
        assert!(!steps.is_empty() && steps.len() <= 4, "{framework}: the step budget holds: {}", steps.len());
        assert_eq!(steps[0]["rate"], 500.0, "{framework}: the search starts at `from`");
        assert!(steps[0]["measured_secs"].as_f64().unwrap_or(0.0) >= 1.99, "1,000 answers at 500 req/s take 2 s");
        // A debug server answering 500 req/s within 50 ms p99: the first step passes.
        assert_eq!(steps[0]["pass"], true, "{framework}: {}", steps[0]);
        let max = search["max_sustainable_rps"].as_f64().unwrap_or_else(|| panic!("{framework}: a maximum: {search}"));
        assert!(
            steps.iter().any(|s| s["pass"] == true && s["rate"].as_f64() == Some(max)),
            "{framework}: the maximum {max} is a rate a step passed at"
        );
        assert!(
            steps.iter().filter(|s| s["pass"] == true).all(|s| s["rate"].as_f64().unwrap_or(f64::MAX) <= max),
            "{framework}: no passing rate above the maximum"
        );
        let conclusion = search["conclusion"].as_str().unwrap_or_default();
        assert!(!conclusion.is_empty(), "{framework}: the outcome in words");
        assert!(stdout.contains(conclusion), "{framework}: the terminal shows how the search ended: {stdout}");
        // Each step's resources, over that step's own window.
        let resources = run["steps"].as_array().expect("per-step resources");
        assert_eq!(resources.len(), steps.len(), "{framework}: one resource record per step");
        assert!(
            resources[0]["server_cpu_us_per_request"].as_f64().is_some_and(|c| c > 0.0),
            "{framework}: server CPU per request in the first step: {}",
            resources[0]
        );
        let summary = scenario["summary"]["frameworks"].as_array().expect("summary");
        let fw = summary.iter().find(|f| f["framework"] == framework).expect("summarised");
        // The summary takes the maximum only when the server set it (it broke a limit); a search
        // stopped by its step budget before anything broke, or by the generator, is a lower bound.
        let by_server = matches!(search["stop"].as_str(), Some("converged" | "step_budget"))
            && search["broke_at_rps"].as_f64().is_some();
        let summarised = fw["max_sustainable_rps"]["median"].as_f64();
        assert_eq!(summarised, by_server.then_some(max), "{framework}: {conclusion}");
        if !by_server {
            assert!(conclusion.contains("at least"), "{framework}: a lower bound says so: {conclusion}");
        }
    }

    let svg = std::fs::read_to_string(out.join("charts/search-test-capacity.svg")).expect("the capacity chart");
    assert!(svg.contains("<svg") && svg.contains("axum") && svg.contains("actix"), "names both frameworks");
    assert!(svg.contains("offered rate"), "the x axis is the offered rate");
    assert!(svg.contains("<polyline") || svg.contains("<path"), "draws lines");
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(report.contains("Maximum sustainable throughput"), "the report has the search section");
    assert!(report.contains("charts/search-test-capacity.svg"), "and links the curve");
}

#[test]
fn a_search_without_a_latency_objective_is_refused_with_what_to_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("no-slo.toml");
    std::fs::write(&scenario, SEARCH.replace("p99_ms = 50\n", "")).expect("scenario written");
    let output = Command::new(TASKBENCH)
        .args(["run", "--no-build", "--quiet", "--scenario"])
        .arg(&scenario)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a search needs the latency it must keep: `[slo]` with `p99_ms`"), "{stderr}");
    // --find-max on an open-model scenario without one says the same.
    let open = dir.path().join("open-no-slo.toml");
    let text = SEARCH
        .replace(
            "model = \"search\"\nfrom = 500\nmax = 1000000\ngrowth = 4\nmax_steps = 4",
            "model = \"open\"\nrate = 100",
        )
        .replace("step_duration", "duration")
        .replace("[slo]\np99_ms = 50\n", "[slo]\n");
    std::fs::write(&open, text).expect("scenario written");
    let output = Command::new(TASKBENCH)
        .args(["run", "--no-build", "--quiet", "--find-max", "--scenario"])
        .arg(&open)
        .arg("--out")
        .arg(dir.path().join("run2"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--find-max") && stderr.contains("p99_ms"), "{stderr}");
}

#[test]
fn find_max_turns_an_open_scenario_into_a_search() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = dir.path().join("open-json.toml");
    let text = SEARCH
        .replace(
            "model = \"search\"\nfrom = 500\nmax = 1000000\ngrowth = 4\nmax_steps = 4",
            "model = \"open\"\nrate = 500",
        )
        .replace("step_duration", "duration");
    std::fs::write(&open, text).expect("scenario written");
    let out = dir.path().join("run");
    let output = Command::new(TASKBENCH)
        .args(["run", "--no-build", "--quiet", "--db", "local", "--repeats", "1", "--frameworks", "axum"])
        .args(["--find-max", "--duration", "500ms", "--warmup", "200ms", "--scenario"])
        .arg(&open)
        .arg("--out")
        .arg(&out)
        .args(["--server-bin", &server_bin("axum")])
        .output()
        .expect("taskbench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(matches!(output.status.code(), Some(0 | 1)), "exit {:?}; stderr:\n{stderr}", output.status.code());
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let results: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let scenario = &results["scenarios"][0];
    assert_eq!(scenario["model"], "search");
    let search = &scenario["runs"][0]["load"]["search"];
    let steps = search["steps"].as_array().unwrap_or_else(|| panic!("the load generator searched: {search}"));
    assert_eq!(steps[0]["rate"], 500.0, "from the scenario's rate");
    assert!(steps.len() >= 2, "it searched: {} step(s)", steps.len());
    assert_eq!(search["settings"]["max"], 1_000_000.0);
}
