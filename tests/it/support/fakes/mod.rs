//! Strict local fakes of the SaaS APIs sentinel talks to, for tests.
//!
//! Part of the integration-test harness: `use crate::support::fakes;` from a
//! test module. Every fake binds `127.0.0.1:0`, implements the
//! documented subset sentinel uses, and refuses what the real service would
//! refuse (auth, required fields, content type) with that service's status
//! code and error body shape. Each module's doc cites the pages it follows and
//! says where it had to choose.
//!
//! # Layout
//!
//! - [`server`]: the shared HTTP core: request log, rejection log with reasons,
//!   fault injection ([`Fault`]: error statuses, commit-then-drop, hangs, slow
//!   answers), deterministic ids.
//! - [`servicenow`]: Table API (`/api/now/table/{table}`), incident states and
//!   the resolution data policy; plus the outbound REST message a ServiceNow
//!   admin configures to tell sentinel about state changes.
//! - [`jira`]: Jira Cloud REST v3 issues, ADF, JQL search (`/search/jql`),
//!   comments, workflow transitions; plus the signed `jira:issue_updated` webhook.
//! - [`opsgenie`]: Alert API v2 with asynchronous request processing and alias
//!   de-duplication; plus the outgoing webhook integration's payload.
//! - [`pagerduty`]: Events API v2 (`/v2/enqueue`) with per-dedup-key alert
//!   state; plus signed v3 webhooks.
//! - [`slack`]: incoming webhooks and a `response_url` receiver; plus signed
//!   interactive (`block_actions`) requests.
//!
//! The "signed senders" build what a provider POSTs to sentinel's inbound
//! hooks as a [`HookRequest`]; `send` delivers it with any reqwest client.
//!
//! Time: fakes read a [`sentinel::clock::Clock`] (a [`ManualClock`] at
//! [`START`] by default), so record timestamps are exact in assertions.
//!
//! Rejection reasons starting with `[fake]` mark strictness the real service
//! does not have (or that the fake does not implement); every other reason is
//! something the real service refuses too.
//!
//! ```text
//! let snow = fakes::servicenow::ServiceNow::start(Default::default()).await;
//! // The next create is committed, then the connection closes unanswered.
//! snow.inject_on(Match::request("POST", "/api/now/table/incident"), Fault::CommitThenDrop, 1);
//! // ... point sentinel's servicenow notifier `url` at snow.base_url(), open an incident ...
//! assert_eq!(snow.by_correlation_id("incident", &incident_id).len(), 1);
//! assert!(snow.rejections().is_empty(), "{:?}", snow.rejections());
//! ```

// Each test file uses a different part of the fakes.
#![allow(dead_code, unused_imports)]

pub mod jira;
pub mod opsgenie;
pub mod pagerduty;
pub mod server;
pub mod servicenow;
pub mod slack;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::Sha256;

pub use sentinel::clock::{Clock, ManualClock};
pub use server::{Fault, Logged, Match, Rejection, Request, Response, Server};

/// The default fake clock start: 2026-01-15T09:00:00Z.
pub const START: i64 = 1_768_467_600;

/// A manual clock at [`START`], shared by a fake and whatever else the test
/// hands it to.
pub fn default_clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(
        Timestamp::from_second(START).unwrap_or(Timestamp::UNIX_EPOCH),
    ))
}

/// HMAC-SHA256 of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex HMAC-SHA256.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    server::hex(&hmac_sha256(key, msg))
}

/// A request a provider sends to one of sentinel's inbound hooks: always a
/// `POST`, headers and body exactly as the provider would send them.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Replaces (or adds) a header: for tampering tests.
    pub fn with_header(mut self, name: &str, value: &str) -> HookRequest {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Removes a header: for "missing signature" tests.
    pub fn without_header(mut self, name: &str) -> HookRequest {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }

    /// Replaces the body, keeping the (now stale) signature headers.
    pub fn with_body(mut self, body: &[u8]) -> HookRequest {
        self.body = body.to_vec();
        self
    }

    /// POSTs the request to `url`.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        url: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = client.post(url).body(self.body.clone());
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req.send().await
    }
}
