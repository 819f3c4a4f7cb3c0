//! What a load run measured, as results.json holds it: totals, per-operation figures, the
//! per-second series, the SLO verdict, the open model's bookkeeping, a saturation search's steps,
//! and the merged histograms (HDR V2, deflate-compressed, base64) so runs can be merged and
//! re-analysed. Throughput is goodput: only the answers a step expects count; errors and dropped
//! sends are counted, timed in a histogram of their own, and never make a server look faster.
//!
//! Its own crate so that the report (which never measures) and the load generator (which
//! produces these) share the types without the report compiling Goose, reqwest or hyper.

pub mod merge;
pub mod search;
pub mod slo;

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::slo::SloReport;

/// Highest latency the histograms hold (60 s); anything slower saturates at it.
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// An empty histogram: 1 µs to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; failing here is a programming error.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// How a scenario loaded the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Virtual users looping (Goose): the server sets the rate.
    Closed,
    /// A fixed arrival rate: the schedule sets it.
    Open,
    /// A saturation search: open-model steps up to the SLO's knee.
    Search,
}

impl ModelKind {
    /// Its name in `results.json` and scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Closed => "closed",
            ModelKind::Open => "open",
            ModelKind::Search => "search",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A 4xx answer the step did not expect.
    Status4xx,
    /// A 5xx answer.
    Status5xx,
    /// A 1xx-3xx answer other than the one the step expects.
    UnexpectedStatus,
    /// No answer within the scenario's request timeout.
    Timeout,
    /// The connection could not be made, or was closed or reset before an answer.
    Connect,
    /// The answer could not be read.
    Body,
    /// The answer was not HTTP (a response head that does not parse).
    Protocol,
    /// The answer's body was larger than the generator reads (`MAX_RESPONSE_BYTES`, 1 MiB): it
    /// stopped reading there, so that a broken server cannot make it hold gigabytes.
    TooLarge,
    /// Open model: never sent, because every in-flight slot was busy and the backlog was full
    /// (the server fell behind the schedule). Its latency runs from the intended send to the drop.
    Dropped,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// Figures for one operation, or for all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Figures {
    /// Every measured request: answered as expected, failed, or (open model) dropped.
    pub requests: u64,
    /// Answers the step expected (its status code).
    pub successes: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Goodput: successful answers per second of the measured phase.
    pub rps: f64,
    /// Latency of the successful answers from the intended send time (corrected for
    /// coordinated omission in the open model).
    pub latency_us: Percentiles,
    /// Service time of the successful answers: from the actual send to the response.
    pub service_us: Percentiles,
    /// Latency of the errors (dropped sends and connection failures included) from the
    /// intended send time.
    pub error_latency_us: Percentiles,
    /// Latency of every measured request, successes and errors together: where timeouts (the
    /// slowest requests of all) show. SLO latency objectives are judged on the worse of this and
    /// `latency_us`, so neither slow failures nor fast ones can flatter a server.
    pub all_latency_us: Percentiles,
    /// HDR V2 + deflate, base64: the success latency histogram.
    pub latency_hdr: String,
    /// HDR V2 + deflate, base64: the success service-time histogram.
    pub service_hdr: String,
    /// HDR V2 + deflate, base64: the error latency histogram.
    pub error_hdr: String,
}

/// One whole second of the measured phase, by the time requests *ended*: throughput as the
/// server delivered it (a stall shows as a gap, then a burst). A partial last second is trimmed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Second {
    pub second: u64,
    /// Requests that ended in this second (answers, failures and drops).
    pub requests: u64,
    pub errors: u64,
    /// Percentiles of the successes that ended in this second.
    pub p50_us: u64,
    pub p99_us: u64,
}

impl Second {
    /// Successful answers in this second.
    pub fn goodput(&self) -> f64 {
        self.requests.saturating_sub(self.errors) as f64
    }
}

/// Above this send-lag p99 the open-model engine is said not to keep its schedule, whatever the
/// latency it reports.
pub const GENERATOR_LAG_LIMIT_US: u64 = 1_000;
/// …and above this share of the p99 latency it reports: its own error would be a large part of
/// the tail it attributes to the server.
pub const GENERATOR_LAG_SHARE: f64 = 0.25;

/// Whether an open-model run's send lag makes its latency the generator's as much as the
/// server's (see [`GENERATOR_LAG_LIMIT_US`] and [`GENERATOR_LAG_SHARE`]).
pub fn generator_limited(send_lag_p99_us: u64, latency_p99_us: u64) -> bool {
    send_lag_p99_us > GENERATOR_LAG_LIMIT_US || send_lag_p99_us as f64 > latency_p99_us as f64 * GENERATOR_LAG_SHARE
}

/// Open-model bookkeeping: how well the schedule was kept, and the engine's own error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OpenStats {
    /// Mean target rate over the measured phase (requests per second).
    pub target_rps: f64,
    /// Measured-phase requests the schedule called for (up to the end of the run): sent +
    /// dropped.
    pub scheduled: u64,
    /// Measured-phase requests actually sent.
    pub sent: u64,
    /// Sends per second of the measured phase (what was offered, whatever came back).
    pub offered_rps: f64,
    /// Sends that left more than 1 ms after their intended time (the engine fell behind, or
    /// the request waited for one of `max_in_flight` slots), each counted once; their latency
    /// still counts from the intended time.
    pub late_sends: u64,
    /// Sends that waited for an in-flight slot (the server held `max_in_flight` requests).
    pub queued_sends: u64,
    /// Sends skipped because `max_in_flight` requests were in flight and the backlog was full:
    /// recorded as errors of kind `dropped`.
    pub dropped_sends: u64,
    pub max_in_flight: usize,
    /// Send lag (actual send − intended send) of the sends that did not wait for a slot: the
    /// engine's own pacing error, which is part of every latency it reports.
    pub send_lag_us: Percentiles,
    /// HDR V2 + deflate, base64: the send-lag histogram.
    pub send_lag_hdr: String,
    /// True when the engine did not keep its schedule (see [`generator_limited`]): the latency
    /// then measures the generator too.
    pub generator_limited: bool,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadResult {
    pub scenario: String,
    pub model: ModelKind,
    pub target: String,
    pub measured_secs: f64,
    pub warmup_requests: u64,
    pub total: Figures,
    pub per_op: BTreeMap<String, Figures>,
    pub series: Vec<Second>,
    pub open: Option<OpenStats>,
    /// The scenario's `[slo]`, judged; absent when the scenario states none.
    pub slo: Option<SloReport>,
    /// Set when the run ended early (server died, interrupted): what was measured is kept.
    pub incomplete: Option<String>,
    /// When the measured phase began, in milliseconds since the Unix epoch (so samples taken by
    /// another process can be lined up with it).
    #[serde(default)]
    pub measure_started_unix_ms: Option<u64>,
    /// The load generator's own resident-memory high-water mark (`VmHWM`), read as it finishes
    /// (a sampler outside cannot read it once the process has exited).
    #[serde(default)]
    pub generator_peak_rss_bytes: Option<u64>,
    /// A saturation search (`model = "search"`): every step, the maximum sustainable rate and
    /// what broke. The figures above are then those of the step at that maximum.
    #[serde(default)]
    pub search: Option<crate::search::SearchResult>,
    /// Successful answers per second the server delivered over a window as long as the measured
    /// phase, shifted by the median latency (by completion time, 10 ms bins): unlike `rps`
    /// (answers to the phase's requests, whenever they came), this falls below the offered rate
    /// when the server falls behind, and unlike the per-second series it does not miss the
    /// answers still on their way when the phase ends.
    #[serde(default)]
    pub delivered_rps: Option<f64>,
    /// Written by one of several agents (`--agent I/N`): which share of the run it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<merge::AgentShare>,
    /// Merged from the results of several agents (`taskbench merge`): how they lined up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<merge::MergedAgents>,
}

/// Serializes a histogram as HDR V2 + deflate, base64.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(e) => {
            tracing::error!(error = %e, "serializing a histogram failed");
            String::new()
        }
    }
}

/// A histogram in results.json that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("bad base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("bad HDR histogram: {0}")]
    Hdr(#[from] hdrhistogram::serialization::DeserializeError),
}

/// Reads a histogram written by [`encode_histogram`] (or any HDR V2 base64 encoder).
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
}

impl LoadResult {
    /// Why this run cannot be used as a clean measurement, if it cannot: it ended early, the
    /// open model dropped sends, or more requests failed than the scenario's error budget allows.
    pub fn unclean_because(&self) -> Option<String> {
        if let Some(why) = &self.incomplete {
            return Some(format!("ended early: {why}"));
        }
        if let Some(search) = self.search.as_ref().filter(|s| s.max_sustainable_rps.is_none()) {
            return Some(format!("no rate was sustained: {}", search.conclusion));
        }
        if let Some(open) = self.open.as_ref().filter(|o| o.dropped_sends > 0) {
            return Some(format!(
                "{} of {} scheduled sends were dropped (the server fell behind the schedule)",
                open.dropped_sends, open.scheduled
            ));
        }
        if let Some(check) = self.slo.as_ref().and_then(SloReport::error_budget).filter(|c| !c.pass) {
            return Some(format!("over the error budget: {}", check.describe()));
        }
        None
    }

    /// A plain-text summary table for a terminal.
    pub fn summary_table(&self) -> String {
        let mut out = format!(
            "scenario {} ({} model) against {}: {:.1}s measured{}\n",
            self.scenario,
            self.model,
            self.target,
            self.measured_secs,
            self.incomplete.as_deref().map(|r| format!(", INCOMPLETE: {r}")).unwrap_or_default()
        );
        out.push_str(&format!(
            "{:<12} {:>9} {:>11} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
            "op", "requests", "goodput/s", "errors", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
        ));
        let rows = self.per_op.iter().map(|(k, v)| (k.as_str(), v)).chain([("total", &self.total)]);
        for (name, f) in rows {
            out.push_str(&format!(
                "{:<12} {:>9} {:>11.1} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
                name,
                f.requests,
                f.rps,
                f.errors,
                f.latency_us.p50,
                f.latency_us.p99,
                f.latency_us.p999,
                f.latency_us.max
            ));
        }
        out.push_str("latency is of successful answers; errors are timed apart\n");
        if !self.total.errors_by_kind.is_empty() {
            let kinds: Vec<String> = self.total.errors_by_kind.iter().map(|(k, n)| format!("{k:?} {n}")).collect();
            out.push_str(&format!(
                "errors: {} of {} ({:.3}%): {}; their latency p50 {} µs, p99 {} µs\n",
                self.total.errors,
                self.total.requests,
                self.total.error_rate * 100.0,
                kinds.join(", "),
                self.total.error_latency_us.p50,
                self.total.error_latency_us.p99
            ));
        }
        if let Some(open) = &self.open {
            out.push_str(&format!(
                "open model: target {:.1} rps, offered {:.1}, goodput {:.1}; {} scheduled, {} sent, {} late, {} queued for a slot, {} dropped (max in flight {})\n",
                open.target_rps,
                open.offered_rps,
                self.total.rps,
                open.scheduled,
                open.sent,
                open.late_sends,
                open.queued_sends,
                open.dropped_sends,
                open.max_in_flight
            ));
            out.push_str(&format!(
                "generator send lag: p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs{}\n",
                open.send_lag_us.p50,
                open.send_lag_us.p99,
                open.send_lag_us.p999,
                open.send_lag_us.max,
                if open.generator_limited {
                    "  WARNING: the generator did not keep its schedule (send-lag p99 over 1 ms, or over a quarter of the latency p99): the latency measures it too".to_owned()
                } else {
                    String::new()
                }
            ));
        }
        if let Some(slo) = &self.slo {
            out.push_str(&format!("SLO {}: {}\n", if slo.pass { "met" } else { "BROKEN" }, slo.describe()));
        }
        if let Some(search) = &self.search {
            out.push_str(&search.table());
        }
        if let Some(why) = self.unclean_because() {
            out.push_str(&format!("not a clean run: {why}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_limiting_when_its_lag_is_a_large_part_of_the_tail() {
        assert!(!generator_limited(18, 352), "18 µs of lag under a 352 µs p99");
        assert!(generator_limited(700, 1_100), "most of the p99 could be the generator's");
        assert!(generator_limited(1_500, 50_000), "over 1 ms whatever the latency");
        assert!(!generator_limited(11, 53));
    }

    #[test]
    fn histograms_round_trip_through_base64() {
        let mut h = new_histogram();
        for v in [100, 250, 1_000, 50_000] {
            h.record(v).expect("in range");
        }
        let back = decode_histogram(&encode_histogram(&h)).expect("decodes");
        assert_eq!(back.len(), 4);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn a_damaged_histogram_says_what_is_wrong() {
        assert!(matches!(decode_histogram("not base64!"), Err(HistogramError::Base64(_))));
        let not_hdr = base64::engine::general_purpose::STANDARD.encode(b"hello");
        let err = decode_histogram(&not_hdr).expect_err("not a histogram");
        assert!(matches!(err, HistogramError::Hdr(_)), "{err}");
    }
}
