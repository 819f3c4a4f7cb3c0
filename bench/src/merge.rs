//! `taskbench merge`: the results of N load agents (`taskbench loadgen --agent I/N --out …`)
//! as one result, as if one generator had sent every request (see `taskbench_results::merge`).
//! Exit codes as `taskbench loadgen`'s, for the merged run: 0 clean, 1 an agent ended early, 2
//! the results cannot be merged, 3 the SLO broken or not a clean measurement.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use taskbench_results::LoadResult;

#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Every agent's result (`--out` or `--json` of `taskbench loadgen --agent I/N`).
    #[arg(required = true, value_name = "AGENT.json")]
    pub parts: Vec<PathBuf>,
    /// Write the merged result here (JSON).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the merged result as JSON instead of the summary table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &MergeArgs) -> ExitCode {
    let mut parts = Vec::with_capacity(args.parts.len());
    for path in &args.parts {
        let read = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<LoadResult>(&bytes).map_err(|e| e.to_string()));
        match read {
            Ok(part) => parts.push(part),
            Err(e) => {
                return crate::fail(&format!(
                    "{}: {e}; expected the JSON result of `taskbench loadgen --agent I/N`",
                    path.display()
                ));
            }
        }
    }
    let names: Vec<String> = args.parts.iter().map(|p| p.display().to_string()).collect();
    let merged = match taskbench_results::merge::merge(&parts, &names) {
        Ok(m) => m,
        Err(e) => return crate::fail(&e.to_string()),
    };
    let json = serde_json::to_string_pretty(&merged).unwrap_or_default() + "\n";
    if let Some(out) = &args.out
        && let Err(e) = std::fs::write(out, &json)
    {
        return crate::fail(&format!("writing {}: {e}", out.display()));
    }
    let mut stdout = std::io::stdout();
    if args.json {
        let _ = stdout.write_all(json.as_bytes());
    } else {
        let _ = stdout.write_all(merged.summary_table().as_bytes());
        if let Some(agents) = &merged.agents {
            let _ = writeln!(
                stdout,
                "{} agents; their measured phases began within {} ms of each other (clock skew and start delay); \
                 requests per agent: {:?}",
                agents.count, agents.start_spread_ms, agents.requests
            );
        }
    }
    // The exit codes of `taskbench loadgen`, judged on the merged run.
    if let Some(why) = &merged.incomplete {
        tracing::error!("an agent ended early: {why}");
        return ExitCode::from(1);
    }
    if let Some(slo) = merged.slo.as_ref().filter(|s| !s.pass) {
        tracing::error!("the merged run broke its SLO: {}", slo.describe());
        return ExitCode::from(3);
    }
    if let Some(why) = merged.unclean_because() {
        tracing::error!("not a clean run: {why}");
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}
