//! Distributions over a scenario's runs: the latency percentile spectrum from merged HDR
//! histograms, and requests per second per framework with whiskers (the median's 95% interval from 6 repeats, else the range).

use hdrhistogram::Histogram;
use plotters::prelude::*;
use taskbench_results::decode_histogram;

use super::{Area, CAPTION, DESC, Draw, LABEL, Palette, Swatch, font, nothing, shown_runs, tick, with_legend};
use crate::model::{RunRecord, ScenarioResult};

/// Which histogram of a run to merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hist {
    Latency,
    Service,
    /// The open-model engine's send lag: its own error.
    SendLag,
}

fn merged(runs: &[&RunRecord], which: Hist) -> Option<Histogram<u64>> {
    let mut out: Option<Histogram<u64>> = None;
    for run in runs {
        let Some(load) = &run.load else { continue };
        let text = match which {
            Hist::Latency => &load.total.latency_hdr,
            Hist::Service => &load.total.service_hdr,
            Hist::SendLag => match &load.open {
                Some(open) => &open.send_lag_hdr,
                None => continue,
            },
        };
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
pub(super) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let all: Vec<f64> =
        (-4..=7).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e))).filter(|v| (lo..=hi).contains(v)).collect();
    if all.len() <= 14 { all } else { all.into_iter().filter(|v| v.log10().fract().abs() < 1e-9).collect() }
}

pub(super) fn latency(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let open = scenario.model == crate::model::ModelKind::Open;
    let mut lines = Vec::new();
    for fw in palette.present(scenario) {
        let (runs, clean) = shown_runs(scenario, &fw);
        let Some(h) = merged(&runs, Hist::Latency) else { continue };
        let service = merged(&runs, Hist::Service).filter(|s| {
            let (a, b) = (s.value_at_quantile(0.99) as f64, h.value_at_quantile(0.99) as f64);
            open && (a - b).abs() > 0.1 * b.max(1.0)
        });
        let lag = if open { merged(&runs, Hist::SendLag) } else { None };
        lines.push((fw, clean, runs.len(), h, service, lag));
    }
    if lines.is_empty() {
        return nothing(root, title, "no latency histograms recorded");
    }
    let x_max = lines.iter().map(|l| (l.3.len() as f64).log10()).fold(1.0, f64::max).clamp(1.0, 5.0);
    let y_min = lines
        .iter()
        .flat_map(|l| [Some(&l.3), l.5.as_ref()].into_iter().flatten())
        .map(|h| h.min() as f64 / 1000.0)
        .fold(f64::INFINITY, f64::min)
        .max(0.001)
        * 0.8;
    let y_max = lines.iter().map(|l| l.3.max() as f64 / 1000.0).fold(0.0, f64::max).max(y_min * 10.0) * 1.3;
    let mut legend = Vec::new();
    for (fw, clean, n, _, service, lag) in &lines {
        let note = if *clean { format!("{n} runs") } else { "runs not clean".to_owned() };
        legend.push((Swatch::Line(palette.colour(fw), 2), format!("{fw} ({note})")));
        if service.is_some() {
            legend.push((Swatch::Dashed(palette.colour(fw), 1), format!("{fw} service time")));
        }
        if lag.is_some() {
            legend.push((Swatch::Dotted(palette.colour(fw), 1), format!("{fw} send lag")));
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
    for (fw, _, _, h, service, lag) in &lines {
        let colour = palette.colour(fw);
        chart.draw_series(LineSeries::new(points(h), colour.stroke_width(2)))?;
        if let Some(s) = service {
            chart.draw_series(DashedLineSeries::new(points(s), 6, 4, colour.stroke_width(1)))?;
        }
        if let Some(l) = lag {
            chart.draw_series(DashedLineSeries::new(points(l), 2, 3, colour.stroke_width(1)))?;
        }
    }
    Ok(())
}

type BarChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32>,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// One framework's bar in slot `i`: the median, its interval (or range) as a whisker, each clean
/// repeat as a dot beside it, and the figures as a label.
fn bar(chart: &mut BarChart<'_, '_>, i: i32, rps: &crate::model::Estimate, repeats: &[f64], colour: RGBColor) -> Draw {
    let mut bar = Rectangle::new(
        [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), rps.median)],
        colour.mix(0.6).filled(),
    );
    bar.set_margin(0, 0, 40, 40);
    chart.draw_series([bar])?;
    let at = |v: f64| EmptyElement::at((SegmentValue::CenterOf(i), v));
    let whisker = BLACK.stroke_width(2);
    let (lo, hi) = (rps.ci_low.unwrap_or(rps.min), rps.ci_high.unwrap_or(rps.max));
    if lo.is_finite() && hi.is_finite() {
        chart.draw_series([PathElement::new(
            vec![(SegmentValue::CenterOf(i), lo), (SegmentValue::CenterOf(i), hi)],
            whisker,
        )])?;
        for v in [lo, hi] {
            chart.draw_series([at(v) + PathElement::new(vec![(-10, 0), (10, 0)], whisker)])?;
        }
    }
    // Beside the whisker rather than on it, spread so equal values stay countable.
    chart.draw_series(
        repeats.iter().enumerate().map(|(k, v)| at(*v) + Circle::new((22 + 7 * k as i32, 0), 3, BLACK.filled())),
    )?;
    let label = match (rps.ci_low, rps.ci_high) {
        (Some(lo), Some(hi)) => format!("{} (CI {}–{})", tick(rps.median), tick(lo), tick(hi)),
        _ if rps.n >= 2 => format!("{} (range {}–{})", tick(rps.median), tick(lo), tick(hi)),
        _ => tick(rps.median),
    };
    chart.draw_series([at(rps.median.max(hi)) + Text::new(label, (-70, -28), font(LABEL))])?;
    Ok(())
}

pub(super) fn rps_bars(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let frameworks = palette.present(scenario);
    if frameworks.is_empty() {
        return nothing(root, title, "no runs");
    }
    let summary = |fw: &str| scenario.summary.as_ref()?.frameworks.iter().find(|f| f.framework == fw);
    let repeats = |fw: &str| crate::summary::metric_values(scenario, fw, crate::metric::Metric::Rps);
    let y_max = frameworks
        .iter()
        .flat_map(|fw| {
            let e =
                summary(fw).map(|s| [s.rps.ci_high.unwrap_or(s.rps.max), s.rps.max, s.rps.median]).unwrap_or_default();
            e.into_iter().chain(repeats(fw))
        })
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        * 1.15;
    let legend = vec![
        (Swatch::Block(RGBColor(150, 150, 150).mix(0.6)), "median of repeats".to_owned()),
        (Swatch::Line(BLACK, 2), "95% CI of the median (6+ repeats), else the range".to_owned()),
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
        .y_desc("successful responses per second")
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
        let slot = SegmentValue::CenterOf(i as i32);
        match summary(fw).filter(|s| s.rps.median.is_finite()) {
            Some(s) => bar(&mut chart, i as i32, &s.rps, &repeats(fw), palette.colour(fw))?,
            None => {
                chart.draw_series([Text::new("no clean runs", (slot, y_max * 0.05), font(15))])?;
            }
        }
    }
    Ok(())
}
