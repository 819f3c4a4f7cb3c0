//! `taskbench loadgen`: one scenario against one running server, summary table or JSON out.
//!
//! Exit codes: 0 the run completed and met its `[slo]` (or states none); 1 it ended early
//! (the target died, Ctrl-C), the partial result kept; 2 it could not start (a bad scenario
//! file or flag, an unreachable or non-loopback target); 3 it completed but broke its `[slo]`
//! or is not a clean measurement (dropped sends, errors over the budget), like a k6 threshold.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use taskbench_loadgen::client::Reach;
use taskbench_loadgen::scenario::{LoadModel, Rate};
use taskbench_loadgen::{Options, Scenario, Seeding};
use taskbench_results::LoadResult;
use taskbench_results::merge::AgentShare;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// Scenario file, or the name of a shipped one (`smoke`, `crud-mix`, …).
    #[arg(long)]
    pub scenario: String,
    /// Base URL of the server, e.g. http://127.0.0.1:8080 (loopback unless --remote).
    #[arg(long)]
    pub target: String,
    /// The target may be on another machine: send load to any http:// host (yours to load).
    #[arg(long)]
    pub remote: bool,
    /// Print the full result as JSON on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Also write the result as JSON to this file (kept even when the run ends early).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the scenario's measured duration (e.g. 10s).
    #[arg(long, value_parser = humantime_duration)]
    pub duration: Option<Duration>,
    /// Override the scenario's warm-up (e.g. 2s).
    #[arg(long, value_parser = humantime_duration)]
    pub warmup: Option<Duration>,
    /// Override the open model's fixed rate (requests per second).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Override the open model's requests in flight.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Run the scenario as a saturation search (see `taskbench run --find-max`).
    #[arg(long)]
    pub find_max: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The target's data is already seeded (as `taskbench run` does before each run): skip
    /// seeding through the API.
    #[arg(long, hide = true)]
    pub assume_seeded: bool,
    /// Be agent I of N (0-based, `1/3`): take every N-th request of the open model's schedule, or
    /// every N-th virtual user of the closed model, and record the share; `taskbench merge`
    /// combines the agents' results. Agents never seed (each would register the same users):
    /// seed first with `--seed-only`.
    #[arg(long, value_name = "I/N", value_parser = parse_agent)]
    pub agent: Option<(u32, u32)>,
    /// With --agent: the common instant every agent starts at, in milliseconds since the Unix
    /// epoch (`$(( $(date +%s%3N) + 20000 ))`); it must leave time to sign the users in.
    #[arg(long, value_name = "UNIX_MS", requires = "agent")]
    pub start_at: Option<u64>,
    /// Only seed the scenario's data through the API, then exit (before agents run).
    #[arg(long, conflicts_with_all = ["agent", "assume_seeded", "find_max"])]
    pub seed_only: bool,
}

/// `I/N`: agent I (0-based) of N.
fn parse_agent(s: &str) -> Result<(u32, u32), String> {
    let expected = "expected I/N with 0 <= I < N, e.g. 0/2 and 1/2 for two agents";
    let (i, n) = s.split_once('/').ok_or_else(|| format!("{expected}; found `{s}`"))?;
    let (Ok(i), Ok(n)) = (i.trim().parse::<u32>(), n.trim().parse::<u32>()) else {
        return Err(format!("{expected}; found `{s}`"));
    };
    if n == 0 || i >= n {
        return Err(format!("{expected}; found `{s}`"));
    }
    Ok((i, n))
}

pub fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("expected a duration like 10s or 500ms: {e}"))
}

/// Why the command line's overrides do not fit the scenario.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error("--find-max: {0}")]
    FindMax(taskbench_loadgen::scenario::NoLatencyObjective),
    #[error("--duration must be longer than 0s")]
    ZeroDuration,
    #[error(
        "--rate applies to open-model scenarios; {0} is a search, which chooses its own rates (from `from` to `max`)"
    )]
    RateOfSearch(String),
    #[error("--rate and --max-in-flight apply to open-model scenarios; {0} is closed")]
    RateOfClosed(String),
    #[error("--rate must be a positive number of requests per second, found {0}")]
    BadRate(f64),
}

/// Applies the command-line overrides to a scenario.
pub fn apply_overrides(mut scenario: Scenario, args: &LoadgenArgs) -> Result<Scenario, OverrideError> {
    if args.find_max {
        scenario = scenario.as_search().map_err(OverrideError::FindMax)?;
    }
    if let Some(d) = args.duration {
        if d.is_zero() {
            return Err(OverrideError::ZeroDuration);
        }
        scenario.load.duration = d;
    }
    if let Some(w) = args.warmup {
        scenario.load.warmup = w;
    }
    if args.rate.is_some() || args.max_in_flight.is_some() {
        let (rate, max_in_flight) = match scenario.load.model {
            LoadModel::Open { rate, max_in_flight } => (rate, max_in_flight),
            LoadModel::Search(mut spec) if args.rate.is_none() => {
                spec.max_in_flight = args.max_in_flight.unwrap_or(spec.max_in_flight).max(1);
                scenario.load.model = LoadModel::Search(spec);
                return Ok(scenario);
            }
            LoadModel::Search(_) => return Err(OverrideError::RateOfSearch(scenario.name)),
            LoadModel::Closed { .. } => return Err(OverrideError::RateOfClosed(scenario.name)),
        };
        let rate = match args.rate {
            Some(r) if r > 0.0 && r.is_finite() => Rate::Fixed(r),
            Some(r) => return Err(OverrideError::BadRate(r)),
            None => rate,
        };
        scenario.load.model =
            LoadModel::Open { rate, max_in_flight: args.max_in_flight.unwrap_or(max_in_flight).max(1) };
    }
    Ok(scenario)
}

pub async fn run(args: LoadgenArgs) -> ExitCode {
    if std::env::var_os(taskbench_lifecycle::EXIT_WITH_STDIN).is_some_and(|v| v == "1") {
        // Started by `taskbench run`, which holds our stdin: when it is gone, so are we.
        std::thread::spawn(|| {
            let _ = taskbench_lifecycle::wait_for_stdin_eof();
            tracing::error!("the parent process went away (stdin closed): stopping");
            std::process::exit(1);
        });
    }
    let path = Scenario::locate(&args.scenario, &crate::scenarios_dir());
    let scenario = match Scenario::from_file(&path) {
        Ok(s) => s,
        Err(e) => return crate::fail(&e.to_string()),
    };
    let scenario = match apply_overrides(scenario, &args) {
        Ok(s) => s,
        Err(e) => return crate::fail(&e.to_string()),
    };
    if args.seed_only {
        let reach = if args.remote { Reach::Anywhere } else { Reach::Loopback };
        return seed_only(&scenario, &args.target, reach).await;
    }
    let progress = progress_bar(&scenario, args.quiet || args.json);
    let share = args.agent.map(|(index, count)| AgentShare { index, count, start_at_unix_ms: args.start_at });
    let seeding = if args.assume_seeded || share.is_some() { Seeding::AlreadySeeded } else { Seeding::ViaApi };
    let reach = if args.remote { Reach::Anywhere } else { Reach::Loopback };
    let outcome = taskbench_loadgen::run(&scenario, &args.target, Options { seeding, share, reach }).await;
    progress.finish_and_clear();
    let result = match outcome {
        Ok(result) => result,
        Err(e) => return crate::fail(&e.to_string()),
    };
    if let Some(out) = &args.out
        && let Err(e) = write_json(out, &result)
    {
        return crate::fail(&format!("writing {}: {e}", out.display()));
    }
    let printed = if args.json {
        serde_json::to_string_pretty(&result).map(|s| s + "\n").unwrap_or_default()
    } else {
        result.summary_table()
    };
    let _ = std::io::stdout().write_all(printed.as_bytes());
    if let Some(why) = &result.incomplete {
        tracing::error!("the run ended early: {why}");
        return ExitCode::from(1);
    }
    if let Some(slo) = result.slo.as_ref().filter(|s| !s.pass) {
        tracing::error!("the run broke its SLO: {}", slo.describe());
        return ExitCode::from(3);
    }
    if let Some(why) = result.unclean_because() {
        tracing::error!("not a clean run: {why}");
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

/// `--seed-only`: the scenario's data through the API, and nothing else.
async fn seed_only(scenario: &Scenario, target: &str, reach: Reach) -> ExitCode {
    use taskbench_loadgen::client;
    let seeded = async {
        let target = client::Target::parse_with(target, reach)?;
        let http = client::http_client(4);
        client::preflight(&http, &target).await?;
        client::seed_via_api(&http, &target, &scenario.data).await
    };
    match seeded.await {
        Ok(()) => {
            tracing::info!(users = scenario.data.users, "seeded {}'s data", scenario.name);
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e.to_string()),
    }
}

fn write_json(path: &PathBuf, result: &LoadResult) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(result).map_err(std::io::Error::other)?;
    std::fs::write(path, json)
}

/// A bar over warm-up plus measurement, driven by the clock (the engines do not report
/// progress; the run's length is fixed by the scenario).
fn progress_bar(scenario: &Scenario, hidden: bool) -> ProgressBar {
    let total = scenario.load.warmup + scenario.load.duration;
    if hidden {
        return ProgressBar::hidden();
    }
    if matches!(scenario.load.model, LoadModel::Search(_)) {
        // A search takes as many steps as it needs: a spinner, and each step in the log.
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} searching for the maximum sustainable rate, {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        return bar;
    }
    let bar = ProgressBar::new(total.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:12} [{bar:40}] {elapsed}/{duration}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let (warmup, bar2) = (scenario.load.warmup, bar.clone());
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while !bar2.is_finished() {
            let elapsed = start.elapsed();
            bar2.set_message(if elapsed < warmup { "warming up" } else { "measuring" });
            bar2.set_position((elapsed.min(total)).as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    bar
}
