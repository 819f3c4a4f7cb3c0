//! `taskbench run`: the framework comparison, end to end. Provision Postgres, locate (build) the
//! server binaries, then for each scenario seed a template database once and, repeat after
//! repeat with the framework order rotated, measure each framework on a fresh copy of it: server
//! process pinned, load generator process pinned, resources sampled. Results are written after
//! every run, so an interrupted run keeps what it measured.

mod cpus;
pub(crate) mod environment;
mod procs;
mod sampler;
mod targets;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use targets::Targets;
use taskbench_loadgen::Scenario;
use taskbench_provision::{DbChoice, DbKind, Postgres, ProvisionOptions};
use taskbench_report::model::{
    CpuPlan, DbConfig, ModelKind, ResourceSource, Results, Role, RunConfig, RunRecord, ScenarioResult,
};

use procs::{Loadgen, LoadgenEnd, LoadgenSpec, Server, ServerSpec};

/// Scenarios of a default run: a realistic mix, a read-mostly day, and the framework floor.
pub const DEFAULT_SCENARIOS: [&str; 3] = ["crud-mix", "read-heavy", "json-floor"];
/// Scenarios of `--find-max` when none is named: the shipped saturation searches.
pub const CAPACITY_SCENARIOS: [&str; 2] = ["capacity-read", "capacity-json"];
/// The frameworks taskbench ships a server for. Contenders (`--contender NAME=PATH`) are any
/// binaries under names of the user's, so a run's contenders are names, not this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Framework {
    Axum,
    Actix,
}

impl Framework {
    pub const ALL: [Framework; 2] = [Framework::Axum, Framework::Actix];

    /// Its name on the command line, in results and in its binary's name (`taskbench-NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Framework::Axum => "axum",
            Framework::Actix => "actix",
        }
    }

    /// A name as given on the command line (any case, spaces around it ignored).
    fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.map(Framework::name).to_vec();
            format!("unknown framework `{s}`; expected some of {}", names.join(","))
        })
    }
}
/// Steal time (the hypervisor taking this machine's CPUs) above this share of the run is warned
/// about, and flagged in the report.
pub const STEAL_WARNING: f64 = 0.05;
/// Time a run takes besides warm-up and measurement (database copy, server start, sign-ins).
const RUN_OVERHEAD: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Scenario file or shipped name; repeat for several [default: crud-mix, read-heavy, json-floor;
    /// with --quick: smoke].
    #[arg(long = "scenario", value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    /// Frameworks to compare, in this order.
    #[arg(long, value_delimiter = ',', default_value = "axum,actix", value_parser = Framework::parse)]
    pub frameworks: Vec<Framework>,
    /// Measured runs of each framework per scenario [default: 6, the fewest pairs that allow a
    /// 95% interval and a verdict; with --quick: 2, a range and no verdict].
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Measured duration of every run: a duration (`10s`), or `scenario` for each file's own
    /// [default: 5s; with --quick: scenario].
    #[arg(long)]
    pub duration: Option<String>,
    /// Warm-up of every run [default: each scenario's own].
    #[arg(long, value_parser = crate::loadgen::humantime_duration)]
    pub warmup: Option<Duration>,
    /// Postgres: auto, local (a throw-away cluster), docker[:IMAGE:TAG], or url:postgres://…
    /// (plain `docker` and `auto` start $TASKBENCH_POSTGRES_IMAGE, default postgres:15-alpine)
    /// [default: auto]. With --target: url:postgres://…/DATABASE, the database the targets serve
    /// from, reset before each run when the URL's role may.
    #[arg(long)]
    pub db: Option<String>,
    /// CPU affinity: `server=0,loadgen=1,db=1` (lists `0-3` or `0:2`), or `none`
    /// [default: on 2 CPUs the server gets one alone].
    #[arg(long)]
    pub cpus: Option<String>,
    /// Write into this directory instead of results/<UTC timestamp>-<id>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar; only errors and where the results are.
    #[arg(long)]
    pub quiet: bool,
    /// Print results.json on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// A quick look in under a minute: the smoke scenario, 2 repeats.
    #[arg(long)]
    pub quick: bool,
    /// Find each framework's maximum sustainable throughput under the scenario's [slo]: run
    /// every scenario as a saturation search (rates from its open-model rate, or 100 req/s, up to
    /// 1,000,000; 3 s steps unless --duration) [default scenarios: capacity-read, capacity-json].
    #[arg(long)]
    pub find_max: bool,
    /// A server binary to use instead of building/locating it: `axum=PATH` (repeatable).
    #[arg(long = "server-bin", value_name = "FRAMEWORK=PATH", value_parser = parse_server_bin)]
    pub server_bins: Vec<(Framework, PathBuf)>,
    /// A contender instead of a framework: `NAME=PATH [SERVER ARGS]`, shell-quoted, e.g.
    /// `base=old/taskbench-axum` or `'head=new/taskbench-axum --inject-cpu-us 3'`. Repeat for each
    /// (two or more replace --frameworks); they run interleaved A B, B A, … and
    /// `taskbench gate` judges the second against the first.
    #[arg(long = "contender", value_name = "NAME=PATH [ARGS]", value_parser = parse_contender, conflicts_with_all = ["frameworks", "server_bins"])]
    pub contenders: Vec<Contender>,
    /// A server taskbench does not start, under a name of yours: `axum=http://10.0.0.5:8080`
    /// (repeat for each; replaces --frameworks). Any http:// host: load goes where you say. Its
    /// database is --db url:…; what such a run gives up is recorded (README, "More than one
    /// machine").
    #[arg(long = "target", value_name = "NAME=URL", value_parser = targets::parse_target, conflicts_with_all = ["frameworks", "server_bins", "contenders"])]
    pub targets: Vec<(String, String)>,
    /// The practical threshold of the paired comparisons: smaller differences are no practical
    /// difference (a percentage, 2%, or a fraction, 0.02).
    #[arg(long, default_value = "2%", value_parser = crate::compare::parse_threshold)]
    pub min_effect: f64,
    /// Do not run `cargo build` for the servers; use those already built (`target/server/` for a
    /// release taskbench, `target/debug/` for a debug one, beside this binary when installed).
    #[arg(long)]
    pub no_build: bool,
    /// Database connections in each server's pool.
    #[arg(long, default_value_t = 16)]
    pub pool_size: u32,
    /// How often resources are sampled.
    #[arg(long, default_value = "250ms", value_parser = crate::loadgen::humantime_duration)]
    pub sample_interval: Duration,
    /// Seed of the Monte Carlo permutation tests (above 16 pairs) [default: random].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the servers' memory and CPU are read: `proc` (this machine's /proc, with the
    /// kernel's high-water mark) or `metrics` (each server's /metrics, as for a server on another
    /// machine; peak memory is then the highest sample) [default: proc; with --target: metrics].
    #[arg(long, value_parser = parse_resource_source)]
    pub server_resources: Option<ResourceSource>,
}

fn parse_resource_source(s: &str) -> Result<ResourceSource, String> {
    match s.trim() {
        "proc" => Ok(ResourceSource::Proc),
        "metrics" => Ok(ResourceSource::Metrics),
        other => Err(format!("expected `proc` or `metrics`, found `{other}`")),
    }
}

/// A server binary under a name of its own, with extra arguments (`--contender`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contender {
    pub name: String,
    pub binary: PathBuf,
    pub args: Vec<String>,
}

/// A contender's or target's name, checked: names become part of database names
/// (`tb_…_r3_<name>`), Postgres identifiers we can use unquoted, within its 63-byte limit.
pub(crate) fn contender_name(name: &str) -> Result<String, String> {
    if name.is_empty()
        || name.len() > 24
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!("names are 1 to 24 lower-case letters, digits and `_`; found `{name}`"));
    }
    Ok(name.to_owned())
}

fn parse_contender(s: &str) -> Result<Contender, String> {
    let expected = "expected NAME=PATH [SERVER ARGS], e.g. `head=target/server/taskbench-axum --inject-cpu-us 3`";
    let (name, rest) = s.split_once('=').ok_or_else(|| format!("{expected}; found `{s}`"))?;
    let name = contender_name(name.trim()).map_err(|e| format!("contender {e} ({expected})"))?;
    let words = shell_words::split(rest).map_err(|e| format!("{e} in `{rest}` ({expected})"))?;
    let Some((binary, args)) = words.split_first() else {
        return Err(format!("no binary for contender `{name}` ({expected})"));
    };
    Ok(Contender { name, binary: PathBuf::from(binary), args: args.to_vec() })
}

fn parse_server_bin(s: &str) -> Result<(Framework, PathBuf), String> {
    let (fw, path) = s.split_once('=').ok_or_else(|| format!("expected FRAMEWORK=PATH, found `{s}`"))?;
    Ok((Framework::parse(fw)?, PathBuf::from(path)))
}

/// Why `taskbench run` refused its arguments, before anything started.
#[derive(Debug, thiserror::Error)]
enum PlanError {
    #[error(transparent)]
    Scenario(#[from] taskbench_loadgen::scenario::ScenarioError),
    #[error("--find-max: {0}")]
    FindMax(taskbench_loadgen::scenario::NoLatencyObjective),
    #[error("--contender: the name `{0}` is given twice; expected one name per contender")]
    ContenderTwice(String),
    #[error("--frameworks: expected at least one of {}", Framework::ALL.map(Framework::name).join(","))]
    NoFramework,
    #[error("--repeats must be at least 1")]
    NoRepeat,
    #[error("--duration: {0}, or `scenario`")]
    Duration(String),
    #[error("--duration must be longer than 0s")]
    ZeroDuration,
    #[error("--db: {0}")]
    Db(taskbench_provision::ProvisionError),
    #[error("{0}")]
    Cpus(String),
    #[error("--target: the name `{0}` is given twice; expected one name per target")]
    TargetTwice(String),
    #[error(
        "--target: --db names the database the targets serve from, as url:postgres://…/DATABASE; found `{0}` (a \
         database taskbench starts would not be theirs)"
    )]
    TargetDb(String),
    #[error(
        "--target: --server-resources proc reads this machine's /proc, which has no process of a server taskbench \
         did not start; expected `metrics` (the default with --target)"
    )]
    TargetProc,
    #[error(
        "--target: --cpus may pin only the load generator (loadgen=LIST) of a run against servers taskbench did not \
         start; found `{0}`"
    )]
    TargetCpus(String),
}

/// Why one measured run failed. Losing the database ends the whole `taskbench run` (every later
/// run needs it); anything else fails that run only, and the next one starts afresh.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Server(String),
    #[error("{0}")]
    Loadgen(String),
}

/// Everything decided before the first run.
struct RunPlan {
    scenarios: Vec<(PathBuf, Scenario)>,
    frameworks: Vec<String>,
    repeats: u32,
    duration: Option<Duration>,
    warmup: Option<Duration>,
    db: DbChoice,
    cpus: CpuPlan,
    out: PathBuf,
    id: String,
    /// `--target`s by name (empty when taskbench starts the servers).
    targets: BTreeMap<String, String>,
    resources: ResourceSource,
}

fn plan(args: &RunArgs) -> Result<RunPlan, PlanError> {
    let names: Vec<String> = if !args.scenarios.is_empty() {
        args.scenarios.clone()
    } else if args.find_max {
        CAPACITY_SCENARIOS.iter().map(|s| (*s).to_owned()).collect()
    } else if args.quick {
        vec!["smoke".into()]
    } else {
        DEFAULT_SCENARIOS.iter().map(|s| (*s).to_owned()).collect()
    };
    let mut scenarios = Vec::new();
    for name in &names {
        let path = Scenario::locate(name, &crate::scenarios_dir());
        let mut scenario = Scenario::from_file(&path)?;
        if args.find_max {
            scenario = scenario.as_search().map_err(PlanError::FindMax)?;
        }
        scenarios.push((path, scenario));
    }
    let mut frameworks = Vec::new();
    for c in &args.contenders {
        if frameworks.contains(&c.name) {
            return Err(PlanError::ContenderTwice(c.name.clone()));
        }
        frameworks.push(c.name.clone());
    }
    let mut targets = BTreeMap::new();
    for (name, url) in &args.targets {
        if targets.insert(name.clone(), url.clone()).is_some() {
            return Err(PlanError::TargetTwice(name.clone()));
        }
        frameworks.push(name.clone());
    }
    for f in args.frameworks.iter().filter(|_| args.contenders.is_empty() && args.targets.is_empty()) {
        if !frameworks.iter().any(|known| known == f.name()) {
            frameworks.push(f.name().to_owned());
        }
    }
    if frameworks.is_empty() {
        return Err(PlanError::NoFramework);
    }
    let repeats = args.repeats.unwrap_or(if args.quick { 2 } else { 6 });
    if repeats == 0 {
        return Err(PlanError::NoRepeat);
    }
    let duration = match args.duration.as_deref() {
        Some("scenario") => None,
        Some(d) => {
            let d = crate::loadgen::humantime_duration(d).map_err(PlanError::Duration)?;
            if d.is_zero() {
                return Err(PlanError::ZeroDuration);
            }
            Some(d)
        }
        None if args.quick => None,
        None => Some(Duration::from_secs(5)),
    };
    let db: DbChoice = args.db.as_deref().unwrap_or("auto").parse().map_err(PlanError::Db)?;
    let available = cpus::available();
    let mut cpus = match &args.cpus {
        Some(spec) => cpus::parse(spec, &available).map_err(PlanError::Cpus)?,
        None => cpus::default_plan(&available),
    };
    let resources = args.server_resources.unwrap_or(if targets.is_empty() {
        ResourceSource::Proc
    } else {
        ResourceSource::Metrics
    });
    if !targets.is_empty() {
        if let Some(given) = args.db.as_deref().filter(|_| !matches!(db, DbChoice::Url(_))) {
            return Err(PlanError::TargetDb(given.to_owned()));
        }
        if resources == ResourceSource::Proc {
            return Err(PlanError::TargetProc);
        }
        match &args.cpus {
            Some(spec) if cpus.server.is_some() || cpus.db.is_some() => {
                return Err(PlanError::TargetCpus(spec.clone()));
            }
            Some(_) => {}
            // Nothing else of the run is on this machine: the load generator may use all of it.
            None => {
                cpus = CpuPlan {
                    origin: "servers not started by taskbench: the load generator is not pinned".into(),
                    ..CpuPlan::default()
                };
            }
        }
    }
    let now = chrono::Utc::now();
    let id = format!("{}-{:06x}", now.format("%Y%m%dT%H%M%SZ"), rand::random::<u32>() & 0xff_ffff);
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("results").join(&id));
    Ok(RunPlan { scenarios, frameworks, repeats, duration, warmup: args.warmup, db, cpus, out, id, targets, resources })
}

/// Steps a search is expected to take: the geometric ones to `max`, then bisection to the
/// precision (an estimate for the progress bar; the search stops when it has its answer).
fn expected_steps(spec: &taskbench_loadgen::scenario::SearchSpec) -> u32 {
    let grow = ((spec.max / spec.from).ln() / spec.growth.ln()).ceil().max(1.0);
    let bisect = ((spec.growth - 1.0) / spec.precision).log2().ceil().max(0.0);
    // A search on this kind of machine breaks well before `max`: about half the way up.
    ((grow / 2.0).ceil() + bisect + 1.0).min(f64::from(spec.max_steps)) as u32
}

/// The order of the frameworks in `repeat` (1-based): rotated, so each takes each position.
fn order(frameworks: &[String], repeat: u32) -> Vec<String> {
    let mut v = frameworks.to_vec();
    let n = v.len().max(1);
    v.rotate_left((repeat as usize - 1) % n);
    v
}

pub async fn run(args: RunArgs) -> ExitCode {
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => return crate::fail(&e.to_string()),
    };
    if let Err(e) = std::fs::create_dir_all(plan.out.join("logs")) {
        return crate::fail(&format!("creating {}: {e}", plan.out.display()));
    }
    let servers = match servers(&args, &plan) {
        Ok(s) => s,
        Err(e) => return crate::fail(&e),
    };
    let (interrupt_tx, interrupt) = tokio::sync::watch::channel(false);
    // SIGTERM (a CI job's timeout, `kill`) is the same request as Ctrl-C: stop, keep what was
    // measured, write the report.
    let signalled = taskbench_lifecycle::shutdown_signal_now();
    let on_ctrl_c = tokio::spawn(async move {
        signalled.await;
        tracing::warn!("interrupted: stopping the current run, keeping what was measured");
        let _ = interrupt_tx.send(true);
    });
    let (fleet, db) = match Fleet::prepare(&args, &plan).await {
        Ok(f) => f,
        Err(e) => return crate::fail(&e),
    };
    for lost in fleet.lost_guarantees() {
        tracing::warn!("--target: {lost}");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut results = begun(&args, &plan, &servers, db, fleet.lost_guarantees(), seed);
    let progress = Progress::new(&plan, args.quiet || args.json);
    let mut runner = Runner {
        plan: &plan,
        args: &args,
        fleet: &fleet,
        binaries: &servers.binaries,
        server_args: &servers.args,
        results: &mut results,
        progress,
    };
    let stopped = runner.all(interrupt).await;
    runner.progress.bar.finish_and_clear();
    on_ctrl_c.abort();
    tracing::info!("writing results.json and rendering the report");
    results.finished_at = Some(now());
    results.incomplete = stopped;
    for s in &mut results.scenarios {
        s.summary = taskbench_report::summary::summarise(s, &plan.frameworks, args.min_effect, seed);
    }
    let wrote = results.write(&plan.out);
    let put_back = fleet.finish().await;
    drop(fleet);
    if let Err(e) = wrote {
        return crate::fail(&format!("writing {}: {e}", plan.out.join("results.json").display()));
    }
    let code = finish(&args, &plan, &results);
    match put_back {
        Ok(()) => code,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Who serves the runs.
enum Fleet {
    /// Servers taskbench starts, on a Postgres it provisions (or is given): each run on a fresh
    /// copy of the seeded template.
    Started(Postgres),
    /// Servers it did not start (`--target`).
    Targets(Targets),
}

impl Fleet {
    /// Provisions Postgres (pinning it), or checks the targets and their database; also
    /// results.json's `config.db`.
    async fn prepare(args: &RunArgs, plan: &RunPlan) -> Result<(Fleet, DbConfig), String> {
        if !plan.targets.is_empty() {
            let db_url = match &plan.db {
                DbChoice::Url(url) if args.db.is_some() => Some(url.as_str()),
                _ => None,
            };
            let stamp = plan.id.split('-').next_back().unwrap_or("0");
            let targets = Targets::prepare(plan.targets.clone(), db_url, stamp).await?;
            let db = targets.db_config();
            return Ok((Fleet::Targets(targets), db));
        }
        tracing::info!(choice = %plan.db, "provisioning Postgres");
        let pg = Postgres::provision(&plan.db, &ProvisionOptions::default()).await.map_err(|e| e.to_string())?;
        let version = pg.server_version().await.map_err(|e| format!("the database is not usable: {e}"))?;
        if let (Some(pid), Some(db_cpus)) = (pg.server_pid(), plan.cpus.db.as_deref()) {
            pin_postgres(pid, db_cpus);
        }
        let db = DbConfig {
            kind: pg.kind().to_string(),
            detail: format!("PostgreSQL {version}, {}", describe_db(&pg)),
            // Both are started with the default, durable settings; of a given URL we know nothing.
            durable: matches!(pg.kind(), DbKind::Local | DbKind::Docker).then_some(true),
        };
        Ok((Fleet::Started(pg), db))
    }

    fn lost_guarantees(&self) -> Vec<String> {
        match self {
            Fleet::Started(_) => Vec::new(),
            Fleet::Targets(t) => t.lost_guarantees(),
        }
    }

    /// After the last run: the targets' database put back as it was found.
    async fn finish(&self) -> Result<(), String> {
        match self {
            Fleet::Started(_) => Ok(()),
            Fleet::Targets(t) => t.finish().await,
        }
    }
}

/// The server binaries of a run, by contender, with their extra arguments and build profile.
struct Servers {
    binaries: BTreeMap<String, PathBuf>,
    args: BTreeMap<String, Vec<String>>,
    profile: String,
}

/// Finds (building them first where it can) the contenders' binaries, then pins taskbench itself
/// to the load generator's CPUs: after the build, which should have every CPU.
fn servers(args: &RunArgs, plan: &RunPlan) -> Result<Servers, String> {
    if !plan.targets.is_empty() {
        if let Some(own) = plan.cpus.loadgen.as_deref()
            && let Err(e) = cpus::pin_self(own)
        {
            tracing::warn!(error = %e, "could not pin taskbench itself to the load generator's CPUs");
        }
        let profile = taskbench_report::model::UNKNOWN_PROFILE.to_owned();
        return Ok(Servers { binaries: BTreeMap::new(), args: BTreeMap::new(), profile });
    }
    let given: BTreeMap<String, PathBuf> = if args.contenders.is_empty() {
        args.server_bins.iter().map(|(f, path)| (f.name().to_owned(), path.clone())).collect()
    } else {
        args.contenders.iter().map(|c| (c.name.clone(), c.binary.clone())).collect()
    };
    let server_args = args.contenders.iter().map(|c| (c.name.clone(), c.args.clone())).collect();
    let (binaries, profile) = environment::server_binaries(&plan.frameworks, &given, !args.no_build)?;
    if let Some(own) = plan.cpus.loadgen.as_deref()
        && let Err(e) = cpus::pin_self(own)
    {
        tracing::warn!(error = %e, "could not pin taskbench itself to the load generator's CPUs");
    }
    if !taskbench_report::model::optimised_profile(&profile) {
        tracing::warn!(%profile, "the servers are not optimised (`server` profile) builds: numbers will not represent the frameworks");
    }
    Ok(Servers { binaries, args: server_args, profile })
}

/// The results document of a run that has just begun: environment and configuration, no
/// scenario yet, marked in progress.
fn begun(args: &RunArgs, plan: &RunPlan, servers: &Servers, db: DbConfig, lost: Vec<String>, seed: u64) -> Results {
    // Of servers taskbench did not start, it knows neither pool nor threads: 0.
    let started = plan.targets.is_empty();
    Results {
        schema_version: taskbench_report::SCHEMA_VERSION,
        id: plan.id.clone(),
        started_at: now(),
        finished_at: None,
        incomplete: Some("the run is in progress".into()),
        environment: environment::environment(&servers.profile, &servers.binaries),
        config: RunConfig {
            // Never a password: `--db url:postgres://user:***@host/db`.
            command_line: std::env::args()
                .map(|a| if a.contains("://") { taskbench_provision::redact(&a) } else { a })
                .collect(),
            frameworks: plan.frameworks.clone(),
            repeats: plan.repeats,
            duration_secs: plan.duration.map(|d| d.as_secs_f64()),
            warmup_secs: plan.warmup.map(|d| d.as_secs_f64()),
            quick: args.quick,
            db,
            cpus: plan.cpus.clone(),
            sample_interval_ms: args.sample_interval.as_millis() as u64,
            server_pool_size: if started { args.pool_size } else { 0 },
            server_workers: match &plan.cpus.server {
                _ if !started => 0,
                Some(server) => server.len(),
                None => cpus::available().len(),
            },
            seed,
            min_effect: args.min_effect,
            server_args: servers.args.clone(),
            server_resources: Some(plan.resources),
            targets: plan.targets.clone(),
            lost_guarantees: lost,
        },
        scenarios: Vec::new(),
    }
}

/// Renders the report, prints the summary (or results.json) and says where the results are;
/// the exit code: 1 when the run is incomplete or a run failed, 2 when the report could not be
/// rendered.
fn finish(args: &RunArgs, plan: &RunPlan, results: &Results) -> ExitCode {
    let rendered = crate::report::render(results, &plan.out);
    let mut stdout = std::io::stdout();
    if args.json {
        let _ = stdout.write_all(&serde_json::to_vec_pretty(results).unwrap_or_default());
        let _ = stdout.write_all(b"\n");
    } else if !args.quiet {
        let _ = stdout.write_all(crate::report::summary(results).as_bytes());
    }
    let _ = writeln!(std::io::stderr(), "taskbench: results in {}", plan.out.display());
    if let Err(e) = rendered {
        return crate::fail(&format!("rendering the report: {e}"));
    }
    let any_failed = results.scenarios.iter().flat_map(|s| &s.runs).any(|r| !r.is_clean());
    match &results.incomplete {
        Some(why) => {
            tracing::error!("the run is incomplete: {why}");
            ExitCode::from(1)
        }
        None if any_failed => {
            tracing::error!("some runs failed or ended early; see the report");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn describe_db(pg: &Postgres) -> String {
    // Never record a password.
    let shown = taskbench_provision::redact(pg.url());
    match (pg.kind(), pg.container_id(), pg.container_image()) {
        (DbKind::Local, ..) => format!("throw-away local cluster at {shown}"),
        (DbKind::Docker, Some(id), Some(image)) => {
            format!("throw-away container {} of {image} at {shown}", id.get(..12).unwrap_or(id))
        }
        (kind, ..) => format!("{kind} at {shown}"),
    }
}

/// Pins the postmaster and its current children; backends forked later inherit the mask.
fn pin_postgres(postmaster: u32, db_cpus: &[usize]) {
    let mut system = sysinfo::System::new();
    system.refresh_processes(sysinfo::ProcessesToUpdate::All, true);
    let pm = sysinfo::Pid::from_u32(postmaster);
    let children = system.processes().iter().filter(|(_, p)| p.parent() == Some(pm)).map(|(pid, _)| pid.as_u32());
    for pid in std::iter::once(postmaster).chain(children) {
        if let Err(e) = cpus::pin_pid(pid, db_cpus) {
            tracing::warn!(pid, error = %e, "could not pin a Postgres process");
        }
    }
}

/// How long a run of `s` is expected to take (a search: its expected steps).
fn expected_run(plan: &RunPlan, s: &Scenario) -> Duration {
    match &s.load.model {
        taskbench_loadgen::scenario::LoadModel::Search(spec) => {
            let step = plan.warmup.unwrap_or(s.load.warmup) + s.load.duration;
            step * expected_steps(spec) + RUN_OVERHEAD
        }
        _ => plan.warmup.unwrap_or(s.load.warmup) + plan.duration.unwrap_or(s.load.duration) + RUN_OVERHEAD,
    }
}

/// One bar over the whole run, driven by the clock against each run's expected length.
struct Progress {
    bar: ProgressBar,
    state: Arc<Mutex<(u64, Instant, u64)>>,
}

impl Progress {
    fn new(plan: &RunPlan, hidden: bool) -> Self {
        let per_run = |s: &Scenario| expected_run(plan, s);
        let total: Duration =
            plan.scenarios.iter().map(|(_, s)| per_run(s) * plan.repeats * plan.frameworks.len() as u32).sum();
        let bar = if hidden { ProgressBar::hidden() } else { ProgressBar::new(total.as_millis() as u64) };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {elapsed} elapsed, ~{eta} left  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let state = Arc::new(Mutex::new((0u64, Instant::now(), 0u64)));
        let (bar2, state2) = (bar.clone(), state.clone());
        tokio::spawn(async move {
            while !bar2.is_finished() {
                if let Ok(s) = state2.lock() {
                    bar2.set_position(s.0 + (s.1.elapsed().as_millis() as u64).min(s.2));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { bar, state }
    }

    fn start(&self, expected: Duration, message: String) {
        if let Ok(mut s) = self.state.lock() {
            s.0 += s.2;
            *s = (s.0, Instant::now(), expected.as_millis() as u64);
        }
        self.bar.set_message(message);
    }
}

/// A scenario's entry in results.json, before its first run.
fn scenario_result(path: &Path, scenario: &Scenario) -> ScenarioResult {
    ScenarioResult {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        model: match scenario.load.model {
            taskbench_loadgen::scenario::LoadModel::Closed { .. } => ModelKind::Closed,
            taskbench_loadgen::scenario::LoadModel::Open { .. } => ModelKind::Open,
            taskbench_loadgen::scenario::LoadModel::Search(_) => ModelKind::Search,
        },
        file: path.display().to_string(),
        source: std::fs::read_to_string(path).unwrap_or_default(),
        warmup_secs: scenario.load.warmup.as_secs_f64(),
        duration_secs: scenario.load.duration.as_secs_f64(),
        runs: Vec::new(),
        summary: None,
    }
}

/// One measured run to make: which scenario, contender, repeat and position, on which copy of
/// which template.
struct Job<'s> {
    path: &'s Path,
    scenario: &'s Scenario,
    framework: &'s str,
    repeat: u32,
    position: u32,
    db: String,
    template: &'s str,
}

struct Runner<'a> {
    plan: &'a RunPlan,
    args: &'a RunArgs,
    fleet: &'a Fleet,
    binaries: &'a BTreeMap<String, PathBuf>,
    server_args: &'a BTreeMap<String, Vec<String>>,
    results: &'a mut Results,
    progress: Progress,
}

/// The server of one measured run.
enum Serving {
    /// Started for this run, stopped after it.
    Started(Server),
    /// A `--target`: its base URL; never stopped.
    Target(String),
}

impl Serving {
    fn base_url(&self) -> &str {
        match self {
            Serving::Started(server) => &server.base_url,
            Serving::Target(url) => url,
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Serving::Started(server) => Some(server.pid),
            Serving::Target(_) => None,
        }
    }

    fn target(&self) -> Result<taskbench_loadgen::client::Target, taskbench_loadgen::LoadError> {
        use taskbench_loadgen::client::{Reach, Target};
        Target::parse_with(self.base_url(), Reach::Anywhere)
    }

    async fn stop(self) {
        if let Serving::Started(server) = self {
            server.stop().await;
        }
    }
}

/// Why a run that was asked to stop is incomplete.
const INTERRUPTED: &str = "interrupted (SIGINT or SIGTERM)";

fn interrupted(rx: &tokio::sync::watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

impl Runner<'_> {
    /// Runs everything; returns why it stopped early, if it did.
    async fn all(&mut self, mut interrupt: tokio::sync::watch::Receiver<bool>) -> Option<String> {
        let stamp = self.plan.id.split('-').next_back().unwrap_or("0").to_owned();
        for (index, (path, scenario)) in self.plan.scenarios.iter().enumerate() {
            let scenario = self.effective(scenario);
            self.results.scenarios.push(scenario_result(path, &scenario));
            let template = format!("tb_{stamp}_{index}_seeded");
            self.progress.start(Duration::ZERO, format!("{}: seeding", scenario.name));
            if let Err(e) = self.seed(&template, &scenario).await {
                self.drop_template(&template).await;
                return Some(format!("seeding {}: {e}", scenario.name));
            }
            if interrupted(&interrupt) {
                self.drop_template(&template).await;
                return Some(INTERRUPTED.into());
            }
            for repeat in 1..=self.plan.repeats {
                for (position, framework) in order(&self.plan.frameworks, repeat).iter().enumerate() {
                    let job = Job {
                        path,
                        scenario: &scenario,
                        framework,
                        repeat,
                        position: position as u32 + 1,
                        db: format!("tb_{stamp}_{index}_r{repeat}_{framework}"),
                        template: &template,
                    };
                    let (record, db_lost) = self.one(&job, &mut interrupt).await;
                    if let Some(s) = self.results.scenarios.last_mut() {
                        s.runs.push(record);
                    }
                    if let Err(e) = self.results.write(&self.plan.out) {
                        tracing::error!(error = %e, "writing results.json");
                    }
                    if interrupted(&interrupt) {
                        self.drop_template(&template).await;
                        return Some(INTERRUPTED.into());
                    }
                    if db_lost {
                        // Its server may be back by now; a failure here is only warned of.
                        let dropped = tokio::time::timeout(Duration::from_secs(15), self.drop_template(&template));
                        if dropped.await.is_err() {
                            tracing::warn!("dropping the copy {template}: no answer within 15 s");
                        }
                        return Some("the database became unavailable".into());
                    }
                }
            }
            self.drop_template(&template).await;
        }
        None
    }

    /// Drops a scenario's seeded template (or the targets' seeded copy).
    async fn drop_template(&self, template: &str) {
        match self.fleet {
            Fleet::Started(pg) => {
                let _ = pg.drop_database(template).await;
            }
            Fleet::Targets(targets) => targets.drop_template(template).await,
        }
    }

    /// The scenario as it runs: the command line's duration and warm-up over the file's.
    fn effective(&self, scenario: &Scenario) -> Scenario {
        let mut scenario = scenario.clone();
        let search = matches!(scenario.load.model, taskbench_loadgen::scenario::LoadModel::Search(_));
        // A search's duration is per step: only an explicit --duration changes it.
        if let Some(d) = self.plan.duration.filter(|_| !search || self.args.duration.is_some()) {
            scenario.load.duration = d;
        }
        if let Some(w) = self.plan.warmup {
            scenario.load.warmup = w;
        }
        scenario
    }

    fn server_spec<'b>(&'b self, framework: &str, url: &'b str, log: PathBuf) -> ServerSpec<'b> {
        ServerSpec {
            binary: &self.binaries[framework],
            database_url: url,
            pool_size: self.args.pool_size,
            workers: self.results.config.server_workers,
            cpus: self.plan.cpus.server.as_deref(),
            log,
            args: self.server_args.get(framework).map_or(&[], Vec::as_slice),
        }
    }

    /// Creates `template`, migrates it and seeds the scenario's data through the API of a
    /// server of the first framework, then stops it so the template can be copied.
    async fn seed(&self, template: &str, scenario: &Scenario) -> Result<(), RunError> {
        let pg = match self.fleet {
            Fleet::Started(pg) => pg,
            Fleet::Targets(targets) => return targets.seed(template, scenario, &self.plan.frameworks[0]).await,
        };
        let url = pg.create_database(template).await.map_err(|e| RunError::Database(e.to_string()))?;
        let log = self.plan.out.join("logs").join(format!("{}-seed.log", scenario.name));
        let server = Server::start(&self.server_spec(&self.plan.frameworks[0], &url, log)).await?;
        let client = taskbench_loadgen::client::http_client(4);
        let seeded = match taskbench_loadgen::client::Target::parse(&server.base_url) {
            Ok(target) => taskbench_loadgen::client::seed_via_api(&client, &target, &scenario.data)
                .await
                .map_err(|e| RunError::Loadgen(e.to_string())),
            Err(e) => Err(RunError::Server(e.to_string())),
        };
        server.stop().await;
        seeded
    }

    /// One measured run on a fresh copy of the template; also whether the database was lost
    /// (which ends the whole `taskbench run`).
    async fn one(&mut self, job: &Job<'_>, interrupt: &mut tokio::sync::watch::Receiver<bool>) -> (RunRecord, bool) {
        let label = format!("{} · {} · repeat {}/{}", job.scenario.name, job.framework, job.repeat, self.plan.repeats);
        tracing::info!("run: {label}");
        self.progress.start(expected_run(self.plan, job.scenario), label);
        let mut record = RunRecord {
            framework: job.framework.to_owned(),
            repeat: job.repeat,
            position: job.position,
            started_at: now(),
            load: None,
            resources: BTreeMap::new(),
            samples: Vec::new(),
            bottlenecks: Vec::new(),
            error: None,
            steps: Vec::new(),
            steal: None,
        };
        let phase = Instant::now();
        let prepared = match self.fleet {
            Fleet::Started(pg) => {
                pg.create_database_from(&job.db, job.template).await.map_err(|e| RunError::Database(e.to_string()))
            }
            Fleet::Targets(targets) => targets.before_run(job.template, job.framework).await.map(|()| String::new()),
        };
        let url = match prepared {
            Ok(url) => url,
            Err(e) => {
                let lost = matches!(e, RunError::Database(_));
                record.error = Some(e.to_string());
                return (record, lost);
            }
        };
        tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "database ready");
        let mut lost = false;
        if let Err(e) = self.measure(job, &url, interrupt, &mut record).await {
            lost = matches!(e, RunError::Database(_));
            record.error = Some(e.to_string());
        }
        // A database that is gone at the end of the run made (some of) its errors, not the
        // server: say so on the run (what it measured is kept, and left out of the medians) and
        // stop there. Bounded, so that a database host that stopped answering cannot stall it.
        let reachable = match self.fleet {
            Fleet::Started(pg) => match tokio::time::timeout(Duration::from_secs(5), pg.server_version()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 5 s".to_owned()),
            },
            Fleet::Targets(targets) => targets.database_reachable().await,
        };
        if let Err(e) = reachable {
            let measured = record.error.take().map_or_else(String::new, |e| format!("; the run itself: {e}"));
            let unreachable = RunError::Database(format!("unreachable at the end of the run ({e}){measured}"));
            record.error = Some(unreachable.to_string());
            return (record, true);
        }
        if let Fleet::Started(pg) = self.fleet
            && let Err(e) = pg.drop_database(&job.db).await
        {
            tracing::warn!(error = %e, "dropping the run's database");
        }
        tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "run done, database dropped");
        (record, lost)
    }

    /// Starts the server on `url`'s database and the load generator against it, samples both
    /// and Postgres until the load generator ends, and fills `record` with what was measured.
    async fn measure(
        &self,
        job: &Job<'_>,
        url: &str,
        interrupt: &mut tokio::sync::watch::Receiver<bool>,
        record: &mut RunRecord,
    ) -> Result<(), RunError> {
        let phase = Instant::now();
        let logs = self.plan.out.join("logs");
        let stem = format!("{}-{}-{}", job.scenario.name, job.framework, job.repeat);
        let server = match self.fleet {
            Fleet::Started(_) => Serving::Started(
                Server::start(&self.server_spec(job.framework, url, logs.join(format!("{stem}-server.log")))).await?,
            ),
            // Healthy already (`Targets::before_run`).
            Fleet::Targets(targets) => Serving::Target(targets.url(job.framework).to_owned()),
        };
        tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "server ready");
        // Ready and not yet loaded: what a server costs just by running.
        let idle_server_rss = match self.plan.resources {
            ResourceSource::Proc => server.pid().and_then(sampler::vm_rss),
            ResourceSource::Metrics => match server.target() {
                Ok(target) => {
                    let client = taskbench_loadgen::client::http_client(1);
                    sampler::scrape(&client, &target).await.map(|r| r.mem)
                }
                Err(_) => None,
            },
        };
        let loadgen = match Loadgen::start(&LoadgenSpec {
            scenario_file: job.path,
            target: server.base_url(),
            duration: Some(job.scenario.load.duration),
            warmup: Some(job.scenario.load.warmup),
            out: logs.join(format!("{stem}-load.json")),
            stderr: logs.join(format!("{stem}-loadgen.log")),
            cpus: self.plan.cpus.loadgen.as_deref(),
            find_max: self.args.find_max,
            remote: matches!(self.fleet, Fleet::Targets(_)),
        }) {
            Ok(l) => l,
            Err(e) => {
                server.stop().await;
                return Err(e);
            }
        };
        let postgres = match self.fleet {
            Fleet::Started(pg) => pg.server_pid(),
            Fleet::Targets(_) => None,
        };
        let watched = sampler::Watched { server: server.pid(), loadgen: loadgen.pid, postgres };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let scrape_from = match self.plan.resources {
            ResourceSource::Proc => None,
            ResourceSource::Metrics => {
                Some(server.target().map_err(|e| RunError::Server(format!("sampling its /metrics: {e}")))?)
            }
        };
        let sampling = tokio::spawn(sampler::sample(watched, self.args.sample_interval, scrape_from, stop_rx));
        let end = loadgen.finish(interrupt).await;
        tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "load generator done");
        let _ = stop_tx.send(());
        let (readings, mut hwm) = sampling.await.unwrap_or_default();
        tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "sampler done");
        server.stop().await;
        tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "server stopped");
        let load = match end {
            LoadgenEnd::Result(load) => load,
            LoadgenEnd::Failed(why) => return Err(RunError::Loadgen(why)),
        };
        let start = load.measure_started_unix_ms.unwrap_or(0);
        let measured_ms = (load.measured_secs * 1000.0) as u64;
        let allotted: BTreeMap<Role, usize> = Role::ALL
            .into_iter()
            .map(|role| {
                (role, self.plan.cpus.of(role).map_or(self.results.environment.machine.logical_cpus, <[usize]>::len))
            })
            .collect();
        if let Some(peak) = load.generator_peak_rss_bytes {
            hwm.insert(Role::Loadgen, peak);
        }
        record.samples = sampler::samples(&readings, start);
        record.steal = sampler::steal_share(&readings, start, start + measured_ms);
        if let Some(steal) = record.steal.filter(|s| *s > STEAL_WARNING) {
            tracing::warn!(
                "the hypervisor took {:.0}% of this machine's CPU time during the run (steal): its numbers include \
                 that noise",
                steal * 100.0
            );
        }
        let window = sampler::Window {
            start_ms: start,
            end_ms: start + measured_ms,
            successes: load.total.successes,
            allotted: &allotted,
            hwm: &hwm,
            idle_server_rss,
        };
        record.resources = sampler::stats(&readings, &window);
        // A server on another machine does not share this one's CPUs with the load generator.
        let mut shared_here = record.resources.clone();
        if let Fleet::Targets(targets) = self.fleet
            && targets.remote()
        {
            shared_here.remove(&Role::Server);
        }
        record.bottlenecks = taskbench_report::summary::bottlenecks(
            &shared_here,
            &self.plan.cpus,
            self.results.environment.machine.logical_cpus,
        );
        // Of a server taskbench did not start it knows neither the CPUs nor what else runs there:
        // a share of this machine's CPUs would say nothing of its saturation.
        if let Fleet::Targets(_) = self.fleet {
            record.bottlenecks.retain(|b| b.role == Role::Loadgen);
        }
        // The open-model engine spins (yields) through the last 50 µs before each send, so at
        // high rates its core looks busy by design: whether it kept up is told by its send lag,
        // not its CPU.
        if load.open.is_some() {
            record.bottlenecks.retain(|b| b.role != Role::Loadgen);
        }
        if let Some(open) = load.open.as_ref().filter(|o| o.generator_limited)
            && !record.bottlenecks.iter().any(|b| b.role == Role::Loadgen)
        {
            record.bottlenecks.push(taskbench_report::model::Bottleneck {
                role: Role::Loadgen,
                utilisation: record.resources.get(&Role::Loadgen).map_or(0.0, |s| s.mean_cpu_cores / s.allotted_cpus as f64),
                detail: format!(
                    "the open-model engine did not keep its schedule: send lag p99 {} µs against a latency p99 of {} µs \
                     (limits: 1 ms, or a quarter of the latency p99)",
                    open.send_lag_us.p99, load.total.latency_us.p99
                ),
            });
        }
        if let Some(search) = &load.search {
            self.search_steps(search, &readings, &allotted, &hwm, record);
        }
        record.load = Some(*load);
        Ok(())
    }

    /// A saturation search: each step's resources over its own measured phase; the run's
    /// bottlenecks become those of the step that broke (what set the maximum, if not the server),
    /// and the generator when the search stopped because it fell behind.
    fn search_steps(
        &self,
        search: &taskbench_results::search::SearchResult,
        readings: &[sampler::Reading],
        allotted: &BTreeMap<Role, usize>,
        hwm: &BTreeMap<Role, u64>,
        record: &mut RunRecord,
    ) {
        use taskbench_results::search::Stop;
        for step in &search.steps {
            let start = step.measure_started_unix_ms.unwrap_or(0);
            let window = sampler::Window {
                start_ms: start,
                end_ms: start + (step.measured_secs * 1000.0) as u64,
                successes: step.successes,
                allotted,
                hwm,
                idle_server_rss: None,
            };
            let resources = sampler::stats(readings, &window);
            let mut bottlenecks = taskbench_report::summary::bottlenecks(
                &resources,
                &self.plan.cpus,
                self.results.environment.machine.logical_cpus,
            );
            // The engine's own CPU is no limit (it spins by design); its send lag is. A target's
            // saturation is not known from here (see `measure`).
            bottlenecks.retain(|b| b.role != Role::Loadgen && matches!(self.fleet, Fleet::Started(_)));
            record.steps.push(taskbench_report::model::StepResources {
                rate: step.rate,
                server_cpu_us_per_request: resources.get(&Role::Server).and_then(|s| s.cpu_ms_per_1k_requests),
                cpu_cores: resources.iter().map(|(role, s)| (*role, s.mean_cpu_cores)).collect(),
                bottlenecks,
                steal: sampler::steal_share(readings, window.start_ms, window.end_ms),
            });
        }
        // The machine's noise over the whole search, not only the step the figures come from.
        if let (Some(first), Some(last)) = (search.steps.first(), search.steps.last()) {
            let (from, to) = (first.measure_started_unix_ms, last.measure_started_unix_ms);
            if let (Some(from), Some(to)) = (from, to) {
                record.steal = sampler::steal_share(readings, from, to + (last.measured_secs * 1000.0) as u64);
            }
        }
        record.bottlenecks = match search.broke_at_rps {
            Some(at) => search
                .steps
                .iter()
                .zip(&record.steps)
                .find(|(s, _)| !s.pass && s.rate == at)
                .map(|(_, r)| r.bottlenecks.clone())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        if search.stop == Stop::GeneratorLimited {
            let last = search.steps.last();
            record.bottlenecks.push(taskbench_report::model::Bottleneck {
                role: Role::Loadgen,
                utilisation: record.steps.last().and_then(|s| s.cpu_cores.get(&Role::Loadgen)).copied().unwrap_or(0.0)
                    / allotted.get(&Role::Loadgen).copied().unwrap_or(1).max(1) as f64,
                detail: format!(
                    "the generator could not offer more than {:.0} req/s on its CPUs (send lag p99 {} µs at {:.0} req/s \
                     scheduled)",
                    last.map_or(0.0, |s| s.offered_rps),
                    last.map_or(0, |s| s.send_lag_p99_us),
                    last.map_or(0.0, |s| s.rate)
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_rotates_so_each_framework_takes_each_position() {
        let fw = vec!["axum".to_owned(), "actix".to_owned()];
        assert_eq!(order(&fw, 1), ["axum", "actix"]);
        assert_eq!(order(&fw, 2), ["actix", "axum"]);
        assert_eq!(order(&fw, 3), ["axum", "actix"]);
    }
}
