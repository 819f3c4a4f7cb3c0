//! The differential conformance suite: one script against both servers, every step's status
//! checked against the contract, every response checked against the OpenAPI document, and the
//! two transcripts compared after normalising ids, timestamps and tokens.

use taskbench_conformance::diff::{Normalizer, compare};
use taskbench_conformance::schema::OpenApiChecker;
use taskbench_conformance::script::{run, script};
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
        transcripts.push(transcript.into_iter().map(|ex| normalizer.exchange(ex)).collect::<Vec<_>>());
    }
    assert_eq!(documents[0], documents[1], "GET /openapi.json must be the same bytes from both servers");
    assert!(failures.is_empty(), "steps broke the contract:\n{}", failures.join("\n"));
    if let Err(report) = compare("axum", &transcripts[0], "actix", &transcripts[1]) {
        panic!("the servers differ on the wire:\n{report}");
    }
}
