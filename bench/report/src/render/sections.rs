//! The report's sections as document blocks: the run's header, each scenario's comparison,
//! paired comparisons, bottleneck warning, verdict, charts, runs and resources, and how to read it all.

use super::{CHART_KINDS, file_stem, frameworks, mib, num, percent, us_ms, with_ci};
use crate::charts::fmt_ms;
use crate::document::{Block, code, strong, text};
use crate::model::{ModelKind, PairedComparison, Results, Role, RunRecord, ScenarioResult};
use crate::stats::{IntervalKind, Outcome, Scale, median};
use crate::summary::{clean_runs, joined};

fn header(results: &Results) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(1, vec![text("taskbench report "), code(&results.id)])];
    blocks.extend(warnings(results));
    blocks.extend(lost_guarantees(results));
    blocks.push(Block::List(setup(results)));
    blocks
}

/// What a run of servers taskbench did not start gives up (`--target`): said before any figure.
fn lost_guarantees(results: &Results) -> Vec<Block> {
    let lost = &results.config.lost_guarantees;
    if lost.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Warning(vec![
            strong("Servers taskbench did not start"),
            text(": this run gives up what a run of its own servers guarantees:"),
        ]),
        Block::List(lost.iter().map(|l| vec![text(l)]).collect()),
    ]
}

/// What makes the whole report less than it should be: an unfinished run, unoptimised servers.
fn warnings(results: &Results) -> Vec<Block> {
    let mut blocks = Vec::new();
    match &results.incomplete {
        Some(reason) => blocks.push(Block::Warning(vec![strong("INCOMPLETE"), text(format!(": {reason}"))])),
        None if results.finished_at.is_none() => {
            blocks.push(Block::Warning(vec![strong("INCOMPLETE"), text(": the run has no finish time")]));
        }
        None => {}
    }
    let profile = &results.environment.build_profile;
    // Of servers taskbench did not build, nothing is known: said among what such a run gives up.
    if profile != crate::model::UNKNOWN_PROFILE && !crate::model::optimised_profile(profile) {
        blocks.push(Block::Warning(vec![
            text("the servers were built with the "),
            code(profile),
            strong(" profile, not "),
            code("server"),
            text(": these numbers say little about production performance."),
        ]));
    }
    blocks
}

/// When, on what, built how, against which database, pinned how, and the command: one line each.
fn setup(results: &Results) -> Vec<Vec<crate::document::Inline>> {
    let env = &results.environment;
    let cfg = &results.config;
    let status = match &results.incomplete {
        Some(_) => "INCOMPLETE".to_owned(),
        None => format!("complete, finished {}", results.finished_at.as_deref().unwrap_or("–")),
    };
    // Gathered by `taskbench merge --into` from load generators' results: nothing was sampled,
    // and the runs' order was the user's.
    let merged = !cfg.targets.is_empty() && cfg.sample_interval_ms == 0;
    let durable = match cfg.db.durable {
        Some(true) => ", durable (fsync on)",
        Some(false) => ", not durable (fsync off)",
        None => "",
    };
    vec![
        vec![strong("Started: "), text(&results.started_at), text(format!(" — {status}"))],
        vec![
            strong(match (cfg.targets.is_empty(), merged) {
                (true, _) => "Machine: ",
                (false, false) => "Load generator's machine: ",
                (false, true) => "Machine that merged the results: ",
            }),
            text(machine(&env.machine)),
        ],
        vec![
            strong("Toolchain: "),
            text(env.rustc.as_deref().unwrap_or("rustc unknown")),
            text(format!("; taskbench {}", env.taskbench_version)),
        ],
        vec![
            strong("Git commit: "),
            code(env.git_commit.as_deref().unwrap_or("unknown")),
            text(if env.git_dirty == Some(true) { " (uncommitted changes)" } else { "" }),
        ],
        vec![strong("Build profile: "), code(&env.build_profile)],
        targets(&cfg.targets),
        vec![strong("Database: "), text(format!("{} — {}{durable}", cfg.db.kind, cfg.db.detail))],
        vec![strong("CPU plan: "), text(cpu_plan(&cfg.cpus))],
        vec![
            strong("Server resources: "),
            text(match cfg.server_resources.unwrap_or_default() {
                _ if merged => "not sampled",
                crate::model::ResourceSource::Proc => {
                    "read from this machine's /proc (peak memory: the kernel's high-water mark)"
                }
                crate::model::ResourceSource::Metrics => {
                    "scraped from each server's /metrics (process_resident_memory_bytes, process_cpu_seconds_total; \
                     peak memory: the highest sample)"
                }
            }),
        ],
        vec![
            strong("Plan: "),
            text(format!(
                "{} × {} repeats, {}; {}; {}seed {}",
                cfg.frameworks.join(", "),
                cfg.repeats,
                if merged { "in the order they were merged" } else { "interleaved" },
                if cfg.targets.is_empty() {
                    format!(
                        "{} pool connections and {} worker thread(s) per server",
                        cfg.server_pool_size, cfg.server_workers
                    )
                } else {
                    "the servers' pools and threads are their own".to_owned()
                },
                if merged { String::new() } else { format!("samples every {} ms; ", cfg.sample_interval_ms) },
                cfg.seed
            )),
        ],
        vec![strong("Command: "), code(cfg.command_line.join(" "))],
    ]
}

/// The `--target`s, or where the servers came from.
fn targets(targets: &std::collections::BTreeMap<String, String>) -> Vec<crate::document::Inline> {
    if targets.is_empty() {
        return vec![strong("Servers: "), text("started, pinned and stopped by taskbench, one per run")];
    }
    let mut line = vec![strong("Servers: "), text("not started by taskbench: ")];
    for (i, (name, url)) in targets.iter().enumerate() {
        if i > 0 {
            line.push(text(", "));
        }
        line.extend([text(format!("{name} at ")), code(url)]);
    }
    line
}

fn machine(m: &crate::model::Machine) -> String {
    format!(
        "{}, {} logical CPUs{}, {:.1} GiB, {}{}{}",
        m.cpu_model,
        m.logical_cpus,
        m.physical_cores.map(|p| format!(" ({p} physical)")).unwrap_or_default(),
        m.memory_bytes as f64 / (1u64 << 30) as f64,
        m.os,
        m.kernel.as_deref().map(|k| format!(", kernel {k}")).unwrap_or_default(),
        m.hostname.as_deref().map(|h| format!(", host {h}")).unwrap_or_default(),
    )
}

fn cpu_plan(plan: &crate::model::CpuPlan) -> String {
    let cpus = |role: Role| {
        plan.of(role).map_or("any".to_owned(), |c| c.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
    };
    format!(
        "server {}, loadgen {}, postgres {} ({})",
        cpus(Role::Server),
        cpus(Role::Loadgen),
        cpus(Role::Postgres),
        plan.origin
    )
}

fn comparison_table(results: &Results, scenario: &ScenarioResult) -> Block {
    let head = [
        "framework",
        "goodput/s median (95% CI)",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "error rate",
        "SLO met",
        "server peak RSS MiB",
        "server CPU ms/1k req",
        "generator send-lag p99 ms",
        "clean runs",
    ];
    let rows = frameworks(results, scenario)
        .into_iter()
        .map(|fw| {
            let total = scenario.runs.iter().filter(|r| r.framework == fw).count();
            let s = scenario.summary.as_ref().and_then(|s| s.frameworks.iter().find(|f| f.framework == fw));
            match s {
                Some(s) => vec![
                    fw,
                    with_ci(&s.rps, 1),
                    us_ms(&s.p50_us),
                    us_ms(&s.p90_us),
                    us_ms(&s.p99_us),
                    us_ms(&s.p999_us),
                    us_ms(&s.max_us),
                    percent(s.error_rate.median),
                    slo_tally(s.slo.as_ref()),
                    s.server_peak_rss_bytes.as_ref().map_or("–".to_owned(), |e| mib(e.median)),
                    s.server_cpu_ms_per_1k_requests.as_ref().map_or("–".to_owned(), |e| num(e.median, 1)),
                    s.send_lag_p99_us.as_ref().map_or("–".to_owned(), us_ms),
                    format!("{} of {total}", s.clean_runs),
                ],
                None => {
                    let mut row = vec![fw, "no clean runs".to_owned()];
                    row.extend(std::iter::repeat_n("–".to_owned(), 10));
                    row.push(format!("0 of {total}"));
                    row
                }
            }
        })
        .collect();
    Block::Table { head: head.map(str::to_owned).to_vec(), rows }
}

/// A saturation search: each framework's maximum sustainable throughput over its repeats, what
/// broke each search, and the steps of its median search.
fn search_blocks(results: &Results, scenario: &ScenarioResult) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(3, vec![text("Maximum sustainable throughput")])];
    let settings = scenario.runs.iter().find_map(|r| r.load.as_ref()?.search.as_ref()).map(|s| s.settings);
    if let Some(st) = settings {
        let mut slo = Vec::new();
        if let Some(p) = st.slo.p99_ms {
            slo.push(format!("p99 ≤ {p} ms"));
        }
        if let Some(p) = st.slo.p999_ms {
            slo.push(format!("p99.9 ≤ {p} ms"));
        }
        slo.push(format!("errors ≤ {:.2}%", st.error_budget * 100.0));
        blocks.push(Block::Para(vec![text(format!(
            "Each search offered constant rates from {} req/s, ×{} per step up to {} req/s, then bisected between the \
             last rate that passed and the first that broke until they were within {:.0}%{}. A step warmed up {} s and \
             measured at least {} s and {} answers; it broke when {}, a send was dropped, or the server delivered \
             more than {:.0}% fewer successful answers than offered. The maximum is the highest rate a step passed at.",
            num(st.from, 0),
            st.growth,
            num(st.max, 0),
            st.precision * 100.0,
            if st.confirm { " (a break counted only when a retry at the same rate broke too)" } else { "" },
            st.step_warmup_secs,
            st.step_secs,
            st.min_samples,
            slo.join(", "),
            st.max_shortfall * 100.0
        ))]));
    }
    let mut rows = Vec::new();
    for fw in frameworks(results, scenario) {
        let est = scenario
            .summary
            .as_ref()
            .and_then(|s| s.frameworks.iter().find(|f| f.framework == fw))
            .and_then(|f| f.max_sustainable_rps);
        let runs: Vec<&RunRecord> = scenario.runs.iter().filter(|r| r.framework == fw).collect();
        let each: Vec<String> = runs
            .iter()
            .map(|r| {
                let search = r.load.as_ref().and_then(|l| l.search.as_ref());
                let max = search.and_then(|s| s.max_sustainable_rps);
                // A lower bound (the search's max, its budget or the generator stopped it) says so.
                let bound = if search.is_some_and(|s| !s.found_by_server()) { "≥" } else { "" };
                format!("r{} {bound}{}", r.repeat, max.map_or("–".to_owned(), |m| num(m, 0)))
            })
            .collect();
        let broke: Vec<String> = runs
            .iter()
            .filter_map(|r| {
                let s = r.load.as_ref()?.search.as_ref()?;
                let limit =
                    r.bottlenecks.iter().map(|b| format!(" [limited by {}: {}]", b.role, b.detail)).collect::<String>();
                Some(format!("r{}: {}{limit}", r.repeat, s.conclusion))
            })
            .collect();
        rows.push(vec![
            fw.clone(),
            est.as_ref().map_or("–".to_owned(), |e| with_ci(e, 0)),
            each.join(", "),
            broke.join(" · "),
        ]);
    }
    let head = ["framework", "max sustainable req/s, median (95% CI or range)", "each repeat", "how each search ended"];
    blocks.push(Block::Table { head: head.map(str::to_owned).to_vec(), rows });
    for fw in frameworks(results, scenario) {
        let Some(run) = crate::charts::median_search(scenario, &fw) else { continue };
        let Some(search) = run.load.as_ref().and_then(|l| l.search.as_ref()) else { continue };
        blocks.push(Block::Para(vec![
            strong(format!("{fw}, repeat {} (its median search): ", run.repeat)),
            text(format!("{} steps.", search.steps.len())),
        ]));
        let rows = search
            .steps
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let ms = |us: u64| fmt_ms(us as f64 / 1000.0);
                let cpu = run.steps.get(i).filter(|r| r.rate == st.rate).and_then(|r| r.server_cpu_us_per_request);
                let limits = run.steps.get(i).map(|r| r.bottlenecks.iter().map(|b| b.role).collect::<Vec<_>>());
                vec![
                    (i + 1).to_string(),
                    num(st.rate, 0),
                    num(st.achieved_rps, 0),
                    ms(st.latency_us.p50.max(st.all_latency_us.p50)),
                    ms(st.latency_us.p99.max(st.all_latency_us.p99)),
                    ms(st.latency_us.p999.max(st.all_latency_us.p999)),
                    percent(st.error_rate),
                    format!("{} µs", st.send_lag_p99_us),
                    cpu.map_or("–".to_owned(), |c| num(c, 1)),
                    limits.filter(|l| !l.is_empty()).map_or("–".to_owned(), |l| joined(&l, ", ")),
                    run.steps.get(i).and_then(|r| r.steal).map_or("–".to_owned(), |s| format!("{:.0}%", s * 100.0)),
                    if st.pass {
                        "pass".to_owned()
                    } else {
                        format!("broke: {}", st.broke.iter().map(|b| b.detail.as_str()).collect::<Vec<_>>().join("; "))
                    },
                ]
            })
            .collect();
        let head = [
            "step",
            "rate/s",
            "achieved/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "errors",
            "send-lag p99",
            "server CPU µs/req",
            "saturated",
            "steal",
            "verdict",
        ];
        blocks.push(Block::Table { head: head.map(str::to_owned).to_vec(), rows });
    }
    blocks.push(Block::Para(vec![text(
        "The table below gives each framework's figures at its maximum sustainable rate (the step it last passed).",
    )]));
    blocks
}

/// Steal time above this share of a run is flagged (`taskbench run` warns at the same level).
const NOISY_STEAL: f64 = 0.05;

fn comparison_row(c: &PairedComparison) -> Vec<String> {
    let relative = c.stats.scale == Scale::Relative;
    let fmt = |x: f64| if relative { format!("{:+.1}%", x * 100.0) } else { format!("{:+.2} pp", x * 100.0) };
    let each = c.repeats.iter().zip(&c.stats.effects).map(|(r, e)| format!("r{r} {}", fmt(*e))).collect::<Vec<_>>();
    let interval = match c.stats.interval {
        IntervalKind::Ci => {
            format!("{} to {} (95% CI, covers {:.1}%)", fmt(c.stats.low), fmt(c.stats.high), c.stats.coverage * 100.0)
        }
        IntervalKind::Range => {
            format!(
                "{} to {} (range only: covers {:.0}%)",
                fmt(c.stats.low),
                fmt(c.stats.high),
                c.stats.coverage * 100.0
            )
        }
    };
    vec![
        c.metric.label().to_owned(),
        format!("{} vs {}", c.a, c.b),
        each.join(", "),
        fmt(c.stats.effect),
        interval,
        format!("sign-flip, n = {}, p = {:.3}", c.stats.n, c.stats.p_value),
        outcome_label(c),
    ]
}

/// The outcome in a few words, naming the better contender.
fn outcome_label(c: &PairedComparison) -> String {
    match c.stats.outcome {
        Outcome::ABetter => format!("{} better", c.a),
        Outcome::BBetter => format!("{} better", c.b),
        Outcome::Equivalent => "equivalent".to_owned(),
        Outcome::BelowThreshold => "below threshold".to_owned(),
        Outcome::Inconclusive => {
            c.stats.needed_pairs.map_or("inconclusive".to_owned(), |n| format!("inconclusive (~{n} pairs would tell)"))
        }
        Outcome::TooFewPairs => format!("no verdict: {} pairs", c.stats.n),
    }
}

/// One line per comparison for the terminal: the pairs and what they say.
pub(crate) fn pairs_line(c: &PairedComparison) -> String {
    let row = comparison_row(c);
    format!("{} ({}): pairs {}; median {}, {}; {} → {}", row[0], row[1], row[2], row[3], row[4], row[5], row[6])
}

fn run_status(run: &RunRecord) -> String {
    run.unclean_because().map_or_else(|| "clean".to_owned(), |why| format!("NOT CLEAN: {why}"))
}

/// `3 of 3`, or `–` when the scenario states no SLO.
pub(super) fn slo_tally(tally: Option<&crate::model::SloTally>) -> String {
    tally.map_or("–".to_owned(), |t| format!("{} of {}", t.met, t.judged))
}

fn scenario_blocks(results: &Results, scenario: &ScenarioResult) -> Vec<Block> {
    let mut blocks = vec![
        Block::Heading(2, vec![text("Scenario "), code(&scenario.name)]),
        Block::Para(vec![text(&scenario.description)]),
        Block::Para(vec![text(format!(
            "{} model, {} s warm-up (excluded), {} s measured per run; scenario file ",
            scenario.model, scenario.warmup_secs, scenario.duration_secs
        ))]),
    ];
    if let Some(Block::Para(p)) = blocks.last_mut() {
        p.push(code(&scenario.file));
        p.push(text("."));
    }
    let unclean: Vec<&RunRecord> = scenario.runs.iter().filter(|r| !r.is_clean()).collect();
    if !unclean.is_empty() {
        let list = unclean.iter().map(|r| format!("{} repeat {}", r.framework, r.repeat)).collect::<Vec<_>>();
        blocks.push(Block::Warning(vec![
            strong(format!("{} run(s) INCOMPLETE or failed", unclean.len())),
            text(format!(
                " ({}): they are left out of the medians; the charts still draw what they measured.",
                list.join(", ")
            )),
        ]));
    }
    let noisy: Vec<String> = scenario
        .runs
        .iter()
        .filter_map(|r| Some((r, r.steal.filter(|s| *s > NOISY_STEAL)?)))
        .map(|(r, s)| format!("{} repeat {}: {:.0}%", r.framework, r.repeat, s * 100.0))
        .collect();
    if !noisy.is_empty() {
        blocks.push(Block::Warning(vec![
            strong("A noisy machine"),
            text(format!(
                ": the hypervisor took more than {:.0}% of this machine's CPU time (steal) during {} run(s) ({}). \
                 Those numbers include that noise (late sends, a longer tail); pairs share it only when it was steady. \
                 Measure on a quieter machine to publish them.",
                NOISY_STEAL * 100.0,
                noisy.len(),
                noisy.join(", ")
            )),
        ]));
    }
    let Some(summary) = &scenario.summary else {
        blocks.push(Block::Warning(vec![
            strong("No clean runs"),
            text(": no run of this scenario measured a complete phase."),
        ]));
        blocks.extend(detail_blocks(results, scenario));
        return blocks;
    };
    if scenario.model == ModelKind::Search {
        blocks.extend(search_blocks(results, scenario));
    }
    blocks.push(comparison_table(results, scenario));
    if !summary.comparisons.is_empty() {
        let rows = summary.comparisons.iter().map(comparison_row).collect();
        let head = ["metric", "A vs B", "each pair (A/B − 1, by repeat)", "median", "interval", "test", "outcome"];
        blocks.push(Block::Table { head: head.map(str::to_owned).to_vec(), rows });
        blocks.push(Block::Para(vec![text(format!(
            "Pairs are the two contenders' runs in the same repeat, adjacent in time (the order alternates A B, B A). \
             The interval is the exact order-statistic 95% confidence interval of the median pair effect (from {} \
             pairs; below that only the range, and its real coverage); the test is the exact two-sided sign-flip \
             permutation test on the pairs' log ratios; differences under ±{:.1}% are no practical difference.",
            crate::stats::MIN_PAIRS,
            summary.min_effect * 100.0
        ))]));
    }
    if !summary.limited_by.is_empty() {
        blocks.push(Block::Warning(vec![
            strong(format!("Limited by {}", joined(&summary.limited_by, " and "))),
            text(
                ": in the repeats listed below a role other than the server ran out of CPU (or the generator fell \
                 behind its schedule), so those pairs are left out of throughput (and, unless the open-model \
                 generator kept its schedule, latency); CPU per request, peak memory and error rate still compare \
                 the servers in every pair, at equal delivered load.",
            ),
        ]));
        let items = scenario
            .runs
            .iter()
            .flat_map(|r| r.bottlenecks.iter().map(move |b| (r, b)))
            .map(|(r, b)| vec![text(format!("{} repeat {}: {}", r.framework, r.repeat, b.detail))])
            .collect();
        blocks.push(Block::List(items));
    }
    blocks.push(Block::Para(vec![strong("Verdict: "), text(&summary.verdict)]));
    blocks.extend(detail_blocks(results, scenario));
    blocks
}

/// Charts, the per-run table and resource use: shown whether or not there is a summary.
fn detail_blocks(results: &Results, scenario: &ScenarioResult) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(3, vec![text("Charts")])];
    let search = scenario.model == ModelKind::Search;
    let capacity = search.then_some(("capacity", "Latency–throughput curve: p50, p99 and p99.9 against the offered rate (each framework's median search; hollow dots broke), the SLO, each maximum sustainable rate; server CPU per request"));
    for (kind, title) in capacity.into_iter().chain(CHART_KINDS) {
        blocks.push(Block::Chart {
            title: title.to_owned(),
            path: format!("charts/{}-{kind}.svg", file_stem(&scenario.name)),
        });
    }
    blocks.push(Block::Heading(3, vec![text("Runs")]));
    let rows = scenario
        .runs
        .iter()
        .map(|r| {
            let load = r.load.as_ref();
            vec![
                r.framework.clone(),
                r.repeat.to_string(),
                r.position.to_string(),
                load.map_or("–".to_owned(), |l| num(l.total.rps, 1)),
                load.map_or("–".to_owned(), |l| fmt_ms(l.total.latency_us.p99 as f64 / 1000.0)),
                load.map_or("–".to_owned(), |l| l.total.errors.to_string()),
                load.and_then(|l| l.open.as_ref()).map_or("–".to_owned(), |o| {
                    format!("{} / {}", fmt_ms(o.send_lag_us.p99 as f64 / 1000.0), o.dropped_sends)
                }),
                load.and_then(|l| l.slo.as_ref()).map_or("–".to_owned(), |s| s.describe()),
                r.steal.map_or("–".to_owned(), |s| format!("{:.1}%", s * 100.0)),
                run_status(r),
            ]
        })
        .collect();
    let head = [
        "framework",
        "repeat",
        "position",
        "RPS (goodput)",
        "p99 ms",
        "errors",
        "send-lag p99 ms / dropped",
        "SLO",
        "steal",
        "status",
    ];
    blocks.push(Block::Table { head: head.map(str::to_owned).to_vec(), rows });
    blocks.push(Block::Heading(3, vec![text("Resources (medians over clean runs)")]));
    let mut rows = Vec::new();
    for role in Role::ALL {
        for fw in frameworks(results, scenario) {
            let runs = clean_runs(scenario, &fw);
            let stats: Vec<_> = runs.iter().filter_map(|r| r.resources.get(&role)).collect();
            if stats.is_empty() {
                rows.push(vec![
                    role.to_string(),
                    fw,
                    "not measured".to_owned(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                ]);
                continue;
            }
            let med = |f: &dyn Fn(&crate::model::ProcessStats) -> Option<f64>| {
                let v: Vec<f64> = stats.iter().filter_map(|s| f(s)).collect();
                median(&v)
            };
            rows.push(vec![
                role.to_string(),
                fw,
                mib(med(&|s| Some(s.peak_rss_bytes as f64))),
                mib(med(&|s| Some(s.mean_rss_bytes as f64))),
                num(med(&|s| Some(s.cpu_seconds)), 2),
                num(med(&|s| Some(s.mean_cpu_cores)), 2),
                num(med(&|s| s.cpu_ms_per_1k_requests), 1),
                mib(med(&|s| s.idle_rss_bytes.map(|b| b as f64))),
            ]);
        }
    }
    let head = ["role", "framework", "peak MiB", "mean MiB", "CPU s", "mean cores", "CPU ms/1k req", "idle MiB"];
    blocks.push(Block::Table { head: head.map(str::to_owned).to_vec(), rows });
    blocks
}

fn how_to_read() -> Vec<Block> {
    let item = |s: &str| vec![text(s)];
    vec![
        Block::Heading(2, vec![text("How to read this")]),
        Block::List(vec![
            item(
                "Each figure is the median over the clean repeats of a framework; runs that failed or ended early are listed but left out.",
            ),
            item(
                "A median's 95% confidence interval is the exact order-statistic (binomial) interval; it exists from 6 repeats on. With fewer, the range of the repeats is shown and called a range (3 repeats: it covers the median only 75% of the time).",
            ),
            item(
                "Contenders are compared pair by pair: the two runs of the same repeat, adjacent in time, with the order alternating (A B, B A, …) so drift of the machine falls on both. Each pair gives a ratio; a winner needs the exact sign-flip test to be significant at 5% (two-sided) and the median ratio, on the side the test found, to be at least the practical threshold (--min-effect, 2% by default). The 95% interval of the median (order statistics) is shown beside it; it uses only the pairs' signs, so it is wider than the test and may reach past zero when the test is significant. An interval inside ±threshold is \u{201c}equivalent\u{201d}; anything else is \u{201c}inconclusive\u{201d}, with an estimate of the pairs needed. Never compare against another day's numbers.",
            ),
            item(
                "In the open model (fixed arrival rate), latency counts from the intended send time, so a stalled server cannot hide queueing (no coordinated omission); service time counts from the actual send.",
            ),
            item(
                "RPS is goodput: only the answers a step expects count. Errors are counted, timed apart, and never enter the latency figures; a dropped open-model send (the server fell behind the schedule) is an error too, and a run with drops, or with more errors than the scenario's error budget, is not clean and is left out of the medians.",
            ),
            item(
                "The generator's send lag (actual minus intended send) is its own error and is part of every open-model latency: read the latency beside it. A run whose send-lag p99 is over 1 ms, or over a quarter of its latency p99, counts as limited by the load generator.",
            ),
            item(
                "SLO met: how many clean runs kept the scenario's [slo] (p99, p99.9, error rate), each judged on its own.",
            ),
            item(
                "Peak memory is the kernel's high-water mark of the process (VmHWM), warm-up included; Postgres memory is PSS, so shared buffers count once; idle is the server's RSS once ready, before any load. CPU is measured from CPU-time counters over the exact measured phase.",
            ),
            item(
                "The latency spectrum merges the HDR histograms of a framework's clean runs; its x axis adds one nine per step (90, 99, 99.9 …), so the tail gets as much room as the median.",
            ),
            item(
                "When the load generator or Postgres saturates its CPU, the result says “Limited by” and throughput is not compared: the limit was not the framework. Server CPU per request, server peak memory and error rate are still compared, and, in the open model when the generator kept its schedule, latency at the (equal) scheduled rate.",
            ),
        ]),
    ]
}

pub(super) fn document(results: &Results) -> Vec<Block> {
    let mut blocks = header(results);
    if results.scenarios.is_empty() {
        blocks.push(Block::Para(vec![text("No scenario was measured.")]));
    }
    for scenario in &results.scenarios {
        blocks.extend(scenario_blocks(results, scenario));
    }
    blocks.extend(how_to_read());
    blocks
}
