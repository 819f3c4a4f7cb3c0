//! Behaviour of the reference API over real HTTP against real Postgres, asserted on both
//! servers: each test runs once per framework on its own fresh database.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use taskbench_conformance::diff::is_timestamp;
use taskbench_conformance::{Framework, TestApp, spawn_app};
use taskbench_data::{Service, ServiceConfig};

/// Runs one async test body against each framework, as `<name>::axum` and `<name>::actix`.
macro_rules! on_both {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {$(
        mod $name {
            use super::*;
            async fn body($app: TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn axum() { body(spawn_app(Framework::Axum).await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn actix() { body(spawn_app(Framework::Actix).await).await }
        }
    )*};
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.request(method, path);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let bytes = res.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, task) = send(app, Method::POST, "/api/v1/tasks", Some(token), Some(body)).await;
    assert_eq!(status, 201, "{task}");
    task
}

on_both! {
    async fn registration_returns_the_user_without_secrets(app: TestApp) {
        let (status, user) = send(&app, Method::POST, "/api/v1/auth/register", None,
            Some(json!({"email": " Mixed@Case.Example ", "password": "long enough", "name": "  Zoë  "}))).await;
        assert_eq!(status, 201);
        assert_eq!(user["email"], "mixed@case.example");
        assert_eq!(user["name"], "Zoë");
        assert!(is_timestamp(user["created_at"].as_str().expect("created_at")), "{user}");
        assert_eq!(user.as_object().expect("object").len(), 4, "only id, email, name, created_at: {user}");
        let stored: String = sqlx_hash(&app, "mixed@case.example").await;
        assert!(stored.starts_with("$argon2id$"), "stored hash is argon2id: {stored}");
    }

    async fn login_token_authenticates_and_reports_expiry(app: TestApp) {
        send(&app, Method::POST, "/api/v1/auth/register", None,
            Some(json!({"email": "ann@example.com", "password": "long enough", "name": "Ann"}))).await;
        let (status, login) = send(&app, Method::POST, "/api/v1/auth/login", None,
            Some(json!({"email": "ANN@example.com", "password": "long enough"}))).await;
        assert_eq!(status, 200);
        assert_eq!((login["token_type"].as_str(), login["expires_in"].as_u64()), (Some("Bearer"), Some(86_400)));
        let (status, me) = send(&app, Method::GET, "/api/v1/auth/me", login["token"].as_str(), None).await;
        assert_eq!((status, me["email"].as_str()), (StatusCode::OK, Some("ann@example.com")));
        let res = app.request(Method::GET, "/api/v1/auth/me").send().await.expect("request");
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let (_, wrong) = send(&app, Method::POST, "/api/v1/auth/login", None,
            Some(json!({"email": "ann@example.com", "password": "wrong password"}))).await;
        let (_, unknown) = send(&app, Method::POST, "/api/v1/auth/login", None,
            Some(json!({"email": "who@example.com", "password": "long enough"}))).await;
        assert_eq!(wrong, unknown, "one message for unknown email and wrong password");
    }

    async fn tasks_are_created_with_defaults_and_a_location(app: TestApp) {
        let token = app.user("ann@example.com").await;
        let res = app.request(Method::POST, "/api/v1/tasks").bearer_auth(&token)
            .json(&json!({"title": "  Plan  ", "due_at": "2026-12-01T10:00:00+01:00"})).send().await.expect("create");
        assert_eq!(res.status(), 201);
        let location = res.headers()["location"].to_str().expect("location").to_owned();
        let task: Value = res.json().await.expect("task");
        assert_eq!(location, format!("/api/v1/tasks/{}", task["id"].as_str().expect("id")));
        assert_eq!((task["title"].as_str(), task["status"].as_str(), task["priority"].as_str()),
                   (Some("Plan"), Some("todo"), Some("medium")));
        assert_eq!(task["description"], Value::Null);
        assert_eq!(task["due_at"], "2026-12-01T09:00:00.000000Z", "due_at normalised to UTC with microseconds");
        let (status, fetched) = send(&app, Method::GET, &location, Some(&token), None).await;
        assert_eq!((status, &fetched), (StatusCode::OK, &task));
    }

    async fn list_is_newest_first_paginated_filtered_and_private(app: TestApp) {
        let ann = app.user("ann@example.com").await;
        let bob = app.user("bob@example.com").await;
        let mut ids = Vec::new();
        for (i, priority) in ["low", "high", "low", "critical", "low"].iter().enumerate() {
            let task = create(&app, &ann, json!({"title": format!("task {i}"), "priority": priority})).await;
            ids.push(task["id"].as_str().expect("id").to_owned());
        }
        create(&app, &bob, json!({"title": "bob's"})).await;
        let titles = |v: &Value| v.as_array().expect("array").iter().map(|t| t["title"].as_str().expect("title").to_owned()).collect::<Vec<_>>();
        let (_, all) = send(&app, Method::GET, "/api/v1/tasks", Some(&ann), None).await;
        assert_eq!(titles(&all), ["task 4", "task 3", "task 2", "task 1", "task 0"]);
        let (_, page) = send(&app, Method::GET, "/api/v1/tasks?limit=2&offset=1", Some(&ann), None).await;
        assert_eq!(titles(&page), ["task 3", "task 2"]);
        let (_, low) = send(&app, Method::GET, "/api/v1/tasks?priority=low", Some(&ann), None).await;
        assert_eq!(titles(&low), ["task 4", "task 2", "task 0"]);
        let (_, done) = send(&app, Method::GET, "/api/v1/tasks?status=done", Some(&ann), None).await;
        assert_eq!(done, json!([]));
        let (_, bobs) = send(&app, Method::GET, "/api/v1/tasks", Some(&bob), None).await;
        assert_eq!(titles(&bobs), ["bob's"]);
        let (status, err) = send(&app, Method::GET, &format!("/api/v1/tasks/{}", ids[0]), Some(&bob), None).await;
        assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        let (status, err) = send(&app, Method::GET, "/api/v1/tasks?limit=0&offset=-5", Some(&ann), None).await;
        assert_eq!(status, 422);
        assert_eq!(err["error"]["fields"], json!({"limit": "must be between 1 and 100", "offset": "must be 0 or more"}));
    }

    async fn patch_keeps_absent_fields_clears_nulls_and_advances_updated_at(app: TestApp) {
        let token = app.user("ann@example.com").await;
        let task = create(&app, &token, json!({"title": "t", "description": "d", "priority": "high", "due_at": "2026-12-01T00:00:00Z"})).await;
        let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
        let (status, patched) = send(&app, Method::PATCH, &path, Some(&token), Some(json!({"status": "done", "description": null}))).await;
        assert_eq!(status, 200);
        assert_eq!((patched["status"].as_str(), patched["priority"].as_str(), patched["title"].as_str()), (Some("done"), Some("high"), Some("t")));
        assert_eq!(patched["description"], Value::Null);
        assert_eq!(patched["due_at"], task["due_at"], "absent field stays");
        assert_eq!(patched["created_at"], task["created_at"]);
        assert!(patched["updated_at"].as_str() > task["updated_at"].as_str(), "updated_at advanced: {patched}");
        let (status, err) = send(&app, Method::PATCH, &path, Some(&token), Some(json!({}))).await;
        assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
    }

    async fn delete_removes_only_the_callers_task(app: TestApp) {
        let ann = app.user("ann@example.com").await;
        let bob = app.user("bob@example.com").await;
        let task = create(&app, &ann, json!({"title": "t"})).await;
        let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
        let (status, _) = send(&app, Method::DELETE, &path, Some(&bob), None).await;
        assert_eq!(status, 404);
        let res = app.request(Method::DELETE, &path).bearer_auth(&ann).send().await.expect("delete");
        assert_eq!(res.status(), 204);
        assert!(res.bytes().await.expect("body").is_empty(), "204 has an empty body");
        let (status, _) = send(&app, Method::GET, &path, Some(&ann), None).await;
        assert_eq!(status, 404);
    }

    async fn error_rows_have_the_shared_shape(app: TestApp) {
        let res = app.request(Method::POST, "/api/v1/auth/register").body("{}").send().await.expect("request");
        assert_eq!(res.status(), 415);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body, json!({"error": {"code": "unsupported_media_type", "message": "expected `content-type: application/json`"}}));
        let res = app.request(Method::PATCH, "/health").send().await.expect("request");
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["allow"], "GET, HEAD");
        let (status, body) = send(&app, Method::GET, "/nope", None, None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        let big = json!({"title": "x".repeat(70_000)});
        let token = app.user("ann@example.com").await;
        let (status, body) = send(&app, Method::POST, "/api/v1/tasks", Some(&token), Some(big)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
        let (status, body) = send(&app, Method::POST, "/api/v1/auth/register", None,
            Some(json!({"email": "ann@example.com", "password": "long enough", "name": "Again"}))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
    }

    async fn a_body_cut_short_is_a_400_not_a_413(app: TestApp) {
        // On a real socket: the client declares 100 bytes, sends 10 and closes its side.
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = app.url("").trim_start_matches("http://").trim_end_matches('/').to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let head = "POST /api/v1/auth/register HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
                    content-length: 100\r\n\r\n{\"email\":";
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.shutdown().await.expect("half-close");
        let mut response = String::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await;
        assert!(read.is_ok(), "the server answers a truncated body, and closes: {response:?}");
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
        assert!(response.contains(r#""code":"bad_request""#), "{response}");
        assert!(response.contains("the request body could not be read"), "{response}");
    }

    async fn the_router_and_the_openapi_document_cover_exactly_the_route_table(app: TestApp) {
        // The route table (`http::ROUTES`) is the one truth: both routers are built from it, but
        // the document's list of operations is written by hand, so it is checked here first.
        let doc: Value = app.request(Method::GET, "/openapi.json").send().await.expect("doc").json().await.expect("json");
        let mut documented: Vec<(String, String)> = doc["paths"].as_object().expect("paths").iter()
            .flat_map(|(path, ops)| ops.as_object().into_iter().flatten().map(move |(m, _)| (path.clone(), m.to_ascii_uppercase())))
            .collect();
        let mut table: Vec<(String, String)> = taskbench_data::http::ROUTES.iter()
            .flat_map(|route| route.operations.iter().map(|(m, _)| (route.path.to_owned(), m.as_str().to_owned())))
            .collect();
        documented.sort();
        table.sort();
        assert_eq!(documented, table, "the OpenAPI document's operations are the table's (HEAD aside)");

        // Every method the table gives a path is routed: never a 404/405 (no operation answers
        // those to a request without a token), and a status the document gives that operation
        // (HEAD is GET's), which catches a handler mounted on the wrong path unless the two
        // answer alike. Every other method is a 405 with the table's `allow`.
        let id = "0190a3d2-7c1e-7000-8000-000000000000";
        for route in taskbench_data::http::ROUTES {
            let path = route.path.replace("{id}", id);
            for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
                let operation = if method == "HEAD" { "GET" } else { method };
                let res = app.request(Method::from_bytes(method.as_bytes()).expect("method"), &path)
                    .send().await.expect("request");
                let status = res.status();
                if route.operations.iter().any(|(m, _)| m.as_str() == operation) {
                    assert!(status != 404 && status != 405, "{method} {} is in the table but answered {status}", route.path);
                    let responses = &doc["paths"][route.path][operation.to_ascii_lowercase()]["responses"];
                    assert!(responses.get(status.as_str()).is_some(),
                        "{method} {} answered {status}, not a status the document gives {operation}: {responses}", route.path);
                } else {
                    assert_eq!(status, 405, "{method} {} is not in the table", route.path);
                    assert_eq!(res.headers()["allow"], route.allow(), "{method} {}: allow from the table", route.path);
                }
            }
        }
    }

    async fn envelope_request_id_gzip_cors_and_metrics(app: TestApp) {
        let res = app.request(Method::GET, "/bench/plaintext").header("x-request-id", "abc-1").send().await.expect("request");
        assert_eq!(res.headers()["x-request-id"], "abc-1");
        assert_eq!(res.text().await.expect("text"), "Hello, World!");
        let res = app.request(Method::GET, "/bench/json").send().await.expect("request");
        assert_eq!(res.headers()["x-request-id"].len(), 36, "a generated UUID");
        let res = app.request(Method::GET, "/openapi.json").header("accept-encoding", "gzip").send().await.expect("request");
        assert_eq!(res.headers()["content-encoding"], "gzip");
        let zipped = res.bytes().await.expect("body");
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut plain).expect("valid gzip");
        assert_eq!(plain, taskbench_data::openapi::document());
        let res = app.request(Method::OPTIONS, "/api/v1/tasks").header("origin", "https://x.example")
            .header("access-control-request-method", "PATCH").send().await.expect("preflight");
        assert_eq!(res.status(), 204);
        assert!(res.headers()["access-control-allow-methods"].to_str().expect("ascii").contains("PATCH"));
        let metrics = app.request(Method::GET, "/metrics").send().await.expect("metrics").text().await.expect("text");
        assert!(metrics.contains(r#"http_requests_total{method="GET",route="/bench/plaintext",status="200"} 1"#), "{metrics}");
        assert!(metrics.contains("http_request_duration_seconds_bucket{route=\"/openapi.json\""), "{metrics}");
    }
}

async fn sqlx_hash(app: &TestApp, email: &str) -> String {
    let row: (String,) = sqlx_query(app, email).await;
    row.0
}

async fn sqlx_query(app: &TestApp, email: &str) -> (String,) {
    sqlx::query_as("SELECT password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(app.service.pool())
        .await
        .expect("user row")
}

/// Bounded so that a hang fails the test instead of stalling it (not a speed assertion).
async fn bounded<F: Future>(fut: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(10), fut).await
}

/// With the database unreachable, health and data endpoints answer 503 fast instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_is_a_fast_503_on_both() {
    for framework in Framework::ALL {
        let mut config = ServiceConfig::for_tests();
        config.pool_acquire_timeout = Duration::from_millis(500);
        // Port 1 on loopback: nothing listens there, connections are refused at once.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(config.pool_acquire_timeout)
            .connect_lazy("postgres://postgres@127.0.0.1:1/none")
            .expect("lazy pool");
        let service = Service::new(pool, &config).expect("service");
        let app = taskbench_conformance::spawn::spawn_service(framework, service).await;
        let (status, body) =
            bounded(send(&app, Method::GET, "/health", None, None)).await.expect("health answered, not hung");
        assert_eq!(
            (status, body),
            (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "unavailable"})),
            "{}",
            framework.name()
        );
        let token = app.service.jwt().issue(taskbench_data::model::Uuid::new_v4()).expect("token");
        let (status, body) = bounded(send(&app, Method::GET, "/api/v1/tasks", Some(&token), None))
            .await
            .expect("list answered, not hung");
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
            "{}",
            framework.name()
        );
    }
}

/// Reads until the server closes the connection (bounded: a hang fails the test); returns what
/// it sent and how long after the call the close came.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, name: &str) -> (String, Duration) {
    use tokio::io::AsyncReadExt as _;
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let ended = bounded(stream.read_to_end(&mut rest)).await.unwrap_or_else(|_| panic!("{name}: held the connection"));
    assert!(
        ended.is_ok() || matches!(ended, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{name}: {ended:?}"
    );
    (String::from_utf8_lossy(&rest).into_owned(), started.elapsed())
}

/// The slowloris defence: a connection whose first request head stops half-way is closed once the
/// header timeout passes (1 s here: not at once, and not at the 5 s default), and so is a
/// keep-alive connection left idle, on both servers; on Axum also a *second* head that stops
/// half-way (Actix's head timer covers only the first request of a connection: README, "Slow
/// clients are cut off").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt as _;
    const PARTIAL: &[u8] = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ";
    const WHOLE: &[u8] = b"GET /bench/plaintext HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    // Between half the bound (Actix reads its clock every 500 ms) and well under the default.
    let honoured = |took: Duration| (Duration::from_millis(400)..Duration::from_secs(4)).contains(&took);

    for framework in Framework::ALL {
        let mut config = ServiceConfig::for_tests();
        // The least the flag allows: Actix reads its clock every 500 ms, so shorter bounds fire early.
        config.header_timeout = Duration::from_secs(1);
        let app = taskbench_conformance::spawn::spawn_app_with(framework, config).await;
        let name = framework.name();

        let mut slow = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
        slow.write_all(PARTIAL).await.expect("write");
        let (answer, took) = read_until_closed(&mut slow, name).await;
        // Actix says 408 first; hyper just closes.
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{name}: no answer but a 408: {answer}");
        assert!(honoured(took), "{name}: a partial head closed after {took:?}, with a 1 s bound");

        let mut idle = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
        idle.write_all(WHOLE).await.expect("write");
        let (served, took) = read_until_closed(&mut idle, name).await;
        assert!(served.starts_with("HTTP/1.1 200") && served.contains("Hello, World!"), "{name}: {served}");
        assert!(honoured(took), "{name}: an idle keep-alive connection closed after {took:?}, with a 1 s bound");

        if framework == Framework::Axum {
            let mut second = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
            second.write_all(&[WHOLE, PARTIAL].concat()).await.expect("write");
            let (served, took) = read_until_closed(&mut second, name).await;
            assert!(served.starts_with("HTTP/1.1 200"), "{name}: the first request is served: {served}");
            assert!(honoured(took), "{name}: a partial second head closed after {took:?}, with a 1 s bound");
        }
    }
}

/// The OpenAPI document states the servers' text rules exactly: for each candidate, the
/// document's schema accepts it if and only if the shared validation does (trimmed lengths with
/// Rust's own whitespace, no U+0000), checked with a JSON Schema validator (ECMA-262 regexes).
#[test]
fn the_document_states_the_text_rules_the_servers_enforce() {
    use taskbench_data::model::{NewTask, RegisterRequest};
    use taskbench_data::{openapi, validate};

    let doc: Value = serde_json::from_slice(openapi::document()).expect("the document is JSON");
    let schema_of = |name: &str| {
        let root = json!({"$ref": format!("#/components/schemas/{name}"), "components": doc["components"]});
        jsonschema::options().should_validate_formats(true).build(&root).expect("a valid schema")
    };
    let (tasks, registrations) = (schema_of("NewTask"), schema_of("RegisterRequest"));
    let long = |n: usize, c: char| std::iter::repeat_n(c, n).collect::<String>();
    let candidates = [
        "a".to_owned(),
        " a ".into(),
        String::new(),
        "   ".into(),
        "\u{3000}\u{2028}\u{85}".into(),
        "\u{1c}".into(),
        "\u{feff}".into(),
        "a\0".into(),
        "\0".into(),
        "a\nb".into(),
        "\t x \t".into(),
        long(100, 'é'),
        format!(" {} ", long(100, 'n')),
        long(101, 'n'),
        long(200, 'x'),
        format!("\u{a0}{}\u{a0}", long(200, 'x')),
        long(201, 'x'),
        format!("x{}y", long(198, '\u{2028}')),
    ];
    for text in &candidates {
        let task = NewTask { title: text.clone(), description: None, priority: None, due_at: None };
        let documented = tasks.is_valid(&json!({"title": text}));
        assert_eq!(documented, validate::new_task(task).is_ok(), "title {text:?}: the document says {documented}");
        let registration =
            RegisterRequest { email: "a@b.example".into(), password: "password1".into(), name: text.clone() };
        let documented =
            registrations.is_valid(&json!({"email": "a@b.example", "password": "password1", "name": text}));
        assert_eq!(
            documented,
            validate::registration(registration).is_ok(),
            "name {text:?}: the document says {documented}"
        );
    }
}
