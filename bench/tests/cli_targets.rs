//! `taskbench run --target NAME=URL`: servers taskbench did not start, as a user has them on
//! other machines. Here both real server binaries run on a second loopback address (127.0.0.2, so
//! nothing assumes 127.0.0.1), started by the test, on one database of a role that owns it, the
//! way a team's benchmark database would be set up.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use sqlx::{Connection as _, PgConnection};

const TASKBENCH: &str = env!("CARGO_BIN_EXE_taskbench");

/// A server binary the test started: killed on drop.
struct Remote {
    child: Child,
    url: String,
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(framework: &str, database_url: &str) -> Remote {
    let binary = Path::new(TASKBENCH).with_file_name(format!("taskbench-{framework}"));
    assert!(binary.is_file(), "{} is missing: run `cargo test --workspace`, which builds it", binary.display());
    let mut child = Command::new(&binary)
        .args(["--addr", "127.0.0.2:0", "--database-url", database_url, "--pool-size", "4", "--workers", "1"])
        .env("TASKBENCH_JWT_SECRET", "targets-test-secret-0123456789abcdef")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("its readiness line");
    let url = line.trim_end().strip_prefix("listening on ").expect("`listening on URL`").to_owned();
    assert!(url.starts_with("http://127.0.0.2:"), "{url}");
    Remote { child, url }
}

/// `admin`'s URL as another role (password login), on database `db`.
fn as_role(admin: &str, user: &str, db: &str) -> String {
    let start = admin.find("://").map_or(0, |i| i + 3);
    let end = admin[start..].find(['/', '?']).map_or(admin.len(), |i| start + i);
    let host = admin[start..end].rsplit('@').next().unwrap_or_default();
    format!("{}{user}:pw@{host}/{db}", &admin[..start])
}

async fn sql(url: &str, statement: &str) {
    let mut conn = PgConnection::connect(url).await.expect("connects");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut conn).await.expect(statement);
    conn.close().await.expect("closes");
}

async fn scalar_i64(url: &str, query: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.expect("connects");
    let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_one(&mut conn).await.expect(query);
    conn.close().await.expect("closes");
    v
}

fn run(out: &Path, args: &[&str]) -> Output {
    Command::new(TASKBENCH)
        .args(["run", "--quiet", "--out"])
        .arg(out)
        .args(["--scenario", "smoke", "--warmup", "300ms", "--duration", "1s"])
        .args(args)
        // Each reset of the database is logged at debug.
        .env("RUST_LOG", "warn,taskbench_provision=debug")
        .output()
        .expect("taskbench runs")
}

fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    let results: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("report/results.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let violations: Vec<String> =
        validator.iter_errors(&results).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(violations.is_empty(), "results.json violates its schema: {violations:#?}");
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_taskbench_did_not_start_are_measured_on_a_database_reset_before_each_run() {
    let admin = taskbench_provision::shared_for_tests().url().to_owned();
    let tag = format!("{:08x}", rand::random::<u32>());
    let (role, db) = (format!("tb_team_{tag}"), format!("tb_bench_{tag}"));
    sql(&admin, &format!("CREATE ROLE {role} LOGIN CREATEDB PASSWORD 'pw'")).await;
    sql(&admin, &format!("CREATE DATABASE {db} OWNER {role}")).await;
    let url = as_role(&admin, &role, &db);
    // Both servers on the one database, as a user would run them for a comparison.
    let (axum, actix) = (start_server("axum", &url), start_server("actix", &url));
    // Something that was there before taskbench came: it must be there after.
    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{}/api/v1/auth/register", axum.url))
        .json(&serde_json::json!({"email": "already@example.com", "password": "correct horse battery", "name": "Already"}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let users_before = scalar_i64(&url, "SELECT count(*) FROM users").await;
    let oid_before = scalar_i64(&admin, &format!("SELECT oid::bigint FROM pg_database WHERE datname = '{db}'")).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let (axum_target, actix_target) = (format!("axum={}", axum.url), format!("actix={}", actix.url));
    let db_arg = format!("url:{url}");
    let (out2, args) =
        (out.clone(), ["--target", &axum_target, "--target", &actix_target, "--db", &db_arg, "--repeats", "2"]);
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || run(&out2, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .expect("joins");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}; stderr:\n{stderr}", output.status.code());
    // Reset before each of the 4 runs, before seeding (to the state it was found in) and at the
    // end (put back): 6 times, each a success; copied aside twice (as found, and seeded).
    let resets: Vec<&str> = stderr.lines().filter(|l| l.contains("re-created the database from its copy")).collect();
    assert_eq!(resets.len(), 6, "{stderr}");
    // (`ok=true`, with colour codes between its parts.)
    assert!(resets.iter().all(|l| l.ends_with("true")), "{resets:#?}");
    let copies: Vec<&str> = stderr.lines().filter(|l| l.contains("copied the database aside")).collect();
    assert_eq!(copies.len(), 2, "{stderr}");
    assert!(copies.iter().all(|l| l.ends_with("true")), "{copies:#?}");
    // What the run gives up is said before anything else.
    assert!(stderr.contains("--target: the servers are not restarted between runs"), "{stderr}");

    let results = results(&out);
    let config = &results["config"];
    assert_eq!(config["targets"]["axum"], axum.url.as_str());
    assert_eq!(config["targets"]["actix"], actix.url.as_str());
    assert_eq!(config["frameworks"], serde_json::json!(["axum", "actix"]));
    assert_eq!(config["server_resources"], "metrics");
    assert_eq!(results["environment"]["build_profile"], "unknown (servers not started by taskbench)");
    let detail = config["db"]["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&format!("the targets' database `{db}`")) && detail.contains("reset before each run"),
        "{detail}"
    );
    assert!(!detail.contains(":pw@"), "no password recorded: {detail}");
    let command = config["command_line"].to_string();
    assert!(command.contains("url:postgres://") && !command.contains(":pw@"), "no password recorded: {command}");
    let lost: Vec<&str> =
        config["lost_guarantees"].as_array().expect("listed").iter().filter_map(|l| l.as_str()).collect();
    assert!(lost.iter().any(|l| l.contains("not restarted")), "{lost:?}");
    assert!(!lost.iter().any(|l| l.contains("not reset")), "the database was reset: {lost:?}");
    let runs = results["scenarios"][0]["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4, "2 targets × 2 repeats");
    for r in runs {
        assert!(r["error"].is_null(), "{}: {}", r["framework"], r["error"]);
        assert!(r["load"]["total"]["successes"].as_u64().unwrap_or(0) > 0, "{}", r["framework"]);
        // Scraped from the target's /metrics: there is no process of it here to read.
        assert!(r["resources"]["server"]["peak_rss_bytes"].as_u64().unwrap_or(0) > 0, "{}", r["resources"]);
        assert!(r["resources"]["postgres"].is_null(), "Postgres is not sampled: {}", r["resources"]);
    }
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(report.contains("Servers taskbench did not start") && report.contains(&axum.url), "{report}");

    // Left as it was found: the user that was there, only it, on a database re-created from the
    // copy taken at the start; no copy left behind.
    assert_eq!(scalar_i64(&url, "SELECT count(*) FROM users").await, users_before);
    assert_eq!(scalar_i64(&url, "SELECT count(*) FROM users WHERE email = 'already@example.com'").await, 1);
    let oid_after = scalar_i64(&admin, &format!("SELECT oid::bigint FROM pg_database WHERE datname = '{db}'")).await;
    assert_ne!(oid_after, oid_before, "the database was re-created from its copy");
    let stamp = results["id"].as_str().and_then(|id| id.rsplit('-').next()).expect("id").to_owned();
    let copies =
        scalar_i64(&admin, &format!("SELECT count(*) FROM pg_database WHERE datname LIKE 'tb\\_{stamp}\\_%'")).await;
    assert_eq!(copies, 0, "no copy of the database is left");
    // And the servers, never restarted, still serve from it.
    let health = client.get(format!("{}/health", actix.url)).send().await.expect("health");
    assert_eq!(health.status(), 200);

    drop((axum, actix));
    sql(&admin, &format!("DROP DATABASE {db} WITH (FORCE)")).await;
    sql(&admin, &format!("DROP ROLE {role}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_the_run_keeps_what_it_measured_and_puts_the_database_back() {
    let admin = taskbench_provision::shared_for_tests().url().to_owned();
    let tag = format!("{:08x}", rand::random::<u32>());
    let (role, db) = (format!("tb_team_{tag}"), format!("tb_ctrlc_{tag}"));
    sql(&admin, &format!("CREATE ROLE {role} LOGIN CREATEDB PASSWORD 'pw'")).await;
    sql(&admin, &format!("CREATE DATABASE {db} OWNER {role}")).await;
    let url = as_role(&admin, &role, &db);
    let server = start_server("axum", &url);
    sql(&url, "CREATE TABLE before_taskbench (note text); INSERT INTO before_taskbench VALUES ('kept')").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let child = Command::new(TASKBENCH)
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .args(["--scenario", "smoke", "--warmup", "300ms", "--duration", "2s", "--repeats", "5"])
        .args(["--target", &format!("axum={}", server.url), "--db", &format!("url:{url}")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskbench starts");
    // Ctrl-C once the first run is in results.json.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(out.join("results.json")).is_ok_and(|t| t.contains("\"framework\": \"axum\"")) {
        assert!(std::time::Instant::now() < deadline, "no run was recorded within 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("joins").expect("exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let results = results(&out);
    assert!(results["incomplete"].as_str().is_some_and(|w| w.contains("interrupted")), "{}", results["incomplete"]);
    assert!(!results["scenarios"][0]["runs"].as_array().expect("runs").is_empty(), "what was measured is kept");
    // Put back as it was found: the table made before, and none of the seeded users.
    assert_eq!(scalar_i64(&url, "SELECT count(*) FROM before_taskbench").await, 1);
    assert_eq!(scalar_i64(&url, "SELECT count(*) FROM users").await, 0);
    let stamp = results["id"].as_str().and_then(|id| id.rsplit('-').next()).expect("id").to_owned();
    let copies =
        scalar_i64(&admin, &format!("SELECT count(*) FROM pg_database WHERE datname LIKE 'tb\\_{stamp}\\_%'")).await;
    assert_eq!(copies, 0, "no copy of the database is left");
    drop(server);
    sql(&admin, &format!("DROP DATABASE {db} WITH (FORCE)")).await;
    sql(&admin, &format!("DROP ROLE {role}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_database_the_runs_go_on_and_say_what_they_lose() {
    let admin = taskbench_provision::shared_for_tests().url().to_owned();
    let tag = format!("{:08x}", rand::random::<u32>());
    let db = format!("tb_nodb_{tag}");
    sql(&admin, &format!("CREATE DATABASE {db}")).await;
    let start = admin.find("://").map_or(0, |i| i + 3);
    let end = admin[start..].find(['/', '?']).map_or(admin.len(), |i| start + i);
    let server = start_server("axum", &format!("{}/{db}", &admin[..end]));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let target = format!("mine={}", server.url);
    let out2 = out.clone();
    let output =
        tokio::task::spawn_blocking(move || run(&out2, &["--target", &target, "--repeats", "1"])).await.expect("joins");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}; stderr:\n{stderr}", output.status.code());
    let results = results(&out);
    assert_eq!(results["config"]["db"]["kind"], "unknown");
    let lost = results["config"]["lost_guarantees"].to_string();
    assert!(lost.contains("the database is not reset between runs (no database was given"), "{lost}");
    assert!(stderr.contains("not reset between runs"), "{stderr}");
    drop(server);
    sql(&admin, &format!("DROP DATABASE {db} WITH (FORCE)")).await;
}

#[test]
fn targets_that_cannot_be_measured_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = |args: &[&str], expected: &str| {
        let output = run(&dir.path().join("run"), args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: expected `{expected}` in:\n{stderr}");
    };
    // Nothing listens there (port 9, discard, is closed on loopback).
    refused(&["--target", "axum=http://127.0.0.2:9"], "--target axum: ");
    refused(&["--target", "axum=http://127.0.0.2:9"], "expected a running server of the taskbench API");
    refused(&["--target", "a=http://127.0.0.2:9", "--server-resources", "proc"], "expected `metrics`");
    refused(&["--target", "a=http://127.0.0.2:9", "--db", "local"], "as url:postgres://");
    refused(&["--target", "a=http://127.0.0.2:9", "--cpus", "server=0,loadgen=1"], "only the load generator");
    refused(&["--target", "a=http://127.0.0.2:9", "--target", "a=http://127.0.0.2:8"], "given twice");
    refused(&["--target", "Axum=http://127.0.0.2:9"], "target names are 1 to 24 lower-case letters");
    refused(&["--target", "a=https://127.0.0.2:9"], "only http:// targets");
    refused(&["--target", "a=http://127.0.0.2:9", "--frameworks", "axum"], "cannot be used with");
}
