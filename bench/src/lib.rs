//! The `taskbench` CLI as a library: argument types and commands, so tests can call them and the
//! binary stays a thin shell.

pub mod compare;
pub mod loadgen;

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
    /// Drive any server that implements the taskbench API with a scenario, and print what it measured.
    Loadgen(loadgen::LoadgenArgs),
    /// Compare a new run against a baseline: the CI performance gate (exit 1 on a regression).
    Compare(compare::CompareArgs),
}

/// Runs the parsed command line; the exit code says how it went (0 ok, 1 incomplete run or failed
/// gate, 2 error).
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Loadgen(args) => loadgen::run(args).await,
        Command::Compare(args) => compare::run(&args),
    }
}

/// Where shipped scenarios live: `./scenarios` when run from a checkout, else the one this
/// binary was built from.
pub fn scenarios_dir() -> PathBuf {
    let local = PathBuf::from("scenarios");
    if local.is_dir() { local } else { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios") }
}
