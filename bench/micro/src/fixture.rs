//! The inputs every benchmark shares, and the service the apps run on, built without a database.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use taskbench_data::auth::AuthUser;
use taskbench_data::model::{Task, TaskPriority, TaskStatus, Uuid};
use taskbench_data::validate::TITLE_RULE;
use taskbench_data::{ApiError, Service, ServiceConfig};

/// The create-task body the extractor and deserialization benchmarks parse.
pub const NEW_TASK_JSON: &str = r#"{"title":"Write the quarterly report","description":"Numbers from finance, charts from the dashboard, one page of summary.","priority":"high","due_at":"2026-12-01T17:00:00Z"}"#;
/// A create-task body that parses but breaks a rule (the title is blank once trimmed): a 422
/// decided before any query, so a whole request needs no database.
pub const INVALID_TASK_JSON: &str = r#"{"title":"   ","priority":"high"}"#;
/// The list query string (without `?`): both filters and both paging parameters.
pub const LIST_QUERY: &str = "status=in_progress&priority=high&limit=20&offset=40";
/// The route pattern of one task, as written in the shared route table.
pub const TASK_ROUTE: &str = "/api/v1/tasks/{id}";
/// A concrete path for [`TASK_ROUTE`].
pub const TASK_PATH: &str = "/api/v1/tasks/0190f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f";
/// Sizes of the task lists serialized: one task, a default page, a full page.
pub const TASK_LIST_SIZES: [usize; 3] = [1, 20, 100];
/// The caller the bearer tokens are minted for.
pub const USER_ID: Uuid = Uuid::from_u128(0x0190_f3c4_0000_7000_8000_0000_0000_0001);

/// A service whose pool never connects. The benchmarked requests end before any query
/// (`/bench/json`, a create-task that fails validation), so no database is needed; a request
/// that did reach the pool would fail to connect, and the status check of the fixture says so.
pub fn service() -> Service {
    let pool = PgPoolOptions::new()
        // No idle or lifetime reaper: those are tasks spawned on the current runtime, and this
        // pool must not depend on one (the Actix and Tokio apps each run their own).
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy("postgres://taskbench@127.0.0.1:1/unused")
        .expect("a well-formed database URL");
    Service::new(pool, &ServiceConfig::for_tests()).expect("the test configuration is valid")
}

/// The `authorization` header value of [`USER_ID`], minted with the service's own keys.
pub fn bearer(service: &Service) -> String {
    let token = service.jwt().issue(USER_ID).expect("HS256 signing does not fail");
    format!("Bearer {token}")
}

/// The caller [`bearer`] proves.
pub fn user() -> AuthUser {
    AuthUser { id: USER_ID }
}

/// `n` tasks as the list endpoint would return them: fixed ids and times, so every run
/// serializes the same bytes.
pub fn tasks(n: usize) -> Vec<Task> {
    const STATUSES: [TaskStatus; 4] =
        [TaskStatus::Todo, TaskStatus::InProgress, TaskStatus::Done, TaskStatus::Cancelled];
    const PRIORITIES: [TaskPriority; 4] =
        [TaskPriority::Low, TaskPriority::Medium, TaskPriority::High, TaskPriority::Critical];
    let at = |secs: i64| DateTime::<Utc>::from_timestamp(secs, 123_456_000).expect("a timestamp in range");
    (0..n)
        .map(|i| {
            let created = 1_780_000_000 + i as i64 * 3_600;
            Task {
                id: Uuid::from_u128(0x0190_f3c4_0000_7000_8000_0000_0001_0000 + i as u128),
                user_id: USER_ID,
                title: format!("Task {i}: follow up on the supplier contract"),
                // Every other task has a description and a due date, as real lists mix both.
                description: (i % 2 == 0).then(|| format!("Call back before Friday; reference number {i:06}.")),
                status: STATUSES[i % STATUSES.len()],
                priority: PRIORITIES[i % PRIORITIES.len()],
                due_at: (i % 2 == 0).then(|| at(created + 7 * 86_400)),
                created_at: at(created),
                updated_at: at(created + 60),
            }
        })
        .collect()
}

/// The error the invalid create-task request earns (422, one field).
pub fn validation_error() -> ApiError {
    ApiError::validation("title", TITLE_RULE)
}
