//! The `results.json` document: one `taskbench run`, every measured run in it, and the summary
//! per scenario. `schema_version` changes whenever a field changes meaning or goes away; adding
//! an optional field does not change it. `results.schema.json` (next to this crate's manifest) is
//! generated from these types and checked by a test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use taskbench_results::LoadResult;

pub use crate::metric::Metric;
pub use taskbench_results::ModelKind;

/// The version of this document's layout.
///
/// Version 2: `rps` is goodput (successful answers only) with errors timed in their own
/// histogram; dropped open-model sends are errors; the `[slo]` is judged per run; the open
/// model records its send lag; series are binned by completion time; CPU comes from CPU-time
/// deltas, server peak memory from the kernel's high-water mark, Postgres memory as PSS.
///
/// Version 3: comparisons are paired (per-repeat ratios, an exact interval and test, a practical
/// threshold) instead of bootstrap ratios of medians; `Estimate` intervals are order-statistic
/// intervals, absent below 6 repeats.
///
/// Version 4: saturation searches (`model = "search"`): a run's `load.search` holds every step,
/// its `steps` the resources of each step, and the summary each framework's
/// `max_sustainable_rps`; the figures of a search run are those of its step at that maximum.
///
/// Version 5: two error kinds, `protocol` (a response head that is not HTTP, counted as
/// `connect` before) and `too_large` (a body over the generator's 1 MiB cap).
pub const SCHEMA_VERSION: u32 = 5;
/// The oldest version this build reads: versions 4 and 5 only added fields and kinds to version 3.
pub const OLDEST_READABLE: u32 = 3;

/// One `taskbench run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Results {
    /// Always [`SCHEMA_VERSION`] for documents this build writes.
    pub schema_version: u32,
    /// `<UTC timestamp>-<short id>`, also the name of the run's directory.
    pub id: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC; absent while the run is going on or when it was cut short.
    pub finished_at: Option<String>,
    /// Set when the run ended early (Ctrl-C, a failure): what was measured is kept.
    pub incomplete: Option<String>,
    pub environment: Environment,
    pub config: RunConfig,
    pub scenarios: Vec<ScenarioResult>,
}

/// Where and with what the run was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Environment {
    pub machine: Machine,
    /// `rustc --version` of the toolchain on PATH, when it answers.
    pub rustc: Option<String>,
    pub taskbench_version: String,
    /// The checkout's commit, when run from a git checkout.
    pub git_commit: Option<String>,
    /// Whether the checkout had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// Cargo profile the server binaries were built with (`server`, `release`, `debug`, …), with
    /// ` (binaries given on the command line)` when they were given rather than built.
    pub build_profile: String,
    /// Paths of the server binaries, by framework.
    pub server_binaries: BTreeMap<String, String>,
}

/// [`Environment::build_profile`] of servers taskbench did not start or build (`--target`,
/// merged agents' results): nothing is known of how they were built.
pub const UNKNOWN_PROFILE: &str = "unknown (servers not started by taskbench)";

/// Whether servers built with `profile` (as recorded in [`Environment::build_profile`]) were
/// optimised builds: the `server` profile `taskbench run` builds them with, or `release`
/// (binaries a user built and gave, or older runs). Anything else (`debug`, a custom profile)
/// says little about production performance, and the run and the report say so.
pub fn optimised_profile(profile: &str) -> bool {
    // The profile names, before any ` (binaries given …)`; several when given from several places.
    let names = profile.split(" (").next().unwrap_or_default();
    !names.is_empty() && names.split(", ").all(|p| p == "server" || p == "release")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Machine {
    pub cpu_model: String,
    pub logical_cpus: usize,
    pub physical_cores: Option<usize>,
    pub memory_bytes: u64,
    /// e.g. `Debian GNU/Linux 12`.
    pub os: String,
    pub kernel: Option<String>,
    pub hostname: Option<String>,
}

/// Everything that decided what was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunConfig {
    /// The command line as given.
    pub command_line: Vec<String>,
    pub frameworks: Vec<String>,
    pub repeats: u32,
    /// Measured duration when overridden on the command line, else each scenario's own.
    pub duration_secs: Option<f64>,
    /// Warm-up when overridden, else each scenario's own.
    pub warmup_secs: Option<f64>,
    pub quick: bool,
    pub db: DbConfig,
    pub cpus: CpuPlan,
    pub sample_interval_ms: u64,
    /// Connections in each server's pool.
    pub server_pool_size: u32,
    /// Worker threads of each server.
    pub server_workers: usize,
    /// Seed of the run order and of the Monte Carlo permutation tests (above 16 pairs).
    pub seed: u64,
    /// The practical threshold of the paired comparisons (0.02 = 2%).
    pub min_effect: f64,
    /// Extra server arguments of each `--contender` (empty for frameworks).
    #[serde(default)]
    pub server_args: BTreeMap<String, Vec<String>>,
    /// Where the servers' memory and CPU were read (absent in older runs: `/proc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_resources: Option<ResourceSource>,
    /// Servers taskbench did not start (`--target NAME=URL`), by name: their base URLs. Absent
    /// when taskbench started the servers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, String>,
    /// What this run gives up next to one whose servers and database taskbench starts, pins and
    /// resets itself (no restart between runs, no pinning, …), one sentence each. Absent when it
    /// gives up nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_guarantees: Vec<String>,
}

/// Where a server's memory and CPU are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResourceSource {
    /// This machine's `/proc`: RSS, CPU time, and the kernel's high-water mark (`VmHWM`).
    #[default]
    Proc,
    /// The server's own `/metrics` (`process_resident_memory_bytes`,
    /// `process_cpu_seconds_total`): works wherever the server runs; no high-water mark, so peak
    /// memory is the highest sample.
    Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DbConfig {
    /// `local` (embedded cluster), `docker` or `url`.
    pub kind: String,
    /// What it is, password removed: `PostgreSQL 15.19 on 127.0.0.1:41234`.
    pub detail: String,
    /// Whether fsync and synchronous commit were on (local clusters are durable by default).
    pub durable: Option<bool>,
}

/// CPU affinity of each role; `None` means not pinned (any CPU).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CpuPlan {
    pub server: Option<Vec<usize>>,
    pub loadgen: Option<Vec<usize>>,
    pub db: Option<Vec<usize>>,
    /// Why this plan (the default for this machine, or given with `--cpus`).
    pub origin: String,
}

impl CpuPlan {
    /// The CPUs `role` is pinned to; `None` when it may run anywhere.
    pub fn of(&self, role: Role) -> Option<&[usize]> {
        match role {
            Role::Server => self.server.as_deref(),
            Role::Postgres => self.db.as_deref(),
            Role::Loadgen => self.loadgen.as_deref(),
        }
    }
}

/// A process a run watches, by what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    // Declared in alphabetical order, so maps and sorted lists keyed by role read as they did
    // when roles were strings.
    Loadgen,
    Postgres,
    Server,
}

impl Role {
    /// In the order the report lists them: what is measured first.
    pub const ALL: [Role; 3] = [Role::Server, Role::Postgres, Role::Loadgen];

    /// Its name in `results.json` and in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Postgres => "postgres",
            Role::Loadgen => "loadgen",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scenario: its runs (framework x repeat) and their summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScenarioResult {
    pub name: String,
    pub description: String,
    pub model: ModelKind,
    /// The scenario file as it was read (before command-line overrides).
    pub file: String,
    pub source: String,
    /// Effective warm-up and measured duration.
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub runs: Vec<RunRecord>,
    /// Absent when no run of the scenario measured anything.
    pub summary: Option<Summary>,
}

/// One measured run of one framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRecord {
    pub framework: String,
    /// 1-based.
    pub repeat: u32,
    /// 1-based position of this framework within its repeat (the order is varied per repeat).
    pub position: u32,
    pub started_at: String,
    /// What the load generator measured; absent when the run failed before it measured anything.
    pub load: Option<LoadResult>,
    /// Resource use over the measured phase, by role.
    pub resources: BTreeMap<Role, ProcessStats>,
    /// Samples every `sample_interval_ms`, warm-up included.
    pub samples: Vec<Sample>,
    /// Roles that were saturated, so the comparison is limited by them.
    pub bottlenecks: Vec<Bottleneck>,
    /// Why the run failed or ended early.
    pub error: Option<String>,
    /// A saturation search: the resources of each step (in the order of `load.search.steps`),
    /// each over that step's measured phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepResources>,
    /// The share of the machine's CPU time the hypervisor took from it (steal time, from
    /// `/proc/stat`) during the measured phase: the machine's noise, beside the numbers it touched.
    #[serde(default)]
    pub steal: Option<f64>,
}

/// Resource use over one step of a saturation search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepResources {
    /// The step's scheduled rate, requests per second.
    pub rate: f64,
    /// Server CPU time per successful request, µs.
    pub server_cpu_us_per_request: Option<f64>,
    /// Mean CPU use in cores, by role.
    pub cpu_cores: BTreeMap<Role, f64>,
    /// Roles other than the server that ran out of CPU in this step.
    pub bottlenecks: Vec<Bottleneck>,
    /// Share of the machine's CPU time taken by the hypervisor during the step.
    #[serde(default)]
    pub steal: Option<f64>,
}

impl ScenarioResult {
    /// The frameworks (or contenders) with runs in this scenario, in the order they first ran.
    pub fn frameworks(&self) -> Vec<String> {
        first_seen(self.runs.iter().map(|r| &r.framework), Vec::new())
    }
}

/// `names` appended to `known` in the order each first appears, without repeats.
pub(crate) fn first_seen<'a>(names: impl IntoIterator<Item = &'a String>, mut known: Vec<String>) -> Vec<String> {
    for name in names {
        if !known.contains(name) {
            known.push(name.clone());
        }
    }
    known
}

impl RunRecord {
    /// Whether this run measured a complete phase that can be used: no failure, not ended early,
    /// no dropped sends, errors within the scenario's budget.
    pub fn is_clean(&self) -> bool {
        self.unclean_because().is_none()
    }

    /// Why this run is left out of the medians, if it is.
    pub fn unclean_because(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("error: {e}"));
        }
        match &self.load {
            None => Some("no measurement".to_owned()),
            Some(load) => load.unclean_because(),
        }
    }
}

/// Resource use of one role over the measured phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessStats {
    /// Processes counted (for Postgres: the postmaster and every backend).
    pub pids: Vec<u32>,
    /// Peak memory: for the server and the load generator the kernel's high-water mark
    /// (`VmHWM`, read when the measured phase ends: every allocation since the process started,
    /// warm-up included, however brief); for Postgres the highest sampled PSS (shared buffers
    /// counted once, split between the processes that map them).
    pub peak_rss_bytes: u64,
    /// Highest sampled memory within the measured phase (RSS; PSS for Postgres).
    pub sampled_peak_rss_bytes: u64,
    /// Mean sampled memory within the measured phase (RSS; PSS for Postgres).
    pub mean_rss_bytes: u64,
    /// Memory once ready and before any load (server only: what the seeds' tables quote).
    pub idle_rss_bytes: Option<u64>,
    /// CPU time used during the measured phase, all threads and processes of the role, from
    /// CPU-time counters interpolated at the phase's exact start and end.
    pub cpu_seconds: f64,
    /// Mean CPU use in cores (1.0 = one core busy all the time).
    pub mean_cpu_cores: f64,
    /// CPU milliseconds per 1000 successful requests.
    pub cpu_ms_per_1k_requests: Option<f64>,
    /// CPUs the role may run on (its affinity), or all of the machine's.
    pub allotted_cpus: usize,
}

/// A moment of the run. `t_ms` counts from the start of the measured phase (negative during the
/// warm-up). CPU is in percent of one core since the previous sample (CPU-time delta over the
/// true time between readings); memory is resident set size in bytes (PSS for Postgres).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sample {
    pub t_ms: i64,
    pub server_rss: u64,
    pub server_cpu: f32,
    pub postgres_rss: Option<u64>,
    pub postgres_cpu: Option<f32>,
    pub loadgen_rss: u64,
    pub loadgen_cpu: f32,
}

/// A role that ran near its CPU allotment for the measured phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bottleneck {
    /// `loadgen` or `postgres`: the server is what is measured, never a limit.
    pub role: Role,
    /// Mean CPU use as a share of what the role was allotted (shared CPUs counted once).
    pub utilisation: f64,
    pub detail: String,
}

/// A median over repeats with its range and, from 6 repeats on, the exact order-statistic 95%
/// confidence interval of the median (absent below: with fewer values no such interval exists,
/// and the range is all there is).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Estimate {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Repeats it was computed from.
    pub n: usize,
}

/// One framework's figures over its clean repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FrameworkSummary {
    pub framework: String,
    pub clean_runs: usize,
    pub rps: Estimate,
    pub p50_us: Estimate,
    pub p90_us: Estimate,
    pub p99_us: Estimate,
    pub p999_us: Estimate,
    pub max_us: Estimate,
    pub error_rate: Estimate,
    /// Absent when no run sampled the server (results merged from load generators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_peak_rss_bytes: Option<Estimate>,
    pub server_cpu_ms_per_1k_requests: Option<Estimate>,
    /// How many clean runs met the scenario's `[slo]`; absent when it states none.
    pub slo: Option<SloTally>,
    /// Open model: the engine's send-lag p99 in µs (its own error, part of every latency).
    pub send_lag_p99_us: Option<Estimate>,
    /// Saturation search: the highest rate each clean repeat sustained under the SLO, req/s.
    #[serde(default)]
    pub max_sustainable_rps: Option<Estimate>,
}

/// Runs that met their SLO, of those judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SloTally {
    pub met: usize,
    pub judged: usize,
}

/// Two contenders compared pair by pair (the same repeat, adjacent in time) on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PairedComparison {
    /// What is compared.
    pub metric: Metric,
    /// The contender whose value is the numerator (`A`), and the other (`B`).
    pub a: String,
    pub b: String,
    pub higher_is_better: bool,
    /// The repeat each pair comes from, in the order of `stats.effects`.
    pub repeats: Vec<u32>,
    /// Clean pairs left out because the metric was not fair in them (throughput or latency in a
    /// repeat where something other than the server was the limit).
    pub left_out: usize,
    pub stats: crate::stats::PairedStats,
    /// The outcome in words, e.g. `axum higher by 4.1% (95% CI 2.2–6.0%; 8 of 8 pairs; p = 0.008)`.
    pub sentence: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub frameworks: Vec<FrameworkSummary>,
    /// Every other contender against the first one listed, on each metric that is fair to
    /// compare in this scenario (see `throughput_compared`).
    pub comparisons: Vec<PairedComparison>,
    /// Roles that limited at least one run: the pairs they limited are left out of throughput (and
    /// latency, unless the open-model generator kept its schedule).
    pub limited_by: Vec<Role>,
    /// Whether the headline metric, throughput (closed model) or p99 latency at the scheduled
    /// rate (open model), was compared in at least one pair; when not, only what is fair at equal
    /// delivered load was.
    pub throughput_compared: bool,
    /// The practical threshold the outcomes were judged with (0.02 = 2%).
    pub min_effect: f64,
    /// What a reader can take away, in a few sentences.
    pub verdict: String,
}

/// Why a results document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a taskbench results document: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("{path} has schema_version {found}; this taskbench reads versions {oldest} to {expected}")]
    Version { path: String, found: u64, oldest: u32, expected: u32 },
}

/// A run named by its directory or by its `results.json`: the directory.
pub fn run_dir(path: &Path) -> PathBuf {
    if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() }
}

impl Results {
    /// Reads `results.json`, or the `results.json` inside a run directory.
    pub fn read(path: &Path) -> Result<Self, ReadError> {
        let file = if path.is_dir() { path.join("results.json") } else { path.to_path_buf() };
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|source| ReadError::Io { path: shown.clone(), source })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ReadError::Json { path: shown.clone(), source })?;
        match value.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(v) if (u64::from(OLDEST_READABLE)..=u64::from(SCHEMA_VERSION)).contains(&v) => {}
            found => {
                return Err(ReadError::Version {
                    path: shown,
                    found: found.unwrap_or(0),
                    oldest: OLDEST_READABLE,
                    expected: SCHEMA_VERSION,
                });
            }
        }
        serde_json::from_value(value).map_err(|source| ReadError::Json { path: shown, source })
    }

    /// Writes `results.json` into `dir` atomically (a temp file renamed), so a reader never sees
    /// half a document even when the run is interrupted while writing.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = dir.join(".results.json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, dir.join("results.json"))
    }

    /// The JSON Schema of this document.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Results)).unwrap_or_default()
    }
}

#[cfg(test)]
mod profile_tests {
    use super::optimised_profile;

    #[test]
    fn only_optimised_server_builds_pass_without_a_warning() {
        for ok in [
            "server",
            "release",
            "server (binaries given on the command line)",
            "release, server (binaries given on the command line)",
        ] {
            assert!(optimised_profile(ok), "{ok}");
        }
        for warn in ["debug", "bench", "", "debug, server (binaries given on the command line)", "unknown"] {
            assert!(!optimised_profile(warn), "{warn}");
        }
    }
}
