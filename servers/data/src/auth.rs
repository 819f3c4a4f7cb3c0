//! Credentials: argon2id password hashing (cost from configuration) and HS256 bearer tokens.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
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

/// Hashes and verifies passwords. Hashing is CPU-bound for tens of milliseconds, so callers run
/// it on the blocking pool, never on a request-serving thread.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// Verified against when the email is unknown, so both failures cost the same time and a
    /// login does not reveal which emails are registered.
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", self.argon2.params()).finish()
    }
}

impl PasswordHasher {
    pub fn new(cost: Argon2Cost) -> Result<Self, String> {
        let params = Params::new(cost.m_cost_kib, cost.t_cost, cost.p_cost, None)
            .map_err(|e| format!("invalid argon2 cost {cost:?}: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self { argon2, dummy_hash: String::new() };
        hasher.dummy_hash = hasher.hash("taskbench-dummy-password").map_err(|e| e.to_string())?;
        Ok(hasher)
    }

    pub fn hash(&self, password: &str) -> Result<String> {
        self.argon2
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2 hash failed: {e}")))
    }

    /// True when `password` matches `hash`; with `None` (unknown user) burns the same time and
    /// answers false.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let ok = self.argon2.verify_password(password.as_bytes(), hash.unwrap_or(&self.dummy_hash)).is_ok();
        ok && hash.is_some()
    }
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

    #[test]
    fn passwords_verify_only_with_the_right_hash() {
        let hasher = PasswordHasher::new(Argon2Cost { m_cost_kib: 64, t_cost: 1, p_cost: 1 }).expect("cost");
        let hash = hasher.hash("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse", Some(&hash)));
        assert!(!hasher.verify("wrong", Some(&hash)));
        assert!(!hasher.verify("taskbench-dummy-password", None));
    }
}
