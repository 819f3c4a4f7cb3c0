//! The open-model engine: requests leave on a fixed schedule that never waits for responses, and
//! latency is measured from each request's *intended* send time, so a stalled server shows up
//! in the tail instead of silently slowing the generator (no coordinated omission).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

use crate::client::{HttpClient, Reply, Target, send};
use crate::ops::{Mix, UserState, build, observe};
use crate::record::{ErrorKind, Outcome, Recorder};
use crate::result::{LoadResult, OpenStats};
use crate::scenario::{Rate, Scenario};

/// A send later than this after its intended time counts as late.
const LATE: Duration = Duration::from_millis(1);
/// Requests due while all slots are busy wait in a backlog of this many per slot; beyond it
/// they are dropped (and counted), so a dead-slow target cannot grow memory without bound.
const BACKLOG_PER_SLOT: usize = 64;
/// This many connection failures in a row, with nothing else in between, means the target died.
const DEAD_AFTER_CONNECT_FAILURES: u64 = 200;

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
    users: Vec<Mutex<UserState>>,
    timeout: Duration,
    connect_failures_in_a_row: AtomicU64,
    dead: AtomicBool,
    /// Set by Ctrl-C (SIGINT): stop sending, keep what was measured.
    interrupted: AtomicBool,
}

struct WorkerOutput {
    recorder: Recorder,
    late: u64,
    dropped: u64,
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
) -> LoadResult {
    let schedule = Schedule { warmup: scenario.load.warmup, duration: scenario.load.duration, rate };
    // One worker per core, but never more workers than in-flight slots, so the slots split
    // exactly and the total never exceeds `max_in_flight`.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = cores.min(max_in_flight).max(1);
    let cap = (max_in_flight / workers).max(1);
    let shared = Arc::new(Shared {
        client,
        target: target.clone(),
        mix: Mix::new(&scenario.steps),
        users: users.into_iter().map(Mutex::new).collect(),
        timeout: scenario.load.timeout,
        connect_failures_in_a_row: AtomicU64::new(0),
        dead: AtomicBool::new(false),
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
    let handles: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(worker(w as u64, workers as u64, schedule, start, measure_from, cap, shared.clone())))
        .collect();
    let mut recorder = Recorder::new(measure_from);
    let (mut late, mut dropped) = (0, 0);
    for handle in handles {
        match handle.await {
            Ok(out) => {
                recorder.merge(&out.recorder);
                late += out.late;
                dropped += out.dropped;
            }
            Err(e) => tracing::error!(error = %e, "a load worker failed"),
        }
    }
    on_interrupt.abort();
    let ended = Instant::now();
    let died = shared.dead.load(Ordering::Relaxed);
    let interrupted = shared.interrupted.load(Ordering::Relaxed);
    let measured =
        if died || interrupted { ended.saturating_duration_since(start + schedule.warmup) } else { schedule.duration };
    let mut result = LoadResult::from_recorder(&scenario.name, "open", &target.base, &recorder, measured);
    result.open = Some(OpenStats {
        target_rps: schedule.target_rps(),
        achieved_rps: result.total.rps,
        late_sends: late,
        dropped_sends: dropped,
        max_in_flight,
    });
    if interrupted {
        result.incomplete = Some("interrupted (SIGINT)".to_owned());
    } else if died {
        result.incomplete = Some(format!(
            "the target stopped accepting connections ({DEAD_AFTER_CONNECT_FAILURES} connection failures in a row)"
        ));
    }
    result
}

async fn worker(
    w: u64,
    workers: u64,
    schedule: Schedule,
    start: Instant,
    measure_from: std::time::Instant,
    cap: usize,
    shared: Arc<Shared>,
) -> WorkerOutput {
    let mut out = WorkerOutput { recorder: Recorder::new(measure_from), late: 0, dropped: 0 };
    let mut in_flight = FuturesUnordered::new();
    let mut backlog = std::collections::VecDeque::new();
    let mut n = w;
    loop {
        if shared.dead.load(Ordering::Relaxed) || shared.interrupted.load(Ordering::Relaxed) {
            break;
        }
        let due = schedule.time_of(n).map(|offset| start + offset);
        if due.is_none() && in_flight.is_empty() && backlog.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => out.recorder.record(&outcome),
            () = tokio::time::sleep_until(due.unwrap_or(start)), if due.is_some() => {
                let intended = due.unwrap_or(start);
                if Instant::now().saturating_duration_since(intended) > LATE {
                    out.late += 1;
                }
                if in_flight.len() < cap {
                    in_flight.push(one(shared.clone(), user_of(n, &shared), intended));
                } else if backlog.len() < cap * BACKLOG_PER_SLOT {
                    // Sent late when a slot frees, but still timed from `intended`.
                    backlog.push_back((n, intended));
                } else {
                    out.dropped += 1;
                }
                n += workers;
            }
        }
        while in_flight.len() < cap
            && let Some((m, intended)) = backlog.pop_front()
        {
            out.late += 1;
            in_flight.push(one(shared.clone(), user_of(m, &shared), intended));
        }
    }
    out
}

fn user_of(n: u64, shared: &Shared) -> usize {
    (n as usize) % shared.users.len().max(1)
}

async fn one(shared: Arc<Shared>, user: usize, intended: Instant) -> Outcome {
    let request = {
        let mut state = shared.users[user].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        build(shared.mix.pick(&mut state), &mut state)
    };
    let sent = Instant::now();
    let reply = send(&shared.client, &shared.target, &request, shared.timeout).await;
    let done = Instant::now();
    let error = reply.error(request.expect);
    if error == Some(ErrorKind::Connect) {
        if shared.connect_failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= DEAD_AFTER_CONNECT_FAILURES {
            shared.dead.store(true, Ordering::Relaxed);
        }
    } else {
        shared.connect_failures_in_a_row.store(0, Ordering::Relaxed);
    }
    if let Reply::Answer { status, body } = &reply {
        let mut state = shared.users[user].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        observe(&request, *status, body, &mut state);
    }
    Outcome { op: request.op, intended: intended.into_std(), latency: done - intended, service: done - sent, error }
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
