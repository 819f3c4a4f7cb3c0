//! What a run records about where it ran: machine, toolchain, git commit, and where the server
//! binaries come from (built here, with the `server` profile for a release build of taskbench, or
//! given).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sysinfo::{CpuRefreshKind, RefreshKind, System};
use taskbench_report::model::{Environment, Machine};

pub(crate) fn machine() -> Machine {
    let system = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(sysinfo::MemoryRefreshKind::everything()),
    );
    Machine {
        cpu_model: system.cpus().first().map_or_else(|| "unknown".to_owned(), |c| c.brand().trim().to_owned()),
        logical_cpus: system.cpus().len(),
        physical_cores: System::physical_core_count(),
        memory_bytes: system.total_memory(),
        os: System::long_os_version().unwrap_or_else(|| std::env::consts::OS.to_owned()),
        kernel: System::kernel_version(),
        hostname: System::host_name(),
    }
}

fn output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program).args(args).current_dir(dir).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The checkout this binary was built from, when it still exists.
pub(crate) fn workspace_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    dir.join("Cargo.toml").is_file().then(|| dir.canonicalize().unwrap_or(dir))
}

pub(crate) fn environment(build_profile: &str, server_binaries: &BTreeMap<String, PathBuf>) -> Environment {
    let dir = workspace_dir().unwrap_or_else(|| PathBuf::from("."));
    Environment {
        machine: machine(),
        rustc: output("rustc", &["--version"], &dir),
        taskbench_version: env!("CARGO_PKG_VERSION").to_owned(),
        git_commit: output("git", &["rev-parse", "HEAD"], &dir),
        git_dirty: output("git", &["status", "--porcelain", "--untracked-files=no"], &dir).map(|s| !s.is_empty()),
        build_profile: build_profile.to_owned(),
        server_binaries: server_binaries.iter().map(|(k, v)| (k.clone(), v.display().to_string())).collect(),
    }
}

/// The cargo profile a binary in `dir` was built with (`target/release` → `release`,
/// `target/server` → `server`, `target/debug` → `debug`).
pub(crate) fn profile_of(dir: &Path) -> String {
    dir.file_name().map_or_else(|| "unknown".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// The profile that builds the servers measured by a release build of taskbench: fat LTO and one
/// codegen unit (see `Cargo.toml`). The CLI and the load generator use `release`, which builds in
/// a fraction of the time; only the servers are what is measured.
pub(crate) const SERVER_PROFILE: &str = "server";

/// For a taskbench built with `profile`, the cargo profile its servers are built with and the
/// directory under `target/` they land in: `release` → `server`; `debug` (tests) → `dev` in
/// `debug`; any other profile → itself.
fn servers_profile(profile: &str) -> (&str, &str) {
    match profile {
        "release" => (SERVER_PROFILE, SERVER_PROFILE),
        "debug" => ("dev", "debug"),
        other => (other, other),
    }
}

/// Roughly how long the first build of the servers takes, for the message shown while it runs:
/// measured on the project's 2-core machine from a cold cache (README, "A first report").
const FIRST_SERVER_BUILD: &str = "about 6 minutes on 2 cores";

/// Finds (and, when this binary runs from a cargo checkout, first builds) the server binary of
/// each framework. `given` overrides the location per framework.
///
/// Always builds both servers, whichever are asked for: cargo unifies features over the packages
/// of one invocation, so building one alone would rebuild shared dependencies the next time both
/// are built (README, "Building").
pub(crate) fn server_binaries(
    frameworks: &[String],
    given: &BTreeMap<String, PathBuf>,
    build: bool,
) -> Result<(BTreeMap<String, PathBuf>, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding taskbench itself: {e}"))?;
    let exe_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let own_profile = profile_of(&exe_dir);
    let (cargo_profile, out_dir) = servers_profile(&own_profile);
    let ws = workspace_dir();
    // In a checkout, `target/<profile>` beside this binary's; installed elsewhere, beside it.
    let dir = match (&ws, exe_dir.parent()) {
        (Some(_), Some(target)) => target.join(out_dir),
        _ => exe_dir.clone(),
    };
    let profile = if ws.is_some() { profile_of(&dir) } else { own_profile.clone() };
    let missing = frameworks.iter().any(|f| !given.contains_key(f));
    if build
        && missing
        && let Some(ws) = &ws
    {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(ws).args(["build", "--profile", cargo_profile]);
        for f in ["axum", "actix"] {
            cmd.args(["-p", &format!("taskbench-{f}"), "--bin", &format!("taskbench-{f}")]);
        }
        tracing::info!(
            profile = %cargo_profile,
            "building the server binaries (cargo's progress follows; the first build takes {FIRST_SERVER_BUILD}, \
             later ones a second)"
        );
        let status = cmd.status().map_err(|e| format!("running cargo to build the servers: {e}"))?;
        if !status.success() {
            return Err(format!("building the server binaries failed ({status}); see cargo's output above"));
        }
    }
    let mut out = BTreeMap::new();
    for f in frameworks {
        let path = given.get(f).cloned().unwrap_or_else(|| dir.join(format!("taskbench-{f}")));
        if !path.is_file() {
            return Err(format!(
                "no server binary for {f} at {}: build it with `cargo build --profile {cargo_profile} -p taskbench-{f}` \
                 or pass --server-bin {f}=PATH",
                path.display()
            ));
        }
        out.insert(f.clone(), path);
    }
    let profile = if given.is_empty() {
        profile
    } else {
        // The profile of each given binary's directory (target/release → release).
        let mut of_given: Vec<String> = given.values().map(|p| profile_of(p.parent().unwrap_or(p))).collect();
        of_given.sort();
        of_given.dedup();
        format!("{} (binaries given on the command line)", of_given.join(", "))
    };
    Ok((out, profile))
}
