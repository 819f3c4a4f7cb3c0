//! taskbench-loadgen: scenario files, the traffic model, the closed model through Goose, an
//! open-model engine and microsecond HDR histograms; what a run measured is `taskbench-results`.

pub mod client;
pub mod closed;
pub mod dead_target;
pub mod open;
pub mod ops;
pub mod record;
pub mod result;
pub mod scenario;
pub mod search;

pub use scenario::{Op, Scenario, ScenarioError};
use taskbench_results::LoadResult;

/// Locks a user's or a run's shared state; a panic elsewhere while it was held leaves data that
/// is still usable for load generation, so poisoning is ignored.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a load run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("target {target}: {why}")]
    BadTarget { target: String, why: String },
    #[error("cannot reach {target}: {why}")]
    Unreachable { target: String, why: String },
    #[error("seeding failed: {0}")]
    Seed(String),
    /// The engine itself failed (Goose could not start its users).
    #[error("{0}")]
    Engine(String),
}

/// Prepares `count` seeded users: logs each in and learns the ids of its tasks.
pub async fn prepare_users(
    client: &client::HttpClient,
    target: &client::Target,
    scenario: &Scenario,
    count: u32,
    nonce: u64,
) -> Result<Vec<ops::UserState>, LoadError> {
    let needs_login = scenario.steps.iter().any(|s| s.op.needs_auth());
    let mut users = Vec::with_capacity(count as usize);
    for i in 0..count.max(1) {
        let mut user = ops::UserState::seeded(i, scenario.data.seed, nonce);
        if needs_login && i < scenario.data.users {
            client::sign_in(client, target, &mut user).await?;
        }
        users.push(user);
    }
    Ok(users)
}

/// Whether a run seeds its data through the API first, or finds it already there (a harness
/// that restores a seeded copy of the database before each run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    ViaApi,
    AlreadySeeded,
}

async fn open_via_api(
    scenario: &Scenario,
    target_url: &str,
    seeding: Seeding,
    (search_spec, rate, max_in_flight): (Option<scenario::SearchSpec>, scenario::Rate, usize),
) -> Result<LoadResult, LoadError> {
    let target = client::Target::parse(target_url)?;
    let client = client::http_client(max_in_flight);
    client::preflight(&client, &target).await?;
    if seeding == Seeding::ViaApi {
        client::seed_via_api(&client, &target, &scenario.data).await?;
    }
    let nonce = rand::random();
    let users = prepare_users(&client, &target, scenario, scenario.data.users.max(1), nonce).await?;
    Ok(match search_spec {
        // Each step is judged by the search; the result carries its chosen step's verdict.
        Some(spec) => search::run(scenario, spec, client, target, users).await,
        None => judged(open::run(scenario, client, target, users, rate, max_in_flight).await, scenario),
    })
}

async fn closed_via_api(
    scenario: &Scenario,
    target_url: &str,
    seeding: Seeding,
    (users, ramp, think_time): (u32, std::time::Duration, std::time::Duration),
) -> Result<LoadResult, LoadError> {
    let target = client::Target::parse(target_url)?;
    let client = client::http_client(1);
    client::preflight(&client, &target).await?;
    if seeding == Seeding::ViaApi {
        client::seed_via_api(&client, &target, &scenario.data).await?;
    }
    if scenario.steps.iter().any(|s| s.op.needs_auth()) && scenario.data.users > 0 {
        // Fails clearly before any virtual user starts when seeded users cannot sign in.
        client::login(&client, &target, &ops::seed_email(0)).await?;
    }
    Ok(judged(closed::run(scenario, &target, users, ramp, think_time).await?, scenario))
}

/// Attaches the verdict on the scenario's `[slo]`.
fn judged(mut result: LoadResult, scenario: &Scenario) -> LoadResult {
    result.slo = taskbench_results::slo::SloReport::judge(&scenario.slo, &result.total);
    result
}

/// Runs `scenario` against `target_url` with the engine its load model names: preflight, seeding
/// through the API (unless `seeding` says the data is there), user preparation (open model) or a
/// check that a seeded user can sign in (closed model), then the measured run, judged on the
/// scenario's `[slo]`. The one entry point. The closed model runs Goose's users as tasks on the
/// current tokio runtime: call it on a multi-thread runtime.
pub async fn run(scenario: &Scenario, target_url: &str, seeding: Seeding) -> Result<LoadResult, LoadError> {
    match scenario.load.model {
        scenario::LoadModel::Closed { users, ramp, think_time } => {
            closed_via_api(scenario, target_url, seeding, (users, ramp, think_time)).await
        }
        scenario::LoadModel::Open { rate, max_in_flight } => {
            open_via_api(scenario, target_url, seeding, (None, rate, max_in_flight)).await
        }
        scenario::LoadModel::Search(spec) => {
            let first = (Some(spec), scenario::Rate::Fixed(spec.from), spec.max_in_flight);
            open_via_api(scenario, target_url, seeding, first).await
        }
    }
}
