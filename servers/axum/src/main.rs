//! `taskbench-axum`: the reference API on Axum as a process.

use anyhow::Context as _;
use clap::Parser as _;
use taskbench_data::{ServerArgs, Service};
use taskbench_lifecycle as lifecycle;

fn main() -> anyhow::Result<()> {
    lifecycle::init_logging();
    let args = ServerArgs::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads())
        .enable_all()
        .build()
        .context("building the tokio runtime")?
        .block_on(run(args))
}

async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let service = Service::connect(&args.database_url, &args.service_config()).await?;
    let listener = tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("binding {}", args.addr))?;
    lifecycle::announce(listener.local_addr()?);
    taskbench_axum::serve(listener, service, lifecycle::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
