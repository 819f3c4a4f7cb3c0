//! Integration tests for Postgres provisioning: local cluster lifecycle, cleanup after SIGKILL, choice parsing, Docker errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use sqlx::{Connection, PgConnection};
use taskbench_provision::{
    DbChoice, DbKind, IMAGE_ENV, Postgres, ProvisionError, ProvisionOptions, fresh_test_database, shared_for_tests,
};

/// Set by the parent tests to tell a re-executed helper test what to do; helpers do nothing without it.
const HELPER_ENV: &str = "TASKBENCH_PROVISION_HELPER";

fn pid_alive(pid: u32) -> bool {
    let pid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    kill(pid, None) != Err(Errno::ESRCH)
}

async fn show(url: &str, setting: &str) -> Result<String> {
    let mut conn = PgConnection::connect(url).await?;
    let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {setting}"))).fetch_one(&mut conn).await?;
    conn.close().await?;
    Ok(value)
}

/// Runs one `#[ignore]`d helper test of this binary in a child process with `env`, killing it after
/// `timeout`. Returns its exit status and stdout.
fn run_helper(name: &str, env: &[(&str, &str)], timeout: Duration) -> Result<(ExitStatus, String)> {
    let mut child = helper_command(name, env).spawn()?;
    let deadline = Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            bail!("helper {name} still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    Ok((output.status, String::from_utf8_lossy(&output.stdout).into_owned()))
}

fn helper_command(name: &str, env: &[(&str, &str)]) -> Command {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut cmd = Command::new(exe);
    cmd.args(["--ignored", "--exact", name, "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// The rest of the first line containing `marker` (libtest may print "test NAME ... " before it).
/// A helper child that is SIGKILLed if the test fails before it is done with it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn marker_line<'a>(stdout: &'a str, marker: &str) -> Option<&'a str> {
    stdout.lines().find_map(|l| l.split_once(marker).map(|(_, rest)| rest))
}

/// A helper does its work only in the child process its parent test starts (with HELPER_ENV set
/// to its mode). Run on its own (`--ignored`) it fails, rather than pass having done nothing.
/// Starts a helper that holds something until it is killed, and receives the rest of each line
/// it prints after `marker` (its report of what it holds).
fn spawn_reporting_helper(
    name: &str,
    mode: &str,
    marker: &'static str,
) -> Result<(KillOnDrop, mpsc::Receiver<String>)> {
    let mut child = KillOnDrop(helper_command(name, &[(HELPER_ENV, mode)]).spawn()?);
    let stdout = child.0.stdout.take().context("child stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = marker_line(&line, marker) {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    Ok((child, rx))
}

fn helper_mode(mode: &str) -> Result<()> {
    ensure!(
        std::env::var(HELPER_ENV).is_ok_and(|v| v == mode),
        "a helper: its parent test (named in its #[ignore] reason) runs it in a child process with {HELPER_ENV}={mode}"
    );
    Ok(())
}

#[tokio::test]
async fn local_cluster_serves_queries_and_creates_databases() -> Result<()> {
    let pg = Postgres::start_local(&ProvisionOptions { durable: false })?;
    assert_eq!(pg.kind(), DbKind::Local);
    assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"), "{}", pg.url());
    assert!(pg.url().ends_with("/postgres"), "{}", pg.url());
    let pid = pg.server_pid().context("a local cluster reports its postmaster pid")?;

    let mut conn = PgConnection::connect(pg.url()).await?;
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
    assert_eq!(one, 1);
    conn.close().await?;

    // Throw-away settings by default, listening on loopback only.
    assert_eq!(show(pg.url(), "fsync").await?, "off");
    assert_eq!(show(pg.url(), "synchronous_commit").await?, "off");
    assert_eq!(show(pg.url(), "full_page_writes").await?, "off");
    assert_eq!(show(pg.url(), "max_connections").await?, "200");
    assert_eq!(show(pg.url(), "listen_addresses").await?, "127.0.0.1");

    // The data dir lives in a `taskbench-pg-*` dir under the temp dir, and server_pid is the postmaster.
    let data = PathBuf::from(show(pg.url(), "data_directory").await?);
    let root = data.parent().context("data dir has a parent")?;
    assert!(root.starts_with(std::env::temp_dir()), "{}", root.display());
    let root_name = root.file_name().unwrap_or_default().to_string_lossy();
    assert!(root_name.starts_with("taskbench-pg-"), "{root_name}");
    let pidfile = std::fs::read_to_string(data.join("postmaster.pid"))?;
    assert_eq!(pidfile.lines().next(), Some(pid.to_string().as_str()));
    let sockets = show(pg.url(), "unix_socket_directories").await?;
    assert!(PathBuf::from(&sockets).starts_with(root), "{sockets}");

    let db_url = pg.create_database("bench_data_1").await?;
    assert!(db_url.ends_with("/bench_data_1"), "{db_url}");
    let mut db = PgConnection::connect(&db_url).await?;
    let current: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut db).await?;
    assert_eq!(current, "bench_data_1");
    sqlx::query("CREATE TABLE t (id int)").execute(&mut db).await?;
    let again = pg.create_database("bench_data_1").await;
    assert!(matches!(again, Err(ProvisionError::Sql { .. })), "{again:?}");

    // FORCE: an open session does not block the drop.
    pg.drop_database("bench_data_1").await?;
    assert!(PgConnection::connect(&db_url).await.is_err(), "dropped database still accepts connections");
    drop(db);

    let too_long = "a".repeat(64);
    for bad in ["", "Upper", "has space", "dash-name", "semi;colon", "quote\"d", "ünï", too_long.as_str()] {
        let created = pg.create_database(bad).await;
        assert!(matches!(created, Err(ProvisionError::InvalidDatabaseName(_))), "{bad:?}: {created:?}");
        let message = created.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("[a-z0-9_]"), "{message}");
        assert!(matches!(pg.drop_database(bad).await, Err(ProvisionError::InvalidDatabaseName(_))), "{bad:?}");
    }
    assert!(pg.create_database(&"b".repeat(63)).await.is_ok(), "63 characters is the limit, not over it");

    // A user-given URL: nothing started, and created databases keep its query string.
    let given = format!("{}?application_name=provision_test", pg.url().replace("postgres@", "postgres:pw@"));
    let external = Postgres::provision(&DbChoice::Url(given.clone()), &ProvisionOptions::default()).await?;
    assert_eq!((external.kind(), external.url(), external.server_pid()), (DbKind::Url, given.as_str(), None));
    assert!(!format!("{external:?}").contains(":pw@"), "Debug must not leak passwords: {external:?}");
    let db_url = external.create_database("from_url").await?;
    assert!(db_url.ends_with("/from_url?application_name=provision_test"), "{db_url}");
    let mut db = PgConnection::connect(&db_url).await?;
    let app: String = sqlx::query_scalar("SELECT current_setting('application_name')").fetch_one(&mut db).await?;
    assert_eq!(app, "provision_test");
    drop(db);
    external.drop_database("from_url").await?;
    drop(external);
    assert!(PgConnection::connect(pg.url()).await.is_ok(), "dropping a Url handle must not stop the server");
    Ok(())
}

#[tokio::test]
async fn dropping_stops_the_server_and_removes_its_directory() -> Result<()> {
    let pg = Postgres::provision(&DbChoice::Local, &ProvisionOptions { durable: true }).await?;
    let pid = pg.server_pid().context("postmaster pid")?;
    assert_eq!(show(pg.url(), "fsync").await?, "on");
    assert_eq!(show(pg.url(), "synchronous_commit").await?, "on");
    assert_eq!(show(pg.url(), "full_page_writes").await?, "on");
    let data = PathBuf::from(show(pg.url(), "data_directory").await?);
    let root = data.parent().context("data dir has a parent")?.to_path_buf();
    assert!(pid_alive(pid) && root.is_dir());

    // Another cluster of the same process must be unaffected.
    let other = Postgres::start_local(&ProvisionOptions { durable: false })?;

    // An open session must not hold up the shutdown; under 4 s means the fast shutdown (SIGINT)
    // worked, without the supervisor escalating to SIGQUIT at 5 s.
    let conn = PgConnection::connect(pg.url()).await?;
    let started = Instant::now();
    drop(pg);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "drop took {took:?}");
    assert!(!pid_alive(pid), "postmaster {pid} still alive after drop");
    assert!(!root.exists(), "{} still exists after drop", root.display());
    drop(conn);
    assert_eq!(show(other.url(), "fsync").await?, "off", "dropping one cluster disturbed another");
    Ok(())
}

#[test]
#[ignore = "helper: run in a child process by sigkilled_owner_does_not_orphan_the_cluster"]
fn helper_hold_cluster_until_killed() -> Result<()> {
    helper_mode("hold-cluster")?;
    let pg = Postgres::start_local(&ProvisionOptions { durable: false })?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let data = rt.block_on(show(pg.url(), "data_directory"))?;
    let pid = pg.server_pid().context("postmaster pid")?;
    let mut out = std::io::stdout();
    writeln!(out, "CLUSTER {pid} {} {data}", pg.url())?;
    out.flush()?;
    // The parent SIGKILLs us long before this ends.
    std::thread::sleep(Duration::from_secs(120));
    Ok(())
}

#[tokio::test]
async fn sigkilled_owner_does_not_orphan_the_cluster() -> Result<()> {
    let (mut child, rx) = spawn_reporting_helper("helper_hold_cluster_until_killed", "hold-cluster", "CLUSTER ")?;
    let line = rx.recv_timeout(Duration::from_secs(60));
    let Ok(line) = line else {
        bail!("helper did not report a cluster");
    };
    let parts: Vec<&str> = line.splitn(3, ' ').collect();
    let [pid, url, data] = parts[..] else {
        bail!("expected CLUSTER <pid> <url> <data dir>, got {line}");
    };
    let pid: u32 = pid.parse()?;
    let data = PathBuf::from(data);
    let root = data.parent().context("data dir has a parent")?.to_path_buf();
    // While its owner lives the cluster must stay up, past the supervisor's 5 s escalation step.
    tokio::time::sleep(Duration::from_secs(6)).await;
    ensure!(pid_alive(pid) && data.is_dir(), "cluster stopped while its owner was alive");
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("SELECT 1").execute(&mut conn).await?;
    drop(conn);

    child.0.kill()?; // SIGKILL: no destructors, no signal handlers
    child.0.wait()?;

    let deadline = Instant::now() + Duration::from_secs(15);
    while (pid_alive(pid) || root.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_alive(pid), "postmaster {pid} orphaned after its owner was SIGKILLed");
    assert!(!root.exists(), "{} left behind after its owner was SIGKILLed", root.display());
    Ok(())
}

#[test]
fn db_choice_parses_the_accepted_forms() -> Result<()> {
    let docker = |image: &str, tag: &str| DbChoice::Docker { image: image.into(), tag: tag.into() };
    assert_eq!("auto".parse::<DbChoice>()?, DbChoice::Auto);
    assert_eq!(" Local ".parse::<DbChoice>()?, DbChoice::Local);
    assert_eq!("docker:postgres:16".parse::<DbChoice>()?, docker("postgres", "16"));
    assert_eq!("docker:reg.example:5000/pg:16-alpine".parse::<DbChoice>()?, docker("reg.example:5000/pg", "16-alpine"));
    assert_eq!("docker:reg.example:5000/pg".parse::<DbChoice>()?, docker("reg.example:5000/pg", "latest"));
    let url = "postgres://u:pw@db.example:5432/app?sslmode=disable";
    assert_eq!(format!("url:{url}").parse::<DbChoice>()?, DbChoice::Url(url.into()));
    assert_eq!(url.parse::<DbChoice>()?, DbChoice::Url(url.into()));
    assert_eq!("postgresql://h/db".parse::<DbChoice>()?, DbChoice::Url("postgresql://h/db".into()));

    for choice in [DbChoice::Auto, DbChoice::Local, docker("postgres", "16"), DbChoice::Url("postgres://h/db".into())] {
        assert_eq!(choice.to_string().parse::<DbChoice>()?, choice);
    }
    assert_eq!(docker("postgres", "15-alpine").to_string(), "docker:postgres:15-alpine");
    assert_eq!(DbChoice::Url(url.into()).to_string(), "postgres://u:***@db.example:5432/app?sslmode=disable");
    assert_eq!(DbChoice::Url("postgres://u@h/db".into()).to_string(), "postgres://u@h/db");

    for bad in ["", "mysql://h/db", "dockr", "docker:", "url:", "url:http://h", "postgres://"] {
        let err = bad.parse::<DbChoice>().err().context(format!("{bad:?} should not parse"))?;
        let message = err.to_string();
        for form in ["auto", "local", "docker:IMAGE:TAG", "url:URL", "postgres://"] {
            assert!(message.contains(form), "{bad:?}: {message}");
        }
    }

    assert_eq!(DbKind::Url.to_string(), "url");
    assert_eq!(DbKind::Docker.to_string(), "docker");
    assert_eq!(DbKind::Local.to_string(), "local");
    assert!(ProvisionOptions::default().durable, "benchmarks get a durable database unless asked");
    Ok(())
}

#[tokio::test]
#[ignore = "helper: run in a child process by explicit_docker_fails_fast_when_unreachable"]
async fn helper_docker_unreachable() -> Result<()> {
    helper_mode("docker")?;
    let choice = "docker".parse::<DbChoice>()?;
    let started = Instant::now();
    let result = Postgres::provision(&choice, &ProvisionOptions::default()).await;
    let elapsed = started.elapsed();
    let Err(err) = result else { bail!("Docker provisioning unexpectedly succeeded") };
    ensure!(matches!(err, ProvisionError::DockerUnavailable(_)), "wrong error: {err:?}");
    writeln!(std::io::stdout(), "DOCKER_ERROR {elapsed:?} {err}")?;
    Ok(())
}

#[test]
fn explicit_docker_fails_fast_when_unreachable() -> Result<()> {
    // Accepts connections (via the backlog) but never answers: only the probe's time bound saves us.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let silent_host = format!("tcp://{}", silent.local_addr()?);
    for (docker_host, reason) in [
        ("unix:///nonexistent/docker.sock", "unix:///nonexistent/docker.sock: cannot connect"),
        (silent_host.as_str(), silent_host.as_str()),
    ] {
        let started = Instant::now();
        let env = [(HELPER_ENV, "docker"), ("DOCKER_HOST", docker_host)];
        let (status, stdout) = run_helper("helper_docker_unreachable", &env, Duration::from_secs(30))?;
        assert!(status.success(), "{docker_host}: helper failed: {stdout}");
        let message = marker_line(&stdout, "DOCKER_ERROR ").context("helper reported no error")?;
        assert!(message.contains("Docker not reachable"), "{message}");
        assert!(message.contains(reason), "{message}");
        assert!(started.elapsed() < Duration::from_secs(10), "{docker_host}: took {:?}", started.elapsed());
    }
    drop(silent);
    Ok(())
}

#[tokio::test]
#[ignore = "helper: run in a child process by auto_prefers_database_url_then_falls_back_to_local"]
async fn helper_auto() -> Result<()> {
    helper_mode("auto")?;
    let pg = Postgres::provision(&DbChoice::Auto, &ProvisionOptions::default()).await?;
    let mut out = std::io::stdout();
    writeln!(out, "AUTO {} {}", pg.kind(), pg.url())?;
    if pg.kind() == DbKind::Local {
        let mut conn = PgConnection::connect(pg.url()).await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
    }
    Ok(())
}

#[test]
fn auto_prefers_database_url_then_falls_back_to_local() -> Result<()> {
    let no_docker = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let url = "postgres://someone@127.0.0.1:1/elsewhere";
    let (status, stdout) =
        run_helper("helper_auto", &[(HELPER_ENV, "auto"), ("DATABASE_URL", url), no_docker], Duration::from_secs(30))?;
    assert!(status.success(), "{stdout}");
    assert_eq!(marker_line(&stdout, "AUTO "), Some(format!("url {url}").as_str()));

    let (status, stdout) =
        run_helper("helper_auto", &[(HELPER_ENV, "auto"), ("DATABASE_URL", ""), no_docker], Duration::from_secs(60))?;
    assert!(status.success(), "{stdout}");
    let line = marker_line(&stdout, "AUTO ").context("helper reported no choice")?;
    assert!(line.starts_with("local postgres://postgres@127.0.0.1:"), "{line}");

    // Docker answers its ping but cannot start the container: fall back to the local cluster.
    let fake = fake_docker()?;
    let env = [(HELPER_ENV, "auto"), ("DATABASE_URL", ""), ("DOCKER_HOST", fake.as_str())];
    let (status, stdout) = run_helper("helper_auto", &env, Duration::from_secs(60))?;
    assert!(status.success(), "{stdout}");
    let line = marker_line(&stdout, "AUTO ").context("helper reported no choice")?;
    assert!(line.starts_with("local "), "{line}");
    Ok(())
}

/// A "Docker daemon" that answers every request with `200 OK` and body `OK`: it passes the
/// reachability probe, and container creation then fails on the body.
fn fake_docker() -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let host = format!("tcp://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0_u8; 8192];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
            // Close only after the client does, so that unread request bytes cannot turn into a RST.
            let _ = stream.shutdown(std::net::Shutdown::Write);
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    Ok(host)
}

#[test]
#[ignore = "helper: run in a child process by the default_docker_image_is_configurable"]
fn helper_default_image() -> Result<()> {
    helper_mode("default-image")?;
    let mut out = std::io::stdout();
    match "docker".parse::<DbChoice>() {
        Ok(choice) => writeln!(out, "DEFAULT {choice}")?,
        Err(e) => writeln!(out, "DEFAULT error: {e}")?,
    }
    Ok(())
}

#[test]
fn default_docker_image_is_configurable() -> Result<()> {
    for (value, expected) in [
        ("", "docker:postgres:15-alpine"),
        ("localhost/taskbench-postgres:15", "docker:localhost/taskbench-postgres:15"),
        ("reg.example:5000/pg", "docker:reg.example:5000/pg:latest"),
        ("two words", "error: invalid TASKBENCH_POSTGRES_IMAGE=\"two words\": expected IMAGE or IMAGE:TAG"),
    ] {
        let env = [(HELPER_ENV, "default-image"), (IMAGE_ENV, value)];
        let (status, stdout) = run_helper("helper_default_image", &env, Duration::from_secs(30))?;
        assert!(status.success(), "{stdout}");
        let line = marker_line(&stdout, "DEFAULT ").context("helper printed nothing")?;
        assert!(line.starts_with(expected), "{IMAGE_ENV}={value:?}: {line}");
    }
    Ok(())
}

/// The Docker path runs for real when a Docker API answers (`scripts/container-postgres.sh` makes
/// podman answer it here). Without one, the test says it skipped, unless `TASKBENCH_REQUIRE_DOCKER=1`
/// (set by `.ci/run`, which sets the API up) makes that a failure.
fn docker_or_skip(test: &str, error: &ProvisionError) -> Result<()> {
    let ProvisionError::DockerUnavailable(reason) = error else {
        bail!("{test}: the container did not start: {error}");
    };
    ensure!(
        std::env::var("TASKBENCH_REQUIRE_DOCKER").as_deref() != Ok("1"),
        "{test}: TASKBENCH_REQUIRE_DOCKER=1 but there is no Docker API: {reason}"
    );
    writeln!(std::io::stderr(), "{test}: skipped: no Docker API ({reason})")?;
    Ok(())
}

/// The status and body of `GET path` on the Docker API named by DOCKER_HOST (unix sockets only).
fn docker_api_get(path: &str) -> Result<(u16, String)> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let socket = host.strip_prefix("unix://").context("these tests read the Docker API over a unix socket")?;
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).context("an HTTP status line")?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status.parse()?, body))
}

fn container_exists(id: &str) -> Result<bool> {
    match docker_api_get(&format!("/containers/{id}/json"))?.0 {
        200 => Ok(true),
        404 => Ok(false),
        // podman answers 500 for a container it is removing.
        500 => Ok(true),
        other => bail!("inspecting container {id}: HTTP {other}"),
    }
}

#[tokio::test]
async fn docker_container_serves_and_is_removed_on_drop() -> Result<()> {
    let choice = DbChoice::default_docker()?;
    let pg = match Postgres::provision(&choice, &ProvisionOptions { durable: false }).await {
        Ok(pg) => pg,
        Err(e) => return docker_or_skip("docker_container_serves_and_is_removed_on_drop", &e),
    };
    writeln!(std::io::stderr(), "docker path ran: {choice} as {pg:?}")?;
    assert_eq!(pg.kind(), DbKind::Docker);
    let id = pg.container_id().context("a container id")?.to_owned();
    assert!(container_exists(&id)?, "container {id} is running");
    assert!(pg.url().starts_with("postgres://postgres:postgres@127.0.0.1:"), "{}", pg.url());
    // Published on loopback only: a superuser must not be reachable from the network.
    let (_, inspect) = docker_api_get(&format!("/containers/{id}/json"))?;
    let inspect: serde_json::Value = serde_json::from_str(&inspect)?;
    let bindings = &inspect["NetworkSettings"]["Ports"]["5432/tcp"];
    let ips: Vec<&str> = bindings.as_array().into_iter().flatten().filter_map(|b| b["HostIp"].as_str()).collect();
    assert_eq!(ips, ["127.0.0.1"], "{bindings}");
    // Password authentication over TCP: without the password, no login.
    let no_password = pg.url().replacen("postgres:postgres@", "postgres@", 1);
    assert!(PgConnection::connect(&no_password).await.is_err(), "a login without the password must fail");

    // The settings we ask for reach the server in the container.
    assert_eq!(show(pg.url(), "fsync").await?, "off");
    assert_eq!(show(pg.url(), "synchronous_commit").await?, "off");
    assert_eq!(show(pg.url(), "max_connections").await?, "200");
    assert!(pg.server_version().await?.starts_with("15"), "PostgreSQL 15 image");
    let db_url = pg.create_database("in_container").await?;
    let mut db = PgConnection::connect(&db_url).await?;
    let current: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut db).await?;
    assert_eq!(current, "in_container");
    db.close().await?;

    // With a daemon on this host, its postmaster is one of our processes, for the CPU figures.
    if let Some(pid) = pg.server_pid() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?;
        assert_eq!(comm.trim(), "postgres");
    }

    drop(pg);
    assert!(!container_exists(&id)?, "container {id} still exists after drop");

    // `auto` without DATABASE_URL takes Docker when it answers.
    let env = [(HELPER_ENV, "auto"), ("DATABASE_URL", "")];
    let (status, stdout) = run_helper("helper_auto", &env, Duration::from_secs(240))?;
    assert!(status.success(), "{stdout}");
    let line = marker_line(&stdout, "AUTO ").context("helper reported no choice")?;
    assert!(line.starts_with("docker postgres://postgres:postgres@"), "{line}");
    Ok(())
}

#[tokio::test]
#[ignore = "helper: run in a child process by sigkilled_owner_does_not_orphan_the_container"]
async fn helper_hold_container_until_killed() -> Result<()> {
    helper_mode("hold-container")?;
    let mut out = std::io::stdout();
    match Postgres::provision(&DbChoice::default_docker()?, &ProvisionOptions { durable: false }).await {
        Ok(pg) => {
            writeln!(out, "CONTAINER {}", pg.container_id().unwrap_or("none"))?;
            out.flush()?;
            // The parent SIGKILLs us long before this ends.
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        Err(ProvisionError::DockerUnavailable(reason)) => writeln!(out, "CONTAINER skip {reason}")?,
        Err(e) => writeln!(out, "CONTAINER error {e}")?,
    }
    Ok(())
}

#[tokio::test]
async fn sigkilled_owner_does_not_orphan_the_container() -> Result<()> {
    let (mut child, rx) = spawn_reporting_helper("helper_hold_container_until_killed", "hold-container", "CONTAINER ")?;
    let Ok(line) = rx.recv_timeout(Duration::from_secs(240)) else {
        bail!("helper did not report a container");
    };
    if let Some(reason) = line.strip_prefix("skip ") {
        let error = ProvisionError::DockerUnavailable(reason.to_owned());
        return docker_or_skip("sigkilled_owner_does_not_orphan_the_container", &error);
    }
    ensure!(!line.starts_with("error "), "the container did not start: {line}");
    let id = line.trim();
    ensure!(container_exists(id)?, "container {id} is running while its owner lives");

    child.0.kill()?; // SIGKILL: no destructors, no signal handlers; only the reaper is left
    child.0.wait()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while container_exists(id)? && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!container_exists(id)?, "container {id} orphaned after its owner was SIGKILLed");
    Ok(())
}

#[tokio::test]
async fn fresh_test_databases_are_distinct_and_usable() -> Result<()> {
    assert!(std::ptr::eq(shared_for_tests(), shared_for_tests()));
    let a = fresh_test_database().await;
    let b = fresh_test_database().await;
    assert_ne!(a, b);
    for url in [a, b] {
        let mut conn = PgConnection::connect(&url).await?;
        let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut conn).await?;
        assert!(name.starts_with("test_") && name.len() == 37, "{name}");
    }
    Ok(())
}
