//! The webhook receiver every delivery test posts to, and Standard Webhooks
//! signature verification written from the specification text, independent of
//! `sentinel::notify::webhook`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::servers::serve;

/// One request the receiver got, and the status it answered.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` ("" when absent).
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub authorization: String,
    /// The event type (`type` of a JSON body), "" when there is none.
    pub kind: String,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Hit {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the Standard Webhooks signature verifies under `secret`.
    pub fn verifies(&self, secret: &str) -> bool {
        verify(
            secret,
            &self.id,
            &self.timestamp,
            &self.body,
            &self.signature,
        )
    }
}

/// Records every request on any path and answers, in this order: the next
/// status of the script, the status set for the path, the default status
/// (200 unless changed). A 3xx carries the configured `Location`.
#[derive(Debug)]
pub struct Receiver {
    hits: Mutex<Vec<Hit>>,
    script: Mutex<VecDeque<u16>>,
    by_path: Mutex<HashMap<String, u16>>,
    default: Mutex<u16>,
    location: Mutex<String>,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver {
            hits: Mutex::default(),
            script: Mutex::default(),
            by_path: Mutex::default(),
            default: Mutex::new(200),
            location: Mutex::default(),
        }
    }
}

impl Receiver {
    /// A receiver answering 200 to everything, on `127.0.0.1:0`.
    pub async fn start() -> (Arc<Receiver>, SocketAddr) {
        Receiver::scripted(Vec::new()).await
    }

    /// A receiver answering the statuses of `script` in turn, then 200.
    pub async fn scripted(script: Vec<u16>) -> (Arc<Receiver>, SocketAddr) {
        let r = Arc::new(Receiver::default());
        r.script.lock().unwrap().extend(script);
        let app = Router::new().fallback(hook).with_state(Arc::clone(&r));
        (r, serve(app).await)
    }

    /// Answer `status` on `path` from now on.
    pub fn set_status(&self, path: &str, status: u16) {
        self.by_path
            .lock()
            .unwrap()
            .insert(path.to_string(), status);
    }

    /// Answer `status` on every path without a status of its own.
    pub fn set_default_status(&self, status: u16) {
        *self.default.lock().unwrap() = status;
    }

    /// The `Location` of 3xx answers.
    pub fn set_location(&self, location: &str) {
        *self.location.lock().unwrap() = location.to_string();
    }

    /// Every request so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The requests answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(Hit::delivered).collect()
    }

    /// `webhook-id`s of every request, in arrival order.
    pub fn ids(&self) -> Vec<String> {
        self.hits().into_iter().map(|h| h.id).collect()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.hits.lock().unwrap().clear();
    }

    pub fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

async fn hook(
    State(r): State<Arc<Receiver>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let status = {
        let scripted = r.script.lock().unwrap().pop_front();
        let by_path = r.by_path.lock().unwrap().get(&path).copied();
        scripted.or(by_path).unwrap_or(*r.default.lock().unwrap())
    };
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    r.hits.lock().unwrap().push(Hit {
        method: method.to_string(),
        path,
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        authorization: h("authorization"),
        kind: serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string))
            .unwrap_or_default(),
        body: body.to_vec(),
        status,
    });
    let code = StatusCode::from_u16(status).unwrap();
    if code.is_redirection() {
        let loc = r.location.lock().unwrap().clone();
        (code, [(header::LOCATION, loc)]).into_response()
    } else {
        code.into_response()
    }
}

/// Standard Webhooks verification, written from the specification: the key
/// is the base64-decoded part of `whsec_<base64>`; the signed content is
/// `{msg_id}.{timestamp}.{body}`; the signature is base64(HMAC-SHA256(key,
/// content)); the header holds space-separated `v1,<signature>` entries, of
/// which one must match.
pub fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .any(|s| s.split_once(',') == Some(("v1", expected.as_str())))
}
