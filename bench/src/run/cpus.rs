//! CPU affinity: which CPUs the server, the load generator and Postgres may use. On a small
//! machine the three compete; pinning them apart makes runs repeatable and makes a saturated
//! load generator or database visible instead of silently taxing the server.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use taskbench_report::model::CpuPlan;

/// The CPUs this process may run on.
pub(crate) fn available() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, usize::from)).collect(),
    }
}

/// The default plan for these CPUs: the server gets half (at least one), the load generator and
/// Postgres share or split the rest. With one CPU nothing is pinned.
pub(crate) fn default_plan(cpus: &[usize]) -> CpuPlan {
    let n = cpus.len();
    let plan = |server: &[usize], loadgen: &[usize], db: &[usize], why: &str| CpuPlan {
        server: Some(server.to_vec()),
        loadgen: Some(loadgen.to_vec()),
        db: Some(db.to_vec()),
        origin: format!("default for {n} CPUs: {why}"),
    };
    match n {
        0 | 1 => CpuPlan { origin: "one CPU: nothing pinned".into(), ..CpuPlan::default() },
        2 => {
            plan(&cpus[..1], &cpus[1..], &cpus[1..], "server alone on one, load generator and Postgres share the other")
        }
        3 => plan(&cpus[..1], &cpus[1..2], &cpus[2..], "one each"),
        _ => {
            let (half, three_quarters) = (n / 2, n * 3 / 4);
            plan(
                &cpus[..half],
                &cpus[half..three_quarters],
                &cpus[three_quarters..],
                "half for the server, a quarter each for the load generator and Postgres",
            )
        }
    }
}

/// Parses `--cpus`: `server=0,loadgen=1,db=1`, lists as `0-3` or `0:2:4`, or `none`.
pub(crate) fn parse(spec: &str, available: &[usize]) -> Result<CpuPlan, String> {
    let expected = "expected `none` or `server=LIST,loadgen=LIST,db=LIST` where LIST is a CPU (`2`), a range \
                    (`0-3`) or CPUs joined by `:` (`0:2`)";
    if spec.trim() == "none" {
        return Ok(CpuPlan { origin: "--cpus none: nothing pinned".into(), ..CpuPlan::default() });
    }
    let mut plan = CpuPlan { origin: format!("--cpus {spec}"), ..CpuPlan::default() };
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (role, list) = part.split_once('=').ok_or_else(|| format!("--cpus {spec}: `{part}`: {expected}"))?;
        let cpus = parse_list(list).map_err(|e| format!("--cpus {spec}: `{part}`: {e}; {expected}"))?;
        if let Some(c) = cpus.iter().find(|c| !available.contains(c)) {
            return Err(format!("--cpus {spec}: CPU {c} is not available to this process (available: {available:?})"));
        }
        let slot = match role.trim() {
            "server" => &mut plan.server,
            "loadgen" => &mut plan.loadgen,
            "db" | "postgres" => &mut plan.db,
            other => return Err(format!("--cpus {spec}: unknown role `{other}`; {expected}")),
        };
        *slot = Some(cpus);
    }
    Ok(plan)
}

fn parse_list(list: &str) -> Result<Vec<usize>, String> {
    let num = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("`{s}` is not a CPU number"));
    let mut out = Vec::new();
    for item in list.split(':') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range `{item}` runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(item)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Pins an existing process (one thread: a Postgres process) to `cpus`.
pub(crate) fn pin_pid(pid: u32, cpus: &[usize]) -> nix::Result<()> {
    sched_setaffinity(Pid::from_raw(pid as i32), &set_of(cpus)?)
}

/// Pins every thread of this process (the orchestrator: its sampling and bookkeeping belong
/// with the load generator, away from the server's CPUs).
pub(crate) fn pin_self(cpus: &[usize]) -> nix::Result<()> {
    let set = set_of(cpus)?;
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|_| nix::Error::ENOENT)?;
    for tid in tasks.flatten().filter_map(|t| t.file_name().to_str()?.parse::<i32>().ok()) {
        sched_setaffinity(Pid::from_raw(tid), &set)?;
    }
    Ok(())
}

fn set_of(cpus: &[usize]) -> nix::Result<CpuSet> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    Ok(set)
}

/// Spawns `cmd` with its CPU affinity set to `cpus` (when given). A child inherits the affinity
/// of the thread that forks it, so the spawn happens on a short-lived thread pinned first; no
/// `taskset` needed, and every thread the child starts inherits the mask.
pub(crate) fn spawn_pinned(
    mut cmd: tokio::process::Command,
    cpus: Option<&[usize]>,
) -> std::io::Result<tokio::process::Child> {
    let Some(cpus) = cpus else { return cmd.spawn() };
    let set = set_of(cpus).map_err(std::io::Error::other)?;
    let handle = tokio::runtime::Handle::current();
    std::thread::scope(|s| {
        s.spawn(move || {
            sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::other)?;
            let _runtime = handle.enter();
            cmd.spawn()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawning thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_roles_ranges_and_lists() {
        let plan = parse("server=0-1,loadgen=2,db=3:2", &[0, 1, 2, 3]).expect("valid");
        assert_eq!(plan.server, Some(vec![0, 1]));
        assert_eq!(plan.loadgen, Some(vec![2]));
        assert_eq!(plan.db, Some(vec![2, 3]));
        assert_eq!(parse("none", &[0]).expect("valid").server, None);
    }

    #[test]
    fn bad_specs_say_what_was_expected() {
        for (spec, says) in [
            ("server", "expected `none`"),
            ("gpu=1", "unknown role `gpu`"),
            ("server=x", "`x` is not a CPU number"),
            ("server=3-1", "runs backwards"),
            ("server=9", "CPU 9 is not available"),
        ] {
            let err = parse(spec, &[0, 1]).expect_err(spec);
            assert!(err.contains(says), "{spec}: {err}");
        }
    }

    #[test]
    fn two_cpus_give_the_server_one_to_itself() {
        let plan = default_plan(&[0, 1]);
        assert_eq!(plan.server, Some(vec![0]));
        assert_eq!(plan.loadgen, Some(vec![1]));
        assert_eq!(plan.db, Some(vec![1]));
        assert_eq!(default_plan(&[5]).server, None);
    }
}
