//! Hot paths with no framework in them: serde_json over the API's types, the error body, and the
//! JWT work the bearer-token extractor does. The per-framework suites call the same shared code
//! through each framework's responders; these are the floor they are compared with.

use taskbench_data::ApiError;
use taskbench_data::auth::{AuthUser, JwtKeys};
use taskbench_data::http as shared;
use taskbench_data::model::{NewTask, Task};

use crate::fixture::USER_ID;

/// Setting this environment variable (to anything) makes [`tasks_to_json`] do its work twice. It
/// exists only to prove that the instruction-count gate fails on a slower build
/// (`scripts/micro-gate-demo.sh`); it is read once when a benchmark is set up, never in the
/// measured code.
pub const SLOW_VARIANT_ENV: &str = "TASKBENCH_MICRO_SLOW_VARIANT";

/// Which implementation of [`tasks_to_json`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The real one.
    Normal,
    /// Serializes through a `serde_json::Value` first: the same bytes, about twice the work.
    DeliberatelySlow,
}

impl Variant {
    /// [`Variant::DeliberatelySlow`] when [`SLOW_VARIANT_ENV`] is set.
    pub fn from_env() -> Self {
        if std::env::var_os(SLOW_VARIANT_ENV).is_some() { Self::DeliberatelySlow } else { Self::Normal }
    }
}

/// A task list as the list endpoint's body.
pub fn tasks_to_json(tasks: &[Task], variant: Variant) -> Vec<u8> {
    match variant {
        Variant::Normal => serde_json::to_vec(tasks).expect("tasks serialize"),
        Variant::DeliberatelySlow => {
            let value = serde_json::to_value(tasks).expect("tasks serialize");
            serde_json::to_vec(&value).expect("a JSON value serializes")
        }
    }
}

/// A create-task body parsed the way both servers' JSON extractors parse it.
pub fn new_task_from_json(body: &[u8]) -> NewTask {
    shared::parse_json(body).expect("the fixture body is a valid create-task request")
}

/// The body of an error response, as both servers send it.
pub fn error_body(err: &ApiError) -> Vec<u8> {
    err.body_bytes()
}

/// A bearer token for the fixture's user, as a login issues it.
pub fn jwt_encode(keys: &JwtKeys) -> String {
    keys.issue(USER_ID).expect("HS256 signing does not fail")
}

/// A token checked the way the bearer-token extractor checks it.
pub fn jwt_verify(keys: &JwtKeys, token: &str) -> AuthUser {
    keys.verify(token).expect("the fixture token is valid")
}
