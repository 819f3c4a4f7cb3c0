//! The run over time: requests per second each second, server memory, and the CPU of the server
//! beside the load generator's and Postgres's, with the warm-up shaded.

use std::error::Error;

use plotters::prelude::*;

use super::{Area, CAPTION, DESC, Draw, LABEL, LEGEND, Palette, Swatch, font, nothing, tick, with_legend};
use crate::model::{RunRecord, ScenarioResult};
use crate::summary::clean_runs;

pub(super) fn throughput(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let runs: Vec<&RunRecord> =
        scenario.runs.iter().filter(|r| r.load.as_ref().is_some_and(|l| !l.series.is_empty())).collect();
    if runs.is_empty() {
        return nothing(root, title, "no per-second throughput recorded");
    }
    let series = |r: &RunRecord| -> Vec<(f64, f64)> {
        r.load.iter().flat_map(|l| &l.series).map(|s| (s.second as f64 + 0.5, s.goodput())).collect()
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
        .y_desc("successful responses per second (by completion)")
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

pub(super) fn memory(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let Some((x_min, x_max)) = sample_span(scenario) else {
        return nothing(root, title, "no resource samples recorded");
    };
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let y_max = scenario.runs.iter().flat_map(|r| &r.samples).map(|s| mib(s.server_rss)).fold(1.0, f64::max) * 1.2;
    let mut legend = framework_legend(scenario, palette);
    legend.push((Swatch::Block(RGBColor(200, 200, 200).mix(0.35)), "warm-up".to_owned()));
    let plot = with_legend(root, &legend)?;
    let mut chart = time_axes(&plot, title, (x_min, x_max), y_max, "server RSS (MiB)")?;
    for run in &scenario.runs {
        let points = run.samples.iter().map(|s| (s.t_ms as f64 / 1000.0, mib(s.server_rss)));
        chart.draw_series(LineSeries::new(points, palette.colour(&run.framework).stroke_width(1)))?;
    }
    Ok(())
}

type TimeChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Axes over time from the start of the measured phase (seconds), `0..y_max` up, warm-up shaded.
fn time_axes<'a, 'b>(
    plot: &'a Area<'b>,
    title: &str,
    (x_min, x_max): (f64, f64),
    y_max: f64,
    y_desc: &str,
) -> Result<TimeChart<'a, 'b>, Box<dyn Error>> {
    let mut chart = ChartBuilder::on(plot)
        .caption(title, font(CAPTION))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time from start of measured phase (s)")
        .y_desc(y_desc)
        .label_style(font(LABEL))
        .axis_desc_style(font(DESC))
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .draw()?;
    shade_warmup(&mut chart, x_min, y_max)?;
    Ok(chart)
}

pub(super) fn cpu(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
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
    let mut chart = time_axes(&plot, title, (x_min, x_max), y_max, "CPU (% of one core)")?;
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
