//! The open-model engine: requests leave on a fixed schedule that never waits for responses, and
//! latency is measured from each request's *intended* send time, so a stalled server shows up
//! in the tail instead of silently slowing the generator (no coordinated omission).
//!
//! Pacing is what makes those numbers the server's. tokio's timer rounds every deadline up to
//! the next millisecond, so sends paced with it leave in bursts 0–1 ms late, and that lag is
//! counted as server latency. Each worker instead waits on its own `timerfd` armed for the next
//! intended time (`CLOCK_MONOTONIC`, nanoseconds), registered with tokio's reactor:
//! the runtime sleeps in `epoll` until the kernel's high-resolution timer fires, so the engine's
//! CPU stays proportional to the requests it sends (the last [`YIELD_BELOW`] before a send, where
//! arming a timer would cost more than waiting, is waited out by yielding to tokio). Every send's lag
//! (actual − intended) goes into a histogram of its own and is reported beside the latency; a
//! run whose lag p99 exceeds 1 ms or a quarter of its latency p99 is flagged `generator_limited`
//! ([`taskbench_results::generator_limited`]).
//!
//! Every scheduled request of the measured phase is accounted for: answered, failed, or dropped
//! (the backlog was full) and recorded as an error of kind `dropped`, timed from its intended
//! send to the drop.
//!
//! A target that stops accepting connections (the rule both engines share, in
//! [`crate::dead_target`]) ends the run when it is declared dead, and a run whose last measured
//! second was mostly connection failures is marked the same way (at a low rate, failures come too
//! slowly to reach the count in a row): the result keeps what was measured and says why in
//! `incomplete`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::client::{HttpClient, Reply, Target, send};
use crate::dead_target::Detector;
use crate::lock;
use crate::ops::{Mix, UserState, build, observe};
use taskbench_results::{
    ErrorKind, LoadResult, ModelKind, OpenStats, Percentiles, encode_histogram, generator_limited, new_histogram,
};

use crate::record::{Outcome, Recorder, micros};
use crate::scenario::{Rate, Scenario};
use taskbench_results::merge::AgentShare;

/// A send later than this after its intended time counts as late.
const LATE: Duration = Duration::from_millis(1);
/// Requests due while all slots are busy wait in a backlog of this many per slot; beyond it
/// they are dropped (and counted), so a dead-slow target cannot grow memory without bound.
const BACKLOG_PER_SLOT: usize = 64;
/// A send due sooner than this is waited for by yielding to tokio (which polls the sockets in
/// between) instead of arming the timer: arming an hrtimer costs a few µs (a VM exit on
/// virtual machines), more than the wait itself at high rates. So at most this much busy
/// waiting per send (at most 5% of a core at 1,000 req/s), and a worker sending more than
/// 20,000 requests per second busy-waits between all its sends.
const YIELD_BELOW: Duration = Duration::from_micros(50);

/// When each request of the run is due.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub warmup: Duration,
    pub duration: Duration,
    pub rate: Rate,
}

impl Schedule {
    fn warmup_rate(&self) -> f64 {
        match self.rate {
            Rate::Fixed(r) => r,
            Rate::Ramp { from, .. } => from,
        }
    }

    /// Offset from the start of request `n` (0-based, across all workers); `None` past the end.
    pub fn time_of(&self, n: u64) -> Option<Duration> {
        let n = n as f64;
        let (w, r0) = (self.warmup.as_secs_f64(), self.warmup_rate());
        if n < r0 * w {
            return Some(Duration::from_secs_f64(n / r0));
        }
        let m = n - r0 * w;
        let d = self.duration.as_secs_f64();
        let t = match self.rate {
            Rate::Fixed(r) => m / r,
            Rate::Ramp { from, to } => {
                // Requests by time t into a linear ramp: from·t + k·t²/2 with k = (to-from)/d.
                let k = (to - from) / d;
                if k.abs() < 1e-12 { m / from } else { (-from + (from * from + 2.0 * k * m).max(0.0).sqrt()) / k }
            }
        };
        (t < d).then(|| Duration::from_secs_f64(w + t))
    }

    /// Mean target rate over the measured phase.
    pub fn target_rps(&self) -> f64 {
        match self.rate {
            Rate::Fixed(r) => r,
            Rate::Ramp { from, to } => (from + to) / 2.0,
        }
    }
}

struct Shared {
    client: HttpClient,
    target: Target,
    mix: Mix,
    users: Arc<[Mutex<UserState>]>,
    timeout: Duration,
    dead: Detector,
    /// How many agents share the run's schedule (1 when alone).
    agents: u64,
    /// Set by Ctrl-C (SIGINT): stop sending, keep what was measured.
    interrupted: AtomicBool,
}

/// What a worker counted; every counter covers the measured phase only.
struct WorkerOutput {
    recorder: Recorder,
    send_lag: Histogram<u64>,
    scheduled: u64,
    sent: u64,
    late: u64,
    queued: u64,
    dropped: u64,
}

impl WorkerOutput {
    fn merge(&mut self, other: &WorkerOutput) {
        self.recorder.merge(&other.recorder);
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.send_lag.add(&other.send_lag);
        self.scheduled += other.scheduled;
        self.sent += other.sent;
        self.late += other.late;
        self.queued += other.queued;
        self.dropped += other.dropped;
    }
}

/// Waits for instants with the kernel's high-resolution timer (a `timerfd` registered with
/// tokio's reactor, through `tokio-timerfd`) instead of tokio's millisecond wheel.
struct Pacer {
    delay: Option<tokio_timerfd::Delay>,
    /// The deadline the timer is set for and has not fired yet.
    armed: Option<Instant>,
}

impl Pacer {
    fn new() -> Self {
        let delay = tokio_timerfd::Delay::new(std::time::Instant::now())
            .inspect_err(
                |e| tracing::warn!(error = %e, "no timerfd: pacing with tokio's millisecond timer (expect send lag)"),
            )
            .ok();
        Self { delay, armed: None }
    }

    /// Returns at `due` (at once when it has passed). Cancel-safe: a wait cut short by
    /// `select!` resumes on the same armed timer.
    async fn until(&mut self, due: Instant) {
        let now = Instant::now();
        if now >= due {
            return;
        }
        if due - now < YIELD_BELOW {
            while Instant::now() < due {
                tokio::task::yield_now().await;
            }
            return;
        }
        let Some(delay) = self.delay.as_mut() else {
            tokio::time::sleep_until(due).await;
            return;
        };
        if self.armed != Some(due) {
            delay.reset(due.into_std());
            self.armed = Some(due);
        }
        let fired = (&mut *delay).await;
        self.armed = None;
        if fired.is_err() {
            tokio::time::sleep_until(due).await;
        }
    }
}

/// Runs `scenario` (which must be open-model) against `target` with prepared `users`.
/// A target that dies mid-run ends the run early: the result keeps what was measured and says
/// why in `incomplete`.
pub async fn run(
    scenario: &Scenario,
    client: HttpClient,
    target: Target,
    users: Vec<UserState>,
    rate: Rate,
    max_in_flight: usize,
    share: Option<AgentShare>,
) -> LoadResult {
    let users = users.into_iter().map(Mutex::new).collect();
    run_shared(scenario, client, target, users, rate, max_in_flight, share).await
}

/// [`run`] with users that outlive the run: a saturation search runs step after step with the
/// same users, so what one step learns (tasks created, tasks deleted) holds in the next.
pub async fn run_shared(
    scenario: &Scenario,
    client: HttpClient,
    target: Target,
    users: Arc<[Mutex<UserState>]>,
    rate: Rate,
    max_in_flight: usize,
    share: Option<AgentShare>,
) -> LoadResult {
    let schedule = Schedule { warmup: scenario.load.warmup, duration: scenario.load.duration, rate };
    // One worker per core, but never more workers than in-flight slots, so the slots split
    // exactly and the total never exceeds `max_in_flight`.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = cores.min(max_in_flight).max(1);
    let cap = (max_in_flight / workers).max(1);
    // Request n of the schedule is sent by agent n mod N, and there by worker (n div N) mod
    // workers: every agent's workers together send exactly their agent's share, and the agents
    // together the scenario's whole schedule.
    let (agent, agents) = share.map_or((0, 1), |s| (u64::from(s.index), u64::from(s.count.max(1))));
    let shared = Arc::new(Shared {
        client,
        target: target.clone(),
        mix: Mix::new(&scenario.steps),
        users,
        timeout: scenario.load.timeout,
        dead: Detector::default(),
        agents,
        interrupted: AtomicBool::new(false),
    });
    let on_interrupt = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!("interrupted: stopping the run and keeping what was measured");
                shared.interrupted.store(true, Ordering::Relaxed);
            }
        })
    };
    // A short lead so every worker starts on the same clock.
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = (start + schedule.warmup).into_std();
    let handles: Vec<_> = (0..workers as u64)
        .map(|w| {
            let lane = Lane { first: agent + agents * w, stride: agents * workers as u64 };
            tokio::spawn(worker(lane, schedule, start, measure_from, cap, shared.clone()))
        })
        .collect();
    let mut total = WorkerOutput::new(measure_from);
    let mut failed_workers = 0;
    for handle in handles {
        match handle.await {
            Ok(out) => total.merge(&out),
            Err(e) => {
                failed_workers += 1;
                tracing::error!(error = %e, "a load worker failed");
            }
        }
    }
    on_interrupt.abort();
    let ended = Instant::now();
    let died = shared.dead.is_dead();
    let interrupted = shared.interrupted.load(Ordering::Relaxed);
    let measured =
        if died || interrupted { ended.saturating_duration_since(start + schedule.warmup) } else { schedule.duration };
    let mut result =
        crate::result::from_recorder(&scenario.name, ModelKind::Open, &target.base, &total.recorder, measured);
    let send_lag_us = Percentiles::of(&total.send_lag);
    let secs = measured.as_secs_f64();
    result.open = Some(OpenStats {
        target_rps: schedule.target_rps() / agents as f64,
        scheduled: total.scheduled,
        sent: total.sent,
        offered_rps: if secs > 0.0 { total.sent as f64 / secs } else { 0.0 },
        late_sends: total.late,
        queued_sends: total.queued,
        dropped_sends: total.dropped,
        max_in_flight,
        generator_limited: generator_limited(send_lag_us.p99, result.total.latency_us.p99),
        send_lag_us,
        send_lag_hdr: encode_histogram(&total.send_lag),
    });
    if failed_workers > 0 {
        result.incomplete =
            Some(format!("{failed_workers} of {workers} load workers failed: their requests are missing"));
    } else if interrupted {
        result.incomplete = Some("interrupted (SIGINT)".to_owned());
    } else {
        result.incomplete = shared.dead.verdict(&total.recorder, measured);
    }
    result
}

impl WorkerOutput {
    fn new(measure_from: std::time::Instant) -> Self {
        Self {
            recorder: Recorder::new(measure_from),
            send_lag: new_histogram(),
            scheduled: 0,
            sent: 0,
            late: 0,
            queued: 0,
            dropped: 0,
        }
    }

    /// A request that came back (or failed): its outcome, and how its send went.
    fn record(&mut self, done: &Done) {
        if self.recorder.measures(done.outcome.intended) {
            let lag = done.sent.saturating_duration_since(done.outcome.intended.into());
            self.sent += 1;
            self.late += u64::from(lag > LATE);
            // A send that waited for a slot waited for the server, not for the engine.
            if !done.queued {
                self.send_lag.saturating_record(micros(lag));
            }
        }
        self.recorder.record(&done.outcome);
    }
}

/// The requests of the schedule one worker sends: `first`, `first + stride`, …
#[derive(Debug, Clone, Copy)]
struct Lane {
    first: u64,
    stride: u64,
}

async fn worker(
    lane: Lane,
    schedule: Schedule,
    start: Instant,
    measure_from: std::time::Instant,
    cap: usize,
    shared: Arc<Shared>,
) -> WorkerOutput {
    let mut out = WorkerOutput::new(measure_from);
    let mut pacer = Pacer::new();
    let mut in_flight = FuturesUnordered::new();
    let mut backlog = std::collections::VecDeque::new();
    let mut n = lane.first;
    let mut next = schedule.time_of(n).map(|offset| start + offset);
    loop {
        if shared.dead.is_dead() || shared.interrupted.load(Ordering::Relaxed) {
            break;
        }
        if next.is_none() && in_flight.is_empty() && backlog.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            // Sending on time comes first: a due send waits for nothing the engine could defer.
            () = pacer.until(next.unwrap_or(start)), if next.is_some() => {
                let now = Instant::now();
                while let Some(intended) = next.filter(|due| *due <= now) {
                    let measured = out.recorder.measures(intended.into_std());
                    out.scheduled += u64::from(measured);
                    if in_flight.len() < cap {
                        in_flight.push(one(shared.clone(), user_of(n, &shared), intended, false));
                    } else if backlog.len() < cap * BACKLOG_PER_SLOT {
                        // Sent when a slot frees, but still timed from `intended`.
                        out.queued += u64::from(measured);
                        backlog.push_back((n, intended));
                    } else {
                        out.dropped += u64::from(measured);
                        let op = {
                            let mut state = lock(&shared.users[user_of(n, &shared)]);
                            shared.mix.pick(&mut state).op
                        };
                        out.recorder.record(&Outcome {
                            op,
                            intended: intended.into_std(),
                            latency: now.saturating_duration_since(intended),
                            service: None,
                            error: Some(ErrorKind::Dropped),
                        });
                    }
                    n += lane.stride;
                    next = schedule.time_of(n).map(|offset| start + offset);
                }
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => out.record(&done),
        }
        while in_flight.len() < cap
            && let Some((m, intended)) = backlog.pop_front()
        {
            in_flight.push(one(shared.clone(), user_of(m, &shared), intended, true));
        }
    }
    out
}

/// The user that sends request `n`: this agent's users in turn (its requests are `n`, `n + N`,
/// …, so `n / N` counts them).
fn user_of(n: u64, shared: &Shared) -> usize {
    ((n / shared.agents) as usize) % shared.users.len().max(1)
}

/// A finished request and when it actually left.
struct Done {
    outcome: Outcome,
    sent: Instant,
    /// Whether it waited in the backlog for a slot.
    queued: bool,
}

async fn one(shared: Arc<Shared>, user: usize, intended: Instant, queued: bool) -> Done {
    let request = {
        let mut state = lock(&shared.users[user]);
        build(shared.mix.pick(&mut state), &mut state)
    };
    let sent = Instant::now();
    let reply = send(&shared.client, &shared.target, &request, shared.timeout).await;
    let done = Instant::now();
    let error = reply.error(request.expect);
    shared.dead.note(error);
    if let Reply::Answer { status, body } = &reply {
        observe(&request, *status, body, &mut lock(&shared.users[user]));
    }
    let outcome = Outcome {
        op: request.op,
        intended: intended.into_std(),
        latency: done - intended,
        service: Some(done - sent),
        error,
    };
    Done { outcome, sent, queued }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spaces_requests_by_rate_and_ends_on_time() {
        let s = Schedule { warmup: Duration::from_secs(1), duration: Duration::from_secs(2), rate: Rate::Fixed(100.0) };
        assert_eq!(s.time_of(0), Some(Duration::ZERO));
        assert_eq!(s.time_of(50), Some(Duration::from_millis(500)));
        assert_eq!(s.time_of(150), Some(Duration::from_millis(1500)));
        assert_eq!(s.time_of(299), Some(Duration::from_millis(2990)));
        assert_eq!(s.time_of(300), None);
        let ramp = Schedule {
            warmup: Duration::ZERO,
            duration: Duration::from_secs(10),
            rate: Rate::Ramp { from: 100.0, to: 300.0 },
        };
        // Requests in a linear ramp from 100 to 300 rps over 10 s: 2000 in all, 750 in the first 5 s.
        let at_5s = ramp.time_of(750).expect("in range").as_secs_f64();
        assert!((at_5s - 5.0).abs() < 1e-6, "{at_5s}");
        assert!(ramp.time_of(1999).is_some() && ramp.time_of(2001).is_none());
    }
}
