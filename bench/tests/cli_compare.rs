//! `taskbench compare` as a CI job runs it: constructed runs written to disk, the real binary,
//! its exit code, what it prints and the files it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use taskbench_report::Results;
use taskbench_report::fixture::{Shape, results};

const REPEATS: u32 = 5;

fn shapes(axum_rps: f64, axum_p50_us: f64) -> Vec<Shape> {
    vec![Shape::new("axum", axum_rps, axum_p50_us), Shape::new("actix", 5_200.0, 760.0)]
}

/// A run directory holding `results`.
fn run_dir(root: &Path, name: &str, results: &Results) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("run dir");
    results.write(&dir).expect("writing results.json");
    dir
}

fn baseline(root: &Path) -> PathBuf {
    run_dir(root, "base", &results(&["crud-mix"], &shapes(5_000.0, 800.0), REPEATS, 2, 1))
}

fn compare(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskbench"))
        .arg("compare")
        .args(args)
        .args(extra)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("running taskbench")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The table row for a framework and metric, from the Markdown.
fn table_row<'a>(markdown: &'a str, framework: &str, metric: &str) -> &'a str {
    let prefix = format!("| crud-mix | {framework} | {metric} |");
    markdown.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no row {prefix} in:\n{markdown}"))
}

#[test]
fn identical_runs_pass_and_write_the_markdown_and_bencher_json_into_the_new_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = baseline(tmp.path());
    let new = run_dir(tmp.path(), "new", &Results::read(&base).expect("readable"));
    let out = compare(&[&base, &new], &[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("## taskbench compare: passed: no regression beyond 5%"), "{stdout}");
    for fw in ["axum", "actix"] {
        for metric in ["rps", "p50", "p99", "peak RSS"] {
            let row = table_row(&stdout, fw, metric);
            assert!(row.contains("| +0.0% |") && row.ends_with("| no significant change |"), "{row}");
        }
    }
    assert_eq!(std::fs::read_to_string(new.join("compare.md")).expect("compare.md written"), stdout);
    let bencher: serde_json::Value =
        serde_json::from_slice(&std::fs::read(new.join("bencher.json")).expect("bencher.json written")).expect("json");
    let keys: Vec<&String> = bencher.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["crud-mix/actix", "crud-mix/axum"]);
    for measure in ["throughput", "latency-p50", "latency-p99", "peak-rss"] {
        let m = &bencher["crud-mix/axum"][measure];
        assert!(m["value"].is_f64() && m["lower_value"].is_f64() && m["upper_value"].is_f64(), "{measure}: {m}");
    }
    let rps = bencher["crud-mix/axum"]["throughput"]["value"].as_f64().expect("number");
    assert!((4_900.0..5_100.0).contains(&rps), "{rps}");
}

#[test]
fn a_20_percent_throughput_loss_exits_1_and_names_the_regression() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = baseline(tmp.path());
    let new = run_dir(tmp.path(), "new", &results(&["crud-mix"], &shapes(4_000.0, 800.0), REPEATS, 2, 2));
    // Given as a results.json path this time: the outputs land beside it.
    let out = compare(&[&base, &new.join("results.json")], &["--max-regression", "5%"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let markdown = std::fs::read_to_string(new.join("compare.md")).expect("compare.md");
    assert!(markdown.starts_with("## taskbench compare: FAILED: 1 regression(s) beyond 5%"), "{markdown}");
    assert!(table_row(&markdown, "axum", "rps").ends_with("| **regression** |"), "{markdown}");
    assert!(!table_row(&markdown, "actix", "rps").contains("regression"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the performance gate failed") && stderr.contains("crud-mix/axum rps regressed -"),
        "{stderr}"
    );
}

#[test]
fn run_to_run_noise_passes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = baseline(tmp.path());
    // Same shape (±2% noise), different draw.
    let new = run_dir(tmp.path(), "new", &results(&["crud-mix"], &shapes(5_000.0, 800.0), REPEATS, 2, 99));
    let out = compare(&[&base, &new], &["--max-regression", "0.05", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "--quiet prints nothing");
    let markdown = std::fs::read_to_string(new.join("compare.md")).expect("compare.md");
    assert!(!markdown.contains("**regression**") && !markdown.contains("| improvement |"), "{markdown}");
}

#[test]
fn thirty_percent_higher_latency_exits_1_on_p99() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = baseline(tmp.path());
    let new = run_dir(tmp.path(), "new", &results(&["crud-mix"], &shapes(5_000.0, 1_040.0), REPEATS, 2, 3));
    let out = compare(&[&base, &new], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(table_row(&stdout, "axum", "p99").ends_with("| **regression** |"), "{stdout}");
    assert!(text(&out.stderr).contains("crud-mix/axum p99 regressed +"), "{}", text(&out.stderr));
}

#[test]
fn outputs_go_where_asked_and_the_job_summary_is_appended() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = baseline(tmp.path());
    let summary = tmp.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").expect("write");
    let (md, bmf) = (tmp.path().join("out.md"), tmp.path().join("out-bmf.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_taskbench"))
        .arg("compare")
        .args([&base, &base])
        .arg("--markdown")
        .arg(&md)
        .arg("--bencher")
        .arg(&bmf)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("running taskbench");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let markdown = std::fs::read_to_string(&md).expect("--markdown file");
    assert_eq!(std::fs::read_to_string(&summary).expect("summary"), format!("earlier step\n{markdown}\n"));
    assert!(bmf.is_file() && !base.join("compare.md").exists());
}

#[test]
fn a_bad_threshold_is_refused_with_what_was_expected() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = baseline(tmp.path());
    for (given, says) in [("five", "found `five`"), ("5", "did you mean 5%?"), ("-3%", "at least 0")] {
        let out = compare(&[&base, &base], &[&format!("--max-regression={given}")]);
        assert_eq!(out.status.code(), Some(2), "{given}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("expected a percentage like 5% or a fraction like 0.05") && stderr.contains(says),
            "{stderr}"
        );
    }
}

#[test]
fn unreadable_or_incomparable_inputs_exit_2_and_say_why() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = baseline(tmp.path());

    let out = compare(&[&base, &tmp.path().join("nowhere")], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot read the new run: reading") && stderr.contains("nowhere"), "{stderr}");
    assert!(stderr.contains("expected a taskbench run directory or its results.json"), "{stderr}");

    let future = tmp.path().join("future");
    std::fs::create_dir_all(&future).expect("dir");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("results.json")).expect("read")).expect("json");
    doc["schema_version"] = serde_json::json!(99);
    std::fs::write(future.join("results.json"), doc.to_string()).expect("write");
    let out = compare(&[&future, &base], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("has schema_version 99; this taskbench reads versions 3 to 5"),
        "{}",
        text(&out.stderr)
    );

    let other = run_dir(tmp.path(), "other", &results(&["read-heavy"], &shapes(5_000.0, 800.0), 2, 1, 1));
    let out = compare(&[&base, &other], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("share no scenario (baseline: crud-mix; new: read-heavy)"),
        "{}",
        text(&out.stderr)
    );
    assert!(!other.join("compare.md").exists(), "nothing written when nothing was compared");
}

#[test]
fn an_incomplete_new_run_fails_the_gate() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = baseline(tmp.path());
    let mut partial = Results::read(&base).expect("readable");
    partial.incomplete = Some("interrupted (Ctrl-C)".into());
    let new = run_dir(tmp.path(), "new", &partial);
    let out = compare(&[&base, &new], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("**Failed:** the new run is incomplete (interrupted (Ctrl-C))"));
    assert!(text(&out.stderr).contains("the new run is incomplete"), "{}", text(&out.stderr));
}
