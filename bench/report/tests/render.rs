//! The rendered report: files on disk, charts a reader can use, a self-contained HTML page, and
//! honest wording when runs failed or a role other than the server was the limit.

use std::path::Path;

mod common;

use taskbench_report::fixture::{Shape, results};
use taskbench_report::model::{Bottleneck, Metric, Results, Role};
use taskbench_report::{markdown, summary, terminal_summary, write_report};

const FRAMEWORKS: [&str; 2] = ["axum", "actix"];
const KINDS: [(&str, &str); 6] = [
    ("pairs", "paired comparison, pair by pair"),
    ("latency", "latency percentile spectrum"),
    ("throughput", "throughput over time"),
    ("memory", "server memory over time"),
    ("cpu", "CPU use over time"),
    ("rps", "goodput (successful responses per second)"),
];

fn constructed(repeats: u32) -> Results {
    results(&["crud-mix"], &[Shape::new("axum", 1000.0, 800.0), Shape::new("actix", 1100.0, 700.0)], repeats, 5, 1)
}

/// Recomputes every scenario's summary after a test changed its runs.
fn resummarise(r: &mut Results) {
    let frameworks = r.config.frameworks.clone();
    for s in &mut r.scenarios {
        s.summary = summary::summarise(s, &frameworks, taskbench_report::stats::DEFAULT_MIN_EFFECT, 1);
    }
}

/// The largest number of points in one `<polyline points="…">` of `svg`.
fn longest_polyline(svg: &str) -> usize {
    svg.split("<polyline")
        .skip(1)
        .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
        .map(|pts| pts.split_whitespace().count())
        .max()
        .unwrap_or(0)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn writes_markdown_html_and_a_chart_of_each_kind() {
    let r = constructed(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let rendered = write_report(&r, dir.path()).expect("renders");
    assert!(rendered.markdown.is_file() && rendered.html.is_file());
    assert_eq!(rendered.charts.len(), KINDS.len());
    for (kind, title) in KINDS {
        let path = dir.path().join(format!("charts/crud-mix-{kind}.svg"));
        assert!(rendered.charts.contains(&path), "{} listed", path.display());
        let svg = read(&path);
        assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{kind}: an SVG document");
        assert!(svg.contains(title), "{kind}: titled {title:?}");
        for fw in FRAMEWORKS {
            assert!(svg.contains(fw), "{kind}: names {fw}");
        }
        if kind == "rps" {
            assert!(svg.matches("<rect").count() >= 3, "rps: a bar per framework");
        } else if kind == "pairs" {
            // A dot per pair and metric, beside the threshold band.
            assert!(svg.matches("<circle").count() >= 9 && svg.contains("threshold"), "pairs: {svg}");
        } else {
            // One point per second of the 5 s measured phase; the others have far more.
            let least = if kind == "throughput" { 5 } else { 15 };
            assert!(
                longest_polyline(&svg) >= least,
                "{kind}: a line with many points, found {}",
                longest_polyline(&svg)
            );
        }
    }
}

#[test]
fn html_is_self_contained_and_inlines_every_chart() {
    let r = constructed(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let rendered = write_report(&r, dir.path()).expect("renders");
    let html = read(&rendered.html);
    for external in ["src=\"http", "href=\"http", "<link", "<script", "<img", "@import", "url("] {
        assert!(!html.contains(external), "no external reference {external:?}");
    }
    assert_eq!(html.matches("<svg").count(), KINDS.len(), "each chart inlined once");
    assert!(html.contains("<table>") && html.contains("axum") && html.contains("actix"));
}

#[test]
fn markdown_names_each_framework_the_verdict_and_links_the_charts() {
    let r = constructed(6);
    let md = markdown(&r);
    for fw in FRAMEWORKS {
        assert!(md.contains(&format!("| {fw} |")), "a table row for {fw}");
    }
    let verdict = &r.scenarios[0].summary.as_ref().expect("summarised").verdict;
    assert!(md.contains("Verdict"), "{md}");
    assert!(
        verdict.contains("Actix throughput higher than axum by"),
        "the fixture's clear difference is named: {verdict}"
    );
    assert!(md.contains("| throughput | actix vs axum |") || md.contains("| throughput | axum vs actix |"), "{md}");
    assert!(md.contains("sign-flip, n = 6"), "the test and n are shown: {md}");
    for (kind, _) in KINDS {
        assert!(md.contains(&format!("(charts/crud-mix-{kind}.svg)")), "links the {kind} chart");
    }
    assert!(md.contains("How to read this"));
    assert!(md.contains("- **Build profile:** `release`"), "bold that Markdown reads as bold: {md}");
    assert!(!md.contains("INCOMPLETE"), "a complete run is not called incomplete");
    let text = terminal_summary(&r);
    assert!(text.contains("crud-mix") && text.contains("axum") && text.contains("actix") && text.contains("verdict"));
    assert!(text.contains("throughput (axum vs actix): pairs r1 "), "the pairs are printed: {text}");
}

#[test]
fn three_repeats_give_a_range_and_no_verdict() {
    let r = constructed(3);
    let verdict = &r.scenarios[0].summary.as_ref().expect("summarised").verdict;
    assert!(verdict.contains("over 3 pairs (a range, covering the median 75% of the time"), "{verdict}");
    assert!(verdict.contains("so no verdict") && !verdict.contains("higher than"), "{verdict}");
    let md = markdown(&r);
    assert!(md.contains("(range 9"), "a median's range is called a range: {md}");
}

#[test]
fn incomplete_runs_and_a_framework_without_clean_runs_still_render() {
    let mut r = constructed(3);
    r.incomplete = Some("interrupted (Ctrl-C)".into());
    let s = &mut r.scenarios[0];
    for run in s.runs.iter_mut().filter(|run| run.framework == "actix") {
        run.error = Some("server exited with status 101".into());
    }
    let last = s.runs.iter_mut().find(|run| run.framework == "axum").expect("an axum run");
    let load = last.load.as_mut().expect("measured");
    load.incomplete = Some("server died".into());
    load.series.truncate(2);
    last.samples.truncate(3);
    resummarise(&mut r);
    let dir = tempfile::tempdir().expect("tempdir");
    write_report(&r, dir.path()).expect("renders");
    let md = read(&dir.path().join("report.md"));
    assert!(md.contains("INCOMPLETE"), "{md}");
    assert!(md.contains("no clean runs"), "{md}");
    assert!(md.contains("error: server exited with status 101"));
    let rps = read(&dir.path().join("charts/crud-mix-rps.svg"));
    assert!(rps.contains("no clean runs"), "the bar chart says why actix has no bar");
    assert!(terminal_summary(&r).contains("actix        no clean runs"));
}

#[test]
fn one_repeat_no_samples_and_an_external_database_still_render() {
    let mut r = constructed(1);
    for run in &mut r.scenarios[0].runs {
        run.resources.remove(&Role::Postgres);
        if run.framework == "axum" {
            run.samples.clear();
            run.load.as_mut().expect("measured").series.clear();
        }
        for s in &mut run.samples {
            s.postgres_cpu = None;
            s.postgres_rss = None;
        }
    }
    resummarise(&mut r);
    let dir = tempfile::tempdir().expect("tempdir");
    write_report(&r, dir.path()).expect("renders");
    let cpu = read(&dir.path().join("charts/crud-mix-cpu.svg"));
    assert!(cpu.contains("postgres not sampled"));
    let md = read(&dir.path().join("report.md"));
    assert!(md.contains("| postgres | axum | not measured |"), "{md}");
}

#[test]
fn no_measurement_at_all_renders_placeholders() {
    let mut r = constructed(1);
    for run in &mut r.scenarios[0].runs {
        run.load = None;
        run.samples.clear();
        run.error = Some("could not start".into());
    }
    resummarise(&mut r);
    assert!(r.scenarios[0].summary.is_none());
    let dir = tempfile::tempdir().expect("tempdir");
    let rendered = write_report(&r, dir.path()).expect("renders");
    assert_eq!(rendered.charts.len(), KINDS.len());
    assert!(read(&rendered.markdown).contains("No clean runs"));
}

#[test]
fn a_limited_run_compares_efficiency_but_not_throughput() {
    let limit =
        || Bottleneck { role: Role::Postgres, utilisation: 0.97, detail: "postgres used 97% of its 1 CPU(s)".into() };
    // Every repeat limited: throughput and latency are not compared at all.
    let mut r = constructed(6);
    for run in r.scenarios[0].runs.iter_mut().filter(|run| run.framework == "actix") {
        run.bottlenecks.push(limit());
    }
    resummarise(&mut r);
    let md = markdown(&r);
    assert!(md.contains("Limited by postgres"), "{md}");
    assert!(md.contains("actix repeat 1: postgres used 97% of its 1 CPU(s)"), "{md}");
    let verdict = &r.scenarios[0].summary.as_ref().expect("summarised").verdict;
    assert!(verdict.starts_with("Throughput was not compared: the postgres limited the runs"), "{verdict}");
    assert!(verdict.contains("At equal delivered load: actix server CPU per request lower than axum by"), "{verdict}");
    assert!(!md.contains("| throughput |") && !md.contains("throughput higher than"), "{md}");
    assert!(md.contains("| server CPU per request | axum vs actix |"), "{md}");

    // One repeat limited: that pair is left out of throughput, and the verdict says so.
    let mut r = constructed(7);
    r.scenarios[0].runs[1].bottlenecks.push(limit());
    resummarise(&mut r);
    let verdict = &r.scenarios[0].summary.as_ref().expect("summarised").verdict;
    assert!(verdict.contains("throughput higher than axum") && verdict.contains("(1 pair(s) left out"), "{verdict}");
}

#[test]
fn text_from_results_is_escaped_in_html() {
    let mut r = constructed(1);
    r.scenarios[0].name = "<script>alert(1)</script>".into();
    r.scenarios[0].runs[0].error = Some("bad <b>&</b> \"thing\"".into());
    resummarise(&mut r);
    let dir = tempfile::tempdir().expect("tempdir");
    let rendered = write_report(&r, dir.path()).expect("renders");
    let html = read(&rendered.html);
    assert!(!html.contains("<script"), "scenario names are escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("bad &lt;b&gt;&amp;&lt;/b&gt; &quot;thing&quot;"));
    for chart in &rendered.charts {
        assert!(chart.starts_with(dir.path().join("charts")), "{} stays in charts/", chart.display());
    }
}

/// Saturation searches: each framework's maximum, the paired comparison of the maxima, the
/// latency–throughput curve and the steps of each framework's median search.
#[test]
fn a_search_reports_each_maximum_compares_them_and_draws_the_curve() {
    use common::search_results;
    // axum's server is a queue of capacity 12,000 req/s, actix's 9,000 (±2% per repeat).
    let r = search_results(&[Shape::new("axum", 12_000.0, 150.0), Shape::new("actix", 9_000.0, 150.0)], 6, 3);
    let scenario = &r.scenarios[0];
    let summary = scenario.summary.as_ref().expect("summary");
    for (fw, capacity) in [("axum", 12_000.0), ("actix", 9_000.0)] {
        let f = summary.frameworks.iter().find(|f| f.framework == fw).expect("summarised");
        let max = f.max_sustainable_rps.expect("a maximum per framework");
        assert_eq!(max.n, 6);
        // The knee of p99 ≤ 5 ms at 0.15·4.6 ms service is 86% of capacity; the search finds it within 5%.
        assert!(max.median <= capacity * 1.02 && max.median >= capacity * 0.86 * 0.93, "{fw}: {max:?}");
        assert!(max.ci_low.is_some(), "6 repeats give a 95% interval");
    }
    let c = summary.comparisons.iter().find(|c| c.metric == Metric::MaxRps).expect("maxima compared");
    assert_eq!(c.stats.n, 6);
    assert!(c.sentence.contains("axum maximum sustainable throughput higher than actix"), "{}", c.sentence);
    assert!(summary.verdict.starts_with("Axum maximum sustainable throughput higher"), "{}", summary.verdict);

    let dir = tempfile::tempdir().expect("tempdir");
    write_report(&r, dir.path()).expect("written");
    let svg = std::fs::read_to_string(dir.path().join("charts/capacity-capacity.svg")).expect("the curve");
    for expect in ["p50 latency", "p99 latency", "p99.9 latency", "server CPU per request", "offered rate", "SLO"] {
        assert!(svg.contains(expect), "the curve shows {expect}");
    }
    assert!(svg.contains("axum (max ") && svg.contains("actix (max "), "each knee in the legend");
    assert!(longest_polyline(&svg) >= 5, "a line through the steps");
    let md = markdown(&r);
    assert!(md.contains("### Maximum sustainable throughput"), "{md}");
    assert!(md.contains("charts/capacity-capacity.svg"));
    assert!(md.contains("(its median search)") && md.contains("broke: p99"), "the steps of the median searches");
    let terminal = terminal_summary(&r);
    assert!(terminal.contains("axum         max sustainable throughput"), "{terminal}");
    assert!(terminal.contains("sustained") && terminal.contains("broke at"), "{terminal}");
}

/// A search that only reached the search's `max` (or was stopped by the generator) names no
/// maximum of the server's own: its pairs are left out.
#[test]
fn a_search_that_never_broke_is_not_compared() {
    use taskbench_results::search::Stop;
    let mut r =
        common::search_results(&[Shape::new("axum", 12_000.0, 150.0), Shape::new("actix", 9_000.0, 150.0)], 6, 3);
    for run in &mut r.scenarios[0].runs {
        if let Some(s) = run.load.as_mut().and_then(|l| l.search.as_mut()) {
            s.stop = Stop::ReachedMax;
            s.broke_at_rps = None;
        }
    }
    resummarise(&mut r);
    let summary = r.scenarios[0].summary.as_ref().expect("summary");
    assert!(!summary.comparisons.iter().any(|c| c.metric == Metric::MaxRps), "{:?}", summary.comparisons);
    assert!(summary.verdict.starts_with("Maximum sustainable throughput was not compared"), "{}", summary.verdict);
}
