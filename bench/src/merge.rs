//! `taskbench merge`: the results of N load agents (`taskbench loadgen --agent I/N --out …`)
//! as one result, as if one generator had sent every request (see `taskbench_results::merge`).
//! Exit codes as `taskbench loadgen`'s, for the merged run: 0 clean, 1 an agent ended early, 2
//! the results cannot be merged, 3 the SLO broken or not a clean measurement.
//!
//! `--into DIR --name NAME` also adds the merged result, as one measured run of NAME, to the
//! `results.json` in DIR (made when absent), and renders its report there: merged runs of
//! several frameworks and repeats gathered in one directory get the report, the paired verdict
//! and `taskbench compare` of a `taskbench run`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use taskbench_report::Results;
use taskbench_report::model::{
    Bottleneck, CpuPlan, DbConfig, Role, RunConfig, RunRecord, ScenarioResult, UNKNOWN_PROFILE,
};
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
    /// Also add the merged result as one run of --name to DIR/results.json (made when absent) and
    /// render the report there, for `taskbench report` and `taskbench compare`. One result that
    /// is not an agent's (`loadgen --out`) is added as it is.
    #[arg(long, value_name = "DIR", requires = "name")]
    pub into: Option<PathBuf>,
    /// With --into: the framework (or contender) the merged run measured, e.g. `axum`.
    #[arg(long, value_parser = crate::run::contender_name, requires = "into")]
    pub name: Option<String>,
    /// With --into, when it makes DIR/results.json: the practical threshold of its paired
    /// comparisons (as `taskbench run --min-effect`).
    #[arg(long, default_value = "2%", value_parser = crate::compare::parse_threshold)]
    pub min_effect: f64,
}

/// Marks a results document made of merged results (`config.lost_guarantees`' first line), the
/// only kind `--into` adds to.
const MERGED: &str = "made of load generators' results gathered with `taskbench merge --into`: taskbench started, \
                      pinned, restarted and reset nothing, and the machine described is the one that merged them, \
                      not the agents'";

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
    let merged = match parts.as_slice() {
        // One generator's result, for the report: nothing to merge.
        [one] if one.agent.is_none() && args.into.is_some() => one.clone(),
        _ => match taskbench_results::merge::merge(&parts, &names) {
            Ok(m) => m,
            Err(e) => return crate::fail(&e.to_string()),
        },
    };
    if let (Some(dir), Some(name)) = (&args.into, &args.name)
        && let Err(e) = into(dir, name, &merged, args.min_effect)
    {
        return crate::fail(&e);
    }
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

/// Adds `merged` as the next repeat of `name` to `dir`'s results document (made when absent),
/// recomputes the summaries and renders the report. Nothing is written when the document cannot
/// take it.
fn into(dir: &Path, name: &str, merged: &LoadResult, min_effect: f64) -> Result<(), String> {
    let file = dir.join("results.json");
    let mut results = if file.exists() {
        let results = Results::read(&file).map_err(|e| format!("--into: {e}; nothing was written"))?;
        if results.config.lost_guarantees.first().map(String::as_str) != Some(MERGED) {
            return Err(format!(
                "--into: {} is not made of merged results (it is a `taskbench run`'s); expected a directory that \
                 `taskbench merge --into` made, or a new one",
                file.display()
            ));
        }
        results
    } else {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        new_results(min_effect)
    };
    add(&mut results, name, merged)?;
    let (frameworks, min_effect, seed) =
        (results.config.frameworks.clone(), results.config.min_effect, results.config.seed);
    for s in &mut results.scenarios {
        s.summary = taskbench_report::summary::summarise(s, &frameworks, min_effect, seed);
    }
    results.finished_at = Some(now());
    results.write(dir).map_err(|e| format!("writing {}: {e}", file.display()))?;
    crate::report::render(&results, dir).map_err(|e| format!("rendering the report in {}: {e}", dir.display()))?;
    tracing::info!("added {name}'s run to {}; report rendered there", file.display());
    Ok(())
}

/// A results document for merged runs: what is known (this machine, the command), and what is
/// not said as such.
fn new_results(min_effect: f64) -> Results {
    let today = chrono::Utc::now();
    Results {
        schema_version: taskbench_report::SCHEMA_VERSION,
        id: format!("{}-{:06x}", today.format("%Y%m%dT%H%M%SZ"), rand::random::<u32>() & 0xff_ffff),
        started_at: now(),
        finished_at: None,
        incomplete: None,
        environment: crate::run::environment::environment(UNKNOWN_PROFILE, &Default::default()),
        config: RunConfig {
            command_line: std::env::args().collect(),
            frameworks: Vec::new(),
            repeats: 0,
            duration_secs: None,
            warmup_secs: None,
            quick: false,
            db: DbConfig {
                kind: "unknown".into(),
                detail: "the servers' own, not known to taskbench merge".into(),
                durable: None,
            },
            cpus: CpuPlan {
                origin: "not pinned by taskbench (results merged from load generators)".into(),
                ..CpuPlan::default()
            },
            sample_interval_ms: 0,
            server_pool_size: 0,
            server_workers: 0,
            seed: rand::random(),
            min_effect,
            server_args: Default::default(),
            server_resources: None,
            targets: Default::default(),
            lost_guarantees: vec![
                MERGED.to_owned(),
                "no server or Postgres resources were sampled".to_owned(),
                "how the servers were built is not known to taskbench".to_owned(),
            ],
        },
        scenarios: Vec::new(),
    }
}

/// `merged` as the next repeat of `name` in its scenario (a scenario entry made for it when it
/// is the first). Refused when the scenario already there was run differently.
fn add(results: &mut Results, name: &str, merged: &LoadResult) -> Result<(), String> {
    let index = match results.scenarios.iter().position(|s| s.name == merged.scenario) {
        Some(i) => {
            let s = &results.scenarios[i];
            if s.model != merged.model {
                return Err(format!(
                    "--into: scenario {} is {} in the results already, but {} in this one; nothing was written",
                    s.name, s.model, merged.model
                ));
            }
            // Runs of one scenario compared with each other must have measured as long (a run cut
            // short is recorded as such, and not compared).
            let differs = |a: f64, b: f64| (a - b).abs() > 0.05 * a.max(b);
            if merged.incomplete.is_none() && differs(s.duration_secs, merged.measured_secs) {
                return Err(format!(
                    "--into: scenario {} measured {:.1} s in the results already, but {:.1} s in this one (a different \
                     --duration); nothing was written",
                    s.name, s.duration_secs, merged.measured_secs
                ));
            }
            // ... and, open, at the same rate: latencies at different rates do not compare.
            let rate_before = s.runs.iter().find_map(|r| r.load.as_ref()?.open.as_ref().map(|o| o.target_rps));
            if let (Some(before), Some(now)) = (rate_before, merged.open.as_ref().map(|o| o.target_rps))
                && differs(before, now)
            {
                return Err(format!(
                    "--into: scenario {} was offered {before:.0} req/s in the results already, but {now:.0} req/s in \
                     this one (a different --rate); nothing was written",
                    s.name
                ));
            }
            i
        }
        None => {
            results.scenarios.push(scenario_entry(merged));
            results.scenarios.len() - 1
        }
    };
    match results.config.targets.get(name) {
        Some(known) if known != &merged.target => tracing::warn!(
            "{name} was measured at {known} before and at {} now; the results keep the first",
            merged.target
        ),
        Some(_) => {}
        None => {
            results.config.targets.insert(name.to_owned(), merged.target.clone());
        }
    }
    if !results.config.frameworks.iter().any(|f| f == name) {
        results.config.frameworks.push(name.to_owned());
    }
    let scenario = &mut results.scenarios[index];
    let repeat = scenario.runs.iter().filter(|r| r.framework == name).count() as u32 + 1;
    scenario.runs.push(RunRecord {
        framework: name.to_owned(),
        repeat,
        position: 1,
        started_at: merged.measure_started_unix_ms.map_or_else(now, rfc3339),
        load: Some(merged.clone()),
        resources: Default::default(),
        samples: Vec::new(),
        bottlenecks: merged
            .open
            .as_ref()
            .filter(|o| o.generator_limited)
            .map(|o| Bottleneck {
                role: Role::Loadgen,
                utilisation: 0.0,
                detail: format!(
                    "an agent's open-model engine did not keep its schedule: merged send lag p99 {} µs against a \
                     latency p99 of {} µs",
                    o.send_lag_us.p99, merged.total.latency_us.p99
                ),
            })
            .into_iter()
            .collect(),
        error: merged.incomplete.clone(),
        steps: Vec::new(),
        steal: None,
    });
    results.config.repeats = results.config.repeats.max(repeat);
    Ok(())
}

/// The scenario's entry: its description and file when it is a shipped one of that name.
fn scenario_entry(merged: &LoadResult) -> ScenarioResult {
    let path = taskbench_loadgen::Scenario::locate(&merged.scenario, &crate::scenarios_dir());
    let file = taskbench_loadgen::Scenario::from_file(&path).ok();
    ScenarioResult {
        name: merged.scenario.clone(),
        description: file.as_ref().map(|f| f.description.clone()).unwrap_or_default(),
        model: merged.model,
        file: if file.is_some() { path.display().to_string() } else { String::new() },
        source: file.as_ref().and_then(|_| std::fs::read_to_string(&path).ok()).unwrap_or_default(),
        // The agents' warm-up is not in their results; the file's is the likeliest.
        warmup_secs: file.as_ref().map_or(0.0, |f| f.load.warmup.as_secs_f64()),
        duration_secs: merged.measured_secs,
        runs: Vec::new(),
        summary: None,
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn rfc3339(unix_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms as i64)
        .map_or_else(now, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A hint for `report` and `compare` given a load generator's result instead of a run's.
pub(crate) fn hint(path: &Path) -> Option<String> {
    let file = if path.is_dir() { path.join("results.json") } else { path.to_path_buf() };
    let bytes = std::fs::read(&file).ok()?;
    serde_json::from_slice::<LoadResult>(&bytes).ok()?;
    Some(format!(
        "{} is a load generator's result (`loadgen --out` or `merge --out`), not a run's; put it into a run directory \
         first: `taskbench merge {} --into DIR --name NAME` (agents' parts are merged on the way)",
        file.display(),
        file.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskbench_report::fixture;

    fn load(scenario: &str, secs: f64) -> LoadResult {
        let shape = fixture::Shape::new("axum", 1_000.0, 500.0);
        let made = fixture::results(&[scenario], &[shape], 1, 3, 1);
        let mut r = made.scenarios[0].runs[0].load.clone().expect("a load result");
        r.model = taskbench_report::model::ModelKind::Open;
        r.scenario = scenario.to_owned();
        r.measured_secs = secs;
        r
    }

    #[test]
    fn merged_runs_are_repeats_of_their_name_in_their_scenario() {
        let mut results = new_results(0.02);
        for name in ["axum", "actix", "axum"] {
            add(&mut results, name, &load("smoke", 3.0)).expect("added");
        }
        add(&mut results, "axum", &load("read-heavy", 3.0)).expect("another scenario");
        assert_eq!(results.config.frameworks, ["axum", "actix"]);
        assert_eq!(results.config.repeats, 2);
        let smoke: Vec<(&str, u32)> =
            results.scenarios[0].runs.iter().map(|r| (r.framework.as_str(), r.repeat)).collect();
        assert_eq!(smoke, [("axum", 1), ("actix", 1), ("axum", 2)]);
        assert_eq!(results.scenarios[1].name, "read-heavy");
        assert_eq!(results.scenarios[1].runs[0].repeat, 1);
    }

    #[test]
    fn a_run_that_measured_differently_is_refused() {
        let mut results = new_results(0.02);
        add(&mut results, "axum", &load("smoke", 3.0)).expect("added");
        let longer = add(&mut results, "actix", &load("smoke", 10.0)).expect_err("refused");
        assert!(longer.contains("measured 3.0 s in the results already, but 10.0 s"), "{longer}");
        let mut closed = load("smoke", 3.0);
        closed.model = taskbench_report::model::ModelKind::Closed;
        let model = add(&mut results, "actix", &closed).expect_err("refused");
        assert!(model.contains("is open in the results already, but closed"), "{model}");
        assert_eq!(results.scenarios[0].runs.len(), 1, "nothing added");
    }

    fn open_at(rps: f64, generator_limited: bool) -> LoadResult {
        let mut r = load("smoke", 3.0);
        r.open = Some(taskbench_results::OpenStats {
            target_rps: rps,
            scheduled: 3 * rps as u64,
            sent: 3 * rps as u64,
            offered_rps: rps,
            late_sends: 0,
            queued_sends: 0,
            dropped_sends: 0,
            max_in_flight: 64,
            send_lag_us: taskbench_results::Percentiles { p99: 2_500, ..Default::default() },
            send_lag_hdr: String::new(),
            generator_limited,
        });
        r
    }

    #[test]
    fn an_open_run_at_another_rate_is_refused_and_a_late_engine_is_the_bottleneck() {
        let mut results = new_results(0.02);
        add(&mut results, "axum", &open_at(1_000.0, false)).expect("added");
        assert!(results.scenarios[0].runs[0].bottlenecks.is_empty(), "kept its schedule");
        let rate = add(&mut results, "actix", &open_at(2_000.0, false)).expect_err("refused");
        assert!(rate.contains("offered 1000 req/s in the results already, but 2000 req/s"), "{rate}");
        add(&mut results, "actix", &open_at(1_010.0, true)).expect("within 5%");
        let late = &results.scenarios[0].runs[1].bottlenecks;
        assert_eq!(late.len(), 1, "{late:?}");
        assert_eq!(late[0].role, Role::Loadgen);
        assert!(late[0].detail.contains("send lag p99 2500 µs"), "{}", late[0].detail);
        // A run cut short measured less, and is recorded as cut short rather than refused.
        let mut cut = open_at(1_000.0, false);
        cut.measured_secs = 1.0;
        cut.incomplete = Some("interrupted".into());
        add(&mut results, "axum", &cut).expect("an incomplete run is kept");
        assert_eq!(results.scenarios[0].runs[2].error.as_deref(), Some("interrupted"));
    }

    #[test]
    fn a_document_of_merged_runs_reads_back() {
        let mut results = new_results(0.02);
        add(&mut results, "axum", &load("smoke", 3.0)).expect("added");
        let frameworks = results.config.frameworks.clone();
        for s in &mut results.scenarios {
            s.summary = taskbench_report::summary::summarise(s, &frameworks, 0.02, 1);
        }
        let json = serde_json::to_string_pretty(&results).expect("JSON");
        let back: Result<Results, _> = serde_json::from_str(&json);
        assert!(back.is_ok(), "{back:?}\n{json}");
    }
}
