//! The SVG charts of one scenario, drawn with plotters: latency percentile spectrum, throughput,
//! memory and CPU over time, and requests per second with confidence whiskers. Each framework
//! keeps one colour in every chart; legends sit in a panel beside the plot so they never cover a
//! line.

use std::error::Error;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use taskbench_loadgen::result::decode_histogram;

use crate::model::{RunRecord, ScenarioResult};
use crate::summary::clean_runs;

/// Pixel size of every chart, legend panel included.
const SIZE: (u32, u32) = (900, 440);
const LEGEND_WIDTH: u32 = 190;
const FONT: &str = "sans-serif";
/// Font sizes in pixels (plotters writes them to the SVG as `size / 1.24`).
const CAPTION: u32 = 24;
const LABEL: u32 = 16;
const DESC: u32 = 17;
const LEGEND: u32 = 16;
/// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
];

type Draw = Result<(), Box<dyn Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// Draws one chart of a scenario under the given title.
type DrawFn = fn(&Area<'_>, &ScenarioResult, &Palette, &str) -> Draw;

/// One drawn chart.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// `latency`, `throughput`, `memory`, `cpu` or `rps`: the file is `<scenario>-<kind>.svg`.
    pub(crate) kind: &'static str,
    pub(crate) svg: String,
}

/// Frameworks in a fixed order, so each keeps its colour across charts and scenarios.
#[derive(Debug, Clone)]
pub(crate) struct Palette(pub(crate) Vec<String>);

impl Palette {
    pub(crate) fn colour(&self, framework: &str) -> RGBColor {
        let i = self.0.iter().position(|f| f == framework).unwrap_or(self.0.len());
        PALETTE[i % PALETTE.len()]
    }

    /// The frameworks that appear in `scenario`, in palette order.
    fn present(&self, scenario: &ScenarioResult) -> Vec<String> {
        self.0.iter().filter(|f| scenario.runs.iter().any(|r| &r.framework == *f)).cloned().collect()
    }
}

/// How a legend entry is drawn.
enum Swatch {
    Line(RGBColor, u32),
    Dashed(RGBColor, u32),
    Dotted(RGBColor, u32),
    Block(RGBAColor),
    Dot(RGBColor),
}

/// Draws every chart of `scenario`. A chart with nothing to show says so instead of failing.
pub(crate) fn scenario_charts(scenario: &ScenarioResult, palette: &Palette) -> Result<Vec<Chart>, (String, String)> {
    let specs: [(&'static str, &str, DrawFn); 5] = [
        ("latency", "latency percentile spectrum", latency),
        ("throughput", "throughput over time", throughput),
        ("memory", "server memory over time", memory),
        ("cpu", "CPU use over time", cpu),
        ("rps", "requests per second over repeats", rps_bars),
    ];
    let mut out = Vec::new();
    for (kind, what, draw) in specs {
        let title = format!("{}: {what}", scenario.name);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            let result = root
                .fill(&WHITE)
                .map_err(Box::<dyn Error>::from)
                .and_then(|()| draw(&root, scenario, palette, &title))
                .and_then(|()| root.present().map_err(Box::<dyn Error>::from));
            result.map_err(|e| (title.clone(), e.to_string()))?;
        }
        out.push(Chart { kind, svg });
    }
    Ok(out)
}

fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

/// Splits off the legend panel and draws `entries` in it; returns the plot area.
fn with_legend<'a>(root: &Area<'a>, entries: &[(Swatch, String)]) -> Result<Area<'a>, Box<dyn Error>> {
    let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let mut y = 60;
    for (swatch, label) in entries {
        let (x0, x1) = (6, 34);
        match swatch {
            Swatch::Line(c, w) => legend.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(*w)))?,
            Swatch::Dashed(c, w) => {
                legend.draw(&DashedPathElement::new(vec![(x0, y), (x1, y)], 6, 4, c.stroke_width(*w)))?
            }
            Swatch::Dotted(c, w) => {
                legend.draw(&DashedPathElement::new(vec![(x0, y), (x1, y)], 2, 3, c.stroke_width(*w)))?
            }
            Swatch::Block(c) => legend.draw(&Rectangle::new([(x0, y - 7), (x1, y + 7)], c.filled()))?,
            Swatch::Dot(c) => legend.draw(&Circle::new((x0 + 14, y), 4, c.filled()))?,
        }
        legend.draw(&Text::new(label.clone(), (x1 + 8, y - 8), font(LEGEND)))?;
        y += 26;
    }
    Ok(plot)
}

/// Draws a caption and a note in place of a chart that has no data.
fn nothing(root: &Area<'_>, title: &str, note: &str) -> Draw {
    root.draw(&Text::new(title.to_owned(), (20, 14), font(CAPTION)))?;
    root.draw(&Text::new(note.to_owned(), (SIZE.0 as i32 / 2 - 120, SIZE.1 as i32 / 2), font(16)))?;
    Ok(())
}

/// Runs whose data a chart shows for `framework`: the clean ones, or whatever measured anything
/// when none is clean (flagged in the legend).
fn shown_runs<'a>(scenario: &'a ScenarioResult, framework: &str) -> (Vec<&'a RunRecord>, bool) {
    let clean = clean_runs(scenario, framework);
    if !clean.is_empty() {
        return (clean, true);
    }
    (scenario.runs.iter().filter(|r| r.framework == framework && r.load.is_some()).collect(), false)
}

fn merged(runs: &[&RunRecord], service: bool) -> Option<Histogram<u64>> {
    let mut out: Option<Histogram<u64>> = None;
    for run in runs {
        let Some(load) = &run.load else { continue };
        let text = if service { &load.total.service_hdr } else { &load.total.latency_hdr };
        match decode_histogram(text) {
            Ok(h) => match &mut out {
                None => out = Some(h),
                Some(m) => {
                    if let Err(e) = m.add(&h) {
                        tracing::warn!(framework = %run.framework, error = %e, "merging a latency histogram");
                    }
                }
            },
            Err(e) => tracing::warn!(framework = %run.framework, repeat = run.repeat, %e, "unreadable histogram"),
        }
    }
    out.filter(|h| !h.is_empty())
}

/// "Nines" axis: x = -log10(1 - q), so 1 is p90, 2 is p99, 3 is p99.9.
fn nines_label(x: f64) -> String {
    if (x - x.round()).abs() > 1e-6 {
        return String::new();
    }
    let n = x.round() as i32;
    if n <= 0 { "0".to_owned() } else { format!("{:.*}", (n - 2).max(0) as usize, 100.0 * (1.0 - 10f64.powi(-n))) }
}

/// Ticks for a log axis: 1-2-5 in each decade, or only the powers of ten over a wide range
/// (plotters' own log ticks leave out everything below 1).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let all: Vec<f64> =
        (-4..=7).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e))).filter(|v| (lo..=hi).contains(v)).collect();
    if all.len() <= 14 { all } else { all.into_iter().filter(|v| v.log10().fract().abs() < 1e-9).collect() }
}

/// An axis tick: no trailing zeros (`2`, `0.5`, `1200`).
fn tick(v: f64) -> String {
    let s = match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.1}"),
        a if a >= 0.01 => format!("{v:.3}"),
        _ => format!("{v:.4}"),
    };
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// Milliseconds with as many decimals as make sense for their size.
pub(crate) fn fmt_ms(ms: f64) -> String {
    match ms {
        v if !v.is_finite() => "–".to_owned(),
        v if v < 0.1 => format!("{v:.3}"),
        v if v < 10.0 => format!("{v:.2}"),
        v if v < 100.0 => format!("{v:.1}"),
        v => format!("{v:.0}"),
    }
}

fn latency(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let open = scenario.model == "open";
    let mut lines = Vec::new();
    for fw in palette.present(scenario) {
        let (runs, clean) = shown_runs(scenario, &fw);
        let Some(h) = merged(&runs, false) else { continue };
        let service = merged(&runs, true).filter(|s| {
            let (a, b) = (s.value_at_quantile(0.99) as f64, h.value_at_quantile(0.99) as f64);
            open && (a - b).abs() > 0.1 * b.max(1.0)
        });
        lines.push((fw, clean, runs.len(), h, service));
    }
    if lines.is_empty() {
        return nothing(root, title, "no latency histograms recorded");
    }
    let x_max = lines.iter().map(|l| (l.3.len() as f64).log10()).fold(1.0, f64::max).clamp(1.0, 5.0);
    let y_min = lines.iter().map(|l| l.3.min() as f64 / 1000.0).fold(f64::INFINITY, f64::min).max(0.001) * 0.8;
    let y_max = lines.iter().map(|l| l.3.max() as f64 / 1000.0).fold(0.0, f64::max).max(y_min * 10.0) * 1.3;
    let mut legend = Vec::new();
    for (fw, clean, n, _, service) in &lines {
        let note = if *clean { format!("{n} runs") } else { "incomplete runs".to_owned() };
        legend.push((Swatch::Line(palette.colour(fw), 2), format!("{fw} ({note})")));
        if service.is_some() {
            legend.push((Swatch::Dashed(palette.colour(fw), 1), format!("{fw} service time")));
        }
    }
    let plot = with_legend(root, &legend)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(CAPTION))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale().with_key_points(log_ticks(y_min, y_max)))?;
    chart
        .configure_mesh()
        .x_desc("percentile (log-scaled: each step is one more nine)")
        .y_desc("latency (ms, log scale)")
        .x_labels(x_max.floor() as usize + 1)
        .x_label_formatter(&|x| nines_label(*x))
        .y_label_formatter(&|y| tick(*y))
        .label_style(font(LABEL))
        .axis_desc_style(font(DESC))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let points = |h: &Histogram<u64>| -> Vec<(f64, f64)> {
        (0..=300)
            .map(|i| {
                let x = x_max * f64::from(i) / 300.0;
                let q = (1.0 - 10f64.powf(-x)).min(1.0);
                (x, (h.value_at_quantile(q) as f64 / 1000.0).max(y_min))
            })
            .collect()
    };
    for (fw, _, _, h, service) in &lines {
        let colour = palette.colour(fw);
        chart.draw_series(LineSeries::new(points(h), colour.stroke_width(2)))?;
        if let Some(s) = service {
            chart.draw_series(DashedLineSeries::new(points(s), 6, 4, colour.stroke_width(1)))?;
        }
    }
    Ok(())
}

fn throughput(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let runs: Vec<&RunRecord> =
        scenario.runs.iter().filter(|r| r.load.as_ref().is_some_and(|l| !l.series.is_empty())).collect();
    if runs.is_empty() {
        return nothing(root, title, "no per-second throughput recorded");
    }
    let series = |r: &RunRecord| -> Vec<(f64, f64)> {
        r.load.iter().flat_map(|l| &l.series).map(|s| (s.second as f64 + 0.5, s.requests as f64)).collect()
    };
    let x_max = runs.iter().flat_map(|r| series(r)).map(|p| p.0 + 0.5).fold(1.0, f64::max);
    let y_max = runs.iter().flat_map(|r| series(r)).map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let legend = framework_legend(scenario, palette);
    let plot = with_legend(root, &legend)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(CAPTION))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time in measured phase (s)")
        .y_desc("requests per second")
        .label_style(font(LABEL))
        .axis_desc_style(font(DESC))
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .draw()?;
    for run in runs {
        let points = series(run);
        let few = points.len() < 4;
        let line = LineSeries::new(points, palette.colour(&run.framework).stroke_width(1));
        chart.draw_series(if few { line.point_size(3) } else { line })?;
    }
    Ok(())
}

/// One legend entry per framework, with how many runs are drawn.
fn framework_legend(scenario: &ScenarioResult, palette: &Palette) -> Vec<(Swatch, String)> {
    palette
        .present(scenario)
        .into_iter()
        .map(|fw| {
            let n = scenario.runs.iter().filter(|r| r.framework == fw).count();
            let clean = clean_runs(scenario, &fw).len();
            let note = if clean == n { format!("{n} runs") } else { format!("{n} runs, {clean} clean") };
            (Swatch::Line(palette.colour(&fw), 2), format!("{fw} ({note})"))
        })
        .collect()
}

/// Time span of the samples in seconds, warm-up (negative) included.
fn sample_span(scenario: &ScenarioResult) -> Option<(f64, f64)> {
    let t = scenario.runs.iter().flat_map(|r| &r.samples).map(|s| s.t_ms as f64 / 1000.0);
    let (lo, hi) = t.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| (lo.min(t), hi.max(t)));
    (lo < hi).then_some((lo.min(0.0), hi))
}

/// Shades the warm-up (t < 0) and labels it.
fn shade_warmup<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    x_min: f64,
    y_max: f64,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    if x_min < 0.0 {
        chart
            .draw_series([Rectangle::new([(x_min, 0.0), (0.0, y_max)], RGBColor(200, 200, 200).mix(0.35).filled())])?;
        // Offset in pixels so the label clears the axis.
        chart.draw_series([EmptyElement::at((x_min, y_max)) + Text::new("warm-up", (6, 4), font(LEGEND))])?;
    }
    Ok(())
}

fn memory(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let Some((x_min, x_max)) = sample_span(scenario) else {
        return nothing(root, title, "no resource samples recorded");
    };
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let y_max = scenario.runs.iter().flat_map(|r| &r.samples).map(|s| mib(s.server_rss)).fold(1.0, f64::max) * 1.2;
    let mut legend = framework_legend(scenario, palette);
    legend.push((Swatch::Block(RGBColor(200, 200, 200).mix(0.35)), "warm-up".to_owned()));
    let plot = with_legend(root, &legend)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(CAPTION))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time from start of measured phase (s)")
        .y_desc("server RSS (MiB)")
        .label_style(font(LABEL))
        .axis_desc_style(font(DESC))
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .draw()?;
    shade_warmup(&mut chart, x_min, y_max)?;
    for run in &scenario.runs {
        let points = run.samples.iter().map(|s| (s.t_ms as f64 / 1000.0, mib(s.server_rss)));
        chart.draw_series(LineSeries::new(points, palette.colour(&run.framework).stroke_width(1)))?;
    }
    Ok(())
}

fn cpu(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let Some((x_min, x_max)) = sample_span(scenario) else {
        return nothing(root, title, "no resource samples recorded");
    };
    let samples = || scenario.runs.iter().flat_map(|r| &r.samples);
    let top =
        samples().flat_map(|s| [s.server_cpu, s.loadgen_cpu, s.postgres_cpu.unwrap_or(0.0)]).fold(100.0_f32, f32::max);
    let y_max = f64::from(top) * 1.1;
    let has_postgres = samples().any(|s| s.postgres_cpu.is_some());
    let mut legend = Vec::new();
    for fw in palette.present(scenario) {
        let c = palette.colour(&fw);
        legend.push((Swatch::Line(c, 2), format!("{fw} server")));
        if has_postgres {
            legend.push((Swatch::Dashed(c, 1), format!("{fw} postgres")));
        }
        legend.push((Swatch::Dotted(c, 1), format!("{fw} loadgen")));
    }
    if !has_postgres {
        legend.push((Swatch::Dot(RGBColor(255, 255, 255)), "postgres not sampled".to_owned()));
    }
    legend.push((Swatch::Block(RGBColor(200, 200, 200).mix(0.35)), "warm-up".to_owned()));
    let plot = with_legend(root, &legend)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(CAPTION))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time from start of measured phase (s)")
        .y_desc("CPU (% of one core)")
        .label_style(font(LABEL))
        .axis_desc_style(font(DESC))
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .draw()?;
    shade_warmup(&mut chart, x_min, y_max)?;
    for run in &scenario.runs {
        let c = palette.colour(&run.framework);
        let t = |ms: i64| ms as f64 / 1000.0;
        let pg: Vec<(f64, f64)> =
            run.samples.iter().filter_map(|s| Some((t(s.t_ms), f64::from(s.postgres_cpu?)))).collect();
        let lg: Vec<(f64, f64)> = run.samples.iter().map(|s| (t(s.t_ms), f64::from(s.loadgen_cpu))).collect();
        let sv: Vec<(f64, f64)> = run.samples.iter().map(|s| (t(s.t_ms), f64::from(s.server_cpu))).collect();
        chart.draw_series(DashedLineSeries::new(pg, 6, 4, c.mix(0.8).stroke_width(1)))?;
        chart.draw_series(DashedLineSeries::new(lg, 2, 3, c.mix(0.8).stroke_width(1)))?;
        chart.draw_series(LineSeries::new(sv, c.stroke_width(2)))?;
    }
    Ok(())
}

fn rps_bars(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let frameworks = palette.present(scenario);
    if frameworks.is_empty() {
        return nothing(root, title, "no runs");
    }
    let summary = |fw: &str| scenario.summary.as_ref()?.frameworks.iter().find(|f| f.framework == fw);
    let repeats = |fw: &str| crate::summary::metric_values(scenario, fw, "rps");
    let y_max = frameworks
        .iter()
        .flat_map(|fw| {
            let e = summary(fw).map(|s| [s.rps.ci_high, s.rps.max, s.rps.median]).unwrap_or_default();
            e.into_iter().chain(repeats(fw))
        })
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        * 1.15;
    let legend = vec![
        (Swatch::Block(RGBColor(150, 150, 150).mix(0.6)), "median of repeats".to_owned()),
        (Swatch::Line(BLACK, 2), "95% CI (bootstrap)".to_owned()),
        (Swatch::Dot(BLACK), "each clean repeat".to_owned()),
    ];
    let plot = with_legend(root, &legend)?;
    // A discrete range includes its end: 0..n-1 is n slots.
    let n = frameworks.len() as i32;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(CAPTION))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..y_max)?;
    let names = frameworks.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("framework")
        .y_desc("requests per second")
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style(font(LABEL))
        .axis_desc_style(font(DESC))
        .light_line_style(WHITE.mix(0.0))
        .y_label_formatter(&|y| tick(*y))
        .draw()?;
    for (i, fw) in frameworks.iter().enumerate() {
        let i = i as i32;
        let colour = palette.colour(fw);
        let Some(s) = summary(fw).filter(|s| s.rps.median.is_finite()) else {
            chart.draw_series([Text::new("no clean runs", (SegmentValue::CenterOf(i), y_max * 0.05), font(15))])?;
            continue;
        };
        let mut bar = Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), s.rps.median)],
            colour.mix(0.6).filled(),
        );
        bar.set_margin(0, 0, 40, 40);
        chart.draw_series([bar])?;
        let at = |v: f64| EmptyElement::at((SegmentValue::CenterOf(i), v));
        let whisker = BLACK.stroke_width(2);
        if s.rps.ci_low.is_finite() && s.rps.ci_high.is_finite() {
            chart.draw_series([PathElement::new(
                vec![(SegmentValue::CenterOf(i), s.rps.ci_low), (SegmentValue::CenterOf(i), s.rps.ci_high)],
                whisker,
            )])?;
            for v in [s.rps.ci_low, s.rps.ci_high] {
                chart.draw_series([at(v) + PathElement::new(vec![(-10, 0), (10, 0)], whisker)])?;
            }
        }
        // Beside the whisker rather than on it, spread so equal values stay countable.
        chart.draw_series(
            repeats(fw)
                .into_iter()
                .enumerate()
                .map(|(k, v)| at(v) + Circle::new((22 + 7 * k as i32, 0), 3, BLACK.filled())),
        )?;
        let label = if s.rps.n >= 2 && s.rps.ci_low.is_finite() {
            format!("{} ({}–{})", tick(s.rps.median), tick(s.rps.ci_low), tick(s.rps.ci_high))
        } else {
            tick(s.rps.median)
        };
        chart.draw_series([at(s.rps.median.max(s.rps.ci_high)) + Text::new(label, (-70, -28), font(LABEL))])?;
    }
    Ok(())
}
