//! Probes: the IO that checks a service. `http`, `tcp`, `dns`, `tls`.
//!
//! Architecture invariant: a probe never panics and never returns an error to
//! the scheduler. Every failure becomes an [`Outcome`] with a [`Reason`] from a
//! small closed set (it is a metric label). Free text goes to `detail`, which is
//! logged but never becomes a label.
//!
//! One outcome is not a verdict: [`Reason::Local`] means this host could not
//! run the probe (out of descriptors, memory, socket buffers or ephemeral
//! ports). The target was never asked, so such a run counts toward nothing
//! but `sentinel_check_local_errors_total`.

use std::time::Duration;

mod dns;
mod http;
mod http1;
pub mod jsonpath;
mod net;
mod prober;
mod tcp;

pub use prober::{ProbeInitError, Prober};

/// Why a run was bad. Closed set: these are metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The run did not finish within the check's timeout.
    Timeout,
    /// Connection refused / reset before anything useful happened.
    Refused,
    /// Name resolution failed (the target's host name), or a DNS probe got
    /// NXDOMAIN/SERVFAIL/unexpected answers.
    Dns,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// HTTP status not in the expected list.
    Status,
    /// Body (or TCP reply) did not match substring / regex / JSON path.
    Body,
    /// Finished, but slower than `max_latency`.
    Latency,
    /// Certificate expires sooner than `cert_min_days`.
    Cert,
    /// The peer spoke something we could not parse (garbage, truncated, too large).
    Protocol,
    /// Other network errors (unreachable, reset mid-way, ...).
    Network,
    /// Not a failure of the target: this host could not run the probe
    /// (EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL). Not in [`Reason::ALL`]:
    /// such a run is not a bad run, so it is never a `reason` label of
    /// `sentinel_check_failures_total`, and it never reaches the SLO engine.
    Local,
}

impl Reason {
    /// Every reason a run can be bad (declaration order; [`Reason::Local`]
    /// is not one).
    pub const ALL: [Reason; 10] = [
        Reason::Timeout,
        Reason::Refused,
        Reason::Dns,
        Reason::Tls,
        Reason::Status,
        Reason::Body,
        Reason::Latency,
        Reason::Cert,
        Reason::Protocol,
        Reason::Network,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Refused => "refused",
            Reason::Dns => "dns",
            Reason::Tls => "tls",
            Reason::Status => "status",
            Reason::Body => "body",
            Reason::Latency => "latency",
            Reason::Cert => "cert",
            Reason::Protocol => "protocol",
            Reason::Network => "network",
            Reason::Local => "local",
        }
    }
}

/// The result of one run of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `None` means good.
    pub reason: Option<Reason>,
    /// Wall time from start of the run to the verdict (connect + TLS + request + body).
    pub latency: Duration,
    /// Certificate notAfter (unix seconds) of the leaf certificate, when TLS was used.
    pub cert_not_after: Option<i64>,
    /// Human-readable explanation for logs and the API; never a metric label.
    pub detail: String,
}

impl Outcome {
    pub fn good(&self) -> bool {
        self.reason.is_none()
    }

    /// The run could not happen for a reason of this host (see
    /// [`Reason::Local`]): it has no verdict about the target.
    pub fn is_local(&self) -> bool {
        self.reason == Some(Reason::Local)
    }
}
