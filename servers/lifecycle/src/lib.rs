//! How a taskbench process starts and stops, shared by the servers, the CLI and its load
//! generator children: logging to stderr, the one readiness line on stdout, SIGINT/SIGTERM as a
//! graceful stop, and the stdin protocol (a child started with [`EXIT_WITH_STDIN`] exits when its
//! parent's end of the pipe closes, even if the parent was SIGKILLed).

use tracing_subscriber::EnvFilter;

/// Logging for the server binaries: `tracing` to stderr, filtered by `RUST_LOG`. Installs the subscriber (default level `info`). Stdout stays free for the one
/// `listening on …` line that callers wait for.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Prints the readiness line the harness and users wait for: exactly `listening on http://HOST:PORT`.
#[allow(clippy::print_stdout)]
pub fn announce(addr: std::net::SocketAddr) {
    use std::io::Write as _;
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
}

/// Resolves on SIGINT or SIGTERM: both mean "stop accepting, finish in-flight requests, exit".
pub async fn shutdown_signal() {
    shutdown_signal_now().await;
}

/// [`shutdown_signal`] with the handlers installed when this is called, not when the future is
/// first polled: from the moment it returns, SIGINT and SIGTERM no longer end the process, even
/// before a spawned task runs. Needs a tokio runtime (with its signal driver) to be entered.
pub fn shutdown_signal_now() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        let (Ok(mut int), Ok(mut term)) = handlers else {
            tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received: shutting down gracefully"),
            _ = term.recv() => tracing::info!("SIGTERM received: shutting down gracefully"),
            () = parent_gone() => tracing::warn!("the parent process went away (stdin closed): shutting down"),
        }
    }
}

/// With `TASKBENCH_EXIT_WITH_STDIN=1` (set by `taskbench run`, which holds the other end of the
/// pipe), resolves when stdin reaches end of file: the harness is gone, even if it was killed
/// with SIGKILL, so the server must not outlive it. Otherwise never resolves.
pub async fn parent_gone() {
    if std::env::var_os(EXIT_WITH_STDIN).is_none_or(|v| v != "1") {
        return std::future::pending().await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread: a blocking read of stdin is all it does.
    std::thread::spawn(move || {
        let _ = wait_for_stdin_eof();
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Blocks until stdin reaches end of file (or fails).
pub fn wait_for_stdin_eof() -> std::io::Result<()> {
    use std::io::Read as _;
    let mut buf = [0u8; 64];
    while std::io::stdin().read(&mut buf)? > 0 {}
    Ok(())
}

/// The variable that turns on [`parent_gone`].
pub const EXIT_WITH_STDIN: &str = "TASKBENCH_EXIT_WITH_STDIN";
