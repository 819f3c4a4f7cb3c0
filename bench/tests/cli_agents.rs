//! Several load agents against one server, as a user runs them by hand: `loadgen --seed-only`,
//! then `loadgen --agent I/N --start-at T --out …` in parallel, then `merge`. On loopback here;
//! the same commands run on separate machines.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use taskbench_conformance::{Framework, spawn_app, spawn_app_on};
use taskbench_results::{LoadResult, decode_histogram};

const TASKBENCH: &str = env!("CARGO_BIN_EXE_taskbench");

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64
}

fn read(path: &Path) -> LoadResult {
    serde_json::from_slice(&std::fs::read(path).expect("result written")).expect("a LoadResult")
}

/// Runs `count` agents of `scenario` (with `extra` flags) at a common instant a few seconds away,
/// in parallel, each writing `agent-I.json` into `dir`.
fn agents(dir: &Path, target: &str, count: u32, extra: &[&str]) -> Vec<LoadResult> {
    let start_at = (now_ms() + 4_000).to_string();
    let children: Vec<_> = (0..count)
        .map(|i| {
            Command::new(TASKBENCH)
                .args(["loadgen", "--scenario", "smoke", "--target", target, "--quiet"])
                .args(["--agent", &format!("{i}/{count}"), "--start-at", &start_at])
                .arg("--out")
                .arg(dir.join(format!("agent-{i}.json")))
                .args(extra)
                .stderr(Stdio::piped())
                .spawn()
                .expect("agent starts")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("agent runs");
        assert!(out.status.success(), "agent {i}: exit {:?}: {}", out.status, stderr(&out));
    }
    (0..count).map(|i| read(&dir.join(format!("agent-{i}.json")))).collect()
}

fn merge(dir: &Path, parts: &[&str]) -> Output {
    let mut cmd = Command::new(TASKBENCH);
    cmd.arg("merge").args(parts.iter().map(|p| dir.join(p))).arg("--out").arg(dir.join("merged.json"));
    cmd.output().expect("merge runs")
}

/// The (value, count) of every bucket that holds something.
fn buckets(hdr: &str) -> Vec<(u64, u64)> {
    let h = decode_histogram(hdr).expect("histogram");
    h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_open_model_agents_merge_into_the_scenarios_schedule() {
    // On a second loopback address: nothing in seeding, agents or merging assumes 127.0.0.1.
    let app = spawn_app_on(Framework::Axum, "127.0.0.2").await;
    let target = app.url("");
    assert!(target.starts_with("http://127.0.0.2:"), "{target}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let (parts, merged_out, merged) = tokio::task::spawn_blocking(move || {
        let seed = Command::new(TASKBENCH)
            .args(["loadgen", "--scenario", "smoke", "--target", &target, "--seed-only"])
            .output()
            .expect("seeding runs");
        assert!(seed.status.success(), "seeding: {}", stderr(&seed));
        // Every request of a 400 req/s schedule, split between two agents started together.
        let parts = agents(&path, &target, 2, &["--rate", "400", "--warmup", "500ms", "--duration", "2s"]);
        let out = merge(&path, &["agent-1.json", "agent-0.json"]);
        (parts, out, read(&path.join("merged.json")))
    })
    .await
    .expect("join");
    assert!(merged_out.status.success(), "merge: {}", stderr(&merged_out));

    // Each agent took its half of the schedule, and they started together.
    for (i, part) in parts.iter().enumerate() {
        let share = part.agent.expect("the share is recorded");
        assert_eq!((share.index, share.count), (i as u32, 2));
        let open = part.open.as_ref().expect("open model");
        assert!(open.scheduled.abs_diff(400) <= 1, "agent {i} scheduled {} of 800", open.scheduled);
    }
    let agents = merged.agents.as_ref().expect("merged from agents");
    assert_eq!(agents.count, 2);
    assert!(agents.start_spread_ms < 500, "the agents started {} ms apart", agents.start_spread_ms);

    // Counts add up; the combined schedule is the scenario's.
    assert_eq!(merged.total.requests, parts.iter().map(|p| p.total.requests).sum::<u64>());
    assert_eq!(agents.requests, parts.iter().map(|p| p.total.requests).collect::<Vec<_>>());
    let open = merged.open.as_ref().expect("open stats merged");
    assert_eq!(open.scheduled, 800, "400 req/s for 2 s, all agents together");
    assert!((open.target_rps - 400.0).abs() < 1e-6, "{}", open.target_rps);
    assert!((open.offered_rps - 400.0).abs() < 400.0 * 0.05, "offered {} req/s", open.offered_rps);
    assert_eq!(merged.total.errors, 0, "{:?}", merged.total.errors_by_kind);

    // Histograms were added, bucket by bucket, and the percentiles read off the sum.
    let mut sum = decode_histogram(&parts[0].total.latency_hdr).expect("histogram");
    sum.add(decode_histogram(&parts[1].total.latency_hdr).expect("histogram")).expect("same bounds");
    let expected: Vec<(u64, u64)> = sum.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
    assert_eq!(buckets(&merged.total.latency_hdr), expected);
    assert_eq!(merged.total.latency_us.p99, sum.value_at_quantile(0.99));
    for (op, figures) in &merged.per_op {
        let parts_requests: u64 = parts.iter().filter_map(|p| p.per_op.get(op)).map(|f| f.requests).sum();
        assert_eq!(figures.requests, parts_requests, "{op}");
    }
    // The per-second series covers the phase, with every request that ended in it.
    let in_series: u64 = merged.series.iter().map(|s| s.requests).sum();
    let parts_series: u64 = parts.iter().flat_map(|p| &p.series).map(|s| s.requests).sum();
    assert_eq!(in_series, parts_series);

    // What cannot be one run is refused with what was expected.
    let dir = dir.path();
    let alone = merge(dir, &["agent-0.json"]);
    assert_eq!(alone.status.code(), Some(2));
    assert!(stderr(&alone).contains("agent 1/2 is missing"), "{}", stderr(&alone));
    let twice = merge(dir, &["agent-0.json", "agent-0.json"]);
    assert!(stderr(&twice).contains("agent 0/2 is given twice"), "{}", stderr(&twice));
    let merged_again = merge(dir, &["merged.json", "agent-1.json"]);
    assert!(stderr(&merged_again).contains("was not written by an agent"), "{}", stderr(&merged_again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_agents_split_the_virtual_users() {
    let app = spawn_app(Framework::Actix).await;
    let target = app.url("");
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("closed.toml");
    std::fs::write(
        &scenario,
        "name = \"closed-agents\"\n[data]\nusers = 3\ntasks_per_user = 4\nseed = 1\n[load]\nmodel = \"closed\"\nusers = 3\n\
         ramp = \"100ms\"\nwarmup = \"300ms\"\nduration = \"1s\"\n[[steps]]\nop = \"list_tasks\"\nweight = 1\n",
    )
    .expect("scenario written");
    let path = dir.path().to_owned();
    let (parts, out) = tokio::task::spawn_blocking(move || {
        let file = scenario.to_str().expect("utf-8").to_owned();
        let seed = Command::new(TASKBENCH)
            .args(["loadgen", "--scenario", &file, "--target", &target, "--seed-only"])
            .output()
            .expect("seeding runs");
        assert!(seed.status.success(), "seeding: {}", stderr(&seed));
        let start_at = (now_ms() + 4_000).to_string();
        let children: Vec<_> = (0..2)
            .map(|i| {
                Command::new(TASKBENCH)
                    .args(["loadgen", "--scenario", &file, "--target", &target, "--quiet", "--json"])
                    .args(["--agent", &format!("{i}/2"), "--start-at", &start_at])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("agent starts")
            })
            .collect();
        let children: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().expect("agent runs")).collect();
        let parts: Vec<LoadResult> = children
            .iter()
            .enumerate()
            .map(|(i, out)| {
                assert!(out.status.success(), "agent {i}: {}", stderr(out));
                let part: LoadResult = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
                std::fs::write(path.join(format!("agent-{i}.json")), &out.stdout).expect("saved");
                part
            })
            .collect();
        (parts, merge(&path, &["agent-0.json", "agent-1.json"]))
    })
    .await
    .expect("join");
    assert!(out.status.success(), "merge: {}", stderr(&out));
    let merged = read(&dir.path().join("merged.json"));
    assert!(parts.iter().all(|p| p.total.requests > 0 && p.total.errors == 0), "both agents' users worked");
    assert_eq!(merged.total.requests, parts[0].total.requests + parts[1].total.requests);
    assert!(merged.incomplete.is_none(), "{:?}", merged.incomplete);
}

#[test]
fn a_misnamed_agent_or_a_search_split_across_agents_is_refused() {
    let bad = Command::new(TASKBENCH)
        .args(["loadgen", "--scenario", "smoke", "--target", "http://127.0.0.1:9", "--agent", "2/2"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("expected I/N with 0 <= I < N"), "{}", stderr(&bad));
    let search = Command::new(TASKBENCH)
        .args(["loadgen", "--scenario", "capacity-json", "--target", "http://127.0.0.1:9", "--agent", "0/2"])
        .output()
        .expect("runs");
    assert_eq!(search.status.code(), Some(2));
    assert!(stderr(&search).contains("runs on one agent"), "{}", stderr(&search));
}

/// `taskbench merge … --into DIR --name NAME`, as `report` and `compare` take it.
fn merge_into(dir: &Path, parts: &[&str], into: &Path, name: &str) -> Output {
    Command::new(TASKBENCH)
        .arg("merge")
        .args(parts.iter().map(|p| dir.join(p)))
        .arg("--into")
        .arg(into)
        .args(["--name", name])
        .output()
        .expect("merge runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_runs_of_two_frameworks_go_through_report_and_compare() {
    let (axum, actix) =
        (spawn_app_on(Framework::Axum, "127.0.0.2").await, spawn_app_on(Framework::Actix, "127.0.0.2").await);
    let (axum_url, actix_url) = (axum.url(""), actix.url(""));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        let into = path.join("merged-run");
        let mut merged = Vec::new();
        for (name, target) in [("axum", &axum_url), ("actix", &actix_url)] {
            let seed = Command::new(TASKBENCH)
                .args(["loadgen", "--scenario", "smoke", "--target", target, "--seed-only"])
                .output()
                .expect("seeding runs");
            assert!(seed.status.success(), "seeding: {}", stderr(&seed));
            let parts_dir = path.join(name);
            std::fs::create_dir_all(&parts_dir).expect("dir");
            let parts = agents(&parts_dir, target, 2, &["--rate", "200", "--warmup", "300ms", "--duration", "1s"]);
            let out = merge_into(&parts_dir, &["agent-0.json", "agent-1.json"], &into, name);
            assert!(out.status.success(), "merge --into: {}", stderr(&out));
            merged.push(parts.iter().map(|p| p.total.requests).sum::<u64>());
        }
        let report = Command::new(TASKBENCH).arg("report").arg(&into).output().expect("report runs");
        let compare = Command::new(TASKBENCH)
            .arg("compare")
            .arg(&into)
            .arg(&into)
            .arg("--markdown")
            .arg(path.join("compare.md"))
            .output()
            .expect("compare runs");
        let bare = Command::new(TASKBENCH)
            .arg("report")
            .arg(path.join("axum").join("agent-0.json"))
            .output()
            .expect("report runs");
        // Not a merged document: refused, and left as it was.
        let foreign = path.join("foreign");
        std::fs::create_dir_all(&foreign).expect("dir");
        std::fs::write(foreign.join("results.json"), "{\"schema_version\": 5, \"cut short").expect("written");
        let refused = merge_into(&path.join("axum"), &["agent-0.json", "agent-1.json"], &foreign, "axum");
        let untouched = std::fs::read_to_string(foreign.join("results.json")).expect("still there");
        (into, merged, report, compare, bare, refused, untouched)
    })
    .await
    .expect("join");
    let (into, requests, report, compare, bare, refused, untouched) = outcome;

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(into.join("results.json")).expect("results.json")).expect("JSON");
    assert_eq!(results["config"]["frameworks"], serde_json::json!(["axum", "actix"]));
    assert_eq!(results["environment"]["build_profile"], "unknown (servers not started by taskbench)");
    let runs = results["scenarios"][0]["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "one merged run of each");
    for (run, (name, sum)) in runs.iter().zip([("axum", requests[0]), ("actix", requests[1])]) {
        assert_eq!(run["framework"], name);
        assert_eq!(run["repeat"], 1);
        assert_eq!(run["load"]["total"]["requests"].as_u64(), Some(sum), "{name}: the merged count is the sum");
        assert_eq!(run["load"]["agents"]["count"], 2);
    }
    let md = std::fs::read_to_string(into.join("report.md")).expect("report.md rendered by merge");
    assert!(md.contains("axum") && md.contains("actix") && md.contains("taskbench merge --into"), "{md}");
    assert!(report.status.success(), "report: {}", stderr(&report));
    // A run compared with itself: every figure equal, so the gate passes.
    assert!(compare.status.success(), "compare: {}", stderr(&compare));
    let compared = std::fs::read_to_string(dir.path().join("compare.md")).expect("compare.md");
    assert!(compared.contains("axum") && compared.contains("actix"), "{compared}");
    assert_eq!(bare.status.code(), Some(2));
    assert!(
        stderr(&bare).contains("is a load generator's result") && stderr(&bare).contains("--into DIR"),
        "{}",
        stderr(&bare)
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("nothing was written"), "{}", stderr(&refused));
    assert_eq!(untouched, "{\"schema_version\": 5, \"cut short");
}
