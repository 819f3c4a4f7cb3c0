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
use taskbench_results::merge::AgentShare;

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

/// Prepares the seeded users numbered `indices`: logs each in and learns the ids of its tasks.
pub async fn prepare_users(
    client: &client::HttpClient,
    target: &client::Target,
    scenario: &Scenario,
    indices: impl IntoIterator<Item = u32>,
    nonce: u64,
) -> Result<Vec<ops::UserState>, LoadError> {
    let needs_login = scenario.steps.iter().any(|s| s.op.needs_auth());
    let mut users = Vec::new();
    for i in indices {
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Seeding {
    #[default]
    ViaApi,
    AlreadySeeded,
}

/// How a run goes besides its scenario and target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub seeding: Seeding,
    /// This process's share when the run is split between agents (`--agent I/N`).
    pub share: Option<AgentShare>,
    /// Which targets load may be sent to.
    pub reach: client::Reach,
}

async fn open_via_api(
    scenario: &Scenario,
    target_url: &str,
    Options { seeding, share, reach }: Options,
    (search_spec, rate, max_in_flight): (Option<scenario::SearchSpec>, scenario::Rate, usize),
) -> Result<LoadResult, LoadError> {
    if search_spec.is_some() && share.is_some() {
        return Err(LoadError::Engine(
            "a saturation search chooses its rates from what it measures, so it runs on one agent: drop --agent".into(),
        ));
    }
    let target = client::Target::parse_with(target_url, reach)?;
    // The scenario's concurrency is the whole run's: each agent takes its share of it.
    let max_in_flight = share.map_or(max_in_flight, |s| max_in_flight.div_ceil(s.count.max(1) as usize));
    let client = client::http_client(max_in_flight);
    client::preflight(&client, &target).await?;
    if seeding == Seeding::ViaApi {
        client::seed_via_api(&client, &target, &scenario.data).await?;
    }
    let nonce = rand::random();
    let users = prepare_users(&client, &target, scenario, open_accounts(scenario, share)?, nonce).await?;
    wait_for_start(share).await?;
    Ok(match search_spec {
        // Each step is judged by the search; the result carries its chosen step's verdict.
        Some(spec) => search::run(scenario, spec, client, target, users).await,
        None => shared(
            judged(open::run(scenario, client, target, users, rate, max_in_flight, share).await, scenario),
            share,
        ),
    })
}

async fn closed_via_api(
    scenario: &Scenario,
    target_url: &str,
    Options { seeding, share, reach }: Options,
    (users, ramp, think_time): (u32, std::time::Duration, std::time::Duration),
) -> Result<LoadResult, LoadError> {
    let target = client::Target::parse_with(target_url, reach)?;
    let client = client::http_client(1);
    client::preflight(&client, &target).await?;
    if seeding == Seeding::ViaApi {
        client::seed_via_api(&client, &target, &scenario.data).await?;
    }
    if scenario.steps.iter().any(|s| s.op.needs_auth()) && scenario.data.users > 0 {
        // Fails clearly before any virtual user starts when seeded users cannot sign in.
        client::login(&client, &target, &ops::seed_email(0)).await?;
    }
    if let Some(s) = share.filter(|s| users.max(1) < s.count) {
        // Refused before the wait, not after it.
        return Err(LoadError::Engine(format!(
            "agent {}/{} has no virtual user: {} has {}; use at most {} agents",
            s.index,
            s.count,
            scenario.name,
            users.max(1),
            users.max(1)
        )));
    }
    wait_for_start(share).await?;
    Ok(shared(judged(closed::run(scenario, &target, users, ramp, think_time, share).await?, scenario), share))
}

/// The seeded accounts an open-model run drives: all of them, or an agent's own (`I, I + N, …`),
/// so that no two agents work on one account's tasks (one would delete what the other reads).
fn open_accounts(scenario: &Scenario, share: Option<AgentShare>) -> Result<Vec<u32>, LoadError> {
    let users = scenario.data.users;
    let Some(share) = share else { return Ok((0..users.max(1)).collect()) };
    let (index, count) = (share.index, share.count.max(1));
    if users == 0 {
        return Ok(vec![index]); // nothing seeded: a user with no account, as alone
    }
    if users < count {
        return Err(LoadError::Engine(format!(
            "{} seeds {users} account(s) and each of {count} agents needs its own; use at most {users} agents",
            scenario.name
        )));
    }
    Ok((index..users).step_by(count as usize).collect())
}

/// Records which share of the run this agent took.
fn shared(mut result: LoadResult, share: Option<AgentShare>) -> LoadResult {
    result.agent = share;
    result
}

/// Latest `--start-at` accepted: agents are started by a script or a Job, not a calendar.
const START_AT_HORIZON_MS: u64 = 3_600_000;

/// Waits for the agents' common start, once this agent is ready to send. An instant already
/// past is refused rather than started late: the agents' schedules would no longer line up.
async fn wait_for_start(share: Option<AgentShare>) -> Result<(), LoadError> {
    let Some(at) = share.and_then(|s| s.start_at_unix_ms) else { return Ok(()) };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    if at < now {
        return Err(LoadError::Engine(format!(
            "--start-at {at} is {} ms past: this agent was ready only at {now}; give every agent a later instant \
             (now + the time to sign its users in)",
            now - at
        )));
    }
    if at - now > START_AT_HORIZON_MS {
        return Err(LoadError::Engine(format!(
            "--start-at {at} is {} s away; expected an instant within the hour",
            (at - now) / 1000
        )));
    }
    tokio::time::sleep(std::time::Duration::from_millis(at - now)).await;
    Ok(())
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
///
/// With `share`, this process is one agent of several: it takes its share of the open model's
/// schedule (every N-th request) or of the closed model's users, starts at the common instant
/// once its users are signed in, and records its share in the result (see `merge`).
pub async fn run(scenario: &Scenario, target_url: &str, options: Options) -> Result<LoadResult, LoadError> {
    let how = options;
    match scenario.load.model {
        scenario::LoadModel::Closed { users, ramp, think_time } => {
            closed_via_api(scenario, target_url, how, (users, ramp, think_time)).await
        }
        scenario::LoadModel::Open { rate, max_in_flight } => {
            open_via_api(scenario, target_url, how, (None, rate, max_in_flight)).await
        }
        scenario::LoadModel::Search(spec) => {
            let first = (Some(spec), scenario::Rate::Fixed(spec.from), spec.max_in_flight);
            open_via_api(scenario, target_url, how, first).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_model_agents_each_drive_accounts_of_their_own() {
        let mut scenario = Scenario::parse(
            "t.toml",
            "name = \"t\"\n[data]\nusers = 4\ntasks_per_user = 2\nseed = 1\n[load]\nmodel = \"open\"\nrate = 10\nduration = \"1s\"\n\
             [[steps]]\nop = \"list_tasks\"\nweight = 1\n",
        )
        .expect("scenario");
        let share = |index, count| Some(AgentShare { index, count, start_at_unix_ms: None });
        assert_eq!(open_accounts(&scenario, None).expect("alone"), [0, 1, 2, 3]);
        let three: Vec<Vec<u32>> = (0..3).map(|i| open_accounts(&scenario, share(i, 3)).expect("ok")).collect();
        assert_eq!(three, [vec![0, 3], vec![1], vec![2]]);
        let refused = open_accounts(&scenario, share(0, 5)).expect_err("more agents than accounts").to_string();
        assert!(refused.contains("use at most 4 agents"), "{refused}");
        scenario.data.users = 0;
        assert_eq!(open_accounts(&scenario, share(2, 5)).expect("nothing seeded"), [2]);
    }
}
