//! Every request body is read to its end before the response goes out, so a keep-alive
//! connection stays usable.
//!
//! hyper keeps a connection open after a response only if the request body was read to its
//! end; otherwise it tries one non-blocking read and, finding nothing, closes the connection
//! after the response, without saying so in a `Connection: close` header. Handlers stop reading
//! early in ordinary cases: a multipart parser stops at the closing boundary, but a chunked body
//! ends with `0\r\n\r\n`, which Node's HTTP client (the Cloudinary SDK, fetch, axios) often sends
//! in a later packet; and a request refused before its body is read leaves all of it unread.
//! The client then writes its next request into a closed socket (`write EPIPE`). So this
//! middleware hands the handler a body that gives itself back when dropped, and reads whatever
//! is left, up to [`DRAIN_LIMIT`] bytes within [`DRAIN_TIME`], before answering. A body longer
//! or slower than that gets the answer with `Connection: close`, which the client understands.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt as _;
use hyper::body::{Frame, SizeHint};
use tokio::sync::oneshot;

use super::form::DRAIN_LIMIT;

/// How long the rest of a body may take to arrive before the answer goes out without it.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request body as handlers see it: the real one, sent back to [`read_to_end`] when the
/// handler drops it unfinished.
struct ReturnedOnDrop {
    inner: Option<Body>,
    back: Option<oneshot::Sender<Unread>>,
    /// Whether the handler ever asked for the body.
    polled: bool,
}

/// What the handler left of a body.
struct Unread {
    body: Body,
    polled: bool,
}

impl HttpBody for ReturnedOnDrop {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.polled = true;
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for ReturnedOnDrop {
    fn drop(&mut self) {
        if let (Some(body), Some(back)) = (self.inner.take(), self.back.take()) {
            if !body.is_end_stream() {
                // Nobody waiting means the middleware has already answered; nothing to do.
                let _ = back.send(Unread {
                    body,
                    polled: self.polled,
                });
            }
        }
    }
}

/// The middleware: runs the handler, then reads what it left of the body.
pub(crate) async fn read_to_end(req: Request, next: Next) -> Response {
    // A client that sent `Expect: 100-continue` has not sent the body yet: if the handler
    // answered without asking for it, reading it now would invite the whole upload only to
    // throw it away. hyper then closes the connection, and the header says so.
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (back, mut returned) = oneshot::channel();
    let req = req.map(|body| {
        Body::new(ReturnedOnDrop {
            inner: Some(body),
            back: Some(back),
            polled: false,
        })
    });
    let mut response = next.run(req).await;
    // Empty: the handler still holds the body somewhere (then it is not ours to read); closed:
    // it was read to the end.
    if let Ok(rest) = returned.try_recv() {
        let never_sent = expects_continue && !rest.polled;
        if never_sent || !drain(rest.body).await {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Reads and discards `body`; false when it did not end within the limits.
async fn drain(body: Body) -> bool {
    let mut stream = body.into_data_stream();
    let read_all = async {
        let mut read = 0u64;
        loop {
            match stream.next().await {
                None => return true,
                Some(Ok(data)) => {
                    read += data.len() as u64;
                    if read > DRAIN_LIMIT {
                        return false;
                    }
                }
                Some(Err(_)) => return false,
            }
        }
    };
    tokio::time::timeout(DRAIN_TIME, read_all)
        .await
        .unwrap_or(false)
}
