//! Scenario files: the TOML format, its validation, and errors that name file, line and field.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A validated scenario, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub data: DataSpec,
    pub load: LoadSpec,
    pub steps: Vec<Step>,
    pub slo: Slo,
}

/// Deterministic seed data, reset before each measured run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub users: u32,
    pub tasks_per_user: u32,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSpec {
    pub model: LoadModel,
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Per-request timeout; a request that takes longer counts as a `timeout` error.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum LoadModel {
    /// Virtual users looping over the steps (Goose): "how much can it take".
    Closed {
        users: u32,
        #[serde(with = "humantime_serde")]
        ramp: Duration,
        #[serde(with = "humantime_serde")]
        think_time: Duration,
    },
    /// Requests on a fixed schedule that does not wait for responses: "how slow is it at load X".
    Open { rate: Rate, max_in_flight: usize },
}

/// Target arrival rate of the open model, in requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Rate {
    Fixed(f64),
    /// Linear from `from` to `to` over the measured duration (warm-up runs at `from`).
    Ramp {
        from: f64,
        to: f64,
    },
}

impl Rate {
    /// The rate at `t` into the measured phase of length `duration`.
    pub fn at(&self, t: Duration, duration: Duration) -> f64 {
        match *self {
            Rate::Fixed(r) => r,
            Rate::Ramp { from, to } => {
                let f = (t.as_secs_f64() / duration.as_secs_f64().max(f64::EPSILON)).clamp(0.0, 1.0);
                from + (to - from) * f
            }
        }
    }
}

/// One weighted step: an API operation and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub op: Op,
    pub weight: u32,
    pub params: Params,
}

/// The API operations a scenario can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Health,
    Plaintext,
    Json,
    Register,
    Login,
    Me,
    ListTasks,
    GetTask,
    CreateTask,
    UpdateTask,
    DeleteTask,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Health,
        Op::Plaintext,
        Op::Json,
        Op::Register,
        Op::Login,
        Op::Me,
        Op::ListTasks,
        Op::GetTask,
        Op::CreateTask,
        Op::UpdateTask,
        Op::DeleteTask,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Health => "health",
            Op::Plaintext => "plaintext",
            Op::Json => "json",
            Op::Register => "register",
            Op::Login => "login",
            Op::Me => "me",
            Op::ListTasks => "list_tasks",
            Op::GetTask => "get_task",
            Op::CreateTask => "create_task",
            Op::UpdateTask => "update_task",
            Op::DeleteTask => "delete_task",
        }
    }

    /// True when the op needs a signed-in user (a bearer token).
    pub fn needs_auth(self) -> bool {
        matches!(self, Op::Me | Op::ListTasks | Op::GetTask | Op::CreateTask | Op::UpdateTask | Op::DeleteTask)
    }

    /// True when the op changes data, so seed data must be reset before the next run.
    pub fn writes(self) -> bool {
        matches!(self, Op::Register | Op::CreateTask | Op::UpdateTask | Op::DeleteTask)
    }
}

/// Optional parameters of a step (only `list_tasks` and `create_task` read them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub status: Option<String>,
    pub priority: Option<String>,
    /// `create_task`: length of the generated description, in characters.
    pub description_len: Option<u32>,
}

/// Service-level objective, judged on every run (see [`crate::slo`]): p99 and p99.9 latency
/// (the worse of the successes' and of every request's), and the share of requests that failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// 0.001 = at most one request in a thousand may fail. A run over it is not clean.
    pub max_error_rate: Option<f64>,
}

/// A scenario file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scenario {file} line {line}: {message}")]
pub struct ScenarioError {
    pub file: String,
    /// 1-based; 0 when the problem is the file itself (unreadable, empty).
    pub line: usize,
    pub message: String,
}

// ---- the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    data: Option<DataSpec>,
    load: Spanned<RawLoad>,
    steps: Option<Vec<Spanned<RawStep>>>,
    #[serde(default)]
    slo: Option<Spanned<Slo>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    model: Spanned<String>,
    users: Option<Spanned<u32>>,
    #[serde(default, with = "humantime_serde::option")]
    ramp: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    think_time: Option<Duration>,
    rate: Option<Spanned<RawRate>>,
    max_in_flight: Option<Spanned<usize>>,
    #[serde(default, with = "humantime_serde::option")]
    warmup: Option<Duration>,
    duration: Spanned<String>,
    #[serde(default, with = "humantime_serde::option")]
    timeout: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRate {
    Fixed(f64),
    Ramp { from: f64, to: f64 },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    op: Op,
    weight: Spanned<i64>,
    #[serde(default)]
    params: Option<Spanned<Params>>,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot be read: {e}"),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates scenario `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, ScenarioError> {
        let fail = |span: Option<Range<usize>>, message: String| ScenarioError {
            file: file.to_owned(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            message,
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let key = e.span().and_then(|s| key_at(text, s.start));
            let message = match key {
                Some(key) => format!("`{key}`: {}", e.message().trim()),
                None => e.message().trim().to_owned(),
            };
            ScenarioError { file: file.to_owned(), line: line.unwrap_or(0), message }
        })?;

        let name = raw.name.get_ref().trim();
        if name.is_empty() {
            return Err(fail(Some(raw.name.span()), "`name` must not be empty".into()));
        }
        let load_span = raw.load.span();
        let load = raw.load.into_inner();
        let duration = humantime::parse_duration(load.duration.get_ref()).map_err(|e| {
            fail(
                Some(load.duration.span()),
                format!("`duration` must be a duration like \"20s\", found {:?}: {e}", load.duration.get_ref()),
            )
        })?;
        if duration.is_zero() {
            return Err(fail(Some(load.duration.span()), "`duration` must be longer than 0s".into()));
        }
        let model = match load.model.get_ref().as_str() {
            "closed" => {
                if let Some(rate) = &load.rate {
                    return Err(fail(
                        Some(rate.span()),
                        "`rate` belongs to the open model; the closed model takes `users`".into(),
                    ));
                }
                let users = load.users.ok_or_else(|| {
                    fail(Some(load_span.clone()), "`users` is required for `model = \"closed\"`".into())
                })?;
                if *users.get_ref() == 0 {
                    return Err(fail(Some(users.span()), "`users` must be a positive integer, found 0".into()));
                }
                LoadModel::Closed {
                    users: users.into_inner(),
                    ramp: load.ramp.unwrap_or_default(),
                    think_time: load.think_time.unwrap_or_default(),
                }
            }
            "open" => {
                if let Some(users) = &load.users {
                    return Err(fail(
                        Some(users.span()),
                        "`users` belongs to the closed model; the open model takes `rate`".into(),
                    ));
                }
                let rate = load.rate.ok_or_else(|| {
                    fail(
                        Some(load_span.clone()),
                        "`rate` is required for `model = \"open\"` (requests per second, or { from, to })".into(),
                    )
                })?;
                let rate_span = rate.span();
                let rate = match rate.into_inner() {
                    RawRate::Fixed(r) => Rate::Fixed(r),
                    RawRate::Ramp { from, to } => Rate::Ramp { from, to },
                };
                let positive = match rate {
                    Rate::Fixed(r) => r > 0.0 && r.is_finite(),
                    Rate::Ramp { from, to } => from > 0.0 && to > 0.0 && from.is_finite() && to.is_finite(),
                };
                if !positive {
                    return Err(fail(Some(rate_span), "`rate` must be positive requests per second".into()));
                }
                let max_in_flight = match load.max_in_flight {
                    Some(m) if *m.get_ref() == 0 => {
                        return Err(fail(Some(m.span()), "`max_in_flight` must be a positive integer, found 0".into()));
                    }
                    Some(m) => m.into_inner(),
                    None => 1024,
                };
                LoadModel::Open { rate, max_in_flight }
            }
            other => {
                return Err(fail(
                    Some(load.model.span()),
                    format!("`model` must be \"closed\" or \"open\", found {other:?}"),
                ));
            }
        };

        let raw_steps = raw.steps.unwrap_or_default();
        if raw_steps.is_empty() {
            return Err(fail(None, "at least one [[steps]] entry is required".into()));
        }
        let mut steps = Vec::with_capacity(raw_steps.len());
        for step in raw_steps {
            let step = step.into_inner();
            let weight = *step.weight.get_ref();
            if weight <= 0 || weight > i64::from(u32::MAX) {
                return Err(fail(
                    Some(step.weight.span()),
                    format!("`weight` must be a positive integer, found {weight}"),
                ));
            }
            // The error names the `params` line, not the step's `weight` line.
            let (params, params_at) = match step.params {
                Some(p) => (p.get_ref().clone(), p.span()),
                None => (Params::default(), step.weight.span()),
            };
            if let Some(limit) = params.limit.filter(|l| !(1..=100).contains(l)) {
                return Err(fail(Some(params_at), format!("`params.limit` must be 1 to 100, found {limit}")));
            }
            steps.push(Step { op: step.op, weight: weight as u32, params });
        }

        let data = raw.data.unwrap_or(DataSpec { users: 10, tasks_per_user: 10, seed: 42 });
        let needs_users = steps.iter().any(|s| s.op.needs_auth() || s.op == Op::Login);
        if needs_users && data.users == 0 {
            return Err(fail(None, "`data.users` must be at least 1: the steps need signed-in users".into()));
        }
        let slo = match raw.slo {
            Some(slo) => {
                let span = slo.span();
                let slo = slo.into_inner();
                for (field, value) in [("p99_ms", slo.p99_ms), ("p999_ms", slo.p999_ms)] {
                    if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                        return Err(fail(
                            Some(span),
                            format!("`slo.{field}` must be a positive number of milliseconds, found {v}"),
                        ));
                    }
                }
                if let Some(v) = slo.max_error_rate.filter(|v| !(0.0..=1.0).contains(v)) {
                    return Err(fail(
                        Some(span),
                        format!("`slo.max_error_rate` must be a share from 0 to 1, found {v}"),
                    ));
                }
                slo
            }
            None => Slo::default(),
        };
        Ok(Scenario {
            name: name.to_owned(),
            description: raw.description,
            data,
            load: LoadSpec {
                model,
                warmup: load.warmup.unwrap_or_default(),
                duration,
                timeout: load.timeout.unwrap_or(Duration::from_secs(5)),
            },
            steps,
            slo,
        })
    }

    /// True when running the scenario changes the seed data.
    pub fn writes(&self) -> bool {
        self.steps.iter().any(|s| s.op.writes())
    }

    /// Resolves a shipped scenario name (`smoke`) or a path to a file.
    pub fn locate(name_or_path: &str, scenarios_dir: &Path) -> PathBuf {
        let path = PathBuf::from(name_or_path);
        if path.extension().is_some() || path.components().count() > 1 {
            path
        } else {
            scenarios_dir.join(format!("{name_or_path}.toml"))
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The key on the line at `offset` (`weight` for `weight = -3`), to name the field in errors.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "crud-mix"
description = "A signed-in user's day."
[data]
users = 10
tasks_per_user = 5
seed = 42
[load]
model = "closed"
users = 4
warmup = "1s"
duration = "3s"
[[steps]]
op = "list_tasks"
weight = 40
params = { limit = 20 }
[[steps]]
op = "create_task"
weight = 10
[slo]
p99_ms = 50
max_error_rate = 0.001
"#;

    #[test]
    fn a_good_file_parses() {
        let s = Scenario::parse("crud-mix.toml", GOOD).expect("valid");
        assert_eq!(s.steps.len(), 2);
        assert_eq!(s.steps[0].params.limit, Some(20));
        assert_eq!(s.load.duration, Duration::from_secs(3));
        assert!(matches!(s.load.model, LoadModel::Closed { users: 4, .. }));
        assert!(s.writes());
    }

    #[test]
    fn a_negative_weight_names_file_line_and_field() {
        let bad = GOOD.replace("weight = 10", "weight = -3");
        let err = Scenario::parse("crud-mix.toml", &bad).expect_err("invalid");
        assert_eq!(err.line, 19, "{err}");
        assert_eq!(err.to_string(), "scenario crud-mix.toml line 19: `weight` must be a positive integer, found -3");
    }

    #[test]
    fn a_bad_params_limit_names_the_params_line() {
        let bad = GOOD.replace("params = { limit = 20 }", "params = { limit = 200 }");
        let err = Scenario::parse("crud-mix.toml", &bad).expect_err("invalid");
        assert_eq!(err.to_string(), "scenario crud-mix.toml line 16: `params.limit` must be 1 to 100, found 200");
    }

    #[test]
    fn type_errors_unknown_fields_and_models_are_located() {
        let err = Scenario::parse("f.toml", &GOOD.replace("users = 4", "users = \"four\"")).expect_err("type");
        assert_eq!(err.line, 10, "{err}");
        assert!(err.message.contains("`users`"), "{err}");
        let err =
            Scenario::parse("f.toml", &GOOD.replace("op = \"create_task\"", "op = \"create_tsk\"")).expect_err("op");
        assert_eq!(err.line, 18, "{err}");
        assert!(err.message.contains("create_tsk"), "{err}");
        let err =
            Scenario::parse("f.toml", &GOOD.replace("model = \"closed\"", "model = \"half-open\"")).expect_err("model");
        assert_eq!(err.line, 9, "{err}");
        let err =
            Scenario::parse("f.toml", &GOOD.replace("duration = \"3s\"", "duration = \"3 parsecs\"")).expect_err("dur");
        assert_eq!(err.line, 12, "{err}");
        let err = Scenario::parse("f.toml", &GOOD.replace("seed = 42", "seed = 42\ncolour = 1")).expect_err("unknown");
        assert!(err.message.contains("colour"), "{err}");
    }

    #[test]
    fn open_model_rates() {
        let open = GOOD.replace("model = \"closed\"\nusers = 4", "model = \"open\"\nrate = { from = 100, to = 300 }");
        let s = Scenario::parse("f.toml", &open).expect("valid");
        let LoadModel::Open { rate, max_in_flight } = s.load.model else { panic!("open") };
        assert_eq!(max_in_flight, 1024);
        assert_eq!(rate.at(Duration::from_millis(1500), s.load.duration), 200.0);
        let missing = GOOD.replace("model = \"closed\"\nusers = 4", "model = \"open\"");
        assert!(Scenario::parse("f.toml", &missing).expect_err("rate").message.contains("`rate` is required"));
    }
}
