//! Recording: microsecond HDR histograms per operation (successes and errors apart), errors by
//! kind, and per-second intervals by completion time (the result's series, and what the
//! dead-target rule reads), kept per worker and merged at the end (never averages of averages).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use taskbench_results::{ErrorKind, MAX_LATENCY_US, new_histogram};

use crate::scenario::Op;

/// One finished (or dropped) request, as a worker saw it.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub op: Op,
    /// When the request was meant to be sent (open model) or was sent (closed model).
    pub intended: Instant,
    /// From the intended send time to the end of the response (or to the failure, or the
    /// drop): what a user waited.
    pub latency: Duration,
    /// From the actual send to the end of the response: the server's service time. `None` for
    /// a request that was never sent.
    pub service: Option<Duration>,
    pub error: Option<ErrorKind>,
}

#[derive(Debug, Clone)]
pub(crate) struct OpRecord {
    /// Successful answers only: an error answer never makes a server look faster.
    pub(crate) latency: Histogram<u64>,
    pub(crate) service: Histogram<u64>,
    /// Every error, dropped sends and connection failures included, from the intended send.
    pub(crate) error_latency: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) errors: BTreeMap<ErrorKind, u64>,
}

impl Default for OpRecord {
    fn default() -> Self {
        Self {
            latency: new_histogram(),
            service: new_histogram(),
            error_latency: new_histogram(),
            requests: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl OpRecord {
    /// Adds another recording of the same operation (same histogram bounds, so adding cannot fail).
    pub(crate) fn add(&mut self, other: &OpRecord) {
        self.requests += other.requests;
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        let _ = self.error_latency.add(&other.error_latency);
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
    }
}

/// One second of the measured phase, by completion time.
#[derive(Debug, Clone)]
pub(crate) struct Interval {
    /// Requests that ended in this second (answered, failed or dropped).
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// The errors that were connection failures ([`crate::dead_target`] reads them).
    pub(crate) connect_failures: u64,
    /// Latency of the successes that ended in this second.
    pub(crate) latency: Histogram<u64>,
}

impl Default for Interval {
    fn default() -> Self {
        Self { requests: 0, errors: 0, connect_failures: 0, latency: new_histogram() }
    }
}

impl Interval {
    fn add(&mut self, other: &Interval) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.connect_failures += other.connect_failures;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }
}

/// A worker's recorder. Requests meant to start before `measure_from` are warm-up: counted
/// separately and left out of every figure.
#[derive(Debug, Clone)]
pub struct Recorder {
    measure_from: Instant,
    pub(crate) ops: BTreeMap<Op, OpRecord>,
    pub(crate) intervals: Vec<Interval>,
    /// Successes by completion time in [`DELIVERY_BIN`] bins from `measure_from` (the first
    /// hour): what the server delivered when, finer than `intervals`.
    pub(crate) delivered: Vec<u64>,
    pub(crate) warmup_requests: u64,
}

/// Resolution of [`Recorder`]'s delivery bins.
pub const DELIVERY_BIN: Duration = Duration::from_millis(10);
const DELIVERY_BINS_MAX: usize = 360_000;

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_US)
}

impl Recorder {
    /// The start of the measured phase on the wall clock, in ms since the Unix epoch.
    pub fn measure_started_unix_ms(&self) -> Option<u64> {
        let ago = Instant::now().saturating_duration_since(self.measure_from);
        let ahead = self.measure_from.saturating_duration_since(Instant::now());
        let at = std::time::SystemTime::now().checked_sub(ago)?.checked_add(ahead)?;
        u64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()
    }

    pub fn new(measure_from: Instant) -> Self {
        Self { measure_from, ops: BTreeMap::new(), intervals: Vec::new(), delivered: Vec::new(), warmup_requests: 0 }
    }

    /// Whether a request meant for `intended` belongs to the measured phase.
    pub fn measures(&self, intended: Instant) -> bool {
        intended >= self.measure_from
    }

    pub fn record(&mut self, outcome: &Outcome) {
        if !self.measures(outcome.intended) {
            self.warmup_requests += 1;
            return;
        }
        let op = self.ops.entry(outcome.op).or_default();
        op.requests += 1;
        let latency = micros(outcome.latency);
        match outcome.error {
            None => {
                op.latency.saturating_record(latency);
                op.service.saturating_record(micros(outcome.service.unwrap_or(outcome.latency)));
            }
            Some(kind) => {
                op.error_latency.saturating_record(latency);
                *op.errors.entry(kind).or_default() += 1;
            }
        }
        // The series counts what the server delivered, when it delivered it.
        let ended = (outcome.intended + outcome.latency).saturating_duration_since(self.measure_from);
        let bin = usize::try_from(ended.as_millis() / DELIVERY_BIN.as_millis()).unwrap_or(usize::MAX);
        if outcome.error.is_none() && bin < DELIVERY_BINS_MAX {
            if self.delivered.len() <= bin {
                self.delivered.resize(bin + 1, 0);
            }
            self.delivered[bin] += 1;
        }
        let second = usize::try_from(ended.as_secs()).unwrap_or(usize::MAX);
        if second < 24 * 3600 {
            if self.intervals.len() <= second {
                self.intervals.resize_with(second + 1, Interval::default);
            }
            let interval = &mut self.intervals[second];
            interval.requests += 1;
            match outcome.error {
                None => interval.latency.saturating_record(latency),
                Some(kind) => {
                    interval.errors += 1;
                    interval.connect_failures += u64::from(kind == ErrorKind::Connect);
                }
            }
        }
    }

    /// Adds another worker's recording to this one.
    pub fn merge(&mut self, other: &Recorder) {
        for (op, rec) in &other.ops {
            self.ops.entry(*op).or_default().add(rec);
        }
        if self.intervals.len() < other.intervals.len() {
            self.intervals.resize_with(other.intervals.len(), Interval::default);
        }
        for (mine, theirs) in self.intervals.iter_mut().zip(&other.intervals) {
            mine.add(theirs);
        }
        if self.delivered.len() < other.delivered.len() {
            self.delivered.resize(other.delivered.len(), 0);
        }
        for (mine, theirs) in self.delivered.iter_mut().zip(&other.delivered) {
            *mine += theirs;
        }
        self.warmup_requests += other.warmup_requests;
    }

    /// Successful answers per second the server delivered: those that completed within a window
    /// as long as the measured phase, shifted by `lag` (the median latency), so the answers to
    /// the phase's last requests, still on their way when it ends, count, and the warm-up's late
    /// answers at its start do not. A server that keeps up delivers the offered rate; one that
    /// falls behind, its capacity. `None` when nothing was measured.
    pub fn delivered_rps(&self, measured: Duration, lag: Duration) -> Option<f64> {
        let bin = DELIVERY_BIN.as_secs_f64();
        let (from, to) = (lag.as_secs_f64() / bin, (lag + measured).as_secs_f64() / bin);
        if self.delivered.is_empty() || measured.is_zero() {
            return None;
        }
        // Whole bins inside the window, and the overlapping share of the two at its ends.
        let total: f64 = self
            .delivered
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let (lo, hi) = (i as f64, i as f64 + 1.0);
                let overlap = (hi.min(to) - lo.max(from)).clamp(0.0, 1.0);
                *n as f64 * overlap
            })
            .sum();
        Some(total / measured.as_secs_f64())
    }

    pub fn requests(&self) -> u64 {
        self.ops.values().map(|o| o.requests).sum()
    }

    /// Of the seconds a `measured` phase overlaps, the last that saw requests end: how many did,
    /// and how many of them could not connect.
    pub(crate) fn last_second_within(&self, measured: Duration) -> Option<(u64, u64)> {
        let overlapped = usize::try_from(measured.as_secs())
            .unwrap_or(usize::MAX)
            .saturating_add(usize::from(measured.subsec_nanos() > 0));
        let seconds = &self.intervals[..overlapped.min(self.intervals.len())];
        seconds.iter().rev().find(|s| s.requests > 0).map(|s| (s.requests, s.connect_failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(start: Instant, after_ms: u64, latency_us: u64, error: Option<ErrorKind>) -> Outcome {
        Outcome {
            op: Op::Health,
            intended: start + Duration::from_millis(after_ms),
            latency: Duration::from_micros(latency_us),
            service: Some(Duration::from_micros(latency_us / 2)),
            error,
        }
    }

    #[test]
    fn warmup_is_excluded_errors_are_kept_apart_and_workers_merge_exactly() {
        let start = Instant::now();
        let measure_from = start + Duration::from_secs(1);
        let (mut a, mut b) = (Recorder::new(measure_from), Recorder::new(measure_from));
        a.record(&outcome(start, 500, 10_000, None));
        a.record(&outcome(start, 1_100, 100, None));
        b.record(&outcome(start, 2_500, 300, Some(ErrorKind::Status5xx)));
        b.record(&outcome(start, 2_600, 40, Some(ErrorKind::Connect)));
        a.merge(&b);
        assert_eq!((a.requests(), a.warmup_requests), (3, 1));
        let op = &a.ops[&Op::Health];
        assert_eq!(op.latency.len(), 1, "only the success is in the latency histogram");
        assert_eq!(op.latency.max(), op.latency.highest_equivalent(100));
        assert_eq!(op.error_latency.len(), 2, "every error has a latency, connection failures included");
        assert_eq!(op.error_latency.max(), op.error_latency.highest_equivalent(300));
        assert_eq!(op.errors[&ErrorKind::Status5xx], 1);
        assert_eq!(a.intervals.iter().map(|i| i.requests).collect::<Vec<_>>(), [1, 2]);
        assert_eq!((a.intervals[1].errors, a.intervals[1].connect_failures), (2, 1));
        assert_eq!(a.last_second_within(Duration::from_secs(2)), Some((2, 1)));
        assert_eq!(a.last_second_within(Duration::from_millis(500)), Some((1, 0)), "only the seconds measured");
    }

    #[test]
    fn the_series_bins_by_completion_time_so_a_stall_shows() {
        // Four requests meant for the first second; the server stalls and answers them all
        // in the fourth.
        let start = Instant::now();
        let mut r = Recorder::new(start);
        for ms in [0, 250, 500, 750] {
            r.record(&outcome(start, ms, 3_200_000 - ms * 1000, None));
        }
        r.record(&outcome(start, 3_500, 100, None));
        let per_second: Vec<u64> = r.intervals.iter().map(|i| i.requests).collect();
        assert_eq!(per_second, [0, 0, 0, 5], "nothing was delivered during the stall");
    }

    #[test]
    fn delivered_throughput_counts_late_answers_and_sees_a_server_falling_behind() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        // 1,000 req/s for 1 s, each answered in 120 ms: every answer counts, though an eighth of
        // them arrive after the phase.
        let mut keeping_up = Recorder::new(start);
        for i in 0..1_000u64 {
            let intended = start + Duration::from_micros(i * 1_000);
            keeping_up.record(&outcome_at(intended, ms(120)));
        }
        let rps = keeping_up.delivered_rps(Duration::from_secs(1), ms(120)).expect("measured");
        assert!((rps - 1_000.0).abs() < 15.0, "{rps}");
        // 1,000 req/s offered to a server that answers 700/s: answers leave one per 1/700 s.
        let mut behind = Recorder::new(start);
        for i in 0..1_000u64 {
            let intended = start + Duration::from_micros(i * 1_000);
            let done = start + Duration::from_secs_f64((i + 1) as f64 / 700.0);
            behind.record(&outcome_at(intended, done - intended));
        }
        let rps = behind.delivered_rps(Duration::from_secs(1), ms(215)).expect("measured");
        assert!((rps - 700.0).abs() < 15.0, "{rps}");
    }

    fn outcome_at(intended: Instant, latency: Duration) -> Outcome {
        Outcome { op: Op::Json, intended, latency, service: Some(latency), error: None }
    }
}
