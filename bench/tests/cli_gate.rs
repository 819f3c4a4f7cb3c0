//! The interleaved gate as CI runs it: `taskbench run` with contenders (the same server binary,
//! once plain and once with a large injected cost per request), then `taskbench gate` on that one
//! run. Real processes, a throw-away Postgres cluster, load on loopback.

use std::path::Path;
use std::process::Command;

const TASKBENCH: &str = env!("CARGO_BIN_EXE_taskbench");

fn axum() -> String {
    let path = Path::new(TASKBENCH).with_file_name("taskbench-axum");
    assert!(path.is_file(), "{} is missing: run `cargo test --workspace`, which builds it", path.display());
    path.display().to_string()
}

fn gate(run: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(TASKBENCH).arg("gate").arg(run).args(extra).output().expect("taskbench gate runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_injected_slowdown_fails_the_gate_and_identical_binaries_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let bin = axum();
    // A closed loop of a few users, light enough for debug builds. 300 µs of CPU per request is
    // several times a debug build's own cost, so far past any threshold.
    let scenario = dir.path().join("gate-closed.toml");
    std::fs::write(
        &scenario,
        "name = \"gate-closed\"\n[load]\nmodel = \"closed\"\nusers = 4\nduration = \"1s\"\n\
         [[steps]]\nop = \"json\"\nweight = 1\n",
    )
    .expect("scenario written");
    let status = Command::new(TASKBENCH)
        .args(["run", "--no-build", "--quiet", "--db", "local", "--scenario"])
        .arg(&scenario)
        .args(["--duration", "1s", "--warmup", "300ms", "--repeats", "6", "--out"])
        .arg(&out)
        .args(["--contender", &format!("base={bin}"), "--contender", &format!("same={bin}")])
        .args(["--contender", &format!("slow={bin} --inject-cpu-us 300")])
        .status()
        .expect("taskbench run");
    assert!(status.success(), "the interleaved run succeeds: {status}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("written")).expect("JSON");
    assert_eq!(results["config"]["frameworks"], serde_json::json!(["base", "same", "slow"]));
    assert_eq!(results["config"]["server_args"]["slow"], serde_json::json!(["--inject-cpu-us", "300"]));
    // Interleaved: every repeat runs every contender, in a rotated order.
    let runs = results["scenarios"][0]["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 18);
    let first: Vec<&str> = runs.iter().step_by(3).map(|r| r["framework"].as_str().unwrap_or("")).collect();
    assert_eq!(first, ["base", "same", "slow", "base", "same", "slow"], "the order rotates per repeat");
    assert!(out.join("charts/gate-closed-pairs.svg").is_file(), "the pairs chart is drawn");

    // A generous threshold: this test proves the plumbing, the calibration script measures the rates.
    let (code, stdout, stderr) = gate(&out, &["--base", "base", "--head", "same", "--min-effect", "10%"]);
    assert_eq!(code, 0, "identical binaries pass:\n{stdout}\n{stderr}");
    assert!(stdout.starts_with("## taskbench gate: passed"), "{stdout}");

    let (code, stdout, stderr) = gate(&out, &["--base", "base", "--head", "slow", "--min-effect", "10%"]);
    assert_eq!(code, 1, "the slowed build fails:\n{stdout}\n{stderr}");
    // CPU per request is judged whatever limited the runs (a debug load generator may be the
    // limit here, and then throughput is rightly not judged).
    let cpu_row = stdout.lines().find(|l| l.starts_with("| gate-closed | server CPU per request |")).expect("judged");
    assert!(cpu_row.ends_with("| **regression** |"), "{stdout}");
    assert!(stderr.contains("the performance gate failed"), "{stderr}");
    assert!(stderr.contains("base server CPU per request lower than slow by"), "{stderr}");
    assert!(std::fs::read_to_string(out.join("gate.md")).expect("gate.md").contains("FAILED"));

    let (code, _, stderr) = gate(&out, &["--head", "nobody"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no contender `nobody` in the run (it has base, same, slow)"), "{stderr}");
}

#[test]
fn contenders_are_checked_before_anything_starts() {
    let out = Command::new(TASKBENCH)
        .args(["run", "--no-build", "--quiet", "--contender", "bad name=/bin/true"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("contender names are 1 to 24 lower-case letters, digits and `_`"), "{stderr}");
    let out =
        Command::new(TASKBENCH).args(["run", "--no-build", "--contender", "Head-1=/bin/true"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "a name Postgres could not take is refused before anything starts");
    let out = Command::new(TASKBENCH)
        .args(["run", "--no-build", "--quiet", "--contender", "a=/bin/true", "--contender", "a=/bin/true"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the name `a` is given twice"));
}
