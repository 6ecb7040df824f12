//! Request bodies streamed from disk.
//!
//! Frames are large (1 MiB: each one is one write to the socket) and are read with plain
//! blocking reads, never through `tokio::fs`, whose blocking-pool hop per read made uploads a
//! tenth of curl's speed here (`shared/tech-notes.md`). Two ways to read them:
//! - On a multi-threaded runtime (the CLI's and the app's), each frame is read when the
//!   connection asks for it, on the worker that then writes it to the socket, inside
//!   `block_in_place` so that a slow disk holds up no other task. The bytes go from the page
//!   cache to the socket on one core while they are still in its cache: measured with
//!   `bench/upload.sh`, this client then spends less CPU per GiB than a reader thread handing
//!   frames to the worker (0.41-0.45 against 0.46-0.48 s), and sends 1.16-1.26x as fast as
//!   `curl -F` where the server is not the bottleneck.
//! - Elsewhere (`block_in_place` would panic on a current-thread runtime) one blocking task
//!   reads ahead into a small bounded channel.
//!
//! Either way at most a few frames of a file are in memory, and progress counts bytes as
//! frames leave for the socket. A body is built afresh for every attempt, because a consumed
//! stream cannot be replayed.

use std::io::Read as _;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;

/// What a body reads: a file, or a file's bytes after its metadata policy
/// ([`crate::metadata::PlannedReader`]).
pub trait Source: std::io::Read + std::io::Seek + Send + 'static {}
impl<T: std::io::Read + std::io::Seek + Send + 'static> Source for T {}

/// Frames waiting in the channel: enough to hide disk latency, few enough to stay small.
const CHANNEL_DEPTH: usize = 4;

/// A body of `range` of `file`, read in `frame`-byte frames. `sent` grows as frames are handed
/// to the connection. The caller opens the file (and checks it is the job's file: see
/// [`super::identity::open_verified`]); the body reads from that very handle.
pub fn file_body<R: Source>(
    mut file: R,
    range: Range<u64>,
    frame: usize,
    sent: Arc<AtomicU64>,
) -> std::io::Result<reqwest::Body> {
    let len = range.end.saturating_sub(range.start);
    if range.start > 0 {
        file.seek(std::io::SeekFrom::Start(range.start))?;
    }
    if len <= frame as u64 {
        // One frame: read it here and skip the channel.
        let buf = read_frame(&mut file, len as usize)?;
        sent.fetch_add(len, Ordering::Relaxed);
        return Ok(reqwest::Body::from(buf));
    }
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|rt| rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_threaded {
        return Ok(read_on_demand(file, len, frame, sent));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHANNEL_DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut left = len;
        while left > 0 {
            let n = left.min(frame as u64) as usize;
            let item = read_frame(&mut file, n).map(Bytes::from);
            let failed = item.is_err();
            // The receiver is gone when the request was cancelled or failed: stop reading.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
            left -= n as u64;
        }
    });
    let stream = tokio_stream_from(rx).inspect(move |item| {
        if let Ok(bytes) = item {
            sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// A body that reads each frame when the connection polls for it (multi-threaded runtimes only).
fn read_on_demand<R: Source>(
    mut file: R,
    len: u64,
    frame: usize,
    sent: Arc<AtomicU64>,
) -> reqwest::Body {
    let mut left = len;
    let stream = futures_util::stream::poll_fn(move |_cx| {
        if left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = left.min(frame as u64) as usize;
        let item = tokio::task::block_in_place(|| read_frame(&mut file, n));
        match &item {
            Ok(_) => {
                left -= n as u64;
                sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            // The body ends with the error: the request fails with it.
            Err(_) => left = 0,
        }
        std::task::Poll::Ready(Some(item.map(Bytes::from)))
    });
    reqwest::Body::wrap_stream(stream)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Reads exactly `n` bytes into a fresh buffer. The buffer is not zeroed first: at upload
/// speed, clearing every frame before overwriting it is a measurable share of the client's CPU.
fn read_frame(file: &mut impl std::io::Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    file.by_ref().take(n as u64).read_to_end(&mut buf)?;
    if buf.len() < n {
        return Err(changed_while_reading(
            std::io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    Ok(buf)
}

fn changed_while_reading(err: std::io::Error) -> std::io::Error {
    if err.kind() == std::io::ErrorKind::UnexpectedEof {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file got shorter while it was being uploaded; upload it again once it is complete",
        )
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: reqwest::Body) -> Vec<u8> {
        use http_body_util::BodyExt as _;
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_on_demand_on_a_multi_threaded_runtime() {
        streams_exactly_the_range_and_counts_it().await;
        a_file_that_shrinks_is_an_error_not_a_short_upload().await;
    }

    #[tokio::test]
    async fn reads_ahead_on_a_current_thread_runtime() {
        streams_exactly_the_range_and_counts_it().await;
        a_file_that_shrinks_is_an_error_not_a_short_upload().await;
    }

    async fn streams_exactly_the_range_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let body = file_body(
            std::fs::File::open(&path).unwrap(),
            10..90_010,
            4096,
            sent.clone(),
        )
        .unwrap();
        assert_eq!(collect(body).await, data[10..90_010]);
        assert_eq!(sent.load(Ordering::Relaxed), 90_000);
        // One-frame bodies take the short path.
        let body = file_body(
            std::fs::File::open(&path).unwrap(),
            0..5,
            4096,
            Arc::new(AtomicU64::new(0)),
        )
        .unwrap();
        assert_eq!(collect(body).await, data[..5]);
    }

    async fn a_file_that_shrinks_is_an_error_not_a_short_upload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 10_000]).unwrap();
        let body = file_body(
            std::fs::File::open(&path).unwrap(),
            0..20_000,
            1024,
            Arc::new(AtomicU64::new(0)),
        )
        .unwrap();
        use http_body_util::BodyExt as _;
        assert!(body.collect().await.is_err());
    }
}
