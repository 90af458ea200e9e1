//! Bearer-token check for write endpoints.
//!
//! The token lives in the environment variable named by
//! `server.api_token_env`. Without a configured (non-empty) token the write
//! endpoints are disabled (403), never open. Tokens are compared in constant
//! time (over SHA-256 digests, so the length does not leak either) and never
//! logged or echoed.

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

use super::ApiError;
use crate::daemon::Shared;

pub fn require_bearer(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let cfg = shared.config();
    let expected = cfg
        .server
        .api_token_env
        .as_deref()
        .and_then(|name| std::env::var(name).ok())
        .filter(|t| !t.is_empty());
    let Some(expected) = expected else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "write endpoints are disabled: set server.api_token_env and that environment variable",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid bearer token",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <token>` header",
        )),
    }
}

/// Compares digests so timing depends on neither content nor length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let da = Sha256::digest(a);
    let db = Sha256::digest(b);
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
