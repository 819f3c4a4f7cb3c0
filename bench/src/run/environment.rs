//! What a run records about where it ran: machine, toolchain, git commit, and where the server
//! binaries come from (built here, with the `server` profile for a release build of taskbench, or
//! given).

use std::collections::BTreeMap;
use std::io::Write as _;
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
const FIRST_SERVER_BUILD: &str = "about 3½ minutes on 2 cores";

/// The command that builds the servers as `taskbench run` does: always both, whichever a run asks
/// for, because cargo unifies features over the packages of one invocation, and building one alone
/// would rebuild shared dependencies (and the other binary) the next time both are built.
pub(crate) fn build_command(cargo_profile: &str) -> String {
    format!(
        "cargo build --profile {cargo_profile} -p taskbench-axum --bin taskbench-axum -p taskbench-actix --bin \
         taskbench-actix"
    )
}

/// Where the servers of a taskbench whose executable is in `exe_dir` are, and how to build them.
#[derive(Debug, PartialEq)]
struct Servers {
    dir: PathBuf,
    /// The cargo profile and the checkout to build them in; `None` when this binary is not in a
    /// cargo target directory (installed with `cargo install`, copied elsewhere, or built for
    /// another `--target`): then they are looked for beside it and never built.
    build: Option<(String, PathBuf)>,
}

fn locate(exe_dir: &Path, workspace: Option<PathBuf>) -> Servers {
    // Cargo marks the root of every target directory with CACHEDIR.TAG: `target/<profile>/` has
    // it one level up, `target/<triple>/<profile>/` does not.
    match (workspace, exe_dir.parent()) {
        (Some(ws), Some(target)) if target.join("CACHEDIR.TAG").is_file() => {
            let own = profile_of(exe_dir);
            let (cargo_profile, out_dir) = servers_profile(&own);
            Servers { dir: target.join(out_dir), build: Some((cargo_profile.to_owned(), ws)) }
        }
        _ => Servers { dir: exe_dir.to_path_buf(), build: None },
    }
}

/// Finds (and, when this binary runs from a cargo checkout, first builds) the server binary of
/// each framework. `given` overrides the location per framework. Returns the binaries and the
/// profile to record: that of every binary used, with ` (binaries given on the command line)`
/// when any was given.
pub(crate) fn server_binaries(
    frameworks: &[String],
    given: &BTreeMap<String, PathBuf>,
    build: bool,
) -> Result<(BTreeMap<String, PathBuf>, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding taskbench itself: {e}"))?;
    let servers = locate(exe.parent().unwrap_or(Path::new(".")), workspace_dir());
    let missing = frameworks.iter().any(|f| !given.contains_key(f));
    if build
        && missing
        && let Some((cargo_profile, ws)) = &servers.build
    {
        let command = build_command(cargo_profile);
        // Straight to stderr, whatever the log level: a first build is long and must not look hung.
        let _ = writeln!(
            std::io::stderr(),
            "taskbench: building the servers (`{command}`): the first build takes {FIRST_SERVER_BUILD}, later \
             ones a second; cargo's progress follows"
        );
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(ws).args(command.split_whitespace().skip(1));
        let status = cmd.status().map_err(|e| format!("running cargo to build the servers: {e}"))?;
        if !status.success() {
            return Err(format!("building the server binaries failed ({status}); see cargo's output above"));
        }
    }
    let mut out = BTreeMap::new();
    let mut profiles = Vec::new();
    for f in frameworks {
        let path = given.get(f).cloned().unwrap_or_else(|| servers.dir.join(format!("taskbench-{f}")));
        if !path.is_file() {
            let how = servers.build.as_ref().map_or_else(
                || format!("build them with `{}`", build_command(SERVER_PROFILE)),
                |(cargo_profile, _)| format!("build them with `{}`", build_command(cargo_profile)),
            );
            return Err(format!(
                "no server binary for {f} at {}: {how}, or pass --server-bin {f}=PATH",
                path.display()
            ));
        }
        profiles.push(profile_of(path.parent().unwrap_or(&path)));
        out.insert(f.clone(), path);
    }
    profiles.sort();
    profiles.dedup();
    let mut profile = profiles.join(", ");
    if frameworks.iter().any(|f| given.contains_key(f)) {
        profile.push_str(" (binaries given on the command line)");
    }
    Ok((out, profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_found_and_built_by_where_taskbench_itself_is() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (ws, target) = (tmp.path().join("checkout"), tmp.path().join("checkout/target"));
        std::fs::create_dir_all(&target).expect("target");
        std::fs::write(target.join("CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55").expect("tag");
        let at = |dir: &Path, ws: Option<&Path>| locate(dir, ws.map(Path::to_path_buf));
        // A release CLI builds its servers with the `server` profile into target/server.
        let release = at(&target.join("release"), Some(&ws));
        assert_eq!(release, Servers { dir: target.join("server"), build: Some(("server".into(), ws.clone())) });
        // The test suite's debug CLI uses debug servers.
        let debug = at(&target.join("debug"), Some(&ws));
        assert_eq!(debug, Servers { dir: target.join("debug"), build: Some(("dev".into(), ws.clone())) });
        // Installed (~/.cargo/bin), or built for another --target: beside it, never built.
        let installed = tmp.path().join("bin");
        assert_eq!(at(&installed, Some(&ws)), Servers { dir: installed.clone(), build: None });
        let cross = target.join("x86_64-unknown-linux-musl/release");
        assert_eq!(at(&cross, Some(&ws)), Servers { dir: cross.clone(), build: None });
        // The checkout is gone.
        assert_eq!(at(&target.join("release"), None), Servers { dir: target.join("release"), build: None });
    }
}
