//! Checks of a server *binary* as a user runs it: flags, the readiness line on stdout, serving,
//! and a graceful stop on SIGINT/SIGTERM that lets an in-flight request finish.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use taskbench_provision as provision;

/// A server process started on a fresh database; killed on drop if still running.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub base_url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts `binary` on port 0 and waits for its `listening on http://…` line.
    pub async fn start(binary: &str, extra_env: &[(&str, &str)]) -> Self {
        let database_url = provision::fresh_test_database().await;
        let mut child = Command::new(binary)
            .args(["--addr", "127.0.0.1:0", "--database-url", &database_url, "--pool-size", "4", "--workers", "2"])
            .env("TASKBENCH_JWT_SECRET", "binary-test-secret-0123456789abcdef")
            .env("RUST_LOG", "warn")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).expect("reading the readiness line");
        let base_url = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("expected `listening on http://HOST:PORT`, got {line:?}"))
            .to_owned();
        assert!(base_url.starts_with("http://127.0.0.1:") && !base_url.ends_with(":0"), "a real port: {base_url}");
        child.stdout = Some(reader.into_inner());
        Self { child, base_url }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits i32"));
        kill(pid, signal).expect("sending the signal");
    }

    /// Waits (bounded) for the process to exit; returns its exit status and what else it printed.
    pub fn wait_exit(&mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut rest = String::new();
                if let Some(mut out) = self.child.stdout.take() {
                    let _ = out.read_to_string(&mut rest);
                }
                return (status, rest);
            }
            assert!(std::time::Instant::now() < deadline, "the server did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The whole check, for each server crate's own test of its binary.
pub async fn check_binary(binary: &str) {
    let client = reqwest::Client::new();
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // A deliberately expensive argon2 cost makes registration slow enough to be in flight
        // when the signal lands.
        let mut server =
            ServerProcess::start(binary, &[("TASKBENCH_ARGON2_M_COST", "65536"), ("TASKBENCH_ARGON2_T_COST", "4")])
                .await;
        let health = client.get(format!("{}/health", server.base_url)).send().await.expect("health");
        assert_eq!(health.status(), 200);
        let register = client
            .post(format!("{}/api/v1/auth/register", server.base_url))
            .json(&serde_json::json!({"email": "slow@example.com", "password": "long enough", "name": "Slow"}))
            .send();
        let in_flight = tokio::spawn(register);
        tokio::time::sleep(Duration::from_millis(30)).await;
        server.signal(signal);
        let response = in_flight.await.expect("join").expect("the in-flight request completes");
        assert_eq!(response.status(), 201, "in-flight request finished during graceful shutdown ({signal})");
        let (status, rest) = server.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "clean exit on {signal}: {status}");
        assert_eq!(rest, "", "nothing but the readiness line on stdout");
    }

    // A client whose request head never completes does not hold a stop past the request timeout
    // (2 s here; the bound below leaves a loaded machine room, and is far under Actix's old fixed
    // 30 s or Axum's unbounded wait).
    let mut server = ServerProcess::start(binary, &[("TASKBENCH_REQUEST_TIMEOUT_SECS", "2")]).await;
    let addr = server.base_url.trim_start_matches("http://").to_owned();
    let mut slow = std::net::TcpStream::connect(&addr).expect("connect");
    std::io::Write::write_all(&mut slow, b"GET /health HTTP/1.1\r\nhost: test\r\n").expect("a partial head");
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal(Signal::SIGTERM);
    let (status, _) = server.wait_exit(Duration::from_secs(12));
    assert!(status.success(), "clean exit with a slow client connected: {status}");
    drop(slow);
}
