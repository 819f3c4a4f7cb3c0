//! The result of one load run: totals, per-operation figures, the per-second series and the
//! merged histograms (HDR V2, deflate-compressed, base64) so runs can be merged and re-analysed.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::record::{ErrorKind, Recorder, new_histogram};

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
    pub requests: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
    pub error_rate: f64,
    pub rps: f64,
    /// Latency from the intended send time (corrected for coordinated omission in the open model).
    pub latency_us: Percentiles,
    /// Service time: from the actual send to the response.
    pub service_us: Percentiles,
    /// HDR V2 + deflate, base64: the latency histogram.
    pub latency_hdr: String,
    /// HDR V2 + deflate, base64: the service-time histogram.
    pub service_hdr: String,
}

/// One second of the measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Second {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Open-model bookkeeping: how well the schedule was kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OpenStats {
    /// Mean target rate over the measured phase (requests per second).
    pub target_rps: f64,
    pub achieved_rps: f64,
    /// Sends that left more than 1 ms after their intended time (the generator fell behind, or
    /// waited for one of `max_in_flight` slots); their latency still counts from the intended time.
    pub late_sends: u64,
    /// Sends skipped because `max_in_flight` requests were in flight and the backlog was full.
    pub dropped_sends: u64,
    pub max_in_flight: usize,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadResult {
    pub scenario: String,
    /// `closed` or `open`.
    pub model: String,
    pub target: String,
    pub measured_secs: f64,
    pub warmup_requests: u64,
    pub total: Figures,
    pub per_op: BTreeMap<String, Figures>,
    pub series: Vec<Second>,
    pub open: Option<OpenStats>,
    /// Set when the run ended early (server died, interrupted): what was measured is kept.
    pub incomplete: Option<String>,
    /// When the measured phase began, in milliseconds since the Unix epoch (so samples taken by
    /// another process can be lined up with it).
    #[serde(default)]
    pub measure_started_unix_ms: Option<u64>,
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

/// Reads a histogram written by [`encode_histogram`] (or any HDR V2 base64 encoder).
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("bad base64: {e}"))?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("bad HDR histogram: {e:?}"))
}

fn figures(
    requests: u64,
    errors: &BTreeMap<ErrorKind, u64>,
    latency: &Histogram<u64>,
    service: &Histogram<u64>,
    secs: f64,
) -> Figures {
    let n_errors = errors.values().sum();
    Figures {
        requests,
        errors: n_errors,
        errors_by_kind: errors.clone(),
        error_rate: if requests == 0 { 0.0 } else { n_errors as f64 / requests as f64 },
        rps: if secs > 0.0 { requests as f64 / secs } else { 0.0 },
        latency_us: Percentiles::of(latency),
        service_us: Percentiles::of(service),
        latency_hdr: encode_histogram(latency),
        service_hdr: encode_histogram(service),
    }
}

impl LoadResult {
    /// Builds the result from merged recordings of a measured phase of length `measured`.
    pub fn from_recorder(scenario: &str, model: &str, target: &str, rec: &Recorder, measured: Duration) -> Self {
        let secs = measured.as_secs_f64();
        let (mut latency, mut service) = (new_histogram(), new_histogram());
        let mut errors = BTreeMap::new();
        let mut per_op = BTreeMap::new();
        for (op, r) in &rec.ops {
            let _ = latency.add(&r.latency);
            let _ = service.add(&r.service);
            for (kind, n) in &r.errors {
                *errors.entry(*kind).or_default() += n;
            }
            per_op.insert(op.name().to_owned(), figures(r.requests, &r.errors, &r.latency, &r.service, secs));
        }
        let series = rec
            .intervals
            .iter()
            .enumerate()
            .map(|(i, s)| Second {
                second: i as u64,
                requests: s.requests,
                errors: s.errors,
                p50_us: if s.latency.is_empty() { 0 } else { s.latency.value_at_quantile(0.5) },
                p99_us: if s.latency.is_empty() { 0 } else { s.latency.value_at_quantile(0.99) },
            })
            .collect();
        LoadResult {
            scenario: scenario.to_owned(),
            model: model.to_owned(),
            target: target.to_owned(),
            measured_secs: secs,
            warmup_requests: rec.warmup_requests,
            total: figures(rec.requests(), &errors, &latency, &service, secs),
            per_op,
            series,
            open: None,
            incomplete: None,
            measure_started_unix_ms: rec.measure_started_unix_ms(),
        }
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
            "{:<12} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
            "op", "requests", "rps", "errors", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
        ));
        let rows = self.per_op.iter().map(|(k, v)| (k.as_str(), v)).chain([("total", &self.total)]);
        for (name, f) in rows {
            out.push_str(&format!(
                "{:<12} {:>9} {:>9.1} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
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
        if let Some(open) = &self.open {
            out.push_str(&format!(
                "open model: target {:.1} rps, achieved {:.1} rps, {} late sends, {} dropped (max in flight {})\n",
                open.target_rps, open.achieved_rps, open.late_sends, open.dropped_sends, open.max_in_flight
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
