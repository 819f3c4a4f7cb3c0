//! `SharedDatabase`: the database of servers taskbench did not start, reset in place by template
//! copy. On the tests' Postgres, as a role that owns the database (not a superuser), with a
//! session held open on it the way a server's pool holds one.

use anyhow::{Context, Result, ensure};
use sqlx::{Connection, PgConnection};
use taskbench_provision::{SharedDatabase, shared_for_tests};

/// `url`'s parts: scheme with `://`, user info (with its `@`, or empty), host and port, query.
fn parts(url: &str) -> (&str, &str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let (user, host) = match url[start..end].rfind('@') {
        Some(at) => (&url[start..start + at + 1], &url[start + at + 1..end]),
        None => ("", &url[start..end]),
    };
    let query = url[end..].find('?').map_or("", |i| &url[end + i..]);
    (&url[..start], user, host, query)
}

/// `url` with its user and password replaced, and its database.
fn as_role(url: &str, user: &str, password: &str, db: &str) -> String {
    let (scheme, _, host, query) = parts(url);
    format!("{scheme}{user}:{password}@{host}/{db}{query}")
}

/// `url` on another database.
fn with_db(url: &str, db: &str) -> String {
    let (scheme, user, host, query) = parts(url);
    format!("{scheme}{user}{host}/{db}{query}")
}

async fn exec(url: &str, sql: &str) -> Result<()> {
    let mut conn = PgConnection::connect(url).await.with_context(|| format!("connecting to run {sql}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.with_context(|| sql.to_owned())?;
    conn.close().await?;
    Ok(())
}

/// What a reset must keep, as the catalogue says it.
async fn catalogue(admin: &str, db: &str) -> Result<(String, i32, bool, Vec<String>)> {
    let mut conn = PgConnection::connect(admin).await?;
    let row: (String, i32, bool, Vec<String>) = sqlx::query_as(
        "SELECT pg_get_userbyid(datdba)::text, datconnlimit, datallowconn,
                ARRAY(SELECT x::text FROM unnest(datacl) x ORDER BY 1)
         FROM pg_database WHERE datname = $1",
    )
    .bind(db)
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(row)
}

async fn notes(url: &str) -> Result<Vec<String>> {
    let mut conn = PgConnection::connect(url).await?;
    let rows: Vec<String> = sqlx::query_scalar("SELECT note FROM notes ORDER BY note").fetch_all(&mut conn).await?;
    conn.close().await?;
    Ok(rows)
}

async fn databases_like(admin: &str, pattern: &str) -> Result<Vec<String>> {
    let mut conn = PgConnection::connect(admin).await?;
    let rows = sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY 1")
        .bind(pattern)
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    Ok(rows)
}

#[tokio::test]
async fn a_shared_database_is_copied_and_put_back_with_its_owner_and_privileges() -> Result<()> {
    let admin = shared_for_tests().url().to_owned();
    let tag = format!("{:08x}", rand::random::<u32>());
    let (owner, reader, db) = (format!("tb_owner_{tag}"), format!("tb_reader_{tag}"), format!("tb_shared_{tag}"));
    exec(&admin, &format!("CREATE ROLE {owner} LOGIN CREATEDB PASSWORD 'pw'")).await?;
    exec(&admin, &format!("CREATE ROLE {reader} LOGIN PASSWORD 'pw'")).await?;
    exec(&admin, &format!("CREATE DATABASE {db} OWNER {owner} CONNECTION LIMIT 50")).await?;
    // Privileges of its own: not PUBLIC's default, a reader allowed to connect.
    exec(&admin, &format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {reader}"))
        .await?;
    let url = as_role(&admin, &owner, "pw", &db);
    exec(&url, "CREATE TABLE notes (note text); INSERT INTO notes VALUES ('as found')").await?;
    let before = catalogue(&admin, &db).await?;

    let (shared, allowed) = SharedDatabase::open(&url).await?;
    ensure!(allowed.is_ok(), "the owner with CREATEDB may reset: {allowed:?}");
    ensure!(shared.name() == db, "{}", shared.name());

    // A server's pooled session, open while the database is copied: it is ended, not waited for.
    let mut pooled = PgConnection::connect(&url).await?;
    let (original, seeded) = (format!("tb_{tag}_original"), format!("tb_{tag}_seeded"));
    shared.save(&original).await?;
    ensure!(sqlx::query("SELECT 1").execute(&mut pooled).await.is_err(), "the pooled session was ended");
    ensure!(catalogue(&admin, &db).await?.2, "connections are allowed again after the copy");
    ensure!(!catalogue(&admin, &original).await?.2, "nobody may connect to the copy and block a reset");

    exec(&url, "INSERT INTO notes VALUES ('seeded')").await?;
    shared.save(&seeded).await?;
    exec(&url, "INSERT INTO notes VALUES ('written by a run'); DELETE FROM notes WHERE note = 'as found'").await?;

    let mut pooled = PgConnection::connect(&url).await?;
    shared.restore(&seeded).await?;
    ensure!(sqlx::query("SELECT 1").execute(&mut pooled).await.is_err(), "the pooled session was ended");
    ensure!(notes(&url).await? == ["as found", "seeded"], "back to the seeded state: {:?}", notes(&url).await?);
    ensure!(
        catalogue(&admin, &db).await? == before,
        "owner, limit, connections, privileges: {:?}",
        catalogue(&admin, &db).await?
    );
    // The reader may still connect; PUBLIC still may not.
    exec(&as_role(&admin, &reader, "pw", &db), "SELECT 1").await.context("the reader keeps CONNECT")?;

    shared.restore(&original).await?;
    ensure!(notes(&url).await? == ["as found"], "as it was found: {:?}", notes(&url).await?);
    ensure!(catalogue(&admin, &db).await? == before, "{:?}", catalogue(&admin, &db).await?);
    // A reset that fails (its copy is gone) leaves the database as it was, and open.
    let missing = format!("tb_{tag}_missing");
    let failed = shared.restore(&missing).await;
    ensure!(failed.is_err(), "no copy to reset from");
    ensure!(notes(&url).await? == ["as found"], "untouched: {:?}", notes(&url).await?);
    ensure!(catalogue(&admin, &db).await? == before, "{:?}", catalogue(&admin, &db).await?);
    ensure!(databases_like(&admin, &format!("{missing}%")).await?.is_empty(), "no half-made clone is left");
    shared.drop_copy(&seeded).await?;
    shared.drop_copy(&original).await?;
    ensure!(databases_like(&admin, &format!("tb_{tag}_%")).await?.is_empty(), "no copy is left");

    exec(&admin, &format!("DROP DATABASE {db} WITH (FORCE)")).await?;
    exec(&admin, &format!("DROP ROLE {owner}; DROP ROLE {reader}")).await?;
    Ok(())
}

#[tokio::test]
async fn a_reset_is_refused_with_the_reason_when_the_role_may_not() -> Result<()> {
    let admin = shared_for_tests().url().to_owned();
    let tag = format!("{:08x}", rand::random::<u32>());
    let (user, db) = (format!("tb_user_{tag}"), format!("tb_refused_{tag}"));
    // Owns its database but may not create databases: no copy can be made.
    exec(&admin, &format!("CREATE ROLE {user} LOGIN PASSWORD 'pw'")).await?;
    exec(&admin, &format!("CREATE DATABASE {db} OWNER {user}")).await?;
    let url = as_role(&admin, &user, "pw", &db);
    let (_, allowed) = SharedDatabase::open(&url).await?;
    let why = allowed.expect_err("refused");
    ensure!(why.contains(&format!("role `{user}` may not create databases (it needs CREATEDB)")), "{why}");

    // With CREATEDB, a database with settings of its own is still refused: a reset would lose them.
    exec(&admin, &format!("ALTER ROLE {user} CREATEDB; ALTER DATABASE {db} SET work_mem = '8MB'")).await?;
    let (_, allowed) = SharedDatabase::open(&url).await?;
    let why = allowed.expect_err("refused");
    ensure!(why.contains("settings of its own"), "{why}");

    // The maintenance database, never, even for a superuser.
    let (_, allowed) = SharedDatabase::open(&with_db(&admin, "postgres")).await?;
    let maintenance = as_role(&admin, &user, "pw", "postgres");
    let (_, as_user) = SharedDatabase::open(&maintenance).await?;
    for refused in [allowed, as_user] {
        let why = refused.expect_err("refused");
        ensure!(why.contains("maintenance database"), "{why}");
    }

    exec(&admin, &format!("DROP DATABASE {db} WITH (FORCE)")).await?;
    exec(&admin, &format!("DROP ROLE {user}")).await?;
    Ok(())
}
