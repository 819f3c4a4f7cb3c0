//! Server configuration: one set of flags and environment variables for both server binaries.

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::{Argon2Cost, HashLimits};

/// Command line of `taskbench-axum` and `taskbench-actix` (identical by construction).
#[derive(Debug, Clone, clap::Parser)]
#[command(version, about = "The taskbench reference task API")]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port (the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Database connections in the pool.
    #[arg(long, default_value_t = 16)]
    pub pool_size: u32,
    /// How long a request waits for a pooled connection before answering 503.
    #[arg(long, default_value_t = DEFAULT_POOL_ACQUIRE_TIMEOUT_MS, value_name = "MS")]
    pub pool_acquire_timeout_ms: u64,
    /// HS256 secret for bearer tokens (at least 32 bytes). Unset: a random one per process.
    #[arg(long, env = "TASKBENCH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, env = "TASKBENCH_ARGON2_M_COST", default_value_t = Argon2Cost::default().m_cost_kib)]
    pub argon2_m_cost: u32,
    /// argon2id passes (OWASP: 2).
    #[arg(long, env = "TASKBENCH_ARGON2_T_COST", default_value_t = Argon2Cost::default().t_cost)]
    pub argon2_t_cost: u32,
    /// argon2id lanes (OWASP: 1).
    #[arg(long, env = "TASKBENCH_ARGON2_P_COST", default_value_t = Argon2Cost::default().p_cost)]
    pub argon2_p_cost: u32,
    /// Password hashes (and login verifications) running at once, each holding one argon2 memory
    /// block (default: one per CPU this process may run on).
    #[arg(long, env = "TASKBENCH_HASH_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub hash_concurrency: Option<u32>,
    /// How long a register or login waits for a hashing slot before answering 503 with
    /// `retry-after` (0: it never waits).
    #[arg(long, env = "TASKBENCH_HASH_WAIT_MS", default_value_t = HashLimits::DEFAULT_WAIT_MS, value_name = "MS")]
    pub hash_wait_ms: u64,
    /// Allowed CORS origin, or `*`.
    #[arg(long, env = "TASKBENCH_CORS_ORIGIN", default_value = "*")]
    pub cors_origin: String,
    /// Upper bound on handling one request; past it the answer is 503.
    /// Also the most a graceful stop waits for open connections.
    #[arg(long, env = "TASKBENCH_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_name = "SECONDS")]
    pub request_timeout_secs: u64,
    /// How long a client may take to send a request head, and how long a keep-alive connection
    /// may sit idle, before the server closes it (the slowloris bound; both servers). At least
    /// 1000: Actix reads its clock every 500 ms, so a shorter bound would fire early there.
    #[arg(long, env = "TASKBENCH_HEADER_TIMEOUT_MS", default_value_t = 5000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1000..))]
    pub header_timeout_ms: u64,
    /// Worker threads (default: one per CPU this process may run on).
    #[arg(long, env = "TASKBENCH_WORKERS")]
    pub workers: Option<usize>,
    /// Calibration aid, off by default: spend this many microseconds (decimals allowed) of CPU
    /// on every request, in the shared envelope, so a performance gate has a known slowdown to
    /// catch (`scripts/gate-calibration.sh`). Never set it when comparing frameworks. A flag only
    /// (no environment variable), so it can never slow a server unseen: `taskbench run` records
    /// every contender's arguments.
    #[arg(long, default_value_t = 0.0, value_name = "MICROSECONDS", value_parser = inject_cost)]
    pub inject_cpu_us: f64,
}

fn inject_cost(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(us) if us.is_finite() && (0.0..=1e6).contains(&us) => Ok(us),
        _ => Err(format!("expected microseconds from 0 to 1000000 (decimals allowed), found `{text}`")),
    }
}

/// Everything a [`crate::Service`] needs besides its pool.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub jwt_secret: Vec<u8>,
    pub argon2: Argon2Cost,
    /// How much hashing runs at once and how long a request waits for it.
    pub hashing: HashLimits,
    pub cors_origin: String,
    pub request_timeout: Duration,
    /// Bound on receiving a request head, and on a keep-alive connection's idleness.
    pub header_timeout: Duration,
    pub pool_size: u32,
    pub pool_acquire_timeout: Duration,
    /// CPU burnt in every request (the calibration knob); zero normally.
    pub inject_cpu: Duration,
}

impl ServerArgs {
    pub fn service_config(&self) -> ServiceConfig {
        let jwt_secret = match &self.jwt_secret {
            Some(secret) => secret.clone().into_bytes(),
            None => {
                tracing::warn!("TASKBENCH_JWT_SECRET is not set: using a random secret; tokens die with this process");
                let bytes: [u8; 32] = rand::random();
                bytes.to_vec()
            }
        };
        if jwt_secret.len() < 32 {
            tracing::warn!(len = jwt_secret.len(), "the JWT secret is shorter than 32 bytes");
        }
        ServiceConfig {
            jwt_secret,
            argon2: Argon2Cost {
                m_cost_kib: self.argon2_m_cost,
                t_cost: self.argon2_t_cost,
                p_cost: self.argon2_p_cost,
            },
            hashing: HashLimits {
                concurrency: self
                    .hash_concurrency
                    .map_or_else(|| HashLimits::for_this_machine().concurrency, |n| n as usize),
                wait: Duration::from_millis(self.hash_wait_ms),
            },
            cors_origin: self.cors_origin.clone(),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            pool_size: self.pool_size,
            pool_acquire_timeout: Duration::from_millis(self.pool_acquire_timeout_ms),
            inject_cpu: Duration::from_secs_f64(self.inject_cpu_us / 1e6),
        }
    }

    /// Worker threads to run: the flag, else the CPUs this process may use (which honours
    /// `taskset`, so a pinned server sizes itself to its cores).
    pub fn worker_threads(&self) -> usize {
        self.workers.filter(|&n| n > 0).unwrap_or_else(usable_cpus)
    }
}

/// The pool's default acquire timeout, in milliseconds (also the default wait for a hashing slot).
pub const DEFAULT_POOL_ACQUIRE_TIMEOUT_MS: u64 = 2000;

/// The CPUs this process may run on (which honours `taskset`): the default worker threads and
/// hashing slots.
pub fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl ServiceConfig {
    #[cfg(feature = "test-support")]
    /// Settings for tests and benches: cheap argon2, fixed secret, short timeouts.
    pub fn for_tests() -> Self {
        Self {
            jwt_secret: b"taskbench-test-secret-0123456789abcdef".to_vec(),
            argon2: Argon2Cost { m_cost_kib: 256, t_cost: 1, p_cost: 1 },
            hashing: HashLimits::for_this_machine(),
            cors_origin: "*".into(),
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(5),
            pool_size: 8,
            pool_acquire_timeout: Duration::from_secs(2),
            inject_cpu: Duration::ZERO,
        }
    }
}
