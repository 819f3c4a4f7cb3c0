//! The reference API on Axum. Routes, extractors, the middleware envelope and the error mapping;
//! every decision about *what* to answer lives in `taskbench-data`.

mod envelope;
mod extract;
mod handlers;

use axum::Router;
use axum::routing::get;
use taskbench_data::Service;
use tokio::net::TcpListener;

pub use extract::{ApiJson, Auth, Failure, ListParams, TaskId};

/// The whole application as a `Router`, ready to serve or to call in-process.
pub fn app(service: Service) -> Router {
    use handlers::*;
    let routes = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/bench/plaintext", get(plaintext))
        .route("/bench/json", get(json))
        .route("/api/v1/auth/register", axum::routing::post(register))
        .route("/api/v1/auth/login", axum::routing::post(login))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/tasks", get(list_tasks).post(create_task))
        .route("/api/v1/tasks/{id}", get(get_task).patch(update_task).delete(delete_task))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(envelope::route_info))
        .with_state(service.clone());
    // An outer router whose only service is the API, so the envelope runs before routing.
    Router::new().fallback_service(routes).layer(axum::middleware::from_fn_with_state(service, envelope::envelope))
}

/// Serves `service` on `listener` until `shutdown` resolves, then finishes in-flight requests for
/// at most the request timeout (a request cannot take longer; a connection that never completes
/// its request, such as a slow client's, would otherwise hold the process forever). Actix's
/// `shutdown_timeout` is the same bound.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = service.request_timeout();
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signalled = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let server = axum::serve(listener, app(service)).with_graceful_shutdown(signalled);
    let deadline = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            // The server ended without a signal: nothing to bound.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served,
        () = deadline => {
            tracing::warn!(?grace, "connections still open after the shutdown grace period (the request timeout): closing them");
            Ok(())
        }
    }
}
