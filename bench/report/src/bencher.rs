//! Bencher Metric Format (BMF) JSON of a run, so a CI job can track its numbers over time with
//! `bencher run --adapter json --file bencher.json` (<https://bencher.dev/docs/reference/bencher-metric-format/>).

use serde_json::{Map, Value, json};

use crate::metric::Metric;
use crate::model::Results;
use crate::{stats, summary};

/// The Bencher measure slug of each metric. `throughput` is Bencher's built-in measure
/// (operations per second, here requests per second). The others are created on first upload:
/// latency in microseconds (not the built-in `latency`, which is nanoseconds) and peak resident
/// memory of the server process in bytes.
pub fn measure_slug(metric: Metric) -> &'static str {
    match metric {
        Metric::Rps => "throughput",
        Metric::MaxRps => "max-sustainable-throughput",
        Metric::P50 => "latency-p50",
        Metric::P99 => "latency-p99",
        Metric::PeakRss => "peak-rss",
        Metric::ErrorRate => "error-rate",
        Metric::P90 => "latency-p90",
        Metric::P999 => "latency-p999",
        Metric::Max => "latency-max",
        Metric::Cpu => "server-cpu-per-request",
        Metric::SendLagP99 => "send-lag-p99",
    }
}

/// `{ "<scenario>/<framework>": { "<measure>": { "value", "lower_value", "upper_value" } } }`:
/// the median over clean repeats with its order-statistic 95% interval, or its range below 6
/// repeats. A framework without clean runs is left out; with one repeat the bounds equal the value.
pub fn bencher_metric_format(results: &Results) -> Value {
    let mut benchmarks = Map::new();
    for scenario in &results.scenarios {
        for fw in &scenario.frameworks() {
            let mut measures = Map::new();
            for metric in Metric::COMPARED {
                let values = summary::metric_values(scenario, fw, metric);
                let e = stats::estimate(&values);
                if e.n == 0 {
                    continue;
                }
                measures.insert(
                    measure_slug(metric).to_owned(),
                    json!({ "value": e.median, "lower_value": e.ci_low.unwrap_or(e.min), "upper_value": e.ci_high.unwrap_or(e.max) }),
                );
            }
            if !measures.is_empty() {
                benchmarks.insert(format!("{}/{fw}", scenario.name), Value::Object(measures));
            }
        }
    }
    Value::Object(benchmarks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Shape, results};

    #[test]
    fn every_framework_of_every_scenario_has_its_four_measures_with_bounds() {
        let r = results(&["crud-mix", "read-heavy"], &[Shape::new("axum", 1000.0, 800.0)], 3, 1, 5);
        let bmf = bencher_metric_format(&r);
        let keys: Vec<&String> = bmf.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["crud-mix/axum", "read-heavy/axum"]);
        let measures = &bmf["crud-mix/axum"];
        for slug in ["throughput", "latency-p50", "latency-p99", "peak-rss"] {
            let m = &measures[slug];
            let (v, lo, hi) = (m["value"].as_f64(), m["lower_value"].as_f64(), m["upper_value"].as_f64());
            assert!(matches!((v, lo, hi), (Some(v), Some(lo), Some(hi)) if lo <= v && v <= hi), "{slug}: {m}");
        }
        let rps = crate::summary::metric_values(&r.scenarios[0], "axum", Metric::Rps);
        assert_eq!(measures["throughput"]["value"].as_f64(), Some(crate::stats::median(&rps)));
    }
}
