//! The reference API on Axum. Routes (built from the shared route table), extractors, the
//! middleware envelope and the error mapping; every decision about *what* to answer lives in
//! `taskbench-data`.

mod envelope;
mod extract;
mod handlers;

use axum::Router;
use axum::routing::{MethodFilter, MethodRouter, on};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use taskbench_data::Service;
use taskbench_data::http::{Method, Operation, ROUTES};
use tokio::net::TcpListener;

pub use extract::{ApiJson, Auth, Failure, ListParams, TaskId};

/// The whole application as a `Router`, ready to serve or to call in-process. Its routes are the
/// shared table's, each path's methods merged into one `MethodRouter` as Axum routes them.
pub fn app(service: Service) -> Router {
    let routes = ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            let methods = route
                .operations
                .iter()
                .fold(MethodRouter::new(), |methods, &(method, operation)| methods.merge(handler(method, operation)));
            router.route(route.path, methods)
        })
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn(envelope::route_info))
        .with_state(service.clone());
    // An outer router whose only service is the API, so the envelope runs before routing.
    Router::new().fallback_service(routes).layer(axum::middleware::from_fn_with_state(service, envelope::envelope))
}

/// The handler of each operation, on the method the table gives it. Exhaustive on purpose: an
/// operation added to the table without a handler here does not compile. A GET route answers
/// HEAD too (Axum's own rule, and the table's).
fn handler(method: Method, operation: Operation) -> MethodRouter<Service> {
    use handlers::*;
    let filter = match method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Patch => MethodFilter::PATCH,
        Method::Delete => MethodFilter::DELETE,
    };
    match operation {
        Operation::Health => on(filter, health),
        Operation::Metrics => on(filter, metrics),
        Operation::OpenApi => on(filter, openapi),
        Operation::Plaintext => on(filter, plaintext),
        Operation::Json => on(filter, json),
        Operation::Register => on(filter, register),
        Operation::Login => on(filter, login),
        Operation::Me => on(filter, me),
        Operation::ListTasks => on(filter, list_tasks),
        Operation::CreateTask => on(filter, create_task),
        Operation::GetTask => on(filter, get_task),
        Operation::UpdateTask => on(filter, update_task),
        Operation::DeleteTask => on(filter, delete_task),
    }
}

/// Serves `service` on `listener` until `shutdown` resolves, then finishes in-flight requests for
/// at most the request timeout (a request cannot take longer; a connection that never completes
/// its request, such as a slow client's, would otherwise hold the process forever). Actix's
/// `shutdown_timeout` is the same bound.
///
/// Why not `axum::serve`: it gives hyper no timer, so hyper's header read timeout never fires and
/// a client that sends half a request head holds its connection (and its memory) forever: the
/// slowloris attack. This is the same accept loop with the timer and the shared bound
/// (`ServiceConfig::header_timeout`, Actix's `client_request_timeout` and `keep_alive`).
pub async fn serve(
    listener: TcpListener,
    service: Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = service.request_timeout();
    let mut http = http1::Builder::new();
    // The timer also runs while a keep-alive connection waits for its next request head, so the
    // same bound closes idle connections, as Actix's `keep_alive` does.
    http.timer(TokioTimer::new()).header_read_timeout(service.header_timeout());
    let app = app(service);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone())));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    // No new connections from here on.
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "connections still open after the shutdown grace period (the request timeout): closing them");
        }
    }
    Ok(())
}

/// What `axum::serve` does on an accept error: a peer that gave up is nothing; anything else
/// (out of file descriptors, say) is logged and followed by a pause instead of a busy loop.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        tracing::error!(error = %e, "accepting a connection failed; pausing for a second");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
