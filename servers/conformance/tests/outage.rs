//! A database outage, on both servers: the embedded cluster is stopped while the server runs and
//! started again on the same port. Requests that need the database answer 503 within the pool's
//! acquire timeout (no hang, no 500), `/health` says the database is down, and once Postgres is
//! back the same server process serves again without a restart.
//!
//! Its own test binary, so its own cluster: stopping it cannot disturb other tests.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use taskbench_conformance::spawn::spawn_service;
use taskbench_conformance::{Framework, TestApp};
use taskbench_data::{Service, ServiceConfig};
use taskbench_provision::{Postgres, ProvisionOptions};

/// Bounded so that a hang fails the test instead of stalling it (not a speed assertion).
async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("{what}: hung"))
}

async fn send(app: &TestApp, method: Method, path: &str, token: &str) -> (StatusCode, Value) {
    let res = bounded(path, app.request(method, path).bearer_auth(token).send()).await.expect("answered");
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_answer_503_while_postgres_is_down_and_recover_without_a_restart() {
    let mut postgres = tokio::task::spawn_blocking(|| Postgres::start_local(&ProvisionOptions { durable: false }))
        .await
        .expect("start task")
        .expect("a local cluster");
    let mut apps = Vec::new();
    for framework in Framework::ALL {
        let url = postgres.create_database(&format!("outage_{}", framework.name())).await.expect("database");
        let mut config = ServiceConfig::for_tests();
        config.pool_acquire_timeout = Duration::from_millis(500);
        let service = Service::connect(&url, &config).await.expect("service");
        let app = spawn_service(framework, service).await;
        let token = app.user(&format!("{}@outage.example", framework.name())).await;
        let create = app.request(Method::POST, "/api/v1/tasks").bearer_auth(&token).json(&json!({"title": "survive"}));
        let res = bounded("create", create.send()).await.expect("create");
        assert_eq!(res.status(), 201);
        let task: Value = res.json().await.expect("task");
        apps.push((app, token, task["id"].as_str().expect("id").to_owned()));
    }

    let mut postgres = tokio::task::spawn_blocking(move || postgres.interrupt().map(|()| postgres))
        .await
        .expect("outage task")
        .expect("postgres stopped");

    for (app, token, id) in &apps {
        let name = app.framework.name();
        let health = bounded("health", app.request(Method::GET, "/health").send()).await.expect("health");
        assert_eq!(health.status(), 503, "{name}: /health while the database is down");
        assert_eq!(health.json::<Value>().await.expect("json"), json!({"status": "unavailable"}), "{name}");
        // Several at once, as under load: every one a 503, none a 500 or a hang.
        let requests = [Method::GET, Method::GET, Method::DELETE].map(|m| {
            let (app_client, url, token) = (app.client.clone(), app.url(&format!("/api/v1/tasks/{id}")), token.clone());
            tokio::spawn(async move { app_client.request(m, url).bearer_auth(token).send().await })
        });
        for request in requests {
            let res = bounded("a task request", request).await.expect("task").expect("answered");
            let status = res.status();
            let retry_after = res.headers().get("retry-after").cloned();
            let body: Value = res.json().await.expect("an error body");
            assert_eq!(status, 503, "{name}: {body}");
            assert_eq!(body["error"]["code"], "unavailable", "{name}: {body}");
            assert_eq!(retry_after.as_ref().map(|v| v.to_str().expect("ascii")), Some("1"), "{name}");
        }
    }

    let postgres = tokio::task::spawn_blocking(move || postgres.resume().map(|()| postgres))
        .await
        .expect("resume task")
        .expect("postgres back");

    for (app, token, id) in &apps {
        let name = app.framework.name();
        // The pool replaces its dead connections on demand: poll until health is back (bounded).
        bounded("recovery", async {
            while app.request(Method::GET, "/health").send().await.expect("health").status() != 200 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        let (status, task) = send(app, Method::GET, &format!("/api/v1/tasks/{id}"), token).await;
        assert_eq!(
            (status, task["title"].as_str()),
            (StatusCode::OK, Some("survive")),
            "{name}: served again, data kept"
        );
    }
    // Dropping `postgres` stops the cluster and removes its directory.
    drop(apps);
    drop(postgres);
}
