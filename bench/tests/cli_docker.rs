//! `taskbench run --db docker` as a user runs it, on a Docker API (on this project's machines,
//! podman's, set up by `scripts/container-postgres.sh`): the run completes on a container-provided
//! Postgres, and the container is gone afterwards: after a normal end, after Ctrl-C, and after
//! `taskbench` itself is SIGKILLed. Without a Docker API the test says it skipped, unless
//! `TASKBENCH_REQUIRE_DOCKER=1` (set by `.ci/run`) makes that a failure.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TASKBENCH: &str = env!("CARGO_BIN_EXE_taskbench");

fn server_bin(framework: &str) -> String {
    let path = Path::new(TASKBENCH).with_file_name(format!("taskbench-{framework}"));
    assert!(path.is_file(), "{} is missing: run `cargo test --workspace`, which builds the servers", path.display());
    format!("{framework}={}", path.display())
}

/// `GET path` on the Docker API named by DOCKER_HOST (unix sockets): status and body, or why not.
fn docker_get(path: &str) -> Result<(u16, String), String> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let socket = host.strip_prefix("unix://").ok_or_else(|| format!("DOCKER_HOST={host} is not a unix socket"))?;
    let io = |e: std::io::Error| format!("{host}: {e}");
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(io)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").map_err(io)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(io)?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP status")?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}

/// Ids of taskbench's Postgres containers (named `taskbench-pg-*`), running or not.
fn containers() -> BTreeSet<String> {
    let (status, body) = docker_get("/containers/json?all=true").expect("the Docker API answers");
    assert_eq!(status, 200, "listing containers: {body}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON list");
    let ours = |c: &&serde_json::Value| {
        c["Names"].as_array().is_some_and(|names| {
            names.iter().any(|n| n.as_str().is_some_and(|n| n.trim_start_matches('/').starts_with("taskbench-pg-")))
        })
    };
    list.iter().filter(ours).filter_map(|c| c["Id"].as_str().map(str::to_owned)).collect()
}

fn run(out: &Path, duration: &str) -> Command {
    let mut cmd = Command::new(TASKBENCH);
    cmd.args(["run", "--no-build", "--quiet", "--db", "docker", "--scenario", "smoke", "--repeats", "1"])
        .args(["--duration", duration, "--warmup", "500ms", "--out"])
        .arg(out)
        .args(["--server-bin", &server_bin("axum"), "--server-bin", &server_bin("actix")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn wait_until_measuring(child: &mut Child, out: &Path) {
    let measuring = out.join("logs/smoke-axum-1-loadgen.log");
    let deadline = Instant::now() + Duration::from_secs(240);
    while !measuring.exists() {
        assert!(Instant::now() < deadline, "the first run never started");
        assert!(child.try_wait().expect("try_wait").is_none(), "taskbench exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
}

fn assert_gone_within(before: &BTreeSet<String>, how: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<String> = containers().difference(before).cloned().collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "containers left after {how}: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn docker_runs_complete_and_leave_no_container_after_an_end_ctrl_c_or_sigkill() {
    if let Err(reason) = docker_get("/_ping") {
        assert_ne!(
            std::env::var("TASKBENCH_REQUIRE_DOCKER").as_deref(),
            Ok("1"),
            "TASKBENCH_REQUIRE_DOCKER=1 but there is no Docker API: {reason}"
        );
        let _ = writeln!(std::io::stderr(), "skipped: no Docker API ({reason})");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let before = containers();

    // 1. A whole run, on a container.
    let out = dir.path().join("whole");
    let output = run(&out, "2s").output().expect("taskbench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}; stderr:\n{stderr}", output.status.code());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("results.json")).expect("JSON");
    let db = &results["config"]["db"];
    assert_eq!(db["kind"], "docker", "{db}");
    assert!(db["detail"].as_str().is_some_and(|d| d.contains("throw-away container")), "{db}");
    for run in results["scenarios"][0]["runs"].as_array().expect("runs") {
        assert!(run["error"].is_null(), "{}", run["error"]);
        assert!(run["load"]["total"]["requests"].as_u64().unwrap_or(0) > 50, "served requests: {}", run["load"]);
        // A rootful daemon on this host: the container's Postgres is sampled like a local one.
        let postgres = &run["resources"]["postgres"];
        assert!(postgres["peak_rss_bytes"].as_u64().unwrap_or(0) > 1 << 20, "postgres memory sampled: {postgres}");
    }
    assert_gone_within(&before, "a whole run", Duration::from_secs(20));

    // 2. Ctrl-C while measuring: what was measured is kept, and the container is removed.
    let out = dir.path().join("interrupted");
    let mut child = run(&out, "60s").spawn().expect("taskbench starts");
    wait_until_measuring(&mut child, &out);
    assert!(containers().difference(&before).count() == 1, "one container while the run lasts");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "an interrupted run exits 1");
    let results = std::fs::read_to_string(out.join("results.json")).expect("the partial results are written");
    assert!(results.contains("interrupted"), "marked incomplete");
    assert_gone_within(&before, "Ctrl-C", Duration::from_secs(20));

    // 3. SIGKILL of taskbench: no destructor runs; the reaper process removes the container.
    let out = dir.path().join("killed");
    let mut child = run(&out, "60s").spawn().expect("taskbench starts");
    wait_until_measuring(&mut child, &out);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("SIGKILL");
    child.wait().expect("wait");
    assert_gone_within(&before, "SIGKILL", Duration::from_secs(30));
}
