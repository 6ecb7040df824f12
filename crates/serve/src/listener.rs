//! The accept loop of `dropkey serve`: HTTP/1.1 on hyper, with the limits that keep slow or
//! idle clients from taking the server down.
//!
//! - **Header timeout.** A connection must deliver a complete request head within
//!   `header_timeout` of hyper starting to wait for it: after the connection opens and after each
//!   response (so it is also the keep-alive idle limit). An idle socket, a half-sent request line
//!   and headers trickled a byte at a time are all closed when it runs out. (The body has the
//!   same time again; `routes` answers 408 when it does not arrive.)
//! - **Write stall.** A client that stops reading (say, after pipelining thousands of requests)
//!   blocks the connection's writes and, with them, hyper's reading: no head is awaited, so the
//!   header timeout never runs. [`StallGuard`] fails a write that makes no progress for
//!   `header_timeout`, which ends the connection.
//! - **Connection cap.** A slot of a `max_connections` semaphore is taken *before* `accept`, so
//!   when every slot is busy new connections wait in the kernel's listen queue (and are served
//!   as soon as a slot frees, at the latest when the header timeout closes an idle one) instead
//!   of each taking a file descriptor. Connections already open keep being served, `/healthz`
//!   included.
//!
//! Shutdown: the cancellation token stops the loop, the listener is dropped (new connects are
//! refused), and every open connection is told to finish its request in flight and close.

use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::add_extension::AddExtension;

/// How long the loop pauses after an `accept` error that is not about one connection (out of
/// file descriptors, typically), so it does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Counts of open connections, shared with [`super::ServeHandle`].
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicUsize,
    peak: AtomicUsize,
}

impl ConnectionStats {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// The most connections that were open at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn opened(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Slot {
            stats: self.clone(),
            _permit: permit,
        }
    }
}

/// One connection's slot: counted open until dropped, then its permit goes back.
struct Slot {
    stats: Arc<ConnectionStats>,
    // Dropped after `drop` below has run, so the count falls before another connection can
    // take the permit: the open count never exceeds the cap, even for an instant.
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `cancel`, then waits for the open connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // Never closed; if it were, there would be nothing left to hand out.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_per_connection(&err) => continue,
                Err(err) => {
                    tracing::warn!("cannot accept connections: {err}; retrying (is max_connections above `ulimit -n`?)");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let slot = stats.opened(permit);
        let service = TowerToHyperService::new(AddExtension::new(
            router.clone(),
            ConnectInfo::<SocketAddr>(peer),
        ));
        let builder = builder.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            let _slot = slot;
            // Small JSON answers: send them now rather than waiting for Nagle.
            let _ = stream.set_nodelay(true);
            let io = TokioIo::new(StallGuard::new(stream, limits.header_timeout));
            let connection = builder.serve_connection(io, service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                // Timeouts, resets and malformed requests: the client's problem, not ours.
                tracing::debug!("connection from {peer} ended: {err}");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Errors that concern only the connection being accepted (it was reset or aborted before we
/// took it); the listener itself is fine.
fn is_per_connection(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// An I/O stream whose writes fail with `TimedOut` once one has made no progress for `limit`.
struct StallGuard<T> {
    inner: T,
    limit: Duration,
    /// Running while a write (or flush, or shutdown) is pending; cleared by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> StallGuard<T> {
    fn new(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes on a write-side poll's outcome; a `Pending` one starts (or checks) the clock.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let clock = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}
