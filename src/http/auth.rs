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
use super::AppState;

pub fn require_bearer(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let cfg = app.config();
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
        .and_then(bearer_token);
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

/// The token of an `Authorization: Bearer <token>` value. The scheme name is
/// case-insensitive (`Bearer`, `bearer`, `BEARER`), as for every HTTP
/// authentication scheme; the token is not.
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
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
    use super::{bearer_token, constant_time_eq};

    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_is_not() {
        fn check(value: &str, expected: Option<&str>) {
            assert_eq!(bearer_token(value), expected, "{value:?}");
        }
        check("Bearer s3cret", Some("s3cret"));
        check("bearer s3cret", Some("s3cret"));
        check("BEARER s3cret", Some("s3cret"));
        check("bEaReR\ts3cret", Some("s3cret"));
        check("Bearer   s3cret  ", Some("s3cret"));
        check("Bearer S3CRET", Some("S3CRET"));
        check("Bearer", None);
        check("Bearer ", None);
        check("Basic dXNlcjpwYXNz", None);
        check("Bearers3cret", None);
        check("", None);
    }

    #[test]
    fn compares_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
