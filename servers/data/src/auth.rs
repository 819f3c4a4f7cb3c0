//! Credentials: argon2id password hashing (cost from configuration) and HS256 bearer tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, RECOMMENDED_SALT_LEN, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::{ApiError, Result};

/// Token lifetime; `expires_in` in the login response.
pub const TOKEN_TTL_SECS: u64 = 86_400;

/// argon2id cost. The default is OWASP's recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for Argon2Cost {
    fn default() -> Self {
        Self { m_cost_kib: 19_456, t_cost: 2, p_cost: 1 }
    }
}

/// How much password hashing may run at once, and how long a request waits for its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Hashes (and verifications) running at once; each holds one argon2 memory block.
    pub concurrency: usize,
    /// How long a request waits for a free slot before it is answered 503 (zero: never waits).
    pub wait: Duration,
}

impl HashLimits {
    /// The default wait, the same as the database pool's default acquire timeout: both are "the
    /// server is saturated" bounds.
    pub const DEFAULT_WAIT_MS: u64 = crate::config::DEFAULT_POOL_ACQUIRE_TIMEOUT_MS;

    /// One hash per CPU this process may run on (which honours `taskset`), the default wait.
    pub fn for_this_machine() -> Self {
        Self { concurrency: crate::config::usable_cpus(), wait: Duration::from_millis(Self::DEFAULT_WAIT_MS) }
    }
}

/// Hashes and verifies passwords on a bounded pool.
///
/// Why not `argon2`'s own `hash_password`/`verify_password` on tokio's blocking pool, as before:
/// each call allocated the cost's memory (19 MiB at OWASP's default) and nothing bounded how many
/// ran at once, so a burst of logins, unauthenticated ones included, took gigabytes; and glibc's
/// dynamic mmap threshold then kept those blocks in its arenas for the life of the process, so
/// "server peak memory" measured argon2 rather than the framework. Here at most `concurrency`
/// hashes run, each on one of at most `concurrency` reusable memory blocks (allocated on first
/// use), so hashing holds at most `concurrency` x the cost's memory, whatever the load; a request
/// that cannot get a slot within `wait` is answered 503 `unavailable` with `retry-after`.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<HasherInner>,
}

struct HasherInner {
    params: Params,
    /// Verified against when the email is unknown, so both failures cost the same time and a
    /// login does not reveal which emails are registered.
    dummy_hash: String,
    slots: Arc<Semaphore>,
    wait: Duration,
    /// Memory blocks not in use; never more than `slots` exist (one is taken with each permit).
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.inner.params)
            .field("wait", &self.inner.wait)
            .finish_non_exhaustive()
    }
}

/// Why hashing did not produce an answer.
const HASHING_BUSY: ApiError = ApiError::Unavailable("password hashing is at capacity: try again shortly");

impl PasswordHasher {
    pub fn new(cost: Argon2Cost, limits: HashLimits) -> Result<Self, String> {
        let params = Params::new(cost.m_cost_kib, cost.t_cost, cost.p_cost, None)
            .map_err(|e| format!("invalid argon2 cost {cost:?}: {e}"))?;
        if limits.concurrency == 0 {
            return Err("password hashing concurrency must be at least 1".into());
        }
        let mut memory = Vec::new();
        let dummy_hash = hash_with(&params, "taskbench-dummy-password", &mut memory).map_err(|e| e.to_string())?;
        Ok(Self {
            inner: Arc::new(HasherInner {
                params,
                dummy_hash,
                slots: Arc::new(Semaphore::new(limits.concurrency)),
                wait: limits.wait,
                // The block the dummy hash used is the first reusable one.
                memory: Arc::new(Mutex::new(vec![memory])),
            }),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=…`) of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String> {
        let params = self.inner.params.clone();
        self.run(move |memory| hash_with(&params, &password, memory)).await?
    }

    /// True when `password` matches `hash`; with `None` (unknown user) burns the same time and
    /// answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let inner = Arc::clone(&self.inner);
        self.run(move |memory| {
            let ok = verify_with(&password, hash.as_deref().unwrap_or(&inner.dummy_hash), memory);
            ok && hash.is_some()
        })
        .await
    }

    /// Runs `job` on the blocking pool with a slot and its memory block, or answers 503 when no
    /// slot frees up within the wait bound.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static) -> Result<T> {
        let slots = Arc::clone(&self.inner.slots);
        // `timeout` polls the acquire once before looking at the clock, so a zero wait still
        // takes a free slot.
        let permit = match tokio::time::timeout(self.inner.wait, slots.acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(HASHING_BUSY),
        };
        let pool = Arc::clone(&self.inner.memory);
        let keep = self.inner.params.block_count();
        let mut memory = lock(&pool).pop().unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            let out = job(&mut memory);
            // A stored hash made with a larger cost than the configured one needed more memory:
            // let it go rather than hold it, so the bound stays the configured cost's.
            if memory.len() > keep {
                memory = Vec::new();
            }
            lock(&pool).push(memory);
            drop(permit);
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing task failed: {e}")))
    }
}

/// The memory pool's lock; a panic while holding it (there is no code that can) would not make
/// the blocks unusable, so poisoning is ignored.
fn lock(pool: &Mutex<Vec<Vec<Block>>>) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
    pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Grows `memory` to what `params` needs (the configured cost, unless a stored hash was made with
/// a larger one).
fn blocks_for<'m>(params: &Params, memory: &'m mut Vec<Block>) -> &'m mut [Block] {
    let need = params.block_count();
    if memory.len() < need {
        memory.resize(need, Block::default());
    }
    &mut memory[..need]
}

fn hash_with(params: &Params, password: &str, memory: &mut Vec<Block>) -> Result<String> {
    let failed = |e: &dyn std::fmt::Display| ApiError::Internal(format!("argon2 hash failed: {e}"));
    let salt: [u8; RECOMMENDED_SALT_LEN] = rand::random();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks_for(params, memory))
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Verifies `password` against a PHC string with the parameters it records (as argon2's own
/// `verify_password` does), on `memory`. The final comparison is `Output`'s constant-time one.
fn verify_with(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let mut check = || -> Option<bool> {
        let phc = PasswordHash::new(hash).ok()?;
        let params = Params::try_from(&phc).ok()?;
        let algorithm = Algorithm::try_from(phc.algorithm.as_str()).ok()?;
        let version = phc.version.map_or(Some(Version::default()), |v| Version::try_from(v).ok())?;
        let (salt, expected) = (phc.salt?, phc.hash?);
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let out = buffer.get_mut(..expected.len())?;
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, out, blocks_for(&params, memory))
            .ok()?;
        Some(Output::new(out).ok()? == expected)
    };
    check().unwrap_or(false)
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iat: u64,
    exp: u64,
}

/// The caller proven by a valid bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Uuid,
}

/// HS256 signing and verification keys built once from the configured secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(HS256, secret hidden)")
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        // An expired token is expired: no grace period, so tests and clients see exact behaviour.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn issue(&self, user: Uuid) -> Result<String> {
        self.issue_at(user, jsonwebtoken::get_current_timestamp())
    }

    /// A token as if issued at `iat` (seconds since the epoch); tests use it to make expired ones.
    pub fn issue_at(&self, user: Uuid, iat: u64) -> Result<String> {
        let claims = Claims { sub: user, iat, exp: iat + TOKEN_TTL_SECS };
        jsonwebtoken::encode(&Header::default(), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("jwt encode failed: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<AuthUser> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(AuthUser { id: data.claims.sub }),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(ApiError::Unauthorized("bearer token has expired"))
            }
            Err(_) => Err(ApiError::Unauthorized("bearer token is invalid")),
        }
    }

    /// Authenticates an `authorization` header value (`None` when the header is absent).
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<AuthUser> {
        let header = header.ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let token = std::str::from_utf8(header)
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized("malformed authorization header: expected `Bearer <token>`"))?;
        self.verify(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let keys = JwtKeys::new(b"a-test-secret-that-is-long-enough");
        let user = Uuid::new_v4();
        let token = keys.issue(user).expect("issue");
        assert_eq!(keys.authenticate(Some(format!("Bearer {token}").as_bytes())).expect("valid").id, user);
        let other = JwtKeys::new(b"another-secret-entirely-different");
        assert!(other.verify(&token).is_err());
        let expired = keys.issue_at(user, 1_000).expect("issue");
        assert_eq!(keys.verify(&expired).expect_err("expired").to_string(), "bearer token has expired");
        assert!(keys.authenticate(None).is_err());
        assert!(keys.authenticate(Some(b"Basic abc")).is_err());
    }

    fn cheap(limits: HashLimits) -> PasswordHasher {
        PasswordHasher::new(Argon2Cost { m_cost_kib: 64, t_cost: 1, p_cost: 1 }, limits).expect("cost")
    }

    const ROOMY: HashLimits = HashLimits { concurrency: 2, wait: Duration::from_secs(10) };

    #[tokio::test]
    async fn passwords_verify_only_with_the_right_hash() {
        let hasher = cheap(ROOMY);
        let hash = hasher.hash("correct horse".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse".into(), Some(hash.clone())).await.expect("verify"));
        assert!(!hasher.verify("wrong".into(), Some(hash)).await.expect("verify"));
        assert!(!hasher.verify("taskbench-dummy-password".into(), None).await.expect("verify"));
        assert!(!hasher.verify("x".into(), Some("not a phc string".into())).await.expect("verify"));
    }

    /// Hashes stored before this hasher existed (argon2's own API, any cost) still verify, and
    /// argon2's own verifier accepts ours: the database's hashes stay valid either way.
    #[tokio::test]
    async fn hashes_are_interchangeable_with_argon2s_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(128, 2, 1, None).expect("params"))
            .hash_password(b"correct horse")
            .expect("their hash")
            .to_string();
        let hasher = cheap(ROOMY);
        assert!(hasher.verify("correct horse".into(), Some(theirs.clone())).await.expect("verify"));
        assert!(!hasher.verify("correct horsf".into(), Some(theirs)).await.expect("verify"));
        let ours = hasher.hash("battery staple".into()).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(Argon2::default().verify_password(b"battery staple", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"battery stapler", &parsed).is_err());
    }

    /// With every slot taken, a request waits at most the bound and is then told to come back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_answers_503_with_retry_after_after_the_wait() {
        let hasher = cheap(HashLimits { concurrency: 1, wait: Duration::from_millis(50) });
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holder = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(move |_| held.recv()).await })
        };
        // Until the holder has its slot, a verification could still take it: wait for that.
        while hasher.inner.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.verify("pw".into(), None).await.expect_err("no slot within the wait");
        assert_eq!((refused.status(), refused.code()), (503, "unavailable"));
        assert_eq!(refused.headers(), Some(("retry-after", "1")));
        release.send(()).expect("holder waiting");
        holder.await.expect("holder task").expect("holder ran").expect("released");
        assert!(!hasher.verify("pw".into(), None).await.expect("a free slot again"));
    }

    /// However many verifications arrive at once, no more memory blocks exist than slots.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_blocks_never_outnumber_the_slots() {
        let hasher = cheap(ROOMY);
        let hash = hasher.hash("pw".into()).await.expect("hash");
        let logins = (0..32).map(|i| {
            let (hasher, hash) = (hasher.clone(), hash.clone());
            tokio::spawn(async move { hasher.verify("pw".into(), (i % 2 == 0).then_some(hash)).await })
        });
        for (i, login) in logins.enumerate() {
            assert_eq!(login.await.expect("task").expect("verified"), i % 2 == 0);
        }
        let blocks = lock(&hasher.inner.memory);
        assert!((1..=2).contains(&blocks.len()), "{} blocks for 2 slots", blocks.len());
        assert!(blocks.iter().all(|b| b.len() == 64), "each block holds the configured 64 KiB");
    }

    #[test]
    fn no_slots_is_a_configuration_error() {
        let err = PasswordHasher::new(Argon2Cost::default(), HashLimits { concurrency: 0, wait: Duration::ZERO })
            .expect_err("zero slots");
        assert!(err.contains("at least 1"), "{err}");
    }
}
