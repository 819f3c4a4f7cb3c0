//! `taskbench gate`: the CI performance gate on one interleaved run (see
//! `taskbench_report::gate`). Prints the judgement as Markdown, writes it to `gate.md` in the
//! run's directory (and appends it to `$GITHUB_STEP_SUMMARY` when set), and exits 0 (pass),
//! 1 (a regression, or head broke) or 2 (could not judge: too few pairs, not a two-contender run).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use taskbench_report::Results;
use taskbench_report::gate::gate;

#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// The interleaved run: a run directory or its results.json, made with
    /// `taskbench run --contender base=PATH --contender head=PATH`.
    pub run: PathBuf,
    /// The contender to judge against [default: the run's first].
    #[arg(long)]
    pub base: Option<String>,
    /// The contender judged [default: the run's second].
    #[arg(long)]
    pub head: Option<String>,
    /// Smallest worsening that counts as a regression (once significant): a percentage (2%) or a
    /// fraction (0.02). Error rates use 0.1 percentage point.
    #[arg(long, default_value = "2%", value_parser = crate::compare::parse_threshold)]
    pub min_effect: f64,
    /// Where to write the Markdown [default: gate.md in the run's directory].
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Do not print the Markdown on stdout.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &GateArgs) -> ExitCode {
    let results = match Results::read(&args.run) {
        Ok(r) => r,
        Err(e) => {
            return refuse(&format!(
                "cannot read the run: {e} (expected a taskbench run directory or its results.json)"
            ));
        }
    };
    let judged = match gate(&results, args.base.as_deref(), args.head.as_deref(), args.min_effect) {
        Ok(g) => g,
        Err(e) => return refuse(&e.to_string()),
    };
    let markdown = judged.markdown();
    let dir = taskbench_report::model::run_dir(&args.run);
    let md_path = args.markdown.clone().unwrap_or_else(|| dir.join("gate.md"));
    if let Err(e) = std::fs::write(&md_path, &markdown) {
        return refuse(&format!("writing {}: {e}", md_path.display()));
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .and_then(|mut f| f.write_all(format!("{markdown}\n").as_bytes()));
        if let Err(e) = appended {
            tracing::warn!("could not append to GITHUB_STEP_SUMMARY: {e}");
        }
    }
    if !args.quiet {
        let _ = std::io::stdout().write_all(markdown.as_bytes());
    }
    let code = judged.exit_code();
    if code != 0 {
        let mut err = std::io::stderr();
        let what = if code == 1 { "the performance gate failed" } else { "the performance gate could not judge" };
        let _ = writeln!(err, "taskbench gate: {what} (details in {}):", md_path.display());
        for line in judged.failure_lines() {
            let _ = writeln!(err, "  {line}");
        }
    }
    ExitCode::from(code)
}

fn refuse(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "taskbench gate: {message}");
    ExitCode::from(2)
}
