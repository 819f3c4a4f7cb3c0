//! The comparison as a reader sees it: a Markdown table for a CI job summary, and the lines a
//! terminal shows when the gate fails.

use std::fmt::Write as _;

use super::{Comparison, ERROR_RATE_TOLERANCE, Metric, Row, Verdict};

pub(super) fn percent(change: f64) -> String {
    format!("{:+.1}%", change * 100.0)
}

/// A change as the row's metric states it: relative for most, percentage points for the
/// error rate (compared in absolute terms).
fn change_of(metric: Metric, change: f64) -> String {
    match metric {
        Metric::ErrorRate => format!("{:+.3} points", change * 100.0),
        _ => percent(change),
    }
}

fn range_of(metric: Metric, low: f64, high: f64) -> String {
    match metric {
        Metric::ErrorRate => format!("{} to {} (range of repeats)", change_of(metric, low), change_of(metric, high)),
        _ => interval(low, high),
    }
}

pub(super) fn interval(low: f64, high: f64) -> String {
    format!("{} to {}", percent(low), percent(high))
}

impl Comparison {
    /// One line per reason the gate failed, for a terminal.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .regressions()
            .map(|r| {
                let (lo, hi) = (r.ci_low.unwrap_or(f64::NAN), r.ci_high.unwrap_or(f64::NAN));
                let ci = if r.baseline_repeats.min(r.new_repeats) == 1 {
                    "one repeat: no CI".to_owned()
                } else if r.metric == Metric::ErrorRate {
                    range_of(r.metric, lo, hi)
                } else {
                    format!("95% CI {}", interval(lo, hi))
                };
                let limit = match r.metric {
                    Metric::ErrorRate => format!("{} points", ERROR_RATE_TOLERANCE * 100.0),
                    _ => threshold(self.max_regression),
                };
                format!(
                    "{}/{} {} regressed {} ({ci}), beyond the {limit} threshold",
                    r.scenario,
                    r.framework,
                    r.metric.short_label(),
                    r.change.map(|c| change_of(r.metric, c)).unwrap_or_default(),
                )
            })
            .collect();
        lines.extend(self.failures.iter().cloned());
        lines
    }

    /// The comparison as Markdown: the overall verdict, a table with regressions first, notes.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let regressions = self.regressions().count();
        let verdict = if self.failed() {
            let mut why = Vec::new();
            if regressions > 0 {
                why.push(format!("{regressions} regression(s) beyond {}", threshold(self.max_regression)));
            }
            if !self.failures.is_empty() {
                why.push(format!("{} run problem(s)", self.failures.len()));
            }
            format!("FAILED: {}", why.join(", "))
        } else {
            format!("passed: no regression beyond {}", threshold(self.max_regression))
        };
        let _ = writeln!(md, "## taskbench compare: {verdict}\n");
        let _ = writeln!(
            md,
            "Baseline `{}` against new `{}`. A change is a regression when it is worse than {} and its 95% \
             confidence interval lies entirely on the worse side of zero. Higher is better for rps; lower is \
             better for p50, p99 and peak RSS.\n",
            self.baseline_id,
            self.new_id,
            threshold(self.max_regression)
        );
        for failure in &self.failures {
            let _ = writeln!(md, "**Failed:** {}\n", escape(failure));
        }
        if !self.rows.is_empty() {
            md.push_str("| scenario | framework | metric | baseline | new | change | 95% CI | verdict |\n");
            md.push_str("|---|---|---|---:|---:|---:|---|---|\n");
            let (first, rest): (Vec<&Row>, Vec<&Row>) =
                self.rows.iter().partition(|r| r.verdict == Verdict::Regression);
            for row in first.into_iter().chain(rest) {
                md.push_str(&table_row(row));
            }
            md.push('\n');
        }
        let mut notes: Vec<String> = Vec::new();
        if self.rows.iter().any(|r| r.verdict != Verdict::Missing && r.ci_is_range && r.metric != Metric::ErrorRate) {
            notes.push(
                "An interval marked “range” is not a confidence interval: with so few repeats no 95% interval exists \
                 between two separate runs, so no change is called there. Use 4 or more repeats a side, or better, \
                 one interleaved run judged with `taskbench gate`."
                    .to_owned(),
            );
        }
        if !self.missing.is_empty() {
            notes.push(format!("Missing from the new run (not failing): {}.", self.missing.join(", ")));
        }
        notes.extend(self.notes.iter().cloned());
        if !notes.is_empty() {
            md.push_str("Notes:\n\n");
            for note in notes {
                let _ = writeln!(md, "- {}", escape(&note));
            }
        }
        md
    }
}

fn table_row(row: &Row) -> String {
    let m = row.metric;
    let ci = match (row.ci_low, row.ci_high) {
        (Some(lo), Some(hi)) if row.ci_is_range => format!("range {}", range_of(m, lo, hi)),
        (Some(lo), Some(hi)) => range_of(m, lo, hi),
        _ => String::new(),
    };
    let verdict = match row.verdict {
        Verdict::Regression => format!("**{}**", row.verdict.label()),
        v => v.label().to_owned(),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {ci} | {verdict} |\n",
        escape(&row.scenario),
        escape(&row.framework),
        m.short_label(),
        m.format(row.baseline_median),
        row.new_median.map(|v| m.format(v)).unwrap_or_else(|| "absent".to_owned()),
        row.change.map(|c| change_of(m, c)).unwrap_or_default(),
    )
}

fn threshold(max: f64) -> String {
    let pct = max * 100.0;
    if (pct - pct.round()).abs() < 1e-9 { format!("{pct:.0}%") } else { format!("{pct}%") }
}

/// Keeps a name from breaking the table.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}
