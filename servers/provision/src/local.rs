//! Throw-away PostgreSQL cluster from the system's binaries, removed even if our process is SIGKILLed.
//!
//! Hand-written: no crate we know of both uses the system's binaries, drops root to the `postgres`
//! user, and cleans up after a killed parent (they download binaries or rely on `Drop`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid, User, geteuid};

use crate::{ProvisionError, ProvisionOptions};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The supervisor escalates to SIGKILL after 10 s, so this only trips if it is wedged.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const PORT_ATTEMPTS: u32 = 3;
/// initdb --no-locale makes the server log in English.
const PORT_TAKEN: &str = "could not bind";

/// Runs as `sh -c SUPERVISOR taskbench-pg-supervisor ROOT INITDB POSTGRES ARGS...`, as soon as ROOT
/// exists: it runs initdb into ROOT/data itself, so that from the first moment something owns
/// ROOT's removal (a SIGKILL of ours during initdb used to leave the directory behind). Its stdin
/// is a pipe whose only writer is our process, so EOF means we closed it or died, however we
/// died. Then a watcher marks ROOT/stopping and stops postgres (SIGINT = fast shutdown, SIGQUIT
/// after 5 s, SIGKILL after 10 s) until ROOT/postgres.exit says it is gone; the main shell reaps
/// it (or, stopping during initdb, does not start it), waits for EOF and the watcher, and removes
/// ROOT. If initdb fails (ROOT/initdb.failed) or postgres dies on its own, ROOT (with the log)
/// stays until EOF. The watcher reads the pid from ROOT/postgres.pid, which the main shell empties
/// (outage) or follows with ROOT/postgres.exit (end) right after reaping that process, and checks
/// ROOT/postgres.exit before each signal; what remains is the moment between the reap and the
/// next command, inside which the pid would also have to be reused. It ends by itself so that no
/// stray `sleep` outlives the supervisor. HUP/INT are ignored so that terminal signals cannot
/// skip the cleanup. The pipe goes to the watcher as fd 3 because dash points a background job's
/// stdin at /dev/null before applying `<&0`.
///
/// An outage (`Postgres::interrupt`/`resume`): while ROOT/outage exists, a postgres that exits is
/// not the end; the main shell marks ROOT/postgres.down, waits for ROOT/outage to go (or for the
/// stop), and starts postgres again with the same arguments, so on the same port and data.
const SUPERVISOR: &str = r#"trap '' HUP INT
root=$1
initdb=$2
shift 2
[ -n "$root" ] || exit 2
exec 2>>"$root/server.log" 3<&0
{
  while read -r line; do :; done
  : >"$root/stopping"
  i=0
  until [ -e "$root/postgres.exit" ]; do
    if [ "$i" -lt 25 ]; then sig=INT; elif [ "$i" -lt 50 ]; then sig=QUIT; else sig=KILL; fi
    pg=$(cat "$root/postgres.pid" 2>/dev/null)
    [ -z "$pg" ] || kill -s "$sig" "$pg"
    i=$((i + 1))
    sleep 0.2
  done
} <&3 >/dev/null 2>&1 &
watcher=$!
status=0
if "$initdb" -D "$root/data" --auth=trust -U postgres --encoding=UTF8 --no-locale --no-sync \
    </dev/null >>"$root/server.log" 2>&1 3<&-; then
  while [ ! -e "$root/stopping" ]; do
    "$@" </dev/null >>"$root/server.log" 2>&1 3<&- &
    pg=$!
    echo "$pg" >"$root/postgres.pid"
    wait "$pg"
    status=$?
    [ -e "$root/outage" ] && [ ! -e "$root/stopping" ] || break
    : >"$root/postgres.pid"
    : >"$root/postgres.down"
    while [ -e "$root/outage" ] && [ ! -e "$root/stopping" ]; do sleep 0.05; done
    [ ! -e "$root/stopping" ] || break
    rm -f "$root/postgres.down"
  done
else
  status=$?
  echo "initdb failed (exit $status)" >>"$root/server.log"
  : >"$root/initdb.failed"
fi
echo "$status" >"$root/postgres.exit"
while read -r line; do :; done
wait "$watcher"
rm -rf "$root"
"#;

/// Why no local cluster can be started here.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("no initdb found on PATH or under /usr/lib/postgresql/*/bin")]
    NoInitdb,
    #[error("initdb found but no working `postgres` next to it")]
    NoPostgres,
    #[error(
        "PostgreSQL binaries found in {} but we run as root and there is no `postgres` OS user to run the server as",
        .0.display()
    )]
    NoPostgresUser(PathBuf),
    #[error("looking up the `postgres` OS user: {0}")]
    UserLookup(nix::Error),
}

/// The PostgreSQL installation a local cluster runs from: where its binaries are and whom to run
/// them as.
#[derive(Debug)]
pub(super) struct Installation {
    bin_dir: PathBuf,
    version: String,
    run_as: Option<(Uid, Gid)>,
}

impl Installation {
    pub(super) fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }
}

/// Finds binaries (newest version first) and, when we are root, the `postgres` OS user to run them
/// as (PostgreSQL refuses to run as root). `Err` says what is missing.
pub(super) fn installation() -> Result<Installation, Unavailable> {
    let (bin_dir, version) = find_binaries()?;
    let run_as = if geteuid().is_root() {
        match User::from_name("postgres") {
            Ok(Some(user)) => Some((user.uid, user.gid)),
            Ok(None) => return Err(Unavailable::NoPostgresUser(bin_dir)),
            Err(e) => return Err(Unavailable::UserLookup(e)),
        }
    } else {
        None
    };
    Ok(Installation { bin_dir, version, run_as })
}

fn find_binaries() -> Result<(PathBuf, String), Unavailable> {
    let mut dirs = Vec::new();
    if let Some(path) = env::var_os("PATH") {
        // Resolve symlinks so that `postgres` is looked up next to the real `initdb`.
        let real_initdb = |dir: PathBuf| fs::canonicalize(dir.join("initdb")).ok();
        dirs.extend(env::split_paths(&path).filter_map(real_initdb).filter_map(|p| Some(p.parent()?.to_path_buf())));
    }
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        dirs.extend(entries.flatten().map(|e| e.path().join("bin")));
    }
    let mut found: Vec<(Vec<u32>, String, PathBuf)> = Vec::new();
    let mut initdb_seen = false;
    for dir in dirs.iter().filter_map(|d| fs::canonicalize(d).ok()) {
        if found.iter().any(|(_, _, d)| *d == dir) || !is_executable(&dir.join("initdb")) {
            continue;
        }
        initdb_seen = true;
        if let Some((version, text)) = server_version(&dir) {
            found.push((version, text, dir));
        }
    }
    // Stable sort: among equal versions, PATH order wins.
    found.sort_by(|a, b| b.0.cmp(&a.0));
    match found.into_iter().next() {
        Some((_, text, dir)) => Ok((dir, text)),
        None if initdb_seen => Err(Unavailable::NoPostgres),
        None => Err(Unavailable::NoInitdb),
    }
}

/// `postgres --version` → (numeric components, full text), e.g. "postgres (PostgreSQL) 15.20 (Debian …)".
fn server_version(dir: &Path) -> Option<(Vec<u32>, String)> {
    let out = Command::new(dir.join("postgres")).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let token = text.split_whitespace().find(|t| t.starts_with(|c: char| c.is_ascii_digit()))?;
    let version = token.split('.').map_while(|part| part.parse().ok()).collect();
    out.status.success().then_some((version, text))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running cluster; dropping it stops the server and removes its directory.
#[derive(Debug)]
pub(super) struct LocalCluster {
    supervisor: Child,
    /// Closing this is the stop signal.
    stdin: Option<ChildStdin>,
    pid: u32,
    port: u16,
    root: PathBuf,
}

impl LocalCluster {
    pub(super) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the server (fast shutdown) and keeps it down, data kept, until [`Self::resume`].
    pub(super) fn interrupt(&mut self) -> Result<(), ProvisionError> {
        fs::write(self.root.join("outage"), b"").map_err(|e| io_error("marking an outage", e))?;
        let pid = Pid::from_raw(i32::try_from(self.pid).unwrap_or_default());
        nix::sys::signal::kill(pid, Signal::SIGINT)
            .map_err(|e| io_error("stopping postgres for an outage", std::io::Error::from(e)))?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !self.root.join("postgres.down").exists() {
            if self.root.join("postgres.exit").exists() || Instant::now() >= deadline {
                return Err(ProvisionError::LocalStart {
                    message: "postgres did not go down for the outage".into(),
                    log_tail: log_tail(&self.root.join("server.log")),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Ends an outage: the supervisor starts postgres again on the same port and data; returns
    /// once it accepts logins.
    pub(super) fn resume(&mut self) -> Result<(), ProvisionError> {
        fs::remove_file(self.root.join("outage")).map_err(|e| io_error("ending the outage", e))?;
        let old = self.pid;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        // The new postmaster's pid, once the supervisor has written it.
        while self.root.join("postgres.down").exists() || read_pid(&self.root).is_none_or(|p| p == old) {
            if Instant::now() >= deadline {
                return Err(ProvisionError::LocalStart {
                    message: "postgres was not started again after the outage".into(),
                    log_tail: log_tail(&self.root.join("server.log")),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.pid = 0;
        wait_ready(self).map_err(|message| ProvisionError::LocalStart {
            message,
            log_tail: log_tail(&self.root.join("server.log")),
        })
    }
}

/// The pid in ROOT/postgres.pid once fully written (empty while postgres is down).
fn read_pid(root: &Path) -> Option<u32> {
    fs::read_to_string(root.join("postgres.pid")).ok().filter(|s| s.ends_with('\n')).and_then(|p| p.trim().parse().ok())
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.supervisor.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if !matches!(self.supervisor.try_wait(), Ok(Some(_))) {
            tracing::warn!(pid = self.pid, "PostgreSQL supervisor did not finish; killing its process group");
            if let Ok(pgid) = i32::try_from(self.supervisor.id()) {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            let _ = self.supervisor.wait();
        }
        if self.root.exists()
            && let Err(e) = fs::remove_dir_all(&self.root)
        {
            tracing::warn!(dir = %self.root.display(), error = %e, "could not remove the PostgreSQL temp dir");
        }
        tracing::debug!(pid = self.pid, "local PostgreSQL cluster stopped");
    }
}

/// Starts a cluster, retrying on a new port if another process grabbed the one we picked.
pub(super) fn start(installation: &Installation, opts: &ProvisionOptions) -> Result<LocalCluster, ProvisionError> {
    let mut attempt = 1;
    loop {
        match start_once(installation, opts) {
            Err(ProvisionError::LocalStart { log_tail, .. })
                if attempt < PORT_ATTEMPTS && log_tail.contains(PORT_TAKEN) =>
            {
                tracing::warn!(attempt, "PostgreSQL could not bind its port; retrying on another");
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn start_once(installation: &Installation, opts: &ProvisionOptions) -> Result<LocalCluster, ProvisionError> {
    let tmp = tempfile::Builder::new()
        .prefix("taskbench-pg-")
        .tempdir_in(env::temp_dir())
        .map_err(|e| io_error("creating a temp dir", e))?;
    prepare_root(installation, tmp.path())?;
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| io_error("picking a free port", e))?
        .port();
    let mut supervisor = supervisor_command(installation, opts, tmp.path(), port)
        .spawn()
        .map_err(|e| io_error("starting the supervisor shell", e))?;
    // From here on the supervisor (or our Drop as a fallback) removes the directory.
    let stdin = supervisor.stdin.take();
    let mut cluster = LocalCluster { supervisor, stdin, pid: 0, port, root: tmp.keep() };
    if let Err(message) = wait_ready(&mut cluster) {
        let log_tail = log_tail(&cluster.root.join("server.log"));
        return Err(ProvisionError::LocalStart { message, log_tail });
    }
    let durability = if opts.durable {
        "durable (fsync on)"
    } else {
        "NOT durable: fsync=off, synchronous_commit=off, full_page_writes=off"
    };
    let (pid, dir) = (cluster.pid, cluster.root.display());
    tracing::info!(pid, port, %dir, version = %installation.version, "local PostgreSQL cluster ready, {durability}");
    Ok(cluster)
}

/// Gives the server user ROOT and the socket dir ROOT/sock (the supervisor runs initdb into
/// ROOT/data as that user).
fn prepare_root(installation: &Installation, root: &Path) -> Result<(), ProvisionError> {
    fs::create_dir(root.join("sock")).map_err(|e| io_error("creating the socket dir", e))?;
    if let Some((uid, gid)) = installation.run_as {
        for dir in [root.to_path_buf(), root.join("sock")] {
            chown(&dir, Some(uid.as_raw()), Some(gid.as_raw()))
                .map_err(|e| io_error(&format!("giving {} to the postgres user", dir.display()), e))?;
        }
    }
    Ok(())
}

fn supervisor_command(installation: &Installation, opts: &ProvisionOptions, root: &Path, port: u16) -> Command {
    let mut cmd = installation.command("/bin/sh");
    cmd.args(["-c", SUPERVISOR, "taskbench-pg-supervisor"])
        .arg(root)
        .arg(installation.bin_dir.join("initdb"))
        .arg(installation.bin_dir.join("postgres"))
        .arg("-D")
        .arg(root.join("data"))
        .args(["-p", &port.to_string(), "-c"])
        .arg(format!("unix_socket_directories={}", root.join("sock").display()));
    let mut settings = vec!["listen_addresses=127.0.0.1", "max_connections=200"];
    if !opts.durable {
        settings.extend(["fsync=off", "synchronous_commit=off", "full_page_writes=off"]);
    }
    for setting in settings {
        cmd.args(["-c", setting]);
    }
    // Own process group: a terminal Ctrl-C must not kill the supervisor before it cleans up.
    cmd.current_dir(root).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    cmd
}

/// Ready = our postmaster has marked itself "ready" in postmaster.pid (so a stranger on our port
/// cannot fool us) and a login on the port succeeds.
fn wait_ready(cluster: &mut LocalCluster) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let (root, port) = (cluster.root.clone(), cluster.port);
    let read = |name: &str| fs::read_to_string(root.join(name)).ok().filter(|s| s.ends_with('\n'));
    loop {
        if cluster.pid == 0 {
            cluster.pid = read_pid(&root).unwrap_or(0);
        }
        if cluster.pid != 0 && pidfile_says_ready(&root.join("data"), cluster.pid) && accepts_connections(port) {
            return Ok(());
        }
        if root.join("initdb.failed").exists() {
            return Err(format!(
                "initdb failed in {} (run as the server's user, who needs access to it)",
                root.display()
            ));
        }
        if let Some(status) = read("postgres.exit") {
            return Err(format!(
                "postgres exited (status {}) before accepting connections on port {port}",
                status.trim()
            ));
        }
        if let Ok(Some(status)) = cluster.supervisor.try_wait() {
            return Err(format!("the supervisor shell exited unexpectedly ({status})"));
        }
        if Instant::now() >= deadline {
            return Err(format!("not accepting connections on port {port} after {STARTUP_TIMEOUT:?}"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn pidfile_says_ready(data: &Path, pid: u32) -> bool {
    let text = fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.first() == Some(&pid.to_string().as_str()) && lines.get(7) == Some(&"ready")
}

/// A protocol-level "can we log in", like `pg_isready` but without needing that binary or a runtime.
fn accepts_connections(port: u16) -> bool {
    let timeout = Duration::from_millis(500);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    // StartupMessage: length, protocol 3.0, then user/database pairs.
    let mut startup = vec![0, 0, 0, 0, 0, 3, 0, 0];
    startup.extend_from_slice(b"user\0postgres\0database\0postgres\0\0");
    let len = u32::try_from(startup.len()).unwrap_or_default();
    startup[..4].copy_from_slice(&len.to_be_bytes());
    // AuthenticationOk; while starting up the answer is an ErrorResponse instead.
    let mut reply = [0_u8; 9];
    let ok = stream.set_read_timeout(Some(timeout)).is_ok()
        && stream.write_all(&startup).is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && reply == [b'R', 0, 0, 0, 8, 0, 0, 0, 0];
    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
    ok
}

fn log_tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes)),
        Err(e) => format!("(no server log at {}: {e})", path.display()),
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn io_error(context: &str, source: std::io::Error) -> ProvisionError {
    ProvisionError::Io { context: context.to_owned(), source }
}
