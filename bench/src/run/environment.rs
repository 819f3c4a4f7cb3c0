//! What a run records about where it ran: machine, toolchain, git commit, and where the server
//! binaries come from (built here with the same profile as this binary, or given).

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
/// `target/debug` → `debug`).
pub(crate) fn profile_of(dir: &Path) -> String {
    dir.file_name().map_or_else(|| "unknown".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// Finds (and, when this binary runs from a cargo checkout, first builds with the same profile)
/// the server binary of each framework. `given` overrides the location per framework.
pub(crate) fn server_binaries(
    frameworks: &[String],
    given: &BTreeMap<String, PathBuf>,
    build: bool,
) -> Result<(BTreeMap<String, PathBuf>, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding taskbench itself: {e}"))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let profile = profile_of(&dir);
    let missing: Vec<&String> = frameworks.iter().filter(|f| !given.contains_key(*f)).collect();
    if build
        && !missing.is_empty()
        && let Some(ws) = workspace_dir()
    {
        let cargo_profile = if profile == "debug" { "dev".to_owned() } else { profile.clone() };
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&ws).args(["build", "--quiet", "--profile", &cargo_profile]);
        for f in &missing {
            cmd.args(["-p", &format!("taskbench-{f}"), "--bin", &format!("taskbench-{f}")]);
        }
        tracing::info!(profile = %cargo_profile, "building the server binaries (cargo build; a no-op when up to date)");
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
                "no server binary for {f} at {}: build it with `cargo build --release -p taskbench-{f}` or pass \
                 --server-bin {f}=PATH",
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
