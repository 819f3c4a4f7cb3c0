//! Turns a results document into what people read: `report.md`, a self-contained `report.html`
//! with the charts inlined, `charts/*.svg`, and the short table the CLI prints after a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::charts::{self, Chart, Palette, fmt_ms};
use crate::document::{Block, code, strong, text, to_html, to_markdown};
use crate::model::{Estimate, Results, RunRecord, ScenarioResult};
use crate::stats::median;
use crate::summary::clean_runs;

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
    let mut order = results.config.frameworks.clone();
    for run in results.scenarios.iter().flat_map(|s| &s.runs) {
        if !order.contains(&run.framework) {
            order.push(run.framework.clone());
        }
    }
    Palette(order)
}

/// Scenario names become file names: anything but `[A-Za-z0-9_-]` becomes `_`.
fn file_stem(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

const CHART_KINDS: [(&str, &str); 5] = [
    ("latency", "Latency percentile spectrum"),
    ("throughput", "Throughput over time"),
    ("memory", "Server memory over time"),
    ("cpu", "CPU use over time"),
    ("rps", "Requests per second with 95% CI"),
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

/// `median (95% CI low–high)`.
fn with_ci(e: &Estimate, decimals: usize) -> String {
    if e.n < 2 || !e.ci_low.is_finite() {
        return num(e.median, decimals);
    }
    format!("{} ({}–{})", num(e.median, decimals), num(e.ci_low, decimals), num(e.ci_high, decimals))
}

fn header(results: &Results) -> Vec<Block> {
    let env = &results.environment;
    let m = &env.machine;
    let cfg = &results.config;
    let mut blocks = vec![Block::Heading(1, vec![text("taskbench report "), code(&results.id)])];
    match &results.incomplete {
        Some(reason) => blocks.push(Block::Warning(vec![strong("INCOMPLETE"), text(format!(": {reason}"))])),
        None if results.finished_at.is_none() => {
            blocks.push(Block::Warning(vec![strong("INCOMPLETE"), text(": the run has no finish time")]));
        }
        None => {}
    }
    if env.build_profile != "release" {
        blocks.push(Block::Warning(vec![
            text("the servers were built with the "),
            strong(format!("`{}` profile, not `release`", env.build_profile)),
            text(": these numbers say little about production performance."),
        ]));
    }
    let cpus = |set: &Option<Vec<usize>>| {
        set.as_ref().map_or("any".to_owned(), |c| c.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
    };
    let status = match &results.incomplete {
        Some(_) => "INCOMPLETE".to_owned(),
        None => format!("complete, finished {}", results.finished_at.as_deref().unwrap_or("–")),
    };
    let durable = match cfg.db.durable {
        Some(true) => ", durable (fsync on)",
        Some(false) => ", not durable (fsync off)",
        None => "",
    };
    blocks.push(Block::List(vec![
        vec![strong("Started: "), text(&results.started_at), text(format!(" — {status}"))],
        vec![
            strong("Machine: "),
            text(format!(
                "{}, {} logical CPUs{}, {:.1} GiB, {}{}{}",
                m.cpu_model,
                m.logical_cpus,
                m.physical_cores.map(|p| format!(" ({p} physical)")).unwrap_or_default(),
                m.memory_bytes as f64 / (1u64 << 30) as f64,
                m.os,
                m.kernel.as_deref().map(|k| format!(", kernel {k}")).unwrap_or_default(),
                m.hostname.as_deref().map(|h| format!(", host {h}")).unwrap_or_default(),
            )),
        ],
        vec![
            strong("Toolchain: "),
            text(env.rustc.as_deref().unwrap_or("rustc unknown")),
            text(format!("; taskbench {}", env.taskbench_version)),
        ],
        vec![
            strong("Git commit: "),
            code(env.git_commit.as_deref().unwrap_or("unknown")),
            text(if env.git_dirty == Some(true) { " (uncommitted changes)" } else { "" }),
        ],
        vec![strong("Build profile: "), code(&env.build_profile)],
        vec![strong("Database: "), text(format!("{} — {}{durable}", cfg.db.kind, cfg.db.detail))],
        vec![
            strong("CPU plan: "),
            text(format!(
                "server {}, loadgen {}, postgres {} ({})",
                cpus(&cfg.cpus.server),
                cpus(&cfg.cpus.loadgen),
                cpus(&cfg.cpus.db),
                cfg.cpus.origin
            )),
        ],
        vec![
            strong("Plan: "),
            text(format!(
                "{} × {} repeats, interleaved; {} pool connections and {} worker thread(s) per server; \
                 samples every {} ms; seed {}",
                cfg.frameworks.join(", "),
                cfg.repeats,
                cfg.server_pool_size,
                cfg.server_workers,
                cfg.sample_interval_ms,
                cfg.seed
            )),
        ],
        vec![strong("Command: "), code(cfg.command_line.join(" "))],
    ]));
    blocks
}

/// Frameworks of a scenario in palette order.
fn frameworks(results: &Results, scenario: &ScenarioResult) -> Vec<String> {
    palette(results).0.into_iter().filter(|f| scenario.runs.iter().any(|r| &r.framework == f)).collect()
}

fn comparison_table(results: &Results, scenario: &ScenarioResult) -> Block {
    let head = [
        "framework",
        "RPS median (95% CI)",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "error rate",
        "server peak RSS MiB",
        "server CPU ms/1k req",
        "clean runs",
    ];
    let rows = frameworks(results, scenario)
        .into_iter()
        .map(|fw| {
            let total = scenario.runs.iter().filter(|r| r.framework == fw).count();
            let s = scenario.summary.as_ref().and_then(|s| s.frameworks.iter().find(|f| f.framework == fw));
            match s {
                Some(s) => vec![
                    fw,
                    with_ci(&s.rps, 1),
                    us_ms(&s.p50_us),
                    us_ms(&s.p90_us),
                    us_ms(&s.p99_us),
                    us_ms(&s.p999_us),
                    us_ms(&s.max_us),
                    percent(s.error_rate.median),
                    mib(s.server_peak_rss_bytes.median),
                    s.server_cpu_ms_per_1k_requests.as_ref().map_or("–".to_owned(), |e| num(e.median, 1)),
                    format!("{} of {total}", s.clean_runs),
                ],
                None => {
                    let mut row = vec![fw, "no clean runs".to_owned()];
                    row.extend(std::iter::repeat_n("–".to_owned(), 8));
                    row.push(format!("0 of {total}"));
                    row
                }
            }
        })
        .collect();
    Block::Table { head: head.map(str::to_owned).to_vec(), rows }
}

fn run_status(run: &RunRecord) -> String {
    match (&run.error, run.load.as_ref().and_then(|l| l.incomplete.as_ref())) {
        (Some(e), _) => format!("error: {e}"),
        (None, Some(reason)) => format!("INCOMPLETE: {reason}"),
        (None, None) if run.load.is_none() => "no measurement".to_owned(),
        _ => "clean".to_owned(),
    }
}

fn scenario_blocks(results: &Results, scenario: &ScenarioResult) -> Vec<Block> {
    let mut blocks = vec![
        Block::Heading(2, vec![text("Scenario "), code(&scenario.name)]),
        Block::Para(vec![text(&scenario.description)]),
        Block::Para(vec![text(format!(
            "{} model, {} s warm-up (excluded), {} s measured per run; scenario file ",
            scenario.model, scenario.warmup_secs, scenario.duration_secs
        ))]),
    ];
    if let Some(Block::Para(p)) = blocks.last_mut() {
        p.push(code(&scenario.file));
        p.push(text("."));
    }
    let unclean: Vec<&RunRecord> = scenario.runs.iter().filter(|r| !r.is_clean()).collect();
    if !unclean.is_empty() {
        let list = unclean.iter().map(|r| format!("{} repeat {}", r.framework, r.repeat)).collect::<Vec<_>>();
        blocks.push(Block::Warning(vec![
            strong(format!("{} run(s) INCOMPLETE or failed", unclean.len())),
            text(format!(
                " ({}): they are left out of the medians; the charts still draw what they measured.",
                list.join(", ")
            )),
        ]));
    }
    let Some(summary) = &scenario.summary else {
        blocks.push(Block::Warning(vec![
            strong("No clean runs"),
            text(": no run of this scenario measured a complete phase."),
        ]));
        blocks.extend(detail_blocks(results, scenario));
        return blocks;
    };
    blocks.push(comparison_table(results, scenario));
    if !summary.ratios.is_empty() {
        let rows = summary
            .ratios
            .iter()
            .map(|r| {
                vec![
                    format!("{} ({} / {})", r.metric, r.numerator, r.denominator),
                    num(r.ratio, 3),
                    format!("{}–{}", num(r.ci_low, 3), num(r.ci_high, 3)),
                ]
            })
            .collect();
        blocks.push(Block::Table { head: vec!["metric".into(), "ratio".into(), "95% CI".into()], rows });
    }
    if !summary.limited_by.is_empty() {
        blocks.push(Block::Warning(vec![
            strong(format!("Limited by {}", summary.limited_by.join(" and "))),
            text(": a role other than the server ran out of CPU, so this comparison does not show which framework is faster."),
        ]));
        let items = scenario
            .runs
            .iter()
            .flat_map(|r| r.bottlenecks.iter().map(move |b| (r, b)))
            .map(|(r, b)| vec![text(format!("{} repeat {}: {}", r.framework, r.repeat, b.detail))])
            .collect();
        blocks.push(Block::List(items));
    }
    blocks.push(Block::Para(vec![strong("Verdict: "), text(&summary.verdict)]));
    blocks.extend(detail_blocks(results, scenario));
    blocks
}

/// Charts, the per-run table and resource use: shown whether or not there is a summary.
fn detail_blocks(results: &Results, scenario: &ScenarioResult) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(3, vec![text("Charts")])];
    for (kind, title) in CHART_KINDS {
        blocks.push(Block::Chart {
            title: title.to_owned(),
            path: format!("charts/{}-{kind}.svg", file_stem(&scenario.name)),
        });
    }
    blocks.push(Block::Heading(3, vec![text("Runs")]));
    let rows = scenario
        .runs
        .iter()
        .map(|r| {
            let load = r.load.as_ref();
            vec![
                r.framework.clone(),
                r.repeat.to_string(),
                r.position.to_string(),
                load.map_or("–".to_owned(), |l| num(l.total.rps, 1)),
                load.map_or("–".to_owned(), |l| fmt_ms(l.total.latency_us.p99 as f64 / 1000.0)),
                load.map_or("–".to_owned(), |l| l.total.errors.to_string()),
                run_status(r),
            ]
        })
        .collect();
    let head = ["framework", "repeat", "position", "RPS", "p99 ms", "errors", "status"];
    blocks.push(Block::Table { head: head.map(str::to_owned).to_vec(), rows });
    blocks.push(Block::Heading(3, vec![text("Resources (medians over clean runs)")]));
    let mut rows = Vec::new();
    for role in ["server", "postgres", "loadgen"] {
        for fw in frameworks(results, scenario) {
            let runs = clean_runs(scenario, &fw);
            let stats: Vec<_> = runs.iter().filter_map(|r| r.resources.get(role)).collect();
            if stats.is_empty() {
                rows.push(vec![
                    role.to_owned(),
                    fw,
                    "not measured".to_owned(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                ]);
                continue;
            }
            let med = |f: &dyn Fn(&crate::model::ProcessStats) -> Option<f64>| {
                let v: Vec<f64> = stats.iter().filter_map(|s| f(s)).collect();
                median(&v)
            };
            rows.push(vec![
                role.to_owned(),
                fw,
                mib(med(&|s| Some(s.peak_rss_bytes as f64))),
                mib(med(&|s| Some(s.mean_rss_bytes as f64))),
                num(med(&|s| Some(s.cpu_seconds)), 2),
                num(med(&|s| Some(s.mean_cpu_cores)), 2),
                num(med(&|s| s.cpu_ms_per_1k_requests), 1),
            ]);
        }
    }
    let head = ["role", "framework", "peak RSS MiB", "mean RSS MiB", "CPU s", "mean cores", "CPU ms/1k req"];
    blocks.push(Block::Table { head: head.map(str::to_owned).to_vec(), rows });
    blocks
}

fn how_to_read() -> Vec<Block> {
    let item = |s: &str| vec![text(s)];
    vec![
        Block::Heading(2, vec![text("How to read this")]),
        Block::List(vec![
            item(
                "Each figure is the median over the clean repeats of a framework; runs that failed or ended early are listed but left out.",
            ),
            item(
                "The 95% confidence intervals come from a percentile bootstrap over those repeats: with few repeats they are wide, and overlapping intervals mean no demonstrated difference.",
            ),
            item(
                "Frameworks were run interleaved within this run, and ratios compare them within this run only; never compare against another day's numbers.",
            ),
            item(
                "In the open model (fixed arrival rate), latency counts from the intended send time, so a stalled server cannot hide queueing (no coordinated omission); service time counts from the actual send.",
            ),
            item(
                "The latency spectrum merges the HDR histograms of a framework's clean runs; its x axis adds one nine per step (90, 99, 99.9 …), so the tail gets as much room as the median.",
            ),
            item(
                "When the load generator or Postgres saturates its CPU, the result says “Limited by” and names no winner: the limit was not the framework.",
            ),
        ]),
    ]
}

fn document(results: &Results) -> Vec<Block> {
    let mut blocks = header(results);
    if results.scenarios.is_empty() {
        blocks.push(Block::Para(vec![text("No scenario was measured.")]));
    }
    for scenario in &results.scenarios {
        blocks.extend(scenario_blocks(results, scenario));
    }
    blocks.extend(how_to_read());
    blocks
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
            "{:<12} {:>28} {:>8} {:>8} {:>9} {:>9} {:>13}",
            "framework", "RPS median [min–max]", "p50 ms", "p99 ms", "p99.9 ms", "errors", "peak RSS MiB"
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
                "{fw:<12} {rps:>28} {:>8} {:>8} {:>9} {:>9} {:>13}",
                us_ms(&s.p50_us),
                us_ms(&s.p99_us),
                us_ms(&s.p999_us),
                percent(s.error_rate.median),
                mib(s.server_peak_rss_bytes.median)
            );
        }
        let unclean = scenario.runs.iter().filter(|r| !r.is_clean()).count();
        if unclean > 0 {
            let _ = writeln!(out, "{unclean} run(s) incomplete or failed, left out of the medians");
        }
        match &scenario.summary {
            Some(s) => {
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
