//! Constructed results, for tests and for trying the report and `compare` without a run: plausible
//! histograms, series and samples from a seeded generator, with knobs for throughput and latency.

use std::collections::BTreeMap;

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use taskbench_results::{Figures, LoadResult, Percentiles, Second, encode_histogram, new_histogram};

use crate::model::{
    CpuPlan, DbConfig, Environment, Machine, ModelKind, ProcessStats, Results, Role, RunConfig, RunRecord,
    SCHEMA_VERSION, Sample, ScenarioResult,
};

/// How one framework should look in constructed results.
#[derive(Debug, Clone)]
pub struct Shape {
    pub framework: String,
    /// Median requests per second.
    pub rps: f64,
    /// Median latency in microseconds; the tail follows a log-normal-ish shape.
    pub p50_us: f64,
    /// Relative run-to-run noise (0.02 = ±2%).
    pub noise: f64,
    pub server_rss_mib: f64,
}

impl Shape {
    pub fn new(framework: &str, rps: f64, p50_us: f64) -> Self {
        Self { framework: framework.to_owned(), rps, p50_us, noise: 0.02, server_rss_mib: 12.0 }
    }
}

/// Results of `repeats` repeats of each scenario in `scenarios` for every shape, `measured_secs`
/// long, with summaries computed.
pub fn results(scenarios: &[&str], shapes: &[Shape], repeats: u32, measured_secs: u64, seed: u64) -> Results {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let frameworks: Vec<String> = shapes.iter().map(|s| s.framework.clone()).collect();
    let mut out = Results {
        schema_version: SCHEMA_VERSION,
        id: format!("20261121T120000Z-{seed:06x}"),
        started_at: "2026-11-21T12:00:00Z".into(),
        finished_at: Some("2026-11-21T12:05:00Z".into()),
        incomplete: None,
        environment: Environment {
            machine: Machine {
                cpu_model: "Constructed CPU".into(),
                logical_cpus: 2,
                physical_cores: Some(2),
                memory_bytes: 24 << 30,
                os: "Linux".into(),
                kernel: None,
                hostname: None,
            },
            rustc: None,
            taskbench_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: None,
            git_dirty: None,
            build_profile: "release".into(),
            server_binaries: BTreeMap::new(),
        },
        config: RunConfig {
            command_line: vec!["constructed".into()],
            frameworks: frameworks.clone(),
            repeats,
            duration_secs: Some(measured_secs as f64),
            warmup_secs: Some(1.0),
            quick: false,
            db: DbConfig { kind: "local".into(), detail: "constructed".into(), durable: Some(true) },
            cpus: CpuPlan {
                server: Some(vec![0]),
                loadgen: Some(vec![1]),
                db: Some(vec![1]),
                origin: "constructed".into(),
            },
            sample_interval_ms: 250,
            server_pool_size: 8,
            server_workers: 1,
            seed,
            min_effect: crate::stats::DEFAULT_MIN_EFFECT,
            server_args: BTreeMap::new(),
            server_resources: None,
            targets: BTreeMap::new(),
            lost_guarantees: Vec::new(),
        },
        scenarios: Vec::new(),
    };
    for name in scenarios {
        let mut scenario = ScenarioResult {
            name: (*name).to_owned(),
            description: format!("constructed {name}"),
            model: ModelKind::Closed,
            file: format!("scenarios/{name}.toml"),
            source: String::new(),
            warmup_secs: 1.0,
            duration_secs: measured_secs as f64,
            runs: Vec::new(),
            summary: None,
        };
        for repeat in 1..=repeats {
            for (position, shape) in shapes.iter().enumerate() {
                scenario.runs.push(run(shape, name, repeat, position as u32 + 1, measured_secs, &mut rng));
            }
        }
        scenario.summary = crate::summary::summarise(&scenario, &frameworks, crate::stats::DEFAULT_MIN_EFFECT, seed);
        out.scenarios.push(scenario);
    }
    out
}

fn run(shape: &Shape, scenario: &str, repeat: u32, position: u32, secs: u64, rng: &mut ChaCha8Rng) -> RunRecord {
    let factor = 1.0 + shape.noise * (rng.random::<f64>() * 2.0 - 1.0);
    let rps = shape.rps * factor;
    let p50 = shape.p50_us / factor;
    let mut latency = new_histogram();
    let requests = (rps * secs as f64) as u64;
    let mut series = Vec::new();
    for second in 0..secs {
        let mut h = new_histogram();
        for _ in 0..(requests / secs).min(20_000) {
            // Log-normal around p50 with a heavier tail.
            let z: f64 = (0..6).map(|_| rng.random::<f64>()).sum::<f64>() - 3.0;
            let v = (p50 * (0.45 * z).exp()).max(1.0) as u64;
            let _ = h.record(v);
        }
        let _ = latency.add(&h);
        series.push(Second {
            second,
            requests: requests / secs,
            errors: 0,
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
        });
    }
    let percentiles = Percentiles::of(&latency);
    let hdr = encode_histogram(&latency);
    let figures = Figures {
        requests,
        successes: requests,
        errors: 0,
        errors_by_kind: BTreeMap::new(),
        error_rate: 0.0,
        rps,
        latency_us: percentiles,
        service_us: percentiles,
        error_latency_us: Percentiles::default(),
        all_latency_us: percentiles,
        latency_hdr: hdr.clone(),
        service_hdr: hdr,
        error_hdr: encode_histogram(&new_histogram()),
    };
    let load = LoadResult {
        scenario: scenario.to_owned(),
        model: ModelKind::Closed,
        target: "http://127.0.0.1:8080".into(),
        measured_secs: secs as f64,
        warmup_requests: requests / secs,
        total: figures.clone(),
        per_op: BTreeMap::from([("list_tasks".to_owned(), figures)]),
        series,
        open: None,
        slo: None,
        incomplete: None,
        measure_started_unix_ms: None,
        generator_peak_rss_bytes: None,
        search: None,
        delivered_rps: None,
        agent: None,
        agents: None,
    };
    let rss = (shape.server_rss_mib * factor * 1_048_576.0) as u64;
    let samples: Vec<Sample> = (-4..=(secs as i64 * 4))
        .map(|i| Sample {
            t_ms: i * 250,
            server_rss: rss - 100_000 + rng.random_range(0..200_000),
            server_cpu: 90.0 + rng.random::<f32>() * 10.0,
            postgres_rss: Some(80 << 20),
            postgres_cpu: Some(40.0 + rng.random::<f32>() * 10.0),
            loadgen_rss: 20 << 20,
            loadgen_cpu: 25.0 + rng.random::<f32>() * 10.0,
        })
        .collect();
    let stats = |peak: u64, cores: f64| ProcessStats {
        pids: vec![1000 + position],
        peak_rss_bytes: peak,
        sampled_peak_rss_bytes: peak,
        mean_rss_bytes: peak - 50_000,
        idle_rss_bytes: None,
        cpu_seconds: cores * secs as f64,
        mean_cpu_cores: cores,
        cpu_ms_per_1k_requests: Some(cores * secs as f64 * 1000.0 / requests.max(1) as f64 * 1000.0),
        allotted_cpus: 1,
    };
    RunRecord {
        framework: shape.framework.clone(),
        repeat,
        position,
        started_at: "2026-11-21T12:00:00Z".into(),
        load: Some(load),
        resources: BTreeMap::from([
            (Role::Server, stats(rss + 100_000, 0.95)),
            (Role::Postgres, stats(80 << 20, 0.45)),
            (Role::Loadgen, stats(20 << 20, 0.3)),
        ]),
        samples,
        bottlenecks: Vec::new(),
        error: None,
        steps: Vec::new(),
        steal: None,
    }
}
