//! Deciding that the target died mid-run: the one rule both engines apply, while they send (so
//! they stop) and when the run is over (so the result says why it is incomplete).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use taskbench_results::ErrorKind;

use crate::record::Recorder;

/// This many connection failures in a row, across all users or workers and with nothing else in
/// between, means the target died.
pub const DEAD_AFTER_CONNECT_FAILURES: u64 = 200;

/// Watches every answer of a run for a target that stopped accepting connections.
///
/// The rule has two halves because one count cannot serve every rate. While the run goes on,
/// [`DEAD_AFTER_CONNECT_FAILURES`] connection failures in a row declare the target dead at once,
/// so the engines stop sending and the measured phase ends there: at a high rate that takes
/// milliseconds, and no one failure among successes trips it. At a low rate (an open model at
/// tens of requests per second, a closed model with a think time) the same count takes longer
/// than the run, so a target that died would pass for a complete run full of errors; at the end,
/// a last measured second in which most requests could not connect says the same thing.
#[derive(Debug, Default)]
pub(crate) struct Detector {
    connect_failures_in_a_row: AtomicU64,
    dead_at: OnceLock<Instant>,
}

impl Detector {
    /// Counts one finished request (its error, if any) towards the verdict.
    pub(crate) fn note(&self, error: Option<ErrorKind>) {
        if error == Some(ErrorKind::Connect) {
            if self.connect_failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= DEAD_AFTER_CONNECT_FAILURES {
                let _ = self.dead_at.set(Instant::now());
            }
        } else {
            self.connect_failures_in_a_row.store(0, Ordering::Relaxed);
        }
    }

    /// When the target was declared dead while the run went on.
    pub(crate) fn dead_at(&self) -> Option<Instant> {
        self.dead_at.get().copied()
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead_at.get().is_some()
    }

    /// Why the run is incomplete because of the target, if it is: declared dead while running,
    /// or most requests of the last second of the `measured` phase that saw any could not connect.
    pub(crate) fn verdict(&self, recorder: &Recorder, measured: Duration) -> Option<String> {
        if self.is_dead() {
            return Some(format!(
                "the target stopped accepting connections ({DEAD_AFTER_CONNECT_FAILURES} connection failures in a row)"
            ));
        }
        let (requests, failures) = recorder.last_second_within(measured)?;
        (failures * 2 > requests).then(|| {
            format!(
                "the target stopped accepting connections ({failures} of {requests} requests in the last second could not connect)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;
    use crate::scenario::Op;

    #[test]
    fn connection_failures_in_a_row_declare_the_target_dead_and_anything_else_resets_the_count() {
        let detector = Detector::default();
        for _ in 0..DEAD_AFTER_CONNECT_FAILURES - 1 {
            detector.note(Some(ErrorKind::Connect));
        }
        detector.note(Some(ErrorKind::Timeout));
        for _ in 0..DEAD_AFTER_CONNECT_FAILURES - 1 {
            detector.note(Some(ErrorKind::Connect));
        }
        detector.note(None);
        assert!(!detector.is_dead(), "a timeout or an answer in between resets the count");
        let empty = Recorder::new(Instant::now());
        assert_eq!(detector.verdict(&empty, Duration::from_secs(1)), None);
        for _ in 0..DEAD_AFTER_CONNECT_FAILURES {
            detector.note(Some(ErrorKind::Connect));
        }
        assert!(detector.dead_at().is_some());
        assert_eq!(
            detector.verdict(&empty, Duration::from_secs(1)).as_deref(),
            Some("the target stopped accepting connections (200 connection failures in a row)")
        );
    }

    #[test]
    fn a_last_second_of_mostly_connection_failures_means_the_target_died() {
        let start = Instant::now();
        let at = |ms: u64, error: Option<ErrorKind>| Outcome {
            op: Op::Health,
            intended: start + Duration::from_millis(ms),
            latency: Duration::from_micros(100),
            service: Some(Duration::from_micros(100)),
            error,
        };
        let (mut a, mut b) = (Recorder::new(start), Recorder::new(start));
        // A first second of answers, then a second in which 2 of 3 requests could not connect,
        // split across two workers; a straggler after the 2 s phase does not count.
        a.record(&at(100, None));
        a.record(&at(1_100, Some(ErrorKind::Connect)));
        b.record(&at(1_500, Some(ErrorKind::Connect)));
        b.record(&at(1_900, None));
        b.record(&at(2_300, None));
        a.merge(&b);
        let detector = Detector::default();
        assert_eq!(
            detector.verdict(&a, Duration::from_secs(2)).as_deref(),
            Some("the target stopped accepting connections (2 of 3 requests in the last second could not connect)")
        );
        // Half is not most; and a phase cut within its first second looks at that second.
        let mut c = Recorder::new(start);
        c.merge(&a);
        c.record(&at(1_960, None));
        assert_eq!(detector.verdict(&c, Duration::from_secs(2)), None, "2 of 4");
        assert_eq!(detector.verdict(&a, Duration::from_millis(900)), None, "the first second was answered");
    }
}
