//! `taskbench report DIR`: re-renders a run's report from its `results.json` alone.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use taskbench_report::Results;

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// A run directory (or its results.json).
    pub dir: PathBuf,
}

/// Writes report.md, report.html and the charts into `dir`.
pub fn render(results: &Results, dir: &Path) -> Result<(), taskbench_report::RenderError> {
    taskbench_report::write_report(results, dir).map(|_| ())
}

/// The short table printed at the end of a run.
pub fn summary(results: &Results) -> String {
    taskbench_report::terminal_summary(results)
}

pub fn run(args: &ReportArgs) -> ExitCode {
    let results = match Results::read(&args.dir) {
        Ok(r) => r,
        Err(e) => return crate::fail(&crate::merge::hint(&args.dir).unwrap_or_else(|| e.to_string())),
    };
    let dir = taskbench_report::model::run_dir(&args.dir);
    match render(&results, &dir) {
        Ok(()) => {
            tracing::info!("report written to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e.to_string()),
    }
}
