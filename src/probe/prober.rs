//! [`Prober`]: the long-lived handle the scheduler runs checks through. It
//! owns what is expensive to build (TLS configurations, HTTP clients) so a
//! run only pays for its own connection.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
    /// A panic deep in a dependency (a parser meeting hostile bytes) is
    /// caught around each poll of the run and becomes an outcome instead of
    /// taking the scheduler down. The run stays on the caller's task (no
    /// task of its own per run: a spawn and a cross-task wake-up per probe
    /// are a measurable share of its cost); dropping the future stops it.
    pub async fn run(&self, check: &Check) -> Outcome {
        let start = Instant::now();
        match (CatchPanic(Box::pin(self.run_here(check, start)))).await {
            Some(outcome) => outcome,
            None => Outcome {
                // A panic is almost always input we failed to handle: the
                // peer's bytes. `protocol` is the closest closed reason.
                reason: Some(Reason::Protocol),
                latency: start.elapsed(),
                cert_not_after: None,
                detail: "probe panicked (a bug in sentinel)".to_string(),
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

/// Polls the inner future, turning a panic into `None`. A future that
/// panicked is never polled again.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Some(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }
}
