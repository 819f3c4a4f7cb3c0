//! The one vocabulary of what is measured and compared. Every figure a summary holds, a paired
//! comparison judges, `taskbench compare` tabulates or `taskbench gate` decides on is a
//! [`Metric`]: its name in `results.json`, what a reader calls it, which way is better, how it is
//! compared (ratio or difference), its unit, and how it is read off a run.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Role, RunRecord};
use crate::stats::Scale;

/// Absolute difference in error rate below which two contenders do not differ in practice:
/// 0.1 percentage point.
pub const ERROR_RATE_TOLERANCE: f64 = 0.001;

/// A figure of a run, named (serde) as `results.json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum Metric {
    /// Throughput: successful answers per second.
    #[serde(rename = "rps")]
    Rps,
    /// Saturation search: the highest rate sustained under the SLO.
    #[serde(rename = "max_sustainable_rps")]
    MaxRps,
    #[serde(rename = "p50_us")]
    P50,
    #[serde(rename = "p90_us")]
    P90,
    #[serde(rename = "p99_us")]
    P99,
    #[serde(rename = "p999_us")]
    P999,
    #[serde(rename = "max_us")]
    Max,
    /// Compared by difference: a baseline of no errors has no ratio.
    #[serde(rename = "error_rate")]
    ErrorRate,
    #[serde(rename = "server_peak_rss_bytes")]
    PeakRss,
    /// Server CPU time per successful request, in µs: the same number as ms per 1000 requests,
    /// the summary's `server_cpu_ms_per_1k_requests`, which is read as this metric too.
    #[serde(rename = "server_cpu_us_per_request", alias = "server_cpu_ms_per_1k_requests")]
    Cpu,
    /// Open model: the engine's send-lag p99 in µs (its own error, part of every latency).
    #[serde(rename = "send_lag_p99_us")]
    SendLagP99,
}

impl Metric {
    /// The metrics `taskbench compare` judges relatively (new / baseline); the error rate is
    /// judged apart, by difference.
    pub const COMPARED: [Metric; 5] = [Metric::Rps, Metric::MaxRps, Metric::P50, Metric::P99, Metric::PeakRss];

    /// The name `results.json` knows it by (its serde name).
    pub fn key(self) -> &'static str {
        match self {
            Metric::Rps => "rps",
            Metric::MaxRps => "max_sustainable_rps",
            Metric::P50 => "p50_us",
            Metric::P90 => "p90_us",
            Metric::P99 => "p99_us",
            Metric::P999 => "p999_us",
            Metric::Max => "max_us",
            Metric::ErrorRate => "error_rate",
            Metric::PeakRss => "server_peak_rss_bytes",
            Metric::Cpu => "server_cpu_us_per_request",
            Metric::SendLagP99 => "send_lag_p99_us",
        }
    }

    /// What a reader calls it, in a sentence.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Rps => "throughput",
            Metric::MaxRps => "maximum sustainable throughput",
            Metric::P50 => "p50 latency",
            Metric::P90 => "p90 latency",
            Metric::P99 => "p99 latency",
            Metric::P999 => "p99.9 latency",
            Metric::Max => "maximum latency",
            Metric::ErrorRate => "error rate",
            Metric::PeakRss => "server peak memory",
            Metric::Cpu => "server CPU per request",
            Metric::SendLagP99 => "send lag p99",
        }
    }

    /// What a table column calls it.
    pub fn short_label(self) -> &'static str {
        match self {
            Metric::Rps => "rps",
            Metric::MaxRps => "max sustainable rps",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::Max => "max",
            Metric::ErrorRate => "error rate",
            Metric::PeakRss => "peak RSS",
            Metric::Cpu => "CPU/request",
            Metric::SendLagP99 => "send lag p99",
        }
    }

    /// Throughput is better higher; latency, errors, CPU and memory are better lower.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Rps | Metric::MaxRps)
    }

    /// By ratio, or (the error rate) by difference.
    pub fn scale(self) -> Scale {
        if self == Metric::ErrorRate { Scale::Absolute } else { Scale::Relative }
    }

    /// The practical threshold on this metric's scale, given the relative one.
    pub fn threshold(self, min_effect: f64) -> f64 {
        if self.scale() == Scale::Absolute { ERROR_RATE_TOLERANCE } else { min_effect }
    }

    /// A value in the metric's unit (req/s, ms, µs, MiB, %).
    pub fn format(self, value: f64) -> String {
        if !value.is_finite() {
            return "–".to_owned();
        }
        match self {
            Metric::Rps | Metric::MaxRps if value >= 100.0 => format!("{} req/s", thousands(value.round())),
            Metric::Rps | Metric::MaxRps => format!("{value:.1} req/s"),
            Metric::P50 | Metric::P90 | Metric::P99 | Metric::P999 | Metric::Max => {
                format!("{:.3} ms", value / 1000.0)
            }
            Metric::Cpu | Metric::SendLagP99 => format!("{value:.1} µs"),
            Metric::PeakRss => format!("{:.1} MiB", value / 1_048_576.0),
            Metric::ErrorRate => format!("{:.3}%", value * 100.0),
        }
    }

    /// The metric's value in `run`, if the run measured it.
    pub fn of(self, run: &RunRecord) -> Option<f64> {
        let load = run.load.as_ref()?;
        let l = &load.total.latency_us;
        Some(match self {
            Metric::Rps => load.total.rps,
            Metric::P50 => l.p50 as f64,
            Metric::P90 => l.p90 as f64,
            Metric::P99 => l.p99 as f64,
            Metric::P999 => l.p999 as f64,
            Metric::Max => l.max as f64,
            Metric::ErrorRate => load.total.error_rate,
            Metric::PeakRss => run.resources.get(&Role::Server)?.peak_rss_bytes as f64,
            // ms per 1000 requests is µs per request.
            Metric::Cpu => run.resources.get(&Role::Server)?.cpu_ms_per_1k_requests?,
            Metric::SendLagP99 => load.open.as_ref()?.send_lag_us.p99 as f64,
            // Only a maximum the server set: a search stopped by its bounds or the generator
            // gives a lower bound, which is no figure to take a median of or compare.
            Metric::MaxRps => load.search.as_ref().filter(|s| s.found_by_server())?.max_sustainable_rps?,
        })
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// 12345 as `12,345`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Metric; 11] = [
        Metric::Rps,
        Metric::MaxRps,
        Metric::P50,
        Metric::P90,
        Metric::P99,
        Metric::P999,
        Metric::Max,
        Metric::ErrorRate,
        Metric::PeakRss,
        Metric::Cpu,
        Metric::SendLagP99,
    ];

    #[test]
    fn the_key_is_the_name_in_results_json_and_the_old_cpu_name_still_reads() {
        for m in ALL {
            assert_eq!(serde_json::to_value(m).expect("serde"), serde_json::Value::String(m.key().to_owned()));
            assert_eq!(serde_json::from_value::<Metric>(m.key().into()).expect("serde"), m);
        }
        assert_eq!(
            serde_json::from_value::<Metric>("server_cpu_ms_per_1k_requests".into()).expect("serde"),
            Metric::Cpu
        );
        assert!(serde_json::from_value::<Metric>("rps_per_core".into()).is_err());
    }

    #[test]
    fn values_are_written_in_their_unit() {
        assert_eq!(Metric::Rps.format(12_345.4), "12,345 req/s");
        assert_eq!(Metric::Rps.format(42.26), "42.3 req/s");
        assert_eq!(Metric::P99.format(1_234.0), "1.234 ms");
        assert_eq!(Metric::Cpu.format(17.25), "17.2 µs");
        assert_eq!(Metric::PeakRss.format(12.5 * 1_048_576.0), "12.5 MiB");
        assert_eq!(Metric::ErrorRate.format(0.0125), "1.250%");
        assert_eq!(Metric::P50.format(f64::NAN), "–");
    }
}
