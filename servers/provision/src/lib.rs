//! Postgres provisioning: one handle over a user-given URL, a Docker container or a throw-away local cluster.
//!
//! Its own crate so that the servers, which are what taskbench measures, link only what serves
//! requests: testcontainers (bollard, TLS, tar), `nix` and `tempfile` are the CLI's and the tests'.

mod docker;
mod local;
mod shared;

pub use local::Unavailable as LocalUnavailable;
pub use shared::SharedDatabase;

use std::fmt;
use std::str::FromStr;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The container for plain `"docker"` and for `Auto`, unless [`IMAGE_ENV`] names another.
const DEFAULT_IMAGE: &str = "postgres";
const DEFAULT_TAG: &str = "15-alpine";
/// `IMAGE[:TAG]` of the container that plain `"docker"` and `Auto` start (for example the image
/// `scripts/container-postgres.sh` builds, `localhost/taskbench-postgres:15`).
pub const IMAGE_ENV: &str = "TASKBENCH_POSTGRES_IMAGE";
const ACCEPTED_FORMS: &str =
    "\"auto\", \"local\", \"docker\", \"docker:IMAGE:TAG\", \"url:URL\" or a postgres:// / postgresql:// URL";

/// Where the PostgreSQL server comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum DbChoice {
    /// `DATABASE_URL` if set, else Docker if reachable, else local binaries.
    Auto,
    /// An existing server; nothing is started.
    Url(String),
    /// A container started through testcontainers.
    Docker { image: String, tag: String },
    /// A throw-away cluster from the system's PostgreSQL binaries.
    Local,
}

impl FromStr for DbChoice {
    type Err = ProvisionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let invalid = || ProvisionError::InvalidChoice(s.to_owned());
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        if s.eq_ignore_ascii_case("local") {
            return Ok(Self::Local);
        }
        if s.eq_ignore_ascii_case("docker") {
            return Self::default_docker();
        }
        if let Some(spec) = strip_prefix_ignore_case(s, "docker:") {
            let (image, tag) = split_image(spec).ok_or_else(invalid)?;
            return Ok(Self::docker(image, tag));
        }
        let url = strip_prefix_ignore_case(s, "url:").unwrap_or(s);
        if is_postgres_url(url) {
            return Ok(Self::Url(url.to_owned()));
        }
        Err(invalid())
    }
}

impl DbChoice {
    fn docker(image: &str, tag: &str) -> Self {
        let (image, tag) = (image.to_owned(), tag.to_owned());
        Self::Docker { image, tag }
    }

    /// The container `"docker"` and `Auto` start: `$TASKBENCH_POSTGRES_IMAGE` when set, else
    /// `postgres:15-alpine`.
    pub fn default_docker() -> Result<Self, ProvisionError> {
        default_image().map(|(image, tag)| Self::Docker { image, tag })
    }
}

fn default_image() -> Result<(String, String), ProvisionError> {
    match std::env::var(IMAGE_ENV) {
        Ok(spec) if !spec.trim().is_empty() => split_image(spec.trim())
            .map(|(image, tag)| (image.to_owned(), tag.to_owned()))
            .ok_or_else(|| ProvisionError::InvalidImage(spec.clone())),
        _ => Ok((DEFAULT_IMAGE.to_owned(), DEFAULT_TAG.to_owned())),
    }
}

/// `IMAGE[:TAG]` (TAG `latest` when absent). A tag never contains '/', so
/// `registry:5000/postgres` is an image without a tag.
fn split_image(spec: &str) -> Option<(&str, &str)> {
    let (image, tag) = match spec.rsplit_once(':') {
        Some((image, tag)) if !tag.contains('/') => (image, tag),
        _ => (spec, "latest"),
    };
    let valid = !image.is_empty() && !tag.is_empty() && !spec.contains(char::is_whitespace);
    valid.then_some((image, tag))
}

/// Parses back with `FromStr`, except that URL passwords are shown as `***` (so it is safe to log).
impl fmt::Display for DbChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Local => f.write_str("local"),
            Self::Docker { image, tag } => write!(f, "docker:{image}:{tag}"),
            Self::Url(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DbChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbChoice({self})")
    }
}

/// Which of the three ways produced a [`Postgres`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Url,
    Docker,
    Local,
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Url => "url",
            Self::Docker => "docker",
            Self::Local => "local",
        })
    }
}

/// Settings for servers we start ourselves (ignored for `DbChoice::Url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvisionOptions {
    /// `true` (the default): `fsync` and friends stay on, so benchmark numbers include the cost
    /// of a real commit. `false` turns `fsync`, `synchronous_commit` and `full_page_writes` off:
    /// fast, crash-unsafe, fine for tests.
    pub durable: bool,
}

impl Default for ProvisionOptions {
    fn default() -> Self {
        Self { durable: true }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("invalid database choice {0:?}: expected {ACCEPTED_FORMS}")]
    InvalidChoice(String),
    #[error("invalid {IMAGE_ENV}={0:?}: expected IMAGE or IMAGE:TAG, such as localhost/taskbench-postgres:15")]
    InvalidImage(String),
    #[error(
        "no PostgreSQL available: {url}; {docker}; {local}. Set DATABASE_URL, start Docker, or install PostgreSQL server binaries."
    )]
    NoneAvailable { url: String, docker: String, local: local::Unavailable },
    #[error(
        "Docker not reachable: {0}. Start Docker (or set DOCKER_HOST), or use a database URL or the local cluster."
    )]
    DockerUnavailable(String),
    #[error("Docker container failed: {0}")]
    Docker(String),
    #[error(
        "local PostgreSQL not available: {0}. Install PostgreSQL server binaries, or use a database URL or Docker."
    )]
    LocalUnavailable(local::Unavailable),
    #[error("local PostgreSQL failed to start: {message}\n--- server log tail ---\n{log_tail}")]
    LocalStart { message: String, log_tail: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("invalid database name {0:?}: use 1 to 63 characters from [a-z0-9_]")]
    InvalidDatabaseName(String),
    #[error("{context}: {source}")]
    Sql { context: String, source: sqlx::Error },
    #[error("not supported here: {0}")]
    Unsupported(&'static str),
    /// A reset of a shared database that failed part-way, or could not connect in time: the
    /// message says what state it left.
    #[error("{0}")]
    Reset(String),
}

/// A PostgreSQL server, and ownership of whatever was started to provide it.
pub struct Postgres {
    url: String,
    kind: DbKind,
    /// Its Drop stops whatever we started.
    guard: Guard,
}

enum Guard {
    None,
    Docker(Box<docker::DockerGuard>),
    Local(local::LocalCluster),
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("kind", &self.kind)
            .field("url", &redact(&self.url))
            .field("server_pid", &self.server_pid())
            .field("container", &self.container_id())
            .finish()
    }
}

impl Postgres {
    pub async fn provision(choice: &DbChoice, opts: &ProvisionOptions) -> Result<Postgres, ProvisionError> {
        match choice {
            DbChoice::Url(url) => {
                tracing::info!(url = %redact(url), "PostgreSQL: using the given URL");
                Ok(Self::from_url(url.clone()))
            }
            DbChoice::Docker { image, tag } => Self::docker(image, tag, opts).await,
            DbChoice::Local => {
                let installation = local::installation().map_err(ProvisionError::LocalUnavailable)?;
                Self::local_async(installation, opts).await
            }
            DbChoice::Auto => Self::auto(opts).await,
        }
    }

    /// Synchronous local cluster start, for test harness statics (no runtime needed).
    pub fn start_local(opts: &ProvisionOptions) -> Result<Postgres, ProvisionError> {
        let installation = local::installation().map_err(ProvisionError::LocalUnavailable)?;
        Ok(Self::from_local(local::start(&installation, opts)?))
    }

    /// URL of the `postgres` maintenance database (for `DbKind::Url`, the URL as given).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Postmaster pid when we started it (for resource sampling and pinning), else `None`: a
    /// local cluster's, or a container's main process when it is a `postgres` visible from here
    /// (a rootful Docker or podman on this machine; not a daemon inside a VM).
    pub fn server_pid(&self) -> Option<u32> {
        match &self.guard {
            Guard::Local(cluster) => Some(cluster.pid()),
            Guard::Docker(guard) => guard.postmaster(),
            Guard::None => None,
        }
    }

    /// An outage, for tests of what a service does when its database goes away: stops the local
    /// cluster's server (fast shutdown, as `pg_ctl stop -m fast`) and keeps it down, data kept,
    /// until [`Postgres::resume`]. Only for a cluster we started locally.
    pub fn interrupt(&mut self) -> Result<(), ProvisionError> {
        match &mut self.guard {
            Guard::Local(cluster) => cluster.interrupt(),
            Guard::Docker(_) | Guard::None => Err(ProvisionError::Unsupported("an outage needs a local cluster")),
        }
    }

    /// Ends an outage: the server starts again on the same port with the same data; returns once
    /// it accepts logins.
    pub fn resume(&mut self) -> Result<(), ProvisionError> {
        match &mut self.guard {
            Guard::Local(cluster) => cluster.resume(),
            Guard::Docker(_) | Guard::None => Err(ProvisionError::Unsupported("an outage needs a local cluster")),
        }
    }

    /// The container's `image:tag` when Docker provided the server.
    pub fn container_image(&self) -> Option<&str> {
        match &self.guard {
            Guard::Docker(guard) => Some(guard.image()),
            Guard::None | Guard::Local(_) => None,
        }
    }

    /// The container's id when Docker provided the server.
    pub fn container_id(&self) -> Option<&str> {
        match &self.guard {
            Guard::Docker(guard) => guard.container_id(),
            Guard::None | Guard::Local(_) => None,
        }
    }

    /// Creates a new empty database and returns its URL.
    pub async fn create_database(&self, name: &str) -> Result<String, ProvisionError> {
        let ident = quote_db_name(name)?;
        self.execute(format!("CREATE DATABASE {ident}"), &format!("creating database {name}")).await?;
        Ok(url_for(&self.url, name))
    }

    /// Creates `name` as a copy of `template` (which must have no open connections): a fast reset
    /// to seeded data.
    pub async fn create_database_from(&self, name: &str, template: &str) -> Result<String, ProvisionError> {
        let (ident, tpl) = (quote_db_name(name)?, quote_db_name(template)?);
        self.execute(
            format!("CREATE DATABASE {ident} TEMPLATE {tpl}"),
            &format!("copying database {template} to {name}"),
        )
        .await?;
        Ok(url_for(&self.url, name))
    }

    pub async fn drop_database(&self, name: &str) -> Result<(), ProvisionError> {
        let ident = quote_db_name(name)?;
        // FORCE (PostgreSQL 13+) ends sessions a test may have leaked.
        self.execute(format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)"), &format!("dropping database {name}"))
            .await
    }

    /// Connects and asks the server's version (`15.19 (Debian 15.19-0+deb12u1)`): a check that
    /// the database is reachable before anything is started against it.
    pub async fn server_version(&self) -> Result<String, ProvisionError> {
        let sql_err = |source| ProvisionError::Sql { context: format!("connecting to {}", redact(&self.url)), source };
        let mut conn = PgConnection::connect(&self.url).await.map_err(sql_err)?;
        let version: (String,) = sqlx::query_as("SHOW server_version").fetch_one(&mut conn).await.map_err(sql_err)?;
        let _ = conn.close().await;
        Ok(version.0)
    }

    async fn execute(&self, sql: String, context: &str) -> Result<(), ProvisionError> {
        let sql_err = |source| ProvisionError::Sql { context: context.to_owned(), source };
        let mut conn = PgConnection::connect(&self.url).await.map_err(sql_err)?;
        // The identifier was validated and quoted by `quote_db_name`.
        let result = conn.execute(AssertSqlSafe(sql)).await.map_err(sql_err);
        let _ = conn.close().await;
        result.map(drop)
    }

    async fn auto(opts: &ProvisionOptions) -> Result<Postgres, ProvisionError> {
        let url_reason = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                tracing::info!(url = %redact(&url), "PostgreSQL: using DATABASE_URL (auto: it is set)");
                return Ok(Self::from_url(url));
            }
            Ok(_) => "DATABASE_URL is empty",
            Err(_) => "DATABASE_URL is not set",
        };
        let docker_reason = match docker::probe_async().await {
            // A bad image setting fails Docker, not `auto`: the local cluster may still do.
            Ok(_) if let Err(e) = default_image() => format!("Docker is reachable but {e}"),
            Ok(endpoint) => {
                tracing::info!(%endpoint, "PostgreSQL: starting a Docker container (auto: {url_reason}; Docker is reachable)");
                let (image, tag) = default_image()?;
                match Self::docker(&image, &tag, opts).await {
                    Ok(pg) => return Ok(pg),
                    Err(e) => {
                        tracing::warn!(error = %e, "Docker container failed; trying local PostgreSQL binaries");
                        format!("Docker is reachable but the container failed ({e})")
                    }
                }
            }
            Err(reason) => format!("Docker is not reachable ({reason})"),
        };
        match local::installation() {
            Ok(installation) => {
                tracing::info!(
                    binaries = %installation.bin_dir().display(),
                    "PostgreSQL: starting a local cluster (auto: {url_reason}; {docker_reason})"
                );
                Self::local_async(installation, opts).await
            }
            Err(local) => {
                Err(ProvisionError::NoneAvailable { url: url_reason.to_owned(), docker: docker_reason, local })
            }
        }
    }

    async fn docker(image: &str, tag: &str, opts: &ProvisionOptions) -> Result<Postgres, ProvisionError> {
        let (guard, url) = docker::start(image, tag, opts).await?;
        Ok(Self::new(url, DbKind::Docker, Guard::Docker(Box::new(guard))))
    }

    async fn local_async(
        installation: local::Installation,
        opts: &ProvisionOptions,
    ) -> Result<Postgres, ProvisionError> {
        let opts = *opts;
        let cluster =
            tokio::task::spawn_blocking(move || local::start(&installation, &opts)).await.map_err(|e| {
                ProvisionError::LocalStart { message: format!("start task failed: {e}"), log_tail: String::new() }
            })??;
        Ok(Self::from_local(cluster))
    }

    fn from_local(cluster: local::LocalCluster) -> Postgres {
        Self::new(cluster.url(), DbKind::Local, Guard::Local(cluster))
    }

    fn from_url(url: String) -> Postgres {
        Self::new(url, DbKind::Url, Guard::None)
    }

    fn new(url: String, kind: DbKind, guard: Guard) -> Postgres {
        Postgres { url, kind, guard }
    }
}

#[cfg(feature = "test-support")]
/// For test binaries: one server per process, started on first use: DATABASE_URL if set, else a
/// local cluster. Panics with a clear message if neither works (it is test support).
pub fn shared_for_tests() -> &'static Postgres {
    static SHARED: std::sync::OnceLock<Postgres> = std::sync::OnceLock::new();
    // Statics are never dropped; the local cluster's supervisor cleans up when the process exits.
    SHARED.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Postgres::from_url(url),
        _ => match Postgres::start_local(&ProvisionOptions { durable: false }) {
            Ok(pg) => pg,
            Err(e) => panic!("test database unavailable: DATABASE_URL is not set and the local cluster failed: {e}"),
        },
    })
}

#[cfg(feature = "test-support")]
/// For tests: a fresh database named `test_<32 random hex digits>` on `shared_for_tests()`, returning its URL.
pub async fn fresh_test_database() -> String {
    let name = format!("test_{:032x}", rand::random::<u128>());
    match shared_for_tests().create_database(&name).await {
        Ok(url) => url,
        Err(e) => panic!("creating test database {name}: {e}"),
    }
}

fn quote_db_name(name: &str) -> Result<String, ProvisionError> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    if (1..=63).contains(&name.len()) && name.bytes().all(allowed) {
        return Ok(format!("\"{name}\""));
    }
    Err(ProvisionError::InvalidDatabaseName(name.to_owned()))
}

/// Byte range of a URL's authority (`user:password@host:port`).
fn authority(url: &str) -> (usize, usize) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    (start, end)
}

/// `base` with its database (the URL path) replaced by `db`, keeping any query string.
fn url_for(base: &str, db: &str) -> String {
    let (_, end) = authority(base);
    let query = base[end..].find(['?', '#']).map_or(base.len(), |i| end + i);
    format!("{}/{db}{}", &base[..end], &base[query..])
}

/// The URL with any password replaced by `***`, for logs and recorded results: the one in its
/// user info, and a `password=` query parameter (libpq's form, which sqlx accepts too).
pub fn redact(url: &str) -> String {
    let (start, end) = authority(url);
    let auth = &url[start..end];
    let mut out = match auth.rfind('@').and_then(|at| Some((auth[..at].find(':')?, at))) {
        Some((colon, at)) => format!("{}***{}", &url[..start + colon + 1], &url[start + at..]),
        None => url.to_owned(),
    };
    let Some(q) = out.find('?') else { return out };
    let (head, query) = out.split_at(q + 1);
    let (query, fragment) = query.split_at(query.find('#').unwrap_or(query.len()));
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    out = format!("{head}{}{fragment}", query.join("&"));
    out
}

fn is_postgres_url(s: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|p| strip_prefix_ignore_case(s, p).is_some_and(|rest| !rest.is_empty()))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted_wherever_the_url_carries_them() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/tasks"), "postgres://app:***@db:5432/tasks");
        assert_eq!(
            redact("postgres://db/tasks?user=app&password=s3cret&sslmode=require"),
            "postgres://db/tasks?user=app&password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://a:b@db/t?PASSWORD=x#f"), "postgres://a:***@db/t?PASSWORD=***#f");
        assert_eq!(redact("postgres://app@db/tasks?sslmode=disable"), "postgres://app@db/tasks?sslmode=disable");
    }
}
