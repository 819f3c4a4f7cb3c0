//! Broken or hostile targets: a server that answers garbage, an endless or a gigantic body, never
//! answers, or resets connections. Each request ends by its timeout or the body cap and is counted
//! under its own error kind, and the run ends on time. Each misbehaving server is a few lines of
//! raw TCP here (it answers `GET /health` properly, so the run's preflight passes).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

mod support;
use support::shipped;

use taskbench_loadgen::scenario::{LoadModel, Rate};
use taskbench_loadgen::{Options, Scenario, Seeding, run};
use taskbench_results::ErrorKind;

#[derive(Debug, Clone, Copy)]
enum Misbehaviour {
    /// A response head that is not HTTP.
    Garbage,
    /// A chunked body that never ends.
    Endless,
    /// A chunked body of 8 MiB, eight times the generator's cap.
    Gigantic,
    /// A `content-length` of 100 GiB, and then bytes for as long as the client reads.
    DeclaredHuge,
    /// Reads the request and never answers.
    Silent,
    /// Reads the request and resets the connection.
    Reset,
}

const HEALTH: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// Reads one request head; `None` when the peer closed.
async fn request_line(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.ok().filter(|&n| n > 0)?;
        head.extend_from_slice(&byte[..n]);
    }
    Some(String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned())
}

async fn misbehave(mut stream: TcpStream, how: Misbehaviour) {
    while let Some(line) = request_line(&mut stream).await {
        if line.starts_with("GET /health ") {
            if stream.write_all(HEALTH).await.is_err() {
                return;
            }
            continue;
        }
        let chunk = vec![b'x'; 64 * 1024];
        let chunked = |n: usize| {
            [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.clone(), b"\r\n".to_vec()].concat().repeat(n)
        };
        let _ = match how {
            Misbehaviour::Garbage => stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await,
            Misbehaviour::Endless => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await;
                let block = chunked(16);
                while stream.write_all(&block).await.is_ok() {}
                Ok(())
            }
            Misbehaviour::Gigantic => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await;
                let _ = stream.write_all(&chunked(128)).await;
                stream.write_all(b"0\r\n\r\n").await
            }
            Misbehaviour::DeclaredHuge => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 107374182400\r\n\r\n").await;
                while stream.write_all(&chunk).await.is_ok() {}
                Ok(())
            }
            Misbehaviour::Silent => {
                // Hold the connection open, unanswered, until the client gives up.
                let _ = stream.read(&mut [0u8; 1]).await;
                Ok(())
            }
            Misbehaviour::Reset => {
                let _ = stream.set_zero_linger();
                Ok(())
            }
        };
        return;
    }
}

async fn hostile_server(how: Misbehaviour) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(misbehave(stream, how));
        }
    });
    (url, handle)
}

/// `GET /bench/json` at a modest rate for 2 s after a short warm-up, each request given 1 s.
fn scenario() -> Scenario {
    let mut s = shipped("json-floor");
    s.load.warmup = Duration::from_millis(200);
    s.load.duration = Duration::from_secs(2);
    s.load.timeout = Duration::from_secs(1);
    if let LoadModel::Open { max_in_flight, .. } = s.load.model {
        s.load.model = LoadModel::Open { rate: Rate::Fixed(40.0), max_in_flight };
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaviour_is_counted_under_its_own_kind_and_the_run_ends_on_time() {
    use Misbehaviour::*;
    for (how, kind) in [
        (Garbage, ErrorKind::Protocol),
        (Endless, ErrorKind::TooLarge),
        (Gigantic, ErrorKind::TooLarge),
        (DeclaredHuge, ErrorKind::TooLarge),
        (Silent, ErrorKind::Timeout),
        (Reset, ErrorKind::Connect),
    ] {
        let (url, server) = hostile_server(how).await;
        // Bounded so that a hang fails the test (not a speed assertion: the run's own bound is
        // its 2.2 s schedule plus the 1 s request timeout).
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            run(&scenario(), &url, Options { seeding: Seeding::AlreadySeeded, ..Options::default() }),
        )
        .await
        .unwrap_or_else(|_| panic!("{how:?}: the run did not end"))
        .unwrap_or_else(|e| panic!("{how:?}: the run failed to start: {e}"));
        server.abort();
        let total = &result.total;
        assert!(total.requests > 0, "{how:?}: {}", result.summary_table());
        assert_eq!(total.errors, total.requests, "{how:?}: every request failed: {}", result.summary_table());
        let counted: Vec<_> = total.errors_by_kind.iter().filter(|(_, n)| **n > 0).map(|(k, _)| *k).collect();
        // A run against a server that resets every connection may also drop sends once the
        // generator has declared the target dead; the failures it sent are all resets.
        let expected_only = counted.iter().all(|k| *k == kind || (*k == ErrorKind::Dropped && matches!(how, Reset)));
        assert!(
            expected_only && counted.contains(&kind),
            "{how:?}: expected {kind:?}, counted {:?}",
            total.errors_by_kind
        );
    }
}
