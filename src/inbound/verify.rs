//! Each provider's signature or credential scheme, checked in constant time.
//!
//! - PagerDuty v3: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256(secret, raw
//!   body)>`, several comma-separated while a secret rotates; one match is
//!   enough.
//! - Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret,
//!   "v0:{X-Slack-Request-Timestamp}:{raw body}")>`; a timestamp more than
//!   [`SLACK_MAX_AGE_SECS`] away from now is a replay.
//! - Jira: `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
//! - Opsgenie, ServiceNow: `Authorization: Bearer <token>`, or basic auth
//!   whose password is the token (the user name is not checked).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Slack requests signed further than this from now (either way) are refused.
pub const SLACK_MAX_AGE_SECS: i64 = 300;

/// Why a request's signature or credential is refused (answered 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing `{0}` header")]
    Missing(&'static str),
    #[error("malformed `{0}` header")]
    Malformed(&'static str),
    #[error("signature does not match")]
    BadSignature,
    #[error("invalid credential")]
    BadCredential,
    #[error(
        "request timestamp is {age_secs} s away from now (more than {SLACK_MAX_AGE_SECS} s): refused as a replay"
    )]
    Stale { age_secs: i64 },
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// Lower- or upper-case hex to bytes; `None` when it is not hex.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Whether `hex_tag` is the HMAC-SHA256 of `parts` (concatenated) under
/// `secret`, compared in constant time.
fn hmac_matches(secret: &[u8], parts: &[&[u8]], hex_tag: &str) -> bool {
    let Some(tag) = unhex(hex_tag.trim()) else {
        return false;
    };
    let mut m = mac(secret);
    for p in parts {
        m.update(p);
    }
    m.verify_slice(&tag).is_ok()
}

/// PagerDuty v3 webhooks (`X-PagerDuty-Signature`).
pub fn pagerduty(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), AuthError> {
    const H: &str = "X-PagerDuty-Signature";
    let header = header.ok_or(AuthError::Missing(H))?;
    let mut any = false;
    let mut ok = false;
    for sig in header.split(',') {
        if let Some(hex) = sig.trim().strip_prefix("v1=") {
            any = true;
            // Every candidate is checked, so timing does not say which matched.
            ok |= hmac_matches(secret.as_bytes(), &[body], hex);
        }
    }
    match (any, ok) {
        (false, _) => Err(AuthError::Malformed(H)),
        (true, false) => Err(AuthError::BadSignature),
        (true, true) => Ok(()),
    }
}

/// Slack request signing; `now` in unix seconds.
pub fn slack(
    signing_secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), AuthError> {
    const TS: &str = "X-Slack-Request-Timestamp";
    const SIG: &str = "X-Slack-Signature";
    let ts_text = timestamp.ok_or(AuthError::Missing(TS))?.trim();
    let sig = signature.ok_or(AuthError::Missing(SIG))?;
    let ts: i64 = ts_text.parse().map_err(|_| AuthError::Malformed(TS))?;
    let age = now.saturating_sub(ts);
    if age.saturating_abs() > SLACK_MAX_AGE_SECS {
        return Err(AuthError::Stale { age_secs: age });
    }
    let hex = sig
        .trim()
        .strip_prefix("v0=")
        .ok_or(AuthError::Malformed(SIG))?;
    let base = format!("v0:{ts_text}:");
    if hmac_matches(signing_secret.as_bytes(), &[base.as_bytes(), body], hex) {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

/// Jira (and any WebSub-style sender): `X-Hub-Signature: sha256=<hex>`.
pub fn hub(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), AuthError> {
    const H: &str = "X-Hub-Signature";
    let header = header.ok_or(AuthError::Missing(H))?;
    let (method, hex) = header
        .trim()
        .split_once('=')
        .ok_or(AuthError::Malformed(H))?;
    if !method.eq_ignore_ascii_case("sha256") {
        return Err(AuthError::Malformed(H));
    }
    if hmac_matches(secret.as_bytes(), &[body], hex) {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

/// `Authorization: Bearer <token>` or `Basic base64(user:token)`.
pub fn token(expected: &str, authorization: Option<&str>) -> Result<(), AuthError> {
    const H: &str = "Authorization";
    let value = authorization.ok_or(AuthError::Missing(H))?.trim();
    let (scheme, rest) = value
        .split_once([' ', '\t'])
        .ok_or(AuthError::Malformed(H))?;
    let rest = rest.trim();
    let given = if scheme.eq_ignore_ascii_case("bearer") {
        rest.as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).map_err(|_| AuthError::Malformed(H))?;
        let colon = decoded
            .iter()
            .position(|b| *b == b':')
            .ok_or(AuthError::Malformed(H))?;
        decoded[colon + 1..].to_vec()
    } else {
        return Err(AuthError::Malformed(H));
    };
    if !given.is_empty() && constant_time_eq(&given, expected.as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::BadCredential)
    }
}

/// Compares digests, so timing depends on neither content nor length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sign(secret: &str, msg: &[u8]) -> String {
        let mut m = mac(secret.as_bytes());
        m.update(msg);
        hex(&m.finalize().into_bytes())
    }

    #[test]
    fn pagerduty_accepts_any_listed_v1_signature() {
        let body = br#"{"event":{"id":"01"}}"#;
        let good = format!("v1={}", sign("s3cret", body));
        let other = format!("v1={}", sign("old-secret", body));
        let check = |header: Option<&str>, expected: Result<(), AuthError>| {
            assert_eq!(pagerduty("s3cret", header, body), expected, "{header:?}");
        };
        check(Some(&good), Ok(()));
        check(Some(&format!("{other},{good}")), Ok(()));
        check(
            Some(&format!(
                "{other}, {}",
                good.to_uppercase().replace("V1=", "v1=")
            )),
            Ok(()),
        );
        check(Some(&other), Err(AuthError::BadSignature));
        check(Some("v1=zz"), Err(AuthError::BadSignature));
        check(
            Some("v0=abcd"),
            Err(AuthError::Malformed("X-PagerDuty-Signature")),
        );
        check(None, Err(AuthError::Missing("X-PagerDuty-Signature")));
        assert_eq!(
            pagerduty("s3cret", Some(&good), br#"{"event":{"id":"02"}}"#),
            Err(AuthError::BadSignature)
        );
    }

    /// The example of Slack's "Verifying requests from Slack" page.
    #[test]
    fn slack_matches_the_published_example_and_refuses_old_timestamps() {
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let ts = 1_531_420_618;
        assert_eq!(
            slack(secret, Some("1531420618"), Some(sig), body, ts),
            Ok(())
        );
        assert_eq!(
            slack(secret, Some("1531420618"), Some(sig), body, ts + 300),
            Ok(())
        );
        assert_eq!(
            slack(secret, Some("1531420618"), Some(sig), body, ts + 301),
            Err(AuthError::Stale { age_secs: 301 })
        );
        assert_eq!(
            slack(secret, Some("1531420618"), Some(sig), body, ts - 301),
            Err(AuthError::Stale { age_secs: -301 })
        );
        assert_eq!(
            slack("other", Some("1531420618"), Some(sig), body, ts),
            Err(AuthError::BadSignature)
        );
        // The timestamp is part of what is signed.
        assert_eq!(
            slack(secret, Some("1531420619"), Some(sig), body, ts),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            slack(secret, None, Some(sig), body, ts),
            Err(AuthError::Missing("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            slack(secret, Some("soon"), Some(sig), body, ts),
            Err(AuthError::Malformed("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            slack(secret, Some("1531420618"), None, body, ts),
            Err(AuthError::Missing("X-Slack-Signature"))
        );
    }

    #[test]
    fn hub_signature_is_sha256_of_the_body() {
        let body = br#"{"webhookEvent":"jira:issue_updated"}"#;
        let sig = format!("sha256={}", sign("jira-secret", body));
        assert_eq!(hub("jira-secret", Some(&sig), body), Ok(()));
        assert_eq!(hub("other", Some(&sig), body), Err(AuthError::BadSignature));
        assert_eq!(
            hub("jira-secret", Some(&sig.replace("sha256", "sha1")), body),
            Err(AuthError::Malformed("X-Hub-Signature"))
        );
        assert_eq!(
            hub("jira-secret", None, body),
            Err(AuthError::Missing("X-Hub-Signature"))
        );
    }

    #[test]
    fn tokens_come_as_bearer_or_as_the_basic_password() {
        let basic = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        let check = |header: Option<&str>, expected: Result<(), AuthError>| {
            assert_eq!(token("t0ken", header), expected, "{header:?}");
        };
        check(Some("Bearer t0ken"), Ok(()));
        check(Some("bearer   t0ken "), Ok(()));
        check(Some(&basic("opsgenie", "t0ken")), Ok(()));
        check(Some(&basic("", "t0ken")), Ok(()));
        check(Some("Bearer t0keN"), Err(AuthError::BadCredential));
        check(Some(&basic("t0ken", "")), Err(AuthError::BadCredential));
        check(
            Some("Basic !!!"),
            Err(AuthError::Malformed("Authorization")),
        );
        check(
            Some("GenieKey t0ken"),
            Err(AuthError::Malformed("Authorization")),
        );
        check(None, Err(AuthError::Missing("Authorization")));
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn flip(body: &[u8], at: usize) -> Vec<u8> {
            let mut b = body.to_vec();
            let i = at % b.len();
            b[i] ^= 0x01;
            b
        }

        proptest! {
            /// What the provider signs verifies; any changed byte of the body
            /// does not.
            #[test]
            fn pagerduty_and_hub_accept_their_own_signature_and_nothing_else(
                secret in "[ -~]{0,40}",
                body in proptest::collection::vec(any::<u8>(), 1..300),
                at in any::<usize>(),
            ) {
                let tag = sign(&secret, &body);
                let pd = format!("v1={tag}");
                prop_assert_eq!(pagerduty(&secret, Some(&pd), &body), Ok(()));
                prop_assert_eq!(
                    pagerduty(&secret, Some(&pd), &flip(&body, at)),
                    Err(AuthError::BadSignature)
                );
                let hub_header = format!("sha256={tag}");
                prop_assert_eq!(hub(&secret, Some(&hub_header), &body), Ok(()));
                prop_assert_eq!(
                    hub(&secret, Some(&hub_header), &flip(&body, at)),
                    Err(AuthError::BadSignature)
                );
            }

            /// A Slack request verifies exactly while its timestamp is within
            /// five minutes of now, either way.
            #[test]
            fn slack_verifies_exactly_inside_the_window(
                secret in "[ -~]{1,40}",
                body in proptest::collection::vec(any::<u8>(), 0..300),
                ts in 1_000_000_000i64..2_000_000_000,
                skew in -1_000i64..1_000,
            ) {
                let mut msg = format!("v0:{ts}:").into_bytes();
                msg.extend_from_slice(&body);
                let sig = format!("v0={}", sign(&secret, &msg));
                let got = slack(&secret, Some(&ts.to_string()), Some(&sig), &body, ts + skew);
                if skew.abs() <= SLACK_MAX_AGE_SECS {
                    prop_assert_eq!(got, Ok(()));
                } else {
                    prop_assert_eq!(got, Err(AuthError::Stale { age_secs: skew }));
                }
            }

            /// The token is accepted as bearer or as any user's basic
            /// password, and any other token is refused.
            #[test]
            fn tokens_match_only_themselves(
                expected in "[!-~]{1,40}",
                other in "[!-~]{1,40}",
                user in "[a-z]{0,12}",
            ) {
                let basic = |p: &str| format!("Basic {}", STANDARD.encode(format!("{user}:{p}")));
                prop_assert_eq!(token(&expected, Some(&format!("Bearer {expected}"))), Ok(()));
                prop_assert_eq!(token(&expected, Some(&basic(&expected))), Ok(()));
                if other != expected {
                    prop_assert_eq!(
                        token(&expected, Some(&format!("Bearer {other}"))),
                        Err(AuthError::BadCredential)
                    );
                    prop_assert_eq!(
                        token(&expected, Some(&basic(&other))),
                        Err(AuthError::BadCredential)
                    );
                }
            }
        }
    }
}
