//! Scenario files: the TOML format, its validation, and errors that name file, line and field.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskbench_results::slo::Slo;
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
    /// A saturation search (see [`crate::search`]): open-model steps at increasing constant rates
    /// until one breaks the `[slo]`, then bisection: "how much load does it sustain".
    Search(SearchSpec),
}

/// How a saturation search offers its rates. Each step runs the scenario's `warmup`, then at
/// least `duration` measured (longer when the SLO's percentile needs more samples at that rate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SearchSpec {
    /// The first rate offered, requests per second.
    pub from: f64,
    /// The highest rate offered: a search that sustains it reports "at least `max`".
    pub max: f64,
    /// Each rate of the first phase is the previous one times this (> 1).
    pub growth: f64,
    /// Bisection stops when the first failing rate is within this share of the last passing one.
    pub precision: f64,
    /// A step whose achieved goodput falls short of the offered rate by more than this share
    /// fails: the server did not keep up.
    pub max_shortfall: f64,
    /// Requests in flight at once, as in the open model.
    pub max_in_flight: usize,
    /// At most this many steps per search.
    pub max_steps: u32,
    /// A step that breaks is run once more at the same rate, and the break counts only when the
    /// retry breaks too: one hiccup of the machine in a short step does not end a search.
    pub confirm: bool,
}

impl SearchSpec {
    /// Defaults of the optional fields.
    pub const GROWTH: f64 = 2.0;
    pub const PRECISION: f64 = 0.05;
    pub const MAX_SHORTFALL: f64 = 0.03;
    pub const MAX_STEPS: u32 = 24;
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

/// A scenario that cannot become a saturation search: it states no latency to keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "scenario {0} has no latency objective; expected `[slo]` with `p99_ms` (or `p999_ms`): the latency the server \
     must keep while the rate rises"
)]
pub struct NoLatencyObjective(pub String);

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
    duration: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde::option")]
    timeout: Option<Duration>,
    // The search model.
    from: Option<Spanned<f64>>,
    #[serde(alias = "to")]
    max: Option<Spanned<f64>>,
    growth: Option<Spanned<f64>>,
    precision: Option<Spanned<f64>>,
    max_shortfall: Option<Spanned<f64>>,
    max_steps: Option<Spanned<u32>>,
    step_duration: Option<Spanned<String>>,
    confirm: Option<bool>,
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

    /// Parses and validates scenario `text`; `file` names it in errors. The checks run in a fixed
    /// order (name, load, steps, data, slo), so a file with several problems names the same one
    /// every time.
    pub fn parse(file: &str, text: &str) -> Result<Self, ScenarioError> {
        let src = Source { file, text };
        let raw = src.toml()?;
        let name = raw.name.get_ref().trim();
        if name.is_empty() {
            return Err(src.fail(Some(raw.name.span()), "`name` must not be empty".into()));
        }
        let load_span = raw.load.span();
        let load = raw.load.into_inner();
        let search = load.model.get_ref() == "search";
        let duration = src.measured_duration(&load, &load_span, search)?;
        if !search {
            src.reject_search_fields(&load, &load_span)?;
        }
        // Every step of a search warms up; 1 s unless the file says otherwise.
        let warmup = load.warmup.unwrap_or(if search { Duration::from_secs(1) } else { Duration::ZERO });
        let timeout = load.timeout.unwrap_or(Duration::from_secs(5));
        let model = src.load_model(load, &load_span)?;
        let steps = src.steps(raw.steps.unwrap_or_default())?;
        let data = raw.data.unwrap_or(DataSpec { users: 10, tasks_per_user: 10, seed: 42 });
        let needs_users = steps.iter().any(|s| s.op.needs_auth() || s.op == Op::Login);
        if needs_users && data.users == 0 {
            return Err(src.fail(None, "`data.users` must be at least 1: the steps need signed-in users".into()));
        }
        let slo = src.slo(raw.slo)?;
        if search && slo.p99_ms.is_none() && slo.p999_ms.is_none() {
            return Err(
                src.fail(None, "a search needs the latency it must keep: `[slo]` with `p99_ms` (or `p999_ms`)".into())
            );
        }
        Ok(Scenario {
            name: name.to_owned(),
            description: raw.description,
            data,
            load: LoadSpec { model, warmup, duration, timeout },
            steps,
            slo,
        })
    }

    /// This scenario as a saturation search (`--find-max`): its steps, data and SLO, rates from
    /// its open-model rate (or 100 req/s for a closed model) up to 1,000,000, 3 s steps, at least
    /// 1 s of warm-up; a search is returned as it is. Fails when the `[slo]` states no latency.
    pub fn as_search(mut self) -> Result<Scenario, NoLatencyObjective> {
        if self.slo.p99_ms.is_none() && self.slo.p999_ms.is_none() {
            return Err(NoLatencyObjective(self.name));
        }
        let (from, max_in_flight) = match self.load.model {
            LoadModel::Search(_) => return Ok(self),
            LoadModel::Open { rate: Rate::Fixed(r), max_in_flight } => (r, max_in_flight),
            LoadModel::Open { rate: Rate::Ramp { from, .. }, max_in_flight } => (from, max_in_flight),
            LoadModel::Closed { .. } => (100.0, 1024),
        };
        self.load.model = LoadModel::Search(SearchSpec {
            from,
            max: 1_000_000f64.max(from * 2.0),
            growth: SearchSpec::GROWTH,
            precision: SearchSpec::PRECISION,
            max_shortfall: SearchSpec::MAX_SHORTFALL,
            max_in_flight,
            max_steps: SearchSpec::MAX_STEPS,
            confirm: true,
        });
        self.load.duration = Duration::from_secs(3);
        self.load.warmup = self.load.warmup.max(Duration::from_secs(1));
        Ok(self)
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

/// A scenario file being parsed: its name and text, so that each piece of validation can say
/// where a problem is.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

type Parsed<T> = Result<T, ScenarioError>;

impl Source<'_> {
    /// An error at `span` (its line), or about the whole file.
    fn fail(&self, span: Option<Range<usize>>, message: String) -> ScenarioError {
        ScenarioError { file: self.file.to_owned(), line: span.map_or(0, |s| line_of(self.text, s.start)), message }
    }

    /// The file as written: TOML syntax, types and unknown fields, naming the key when it can.
    fn toml(&self) -> Parsed<RawScenario> {
        toml::from_str(self.text).map_err(|e| {
            let line = e.span().map(|s| line_of(self.text, s.start));
            let key = e.span().and_then(|s| key_at(self.text, s.start));
            let message = match key {
                Some(key) => format!("`{key}`: {}", e.message().trim()),
                None => e.message().trim().to_owned(),
            };
            ScenarioError { file: self.file.to_owned(), line: line.unwrap_or(0), message }
        })
    }

    /// The measured time: `duration`, or a search's `step_duration` (per step, 3 s by default).
    fn measured_duration(&self, load: &RawLoad, load_span: &Range<usize>, search: bool) -> Parsed<Duration> {
        let (key, given) = if search {
            if let Some(d) = &load.duration {
                return Err(self.fail(
                    Some(d.span()),
                    "a search measures each step: write `step_duration` instead of `duration`".into(),
                ));
            }
            ("step_duration", load.step_duration.as_ref())
        } else {
            if let Some(d) = &load.step_duration {
                return Err(self.fail(Some(d.span()), "`step_duration` belongs to `model = \"search\"`".into()));
            }
            ("duration", load.duration.as_ref())
        };
        match given {
            Some(d) => {
                let parsed = humantime::parse_duration(d.get_ref()).map_err(|e| {
                    self.fail(
                        Some(d.span()),
                        format!("`{key}` must be a duration like \"20s\", found {:?}: {e}", d.get_ref()),
                    )
                })?;
                if parsed.is_zero() {
                    return Err(self.fail(Some(d.span()), format!("`{key}` must be longer than 0s")));
                }
                Ok(parsed)
            }
            None if search => Ok(Duration::from_secs(3)),
            None => Err(self.fail(Some(load_span.clone()), "`duration` is required (e.g. \"20s\")".into())),
        }
    }

    /// A search's own fields are an error in the other models.
    fn reject_search_fields(&self, load: &RawLoad, load_span: &Range<usize>) -> Parsed<()> {
        let field = [
            load.from.as_ref().map(|f| ("from", f.span())),
            load.max.as_ref().map(|f| ("max", f.span())),
            load.growth.as_ref().map(|f| ("growth", f.span())),
            load.precision.as_ref().map(|f| ("precision", f.span())),
            load.max_shortfall.as_ref().map(|f| ("max_shortfall", f.span())),
            load.max_steps.as_ref().map(|f| ("max_steps", f.span())),
        ]
        .into_iter()
        .chain([load.confirm.map(|_| ("confirm", load_span.clone()))])
        .flatten()
        .next();
        match field {
            Some((key, span)) => Err(self.fail(Some(span), format!("`{key}` belongs to `model = \"search\"`"))),
            None => Ok(()),
        }
    }

    /// The load model `model` names, from its own fields.
    fn load_model(&self, load: RawLoad, load_span: &Range<usize>) -> Parsed<LoadModel> {
        match load.model.get_ref().as_str() {
            "closed" => self.closed_model(load, load_span),
            "open" => self.open_model(load, load_span),
            "search" => self.search_model(load, load_span).map(LoadModel::Search),
            other => Err(self.fail(
                Some(load.model.span()),
                format!("`model` must be \"closed\", \"open\" or \"search\", found {other:?}"),
            )),
        }
    }

    fn closed_model(&self, load: RawLoad, load_span: &Range<usize>) -> Parsed<LoadModel> {
        if let Some(rate) = &load.rate {
            return Err(
                self.fail(Some(rate.span()), "`rate` belongs to the open model; the closed model takes `users`".into())
            );
        }
        let users = load
            .users
            .ok_or_else(|| self.fail(Some(load_span.clone()), "`users` is required for `model = \"closed\"`".into()))?;
        if *users.get_ref() == 0 {
            return Err(self.fail(Some(users.span()), "`users` must be a positive integer, found 0".into()));
        }
        Ok(LoadModel::Closed {
            users: users.into_inner(),
            ramp: load.ramp.unwrap_or_default(),
            think_time: load.think_time.unwrap_or_default(),
        })
    }

    fn open_model(&self, load: RawLoad, load_span: &Range<usize>) -> Parsed<LoadModel> {
        if let Some(users) = &load.users {
            return Err(self
                .fail(Some(users.span()), "`users` belongs to the closed model; the open model takes `rate`".into()));
        }
        let rate = load.rate.ok_or_else(|| {
            self.fail(
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
            return Err(self.fail(Some(rate_span), "`rate` must be positive requests per second".into()));
        }
        Ok(LoadModel::Open { rate, max_in_flight: self.max_in_flight(load.max_in_flight)? })
    }

    fn search_model(&self, load: RawLoad, load_span: &Range<usize>) -> Parsed<SearchSpec> {
        if let Some(users) = &load.users {
            return Err(self.fail(
                Some(users.span()),
                "`users` belongs to the closed model; a search offers rates from `from` to `max`".into(),
            ));
        }
        if let Some(rate) = &load.rate {
            return Err(self.fail(
                Some(rate.span()),
                "`rate` belongs to the open model; a search offers rates from `from` to `max`".into(),
            ));
        }
        let (from, max) = self.search_range(load.from, load.max, load_span)?;
        let precision = self.share(load.precision, "precision", SearchSpec::PRECISION)?;
        let max_shortfall = self.share(load.max_shortfall, "max_shortfall", SearchSpec::MAX_SHORTFALL)?;
        let (growth, max_steps) = self.search_pace(load.growth, load.max_steps)?;
        Ok(SearchSpec {
            from,
            max,
            growth,
            precision,
            max_shortfall,
            max_in_flight: self.max_in_flight(load.max_in_flight)?,
            max_steps,
            confirm: load.confirm.unwrap_or(true),
        })
    }

    /// A search's `from` and `max` rates: both required, positive, `max` above `from`.
    fn search_range(
        &self,
        from: Option<Spanned<f64>>,
        max: Option<Spanned<f64>>,
        load_span: &Range<usize>,
    ) -> Parsed<(f64, f64)> {
        let from = from.ok_or_else(|| {
            self.fail(
                Some(load_span.clone()),
                "`from` is required for `model = \"search\"` (requests per second)".into(),
            )
        })?;
        let max = max.ok_or_else(|| {
            self.fail(
                Some(load_span.clone()),
                "`max` is required for `model = \"search\"` (the highest rate to offer, requests per second)".into(),
            )
        })?;
        if !(*from.get_ref() > 0.0 && from.get_ref().is_finite()) {
            return Err(self.fail(Some(from.span()), "`from` must be positive requests per second".into()));
        }
        if !(max.get_ref().is_finite() && *max.get_ref() > *from.get_ref()) {
            return Err(self.fail(
                Some(max.span()),
                format!("`max` must be a rate above `from` ({}), found {}", from.get_ref(), max.get_ref()),
            ));
        }
        Ok((from.into_inner(), max.into_inner()))
    }

    /// A search's `growth` and `max_steps`: how fast it climbs, and for how many steps at most.
    fn search_pace(&self, growth: Option<Spanned<f64>>, max_steps: Option<Spanned<u32>>) -> Parsed<(f64, u32)> {
        let growth = match growth {
            Some(g) if !(*g.get_ref() > 1.0 && *g.get_ref() <= 10.0) => {
                return Err(self.fail(
                    Some(g.span()),
                    format!("`growth` must be a factor above 1 and at most 10, found {}", g.get_ref()),
                ));
            }
            Some(g) => g.into_inner(),
            None => SearchSpec::GROWTH,
        };
        let max_steps = match max_steps {
            Some(m) if *m.get_ref() < 2 => {
                return Err(self.fail(Some(m.span()), format!("`max_steps` must be at least 2, found {}", m.get_ref())));
            }
            Some(m) => m.into_inner(),
            None => SearchSpec::MAX_STEPS,
        };
        Ok((growth, max_steps))
    }

    /// A share strictly between 0 and 1, or `default`.
    fn share(&self, value: Option<Spanned<f64>>, key: &str, default: f64) -> Parsed<f64> {
        match value {
            Some(v) if !(*v.get_ref() > 0.0 && *v.get_ref() < 1.0) => Err(self.fail(
                Some(v.span()),
                format!("`{key}` must be a share between 0 and 1 (0.05 = 5%), found {}", v.get_ref()),
            )),
            Some(v) => Ok(v.into_inner()),
            None => Ok(default),
        }
    }

    /// Requests in flight at once (open model and search): positive, 1024 by default.
    fn max_in_flight(&self, given: Option<Spanned<usize>>) -> Parsed<usize> {
        match given {
            Some(m) if *m.get_ref() == 0 => {
                Err(self.fail(Some(m.span()), "`max_in_flight` must be a positive integer, found 0".into()))
            }
            Some(m) => Ok(m.into_inner()),
            None => Ok(1024),
        }
    }

    /// The `[[steps]]`: at least one, each with a positive weight and valid params.
    fn steps(&self, raw_steps: Vec<Spanned<RawStep>>) -> Parsed<Vec<Step>> {
        if raw_steps.is_empty() {
            return Err(self.fail(None, "at least one [[steps]] entry is required".into()));
        }
        let mut steps = Vec::with_capacity(raw_steps.len());
        for step in raw_steps {
            let step = step.into_inner();
            let weight = *step.weight.get_ref();
            if weight <= 0 || weight > i64::from(u32::MAX) {
                return Err(
                    self.fail(Some(step.weight.span()), format!("`weight` must be a positive integer, found {weight}"))
                );
            }
            // The error names the `params` line, not the step's `weight` line.
            let (params, params_at) = match step.params {
                Some(p) => (p.get_ref().clone(), p.span()),
                None => (Params::default(), step.weight.span()),
            };
            if let Some(limit) = params.limit.filter(|l| !(1..=100).contains(l)) {
                return Err(self.fail(Some(params_at), format!("`params.limit` must be 1 to 100, found {limit}")));
            }
            steps.push(Step { op: step.op, weight: weight as u32, params });
        }
        Ok(steps)
    }

    /// The `[slo]`: positive latencies, an error rate from 0 to 1; none when the file has none.
    fn slo(&self, raw: Option<Spanned<Slo>>) -> Parsed<Slo> {
        let Some(slo) = raw else { return Ok(Slo::default()) };
        let span = slo.span();
        let slo = slo.into_inner();
        for (field, value) in [("p99_ms", slo.p99_ms), ("p999_ms", slo.p999_ms)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(self
                    .fail(Some(span), format!("`slo.{field}` must be a positive number of milliseconds, found {v}")));
            }
        }
        if let Some(v) = slo.max_error_rate.filter(|v| !(0.0..=1.0).contains(v)) {
            return Err(self.fail(Some(span), format!("`slo.max_error_rate` must be a share from 0 to 1, found {v}")));
        }
        Ok(slo)
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
    fn a_search_takes_from_max_and_step_duration_and_needs_a_latency_slo() {
        let search = GOOD.replace(
            "model = \"closed\"\nusers = 4\nwarmup = \"1s\"\nduration = \"3s\"",
            "model = \"search\"\nfrom = 500\nto = 8000\ngrowth = 1.5\nstep_duration = \"2s\"",
        );
        let s = Scenario::parse("f.toml", &search).expect("valid");
        let LoadModel::Search(spec) = s.load.model else { panic!("search: {:?}", s.load.model) };
        assert_eq!((spec.from, spec.max, spec.growth), (500.0, 8000.0, 1.5));
        assert_eq!((spec.precision, spec.max_shortfall, spec.max_steps), (0.05, 0.03, 24));
        assert_eq!((s.load.duration, s.load.warmup), (Duration::from_secs(2), Duration::from_secs(1)));
        let err = |text: &str| Scenario::parse("f.toml", text).expect_err("invalid").to_string();
        let e = err(&search.replace("[slo]\np99_ms = 50\n", "[slo]\n"));
        assert!(e.contains("a search needs the latency it must keep"), "{e}");
        let e = err(&search.replace("to = 8000", "to = 400"));
        assert!(e.contains("line 11: `max` must be a rate above `from` (500), found 400"), "{e}");
        let e = err(&search.replace("step_duration", "duration"));
        assert!(e.contains("write `step_duration` instead of `duration`"), "{e}");
        let e = err(&search.replace("growth = 1.5", "growth = 1"));
        assert!(e.contains("line 12: `growth` must be a factor above 1"), "{e}");
        let e = err(&search.replace("from = 500\n", ""));
        assert!(e.contains("`from` is required"), "{e}");
        let e = err(&GOOD.replace("users = 4", "users = 4\nfrom = 3"));
        assert!(e.contains("`from` belongs to `model = \"search\"`"), "{e}");
    }

    #[test]
    fn each_section_names_its_own_line() {
        let err = |text: &str| Scenario::parse("f.toml", text).expect_err("invalid").to_string();
        let open = GOOD.replace("model = \"closed\"\nusers = 4", "model = \"open\"\nrate = 100\nmax_in_flight = 0");
        assert_eq!(err(&open), "scenario f.toml line 11: `max_in_flight` must be a positive integer, found 0");
        let closed_with_step = GOOD.replace("duration = \"3s\"", "step_duration = \"3s\"");
        assert_eq!(err(&closed_with_step), "scenario f.toml line 12: `step_duration` belongs to `model = \"search\"`");
        assert_eq!(
            err(&GOOD.replace("users = 10", "users = 0")),
            "scenario f.toml line 0: `data.users` must be at least 1: the steps need signed-in users"
        );
        assert_eq!(
            err(&GOOD.replace("p99_ms = 50", "p99_ms = -1")),
            "scenario f.toml line 20: `slo.p99_ms` must be a positive number of milliseconds, found -1"
        );
        assert_eq!(
            err(&GOOD.replace("users = 4", "users = 0")),
            "scenario f.toml line 10: `users` must be a positive integer, found 0"
        );
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
