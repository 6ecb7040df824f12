//! Every response waits for the end of its request's body. A handler may answer without reading
//! all of it: a refusal on the headers (a wrong key), a multipart body that broke off, or a form
//! whose closing boundary was read while a chunked body's final `0\r\n\r\n` is still in flight
//! (Node's HTTP client often sends it in a later packet). hyper cannot reuse a connection
//! whose request body is unfinished, so it closes it, and a client still sending sees `EPIPE` or
//! a reset instead of the answer, or loses its next request on that keep-alive socket.
//!
//! [`finish_body`] lends the handler the body through a shared slot and, once the handler has
//! answered, reads and discards whatever is left (up to [`DRAIN_LIMIT`]) before the response
//! goes out. Past the limit, or when the body fails, the response says `Connection: close`.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::form::DRAIN_LIMIT;

/// The request body, where the handler reads it and this middleware can find it afterwards.
type Slot = Arc<Mutex<Option<Body>>>;

/// The handler's view of the body in the slot.
struct Lent(Slot);

impl Lent {
    fn with<T>(&self, f: impl FnOnce(Pin<&mut Body>) -> T, none: T) -> T {
        // A panic while the lock was held cannot leave a body half-polled in a way that
        // matters more than the panic itself; the slot is used as it is.
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_mut() {
            Some(body) => f(Pin::new(body)),
            None => none,
        }
    }
}

impl hyper::body::Body for Lent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.with(|body| body.poll_frame(cx), Poll::Ready(None))
    }

    fn is_end_stream(&self) -> bool {
        self.with(|body| body.is_end_stream(), true)
    }

    fn size_hint(&self) -> SizeHint {
        self.with(|body| body.size_hint(), SizeHint::with_exact(0))
    }
}

/// Middleware: runs the handler, then finishes reading the request body before answering.
pub(crate) async fn finish_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if hyper::body::Body::is_end_stream(&body) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let slot: Slot = Arc::new(Mutex::new(Some(body)));
    let mut response = next
        .run(Request::from_parts(parts, Body::new(Lent(slot.clone()))))
        .await;
    let rest = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(rest) = rest {
        if !drain(rest).await {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Reads `body` to its end, up to [`DRAIN_LIMIT`]; says whether it got there.
async fn drain(body: Body) -> bool {
    use futures_util::StreamExt as _;
    if hyper::body::Body::is_end_stream(&body) {
        return true;
    }
    let mut stream = body.into_data_stream();
    let mut drained = 0u64;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                drained += chunk.len() as u64;
                if drained > DRAIN_LIMIT {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}
