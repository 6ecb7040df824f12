//! Reading an upload's multipart body, the same way for both providers: every text field into
//! memory (at most [`MAX_FIELDS_BYTES`] in all), and the one `file` part streamed to a temp file
//! under `root/tmp` while it is hashed and counted, so no upload is ever held in memory.
//!
//! A body the sandbox refuses part-way (a file over the size limit, a duplicate field) is read to
//! its end and thrown away, up to [`DRAIN_LIMIT`], before the error is sent: a server that
//! closes a socket with unread request bytes makes the kernel send a reset, and the client would
//! then see a broken connection instead of the 4xx that explains the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, Multipart, MultipartError};
use axum::http::StatusCode;
use sha2::{Digest as _, Sha256};

use super::error::{ApiError, Flavor};
use super::sniff;

/// Cap on all non-file fields of one request together (names and values).
pub(crate) const MAX_FIELDS_BYTES: usize = 1024 * 1024;
/// How much of a refused body is read and discarded before giving up on answering politely.
pub(crate) const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// A file under `root/tmp` that is deleted when dropped, unless [`TempFile::persist`] moved it
/// into place. Every early return (an error, a client that hangs up and so drops the handler)
/// therefore cleans up after itself.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    pub fn new_in(dir: &Path) -> Self {
        Self {
            path: dir.join(format!("{}.tmp", uuid::Uuid::new_v4().simple())),
            armed: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `dest` (same file system: both live under the sandbox root).
    pub async fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        tokio::fs::rename(&self.path, dest).await?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a leftover is removed at the next start, which empties `root/tmp`.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The `file` part, on disk.
#[derive(Debug)]
pub(crate) struct ReceivedFile {
    pub temp: TempFile,
    pub size: u64,
    pub sha256: String,
    /// The part's `filename` (may be empty).
    pub file_name: String,
    pub content_type: Option<String>,
    /// The file's first bytes (up to [`sniff::SNIFF_LEN`]), kept as they stream by, for
    /// [`sniff::sniff`]: the providers decide what a file is from its content.
    pub head: Vec<u8>,
}

/// A parsed upload body.
#[derive(Debug)]
pub(crate) struct UploadForm {
    /// Every field except `file`, by name.
    pub fields: BTreeMap<String, String>,
    pub file: Option<ReceivedFile>,
}

/// A body that could not be read, with the fields read before the failure (ImageKit consumes a
/// token it has seen even when the request then fails).
#[derive(Debug)]
pub(crate) struct FormFailure {
    pub error: ApiError,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FormLimits<'a> {
    pub tmp_dir: &'a Path,
    pub max_file_size: u64,
    pub flavor: Flavor,
    /// The `--discard` test knob: check, parse and count the file part, but hash and keep none
    /// of its bytes (the stored file is empty, its sha256 is ""), so that a benchmark measures
    /// the client rather than this machine's SHA-256 and page cache.
    pub discard: bool,
}

/// Why reading stopped, and whether the rest of the body can still be read and discarded
/// (it cannot once the multipart stream itself is broken).
struct Stop {
    error: ApiError,
    drain: bool,
}

impl Stop {
    fn refuse(flavor: Flavor, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            error: ApiError::new(flavor, status, message),
            drain: true,
        }
    }

    fn broken(error: ApiError) -> Self {
        Self {
            error,
            drain: false,
        }
    }
}

/// Reads the whole multipart body.
pub(crate) async fn read_form(
    multipart: &mut Multipart,
    limits: FormLimits<'_>,
) -> Result<UploadForm, FormFailure> {
    let mut fields = BTreeMap::new();
    let mut file = None;
    let mut drained = 0u64;
    match read_parts(multipart, limits, &mut fields, &mut file, &mut drained).await {
        Ok(()) => Ok(UploadForm { fields, file }),
        Err(stop) => {
            if stop.drain {
                drain_rest(multipart, &mut drained).await;
            }
            Err(FormFailure {
                error: stop.error,
                fields,
            })
        }
    }
}

async fn read_parts(
    multipart: &mut Multipart,
    limits: FormLimits<'_>,
    fields: &mut BTreeMap<String, String>,
    file: &mut Option<ReceivedFile>,
    drained: &mut u64,
) -> Result<(), Stop> {
    let flavor = limits.flavor;
    let mut budget = MAX_FIELDS_BYTES;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(()),
            Err(err) => return Err(Stop::broken(multipart_error(flavor, &err, limits))),
        };
        let Some(name) = field.name().map(str::to_owned) else {
            discard_field(&mut field, drained).await;
            return Err(Stop::refuse(
                flavor,
                StatusCode::BAD_REQUEST,
                "A multipart part has no name: give every part a Content-Disposition with name=\"...\"",
            ));
        };
        if name == "file" {
            if file.is_some() {
                discard_field(&mut field, drained).await;
                return Err(Stop::refuse(
                    flavor,
                    StatusCode::BAD_REQUEST,
                    "The field `file` is given twice: send exactly one file per upload",
                ));
            }
            let Some(file_name) = field.file_name().map(str::to_owned) else {
                discard_field(&mut field, drained).await;
                return Err(Stop::refuse(
                    flavor,
                    StatusCode::BAD_REQUEST,
                    "The field `file` must be a binary file part (a Content-Disposition with a filename); the sandbox does not take files as base64 text or URLs",
                ));
            };
            *file = Some(stream_file(field, file_name, limits, drained).await?);
        } else {
            if field.file_name().is_some() {
                discard_field(&mut field, drained).await;
                return Err(Stop::refuse(
                    flavor,
                    StatusCode::BAD_REQUEST,
                    format!("Unexpected file part `{name}`: only the field `file` may carry a file; send other parameters as plain text fields"),
                ));
            }
            if fields.contains_key(&name) {
                discard_field(&mut field, drained).await;
                return Err(Stop::refuse(
                    flavor,
                    StatusCode::BAD_REQUEST,
                    format!("The field `{name}` is given twice: send each parameter once (join lists such as tags with commas)"),
                ));
            }
            let value = read_text(&mut field, &name, &mut budget, limits, drained).await?;
            fields.insert(name, value);
        }
    }
}

async fn read_text(
    field: &mut Field<'_>,
    name: &str,
    budget: &mut usize,
    limits: FormLimits<'_>,
    drained: &mut u64,
) -> Result<String, Stop> {
    let flavor = limits.flavor;
    let too_big = || {
        Stop::refuse(
            flavor,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The form fields exceed {MAX_FIELDS_BYTES} bytes in total (at field `{name}`): send parameters, not data, as text fields"),
        )
    };
    *budget = budget.checked_sub(name.len()).ok_or_else(too_big)?;
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if chunk.len() > *budget {
                    discard_field(field, drained).await;
                    return Err(too_big());
                }
                *budget -= chunk.len();
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(err) => return Err(Stop::broken(multipart_error(flavor, &err, limits))),
        }
    }
    String::from_utf8(bytes).map_err(|_| {
        Stop::refuse(
            flavor,
            StatusCode::BAD_REQUEST,
            format!("The field `{name}` is not valid UTF-8 text: send parameters as UTF-8"),
        )
    })
}

async fn stream_file(
    mut field: Field<'_>,
    file_name: String,
    limits: FormLimits<'_>,
    drained: &mut u64,
) -> Result<ReceivedFile, Stop> {
    let flavor = limits.flavor;
    let content_type = field.content_type().map(str::to_owned);
    let temp = TempFile::new_in(limits.tmp_dir);
    let io_stop = |err: std::io::Error| Stop {
        error: ApiError::internal(flavor, "writing the upload to a temp file", err),
        drain: true,
    };
    let (writer, chunks) = DiskWriter::start(temp.path(), !limits.discard)
        .await
        .map_err(io_stop)?;
    let mut size = 0u64;
    let mut head = Vec::new();
    // Chunks are as small as the socket reads that made them (often 64 KiB); handing them
    // over in batches of about a megabyte wakes the hasher and writer a sixteenth as often.
    let mut batch = Vec::new();
    let mut batched = 0usize;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => return Err(Stop::broken(multipart_error(flavor, &err, limits))),
        };
        if head.len() < sniff::SNIFF_LEN {
            let take = chunk.len().min(sniff::SNIFF_LEN - head.len());
            head.extend_from_slice(&chunk[..take]);
        }
        size += chunk.len() as u64;
        if size > limits.max_file_size {
            *drained += size;
            discard_field(&mut field, drained).await;
            return Err(Stop::refuse(
                flavor,
                StatusCode::PAYLOAD_TOO_LARGE,
                too_large_message(flavor, limits.max_file_size),
            ));
        }
        batched += chunk.len();
        batch.push(chunk);
        if batched >= WRITER_BATCH {
            batched = 0;
            if chunks.send(std::mem::take(&mut batch)).await.is_err() {
                // The writer stopped on an I/O error; `finish` reports it.
                break;
            }
        }
    }
    if !batch.is_empty() {
        // An error here is the writer's, which `finish` reports.
        let _ = chunks.send(batch).await;
    }
    drop(chunks);
    let sha256 = writer.finish().await.map_err(io_stop)?;
    Ok(ReceivedFile {
        temp,
        size,
        sha256,
        file_name,
        content_type,
        head,
    })
}

/// Hashes and writes an upload's chunks on two blocking threads of their own, so that parsing
/// the request (on the async worker), hashing and writing all overlap, and no chunk is copied on
/// its way to the file (both threads hold the same refcounted `Bytes`). One thread doing both
/// was the sandbox's bottleneck: SHA-256 and the copy into the page cache cost about the same,
/// and in series they took 1.4 CPU-s per GiB on one core while the client waited
/// (`bench/upload.sh`). `tokio::fs` plus a `BufWriter`, before that, copied every byte twice.
struct DiskWriter {
    /// The hasher and the writer; none with `--discard`.
    threads: Option<(
        tokio::task::JoinHandle<String>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
}

type BatchSender = tokio::sync::mpsc::Sender<Vec<bytes::Bytes>>;

/// Where the async side hands batches to the hasher and the writer.
struct Batches {
    threads: Option<(BatchSender, BatchSender)>,
}

impl Batches {
    /// Hands `batch` to both threads. An error means the writer stopped on an I/O error,
    /// which [`DiskWriter::finish`] reports.
    async fn send(&self, batch: Vec<bytes::Bytes>) -> Result<(), ()> {
        let Some((hasher, writer)) = &self.threads else {
            return Ok(());
        };
        // The hasher only stops once its sender is gone, so this cannot fail first.
        hasher.send(batch.clone()).await.map_err(drop)?;
        writer.send(batch).await.map_err(drop)
    }
}

/// Batches in flight to each thread: enough to ride over a slow write, few enough to stay small.
const WRITER_DEPTH: usize = 4;
/// Bytes per batch handed to the threads.
const WRITER_BATCH: usize = 1024 * 1024;

impl DiskWriter {
    /// Creates the file at `path`, and with `keep` the threads that hash and fill it.
    async fn start(path: &Path, keep: bool) -> std::io::Result<(Self, Batches)> {
        let path = path.to_owned();
        let file = tokio::task::spawn_blocking(move || crate::private_fs::create(&path))
            .await
            .map_err(std::io::Error::other)??;
        if !keep {
            return Ok((Self { threads: None }, Batches { threads: None }));
        }
        let (hasher, mut to_hash) = tokio::sync::mpsc::channel::<Vec<bytes::Bytes>>(WRITER_DEPTH);
        let (writer, mut to_write) = tokio::sync::mpsc::channel::<Vec<bytes::Bytes>>(WRITER_DEPTH);
        let hashed = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            while let Some(batch) = to_hash.blocking_recv() {
                for chunk in &batch {
                    hasher.update(chunk);
                }
            }
            hex::encode(hasher.finalize())
        });
        let written = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut file = file;
            while let Some(batch) = to_write.blocking_recv() {
                let mut slices: Vec<std::io::IoSlice<'_>> =
                    batch.iter().map(|c| std::io::IoSlice::new(c)).collect();
                write_all_vectored(&mut file, &mut slices)?;
            }
            // Complete on disk (for this process and the next one) before anyone renames or
            // reads it; `sync_all` is not needed, a sandbox may lose uploads in a power cut.
            file.flush()
        });
        Ok((
            Self {
                threads: Some((hashed, written)),
            },
            Batches {
                threads: Some((hasher, writer)),
            },
        ))
    }

    /// The file's sha256 once every batch sent before the [`Batches`] were dropped is hashed
    /// and written ("" when nothing was kept).
    async fn finish(self) -> std::io::Result<String> {
        let Some((hashed, written)) = self.threads else {
            return Ok(String::new());
        };
        written.await.map_err(std::io::Error::other)??;
        hashed.await.map_err(std::io::Error::other)
    }
}

/// `Write::write_all_vectored` is unstable; this is its loop: one `writev` per batch, not one
/// `write` per chunk.
fn write_all_vectored(
    file: &mut std::fs::File,
    mut slices: &mut [std::io::IoSlice<'_>],
) -> std::io::Result<()> {
    use std::io::Write as _;
    // Drops leading empty chunks (a 0-byte file arrives as one): `write_vectored` of only empty
    // slices returns 0, which would read as a full disk.
    std::io::IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut slices, n),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

pub(crate) fn too_large_message(flavor: Flavor, max: u64) -> String {
    match flavor {
        Flavor::ImageKit => format!(
            "Your request contains a file larger than this sandbox accepts ({max} bytes, its max_file_size): upload a smaller file or restart the sandbox with a larger --max-file-size"
        ),
        Flavor::Cloudinary => format!(
            "File size too large. Got more than {max}. Maximum is {max}. Upload a smaller file, use a chunked upload of a smaller file, or restart the sandbox with a larger --max-file-size"
        ),
    }
}

/// Reads the rest of `field` and throws it away, counting towards [`DRAIN_LIMIT`].
async fn discard_field(field: &mut Field<'_>, drained: &mut u64) -> bool {
    while *drained <= DRAIN_LIMIT {
        match field.chunk().await {
            Ok(Some(chunk)) => *drained += chunk.len() as u64,
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
    false
}

/// Reads every remaining part and throws it away, up to [`DRAIN_LIMIT`] in all.
async fn drain_rest(multipart: &mut Multipart, drained: &mut u64) {
    while *drained <= DRAIN_LIMIT {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) | Err(_) => return,
        };
        if !discard_field(&mut field, drained).await {
            return;
        }
    }
}

/// A broken multipart stream: too large for the request-body limit, malformed, or cut short.
fn multipart_error(flavor: Flavor, err: &MultipartError, limits: FormLimits<'_>) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            flavor,
            StatusCode::PAYLOAD_TOO_LARGE,
            too_large_message(flavor, limits.max_file_size),
        );
    }
    ApiError::new(
        flavor,
        StatusCode::BAD_REQUEST,
        format!(
            "The multipart/form-data body could not be read ({}): send a complete, well-formed multipart body",
            err.body_text()
        ),
    )
}
