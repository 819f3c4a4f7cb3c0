//! `taskbench run --target NAME=URL`: servers taskbench did not start (on other machines, in a
//! cluster, or started by hand), measured like its own, with what that gives up said in the
//! results. Their database, given by `--db url:…`, cannot be copied per run as taskbench does for
//! its own servers (the servers are connected to it): when the role in the URL may, it is reset
//! in place before each run from a copy of the seeded state (`SharedDatabase`), and put back as it
//! was found at the end. Without `--db`, or without the rights, the runs share whatever the ones
//! before them wrote, and the results say so.

use std::collections::BTreeMap;
use std::time::Duration;

use taskbench_loadgen::Scenario;
use taskbench_loadgen::client::{self, Reach, Target};
use taskbench_provision::{SharedDatabase, redact};
use taskbench_report::model::DbConfig;

use super::RunError;
use super::procs::wait_healthy;

/// How long a target may take to answer `GET /health` with 200 after its database was reset
/// (the servers open new connections) or before the first run.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// The servers of a `--target` run and their database.
pub(super) struct Targets {
    /// By name, in `--target` order of the plan's frameworks.
    urls: BTreeMap<String, String>,
    /// The database the targets serve from, and its version, when `--db url:…` gave it.
    db: Option<(SharedDatabase, String)>,
    /// `Ok` when the database is reset before each run; else why not.
    reset: Result<(), String>,
    /// The copy of the database as it was found, put back at the end.
    original: String,
}

/// A `--target NAME=URL`.
pub(super) fn parse_target(s: &str) -> Result<(String, String), String> {
    let expected = "expected NAME=URL, e.g. `axum=http://10.0.0.5:8080`";
    let (name, url) = s.split_once('=').ok_or_else(|| format!("{expected}; found `{s}`"))?;
    let name = super::contender_name(name.trim()).map_err(|e| format!("target {e} ({expected})"))?;
    let target = Target::parse_with(url.trim(), Reach::Anywhere).map_err(|e| format!("{e} ({expected})"))?;
    Ok((name, target.base))
}

impl Targets {
    /// Checks every target answers `GET /health`, opens the database when given and decides
    /// whether it can be reset; when it can, copies it aside as it is now.
    pub(super) async fn prepare(
        urls: BTreeMap<String, String>,
        db_url: Option<&str>,
        stamp: &str,
    ) -> Result<Self, String> {
        let http = client::http_client(1);
        for (name, url) in &urls {
            let target = Target::parse_with(url, Reach::Anywhere).map_err(|e| format!("--target {name}: {e}"))?;
            client::preflight(&http, &target).await.map_err(|e| {
                format!("--target {name}: {e}; expected a running server of the taskbench API at {url}")
            })?;
        }
        let original = format!("tb_{stamp}_original");
        let Some(db_url) = db_url else {
            let reset = Err("no database was given (--db url:postgres://…/DATABASE, the targets' own)".to_owned());
            return Ok(Self { urls, db: None, reset, original });
        };
        let (db, reset) = SharedDatabase::open(db_url).await.map_err(|e| format!("--db: {e}"))?;
        let version = db.server_version().await.map_err(|e| format!("--db: {e}"))?;
        if reset.is_ok() {
            tracing::info!(database = db.name(), copy = %original, "saving the targets' database as it is, to put it back at the end");
            db.save(&original)
                .await
                .map_err(|e| {
                    format!("saving the targets' database before the run (nothing was measured; its contents are as they were): {e}")
                })?;
        }
        if let Err(why) = &reset {
            tracing::warn!("the targets' database will not be reset between runs: {why}");
        }
        Ok(Self { urls, db: Some((db, version)), reset, original })
    }

    /// The target of `name`.
    pub(super) fn url(&self, name: &str) -> &str {
        self.urls.get(name).map_or("", String::as_str)
    }

    fn resettable(&self) -> Option<&SharedDatabase> {
        self.db.as_ref().filter(|_| self.reset.is_ok()).map(|(db, _)| db)
    }

    /// results.json's `config.db`.
    pub(super) fn db_config(&self) -> DbConfig {
        match &self.db {
            Some((db, version)) => DbConfig {
                kind: "url".into(),
                detail: format!(
                    "PostgreSQL {version}, the targets' database `{}` at {}; {}",
                    db.name(),
                    redact(db.url()),
                    match &self.reset {
                        Ok(()) =>
                            "reset before each run from a copy of the seeded data, and put back at the end".into(),
                        Err(why) => format!("not reset between runs: {why}"),
                    }
                ),
                durable: None,
            },
            None => DbConfig {
                kind: "unknown".into(),
                detail: "the targets' own, not given to taskbench (--db url:…): not reset, not checked".into(),
                durable: None,
            },
        }
    }

    /// What a run of these targets gives up next to one of servers taskbench starts.
    pub(super) fn lost_guarantees(&self) -> Vec<String> {
        let mut lost = vec![
            "the servers are not restarted between runs: each run inherits the caches, pools and memory the one before \
             it left"
                .to_owned(),
            "taskbench pins nothing but, with --cpus loadgen=, the load generator: the servers and their database run \
             where and next to whatever their owner put them"
                .to_owned(),
            "server memory and CPU come from each server's /metrics (no kernel high-water mark); Postgres is not \
             sampled"
                .to_owned(),
            "how the servers were built is not known to taskbench".to_owned(),
        ];
        if let Err(why) = &self.reset {
            lost.push(format!(
                "the database is not reset between runs ({why}): each run sees what the runs before it wrote"
            ));
        }
        if self.remote() {
            lost.push("the latencies include the network between the load generator and the servers".to_owned());
        }
        lost
    }

    /// Whether any target is off loopback (its host's CPUs are not this machine's).
    pub(super) fn remote(&self) -> bool {
        self.urls.values().any(|url| Target::parse(url).is_err())
    }

    /// Seeds `scenario`'s data through the API of the target `first`, on the database as it was
    /// found (put back first, when it can be); then, when the database can be reset, copies the
    /// seeded state to `template`.
    pub(super) async fn seed(&self, template: &str, scenario: &Scenario, first: &str) -> Result<(), RunError> {
        let url = self.url(first);
        if let Some(db) = self.resettable() {
            db.restore(&self.original).await.map_err(|e| RunError::Database(e.to_string()))?;
        }
        wait_healthy(url, HEALTHY_WITHIN).await?;
        let http = client::http_client(4);
        let target = Target::parse_with(url, Reach::Anywhere).map_err(|e| RunError::Server(e.to_string()))?;
        client::seed_via_api(&http, &target, &scenario.data).await.map_err(|e| RunError::Loadgen(e.to_string()))?;
        if let Some(db) = self.resettable() {
            db.save(template).await.map_err(|e| RunError::Database(e.to_string()))?;
        }
        Ok(())
    }

    /// Before a run of `name`: its database back to `template` (when it can be reset), and the
    /// server healthy.
    pub(super) async fn before_run(&self, template: &str, name: &str) -> Result<(), RunError> {
        if let Some(db) = self.resettable() {
            db.restore(template).await.map_err(|e| RunError::Database(e.to_string()))?;
        }
        wait_healthy(self.url(name), HEALTHY_WITHIN).await
    }

    /// Whether the database answers (when it was given), within 5 s.
    pub(super) async fn database_reachable(&self) -> Result<(), String> {
        let Some((db, _)) = &self.db else { return Ok(()) };
        match tokio::time::timeout(Duration::from_secs(5), db.server_version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 5 s".to_owned()),
        }
    }

    /// Drops a scenario's seeded copy.
    pub(super) async fn drop_template(&self, template: &str) {
        if let Some(db) = self.resettable()
            && let Err(e) = db.drop_copy(template).await
        {
            tracing::warn!(error = %e, "dropping the copy {template}");
        }
    }

    /// Puts the database back as it was found and drops the copy; when that fails the copy is
    /// kept, and the error says how to put it back by hand.
    pub(super) async fn finish(&self) -> Result<(), String> {
        let Some(db) = self.resettable() else { return Ok(()) };
        match db.restore(&self.original).await {
            Ok(()) => {
                if let Err(e) = db.drop_copy(&self.original).await {
                    tracing::warn!(error = %e, "dropping the copy {} (the database is back as it was)", self.original);
                }
                Ok(())
            }
            Err(e) => Err(format!(
                "the targets' database `{}` could not be put back as it was found ({e}); that state is kept in the \
                 database `{}`, and, from the server's `postgres` database, this puts it back: {}",
                db.name(),
                self.original,
                db.restore_by_hand(&self.original)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_named_urls_anywhere() {
        assert_eq!(parse_target("axum=http://10.0.0.5:8080/"), Ok(("axum".into(), "http://10.0.0.5:8080".into())));
        assert_eq!(parse_target(" b = http://127.0.0.2:1"), Ok(("b".into(), "http://127.0.0.2:1".into())));
        for bad in ["axum", "Axum=http://127.0.0.1:1", "axum=https://10.0.0.5", "axum=10.0.0.5:80", "=http://h:1"] {
            let e = parse_target(bad).expect_err(bad);
            assert!(e.contains("expected NAME=URL"), "{bad}: {e}");
        }
    }
}
