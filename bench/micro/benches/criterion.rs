//! Wall-time micro-benchmarks, Axum and Actix-web side by side: each group runs both frameworks
//! (and, for serialization, plain serde_json as the floor) on identical inputs, so one report
//! compares them. See the README, "Micro-benchmarks", for quick mode and baselines.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use taskbench_data::Service;
use taskbench_micro::codec::{self, Variant};
use taskbench_micro::fixture::{self, INVALID_TASK_JSON, LIST_QUERY, NEW_TASK_JSON, TASK_LIST_SIZES, TASK_PATH};
use taskbench_micro::on_actix::{self, ActixApp};
use taskbench_micro::on_axum::{self, AxumApp};

fn extractors(c: &mut Criterion) {
    let service = fixture::service();
    let bearer = fixture::bearer(&service);

    let mut group = c.benchmark_group("extract/json_body");
    group.throughput(Throughput::Bytes(NEW_TASK_JSON.len() as u64));
    group.bench_function("axum", |b| {
        b.iter_batched(
            || on_axum::post_json_request("/api/v1/tasks", NEW_TASK_JSON, None),
            on_axum::extract_json_body,
            BatchSize::SmallInput,
        );
    });
    group.bench_function("actix", |b| {
        b.iter_batched_ref(
            || on_actix::json_body_parts(NEW_TASK_JSON),
            on_actix::extract_json_body,
            BatchSize::SmallInput,
        );
    });
    group.finish();

    let mut group = c.benchmark_group("extract/uuid_path");
    let (axum, actix) = (AxumApp::task_id_route(), ActixApp::task_id_route());
    axum.expect(on_axum::get_request(TASK_PATH), 204);
    actix.expect(on_actix::get_request(TASK_PATH), 204);
    group.bench_function("axum", |b| {
        b.iter_batched(|| on_axum::get_request(TASK_PATH), |req| axum.call(req), BatchSize::SmallInput);
    });
    group.bench_function("actix", |b| {
        b.iter_batched(|| on_actix::get_request(TASK_PATH), |req| actix.call(req), BatchSize::SmallInput);
    });
    group.finish();

    let uri = format!("/api/v1/tasks?{LIST_QUERY}");
    let mut group = c.benchmark_group("extract/list_query");
    group.throughput(Throughput::Bytes(LIST_QUERY.len() as u64));
    let mut parts = on_axum::request_parts(&uri, None);
    group.bench_function("axum", |b| b.iter(|| on_axum::extract_list_query(black_box(&mut parts))));
    let request = on_actix::http_request(&uri, &service, None);
    group.bench_function("actix", |b| b.iter(|| on_actix::extract_list_query(black_box(&request))));
    group.finish();

    let mut group = c.benchmark_group("extract/bearer_auth");
    let mut parts = on_axum::request_parts("/api/v1/auth/me", Some(&bearer));
    group.bench_function("axum", |b| b.iter(|| on_axum::extract_auth(black_box(&mut parts), &service)));
    let request = on_actix::http_request("/api/v1/auth/me", &service, Some(&bearer));
    group.bench_function("actix", |b| b.iter(|| on_actix::extract_auth(black_box(&request))));
    group.finish();
}

fn whole_requests(c: &mut Criterion) {
    let service = fixture::service();
    let bearer = fixture::bearer(&service);
    let (axum, actix) = (AxumApp::reference(service.clone()), ActixApp::reference(service));
    axum.expect(on_axum::get_request("/bench/json"), 200)
        .expect(on_axum::post_json_request("/api/v1/tasks", INVALID_TASK_JSON, Some(&bearer)), 422);
    actix
        .expect(on_actix::get_request("/bench/json"), 200)
        .expect(on_actix::post_json_request("/api/v1/tasks", INVALID_TASK_JSON, Some(&bearer)), 422);

    let mut group = c.benchmark_group("request/get_bench_json");
    group.bench_function("axum", |b| {
        b.iter_batched(|| on_axum::get_request("/bench/json"), |req| axum.call(req), BatchSize::SmallInput);
    });
    group.bench_function("actix", |b| {
        b.iter_batched(|| on_actix::get_request("/bench/json"), |req| actix.call(req), BatchSize::SmallInput);
    });
    group.finish();

    let mut group = c.benchmark_group("request/post_task_invalid");
    group.throughput(Throughput::Bytes(INVALID_TASK_JSON.len() as u64));
    group.bench_function("axum", |b| {
        b.iter_batched(
            || on_axum::post_json_request("/api/v1/tasks", INVALID_TASK_JSON, Some(&bearer)),
            |req| axum.call(req),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("actix", |b| {
        b.iter_batched(
            || on_actix::post_json_request("/api/v1/tasks", INVALID_TASK_JSON, Some(&bearer)),
            |req| actix.call(req),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn serialization(c: &mut Criterion) {
    let mut group = c.benchmark_group("serialize/task_list");
    let variant = Variant::from_env();
    for n in TASK_LIST_SIZES {
        let tasks = fixture::tasks(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("axum", n), &tasks, |b, tasks| {
            b.iter(|| on_axum::tasks_response(black_box(tasks)));
        });
        group.bench_with_input(BenchmarkId::new("actix", n), &tasks, |b, tasks| {
            b.iter(|| on_actix::tasks_response(black_box(tasks)));
        });
        group.bench_with_input(BenchmarkId::new("serde_json", n), &tasks, |b, tasks| {
            b.iter(|| codec::tasks_to_json(black_box(tasks), variant));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("serialize/new_task_from_json");
    group.throughput(Throughput::Bytes(NEW_TASK_JSON.len() as u64));
    group.bench_function("serde_json", |b| b.iter(|| codec::new_task_from_json(black_box(NEW_TASK_JSON.as_bytes()))));
    group.finish();

    let mut group = c.benchmark_group("serialize/error_response");
    let err = fixture::validation_error();
    group.throughput(Throughput::Bytes(codec::error_body(&err).len() as u64));
    group.bench_function("axum", |b| {
        b.iter_batched(fixture::validation_error, on_axum::error_response, BatchSize::SmallInput);
    });
    group.bench_function("actix", |b| {
        b.iter_batched(fixture::validation_error, on_actix::error_response, BatchSize::SmallInput);
    });
    group.bench_function("serde_json", |b| b.iter(|| codec::error_body(black_box(&err))));
    group.finish();
}

fn jwt(c: &mut Criterion) {
    let service: Service = fixture::service();
    let token = codec::jwt_encode(service.jwt());
    let mut group = c.benchmark_group("jwt");
    group.bench_function("encode", |b| b.iter(|| codec::jwt_encode(black_box(service.jwt()))));
    group.bench_function("verify", |b| b.iter(|| codec::jwt_verify(black_box(service.jwt()), black_box(&token))));
    group.finish();
}

criterion_group!(benches, extractors, whole_requests, serialization, jwt);
criterion_main!(benches);
