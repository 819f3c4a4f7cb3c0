//! The processes of a measured run: a server binary (started, waited for until healthy, stopped
//! gracefully) and the load generator (`taskbench loadgen` as a child, so its CPU and memory are
//! its own and it can be pinned). Each child gets its own process group, so a Ctrl-C in the
//! terminal reaches only `taskbench run`, which stops them in order; each is killed on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use super::{RunError, cpus};

/// A running server binary.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    pub(crate) base_url: String,
    pub(crate) pid: u32,
}

/// How to start a server.
#[derive(Debug, Clone)]
pub(crate) struct ServerSpec<'a> {
    pub(crate) binary: &'a Path,
    pub(crate) database_url: &'a str,
    pub(crate) pool_size: u32,
    pub(crate) workers: usize,
    pub(crate) cpus: Option<&'a [usize]>,
    pub(crate) log: PathBuf,
    /// Extra arguments of a `--contender` (e.g. `--inject-cpu-us 30`), after the usual ones.
    pub(crate) args: &'a [String],
}

impl Server {
    /// Starts the server on a free loopback port and waits until `/health` answers 200.
    pub(crate) async fn start(spec: &ServerSpec<'_>) -> Result<Self, RunError> {
        let fail = RunError::Server;
        let log =
            std::fs::File::create(&spec.log).map_err(|e| fail(format!("creating {}: {e}", spec.log.display())))?;
        let mut cmd = Command::new(spec.binary);
        cmd.args(["--addr", "127.0.0.1:0", "--database-url", spec.database_url])
            .args(["--pool-size", &spec.pool_size.to_string(), "--workers", &spec.workers.to_string()])
            .args(spec.args)
            .env("TASKBENCH_JWT_SECRET", format!("taskbench-run-{:032x}", rand::random::<u128>()))
            .env("RUST_LOG", std::env::var("TASKBENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            // We hold the write end of its stdin: if we die, even by SIGKILL, it sees EOF and stops.
            .env(taskbench_lifecycle::EXIT_WITH_STDIN, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true);
        let mut child =
            cpus::spawn_pinned(cmd, spec.cpus).map_err(|e| fail(format!("starting {}: {e}", spec.binary.display())))?;
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take().ok_or_else(|| fail("the server's stdout was not captured".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
        let base_url = match line {
            Ok(Ok(Some(line))) => line.strip_prefix("listening on ").map(str::to_owned).ok_or_else(|| {
                fail(format!("expected `listening on http://HOST:PORT` from the server, got {line:?}"))
            })?,
            Ok(Ok(None)) | Ok(Err(_)) => {
                return Err(fail(format!(
                    "{} exited before it was ready; its log: {}",
                    spec.binary.display(),
                    spec.log.display()
                )));
            }
            Err(_) => return Err(fail(format!("{} was not ready within 60s", spec.binary.display()))),
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let server = Server { child, base_url, pid };
        wait_healthy(&server.base_url, Duration::from_secs(30)).await?;
        Ok(server)
    }

    /// SIGTERM, then up to 10 s for a graceful exit, then SIGKILL.
    pub(crate) async fn stop(mut self) {
        stop_child(&mut self.child, Signal::SIGTERM, Duration::from_secs(10)).await;
    }
}

/// Polls `url`'s `GET /health` until it answers 200, for up to `within`: a server starting, or
/// one whose database was just reset (`--target`).
pub(crate) async fn wait_healthy(url: &str, within: Duration) -> Result<(), RunError> {
    use taskbench_loadgen::client::{Reach, Target, http_client, preflight};
    let client = http_client(1);
    let target = Target::parse_with(url, Reach::Anywhere).map_err(|e| RunError::Server(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match preflight(&client, &target).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(RunError::Server(format!("{url} was not healthy within {within:?}: {e}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Sends `signal`, waits up to `grace`, then kills.
pub(crate) async fn stop_child(child: &mut Child, signal: Signal, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), signal);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!("a child process ignored {signal} for {grace:?}; killing it");
        let _ = child.kill().await;
    }
}

/// The load generator child: `taskbench loadgen … --json --out FILE`.
#[derive(Debug)]
pub(crate) struct Loadgen {
    child: Child,
    /// The write end of the child's stdin, held apart from `child` because tokio's `wait()`
    /// closes a child's stdin, which the child takes as our death.
    _stdin: Option<tokio::process::ChildStdin>,
    pub(crate) pid: u32,
    out: PathBuf,
    stderr: PathBuf,
}

/// How a load generator run ended.
#[derive(Debug)]
pub(crate) enum LoadgenEnd {
    /// It wrote a result (complete, or partial with `incomplete` set).
    Result(Box<taskbench_results::LoadResult>),
    /// It failed without a result; the text says why.
    Failed(String),
}

/// How to start the load generator.
#[derive(Debug, Clone)]
pub(crate) struct LoadgenSpec<'a> {
    pub(crate) scenario_file: &'a Path,
    pub(crate) target: &'a str,
    /// Overrides of the scenario file's measured duration and warm-up.
    pub(crate) duration: Option<Duration>,
    pub(crate) warmup: Option<Duration>,
    /// Where it writes its `LoadResult` and its log.
    pub(crate) out: PathBuf,
    pub(crate) stderr: PathBuf,
    pub(crate) cpus: Option<&'a [usize]>,
    /// Run the scenario as a saturation search.
    pub(crate) find_max: bool,
    /// The target may be on another machine (`--target`): `loadgen --remote`.
    pub(crate) remote: bool,
}

impl Loadgen {
    pub(crate) fn start(spec: &LoadgenSpec<'_>) -> Result<Self, RunError> {
        let fail = RunError::Loadgen;
        let exe = std::env::current_exe().map_err(|e| fail(format!("finding taskbench itself: {e}")))?;
        let log = std::fs::File::create(&spec.stderr)
            .map_err(|e| fail(format!("creating {}: {e}", spec.stderr.display())))?;
        let mut cmd = Command::new(exe);
        cmd.arg("loadgen").arg("--scenario").arg(spec.scenario_file);
        cmd.args(["--target", spec.target, "--json", "--quiet"]);
        cmd.arg("--assume-seeded").arg("--out").arg(&spec.out);
        if spec.find_max {
            cmd.arg("--find-max");
        }
        if spec.remote {
            cmd.arg("--remote");
        }
        if let Some(d) = spec.duration {
            cmd.arg("--duration").arg(format!("{}ms", d.as_millis()));
        }
        if let Some(w) = spec.warmup {
            cmd.arg("--warmup").arg(format!("{}ms", w.as_millis()));
        }
        cmd.env("RUST_LOG", "warn")
            .env(taskbench_lifecycle::EXIT_WITH_STDIN, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true);
        let mut child =
            cpus::spawn_pinned(cmd, spec.cpus).map_err(|e| fail(format!("starting the load generator: {e}")))?;
        let pid = child.id().unwrap_or(0);
        let _stdin = child.stdin.take();
        Ok(Self { child, _stdin, pid, out: spec.out.clone(), stderr: spec.stderr.clone() })
    }

    /// Waits for the load generator to finish. When `interrupt` fires first, it is asked to stop
    /// (SIGINT) and its partial result is collected.
    pub(crate) async fn finish(mut self, interrupt: &mut tokio::sync::watch::Receiver<bool>) -> LoadgenEnd {
        let interrupted = async {
            while !*interrupt.borrow() {
                if interrupt.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let status = tokio::select! {
            status = self.child.wait() => status.ok(),
            () = interrupted => {
                stop_child(&mut self.child, Signal::SIGINT, Duration::from_secs(15)).await;
                self.child.try_wait().ok().flatten()
            }
        };
        match std::fs::read(&self.out) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(result) => LoadgenEnd::Result(Box::new(result)),
                Err(e) => LoadgenEnd::Failed(format!("the load generator wrote an unreadable result: {e}")),
            },
            Err(_) => {
                let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                LoadgenEnd::Failed(format!(
                    "the load generator exited ({}) without a result: {}",
                    status.map_or("killed".to_owned(), |s| s.to_string()),
                    tail.join(" | ")
                ))
            }
        }
    }
}
