//! The SVG charts of one scenario, drawn with plotters: latency percentile spectrum, throughput,
//! memory and CPU over time, requests per second with confidence whiskers, and the paired
//! comparison's pairs against the threshold band. Each framework
//! keeps one colour in every chart; legends sit in a panel beside the plot so they never cover a
//! line.

use std::error::Error;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::model::{RunRecord, ScenarioResult};
use crate::summary::clean_runs;

mod capacity;
mod distribution;
mod pairs;
mod timeline;

pub(crate) use capacity::median_search;
use distribution::{latency, rps_bars};
use pairs::pairs;
use timeline::{cpu, memory, throughput};

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
    /// `capacity` (searches only), `latency`, `throughput`, `memory`, `cpu`, `rps` or `pairs`: the
    /// file is `<scenario>-<kind>.svg`.
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
    let mut specs: Vec<(&'static str, &str, DrawFn, (u32, u32))> = vec![
        ("latency", "latency percentile spectrum", latency, SIZE),
        ("throughput", "throughput over time", throughput, SIZE),
        ("memory", "server memory over time", memory, SIZE),
        ("cpu", "CPU use over time", cpu, SIZE),
        ("rps", "goodput (successful responses per second) over repeats", rps_bars, SIZE),
        ("pairs", "paired comparison, pair by pair", pairs, SIZE),
    ];
    if scenario.model == crate::model::ModelKind::Search {
        specs.insert(0, ("capacity", "latency–throughput curve", capacity::capacity, capacity::SIZE));
    }
    let mut out = Vec::new();
    for (kind, what, draw, size) in specs {
        let title = format!("{}: {what}", scenario.name);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
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
