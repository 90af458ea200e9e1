//! Generic JSON webhook, signed per the Standard Webhooks specification.
//!
//! Body: the [`Event`] JSON itself. Headers: `webhook-id` (the event id, the
//! same on every retry so receivers can drop duplicates), `webhook-timestamp`
//! (unix seconds of this attempt) and, when a secret is configured,
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
//!
//! The secret is written `whsec_<base64>`; the key is the decoded part. A
//! secret without the prefix is used as raw bytes (what most receivers do when
//! an operator pastes a plain shared secret); documented in `docs/webhooks.md`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::Sha256;

use super::{Event, NotifyError, PreparedRequest};

/// The HMAC key. `Debug` hides it.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Parse a configured secret (`whsec_<base64>` or raw).
    pub fn parse(notifier: &str, var: &str, secret: &str) -> Result<Self, NotifyError> {
        match secret.strip_prefix("whsec_") {
            Some(b64) => {
                STANDARD
                    .decode(b64.trim())
                    .map(SigningKey)
                    .map_err(|_| NotifyError::BadSecret {
                        notifier: notifier.to_string(),
                        var: var.to_string(),
                    })
            }
            None => Ok(SigningKey(secret.as_bytes().to_vec())),
        }
    }

    /// `v1,<base64 signature>` of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length, so construction cannot fail; an
        // empty key still yields a (useless but well-formed) signature.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return "v1,".to_string(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

pub(super) fn build(
    url: url::Url,
    event: &Event,
    key: Option<&SigningKey>,
    now: Timestamp,
    timeout: Duration,
) -> Result<PreparedRequest, NotifyError> {
    let body = serde_json::to_vec(event)?;
    let ts = now.as_second();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("webhook-id".to_string(), event.id.clone()),
        ("webhook-timestamp".to_string(), ts.to_string()),
    ];
    if let Some(k) = key {
        headers.push((
            "webhook-signature".to_string(),
            k.sign(&event.id, ts, &body),
        ));
    }
    Ok(PreparedRequest {
        url,
        headers,
        body,
        timeout,
    })
}
