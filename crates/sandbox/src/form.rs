//! Reading an upload's multipart body, the same way for both providers: every text field into
//! memory (at most [`MAX_FIELDS_BYTES`] in all), and the one `file` part streamed to a temp file
//! under `root/tmp` while it is hashed and counted, so no upload is ever held in memory.
//!
//! Both also take `file` as a text field: base64 (ImageKit plain or as a `data:` URI, Cloudinary
//! only as a data URI), decoded to the temp file as it arrives, or an http(s) URL, returned for
//! the caller to fetch (`remote::fetch_file`). A caller can check credentials between the fields and the file
//! ([`read_form_gated`]), so a forged request is refused before its file touches the disk.
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
    /// `file` given as an http(s) URL, not yet fetched.
    pub file_url: Option<String>,
}

/// What a caller checks once the fields before the file have arrived (see [`read_form_gated`]).
pub(crate) type Gate<'g> = dyn FnMut(&BTreeMap<String, String>) -> Result<(), ApiError> + Send + 'g;

/// Cap on `file` given as a URL.
const MAX_FILE_URL_BYTES: usize = 8 * 1024;
/// Cap on the `data:<type>;base64,` header of a `file` given as a data URI.
const MAX_DATA_URI_HEADER: usize = 1024;

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

    fn refused(error: ApiError) -> Self {
        Self { error, drain: true }
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
    read_form_gated(multipart, limits, &mut |_| Ok(())).await
}

/// Reads the whole multipart body, calling `gate` with the fields read so far just before the
/// `file` part is read: an error from it refuses the request before any of the file is kept
/// (the rest of the body is read and discarded). Clients send the fields first (the SDKs in
/// the order given, browsers in form order), so credentials can usually be checked here; those
/// that arrive after the file are the caller's to check at the end.
pub(crate) async fn read_form_gated(
    multipart: &mut Multipart,
    limits: FormLimits<'_>,
    gate: &mut Gate<'_>,
) -> Result<UploadForm, FormFailure> {
    let mut fields = BTreeMap::new();
    let mut file = None;
    let mut file_url = None;
    let mut drained = 0u64;
    let mut parts = Parts {
        fields: &mut fields,
        file: &mut file,
        file_url: &mut file_url,
        drained: &mut drained,
    };
    match read_parts(multipart, limits, &mut parts, gate).await {
        Ok(()) => Ok(UploadForm {
            fields,
            file,
            file_url,
        }),
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

/// What [`read_parts`] has read so far.
struct Parts<'p> {
    fields: &'p mut BTreeMap<String, String>,
    file: &'p mut Option<ReceivedFile>,
    file_url: &'p mut Option<String>,
    drained: &'p mut u64,
}

async fn read_parts(
    multipart: &mut Multipart,
    limits: FormLimits<'_>,
    parts: &mut Parts<'_>,
    gate: &mut Gate<'_>,
) -> Result<(), Stop> {
    let flavor = limits.flavor;
    let mut budget = MAX_FIELDS_BYTES;
    let fields = &mut *parts.fields;
    let drained = &mut *parts.drained;
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
            if parts.file.is_some() || parts.file_url.is_some() {
                discard_field(&mut field, drained).await;
                return Err(Stop::refuse(
                    flavor,
                    StatusCode::BAD_REQUEST,
                    "The field `file` is given twice: send exactly one file per upload",
                ));
            }
            let inline = field.file_name().is_none();
            if let Err(error) = gate(fields) {
                discard_field(&mut field, drained).await;
                return Err(Stop::refused(error));
            }
            if inline {
                match read_inline_file(field, limits, drained).await? {
                    Inline::File(received) => *parts.file = Some(received),
                    Inline::Url(url) => *parts.file_url = Some(url),
                }
            } else {
                let file_name = field.file_name().unwrap_or_default().to_owned();
                *parts.file = Some(stream_file(field, file_name, limits, drained).await?);
            }
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

/// `file` sent as text.
enum Inline {
    /// Base64, decoded to a temp file.
    File(ReceivedFile),
    /// An http(s) URL, for the caller to fetch.
    Url(String),
}

/// Reads a `file` text field (ImageKit's upload API: "a Base64 data URI or plain Base64", or
/// "a publicly reachable URL"; Cloudinary's: "the Data URI (Base64 encoded)" or a remote URL,
/// and its SDKs send text only in those two forms): a URL is returned as text; base64 is
/// decoded as it arrives, straight into the temp file, so a large one is never held in memory.
async fn read_inline_file(
    mut field: Field<'_>,
    limits: FormLimits<'_>,
    drained: &mut u64,
) -> Result<Inline, Stop> {
    let flavor = limits.flavor;
    let bad = |message: String| Stop::refuse(flavor, StatusCode::BAD_REQUEST, message);
    // Enough of the start to tell a URL, a data URI and plain base64 apart.
    let mut head = Vec::new();
    let mut ended = false;
    while head.len() < 8
        || (starts_with_ci(&head, b"data:")
            && !head.contains(&b',')
            && head.len() <= MAX_DATA_URI_HEADER)
    {
        match field.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) => {
                ended = true;
                break;
            }
            Err(err) => return Err(Stop::broken(multipart_error(flavor, &err, limits))),
        }
    }
    if ended && head.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(match flavor {
            Flavor::ImageKit => "Missing file parameter for upload: the field `file` is empty; send the file, its base64 or a URL".into(),
            Flavor::Cloudinary => "Missing required parameter - file: the field `file` is empty; send the file, a data URI or a URL".into(),
        }));
    }
    if starts_with_ci(&head, b"http://") || starts_with_ci(&head, b"https://") {
        let mut text = head;
        loop {
            if text.len() > MAX_FILE_URL_BYTES {
                discard_field(&mut field, drained).await;
                return Err(bad(format!(
                    "The field `file` looks like a URL but is longer than {MAX_FILE_URL_BYTES} bytes: send a shorter URL, or the file itself"
                )));
            }
            if ended {
                break;
            }
            match field.chunk().await {
                Ok(Some(chunk)) => text.extend_from_slice(&chunk),
                Ok(None) => ended = true,
                Err(err) => return Err(Stop::broken(multipart_error(flavor, &err, limits))),
            }
        }
        return String::from_utf8(text)
            .map(|url| Inline::Url(url.trim().to_owned()))
            .map_err(|_| bad("The field `file` is a URL that is not valid UTF-8".into()));
    }
    if flavor == Flavor::Cloudinary && !starts_with_ci(&head, b"data:") {
        discard_field(&mut field, drained).await;
        return Err(bad(if looks_like_url(&head) {
            "The field `file` is a URL the sandbox does not fetch: it fetches http(s) URLs on loopback only (127.0.0.0/8, ::1, localhost); serve the file on this machine, or upload its bytes or a data URI instead".into()
        } else {
            "The field `file` as text must be a data URI (data:<type>;base64,<data>) or an http(s) URL: Cloudinary does not take plain base64; prefix it with data:<type>;base64, or send the file as a file part".into()
        }));
    }
    let mut content_type = None;
    let mut data = head.as_slice();
    if starts_with_ci(data, b"data:") {
        let Some(comma) = data.iter().position(|b| *b == b',') else {
            discard_field(&mut field, drained).await;
            return Err(bad(
                "The field `file` starts like a data URI but has no ',' within its first 1 KiB: send data:<type>;base64,<data>".into(),
            ));
        };
        let header = String::from_utf8_lossy(&data[5..comma]).into_owned();
        let mut params = header.split(';');
        let mime = params.next().unwrap_or_default().trim().to_owned();
        if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
            discard_field(&mut field, drained).await;
            return Err(bad(format!(
                "The field `file` is a data URI without ;base64 (`data:{header},`): {} takes base64-encoded data URIs only",
                flavor_name(flavor)
            )));
        }
        content_type = Some(mime).filter(|m| !m.is_empty());
        data = &data[comma + 1..];
    }
    let mut sink = FileSink::start(limits.tmp_dir, !limits.discard, limits.max_file_size)
        .await
        .map_err(|err| io_stop(flavor, err))?;
    let mut decoder = Base64Stream::default();
    let mut pending = bytes::Bytes::copy_from_slice(data);
    loop {
        let decoded = decoder.push(&pending).map_err(|why| {
            bad(match flavor {
                Flavor::ImageKit => format!(
                    "The field `file` is neither a file part, a URL nor valid base64 ({why}): send the file as a multipart file part, a base64 string (optionally a data: URI) or an http(s) URL"
                ),
                Flavor::Cloudinary => format!(
                    "The data URI in the field `file` is not valid base64 ({why}): send data:<type>;base64,<data>, or the file as a file part"
                ),
            })
        });
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(stop) => {
                discard_field(&mut field, drained).await;
                return Err(stop);
            }
        };
        if sink.push(decoded).await.is_err() {
            *drained += sink.size();
            discard_field(&mut field, drained).await;
            return Err(Stop::refuse(
                flavor,
                StatusCode::PAYLOAD_TOO_LARGE,
                too_large_message(flavor, limits.max_file_size),
            ));
        }
        if ended {
            break;
        }
        pending = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                ended = true;
                bytes::Bytes::new()
            }
            Err(err) => return Err(Stop::broken(multipart_error(flavor, &err, limits))),
        };
    }
    let tail = decoder.finish().map_err(|why| {
        bad(format!(
            "The field `file` is not valid base64 ({why}): send the whole base64 text, padded or not"
        ))
    })?;
    if sink.push(tail).await.is_err() {
        return Err(Stop::refuse(
            flavor,
            StatusCode::PAYLOAD_TOO_LARGE,
            too_large_message(flavor, limits.max_file_size),
        ));
    }
    let received = sink
        .finish(String::new(), content_type)
        .await
        .map_err(|err| io_stop(flavor, err))?;
    Ok(Inline::File(received))
}

fn io_stop(flavor: Flavor, err: std::io::Error) -> Stop {
    Stop {
        error: ApiError::internal(flavor, "writing the upload to a temp file", err),
        drain: true,
    }
}

fn flavor_name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::ImageKit => "ImageKit",
        Flavor::Cloudinary => "Cloudinary",
    }
}

/// Whether text starts with a URL scheme (`ftp:`, `s3:`, `gs:`, which Cloudinary fetches and the
/// sandbox does not), so the refusal can say why rather than call it bad base64.
fn looks_like_url(text: &[u8]) -> bool {
    let Some(colon) = text.iter().position(|b| *b == b':') else {
        return false;
    };
    let scheme = &text[..colon];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn starts_with_ci(data: &[u8], prefix: &[u8]) -> bool {
    data.len() >= prefix.len() && data[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Base64 decoded piecewise: whole 4-character groups as they arrive, the rest kept for the
/// next piece. ASCII whitespace (line breaks of wrapped base64) is skipped; padding may only
/// end the text, and may be left out.
#[derive(Default)]
struct Base64Stream {
    /// Fewer than 4 characters waiting for the rest of their group.
    carry: Vec<u8>,
    /// A group with padding was decoded: nothing but whitespace may follow.
    padded: bool,
}

impl Base64Stream {
    fn push(&mut self, input: &[u8]) -> Result<bytes::Bytes, String> {
        use base64::Engine as _;
        let mut text = std::mem::take(&mut self.carry);
        text.extend(input.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        if text.is_empty() {
            return Ok(bytes::Bytes::new());
        }
        if self.padded {
            return Err("characters after the padding".into());
        }
        let whole = text.len() / 4 * 4;
        self.carry = text.split_off(whole);
        if text.is_empty() {
            return Ok(bytes::Bytes::new());
        }
        self.padded = text.ends_with(b"=");
        base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map(bytes::Bytes::from)
            .map_err(|err| err.to_string())
    }

    /// The last, unpadded group, if any (its bytes decoded).
    fn finish(self) -> Result<bytes::Bytes, String> {
        use base64::Engine as _;
        if self.carry.is_empty() {
            return Ok(bytes::Bytes::new());
        }
        if self.padded {
            return Err("characters after the padding".into());
        }
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&self.carry)
            .map(bytes::Bytes::from)
            .map_err(|err| err.to_string())
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
        let file = tokio::task::spawn_blocking(move || dropkey_core::private_fs::create(&path))
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

/// A file being received from somewhere other than a file part (decoded base64, a fetched
/// URL): counted against the size limit, then hashed and written by a [`DiskWriter`] in
/// [`WRITER_BATCH`] batches.
pub(crate) struct FileSink {
    temp: TempFile,
    writer: DiskWriter,
    batches: Batches,
    max: u64,
    size: u64,
    batch: Vec<bytes::Bytes>,
    batched: usize,
    /// The first bytes, for `sniff` (a base64 or fetched file is typed by content too).
    head: Vec<u8>,
}

/// The file went over the size limit.
#[derive(Debug)]
pub(crate) struct TooLarge;

impl FileSink {
    /// A temp file in `tmp_dir`; with `keep` false (`--discard`) nothing is written.
    pub async fn start(tmp_dir: &Path, keep: bool, max: u64) -> std::io::Result<Self> {
        let temp = TempFile::new_in(tmp_dir);
        let (writer, batches) = DiskWriter::start(temp.path(), keep).await?;
        Ok(Self {
            temp,
            writer,
            batches,
            max,
            size: 0,
            batch: Vec::new(),
            batched: 0,
            head: Vec::new(),
        })
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn push(&mut self, chunk: bytes::Bytes) -> Result<(), TooLarge> {
        self.size += chunk.len() as u64;
        if self.size > self.max {
            return Err(TooLarge);
        }
        if self.head.len() < sniff::SNIFF_LEN {
            let take = chunk.len().min(sniff::SNIFF_LEN - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.batched += chunk.len();
        self.batch.push(chunk);
        if self.batched >= WRITER_BATCH {
            self.batched = 0;
            // An error is the writer's, which `finish` reports.
            let _ = self.batches.send(std::mem::take(&mut self.batch)).await;
        }
        Ok(())
    }

    /// Waits until every byte is written and hashed.
    pub async fn finish(
        mut self,
        file_name: String,
        content_type: Option<String>,
    ) -> std::io::Result<ReceivedFile> {
        if !self.batch.is_empty() {
            let _ = self.batches.send(std::mem::take(&mut self.batch)).await;
        }
        drop(self.batches);
        let sha256 = self.writer.finish().await?;
        Ok(ReceivedFile {
            temp: self.temp,
            size: self.size,
            sha256,
            file_name,
            content_type,
            head: self.head,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(text: &[u8], piece: usize) -> Result<Vec<u8>, String> {
        let mut stream = Base64Stream::default();
        let mut out = Vec::new();
        for chunk in text.chunks(piece.max(1)) {
            out.extend_from_slice(&stream.push(chunk)?);
        }
        out.extend_from_slice(&stream.finish()?);
        Ok(out)
    }

    #[test]
    fn url_schemes_are_told_from_base64() {
        for url in [
            &b"ftp://host/a"[..],
            b"s3://bucket/a",
            b"gs://b/a",
            b"HTTP://x",
        ] {
            assert!(looks_like_url(url), "{}", String::from_utf8_lossy(url));
        }
        for text in [&b"iVBORw0KGgo="[..], b"", b":x", b"a b:c", b"1ab:c"] {
            assert!(!looks_like_url(text), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn base64_decodes_the_same_in_any_pieces() {
        use base64::Engine as _;
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for len in [0, 1, 2, 3, 4, 5, 999, 1000] {
            let padded = base64::engine::general_purpose::STANDARD.encode(&data[..len]);
            let unpadded = padded.trim_end_matches('=').to_owned();
            let wrapped: String = padded
                .as_bytes()
                .chunks(76)
                .map(|l| format!("{}\r\n", String::from_utf8_lossy(l)))
                .collect();
            for text in [&padded, &unpadded, &wrapped] {
                for piece in [1, 3, 4, 7, 64, 4096] {
                    assert_eq!(
                        decode_in_pieces(text.as_bytes(), piece).unwrap(),
                        &data[..len],
                        "{len} bytes in pieces of {piece}"
                    );
                }
            }
        }
        for bad in ["abc=abcd", "a", "ab!d", "YQ==YQ==", "YWJj\nZA==x"] {
            for piece in [1, 2, 4, 100] {
                assert!(decode_in_pieces(bad.as_bytes(), piece).is_err(), "{bad}");
            }
        }
    }
}
