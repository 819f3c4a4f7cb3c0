//! `taskbench compare`: the CI performance gate. Reads two runs, prints the comparison as
//! Markdown, writes it (and the new run's Bencher JSON) to files, and exits 0 (pass), 1 (a
//! regression or a broken new run) or 2 (could not compare).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use taskbench_report::Results;
use taskbench_report::compare::{CompareOptions, bencher_metric_format, compare};

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline run: a run directory or its results.json.
    pub baseline: PathBuf,
    /// The run to judge: a run directory or its results.json.
    pub new: PathBuf,
    /// Largest tolerated worsening of any metric: a percentage (5%) or a fraction (0.05).
    #[arg(long, default_value = "5%", value_parser = parse_threshold)]
    pub max_regression: f64,
    /// Where to write the Markdown table [default: compare.md in NEW's run directory].
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Where to write NEW's figures in Bencher Metric Format [default: bencher.json next to the Markdown].
    #[arg(long)]
    pub bencher: Option<PathBuf>,
    /// Do not print the table on stdout (the files and the job summary are still written).
    #[arg(long)]
    pub quiet: bool,
}

/// `5%` or `0.05`. A bare number of 1 or more is refused rather than guessed: `5` could mean 5%
/// or 500%.
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    let expected = "expected a percentage like 5% or a fraction like 0.05";
    let trimmed = text.trim();
    let value = match trimmed.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|v| v / 100.0),
        None => trimmed.parse::<f64>(),
    }
    .map_err(|_| format!("{expected}, found `{text}`"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{expected} (at least 0), found `{text}`"));
    }
    if !trimmed.ends_with('%') && value >= 1.0 {
        return Err(format!("{expected}, found `{text}` (did you mean {text}%?)"));
    }
    Ok(value)
}

pub fn run(args: &CompareArgs) -> ExitCode {
    let read = |role: &str, path: &Path| {
        Results::read(path).map_err(|e| match crate::merge::hint(path) {
            Some(hint) => format!("cannot read the {role} run: {hint}"),
            None => format!("cannot read the {role} run: {e} (expected a taskbench run directory or its results.json)"),
        })
    };
    let (baseline, new) = match (read("baseline", &args.baseline), read("new", &args.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => return refuse(&e),
    };
    let opts = CompareOptions { max_regression: args.max_regression };
    let comparison = match compare(&baseline, &new, &opts) {
        Ok(c) => c,
        Err(e) => return refuse(&e.to_string()),
    };
    let markdown = comparison.markdown();
    let md_path =
        args.markdown.clone().unwrap_or_else(|| taskbench_report::model::run_dir(&args.new).join("compare.md"));
    let bencher_path = args.bencher.clone().unwrap_or_else(|| md_path.with_file_name("bencher.json"));
    let bencher = serde_json::to_vec_pretty(&bencher_metric_format(&new)).map(|mut v| {
        v.push(b'\n');
        v
    });
    let written = std::fs::write(&md_path, &markdown)
        .map_err(|e| format!("writing {}: {e}", md_path.display()))
        .and_then(|()| bencher.map_err(|e| format!("encoding the Bencher JSON: {e}")))
        .and_then(|json| {
            std::fs::write(&bencher_path, json).map_err(|e| format!("writing {}: {e}", bencher_path.display()))
        });
    if let Err(e) = written {
        return refuse(&e);
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty())
        && let Err(e) = append(Path::new(&summary), &markdown)
    {
        tracing::warn!("could not append to GITHUB_STEP_SUMMARY ({}): {e}", Path::new(&summary).display());
    }
    if !args.quiet {
        let _ = std::io::stdout().write_all(markdown.as_bytes());
    }
    if comparison.failed() {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "taskbench: the performance gate failed (details in {}):", md_path.display());
        for line in comparison.failure_lines() {
            let _ = writeln!(err, "  {line}");
        }
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn append(path: &Path, markdown: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(markdown.as_bytes())?;
    file.write_all(b"\n")
}

fn refuse(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "taskbench compare: {message}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::parse_threshold;

    #[test]
    fn thresholds_are_percentages_or_fractions() {
        assert_eq!(parse_threshold("5%"), Ok(0.05));
        assert_eq!(parse_threshold("12.5 %"), Ok(0.125));
        assert_eq!(parse_threshold("0.05"), Ok(0.05));
        assert_eq!(parse_threshold("0"), Ok(0.0));
        assert_eq!(
            parse_threshold("5").expect_err("ambiguous"),
            "expected a percentage like 5% or a fraction like 0.05, found `5` (did you mean 5%?)"
        );
        assert!(parse_threshold("five").expect_err("garbage").contains("found `five`"));
        assert!(parse_threshold("-1%").expect_err("negative").contains("at least 0"));
    }
}
