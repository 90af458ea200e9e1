//! The HTTP server loop around the router, and its share of the process's
//! file descriptors.
//!
//! `axum::serve` has neither a header-read timeout nor a connection cap, so
//! idle or slow (slowloris) clients could hold descriptors until probes fail
//! for lack of them and `/metrics` stops answering. This loop adds both:
//!
//! - **Connection cap.** A semaphore of `max_connections` permits; one is
//!   taken *before* `accept`, so over the cap new connections wait in the
//!   kernel's listen backlog until one closes. Reaching the cap is logged
//!   (rate-limited) and visible as `sentinel_http_connections_open`.
//! - **Read timeout.** hyper's http1 header-read timeout: a client must send a
//!   complete request head within `read_timeout` of the server waiting for one,
//!   which is from the connect and again after every response, so the same
//!   timer closes idle keep-alive connections. Bodies have the same time (see
//!   `guard_body` in the parent module), and so does a client that stops
//!   reading a response: a write that makes no progress for `read_timeout`
//!   ends the connection (`stall.rs`).
//! - **Accept errors** (EMFILE when descriptors run out, ...) never end the
//!   loop: they are logged, rate-limited, and accepting resumes after a pause.
//! - **Graceful shutdown.** On cancel the listener closes; each connection
//!   finishes the request in flight and closes; `serve` returns once all have.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::stall::WriteStall;
use crate::throttle::Throttle;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Descriptors kept for the process itself: stdio, the runtime's epoll and
/// wakers, signal pipes, the listener, `/proc` reads for process metrics.
pub const RESERVED_BASE: u64 = 32;
/// Descriptors kept for the state store: the SQLite file, its WAL and shared
/// memory index, and temporary files.
pub const RESERVED_STORE: u64 = 8;
/// Descriptors kept per probe in flight (`server.max_concurrency`): its socket,
/// plus the resolver's socket or `/etc/hosts` while a name is looked up.
pub const RESERVED_PER_PROBE: u64 = 2;
/// Descriptors kept per notifier: its webhook connections.
pub const RESERVED_PER_NOTIFIER: u64 = 4;
/// The derived cap never goes below this, however low the limit: the
/// server must still answer `/healthz` and `/metrics`.
pub const MIN_CONNECTIONS: usize = 16;
/// The derived cap never goes above this: each open connection holds buffers,
/// and a monitoring daemon has few legitimate clients.
pub const MAX_DERIVED_CONNECTIONS: usize = 8192;

/// Pause after an accept error that is about this host (out of descriptors):
/// retrying at once would spin while nothing can change.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Repeated warnings (cap reached, accept failing) are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// How the process's descriptors are shared out, from `RLIMIT_NOFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorBudget {
    /// The soft `RLIMIT_NOFILE` (after raising it to the hard limit).
    pub limit: u64,
    /// Kept for probes, the store, notifiers and the process itself.
    pub reserved: u64,
    /// The connection cap the budget leaves for the HTTP server.
    pub connections: usize,
}

impl DescriptorBudget {
    /// The budget for a descriptor `limit`, `max_concurrency` probes in
    /// flight and `notifiers` notifiers.
    pub fn new(limit: u64, max_concurrency: usize, notifiers: usize) -> DescriptorBudget {
        let reserved = RESERVED_BASE
            + RESERVED_STORE
            + RESERVED_PER_PROBE.saturating_mul(max_concurrency as u64)
            + RESERVED_PER_NOTIFIER.saturating_mul(notifiers as u64);
        let left = usize::try_from(limit.saturating_sub(reserved)).unwrap_or(usize::MAX);
        DescriptorBudget {
            limit,
            reserved,
            connections: left.clamp(MIN_CONNECTIONS, MAX_DERIVED_CONNECTIONS),
        }
    }

    /// Whether everything reserved fits under the limit with the server's
    /// share on top; when not, probes may meet local errors under load.
    pub fn fits(&self, connections: usize) -> bool {
        self.reserved.saturating_add(connections as u64) <= self.limit
    }
}

/// Raises the soft descriptor limit to the hard one (what the administrator
/// allows; the soft default of 1024 is a relic of `select`, which nothing
/// here uses) and returns the soft limit in force. `u64::MAX` means
/// unlimited.
pub fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let current = lim.current.unwrap_or(u64::MAX);
    if let Some(max) = lim.maximum
        && max > current
    {
        let raised = rustix::process::Rlimit {
            current: Some(max),
            maximum: Some(max),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return max,
            Err(e) => {
                tracing::debug!(error = %e, "could not raise the soft descriptor limit");
            }
        }
    }
    current
}

/// Connections the kernel completes and queues for us beyond the ones
/// accepted (capped by `net.core.somaxconn`): over the connection cap,
/// clients wait here instead of retrying their SYNs after a second.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the server's listener with a backlog of [`LISTEN_BACKLOG`].
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restart may rebind at once while
    // connections of the previous process linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Limits of one server, fixed at start.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub read_timeout: Duration,
}

/// Open connections and the cap, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicU64,
    limit: AtomicU64,
}

impl ConnectionStats {
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }
}

/// Decrements the open-connection gauge however the connection task ends.
struct OpenGuard(Arc<ConnectionStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accept errors about one connection, not about the listener or this host:
/// the next accept may well succeed at once.
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

/// Serves `router` on `listener` until `shutdown`, then waits for the open
/// connections to finish their request in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    stats: Arc<ConnectionStats>,
    shutdown: CancellationToken,
) {
    let max = limits.max_connections.max(1);
    stats.limit.store(max as u64, Ordering::Relaxed);
    let permits = Arc::new(Semaphore::new(max));
    let tracker = TaskTracker::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .keep_alive(true);
    let mut cap_warning = Throttle::new(WARN_EVERY);
    let mut accept_warning = Throttle::new(WARN_EVERY);

    loop {
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if let Some(unlogged) = cap_warning.due() {
                    tracing::warn!(
                        max_connections = max,
                        not_logged_since_last = unlogged,
                        "HTTP connection cap reached: new connections wait until one closes (server.max_connections, server.read_timeout)"
                    );
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    p = Arc::clone(&permits).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) if per_connection(&e) => continue,
                Err(e) => {
                    if let Some(unlogged) = accept_warning.due() {
                        tracing::warn!(
                            error = %e,
                            not_logged_since_last = unlogged,
                            "HTTP server cannot accept connections; retrying"
                        );
                    }
                    // The permit goes back: nothing was accepted.
                    drop(permit);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    }
                }
            },
        };
        stats.open.fetch_add(1, Ordering::Relaxed);
        let guard = OpenGuard(Arc::clone(&stats));
        tracker.spawn(connection(
            stream,
            limits.read_timeout,
            router.clone(),
            builder.clone(),
            shutdown.clone(),
            permit,
            guard,
        ));
    }
    // Closing the listener first: clients that arrive now are refused at
    // once instead of waiting in a backlog nobody reads.
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

async fn connection(
    stream: TcpStream,
    write_stall: Duration,
    router: Router,
    builder: http1::Builder,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
    _open: OpenGuard,
) {
    // Small responses: do not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(WriteStall::new(stream, write_stall));
    let conn = builder.serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            // Finish the request in flight (if any), then close; an idle
            // connection closes at once, a slow one within the read timeout.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and clients hanging up are routine; not worth more.
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_budget_table() {
        fn check(limit: u64, probes: usize, notifiers: usize, reserved: u64, connections: usize) {
            let b = DescriptorBudget::new(limit, probes, notifiers);
            assert_eq!(
                (b.reserved, b.connections),
                (reserved, connections),
                "limit={limit} probes={probes} notifiers={notifiers}"
            );
        }
        // 32 + 8 + 2 × 1024 + 4 × 2 = 2096 reserved.
        check(20_000, 1024, 2, 2_096, 8_192);
        check(4_096, 1024, 2, 2_096, 2_000);
        check(65_536, 16, 0, 72, 8_192);
        // The soft default of many systems with the default concurrency:
        // nothing is left, the server keeps its floor.
        check(1_024, 1024, 0, 2_088, 16);
        check(u64::MAX, 1024, 0, 2_088, 8_192);
        check(0, 0, 0, 40, 16);
        assert!(DescriptorBudget::new(4_096, 1024, 2).fits(2_000));
        assert!(!DescriptorBudget::new(4_096, 1024, 2).fits(2_001));
        assert!(!DescriptorBudget::new(1_024, 1024, 0).fits(MIN_CONNECTIONS));
    }
}
