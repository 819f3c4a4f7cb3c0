//! The differential conformance suite: one script against both servers, every step's status
//! checked against the contract, every response checked against the OpenAPI document, and the
//! two transcripts compared after normalising ids, timestamps and tokens.

use taskbench_conformance::diff::{Normalizer, compare};
use taskbench_conformance::schema::OpenApiChecker;
use taskbench_conformance::script::{Step, not_compared, run, script};
use taskbench_conformance::{Framework, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_answer_the_script_identically_and_as_documented() {
    let steps = script();
    assert!(steps.len() >= 60, "the script must have at least 60 requests, has {}", steps.len());

    let mut transcripts = Vec::new();
    let mut failures = Vec::new();
    let mut documents = Vec::new();
    for framework in Framework::ALL {
        let app = spawn_app(framework).await;
        let (transcript, step_failures) = run(&app, &steps).await;
        failures.extend(step_failures);
        let doc = app.client.get(app.url("/openapi.json")).send().await.expect("openapi").bytes().await.expect("body");
        documents.push(doc);
        let checker =
            OpenApiChecker::new(serde_json::from_slice(&documents[documents.len() - 1]).expect("the document is JSON"));
        for (step, exchange) in steps.iter().zip(&transcript) {
            if let Err(e) = checker.check(step.method, step.route, exchange.status, &exchange.body) {
                failures.push(format!("{} `{}`: {e}", framework.name(), step.name));
            }
        }
        let mut normalizer = Normalizer::default();
        let metrics = steps.iter().zip(&transcript).find(|(s, _)| s.path == "/metrics").map(|(_, ex)| &ex.body);
        assert!(
            matches!(metrics, Some(taskbench_conformance::diff::Body::Text(t)) if t.contains("http_requests_total")),
            "{}: /metrics serves the Prometheus text format: {metrics:?}",
            framework.name()
        );
        let compared = steps.iter().zip(transcript).map(|(s, ex)| normalizer.exchange(not_compared(s, ex)));
        transcripts.push(compared.collect::<Vec<_>>());
    }
    assert_eq!(documents[0], documents[1], "GET /openapi.json must be the same bytes from both servers");
    assert!(failures.is_empty(), "steps broke the contract:\n{}", failures.join("\n"));
    if let Err(report) = compare("axum", &transcripts[0], "actix", &transcripts[1]) {
        panic!("the servers differ on the wire:\n{report}");
    }
}

/// A step whose request cannot be sent is recorded as such (status 0), so that every later step is
/// still compared with its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_keeps_steps_and_transcript_aligned() {
    let mut steps: Vec<Step> = script().into_iter().take(4).collect();
    // A header value with a newline: the client refuses to send it.
    steps[1].headers.push(("x-broken", "a\nb"));
    let app = spawn_app(Framework::Axum).await;
    let (transcript, failures) = run(&app, &steps).await;
    let names: Vec<&str> = transcript.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(names, steps.iter().map(|s| s.name).collect::<Vec<_>>(), "one entry per step, in order");
    assert_eq!(transcript[1].status, 0, "the unsent request is recorded as status 0");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("request failed"), "{failures:?}");
    for (step, exchange) in steps.iter().zip(&transcript).skip(2) {
        assert_eq!(exchange.status, step.expect, "`{}` still gets its own answer", step.name);
    }
}

/// Password hashing is bounded: with its one slot busy and no wait allowed, a login is answered
/// 503 `unavailable` with `retry-after`, the same bytes from both servers, and the logins that got
/// the slot succeed. (The argon2 cost makes each hash take long enough that concurrent logins
/// overlap; a run where none overlapped would fail, not pass.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_answer_hashing_overload_the_same_way() {
    use taskbench_data::ServiceConfig;
    use taskbench_data::auth::{Argon2Cost, HashLimits};

    let mut refusals = Vec::new();
    for framework in Framework::ALL {
        let mut config = ServiceConfig::for_tests();
        config.argon2 = Argon2Cost { m_cost_kib: 16 * 1024, t_cost: 3, p_cost: 1 };
        config.hashing = HashLimits { concurrency: 1, wait: std::time::Duration::ZERO };
        let app = taskbench_conformance::spawn::spawn_app_with(framework, config).await;
        let credentials = serde_json::json!({"email": "storm@example.com", "password": "correct horse"});
        let res = app
            .request(reqwest::Method::POST, "/api/v1/auth/register")
            .json(&serde_json::json!({"email": "storm@example.com", "password": "correct horse", "name": "Storm"}))
            .send()
            .await
            .expect("register");
        assert_eq!(res.status(), 201, "{}: registering with the slot free", framework.name());
        let logins: Vec<_> = (0..6)
            .map(|_| tokio::spawn(app.request(reqwest::Method::POST, "/api/v1/auth/login").json(&credentials).send()))
            .collect();
        let mut statuses = Vec::new();
        for login in logins {
            let res = login.await.expect("login task").expect("login answered");
            let status = res.status().as_u16();
            statuses.push(status);
            if status == 503 {
                let retry_after = res.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
                let body: serde_json::Value = res.json().await.expect("a JSON error body");
                refusals.push((framework.name(), retry_after, body));
            }
        }
        assert!(statuses.iter().all(|s| [200, 503].contains(s)), "{}: {statuses:?}", framework.name());
        assert!(statuses.contains(&200), "{}: the login holding the slot succeeds: {statuses:?}", framework.name());
        assert!(
            statuses.contains(&503),
            "{}: concurrent logins beyond the slot are refused: {statuses:?}",
            framework.name()
        );
    }
    let (_, retry_after, body) = &refusals[0];
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    for (name, other_retry, other_body) in &refusals {
        assert_eq!((other_retry, other_body), (retry_after, body), "{name} answers the overload differently");
    }
}
