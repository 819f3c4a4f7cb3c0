//! Instruction counts of the same hot paths as `benches/criterion.rs`, under Callgrind (gungraun),
//! for CI: a count is deterministic where wall time is noise. Every benchmark has a hard limit on
//! instructions (`Ir`), so the run fails on a regression even on a clean clone with no previous
//! run to compare with. See the README, "Micro-benchmarks", for how to run and update it.

use std::hint::black_box;

use actix_web::HttpRequest;
use actix_web::dev::Payload;
use axum::extract::Request;
use axum::http::request::Parts;
use gungraun::prelude::*;
use gungraun::{Callgrind, EventKind};
use taskbench_data::auth::JwtKeys;
use taskbench_data::model::{NewTask, Task};
use taskbench_data::{ApiError, Service};
use taskbench_micro::Reply;
use taskbench_micro::codec::{self, SLOW_VARIANT_ENV, Variant};
use taskbench_micro::fixture::{self, INVALID_TASK_JSON, LIST_QUERY, NEW_TASK_JSON, TASK_PATH};
use taskbench_micro::on_actix::{self, ActixApp};
use taskbench_micro::on_axum::{self, AxumApp};

/// Fails the benchmark when it executes more than `ir` instructions.
fn limit(ir: u64) -> LibraryBenchmarkConfig {
    let mut config = LibraryBenchmarkConfig::default();
    config.tool(Callgrind::default().hard_limits([(EventKind::Ir, ir)]));
    config
}

// The limits. Each is the count measured on this project's machine (x86_64, Rust 1.95, the
// committed Cargo.lock, the `bench` profile; the larger of two runs, shown after it) plus 15%,
// rounded up to a hundred. Counts of a whole request move by about 1% between runs (request ids,
// hashing); the rest repeat exactly. A change that moves a count on purpose, or a toolchain or
// dependency update, updates the numbers here in the same commit, so the cost shows in review.
const JSON_BODY_AXUM: u64 = 8_800; // measured 7_566
const JSON_BODY_ACTIX: u64 = 7_700; // measured 6_666
const UUID_PATH_AXUM: u64 = 10_000; // measured 8_625
const UUID_PATH_ACTIX: u64 = 57_100; // measured 49_568
const LIST_QUERY_AXUM: u64 = 8_200; // measured 7_078
const LIST_QUERY_ACTIX: u64 = 8_100; // measured 7_023
const BEARER_AUTH_AXUM: u64 = 44_000; // measured 38_184
const BEARER_AUTH_ACTIX: u64 = 44_000; // measured 38_214
const GET_BENCH_JSON_AXUM: u64 = 27_800; // measured 24_111
const GET_BENCH_JSON_ACTIX: u64 = 16_700; // measured 14_473
const POST_TASK_INVALID_AXUM: u64 = 83_100; // measured 72_255
const POST_TASK_INVALID_ACTIX: u64 = 74_000; // measured 64_272
const TASK_LIST_1_AXUM: u64 = 11_900; // measured 10_342
const TASK_LIST_1_ACTIX: u64 = 12_400; // measured 10_716
const TASK_LIST_1_SERDE: u64 = 9_100; // measured 7_876
const TASK_LIST_20_AXUM: u64 = 185_700; // measured 161_397
const TASK_LIST_20_ACTIX: u64 = 153_700; // measured 133_587
const TASK_LIST_20_SERDE: u64 = 150_400; // measured 130_747
const TASK_LIST_100_AXUM: u64 = 916_200; // measured 796_681
const TASK_LIST_100_ACTIX: u64 = 749_000; // measured 651_299
const TASK_LIST_100_SERDE: u64 = 745_800; // measured 648_459
const NEW_TASK_FROM_JSON: u64 = 5_800; // measured 4_964
const ERROR_RESPONSE_AXUM: u64 = 7_000; // measured 6_077
const ERROR_RESPONSE_ACTIX: u64 = 9_100; // measured 7_858
const ERROR_BODY: u64 = 5_700; // measured 4_908
const JWT_ENCODE: u64 = 31_800; // measured 27_605
const JWT_VERIFY: u64 = 43_200; // measured 37_561

// Setup runs before Callgrind starts counting (only the benchmark function is counted), and each
// benchmark hands its fixture back so that dropping it is not counted either.

fn axum_json_request() -> Request {
    on_axum::post_json_request("/api/v1/tasks", NEW_TASK_JSON, None)
}

fn axum_parts(uri: &str, with_token: bool) -> (Parts, Service) {
    let service = fixture::service();
    let bearer = with_token.then(|| fixture::bearer(&service));
    (on_axum::request_parts(uri, bearer.as_deref()), service)
}

fn actix_request(uri: &str, with_token: bool) -> HttpRequest {
    let service = fixture::service();
    let bearer = with_token.then(|| fixture::bearer(&service));
    on_actix::http_request(uri, &service, bearer.as_deref())
}

fn list_uri() -> String {
    format!("/api/v1/tasks?{LIST_QUERY}")
}

/// The route-only app, checked and warmed, and a fresh request for it.
fn axum_task_route() -> (AxumApp, Request) {
    let app = AxumApp::task_id_route();
    app.expect(on_axum::get_request(TASK_PATH), 204);
    (app, on_axum::get_request(TASK_PATH))
}

fn actix_task_route() -> (ActixApp, actix_http::Request) {
    let app = ActixApp::task_id_route();
    app.expect(on_actix::get_request(TASK_PATH), 204);
    (app, on_actix::get_request(TASK_PATH))
}

fn axum_get_bench_json() -> (AxumApp, Request) {
    let app = AxumApp::reference(fixture::service());
    app.expect(on_axum::get_request("/bench/json"), 200);
    (app, on_axum::get_request("/bench/json"))
}

fn actix_get_bench_json() -> (ActixApp, actix_http::Request) {
    let app = ActixApp::reference(fixture::service());
    app.expect(on_actix::get_request("/bench/json"), 200);
    (app, on_actix::get_request("/bench/json"))
}

fn axum_post_invalid() -> (AxumApp, Request) {
    let service = fixture::service();
    let bearer = fixture::bearer(&service);
    let request = || on_axum::post_json_request("/api/v1/tasks", INVALID_TASK_JSON, Some(&bearer));
    let app = AxumApp::reference(service);
    app.expect(request(), 422);
    (app, request())
}

fn actix_post_invalid() -> (ActixApp, actix_http::Request) {
    let service = fixture::service();
    let bearer = fixture::bearer(&service);
    let request = || on_actix::post_json_request("/api/v1/tasks", INVALID_TASK_JSON, Some(&bearer));
    let app = ActixApp::reference(service);
    app.expect(request(), 422);
    (app, request())
}

fn tasks_and_variant(n: usize) -> (Vec<Task>, Variant) {
    (fixture::tasks(n), Variant::from_env())
}

fn keys_and_token() -> (JwtKeys, String) {
    let keys = fixture::service().jwt().clone();
    let token = codec::jwt_encode(&keys);
    (keys, token)
}

#[library_benchmark(config = limit(JSON_BODY_AXUM))]
#[bench::create_task(axum_json_request())]
fn json_body_axum(request: Request) -> NewTask {
    on_axum::extract_json_body(black_box(request))
}

#[library_benchmark(config = limit(JSON_BODY_ACTIX))]
#[bench::create_task(on_actix::json_body_parts(NEW_TASK_JSON))]
fn json_body_actix(mut parts: (HttpRequest, Payload)) -> (NewTask, (HttpRequest, Payload)) {
    (on_actix::extract_json_body(black_box(&mut parts)), parts)
}

#[library_benchmark(config = limit(UUID_PATH_AXUM))]
#[bench::one_route(axum_task_route())]
fn uuid_path_axum(fixture: (AxumApp, Request)) -> (Reply, AxumApp) {
    let (app, request) = fixture;
    (app.call(black_box(request)), app)
}

#[library_benchmark(config = limit(UUID_PATH_ACTIX))]
#[bench::one_route(actix_task_route())]
fn uuid_path_actix(fixture: (ActixApp, actix_http::Request)) -> (Reply, ActixApp) {
    let (app, request) = fixture;
    (app.call(black_box(request)), app)
}

#[library_benchmark(config = limit(LIST_QUERY_AXUM))]
#[bench::filters_and_paging(axum_parts(&list_uri(), false))]
fn list_query_axum(fixture: (Parts, Service)) -> (taskbench_data::model::ListQuery, Parts, Service) {
    let (mut parts, service) = fixture;
    (on_axum::extract_list_query(black_box(&mut parts)), parts, service)
}

#[library_benchmark(config = limit(LIST_QUERY_ACTIX))]
#[bench::filters_and_paging(actix_request(&list_uri(), false))]
fn list_query_actix(request: HttpRequest) -> (taskbench_data::model::ListQuery, HttpRequest) {
    (on_actix::extract_list_query(black_box(&request)), request)
}

#[library_benchmark(config = limit(BEARER_AUTH_AXUM))]
#[bench::valid_token(axum_parts("/api/v1/auth/me", true))]
fn bearer_auth_axum(fixture: (Parts, Service)) -> (taskbench_data::auth::AuthUser, Parts, Service) {
    let (mut parts, service) = fixture;
    (on_axum::extract_auth(black_box(&mut parts), &service), parts, service)
}

#[library_benchmark(config = limit(BEARER_AUTH_ACTIX))]
#[bench::valid_token(actix_request("/api/v1/auth/me", true))]
fn bearer_auth_actix(request: HttpRequest) -> (taskbench_data::auth::AuthUser, HttpRequest) {
    (on_actix::extract_auth(black_box(&request)), request)
}

library_benchmark_group!(
    name = extract,
    benchmarks = [
        json_body_axum,
        json_body_actix,
        uuid_path_axum,
        uuid_path_actix,
        list_query_axum,
        list_query_actix,
        bearer_auth_axum,
        bearer_auth_actix
    ]
);

#[library_benchmark(config = limit(GET_BENCH_JSON_AXUM))]
#[bench::in_memory(axum_get_bench_json())]
fn get_bench_json_axum(fixture: (AxumApp, Request)) -> (Reply, AxumApp) {
    let (app, request) = fixture;
    (app.call(black_box(request)), app)
}

#[library_benchmark(config = limit(GET_BENCH_JSON_ACTIX))]
#[bench::in_memory(actix_get_bench_json())]
fn get_bench_json_actix(fixture: (ActixApp, actix_http::Request)) -> (Reply, ActixApp) {
    let (app, request) = fixture;
    (app.call(black_box(request)), app)
}

#[library_benchmark(config = limit(POST_TASK_INVALID_AXUM))]
#[bench::in_memory(axum_post_invalid())]
fn post_task_invalid_axum(fixture: (AxumApp, Request)) -> (Reply, AxumApp) {
    let (app, request) = fixture;
    (app.call(black_box(request)), app)
}

#[library_benchmark(config = limit(POST_TASK_INVALID_ACTIX))]
#[bench::in_memory(actix_post_invalid())]
fn post_task_invalid_actix(fixture: (ActixApp, actix_http::Request)) -> (Reply, ActixApp) {
    let (app, request) = fixture;
    (app.call(black_box(request)), app)
}

library_benchmark_group!(
    name = request,
    benchmarks = [get_bench_json_axum, get_bench_json_actix, post_task_invalid_axum, post_task_invalid_actix]
);

#[library_benchmark]
#[bench::n1(args = (fixture::tasks(1)), config = limit(TASK_LIST_1_AXUM))]
#[bench::n20(args = (fixture::tasks(20)), config = limit(TASK_LIST_20_AXUM))]
#[bench::n100(args = (fixture::tasks(100)), config = limit(TASK_LIST_100_AXUM))]
fn task_list_axum(tasks: Vec<Task>) -> (axum::response::Response, Vec<Task>) {
    (on_axum::tasks_response(black_box(&tasks)), tasks)
}

#[library_benchmark]
#[bench::n1(args = (fixture::tasks(1)), config = limit(TASK_LIST_1_ACTIX))]
#[bench::n20(args = (fixture::tasks(20)), config = limit(TASK_LIST_20_ACTIX))]
#[bench::n100(args = (fixture::tasks(100)), config = limit(TASK_LIST_100_ACTIX))]
fn task_list_actix(tasks: Vec<Task>) -> (actix_web::HttpResponse, Vec<Task>) {
    (on_actix::tasks_response(black_box(&tasks)), tasks)
}

#[library_benchmark]
#[bench::n1(args = (1), setup = tasks_and_variant, config = limit(TASK_LIST_1_SERDE))]
#[bench::n20(args = (20), setup = tasks_and_variant, config = limit(TASK_LIST_20_SERDE))]
#[bench::n100(args = (100), setup = tasks_and_variant, config = limit(TASK_LIST_100_SERDE))]
fn task_list_serde_json(fixture: (Vec<Task>, Variant)) -> (Vec<u8>, Vec<Task>) {
    let (tasks, variant) = fixture;
    (codec::tasks_to_json(black_box(&tasks), variant), tasks)
}

#[library_benchmark(config = limit(NEW_TASK_FROM_JSON))]
#[bench::create_task(NEW_TASK_JSON.as_bytes())]
fn new_task_from_json(body: &'static [u8]) -> NewTask {
    codec::new_task_from_json(black_box(body))
}

#[library_benchmark(config = limit(ERROR_RESPONSE_AXUM))]
#[bench::validation(fixture::validation_error())]
fn error_response_axum(err: ApiError) -> axum::response::Response {
    on_axum::error_response(black_box(err))
}

#[library_benchmark(config = limit(ERROR_RESPONSE_ACTIX))]
#[bench::validation(fixture::validation_error())]
fn error_response_actix(err: ApiError) -> actix_web::HttpResponse {
    on_actix::error_response(black_box(err))
}

#[library_benchmark(config = limit(ERROR_BODY))]
#[bench::validation(fixture::validation_error())]
fn error_body_serde_json(err: ApiError) -> (Vec<u8>, ApiError) {
    (codec::error_body(black_box(&err)), err)
}

library_benchmark_group!(
    name = serialize,
    benchmarks = [
        task_list_axum,
        task_list_actix,
        task_list_serde_json,
        new_task_from_json,
        error_response_axum,
        error_response_actix,
        error_body_serde_json
    ]
);

#[library_benchmark(config = limit(JWT_ENCODE))]
#[bench::hs256(keys_and_token())]
fn jwt_encode(fixture: (JwtKeys, String)) -> (String, JwtKeys, String) {
    let (keys, token) = fixture;
    (codec::jwt_encode(black_box(&keys)), keys, token)
}

#[library_benchmark(config = limit(JWT_VERIFY))]
#[bench::hs256(keys_and_token())]
fn jwt_verify(fixture: (JwtKeys, String)) -> (taskbench_data::auth::AuthUser, JwtKeys, String) {
    let (keys, token) = fixture;
    (codec::jwt_verify(black_box(&keys), black_box(&token)), keys, token)
}

library_benchmark_group!(name = jwt, benchmarks = [jwt_encode, jwt_verify]);

main!(
    // The slow variant is chosen by an environment variable, and gungraun clears the environment
    // of a benchmark unless told to pass a variable through.
    config = LibraryBenchmarkConfig::default().pass_through_env(SLOW_VARIANT_ENV);
    library_benchmark_groups = extract,
    request,
    serialize,
    jwt
);
