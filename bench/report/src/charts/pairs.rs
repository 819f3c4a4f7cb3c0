//! The pairs chart: for each relative comparison of a scenario, every pair's effect (A/B − 1) as
//! a dot, the interval of the median (a 95% CI, or the range when there are too few pairs) as a
//! bar, the median as a tick, and the practical-threshold band around zero. A reader sees at
//! once whether the pairs agree, how far they spread and where the threshold lies.

use plotters::prelude::*;

use super::{Area, CAPTION, DESC, Draw, LABEL, Palette, Swatch, font, nothing, with_legend};
use crate::model::ScenarioResult;
use crate::stats::{IntervalKind, Scale};

pub(super) fn pairs(root: &Area<'_>, scenario: &ScenarioResult, palette: &Palette, title: &str) -> Draw {
    let Some(summary) = &scenario.summary else {
        return nothing(root, title, "no clean runs");
    };
    // Error rates are differences, not ratios: they are in the table, not on this axis.
    let shown: Vec<_> = summary.comparisons.iter().filter(|c| c.stats.scale == Scale::Relative).collect();
    if shown.is_empty() {
        return nothing(root, title, "one contender: nothing compared");
    }
    let band = summary.min_effect * 100.0;
    // One wild pair (a p99 of +300%) must not squash every other row: past ±REACH_CAP the axis
    // stops and such values sit at its edge as hollow dots.
    const REACH_CAP: f64 = 50.0;
    let reach = shown
        .iter()
        .flat_map(|c| c.stats.effects.iter().chain([&c.stats.low, &c.stats.high]))
        .filter(|v| v.is_finite())
        .fold(band * 2.0, |m, v| m.max(v.abs() * 100.0))
        .min(REACH_CAP.max(band * 2.0))
        * 1.15;
    let edge = reach / 1.15;
    let at = |v: f64| (v * 100.0).clamp(-edge, edge);
    let colour = palette.colour(&shown[0].a);
    let legend = vec![
        (Swatch::Block(RGBColor(150, 150, 150).mix(0.3)), format!("±{band:.1}% threshold")),
        (Swatch::Dot(colour), "one pair (same repeat)".to_owned()),
        (Swatch::Line(BLACK, 4), "95% CI of the median".to_owned()),
        (Swatch::Line(RGBColor(150, 150, 150), 4), "range (too few pairs)".to_owned()),
        (Swatch::Dot(RGBColor(120, 120, 120)), "hollow: past the axis".to_owned()),
    ];
    let plot = with_legend(root, &legend)?;
    let n = shown.len() as i32;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(CAPTION))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(200)
        .build_cartesian_2d(-reach..reach, (0..n - 1).into_segmented())?;
    let names: Vec<String> = shown.iter().map(|c| c.metric.label().to_owned()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(format!("{} / {} − 1 (%), one dot per pair (same repeat)", shown[0].a, shown[0].b))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style(font(LABEL))
        .axis_desc_style(font(DESC))
        .x_label_formatter(&|x| format!("{x:+.0}%"))
        .draw()?;
    chart.draw_series([Rectangle::new(
        [(-band, SegmentValue::Exact(0)), (band, SegmentValue::Exact(n))],
        RGBColor(150, 150, 150).mix(0.3).filled(),
    )])?;
    chart.draw_series([PathElement::new(
        vec![(0.0, SegmentValue::Exact(0)), (0.0, SegmentValue::Exact(n))],
        BLACK.stroke_width(1),
    )])?;
    for (i, c) in shown.iter().enumerate() {
        let row = || SegmentValue::CenterOf(i as i32);
        let bar = if c.stats.interval == IntervalKind::Ci { BLACK } else { RGBColor(150, 150, 150) };
        if c.stats.low.is_finite() && c.stats.high.is_finite() {
            chart.draw_series([PathElement::new(
                vec![(at(c.stats.low), row()), (at(c.stats.high), row())],
                bar.stroke_width(4),
            )])?;
            chart.draw_series([EmptyElement::at((at(c.stats.effect), row()))
                + PathElement::new(vec![(0, -12), (0, 12)], bar.stroke_width(3))])?;
        }
        // Above the bar, spread vertically a little so equal effects stay countable.
        chart.draw_series(c.stats.effects.iter().enumerate().map(|(k, e)| {
            let style = if (e * 100.0).abs() > edge { colour.stroke_width(2) } else { colour.filled() };
            EmptyElement::at((at(*e), row())) + Circle::new((0, -10 - 5 * (k as i32 % 4)), 4, style)
        }))?;
    }
    Ok(())
}
