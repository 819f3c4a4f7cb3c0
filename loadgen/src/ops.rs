//! The traffic model shared by both engines: which step a user takes next, the HTTP request it
//! becomes, and what the response teaches the user (created ids, tokens). Every request the
//! generator sends is built here, the setup ones (preflight, seeding, signing in) included.

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::scenario::{Op, Params, Step};

/// Password of every seeded user (seed data is throw-away and loopback-only).
pub const SEED_PASSWORD: &str = "taskbench-seed-password";

/// Email of seeded user `i` (0-based).
pub fn seed_email(i: u32) -> String {
    format!("seed-{i}@taskbench.test")
}

/// One simulated user: credentials, token, the task ids it knows, and its own RNG so a run's
/// choices are reproducible from the scenario seed.
#[derive(Debug, Clone)]
pub struct UserState {
    pub email: String,
    pub token: Option<String>,
    pub task_ids: Vec<String>,
    rng: ChaCha8Rng,
    seq: u64,
    nonce: u64,
}

impl UserState {
    /// Seeded user `index`, with an RNG derived from the scenario seed.
    pub fn seeded(index: u32, seed: u64, nonce: u64) -> Self {
        Self {
            email: seed_email(index),
            token: None,
            task_ids: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ (u64::from(index) << 32)),
            seq: 0,
            nonce,
        }
    }
}

/// Weighted choice among a scenario's steps.
#[derive(Debug, Clone)]
pub struct Mix {
    steps: Vec<Step>,
    cumulative: Vec<u64>,
}

impl Mix {
    pub fn new(steps: &[Step]) -> Self {
        let mut total = 0;
        let cumulative = steps
            .iter()
            .map(|s| {
                total += u64::from(s.weight);
                total
            })
            .collect();
        Self { steps: steps.to_vec(), cumulative }
    }

    pub fn pick(&self, user: &mut UserState) -> &Step {
        let total = self.cumulative.last().copied().unwrap_or(1).max(1);
        let x = user.rng.random_range(0..total);
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.steps[i.min(self.steps.len() - 1)]
    }
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub op: Op,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub bearer: Option<String>,
    /// The status that means success for this request.
    pub expect: u16,
}

impl ApiRequest {
    fn new(
        op: Op,
        method: &'static str,
        path: String,
        body: Option<Value>,
        bearer: Option<String>,
        expect: u16,
    ) -> Self {
        Self { op, method, path, body: body.map(|b| b.to_string().into_bytes()), bearer, expect }
    }
}

/// `GET /health`: the preflight's probe.
pub fn health() -> ApiRequest {
    ApiRequest::new(Op::Health, "GET", "/health".into(), None, None, 200)
}

/// The server's Prometheus metrics, as a resource sampler reads them (never part of a scenario's
/// recorded operations, so it carries `Health`'s label).
pub fn metrics() -> ApiRequest {
    ApiRequest::new(Op::Health, "GET", "/metrics".into(), None, None, 200)
}

/// Signs `email` in with the seeded accounts' password.
pub fn login(email: &str) -> ApiRequest {
    let body = json!({"email": email, "password": SEED_PASSWORD});
    ApiRequest::new(Op::Login, "POST", "/api/v1/auth/login".into(), Some(body), None, 200)
}

/// The listing a signed-in user makes before its first step, to learn its tasks: the first 100.
pub fn first_tasks(user: &UserState) -> ApiRequest {
    list_tasks(&Params { limit: Some(100), ..Params::default() }, user.token.clone())
}

/// Registers seeded user `i` (see [`seed_email`]).
pub fn seed_account(i: u32) -> ApiRequest {
    register(&seed_email(i), &format!("Seed {i}"))
}

/// Creates seeded task `t` of seeded user `i`, titled so that [`seed_task_number`] finds `t`.
pub fn seed_task(i: u32, t: u32, seed: u64, token: &str) -> ApiRequest {
    create_task(json!({"title": format!("seed task {t} of user {i} (seed {seed})")}), Some(token.to_owned()))
}

/// Which seeded task (its `t` in [`seed_task`]) a task titled `title` is; `None` when it is not one.
pub fn seed_task_number(title: &str) -> Option<u64> {
    title.strip_prefix("seed task ")?.split(' ').next()?.parse().ok()
}

fn register(email: &str, name: &str) -> ApiRequest {
    let body = json!({"email": email, "password": SEED_PASSWORD, "name": name});
    ApiRequest::new(Op::Register, "POST", "/api/v1/auth/register".into(), Some(body), None, 201)
}

fn list_tasks(params: &Params, bearer: Option<String>) -> ApiRequest {
    let mut query = vec![format!("limit={}", params.limit.unwrap_or(20))];
    query.extend(params.offset.map(|o| format!("offset={o}")));
    query.extend(params.status.as_ref().map(|s| format!("status={s}")));
    query.extend(params.priority.as_ref().map(|s| format!("priority={s}")));
    ApiRequest::new(Op::ListTasks, "GET", format!("/api/v1/tasks?{}", query.join("&")), None, bearer, 200)
}

fn create_task(body: Value, bearer: Option<String>) -> ApiRequest {
    ApiRequest::new(Op::CreateTask, "POST", "/api/v1/tasks".into(), Some(body), bearer, 201)
}

/// The request for `step` by `user`. Ops that need a task id the user does not know yet fall
/// back to creating one (documented in scenarios/README.md).
pub fn build(step: &Step, user: &mut UserState) -> ApiRequest {
    user.seq += 1;
    let bearer = user.token.clone();
    let op = match step.op {
        Op::GetTask | Op::UpdateTask | Op::DeleteTask if user.task_ids.is_empty() => Op::CreateTask,
        op => op,
    };
    let req = |method, path: String, body: Option<Value>, expect| {
        ApiRequest::new(op, method, path, body, if op.needs_auth() { bearer.clone() } else { None }, expect)
    };
    match op {
        Op::Health => health(),
        Op::Plaintext => req("GET", "/bench/plaintext".into(), None, 200),
        Op::Json => req("GET", "/bench/json".into(), None, 200),
        Op::Register => {
            let email =
                format!("load-{:x}-{}-{}@taskbench.test", user.nonce, user.email.replace(['@', '.'], "-"), user.seq);
            register(&email, "Load User")
        }
        Op::Login => login(&user.email),
        Op::Me => req("GET", "/api/v1/auth/me".into(), None, 200),
        Op::ListTasks => list_tasks(&step.params, bearer),
        Op::CreateTask => {
            let n = user.seq;
            let description = step.params.description_len.map(|len| "d".repeat(len as usize));
            let priority = ["low", "medium", "high", "critical"][user.rng.random_range(0..4)];
            let body = json!({"title": format!("load task {n}"), "description": description, "priority": priority});
            create_task(body, bearer)
        }
        Op::GetTask => {
            let id = pick_id(user);
            req("GET", format!("/api/v1/tasks/{id}"), None, 200)
        }
        Op::UpdateTask => {
            let id = pick_id(user);
            let status = ["todo", "in_progress", "done"][user.rng.random_range(0..3)];
            req("PATCH", format!("/api/v1/tasks/{id}"), Some(json!({"status": status})), 200)
        }
        Op::DeleteTask => {
            // Forget it now: a deleted id must not be read or deleted again.
            let i = user.rng.random_range(0..user.task_ids.len());
            let id = user.task_ids.swap_remove(i);
            req("DELETE", format!("/api/v1/tasks/{id}"), None, 204)
        }
    }
}

fn pick_id(user: &mut UserState) -> String {
    let i = user.rng.random_range(0..user.task_ids.len());
    user.task_ids[i].clone()
}

/// Learns from a successful response: the token of a login, the id of a created task, the ids
/// of a listing (so reads and updates have something to target).
pub fn observe(req: &ApiRequest, status: u16, body: &[u8], user: &mut UserState) {
    if status != req.expect {
        return;
    }
    match req.op {
        Op::Login => {
            if let Some(token) =
                serde_json::from_slice::<Value>(body).ok().and_then(|v| v["token"].as_str().map(str::to_owned))
            {
                user.token = Some(token);
            }
        }
        Op::CreateTask => {
            if let Some(id) =
                serde_json::from_slice::<Value>(body).ok().and_then(|v| v["id"].as_str().map(str::to_owned))
            {
                user.task_ids.push(id);
            }
        }
        Op::ListTasks if user.task_ids.is_empty() => {
            if let Ok(Value::Array(tasks)) = serde_json::from_slice::<Value>(body) {
                user.task_ids.extend(tasks.iter().filter_map(|t| t["id"].as_str().map(str::to_owned)));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Params;

    fn step(op: Op, weight: u32) -> Step {
        Step { op, weight, params: Params::default() }
    }

    #[test]
    fn the_mix_follows_weights_and_is_reproducible() {
        let mix = Mix::new(&[step(Op::Health, 3), step(Op::Json, 1)]);
        let mut user = UserState::seeded(0, 42, 1);
        let picks: Vec<Op> = (0..4000).map(|_| mix.pick(&mut user).op).collect();
        let health = picks.iter().filter(|&&op| op == Op::Health).count();
        assert!((2800..3200).contains(&health), "about 3/4 health: {health}");
        let mut again = UserState::seeded(0, 42, 1);
        let replay: Vec<Op> = (0..4000).map(|_| mix.pick(&mut again).op).collect();
        assert_eq!(picks, replay);
    }

    #[test]
    fn setup_requests_are_the_steps_requests() {
        let mut user = UserState::seeded(3, 42, 1);
        assert_eq!(build(&step(Op::Login, 1), &mut user), login(&seed_email(3)));
        assert_eq!(build(&step(Op::Health, 1), &mut user), health());
        user.token = Some("t".into());
        let first_100 = Step { params: Params { limit: Some(100), ..Params::default() }, ..step(Op::ListTasks, 1) };
        let listing = first_tasks(&user);
        assert_eq!(build(&first_100, &mut user), listing);
        assert_eq!((listing.path.as_str(), listing.bearer.as_deref()), ("/api/v1/tasks?limit=100", Some("t")));
        let task = seed_task(3, 17, 42, "t");
        assert_eq!(
            (task.op, task.method, task.expect, task.bearer.as_deref()),
            (Op::CreateTask, "POST", 201, Some("t"))
        );
        let title = serde_json::from_slice::<Value>(task.body.as_deref().unwrap_or_default()).expect("json")["title"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(title.as_deref().and_then(seed_task_number), Some(17), "{title:?}");
        assert_eq!(seed_task_number("load task 17"), None);
        let account = seed_account(3);
        assert_eq!((account.op, account.path.as_str(), account.expect), (Op::Register, "/api/v1/auth/register", 201));
    }

    #[test]
    fn id_ops_fall_back_to_create_and_learn_ids() {
        let mut user = UserState::seeded(0, 1, 1);
        user.token = Some("t".into());
        let req = build(&step(Op::GetTask, 1), &mut user);
        assert_eq!((req.op, req.method, req.expect), (Op::CreateTask, "POST", 201));
        observe(&req, 201, br#"{"id": "abc"}"#, &mut user);
        let req = build(&step(Op::DeleteTask, 1), &mut user);
        assert_eq!((req.path.as_str(), req.bearer.as_deref()), ("/api/v1/tasks/abc", Some("t")));
        assert!(user.task_ids.is_empty(), "a deleted id is forgotten");
    }
}
