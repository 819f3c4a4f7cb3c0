//! PostgreSQL in a Docker container via testcontainers, with a quick reachability probe.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fmt, thread};

use sqlx::{Connection, PgConnection};
use testcontainers_modules::postgres::Postgres as PgImage;
use testcontainers_modules::testcontainers::bollard::models::PortBinding;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt};

use crate::{ProvisionError, ProvisionOptions};

const PROBE_BUDGET: Duration = Duration::from_secs(1);
/// For inspecting a container we started: the daemon is known to answer, but may be slow on a
/// loaded machine.
const INSPECT_BUDGET: Duration = Duration::from_secs(10);
/// Generous because the first run may have to pull the image.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// After EOF on stdin (we dropped the pipe or died, even by SIGKILL) removes the container (by
/// name: it may not exist yet, or any more), which testcontainers alone cannot do for a killed
/// process. `$2` is podman's `--url=...`, or empty.
const REAPER: &str = r#"trap '' HUP INT PIPE
while read -r line; do :; done
if [ -n "$2" ]; then exec "$1" "$2" rm -f -v "$3" >/dev/null 2>&1; fi
exec "$1" rm -f -v "$3" >/dev/null 2>&1
"#;

enum Endpoint {
    Unix(PathBuf),
    Tcp { addr: String, tls: bool },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp { addr, .. } => write!(f, "tcp://{addr}"),
        }
    }
}

/// Same lookup order as testcontainers (without its properties file): DOCKER_HOST, then the
/// default and Docker Desktop / rootless socket paths.
fn endpoint() -> Result<Endpoint, String> {
    if let Ok(host) = env::var("DOCKER_HOST")
        && !host.trim().is_empty()
    {
        let host = host.trim();
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
            let tls = env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| v == "1");
            return Ok(Endpoint::Tcp { addr: addr.trim_end_matches('/').to_owned(), tls });
        }
        return Err(format!("DOCKER_HOST={host} has a scheme this check does not support (use unix:// or tcp://)"));
    }
    let mut candidates = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(dir) = env::var_os("XDG_RUNTIME_DIR") {
        candidates.push(Path::new(&dir).join(".docker/run/docker.sock"));
    }
    if let Some(home) = env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".docker/run/docker.sock"));
        candidates.push(Path::new(&home).join(".docker/desktop/docker.sock"));
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .map(Endpoint::Unix)
        .ok_or_else(|| "DOCKER_HOST is not set and there is no /var/run/docker.sock".to_owned())
}

/// Is a Docker daemon answering `/_ping`? Bounded by about a second. `Ok` names the endpoint,
/// `Err` says why not.
pub(super) fn probe() -> Result<String, String> {
    let endpoint = endpoint()?;
    // Any `200` will do; for TLS, speaking it is testcontainers' job and a connection is enough.
    get(&endpoint, "/_ping", true, PROBE_BUDGET).map_err(|e| format!("{endpoint}: {e}"))?;
    Ok(endpoint.to_string())
}

/// The main process of a running container, as this machine's pid, when it is a `postgres`
/// visible here (a rootful daemon on this host; a daemon in a VM has its own pid namespace).
fn postmaster_pid(container_id: &str) -> Option<u32> {
    let inspect = inspect(container_id)?;
    let pid = u32::try_from(inspect.pointer("/State/Pid")?.as_u64()?).ok().filter(|&p| p > 0)?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    // The same pid in a VM's namespace could be anything here: it must be a postgres of this
    // container (its cgroup path names the container's id).
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    (comm.trim() == "postgres" && cgroup.contains(container_id)).then_some(pid)
}

/// The host port published for the container's 5432/tcp, whatever address it is bound to.
fn published_port(container_id: &str) -> Option<u16> {
    let inspect = inspect(container_id)?;
    let bindings = inspect.pointer("/NetworkSettings/Ports/5432~1tcp")?.as_array()?;
    // An IPv4 or every-address binding: the URL's host is an IPv4 address or name.
    let ipv4 = |b: &&serde_json::Value| b.get("HostIp").and_then(|ip| ip.as_str()).is_none_or(|ip| !ip.contains(':'));
    bindings.iter().filter(ipv4).find_map(|b| b.get("HostPort")?.as_str()?.parse().ok())
}

/// The daemon's description of a container (`GET /containers/ID/json`).
fn inspect(container_id: &str) -> Option<serde_json::Value> {
    let body = get(&endpoint().ok()?, &format!("/containers/{container_id}/json"), false, INSPECT_BUDGET).ok()??;
    serde_json::from_str(&body).ok()
}

/// `GET path` over a plain HTTP/1.0 connection to the daemon, bounded by about a second: the body
/// of a `200`, or `None` for a TLS endpoint when `connect_only_for_tls` (nothing is sent there).
/// Hand-written rather than through testcontainers' client, which has no time bound on the first
/// connection and needs a runtime.
fn get(
    endpoint: &Endpoint,
    path: &str,
    connect_only_for_tls: bool,
    budget: Duration,
) -> Result<Option<String>, String> {
    let deadline = Instant::now() + budget;
    match endpoint {
        Endpoint::Unix(socket) => UnixStream::connect(socket)
            .map_err(|e| format!("cannot connect: {e}"))
            .and_then(|s| request(s, path, deadline))
            .map(Some),
        Endpoint::Tcp { addr, tls } => {
            let addrs = addr.to_socket_addrs().map_err(|e| format!("cannot resolve: {e}"))?;
            let mut last = "resolves to no address".to_owned();
            let mut connected = None;
            for a in addrs {
                match TcpStream::connect_timeout(&a, remaining(deadline)) {
                    Ok(s) => {
                        connected = Some(s);
                        break;
                    }
                    Err(e) => last = format!("cannot connect to {a}: {e}"),
                }
            }
            match connected {
                Some(_) if *tls && connect_only_for_tls => Ok(None),
                Some(_) if *tls => Err("a TLS endpoint (not read here)".to_owned()),
                Some(s) => request(s, path, deadline).map(Some),
                None => Err(last),
            }
        }
    }
}

pub(super) async fn probe_async() -> Result<String, String> {
    tokio::task::spawn_blocking(probe).await.unwrap_or_else(|e| Err(format!("probe task failed: {e}")))
}

trait Stream: Read + Write {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()>;
}

impl Stream for UnixStream {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

impl Stream for TcpStream {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

/// Answers longer than this (a container's inspect is a few kB) are cut, and then fail to parse.
const MAX_ANSWER: usize = 256 * 1024;

fn request(mut stream: impl Stream, path: &str, deadline: Instant) -> Result<String, String> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no answer to {path} in time")
        }
        _ => format!("no answer to {path}: {e}"),
    };
    stream.set_timeouts(remaining(deadline)).map_err(io)?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    let mut buf = [0_u8; 4096];
    // HTTP/1.0: the daemon closes the connection after answering, and sends no chunked body.
    while response.len() < MAX_ANSWER && Instant::now() < deadline {
        stream.set_timeouts(remaining(deadline)).map_err(io)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if response.is_empty() => return Err(io(e)),
            Err(_) => break,
        }
    }
    let response = String::from_utf8_lossy(&response);
    let status = response.lines().next().unwrap_or_default();
    if !(status.starts_with("HTTP/1.") && status.split_whitespace().nth(1) == Some("200")) {
        return Err(format!("unexpected answer to {path}: {status:?}"));
    }
    Ok(response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned())
}

fn remaining(deadline: Instant) -> Duration {
    // Zero timeouts mean "block forever" to the socket API.
    deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
}

/// Owns the container; dropping it removes the container.
pub(super) struct DockerGuard {
    container: Option<ContainerAsync<PgImage>>,
    reaper: Option<Child>,
    postmaster: Option<u32>,
    /// `image:tag`.
    image: String,
}

impl DockerGuard {
    pub(super) fn container_id(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.id())
    }

    pub(super) fn postmaster(&self) -> Option<u32> {
        self.postmaster
    }

    pub(super) fn image(&self) -> &str {
        &self.image
    }
}

impl fmt::Debug for DockerGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerGuard")
            .field("container", &self.container_id())
            .field("reaper", &self.reaper.as_ref().map(Child::id))
            .field("postmaster", &self.postmaster)
            .finish()
    }
}

impl Drop for DockerGuard {
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            // testcontainers' Drop needs a tokio runtime context.
            if tokio::runtime::Handle::try_current().is_ok() {
                drop(container);
            } else if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                let _enter = rt.enter();
                drop(container);
            } else {
                // Leave it to the reaper rather than panic in Drop.
                std::mem::forget(container);
            }
        }
        if let Some(mut reaper) = self.reaper.take() {
            drop(reaper.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(reaper.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Starts `image:tag` and returns the guard and the URL of its `postgres` database.
pub(super) async fn start(
    image: &str,
    tag: &str,
    opts: &ProvisionOptions,
) -> Result<(DockerGuard, String), ProvisionError> {
    let endpoint = probe_async().await.map_err(ProvisionError::DockerUnavailable)?;
    // The module would add `-c fsync=off` on its own; we set every setting explicitly instead.
    let mut args = vec!["-c", "max_connections=200"];
    if !opts.durable {
        args.extend(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
    }
    tracing::info!(
        %endpoint,
        "starting PostgreSQL container {image}:{tag}, {}",
        if opts.durable { "durable (fsync on)" } else { "NOT durable: fsync=off, synchronous_commit=off, full_page_writes=off" }
    );
    // A daemon on a unix socket runs on this machine (Docker Engine, rootful or rootless podman,
    // Docker Desktop's forwarded socket): the port is published on loopback only, as a local
    // cluster listens, and reached there. TESTCONTAINERS_HOST_OVERRIDE (testcontainers' own
    // setting) says published ports are elsewhere (Docker-outside-of-Docker, a remote daemon):
    // then every address, at that host.
    let on_loopback = matches!(self::endpoint(), Ok(Endpoint::Unix(_)))
        && env::var("TESTCONTAINERS_HOST_OVERRIDE").map_or(true, |v| v.trim().is_empty());
    // Named before it exists, so that the reaper can remove it by name whatever happens from
    // the moment it is created (a signal or a failure while it starts included).
    let name = format!("taskbench-pg-{}-{:08x}", std::process::id(), rand::random::<u32>());
    let reaper = spawn_reaper(&name);
    let mut request = PgImage::default()
        .with_password("postgres")
        .with_name(image)
        .with_tag(tag)
        .with_cmd(args)
        .with_container_name(name.clone())
        .with_startup_timeout(STARTUP_TIMEOUT);
    if on_loopback {
        request = request.with_host_config_modifier(|host| {
            host.publish_all_ports = Some(false);
            let binding = PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) };
            host.port_bindings = Some(HashMap::from([("5432/tcp".to_owned(), Some(vec![binding]))]));
        });
    }
    let started = request.start().await;
    let mut guard = DockerGuard { reaper, container: None, postmaster: None, image: format!("{image}:{tag}") };
    guard.container = Some(started.map_err(|e| ProvisionError::Docker(format!("starting {image}:{tag}: {e}")))?);
    let Some(container) = guard.container.as_ref() else {
        return Err(ProvisionError::Docker("container handle vanished".into()));
    };
    let docker_err = |e| ProvisionError::Docker(format!("inspecting container {}: {e}", container.id()));
    let host =
        if on_loopback { "127.0.0.1".to_owned() } else { container.get_host().await.map_err(docker_err)?.to_string() };
    let port = match container.get_host_port_ipv4(5432).await {
        Ok(port) => port,
        // podman (4.3) reports a binding to every address with an empty `HostIp`, which
        // testcontainers does not count as IPv4: read the mapping ourselves.
        Err(e) => {
            let id = container.id().to_owned();
            tokio::task::spawn_blocking(move || published_port(&id))
                .await
                .ok()
                .flatten()
                .ok_or_else(|| docker_err(e))?
        }
    };
    let url = format!("postgres://postgres:postgres@{host}:{port}/postgres");

    // The image's entrypoint restarts the server once after initialisation; wait for a real login.
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match PgConnection::connect(&url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                break;
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(ProvisionError::Sql {
                    context: format!("connecting to container {}", container.id()),
                    source: e,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let id = container.id().to_owned();
    guard.postmaster = tokio::task::spawn_blocking(move || postmaster_pid(&id)).await.ok().flatten();
    let Some(container) = guard.container.as_ref() else {
        return Err(ProvisionError::Docker("container handle vanished".into()));
    };
    tracing::info!(
        container = container.id(),
        %host,
        port,
        postmaster = ?guard.postmaster,
        "PostgreSQL container ready{}",
        if guard.postmaster.is_some() { "" } else { " (its processes are not visible here: no Postgres CPU or memory figures)" }
    );
    Ok((guard, url))
}

/// Best effort: needs the `docker` CLI (which follows DOCKER_HOST) or, for a podman without its
/// Docker-compatible CLI, `podman` on PATH.
fn spawn_reaper(container: &str) -> Option<Child> {
    let path = env::var_os("PATH")?;
    let cli =
        ["docker", "podman"].iter().find_map(|cli| env::split_paths(&path).map(|d| d.join(cli)).find(|p| p.is_file()));
    let Some(docker) = cli else {
        tracing::warn!(
            "neither `docker` nor `podman` on PATH: the container will not be removed if this process is SIGKILLed"
        );
        return None;
    };
    // podman's own CLI looks at its local storage unless told where the API is.
    let remote = match env::var("DOCKER_HOST") {
        Ok(host) if docker.ends_with("podman") && !host.trim().is_empty() => format!("--url={}", host.trim()),
        _ => String::new(),
    };
    let spawned = Command::new("/bin/sh")
        .args(["-c", REAPER, "taskbench-docker-reaper"])
        .arg(docker)
        .arg(remote)
        .arg(container)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    spawned.map_err(|e| tracing::warn!(error = %e, "could not start the container reaper")).ok()
}
