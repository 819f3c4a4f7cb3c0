//! The database of servers taskbench did not start (`taskbench run --target NAME=URL --db url:…`):
//! taskbench cannot give each run a fresh database of its own, as it does for the servers it
//! starts, because the servers are connected to this one. What it can do, when its role has the
//! rights, is put that database back to a saved state between runs: copy it aside once seeded
//! (the template copy), and before each run drop it and create it again from the copy, with the
//! same owner and privileges. The servers lose their connections at each reset and
//! open new ones (both shipped servers answer 503 meanwhile and recover by themselves).
//!
//! The database is copied aside as it was found before anything else, and put back at the end,
//! so a run leaves it as it found it. Whatever cannot be put back exactly is refused up front
//! with the reason ([`SharedDatabase::open`]), and the run then goes on without resets.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, Row};

use crate::{ProvisionError, quote_db_name, redact, url_for};

/// How long a connection to the server may take before a reset gives up.
const CONNECT_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The clone a reset makes from `copy` beside the database, before swapping it in.
fn incoming_name(copy: &str) -> String {
    format!("{}_next", &copy[..copy.len().min(58)])
}

/// Databases taskbench never drops, whatever its rights.
const MAINTENANCE: [&str; 3] = ["postgres", "template0", "template1"];

/// A database others' servers use, and how to reset it.
#[derive(Debug, Clone)]
pub struct SharedDatabase {
    /// As given (for its version and for messages, redacted).
    url: String,
    /// The same server's `postgres` database: resets are made from there, never from a
    /// connection to the database being dropped.
    admin_url: String,
    name: String,
    /// What the copies and the database re-created from them must keep.
    keep: Kept,
}

/// What `CREATE DATABASE … TEMPLATE` does not copy and a reset must restore.
#[derive(Debug, Clone, Default)]
struct Kept {
    owner: String,
    connection_limit: i32,
    /// `GRANT`s to replay: (grantee, already quoted, or `PUBLIC`; privilege; with grant option).
    /// `None` when the database has the default privileges.
    grants: Option<Vec<(String, String, bool)>>,
}

impl SharedDatabase {
    /// Connects to `url`, learns which database it names and what a reset must keep, and whether
    /// this role may reset it: `Err(why not)` in the second place when it may not (the database
    /// stays usable, without resets). The first `Err` is a database that cannot be reached.
    pub async fn open(url: &str) -> Result<(Self, Result<(), String>), ProvisionError> {
        let sql_err = |source| ProvisionError::Sql { context: format!("connecting to {}", redact(url)), source };
        let mut conn = PgConnection::connect(url).await.map_err(sql_err)?;
        let found = inspect(&mut conn).await;
        let _ = conn.close().await;
        let found = found.map_err(|source| ProvisionError::Sql {
            context: format!("reading what {} is and who may reset it", redact(url)),
            source,
        })?;
        let db = SharedDatabase {
            url: url.to_owned(),
            admin_url: url_for(url, "postgres"),
            name: found.name.clone(),
            keep: found.keep.clone(),
        };
        let allowed = found.refusal().map_or(Ok(()), Err);
        Ok((db, allowed))
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Copies the database, as it is now, to `copy`. No session may be connected to the source
    /// of a copy: new connections are refused for the moment it takes, and the servers' open
    /// ones are ended. The copy itself refuses connections (nobody may hold it open and block the
    /// resets made from it). Whatever happens, the database accepts connections again after;
    /// a copy this call made is dropped again when a later step fails.
    pub async fn save(&self, copy: &str) -> Result<(), ProvisionError> {
        let (ident, copy_ident) = (quote_db_name(&self.name)?, quote_db_name(copy)?);
        let mut conn = self.admin().await?;
        let context = format!("copying database {} to {copy}", self.name);
        let mut copied = exec(&mut conn, format!("ALTER DATABASE {ident} ALLOW_CONNECTIONS false"), &context).await;
        if copied.is_ok() {
            copied = terminate_sessions(&mut conn, &self.name, &context).await;
        }
        let mut made = false;
        if copied.is_ok() {
            copied = exec(&mut conn, format!("CREATE DATABASE {copy_ident} TEMPLATE {ident}"), &context).await;
            made = copied.is_ok();
        }
        if copied.is_ok() {
            copied = exec(&mut conn, format!("ALTER DATABASE {copy_ident} ALLOW_CONNECTIONS false"), &context).await;
        }
        if copied.is_err() && made {
            let _ = exec(&mut conn, format!("DROP DATABASE IF EXISTS {copy_ident}"), &context).await;
        }
        // Open again whatever happened: the servers must not be left locked out. The session may
        // be what failed, so a fresh one is tried once too.
        let open = format!("ALTER DATABASE {ident} ALLOW_CONNECTIONS true");
        let mut opened = exec(&mut conn, open.clone(), &context).await;
        let _ = conn.close().await;
        if opened.is_err()
            && let Ok(mut fresh) = self.admin().await
        {
            opened = exec(&mut fresh, open, &context).await;
            let _ = fresh.close().await;
        }
        tracing::debug!(database = %self.name, copy, ok = copied.is_ok(), "copied the database aside");
        match (copied, opened) {
            (Ok(()), opened) => opened,
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(o)) => Err(ProvisionError::Reset(format!(
                "{e}; and then, the database {} may still refuse connections: {o}",
                self.name
            ))),
        }
    }

    /// Puts the database back to `copy`, with its owner, connection limit and privileges: the
    /// copy is cloned beside it first (refusing connections until owner and privileges are in
    /// place), and only then is the database dropped (ending the servers' sessions) and the
    /// clone renamed in its place. A failure before the drop leaves the database as it was.
    pub async fn restore(&self, copy: &str) -> Result<(), ProvisionError> {
        let ident = quote_db_name(&self.name)?;
        let incoming = incoming_name(copy);
        let incoming_ident = quote_db_name(&incoming)?;
        let mut conn = self.admin().await?;
        let context = format!("re-creating database {} from {copy}", self.name);
        let mut prepare = vec![format!("DROP DATABASE IF EXISTS {incoming_ident}")];
        prepare.extend(self.create_statements(copy, &incoming)?);
        let mut done = Ok(());
        for sql in prepare {
            done = exec(&mut conn, sql, &context).await;
            if done.is_err() {
                break;
            }
        }
        if done.is_ok() {
            done = exec(&mut conn, format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)"), &context).await;
        }
        if let Err(e) = done {
            // The database is as it was: only the clone goes.
            let _ = exec(&mut conn, format!("DROP DATABASE IF EXISTS {incoming_ident}"), &context).await;
            let _ = conn.close().await;
            tracing::debug!(database = %self.name, copy, "re-creating the database failed before it was dropped");
            return Err(e);
        }
        let swap = [
            format!("ALTER DATABASE {incoming_ident} RENAME TO {ident}"),
            format!("ALTER DATABASE {ident} ALLOW_CONNECTIONS true"),
        ];
        for sql in swap {
            done = exec(&mut conn, sql, &context).await;
            if done.is_err() {
                break;
            }
        }
        let _ = conn.close().await;
        tracing::debug!(database = %self.name, copy, ok = done.is_ok(), "re-created the database from its copy");
        done.map_err(|e| {
            ProvisionError::Reset(format!(
                "{e}; the database {name} was dropped and its replacement is the database {incoming}: ALTER DATABASE \
                 {incoming} RENAME TO {name}; ALTER DATABASE {name} ALLOW_CONNECTIONS true",
                name = self.name
            ))
        })
    }

    /// The statements that create `name` from `copy` as the database was: owner, connection
    /// limit, privileges, refusing connections.
    fn create_statements(&self, copy: &str, name: &str) -> Result<Vec<String>, ProvisionError> {
        let (ident, copy_ident) = (quote_db_name(name)?, quote_db_name(copy)?);
        let keep = &self.keep;
        let mut statements = vec![format!(
            "CREATE DATABASE {ident} TEMPLATE {copy_ident} OWNER {} CONNECTION LIMIT {} ALLOW_CONNECTIONS false",
            quote_ident(&keep.owner),
            keep.connection_limit
        )];
        if let Some(grants) = &keep.grants {
            statements.push(format!("REVOKE ALL ON DATABASE {ident} FROM PUBLIC"));
            for (grantee, privilege, grantable) in grants {
                let option = if *grantable { " WITH GRANT OPTION" } else { "" };
                statements.push(format!("GRANT {privilege} ON DATABASE {ident} TO {grantee}{option}"));
            }
        }
        Ok(statements)
    }

    /// The SQL that puts the database back to `copy` by hand (from the `postgres` database), for
    /// when [`SharedDatabase::restore`] could not: the same owner, limit and privileges.
    pub fn restore_by_hand(&self, copy: &str) -> String {
        let Ok(ident) = quote_db_name(&self.name) else { return String::new() };
        let mut sql = vec![format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)")];
        sql.extend(self.create_statements(copy, &self.name).unwrap_or_default());
        sql.push(format!("ALTER DATABASE {ident} ALLOW_CONNECTIONS true"));
        sql.join("; ") + ";"
    }

    /// Connects and asks the server's version: whether the database answers.
    pub async fn server_version(&self) -> Result<String, ProvisionError> {
        let sql_err = |source| ProvisionError::Sql { context: format!("connecting to {}", redact(&self.url)), source };
        let mut conn = PgConnection::connect(&self.url).await.map_err(sql_err)?;
        let version: Result<(String,), _> = sqlx::query_as("SHOW server_version").fetch_one(&mut conn).await;
        let _ = conn.close().await;
        version.map(|v| v.0).map_err(sql_err)
    }

    /// Drops a copy made by [`SharedDatabase::save`].
    pub async fn drop_copy(&self, copy: &str) -> Result<(), ProvisionError> {
        let ident = quote_db_name(copy)?;
        let mut conn = self.admin().await?;
        let done = exec(&mut conn, format!("DROP DATABASE IF EXISTS {ident}"), &format!("dropping {copy}")).await;
        let _ = conn.close().await;
        done
    }

    /// A session on the server's `postgres` database, within [`CONNECT_WITHIN`].
    async fn admin(&self) -> Result<PgConnection, ProvisionError> {
        let context = || format!("connecting to {}", redact(&self.admin_url));
        match tokio::time::timeout(CONNECT_WITHIN, PgConnection::connect(&self.admin_url)).await {
            Ok(conn) => conn.map_err(|source| ProvisionError::Sql { context: context(), source }),
            Err(_) => Err(ProvisionError::Reset(format!("{}: no answer within {CONNECT_WITHIN:?}", context()))),
        }
    }
}

async fn exec(conn: &mut PgConnection, sql: String, context: &str) -> Result<(), ProvisionError> {
    // Identifiers are validated and quoted (`quote_db_name`, `quote_ident`); privileges come
    // from Postgres's own `aclexplode`.
    conn.execute(AssertSqlSafe(sql))
        .await
        .map(drop)
        .map_err(|source| ProvisionError::Sql { context: context.to_owned(), source })
}

/// Ends every other session on `db`. `CREATE DATABASE … TEMPLATE` then waits (up to 5 s, in
/// Postgres) for them to be gone.
async fn terminate_sessions(conn: &mut PgConnection, db: &str, context: &str) -> Result<(), ProvisionError> {
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(db)
        .fetch_all(conn)
        .await
        .map(drop)
        .map_err(|source| ProvisionError::Sql { context: context.to_owned(), source })
}

/// What [`inspect`] learnt.
#[derive(Debug, Clone)]
struct Found {
    name: String,
    keep: Kept,
    role: String,
    superuser: bool,
    create_db: bool,
    owns: bool,
    /// Roles with sessions on the database that this role may not end.
    unsignalable: Vec<String>,
    /// Whether the database has settings of its own (`ALTER DATABASE … SET`, `ALTER ROLE … IN
    /// DATABASE … SET`), which a dropped database loses.
    settings: bool,
}

impl Found {
    /// Why this role may not reset the database, if it may not.
    fn refusal(&self) -> Option<String> {
        let (name, role) = (&self.name, &self.role);
        if MAINTENANCE.contains(&name.as_str()) {
            return Some(format!("`{name}` is a maintenance database, which taskbench never drops"));
        }
        if quote_db_name(name).is_err() {
            return Some(format!(
                "the database's name `{name}` is not one taskbench resets (1 to 63 of a-z, 0-9 and _)"
            ));
        }
        if !self.superuser && !self.create_db {
            return Some(format!("role `{role}` may not create databases (it needs CREATEDB)"));
        }
        if !self.superuser && !self.owns {
            return Some(format!("role `{role}` does not own `{name}` (owner: `{}`)", self.keep.owner));
        }
        if !self.unsignalable.is_empty() {
            return Some(format!(
                "role `{role}` may not end the sessions of {} on `{name}` (it needs to be a member of their role, or of \
                 pg_signal_backend)",
                self.unsignalable.join(", ")
            ));
        }
        if self.settings {
            // Re-applying them would need each setting's quoting rules (lists such as
            // search_path are written unquoted), and a mistake would change the servers' database.
            return Some(format!(
                "`{name}` has settings of its own (ALTER DATABASE … SET or ALTER ROLE … IN DATABASE … SET), which a \
                 reset would lose"
            ));
        }
        None
    }
}

async fn inspect(conn: &mut PgConnection) -> Result<Found, sqlx::Error> {
    let row = sqlx::query(
        "SELECT current_database()::text AS name, current_user::text AS role, r.rolsuper, r.rolcreatedb,
                pg_get_userbyid(d.datdba)::text AS owner, pg_has_role(current_user, d.datdba, 'MEMBER') AS owns,
                d.datconnlimit, d.datacl IS NOT NULL AS own_acl,
                ARRAY(SELECT DISTINCT a.usename::text FROM pg_stat_activity a
                      WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.usesysid IS NOT NULL
                        AND NOT r.rolsuper AND NOT pg_has_role(current_user, a.usesysid, 'MEMBER')
                        AND (NOT pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')
                             OR (SELECT s.rolsuper FROM pg_roles s WHERE s.oid = a.usesysid))) AS unsignalable,
                EXISTS (SELECT 1 FROM pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings
         FROM pg_database d JOIN pg_roles r ON r.rolname = current_user
         WHERE d.datname = current_database()",
    )
    .fetch_one(&mut *conn)
    .await?;
    let grants = if row.try_get::<bool, _>("own_acl")? {
        let rows = sqlx::query(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee,
                    a.privilege_type, a.is_grantable
             FROM pg_database d, aclexplode(d.datacl) a
             WHERE d.datname = current_database() AND a.grantee <> d.datdba",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut grants = Vec::with_capacity(rows.len());
        for r in rows {
            grants.push((r.try_get("grantee")?, r.try_get("privilege_type")?, r.try_get("is_grantable")?));
        }
        Some(grants)
    } else {
        None
    };
    Ok(Found {
        name: row.try_get("name")?,
        keep: Kept { owner: row.try_get("owner")?, connection_limit: row.try_get("datconnlimit")?, grants },
        role: row.try_get("role")?,
        superuser: row.try_get("rolsuper")?,
        create_db: row.try_get("rolcreatedb")?,
        owns: row.try_get("owns")?,
        unsignalable: row.try_get("unsignalable")?,
        settings: row.try_get("settings")?,
    })
}

/// `"name"`, with inner quotes doubled (Postgres's `quote_ident`, always quoting).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found() -> Found {
        Found {
            name: "taskbench".into(),
            keep: Kept { owner: "app".into(), connection_limit: -1, ..Kept::default() },
            role: "app".into(),
            superuser: false,
            create_db: true,
            owns: true,
            unsignalable: Vec::new(),
            settings: false,
        }
    }

    #[test]
    fn a_reset_is_refused_with_the_reason() {
        assert_eq!(found().refusal(), None);
        let refused = |f: Found| f.refusal().expect("refused");
        assert!(refused(Found { name: "postgres".into(), superuser: true, ..found() }).contains("maintenance"));
        assert!(refused(Found { name: "Tasks".into(), ..found() }).contains("1 to 63"));
        assert!(refused(Found { create_db: false, ..found() }).contains("CREATEDB"));
        assert!(refused(Found { owns: false, ..found() }).contains("does not own `taskbench` (owner: `app`)"));
        assert!(refused(Found { unsignalable: vec!["web".into()], ..found() }).contains("sessions of web"));
        assert!(refused(Found { settings: true, ..found() }).contains("settings of its own"));
        // A superuser needs neither CREATEDB nor ownership.
        assert_eq!(Found { superuser: true, create_db: false, owns: false, ..found() }.refusal(), None);
    }

    #[test]
    fn the_sql_to_put_it_back_by_hand_keeps_owner_limit_and_privileges() {
        let db = SharedDatabase {
            url: "postgres://app@db/tasks".into(),
            admin_url: "postgres://app@db/postgres".into(),
            name: "tasks".into(),
            keep: Kept {
                owner: "app".into(),
                connection_limit: 40,
                grants: Some(vec![("\"reader\"".into(), "CONNECT".into(), false)]),
            },
        };
        assert_eq!(
            db.restore_by_hand("tb_1_original"),
            "DROP DATABASE IF EXISTS \"tasks\" WITH (FORCE); CREATE DATABASE \"tasks\" TEMPLATE \"tb_1_original\" OWNER \
             \"app\" CONNECTION LIMIT 40 ALLOW_CONNECTIONS false; REVOKE ALL ON DATABASE \"tasks\" FROM PUBLIC; GRANT \
             CONNECT ON DATABASE \"tasks\" TO \"reader\"; ALTER DATABASE \"tasks\" ALLOW_CONNECTIONS true;"
        );
        assert_eq!(incoming_name("tb_1_original"), "tb_1_original_next");
        assert!(quote_db_name(&incoming_name(&"a".repeat(63))).is_ok(), "a clone's name fits in 63 bytes");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
    }
}
