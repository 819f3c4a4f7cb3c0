//! Turns a results document into what people read: `report.md`, a self-contained `report.html`
//! with the charts inlined, `charts/*.svg`, and the short table the CLI prints after a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::charts::{self, Chart, Palette, fmt_ms};
use crate::document::{to_html, to_markdown};
use crate::model::{Estimate, Results, ScenarioResult};

mod sections;

use sections::document;

/// The files [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: Vec<PathBuf>,
}

impl Rendered {
    /// Every file written.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        [self.markdown.as_path(), self.html.as_path()].into_iter().chain(self.charts.iter().map(PathBuf::as_path))
    }
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("writing {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("drawing the chart \"{chart}\": {message}")]
    Chart { chart: String, message: String },
}

/// Writes `report.md`, `report.html` and `charts/*.svg` into `dir` from `results` alone.
pub fn write_report(results: &Results, dir: &Path) -> Result<Rendered, RenderError> {
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|source| RenderError::Io { path: charts_dir.clone(), source })?;
    let palette = palette(results);
    let mut svgs = BTreeMap::new();
    let mut chart_files = Vec::new();
    for scenario in &results.scenarios {
        let drawn = charts::scenario_charts(scenario, &palette)
            .map_err(|(chart, message)| RenderError::Chart { chart, message })?;
        for chart in drawn {
            let rel = chart_path(scenario, &chart);
            let path = dir.join(&rel);
            std::fs::write(&path, &chart.svg).map_err(|source| RenderError::Io { path: path.clone(), source })?;
            chart_files.push(path);
            svgs.insert(rel, chart.svg);
        }
    }
    let blocks = document(results);
    let write = |name: &str, content: String| {
        let path = dir.join(name);
        std::fs::write(&path, content).map(|()| path.clone()).map_err(|source| RenderError::Io { path, source })
    };
    let markdown = write("report.md", to_markdown(&blocks))?;
    let html = write("report.html", to_html(&format!("taskbench report {}", results.id), &blocks, &svgs))?;
    Ok(Rendered { markdown, html, charts: chart_files })
}

/// The report as Markdown (what `report.md` holds).
pub fn markdown(results: &Results) -> String {
    to_markdown(&document(results))
}

/// Frameworks in the order the run was configured with, then any others found in its runs.
fn palette(results: &Results) -> Palette {
    let runs = results.scenarios.iter().flat_map(|s| &s.runs).map(|r| &r.framework);
    Palette(crate::model::first_seen(runs, results.config.frameworks.clone()))
}

/// Frameworks of a scenario in palette order.
fn frameworks(results: &Results, scenario: &ScenarioResult) -> Vec<String> {
    palette(results).0.into_iter().filter(|f| scenario.runs.iter().any(|r| &r.framework == f)).collect()
}

/// Scenario names become file names: anything but `[A-Za-z0-9_-]` becomes `_`.
fn file_stem(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

const CHART_KINDS: [(&str, &str); 6] = [
    ("pairs", "Paired comparison: each pair against the threshold band"),
    ("latency", "Latency percentile spectrum"),
    ("throughput", "Throughput over time"),
    ("memory", "Server memory over time"),
    ("cpu", "CPU use over time"),
    ("rps", "Goodput (successful responses per second): median, 95% CI or range, each repeat"),
];

fn chart_path(scenario: &ScenarioResult, chart: &Chart) -> String {
    format!("charts/{}-{}.svg", file_stem(&scenario.name), chart.kind)
}

fn mib(bytes: f64) -> String {
    if bytes.is_finite() { format!("{:.1}", bytes / 1_048_576.0) } else { "–".to_owned() }
}

fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() { format!("{v:.decimals$}") } else { "–".to_owned() }
}

fn us_ms(e: &Estimate) -> String {
    fmt_ms(e.median / 1000.0)
}

fn percent(rate: f64) -> String {
    if rate.is_finite() { format!("{:.3}%", rate * 100.0) } else { "–".to_owned() }
}

/// `median (95% CI low–high)`, or `median (range min–max)` below 6 repeats, where no 95%
/// interval of a median exists.
fn with_ci(e: &Estimate, decimals: usize) -> String {
    match (e.ci_low, e.ci_high) {
        _ if e.n < 2 => num(e.median, decimals),
        (Some(lo), Some(hi)) => {
            format!("{} (95% CI {}–{})", num(e.median, decimals), num(lo, decimals), num(hi, decimals))
        }
        _ => format!("{} (range {}–{})", num(e.median, decimals), num(e.min, decimals), num(e.max, decimals)),
    }
}

/// A short plain-text table per scenario, for the end of a run in a terminal.
pub fn terminal_summary(results: &Results) -> String {
    let mut out = String::new();
    if let Some(reason) = &results.incomplete {
        let _ = writeln!(out, "INCOMPLETE run: {reason}");
    }
    for scenario in &results.scenarios {
        let _ = writeln!(
            out,
            "\n{} ({} model, {} s measured × {} repeats)",
            scenario.name, scenario.model, scenario.duration_secs, results.config.repeats
        );
        let _ = writeln!(
            out,
            "{:<12} {:>28} {:>8} {:>8} {:>9} {:>9} {:>8} {:>13} {:>10}",
            "framework",
            "goodput/s median [min–max]",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "errors",
            "SLO met",
            "peak RSS MiB",
            "lag p99 ms"
        );
        for fw in frameworks(results, scenario) {
            let s = scenario.summary.as_ref().and_then(|s| s.frameworks.iter().find(|f| f.framework == fw));
            let Some(s) = s else {
                let _ = writeln!(out, "{fw:<12} no clean runs");
                continue;
            };
            let rps = format!("{} [{}–{}]", num(s.rps.median, 1), num(s.rps.min, 1), num(s.rps.max, 1));
            let _ = writeln!(
                out,
                "{fw:<12} {rps:>28} {:>8} {:>8} {:>9} {:>9} {:>8} {:>13} {:>10}",
                us_ms(&s.p50_us),
                us_ms(&s.p99_us),
                us_ms(&s.p999_us),
                percent(s.error_rate.median),
                sections::slo_tally(s.slo.as_ref()),
                s.server_peak_rss_bytes.as_ref().map_or("–".to_owned(), |e| mib(e.median)),
                s.send_lag_p99_us.as_ref().map_or("–".to_owned(), us_ms)
            );
        }
        if scenario.model == crate::model::ModelKind::Search {
            for fw in frameworks(results, scenario) {
                let e = scenario
                    .summary
                    .as_ref()
                    .and_then(|s| s.frameworks.iter().find(|f| f.framework == fw))
                    .and_then(|f| f.max_sustainable_rps);
                let _ = writeln!(
                    out,
                    "{fw:<12} max sustainable throughput {} req/s",
                    e.as_ref().map_or("–".to_owned(), |e| with_ci(e, 0))
                );
                for run in scenario.runs.iter().filter(|r| r.framework == fw) {
                    if let Some(s) = run.load.as_ref().and_then(|l| l.search.as_ref()) {
                        let limit: String =
                            run.bottlenecks.iter().map(|b| format!(" [limited by {}]", b.role)).collect();
                        let _ = writeln!(out, "  repeat {}: {}{limit}", run.repeat, s.conclusion);
                    }
                }
            }
        }
        let steal: Vec<f64> = scenario.runs.iter().filter_map(|r| r.steal).collect();
        if let Some(worst) = steal.iter().copied().reduce(f64::max).filter(|w| *w > 0.05) {
            let _ = writeln!(
                out,
                "noisy machine: the hypervisor took up to {:.0}% of the CPU time (steal) during these runs; the numbers include it",
                worst * 100.0
            );
        }
        for run in &scenario.runs {
            if let Some(why) = run.unclean_because() {
                let _ =
                    writeln!(out, "{} repeat {} not clean, left out of the medians: {why}", run.framework, run.repeat);
            }
        }
        match &scenario.summary {
            Some(s) => {
                for c in &s.comparisons {
                    let _ = writeln!(out, "  {}", sections::pairs_line(c));
                }
                let _ = writeln!(out, "verdict: {}", s.verdict);
            }
            None => {
                let _ = writeln!(out, "verdict: no clean runs, nothing to compare");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_become_safe_file_names() {
        assert_eq!(file_stem("crud mix/../x"), "crud_mix____x");
        assert_eq!(file_stem("crud-mix_2"), "crud-mix_2");
    }
}
