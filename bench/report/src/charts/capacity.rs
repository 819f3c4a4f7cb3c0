//! The latency–throughput curve of a saturation search: p50, p99 and p99.9 against the offered
//! rate, one line per framework (its median search), the SLO as a horizontal line, each
//! framework's maximum sustainable rate (the knee) as a vertical one; and server CPU per request
//! against the same rates beside them.

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use taskbench_results::search::SearchStep;

use super::distribution::log_ticks;
use super::{Area, CAPTION, DESC, Draw, LABEL, Palette, Swatch, font, nothing, shown_runs, tick, with_legend};
use crate::model::{RunRecord, ScenarioResult};

/// Size of the capacity chart: four panels need more height than the others.
pub(crate) const SIZE: (u32, u32) = (900, 760);

/// A framework's search to draw: the clean repeat whose maximum is the median one (the lower
/// middle with an even count), or the first search when none is clean.
pub(crate) fn median_search<'a>(scenario: &'a ScenarioResult, framework: &str) -> Option<&'a RunRecord> {
    let (runs, _) = shown_runs(scenario, framework);
    let mut with: Vec<(&RunRecord, f64)> = runs
        .into_iter()
        .filter_map(|r| {
            let s = r.load.as_ref()?.search.as_ref()?;
            Some((r, s.max_sustainable_rps.unwrap_or(0.0)))
        })
        .collect();
    with.sort_by(|a, b| a.1.total_cmp(&b.1));
    with.get(with.len().saturating_sub(1) / 2).map(|(r, _)| *r)
}

/// Latency the SLO judges: the worse of the successes' and of every request's.
fn judged(step: &SearchStep, which: usize) -> f64 {
    let (ok, all) = (&step.latency_us, &step.all_latency_us);
    let us = match which {
        0 => ok.p50.max(all.p50),
        1 => ok.p99.max(all.p99),
        _ => ok.p999.max(all.p999),
    };
    us as f64 / 1000.0
}

pub(crate) fn capacity(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    struct Line<'a> {
        framework: String,
        run: &'a RunRecord,
        steps: Vec<(usize, &'a SearchStep)>,
        knee: Option<f64>,
    }
    let mut lines = Vec::new();
    for fw in palette.present(scenario) {
        let Some(run) = median_search(scenario, &fw) else { continue };
        let Some(search) = run.load.as_ref().and_then(|l| l.search.as_ref()) else { continue };
        let mut steps: Vec<(usize, &SearchStep)> = search.steps.iter().enumerate().collect();
        // One point per rate: the last step run at it (a confirmed break's retry), so the line
        // does not zigzag at one rate. The stable sort keeps same-rate steps in the order run.
        steps.sort_by(|a, b| a.1.rate.total_cmp(&b.1.rate));
        steps.reverse();
        steps.dedup_by(|later, earlier| later.1.rate == earlier.1.rate);
        steps.reverse();
        lines.push(Line { framework: fw, run, steps, knee: search.max_sustainable_rps });
    }
    if lines.iter().all(|l| l.steps.is_empty()) {
        return nothing(root, title, "no search steps recorded");
    }
    let slo = lines
        .iter()
        .find_map(|l| l.run.load.as_ref().and_then(|x| x.search.as_ref()).map(|s| s.settings.slo))
        .unwrap_or_default();
    let x_max = lines.iter().flat_map(|l| l.steps.iter().map(|s| s.1.rate)).fold(1.0, f64::max) * 1.05;
    let mut legend: Vec<(Swatch, String)> = lines
        .iter()
        .map(|l| {
            let knee = l.knee.map_or_else(|| "none sustained".to_owned(), |k| format!("max {}", short(k)));
            (Swatch::Line(palette.colour(&l.framework), 2), format!("{} ({knee})", l.framework))
        })
        .collect();
    legend.push((Swatch::Dot(RGBColor(90, 90, 90)), "step passed".to_owned()));
    legend.push((Swatch::Dashed(BLACK, 1), "SLO".to_owned()));
    legend.push((Swatch::Dotted(RGBColor(90, 90, 90), 2), "max sustainable".to_owned()));
    let plot = with_legend(root, &legend)?;
    let (top, bottom) = plot.split_vertically(40);
    top.draw(&Text::new(title.to_owned(), (12, 8), font(CAPTION)))?;
    let panels = bottom.split_evenly((2, 2));
    let names = ["p50 latency (ms)", "p99 latency (ms)", "p99.9 latency (ms)", "server CPU per request (µs)"];
    for (k, panel) in panels.iter().enumerate() {
        let value = |l: &Line<'_>, i: usize, s: &SearchStep| -> Option<f64> {
            if k < 3 {
                Some(judged(s, k)).filter(|v| *v > 0.0)
            } else {
                l.run.steps.get(i).filter(|r| r.rate == s.rate).and_then(|r| r.server_cpu_us_per_request)
            }
        };
        let points: Vec<Vec<(f64, f64, bool)>> = lines
            .iter()
            .map(|l| l.steps.iter().filter_map(|(i, s)| Some((s.rate, value(l, *i, s)?, s.pass))).collect())
            .collect();
        let limit = match k {
            1 => slo.p99_ms,
            2 => slo.p999_ms,
            _ => None,
        };
        let all = points.iter().flatten().map(|p| p.1);
        let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if !lo.is_finite() {
            panel.draw(&Text::new(format!("{}: no data", names[k]), (20, 20), font(LABEL)))?;
            continue;
        }
        let hi = hi.max(limit.unwrap_or(0.0));
        let lo = lo.min(limit.unwrap_or(f64::INFINITY));
        let mut chart = ChartBuilder::on(panel);
        chart.margin(8).x_label_area_size(40).y_label_area_size(58);
        let x_desc = "offered rate (req/s)";
        let colour = |l: &Line<'_>| palette.colour(&l.framework);
        if k < 3 {
            let (lo, hi) = ((lo * 0.8).max(0.001), (hi * 1.3).max(lo * 10.0));
            let mut c =
                chart.build_cartesian_2d(0.0..x_max, (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)))?;
            c.configure_mesh()
                .x_desc(x_desc)
                .y_desc(names[k])
                .x_labels(5)
                .x_label_formatter(&|x| short(*x))
                .y_label_formatter(&|y| tick(*y))
                .label_style(font(LABEL - 3))
                .axis_desc_style(font(DESC - 3))
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            for (l, pts) in lines.iter().zip(&points) {
                c.draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), colour(l).stroke_width(2)))?;
                c.draw_series(pts.iter().map(|p| {
                    let style = if p.2 { colour(l).filled() } else { colour(l).stroke_width(2) };
                    Circle::new((p.0, p.1), 4, style)
                }))?;
                if let Some(knee) = l.knee {
                    c.draw_series(std::iter::once(DashedPathElement::new(
                        vec![(knee, lo), (knee, hi)],
                        2,
                        3,
                        colour(l).stroke_width(2),
                    )))?;
                }
            }
            if let Some(limit) = limit {
                c.draw_series(std::iter::once(DashedPathElement::new(
                    vec![(0.0, limit), (x_max, limit)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                )))?;
            }
        } else {
            let hi = hi * 1.15;
            let mut c = chart.build_cartesian_2d(0.0..x_max, 0.0..hi)?;
            c.configure_mesh()
                .x_desc(x_desc)
                .y_desc(names[k])
                .x_labels(5)
                .x_label_formatter(&|x| short(*x))
                .y_label_formatter(&|y| tick(*y))
                .label_style(font(LABEL - 3))
                .axis_desc_style(font(DESC - 3))
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            for (l, pts) in lines.iter().zip(&points) {
                c.draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), colour(l).stroke_width(2)))?;
                c.draw_series(pts.iter().map(|p| {
                    let style = if p.2 { colour(l).filled() } else { colour(l).stroke_width(2) };
                    Circle::new((p.0, p.1), 4, style)
                }))?;
                if let Some(knee) = l.knee {
                    c.draw_series(std::iter::once(DashedPathElement::new(
                        vec![(knee, 0.0), (knee, hi)],
                        2,
                        3,
                        colour(l).stroke_width(2),
                    )))?;
                }
            }
        }
    }
    Ok(())
}

/// `41.2k`, `950`.
fn short(x: f64) -> String {
    if x >= 1000.0 { format!("{}k", tick(x / 1000.0)) } else { tick(x) }
}
