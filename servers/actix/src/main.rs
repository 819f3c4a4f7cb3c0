//! `taskbench-actix`: the reference API on Actix-web as a process.

use anyhow::Context as _;
use clap::Parser as _;
use taskbench_data::{ServerArgs, Service};
use taskbench_lifecycle as lifecycle;

fn main() -> anyhow::Result<()> {
    lifecycle::init_logging();
    let args = ServerArgs::parse();
    actix_web::rt::System::new().block_on(run(args))
}

async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let service = Service::connect(&args.database_url, &args.service_config()).await?;
    let listener = std::net::TcpListener::bind(args.addr).with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr()?;
    let server = taskbench_actix::server(listener, service, args.worker_threads())?;
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        lifecycle::shutdown_signal().await;
        handle.stop(true).await;
    });
    lifecycle::announce(addr);
    server.await?;
    tracing::info!("stopped");
    Ok(())
}
