//! `taskbench`: the command-line shell over the `taskbench` library.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = taskbench::Cli::parse();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(taskbench::run(cli)),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            std::process::ExitCode::from(2)
        }
    }
}
