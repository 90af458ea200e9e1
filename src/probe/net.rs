//! Pieces every probe shares: the TLS client configurations, the mapping from
//! a network error to a [`Reason`], certificate expiry, and the small
//! `Failure` value probes pass around before it becomes an [`Outcome`].

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;

use jiff::Timestamp;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::time::Instant;

use super::{Outcome, ProbeInitError, Reason};

/// A failed step of a probe: the reason label plus a short human text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub reason: Reason,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    /// Turns the failure into the run's outcome, stamping the latency now.
    pub fn into_outcome(self, start: Instant, cert_not_after: Option<i64>) -> Outcome {
        Outcome {
            reason: Some(self.reason),
            latency: start.elapsed(),
            cert_not_after,
            detail: self.detail,
        }
    }
}

/// The error our own resolver returns, so a DNS failure can be told apart from
/// a connect failure after it has travelled through reqwest and hyper.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve host {host}")]
pub(crate) struct ResolveFailure {
    pub host: String,
}

/// Walks an error chain and names the first cause we recognise.
///
/// `io::Error::source()` skips the error it wraps (it returns the *inner*
/// error's source), so wrapped errors are looked at explicitly: that is where
/// rustls and our resolver put theirs.
pub(crate) fn classify(err: &(dyn StdError + 'static)) -> Option<Failure> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(f) = classify_one(e) {
            return Some(f);
        }
        cur = e.source();
    }
    None
}

fn classify_one(e: &(dyn StdError + 'static)) -> Option<Failure> {
    if let Some(r) = e.downcast_ref::<ResolveFailure>() {
        return Some(Failure::new(Reason::Dns, r.to_string()));
    }
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        // An expired certificate is the very thing `cert` exists to catch;
        // reporting it as a generic TLS failure would hide it.
        if let rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. },
        ) = t
        {
            return Some(Failure::new(Reason::Cert, format!("tls: {t}")));
        }
        return Some(Failure::new(Reason::Tls, format!("tls: {t}")));
    }
    if let Some(io) = e.downcast_ref::<io::Error>() {
        if let Some(inner) = io.get_ref() {
            let inner: &(dyn StdError + 'static) = inner;
            if let Some(f) = classify(inner) {
                return Some(f);
            }
        }
        return Some(classify_io(io));
    }
    None
}

/// Whether an IO error is about this host rather than the target: the
/// process or the system ran out of descriptors (EMFILE, ENFILE), socket
/// buffers (ENOBUFS), memory (ENOMEM) or local addresses / ephemeral ports
/// (EADDRNOTAVAIL). A probe that meets one has learnt nothing about the
/// target, so the run becomes [`Reason::Local`] instead of a failure.
pub(crate) fn is_local(io: &io::Error) -> bool {
    use rustix::io::Errno;
    if io.kind() == io::ErrorKind::OutOfMemory {
        return true;
    }
    if let Some(inner) = io.get_ref().and_then(|e| e.downcast_ref::<io::Error>()) {
        return is_local(inner);
    }
    matches!(
        Errno::from_io_error(io),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM | Errno::ADDRNOTAVAIL)
    )
}

/// The failure for a local error (see [`is_local`]).
pub(crate) fn local(io: &io::Error) -> Failure {
    Failure::new(Reason::Local, format!("local error on this host: {io}"))
}

/// Maps a bare IO error kind to a reason.
pub(crate) fn classify_io(io: &io::Error) -> Failure {
    if is_local(io) {
        return local(io);
    }
    match io.kind() {
        io::ErrorKind::ConnectionRefused => Failure::new(Reason::Refused, "connection refused"),
        io::ErrorKind::TimedOut => Failure::new(Reason::Timeout, "timed out"),
        io::ErrorKind::InvalidData => Failure::new(Reason::Protocol, format!("invalid data: {io}")),
        io::ErrorKind::ConnectionReset => Failure::new(Reason::Network, "connection reset"),
        // The peer hung up in the middle of a message it had announced.
        io::ErrorKind::UnexpectedEof => {
            Failure::new(Reason::Protocol, "truncated: peer closed mid-message")
        }
        _ => Failure::new(Reason::Network, io.to_string()),
    }
}

/// Classifies an IO error that happened during a TLS handshake: anything that
/// is not clearly a lower-level network problem is a TLS failure (a plaintext
/// server answering our ClientHello, a peer hanging up mid-handshake, ...).
pub(crate) fn classify_handshake(io: &io::Error) -> Failure {
    let f = classify(io).unwrap_or_else(|| classify_io(io));
    match f.reason {
        Reason::Tls | Reason::Cert | Reason::Refused | Reason::Timeout | Reason::Local => f,
        _ => Failure::new(Reason::Tls, format!("tls handshake failed: {io}")),
    }
}

/// The notAfter of a DER certificate, in unix seconds.
pub(crate) fn cert_not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// `Some(detail)` when the certificate expires in fewer than `min_days` days.
pub(crate) fn cert_too_close(not_after: i64, min_days: u32, now: Timestamp) -> Option<String> {
    let left = not_after - now.as_second();
    if left >= i64::from(min_days) * 86_400 {
        return None;
    }
    if left < 0 {
        Some(format!(
            "certificate expired {} days ago",
            (-left).div_euclid(86_400)
        ))
    } else {
        Some(format!(
            "certificate expires in {} days (minimum {min_days})",
            left.div_euclid(86_400)
        ))
    }
}

/// The two TLS client configurations every TLS-speaking probe picks from.
#[derive(Debug, Clone)]
pub(crate) struct TlsConfigs {
    pub verify: Arc<ClientConfig>,
    pub no_verify: Arc<ClientConfig>,
}

impl TlsConfigs {
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> Result<Self, ProbeInitError> {
        // An explicit provider rather than the process default: the daemon
        // never has to install one, and there is no ambiguity when both ring
        // and aws-lc end up in the dependency tree.
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra_roots {
            roots.add(cert.clone()).map_err(ProbeInitError::Tls)?;
        }
        let verify = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(ProbeInitError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let no_verify = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(ProbeInitError::Tls)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth();

        Ok(Self {
            verify: Arc::new(verify),
            no_verify: Arc::new(no_verify),
        })
    }

    pub fn pick(&self, verify: bool) -> Arc<ClientConfig> {
        if verify {
            self.verify.clone()
        } else {
            self.no_verify.clone()
        }
    }
}

/// `tls_verify: false`: accept any certificate, but still check the handshake
/// signatures so the peer at least holds the key of what it presented.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(not_after: i64, min_days: u32, now: i64, expected: Option<&str>) {
        let now = Timestamp::from_second(now).unwrap();
        assert_eq!(
            cert_too_close(not_after, min_days, now).as_deref(),
            expected,
            "not_after={not_after} min_days={min_days}"
        );
    }

    #[test]
    fn cert_days_left_table() {
        let day = 86_400;
        check(100 * day, 14, 86 * day, None);
        check(
            100 * day,
            14,
            86 * day + 1,
            Some("certificate expires in 13 days (minimum 14)"),
        );
        check(
            100 * day,
            14,
            90 * day,
            Some("certificate expires in 10 days (minimum 14)"),
        );
        check(100 * day, 0, 100 * day, None);
        check(
            100 * day,
            0,
            100 * day + 1,
            Some("certificate expired 0 days ago"),
        );
        check(
            100 * day,
            14,
            103 * day,
            Some("certificate expired 3 days ago"),
        );
    }

    #[test]
    fn errors_map_to_reasons() {
        use io::ErrorKind::*;
        let tls = |e: rustls::CertificateError| {
            io::Error::new(InvalidData, rustls::Error::InvalidCertificate(e))
        };
        let cases: Vec<(io::Error, Reason, &str)> = vec![
            (
                io::Error::from(ConnectionRefused),
                Reason::Refused,
                "connection refused",
            ),
            (
                io::Error::from(ConnectionReset),
                Reason::Network,
                "connection reset",
            ),
            (io::Error::from(TimedOut), Reason::Timeout, "timed out"),
            (
                io::Error::from(UnexpectedEof),
                Reason::Protocol,
                "truncated: peer closed mid-message",
            ),
            (
                io::Error::from(NetworkUnreachable),
                Reason::Network,
                "network unreachable",
            ),
            (
                io::Error::from(HostUnreachable),
                Reason::Network,
                "host unreachable",
            ),
            (
                tls(rustls::CertificateError::UnknownIssuer),
                Reason::Tls,
                "tls: invalid peer certificate: UnknownIssuer",
            ),
            (
                tls(rustls::CertificateError::Expired),
                Reason::Cert,
                "tls: invalid peer certificate: Expired",
            ),
            (
                io::Error::other(ResolveFailure {
                    host: "x.invalid".into(),
                }),
                Reason::Dns,
                "cannot resolve host x.invalid",
            ),
        ];
        for (err, reason, detail) in cases {
            assert_eq!(
                classify(&err),
                Some(Failure::new(reason, detail)),
                "{err:?}"
            );
        }
    }

    #[test]
    fn errors_of_this_host_are_local_not_failures_of_the_target() {
        use rustix::io::Errno;
        let os = |e: Errno| io::Error::from_raw_os_error(e.raw_os_error());
        // (error, expected reason): the local ones first, then the target's.
        let cases: Vec<(io::Error, Reason)> = vec![
            (os(Errno::MFILE), Reason::Local),
            (os(Errno::NFILE), Reason::Local),
            (os(Errno::NOBUFS), Reason::Local),
            (os(Errno::NOMEM), Reason::Local),
            (os(Errno::ADDRNOTAVAIL), Reason::Local),
            (io::Error::from(io::ErrorKind::OutOfMemory), Reason::Local),
            // Wrapped the way hyper and reqwest wrap a socket error.
            (io::Error::other(os(Errno::MFILE)), Reason::Local),
            (os(Errno::CONNREFUSED), Reason::Refused),
            (os(Errno::CONNRESET), Reason::Network),
            (os(Errno::HOSTUNREACH), Reason::Network),
            (os(Errno::NETUNREACH), Reason::Network),
            (os(Errno::TIMEDOUT), Reason::Timeout),
            (os(Errno::ACCESS), Reason::Network),
        ];
        for (err, expected) in cases {
            let f = classify(&err).unwrap_or_else(|| classify_io(&err));
            assert_eq!(f.reason, expected, "{err:?}: {}", f.detail);
            assert_eq!(is_local(&err), expected == Reason::Local, "{err:?}");
            // A handshake that fails for lack of memory is no TLS failure.
            let h = classify_handshake(&err).reason;
            let expected_handshake = match expected {
                Reason::Local | Reason::Refused | Reason::Timeout => expected,
                _ => Reason::Tls,
            };
            assert_eq!(h, expected_handshake, "handshake {err:?}");
        }
        assert_eq!(
            classify_io(&os(Errno::MFILE)).detail,
            "local error on this host: Too many open files (os error 24)"
        );
    }
}
