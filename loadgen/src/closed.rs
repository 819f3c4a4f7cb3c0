//! The closed model through Goose: `users` virtual users, started over `ramp`, each signing in
//! once and then looping over the weighted steps, waiting for every answer before the next
//! request (and `think_time` after it).
//!
//! Goose schedules the users, their transactions and their wait times; the requests themselves
//! go through the open model's hyper client ([`crate::client::send`]) and are timed here in
//! microseconds into a [`Recorder`] kept in the user's Goose session data. Goose's own request
//! path (a reqwest client per user, a metrics message per request and per transaction to its
//! aggregator, millisecond timings) cost about as much CPU per request as the servers being
//! measured, which made the load generator the bottleneck; it is bypassed and Goose's metrics
//! are turned off. Each user hands its recorder over when it stops (its `on_stop` transaction)
//! and the recorders are merged into the result. The transactions are closures over one per-run
//! [`Arc`], so runs in one process never share state through a global.
//!
//! Timeline of a run, from the instant Goose starts its attack (`GooseUser::started`):
//!
//! - the users start over `ramp`, each signing in once (not recorded);
//! - the warm-up lasts the scenario's `warmup`, or the ramp when that is longer, so the
//!   measured phase always runs with every user started; requests sent during the warm-up are
//!   counted apart ([`LoadResult::warmup_requests`]);
//! - the measured phase lasts exactly the scenario's `duration`: requests sent in it are
//!   recorded, and users send nothing after it;
//! - Goose only takes a whole-second run time, counted after the ramp, so it is rounded *up*
//!   (with a 250 ms margin for Goose's own scheduling): the run lasts up to ~1.25 s longer
//!   than warm-up plus duration, with the users idle at the end. The measured duration
//!   reported is the measured phase actually covered: `duration`, or less when the run ended
//!   early.
//!
//! A target that stops accepting connections (the rule both engines share, in
//! [`crate::dead_target`]) ends the measured phase when it is declared dead: users stop sending,
//! Goose's run time still ends the run, and the result keeps what was measured and says why in
//! `incomplete`. A run whose last measured second was mostly connection failures is marked the
//! same way (with a think time, failures come too slowly to reach the count in a row).
//!
//! Goose is configured quietly (no printed metrics, report, log files or Controller). Two of its
//! effects are process-wide and cannot be turned off: on its first run it installs a `log`
//! logger (warnings, one per failed request, to stderr) unless the process has one already,
//! and a Ctrl-C handler that stops the run (a second Ctrl-C exits the process). Think time is
//! Goose's wait between transactions, in whole milliseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::goose::Scenario as GooseScenario;
use goose::prelude::{
    GooseAttack, GooseCoordinatedOmissionMitigation, GooseError, GooseUser, Transaction, TransactionError,
    TransactionFunction, TransactionResult,
};

use crate::client::{HttpClient, Reply, Target};
use crate::dead_target::Detector;
use crate::ops::{ApiRequest, Mix, UserState, build, observe, seed_task_number};
use taskbench_results::merge::AgentShare;
use taskbench_results::{LoadResult, ModelKind};

use crate::record::{Outcome, Recorder};
use crate::scenario::{DataSpec, Op, Scenario};
use crate::{LoadError, lock};

/// Added to warm-up plus duration before rounding Goose's run time up to whole seconds, so
/// Goose's own scheduling never cuts the measured phase short.
const END_MARGIN: Duration = Duration::from_millis(250);
/// How long an idle user (measured phase over, or target dead) sleeps before Goose asks again.
const IDLE: Duration = Duration::from_millis(20);

/// When things happen in a closed-model run, and how that maps onto Goose's settings: the
/// warm-up, the measured phase, how fast users start, Goose's whole-second run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    /// The warm-up used: the scenario's, or the ramp when that is longer.
    pub warmup: Duration,
    /// The measured phase.
    pub duration: Duration,
    /// Users Goose starts per second (all of them within 1 ms when the ramp is 0).
    pub increase_rate: f64,
    /// Goose's run time in whole seconds, which Goose counts after the ramp.
    pub run_time_secs: u64,
}

impl Timeline {
    pub fn new(users: u32, ramp: Duration, warmup: Duration, duration: Duration) -> Self {
        let ramp = ramp.max(Duration::from_millis(1));
        let warmup = warmup.max(ramp);
        let after_ramp = (warmup + duration + END_MARGIN).saturating_sub(ramp);
        let run_time_secs = (after_ramp.as_secs() + u64::from(after_ramp.subsec_nanos() > 0)).max(1);
        Self { warmup, duration, increase_rate: f64::from(users.max(1)) / ramp.as_secs_f64(), run_time_secs }
    }
}

/// Which seeded account virtual user `vu` signs in as. Users beyond `data.users` share
/// accounts; each sharer gets its own RNG and register nonce, and a share of the account's
/// seeded tasks, so sharers never delete each other's tasks or register the same email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    account: u32,
    /// Which of the account's sharers this user is (0 for the first).
    lap: u32,
    /// How many users share the account.
    sharers: u32,
}

impl Identity {
    fn of(vu: u32, users: u32, data_users: u32) -> Self {
        if data_users == 0 {
            return Self { account: vu, lap: 0, sharers: 1 };
        }
        let account = vu % data_users;
        let sharers = users / data_users + u32::from(account < users % data_users);
        Self { account, lap: vu / data_users, sharers: sharers.max(1) }
    }

    /// The first sharer is exactly the open model's user `account`.
    fn state(self, seed: u64, nonce: u64) -> UserState {
        let lap = u64::from(self.lap);
        UserState::seeded(self.account, seed ^ lap.wrapping_mul(0x9E37_79B9_7F4A_7C15), nonce.wrapping_add(lap))
    }

    /// The tasks this user may work on, from its account's listing. A user alone on its
    /// account takes them all, as in the open model. Sharers split the *seeded* tasks by their
    /// number and leave the others alone: those may be another sharer's, created in this run,
    /// and one user deleting a task another still reads or updates would be a spurious 404.
    fn share_of(self, listing: &[u8]) -> Vec<String> {
        let Ok(serde_json::Value::Array(tasks)) = serde_json::from_slice::<serde_json::Value>(listing) else {
            return Vec::new();
        };
        let mine = |task: &serde_json::Value| {
            if self.sharers <= 1 {
                return true;
            }
            let number = task["title"].as_str().and_then(seed_task_number);
            number.is_some_and(|n| n % u64::from(self.sharers) == u64::from(self.lap))
        };
        tasks.iter().filter(|t| mine(t)).filter_map(|t| t["id"].as_str().map(str::to_owned)).collect()
    }
}

/// One user's state, kept in its Goose session data.
#[derive(Debug, Clone)]
struct Worker {
    identity: Identity,
    user: UserState,
    recorder: Recorder,
}

/// Everything one run's users share.
#[derive(Debug)]
struct Run {
    client: HttpClient,
    target: Target,
    mix: Mix,
    data: DataSpec,
    /// Virtual users of the whole run, all agents together.
    users: u32,
    /// This agent's index and the number of agents: its user `k` is the run's user
    /// `index + count * k`.
    agent: (u32, u32),
    needs_login: bool,
    nonce: u64,
    timeout: Duration,
    timeline: Timeline,
    /// When Goose started the attack (every user's `started`).
    started: OnceLock<Instant>,
    dead: Detector,
    first_stop: Mutex<Option<Instant>>,
    setup_failures: AtomicU64,
    /// The recorders the users handed over when they stopped.
    reports: Mutex<Vec<Recorder>>,
}

impl Run {
    /// The measured phase: from the end of the warm-up for `duration`.
    fn window(&self) -> Option<(Instant, Instant)> {
        let from = *self.started.get()? + self.timeline.warmup;
        Some((from, from + self.timeline.duration))
    }
}

/// Runs `scenario` as a closed model with Goose: `users` virtual users started over `ramp`,
/// pausing `think_time` between steps, against `target` (already seeded). Best on a
/// multi-thread tokio runtime: Goose runs each user as a task on the current runtime.
pub async fn run(
    scenario: &Scenario,
    target: &Target,
    users: u32,
    ramp: Duration,
    think_time: Duration,
    share: Option<AgentShare>,
) -> Result<LoadResult, LoadError> {
    let total = users.max(1);
    // Agent I of N runs the run's users I, I + N, I + 2N, …: each user exactly once overall.
    let agent = share.map_or((0, 1), |s| (s.index, s.count.max(1)));
    let users = total / agent.1 + u32::from(agent.0 < total % agent.1);
    if users == 0 {
        return Err(LoadError::Engine(format!(
            "agent {}/{} has no virtual user: {} has {total}; use at most {total} agents",
            agent.0, agent.1, scenario.name
        )));
    }
    let timeline = Timeline::new(users, ramp, scenario.load.warmup, scenario.load.duration);
    let run = Arc::new(Run {
        client: crate::client::http_client(users as usize),
        target: target.clone(),
        mix: Mix::new(&scenario.steps),
        data: scenario.data,
        users: total,
        agent,
        needs_login: scenario.steps.iter().any(|s| s.op.needs_auth()),
        nonce: rand::random(),
        timeout: scenario.load.timeout,
        timeline,
        started: OnceLock::new(),
        dead: Detector::default(),
        first_stop: Mutex::new(None),
        setup_failures: AtomicU64::new(0),
        reports: Mutex::new(Vec::new()),
    });
    let goose_error = |e: GooseError| LoadError::Engine(format!("the Goose run of {} failed: {e}", scenario.name));
    let mut users_scenario = GooseScenario::new(&scenario.name)
        .register_transaction(Transaction::new(on_start(&run)).set_name("sign in").set_on_start())
        .register_transaction(Transaction::new(on_step(&run)).set_name("step"))
        .register_transaction(Transaction::new(on_stop(&run)).set_name("hand over").set_on_stop());
    if !think_time.is_zero() {
        users_scenario = users_scenario.set_wait_time(think_time, think_time).map_err(goose_error)?;
    }
    GooseAttack::initialize_with_config(configuration(&timeline, target, users))
        .map_err(goose_error)?
        .register_scenario(users_scenario)
        .execute()
        .await
        .map_err(goose_error)?;

    let Some((from, end)) = run.window() else {
        return Err(LoadError::Engine(format!("the Goose run of {} started no user", scenario.name)));
    };
    let reports = std::mem::take(&mut *lock(&run.reports));
    let mut merged = Recorder::new(from);
    for recorder in &reports {
        merged.merge(recorder);
    }
    let stopped = [Some(end), run.dead.dead_at(), *lock(&run.first_stop)].into_iter().flatten().min().unwrap_or(end);
    let measured = stopped.saturating_duration_since(from).min(timeline.duration);
    let mut result = crate::result::from_recorder(&scenario.name, ModelKind::Closed, &target.base, &merged, measured);
    result.incomplete = run.dead.verdict(&merged, measured).or_else(|| {
        if reports.len() < users as usize {
            Some(format!(
                "{} of {users} virtual users did not hand over their measurements",
                users as usize - reports.len()
            ))
        } else if measured + Duration::from_millis(50) < timeline.duration {
            Some(format!(
                "the run ended after {:.1}s of the {:.1}s measured phase",
                measured.as_secs_f64(),
                timeline.duration.as_secs_f64()
            ))
        } else {
            None
        }
    });
    let setup_failures = run.setup_failures.load(Ordering::Relaxed);
    if setup_failures > 0 {
        tracing::warn!(setup_failures, "some virtual users could not sign in when they started");
    }
    Ok(result)
}

/// Goose, quiet: no metrics at all (requests are timed here, see the module doc), no report,
/// no log file, no Controller; Goose's own coordinated-omission backfill off (the closed model
/// is measured as it is).
fn configuration(timeline: &Timeline, target: &Target, users: u32) -> GooseConfiguration {
    let mut config = GooseConfiguration::default();
    config.host = Some(target.base.clone());
    config.users = Some(users as usize);
    config.increase_rate = Some(timeline.increase_rate.to_string());
    config.run_time = Some(timeline.run_time_secs.to_string());
    config.quiet = 1;
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.no_telnet = true;
    config.websocket = false;
    config.no_gzip = true;
    config.no_metrics = true;
    config.co_mitigation = Some(GooseCoordinatedOmissionMitigation::Disabled);
    config
}

fn on_start(run: &Arc<Run>) -> TransactionFunction {
    let run = run.clone();
    Arc::new(move |user| {
        let run = run.clone();
        Box::pin(async move { start_user(&run, user).await })
    })
}

fn on_step(run: &Arc<Run>) -> TransactionFunction {
    let run = run.clone();
    Arc::new(move |user| {
        let run = run.clone();
        Box::pin(async move { step(&run, user).await })
    })
}

fn on_stop(run: &Arc<Run>) -> TransactionFunction {
    let run = run.clone();
    Arc::new(move |user| {
        let run = run.clone();
        Box::pin(async move {
            stop_user(&run, user);
            Ok(())
        })
    })
}

/// A user starts: it signs in once as its seeded account and learns its tasks.
async fn start_user(run: &Run, user: &mut GooseUser) -> TransactionResult {
    let started = *run.started.get_or_init(|| user.started);
    let local = u32::try_from(user.weighted_users_index).unwrap_or(u32::MAX);
    let vu = run.agent.0.saturating_add(run.agent.1.saturating_mul(local));
    let identity = Identity::of(vu, run.users, run.data.users);
    let mut state = identity.state(run.data.seed, run.nonce);
    if run.needs_login && run.data.users > 0 {
        match crate::client::sign_in(&run.client, &run.target, &mut state).await {
            Ok(Some(listing)) if identity.sharers > 1 => state.task_ids = identity.share_of(&listing),
            Ok(_) => {}
            Err(e) => {
                run.setup_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(email = %state.email, error = %e, "a virtual user could not sign in; its steps will fail");
            }
        }
    }
    let recorder = Recorder::new(started + run.timeline.warmup);
    user.set_session_data(Worker { identity, user: state, recorder });
    Ok(())
}

/// One step of a user's loop: pick, build, send, learn, record.
async fn step(run: &Run, user: &mut GooseUser) -> TransactionResult {
    let window = run.window().filter(|&(_, end)| !run.dead.is_dead() && Instant::now() < end);
    let Some((_, end)) = window else {
        tokio::time::sleep(IDLE).await;
        return Ok(());
    };
    let request = match user.get_session_data_mut::<Worker>() {
        Some(worker) => build(run.mix.pick(&mut worker.user), &mut worker.user),
        None => return Err(Box::new(TransactionError::Custom("a virtual user has no session".into()))),
    };
    let (reply, sent, latency) = send(run, &request, run.timeout).await;
    let error = reply.error(request.expect);
    run.dead.note(error);
    if let Some(worker) = user.get_session_data_mut::<Worker>() {
        if let Reply::Answer { status, body } = &reply {
            let knew_none = worker.user.task_ids.is_empty();
            observe(&request, *status, body, &mut worker.user);
            // A user that knows no task learns the listed ones; sharers take only their share.
            if knew_none && request.op == Op::ListTasks && worker.identity.sharers > 1 {
                worker.user.task_ids = worker.identity.share_of(body);
            }
        }
        if sent < end {
            worker.recorder.record(&Outcome { op: request.op, intended: sent, latency, service: Some(latency), error });
        }
    }
    Ok(())
}

/// A user stops: it hands its measurements over.
fn stop_user(run: &Run, user: &mut GooseUser) {
    let now = Instant::now();
    {
        let mut first = lock(&run.first_stop);
        if first.is_none_or(|t| now < t) {
            *first = Some(now);
        }
    }
    if let Some(worker) = user.get_session_data_mut::<Worker>() {
        let measure_from = run.window().map_or(now, |(from, _)| from);
        let recorder = std::mem::replace(&mut worker.recorder, Recorder::new(measure_from));
        lock(&run.reports).push(recorder);
    }
}

/// Sends `req` through the run's hyper client and reads the whole answer, bounded by
/// `timeout`: the reply, when sending started, and how long it took.
async fn send(run: &Run, req: &ApiRequest, timeout: Duration) -> (Reply, Instant, Duration) {
    let sent = Instant::now();
    let reply = crate::client::send(&run.client, &run.target, req, timeout).await;
    (reply, sent, sent.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goose_run_time_is_whole_seconds_rounded_up_and_the_ramp_fits_in_the_warmup() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // 1 s warm-up + 2 s measured + margin, no ramp: 4 whole seconds after a 1 ms ramp.
        let timeline = Timeline::new(4, Duration::ZERO, s(1), s(2));
        assert_eq!((timeline.warmup, timeline.duration, timeline.run_time_secs), (s(1), s(2), 4));
        assert_eq!(timeline.increase_rate, 4000.0, "every user within 1 ms");
        // A 2 s ramp inside a 5 s warm-up: Goose runs 2 s of ramp, then ceil(3 + 20 + 0.25) s.
        let timeline = Timeline::new(32, s(2), s(5), s(20));
        assert_eq!((timeline.warmup, timeline.run_time_secs, timeline.increase_rate), (s(5), 24, 16.0));
        // A ramp longer than the warm-up extends it: measuring starts with every user running.
        let timeline = Timeline::new(8, s(3), s(1), ms(1500));
        assert_eq!((timeline.warmup, timeline.run_time_secs), (s(3), 2));
        // Never less than a second.
        assert_eq!(Timeline::new(1, Duration::ZERO, Duration::ZERO, ms(1)).run_time_secs, 1);
    }

    #[test]
    fn users_sharing_an_account_split_its_tasks_and_differ() {
        assert_eq!(Identity::of(3, 4, 10), Identity { account: 3, lap: 0, sharers: 1 });
        // 5 users on 2 accounts: account 0 has users 0, 2, 4; account 1 has users 1, 3.
        assert_eq!(Identity::of(4, 5, 2), Identity { account: 0, lap: 2, sharers: 3 });
        assert_eq!(Identity::of(3, 5, 2), Identity { account: 1, lap: 1, sharers: 2 });
        assert_eq!(Identity::of(7, 8, 0), Identity { account: 7, lap: 0, sharers: 1 });

        let (first, second) = (Identity::of(0, 4, 2), Identity::of(2, 4, 2));
        let (mut a, mut b) = (first.state(42, 7), second.state(42, 7));
        assert_eq!(a.email, b.email, "same seeded account");
        let listing = serde_json::json!([
            {"id": "s0", "title": "seed task 0 of user 0 (seed 42)"},
            {"id": "l1", "title": "load task 3"},
            {"id": "s1", "title": "seed task 1 of user 0 (seed 42)"},
            {"id": "s2", "title": "seed task 2 of user 0 (seed 42)"},
        ])
        .to_string();
        a.task_ids = first.share_of(listing.as_bytes());
        b.task_ids = second.share_of(listing.as_bytes());
        assert_eq!(a.task_ids, ["s0", "s2"]);
        assert_eq!(b.task_ids, ["s1"]);
        let alone = Identity::of(0, 1, 2).share_of(listing.as_bytes());
        assert_eq!(alone, ["s0", "l1", "s1", "s2"], "a user alone on its account knows every task");

        // Their choices differ, and the first sharer is the open model's user.
        let steps = [crate::scenario::Step { op: Op::Register, weight: 1, params: Default::default() }];
        let mix = Mix::new(&steps);
        let (ra, rb) = (build(mix.pick(&mut a), &mut a), build(mix.pick(&mut b), &mut b));
        assert_ne!(ra.body, rb.body, "no two users register the same email");
        let mut open = UserState::seeded(0, 42, 7);
        assert_eq!(build(mix.pick(&mut open), &mut open).body, ra.body);
    }
}
