//! The `taskbench` CLI as a library: argument types and commands, so tests can call them and the
//! binary stays a thin shell.

pub mod compare;
pub mod gate;
pub mod loadgen;
pub mod merge;
pub mod report;
pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "taskbench", version, about = "Benchmark Rust web frameworks on a realistic, database-backed API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare the frameworks end to end: provision Postgres, run the scenarios against each
    /// server, write results.json, report.md, report.html and charts.
    Run(run::RunArgs),
    /// Re-render a run's report from its results.json.
    Report(report::ReportArgs),
    /// Drive any server that implements the taskbench API with a scenario, and print what it measured.
    Loadgen(loadgen::LoadgenArgs),
    /// Combine the results of several load agents (`loadgen --agent I/N`) into one.
    Merge(merge::MergeArgs),
    /// Compare a new run against a baseline run made separately (exit 1 on a regression).
    Compare(compare::CompareArgs),
    /// The CI performance gate: judge head against base in one interleaved run, pair by pair
    /// (exit 1 on a regression, 2 when it cannot judge).
    Gate(gate::GateArgs),
}

/// Runs the parsed command line; the exit code says how it went (0 ok, 1 incomplete run or failed
/// gate, 2 error).
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Report(args) => report::run(&args),
        Command::Loadgen(args) => loadgen::run(args).await,
        Command::Merge(args) => merge::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Gate(args) => gate::run(&args),
    }
}

/// Prints `taskbench: <message>` on stderr; exit code 2 (could not do what was asked).
pub(crate) fn fail(message: &str) -> ExitCode {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "taskbench: {message}");
    ExitCode::from(2)
}

/// Where shipped scenarios live: `./scenarios` when run from a checkout, else the one this
/// binary was built from.
pub fn scenarios_dir() -> PathBuf {
    let local = PathBuf::from("scenarios");
    if local.is_dir() { local } else { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios") }
}
