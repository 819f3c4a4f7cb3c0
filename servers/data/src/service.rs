//! The service: shared state and every operation of the API as a plain async function over a
//! `PgPool`. Server crates call these and only translate HTTP to and from them.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::auth::{AuthUser, JwtKeys, PasswordHasher, TOKEN_TTL_SECS};
use crate::config::ServiceConfig;
use crate::error::{ApiError, Result};
use crate::http::Cors;
use crate::metrics::Metrics;
use crate::model::{ListQuery, LoginRequest, NewTask, RegisterRequest, Task, TaskPatch, TokenResponse, User};
use crate::validate;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Cheap to clone: one `Arc`. Both frameworks keep one in their app state.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    jwt: JwtKeys,
    hasher: PasswordHasher,
    metrics: Metrics,
    cors: Cors,
    request_timeout: Duration,
    header_timeout: Duration,
    inject_cpu: Duration,
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Service {
    /// Connects a pool to `database_url`, runs migrations, and builds the service.
    pub async fn connect(database_url: &str, config: &ServiceConfig) -> Result<Self, StartupError> {
        use sqlx::Connection as _;
        // Migrate over a connection of its own, then open the pool lazily: each connection is
        // then born on the runtime that uses it (Actix runs one runtime per worker thread).
        let mut conn = sqlx::PgConnection::connect(database_url).await.map_err(StartupError::Connect)?;
        MIGRATOR.run(&mut conn).await?;
        conn.close().await.map_err(StartupError::Connect)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(config.pool_acquire_timeout)
            .connect_lazy(database_url)
            .map_err(StartupError::Connect)?;
        Self::new(pool, config)
    }

    /// Builds the service over an existing pool (migrations are the caller's business).
    pub fn new(pool: PgPool, config: &ServiceConfig) -> Result<Self, StartupError> {
        let hasher = PasswordHasher::new(config.argon2, config.hashing).map_err(StartupError::Config)?;
        let metrics = Metrics::new().map_err(|e| StartupError::Config(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                jwt: JwtKeys::new(&config.jwt_secret),
                hasher,
                metrics,
                cors: Cors::new(config.cors_origin.clone()),
                request_timeout: config.request_timeout,
                header_timeout: config.header_timeout,
                inject_cpu: config.inject_cpu,
            }),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
    pub fn jwt(&self) -> &JwtKeys {
        &self.inner.jwt
    }
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    pub fn cors(&self) -> &Cors {
        &self.inner.cors
    }
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }
    /// The slowloris bound: a request head must arrive within it; idle keep-alive connections close.
    pub fn header_timeout(&self) -> Duration {
        self.inner.header_timeout
    }
    /// The calibration knob's cost per request (zero unless `--inject-cpu-us` was given).
    pub fn inject_cpu(&self) -> Duration {
        self.inner.inject_cpu
    }

    /// Authenticates the raw `authorization` header.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<AuthUser> {
        self.inner.jwt.authenticate(header)
    }

    /// True when the database answers a ping within a second.
    pub async fn healthy(&self) -> bool {
        let ping = sqlx::query("SELECT 1").execute(&self.inner.pool);
        matches!(tokio::time::timeout(Duration::from_secs(1), ping).await, Ok(Ok(_)))
    }

    pub async fn register(&self, req: RegisterRequest) -> Result<User> {
        let req = validate::registration(req)?;
        let hash = self.inner.hasher.hash(req.password).await?;
        let user = sqlx::query_as!(
            User,
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO NOTHING
             RETURNING id, email, name, created_at",
            Uuid::now_v7(),
            req.email,
            req.name,
            hash,
        )
        .fetch_optional(&self.inner.pool)
        .await?;
        user.ok_or(ApiError::Conflict("email is already registered"))
    }

    pub async fn login(&self, req: LoginRequest) -> Result<TokenResponse> {
        let email = req.email.trim().to_lowercase();
        // No registered email holds U+0000 (nor could PostgreSQL compare one): an unknown user.
        let row = if email.contains('\0') {
            None
        } else {
            sqlx::query!("SELECT id, password_hash FROM users WHERE email = $1", email)
                .fetch_optional(&self.inner.pool)
                .await?
        };
        let (id, hash) = row.map(|r| (r.id, r.password_hash)).unzip();
        let verified = self.inner.hasher.verify(req.password, hash).await?;
        match id {
            Some(id) if verified => {
                Ok(TokenResponse { token: self.inner.jwt.issue(id)?, token_type: "Bearer", expires_in: TOKEN_TTL_SECS })
            }
            _ => Err(ApiError::Unauthorized("invalid email or password")),
        }
    }

    pub async fn me(&self, user: AuthUser) -> Result<User> {
        sqlx::query_as!(User, "SELECT id, email, name, created_at FROM users WHERE id = $1", user.id)
            .fetch_optional(&self.inner.pool)
            .await?
            // A valid token for a user who no longer exists proves nothing.
            .ok_or(ApiError::Unauthorized("bearer token is invalid"))
    }

    pub async fn create_task(&self, user: AuthUser, task: NewTask) -> Result<Task> {
        let task = validate::new_task(task)?;
        let created = sqlx::query_as!(
            Task,
            r#"INSERT INTO tasks (id, user_id, title, description, priority, due_at)
               VALUES ($1, $2, $3, $4, COALESCE($5, 'medium'::task_priority), $6)
               RETURNING id, user_id, title, description, status AS "status: _",
                         priority AS "priority: _", due_at, created_at, updated_at"#,
            Uuid::now_v7(),
            user.id,
            task.title,
            task.description,
            task.priority as _,
            task.due_at,
        )
        .fetch_one(&self.inner.pool)
        .await;
        match created {
            // The token's user was deleted: same answer as any invalid token.
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(ApiError::Unauthorized("bearer token is invalid"))
            }
            other => Ok(other?),
        }
    }

    pub async fn list_tasks(&self, user: AuthUser, query: ListQuery) -> Result<Vec<Task>> {
        let tasks = sqlx::query_as!(
            Task,
            r#"SELECT id, user_id, title, description, status AS "status: _",
                      priority AS "priority: _", due_at, created_at, updated_at
               FROM tasks
               WHERE user_id = $1
                 AND ($2::task_status IS NULL OR status = $2)
                 AND ($3::task_priority IS NULL OR priority = $3)
               ORDER BY created_at DESC, id DESC
               LIMIT $4 OFFSET $5"#,
            user.id,
            query.status as _,
            query.priority as _,
            query.limit,
            query.offset,
        )
        .fetch_all(&self.inner.pool)
        .await?;
        Ok(tasks)
    }

    pub async fn get_task(&self, user: AuthUser, id: Uuid) -> Result<Task> {
        sqlx::query_as!(
            Task,
            r#"SELECT id, user_id, title, description, status AS "status: _",
                      priority AS "priority: _", due_at, created_at, updated_at
               FROM tasks WHERE id = $1 AND user_id = $2"#,
            id,
            user.id,
        )
        .fetch_optional(&self.inner.pool)
        .await?
        .ok_or(TASK_NOT_FOUND)
    }

    pub async fn update_task(&self, user: AuthUser, id: Uuid, patch: TaskPatch) -> Result<Task> {
        let patch = validate::task_patch(patch)?;
        sqlx::query_as!(
            Task,
            r#"UPDATE tasks SET
                   title = COALESCE($3, title),
                   description = CASE WHEN $4 THEN $5 ELSE description END,
                   status = COALESCE($6, status),
                   priority = COALESCE($7, priority),
                   due_at = CASE WHEN $8 THEN $9 ELSE due_at END,
                   -- strictly later, even within one clock tick
                   updated_at = GREATEST(now(), updated_at + interval '1 microsecond')
               WHERE id = $1 AND user_id = $2
               RETURNING id, user_id, title, description, status AS "status: _",
                         priority AS "priority: _", due_at, created_at, updated_at"#,
            id,
            user.id,
            patch.title,
            patch.description.is_some(),
            patch.description.flatten(),
            patch.status as _,
            patch.priority as _,
            patch.due_at.is_some(),
            patch.due_at.flatten(),
        )
        .fetch_optional(&self.inner.pool)
        .await?
        .ok_or(TASK_NOT_FOUND)
    }

    pub async fn delete_task(&self, user: AuthUser, id: Uuid) -> Result<()> {
        let done = sqlx::query!("DELETE FROM tasks WHERE id = $1 AND user_id = $2", id, user.id)
            .execute(&self.inner.pool)
            .await?;
        if done.rows_affected() == 0 { Err(TASK_NOT_FOUND) } else { Ok(()) }
    }
}

/// Also the answer for another user's task: its existence is not the caller's business.
const TASK_NOT_FOUND: ApiError = ApiError::NotFound("task not found");
