//! Shared helpers of the loadgen integration tests: shipped scenarios and small purpose-built
//! servers (one that stalls once, one that stops mid-run).
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use taskbench_loadgen::Scenario;

pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

pub fn shipped(name: &str) -> Scenario {
    Scenario::from_file(&scenarios_dir().join(format!("{name}.toml"))).expect("shipped scenario is valid")
}

/// A server that answers at once, except that it stalls *everything* for `stall` once, about
/// a second into its life.
pub async fn stalling_server(stall: Duration) -> (String, tokio::task::JoinHandle<()>) {
    let gate = Arc::new(tokio::sync::Mutex::new(()));
    let stalled = Arc::new(AtomicBool::new(false));
    let born = tokio::time::Instant::now();
    let handler = move || {
        let (gate, stalled) = (gate.clone(), stalled.clone());
        async move {
            let _held = gate.lock().await;
            if born.elapsed() > Duration::from_secs(1) && !stalled.swap(true, Ordering::SeqCst) {
                tokio::time::sleep(stall).await;
            }
            "Hello, World!"
        }
    };
    let app = Router::new().route("/health", get(|| async { "ok" })).route("/bench/plaintext", get(handler));
    serve(app, None).await
}

/// A server whose `/bench/plaintext` answers every other request with a 500, at once.
pub async fn half_failing_server() -> (String, tokio::task::JoinHandle<()>) {
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let handler = move || {
        let count = count.clone();
        async move {
            if count.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                (axum::http::StatusCode::OK, "Hello, World!")
            } else {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no")
            }
        }
    };
    let app = Router::new().route("/health", get(|| async { "ok" })).route("/bench/plaintext", get(handler));
    serve(app, None).await
}

/// A server that stops after `after`: it closes its listener and every connection.
pub async fn dying_server(after: Duration) -> (String, tokio::task::JoinHandle<()>) {
    let app =
        Router::new().route("/health", get(|| async { "ok" })).route("/bench/plaintext", get(|| async { "Hello" }));
    serve(app, Some(after)).await
}

async fn serve(app: Router, stop_after: Option<Duration>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = tokio::spawn(async move {
        let stop = async move {
            match stop_after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop).await;
    });
    (url, handle)
}
