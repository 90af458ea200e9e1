//! [`Prober`]: the long-lived handle the scheduler runs checks through. It
//! owns what is expensive to build (TLS configurations, HTTP clients) so a
//! run only pays for its own connection.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use tokio::time::Instant;

use super::http::HttpClients;
use super::net::TlsConfigs;
use super::{Outcome, Reason, dns, http, tcp};
use crate::clock::{Clock, SystemClock};
use crate::config::{Check, ProbeSpec};

/// Building a [`Prober`] failed; only happens at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ProbeInitError {
    #[error("building the TLS client configuration: {0}")]
    Tls(#[source] rustls::Error),
    #[error("building the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// Runs checks. Cheap to clone: clones share the clients.
#[derive(Clone)]
pub struct Prober {
    tls: TlsConfigs,
    http: HttpClients,
    /// Wall clock for certificate days-left; a manual clock in tests.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").finish_non_exhaustive()
    }
}

impl Prober {
    /// System clock, the webpki root certificates.
    pub fn new() -> Result<Prober, ProbeInitError> {
        Self::new_with(Arc::new(SystemClock), Vec::new())
    }

    /// Like [`Prober::new`] with another clock (tests pin certificate days-left).
    pub fn new_with_clock(clock: Arc<dyn Clock>) -> Result<Prober, ProbeInitError> {
        Self::new_with(clock, Vec::new())
    }

    /// The general constructor: `extra_roots` are trusted in addition to the
    /// webpki roots (a private CA; tests use it for a self-made CA).
    pub fn new_with(
        clock: Arc<dyn Clock>,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Result<Prober, ProbeInitError> {
        let tls = TlsConfigs::new(&extra_roots)?;
        let http = HttpClients::new(&tls)?;
        Ok(Prober { tls, http, clock })
    }

    /// Runs one check. Enforces `check.timeout` around everything (resolve,
    /// connect, TLS, request, body) → [`Reason::Timeout`].
    /// Never panics, never returns an error: every failure is an [`Outcome`].
    ///
    /// The run happens on its own task so that a panic deep in a dependency
    /// (a parser meeting hostile bytes) becomes an outcome instead of taking
    /// the scheduler down; dropping the returned future aborts that task.
    pub async fn run(&self, check: &Check) -> Outcome {
        self.run_shared(Arc::new(check.clone())).await
    }

    /// [`Self::run`] for a check the caller already shares: the daemon's
    /// scheduler holds every check in an `Arc`, so a run costs no copy of
    /// the check definition.
    pub async fn run_shared(&self, check: Arc<Check>) -> Outcome {
        let start = Instant::now();
        let this = self.clone();
        let task = tokio::spawn(async move { this.run_here(&check, start).await });
        let _abort = AbortOnDrop(task.abort_handle());
        match task.await {
            Ok(outcome) => outcome,
            Err(e) => Outcome {
                // A panic is almost always input we failed to handle: the
                // peer's bytes. `protocol` is the closest closed reason.
                reason: Some(if e.is_panic() {
                    Reason::Protocol
                } else {
                    Reason::Network
                }),
                latency: start.elapsed(),
                cert_not_after: None,
                detail: if e.is_panic() {
                    "probe panicked (a bug in sentinel)".to_string()
                } else {
                    "probe cancelled".to_string()
                },
            },
        }
    }

    /// The run itself, on the caller's task.
    async fn run_here(&self, check: &Check, start: Instant) -> Outcome {
        let clock = self.clock.as_ref();
        let probe = async {
            match &check.probe {
                ProbeSpec::Http(spec) => http::run(&self.http, spec, clock, start).await,
                ProbeSpec::Tcp(spec) => tcp::run_tcp(&self.tls, spec, clock, start).await,
                ProbeSpec::Tls(spec) => tcp::run_tls(&self.tls, spec, clock, start).await,
                ProbeSpec::Dns(spec) => dns::run(spec, start).await,
            }
        };
        match tokio::time::timeout(check.timeout, probe).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome {
                reason: Some(Reason::Timeout),
                latency: start.elapsed(),
                cert_not_after: None,
                detail: format!(
                    "no verdict within {}",
                    crate::config::duration::format(check.timeout)
                ),
            },
        }
    }
}

/// Aborts the probe task when the caller stops waiting for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
