//! Cloudinary's side of the sandbox: signed uploads (single or chunked), destroy, the Admin
//! API's resource details, private download links, and delivery of public (`upload`) assets.
//!
//! Every write is signed as the SDKs sign it (`dropkey_core::sign::cloudinary`): SHA-1 over the sorted
//! parameters plus the API secret, or SHA-256 when the signature has 64 hex digits; the
//! timestamp must be within an hour of the sandbox's clock. A chunked upload is a series of
//! such requests sharing `X-Unique-Upload-Id`, each carrying `Content-Range`; its partial data
//! lives on disk, so a client can resume it after either side restarts.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest as _, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::conn::ConnHandle;
use super::error::{ApiError, Flavor};
use super::faults::{self, Fault};
use super::form::{self, FormLimits, ReceivedFile, MAX_FIELDS_BYTES};
use super::remote;
use super::sniff::{self, Sniffed};
use super::store::{BlobSource, ClAsset, ClKey, LedgerEntry, Store};
use super::{time, SandboxState};
use dropkey_core::sign::cloudinary::{sign, string_to_sign, Algorithm};

pub(crate) fn routes() -> Router<Arc<SandboxState>> {
    Router::new()
        .route("/v1_1/{cloud}/{resource_type}/upload", post(upload))
        .route("/v1_1/{cloud}/{resource_type}/destroy", post(destroy))
        .route("/v1_1/{cloud}/{resource_type}/download", get(download))
        .route(
            "/v1_1/{cloud}/resources/{resource_type}/{delivery_type}/{*public_id}",
            get(resource),
        )
        .route(
            "/res/{cloud}/{resource_type}/{delivery_type}/{*rest}",
            get(deliver),
        )
}

/// How far a request's timestamp may be from the sandbox's clock, as at Cloudinary.
const MAX_CLOCK_SKEW: u64 = 3600;
const DELIVERY_TYPES: &[&str] = &["upload", "private", "authenticated"];
const BOOLEAN_PARAMS: &[&str] = &[
    "use_filename",
    "unique_filename",
    "overwrite",
    "invalidate",
    "backup",
    "return_delete_token",
    "use_filename_as_display_name",
    "unique_display_name",
    "discard_original_filename",
];

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::cl(StatusCode::BAD_REQUEST, message)
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::cl(StatusCode::UNAUTHORIZED, message)
}

fn not_found(public_id: &str) -> ApiError {
    ApiError::cl(
        StatusCode::NOT_FOUND,
        format!("Resource not found - {public_id}"),
    )
}

fn internal(doing: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(Flavor::Cloudinary, doing, err)
}

fn check_cloud(app: &SandboxState, cloud: &str) -> Result<(), ApiError> {
    if cloud == app.cloudinary.cloud_name {
        return Ok(());
    }
    Err(ApiError::cl(
        StatusCode::NOT_FOUND,
        format!(
            "Invalid cloud_name {cloud}: this sandbox serves the cloud `{}`",
            app.cloudinary.cloud_name
        ),
    ))
}

fn check_stored_resource_type(resource_type: &str) -> Result<(), ApiError> {
    if matches!(resource_type, "image" | "video" | "raw") {
        return Ok(());
    }
    Err(bad_request(format!(
        "Invalid resource type {resource_type}: use image, video or raw"
    )))
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// Checks `api_key`, `timestamp` and `signature` of a signed request; returns the hash the
/// signature used.
/// The request's `api_key` must be the account's.
fn check_api_key(app: &SandboxState, params: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let api_key = params
        .get("api_key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| unauthorized("Must supply api_key"))?;
    if *api_key != app.cloudinary.api_key {
        return Err(unauthorized(format!(
            "Unknown API key {api_key}: use the API key of cloud `{}`",
            app.cloudinary.cloud_name
        )));
    }
    Ok(())
}

pub(crate) fn authenticate(
    app: &SandboxState,
    params: &BTreeMap<String, String>,
    now: i64,
) -> Result<Algorithm, ApiError> {
    check_api_key(app, params)?;
    let timestamp_text = params
        .get("timestamp")
        .ok_or_else(|| bad_request("Missing required parameter - timestamp"))?;
    let timestamp = super::parse_int(timestamp_text).ok_or_else(|| {
        bad_request(format!(
            "Invalid timestamp {timestamp_text}: give a Unix time in seconds"
        ))
    })?;
    let signature = params
        .get("signature")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_request("Missing required parameter - signature"))?;
    verify_signature(app, params, signature)
        .map_err(|string| invalid_signature(signature, &string))
        .and_then(|algorithm| {
            if now.abs_diff(timestamp) > MAX_CLOCK_SKEW {
                return Err(bad_request(format!(
                    "Stale request - reported time is {} which is out of range (the sandbox's clock reads {}; a signature is valid for {MAX_CLOCK_SKEW} s around its timestamp)",
                    time::cloudinary_time(timestamp),
                    time::cloudinary_time(now)
                )));
            }
            Ok(algorithm)
        })
}

/// What can be judged of an upload when its file part arrives, so that a forged or stale request
/// is refused before a byte of its file is written, a data URI decoded or a URL fetched (the
/// form reader then reads the rest of the body and throws it away). An unknown `api_key` is
/// final whatever follows. The signature is judged once `api_key`, `timestamp` and `signature`
/// have all arrived: a client signs every parameter before it builds the form, and the SDKs and
/// Dropkey send them all before the file, so those fields are the signed set. Anything missing
/// (the file came first) is left to [`authenticate`] over the whole form, as before.
fn check_before_file(
    app: &SandboxState,
    fields: &BTreeMap<String, String>,
    now: i64,
) -> Result<(), ApiError> {
    if fields.contains_key("api_key") {
        check_api_key(app, fields)?;
    }
    if ["api_key", "timestamp", "signature"]
        .iter()
        .all(|name| fields.contains_key(*name))
    {
        authenticate(app, fields, now)?;
    }
    Ok(())
}

/// Checks `signature` against `params` with SHA-1 (40 hex digits) or SHA-256 (64); on failure
/// returns the string to sign, which Cloudinary shows in its error.
fn verify_signature(
    app: &SandboxState,
    params: &BTreeMap<String, String>,
    signature: &str,
) -> Result<Algorithm, String> {
    let algorithm = match signature.len() {
        64 => Algorithm::Sha256,
        _ => Algorithm::Sha1,
    };
    let expected = sign(params, &app.cloudinary.api_secret, algorithm);
    if super::ct_eq(expected.as_bytes(), signature.as_bytes()) {
        Ok(algorithm)
    } else {
        Err(string_to_sign(params))
    }
}

fn invalid_signature(signature: &str, string_to_sign: &str) -> ApiError {
    unauthorized(format!(
        "Invalid Signature {signature}. String to sign - '{string_to_sign}'."
    ))
}

// ---------------------------------------------------------------------------------------------
// Upload parameters

/// The validated upload parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UploadParams {
    pub public_id: Option<String>,
    /// Without leading or trailing slashes; empty for none.
    pub folder: String,
    pub tags: Vec<String>,
    pub delivery_type: String,
    pub use_filename: bool,
    pub unique_filename: bool,
    pub overwrite: bool,
    pub context: Option<BTreeMap<String, String>>,
}

impl UploadParams {
    pub(crate) fn parse(fields: &BTreeMap<String, String>) -> Result<Self, ApiError> {
        if let Some(preset) = fields.get("upload_preset") {
            return Err(bad_request(format!(
                "Upload preset {preset} not found: the sandbox has no upload presets; sign the upload parameters instead"
            )));
        }
        for name in BOOLEAN_PARAMS {
            if let Some(value) = fields.get(*name) {
                if parse_bool(value).is_none() {
                    return Err(bad_request(format!(
                        "Invalid boolean parameter {name} - {value}: use true or false"
                    )));
                }
            }
        }
        let flag = |name: &str, default: bool| {
            fields
                .get(name)
                .and_then(|v| parse_bool(v))
                .unwrap_or(default)
        };
        let delivery_type = fields
            .get("type")
            .filter(|t| !t.is_empty())
            .map_or("upload", String::as_str);
        if !DELIVERY_TYPES.contains(&delivery_type) {
            return Err(bad_request(format!(
                "Invalid type {delivery_type}: use upload, private or authenticated"
            )));
        }
        let public_id = match fields.get("public_id").filter(|p| !p.is_empty()) {
            Some(id) => Some(validate_public_id(id, "public_id")?),
            None => None,
        };
        let folder = match fields.get("folder") {
            Some(folder) => {
                let trimmed = folder.trim_matches('/');
                if trimmed.is_empty() {
                    String::new()
                } else {
                    validate_public_id(trimmed, "folder")?
                }
            }
            None => String::new(),
        };
        let tags = match fields.get("tags") {
            Some(raw) => parse_tags(raw)?,
            None => Vec::new(),
        };
        let context = match fields.get("context").filter(|c| !c.is_empty()) {
            Some(raw) => Some(parse_context(raw)?),
            None => None,
        };
        Ok(Self {
            public_id,
            folder,
            tags,
            delivery_type: delivery_type.to_owned(),
            use_filename: flag("use_filename", false),
            unique_filename: flag("unique_filename", true),
            overwrite: flag("overwrite", true),
            context,
        })
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Cloudinary's rules for public ids (and folders): no `? & # \ % < >`, no control
/// characters, no leading or trailing slash or space, no empty, `.` or `..` segments.
pub(crate) fn validate_public_id(id: &str, what: &str) -> Result<String, ApiError> {
    let bad = |why: &str| bad_request(format!("Invalid {what} {id}: {why}"));
    if id.chars().count() > 255 {
        return Err(bad("it is longer than 255 characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| matches!(c, '?' | '&' | '#' | '\\' | '%' | '<' | '>') || c.is_control())
    {
        return Err(bad(&format!(
            "it may not contain {c:?} (nor ? & # \\ % < > or control characters)"
        )));
    }
    if id.starts_with(['/', ' ']) || id.ends_with(['/', ' ']) {
        return Err(bad("it may not begin or end with a slash or a space"));
    }
    if id.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(bad("it may not contain empty, '.' or '..' path segments"));
    }
    Ok(id.to_owned())
}

fn parse_tags(raw: &str) -> Result<Vec<String>, ApiError> {
    let tags: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(long) = tags.iter().find(|t| t.chars().count() > 255) {
        return Err(bad_request(format!(
            "Invalid tag {long}: tags are at most 255 characters"
        )));
    }
    Ok(tags)
}

/// `key=value|key2=value2`, Cloudinary's contextual metadata. The SDKs escape `=` and `|`
/// inside values with a backslash (`caption=a\=b`), and Cloudinary stores them unescaped; a
/// backslash before any other character is an ordinary character.
fn parse_context(raw: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut context = BTreeMap::new();
    for pair in split_unescaped(raw, '|') {
        let halves = split_unescaped(&pair, '=');
        let (key, value) = match halves.split_first() {
            Some((key, value)) => (unescape_context(key), unescape_context(&value.join("="))),
            None => (String::new(), String::new()),
        };
        if key.trim().is_empty() {
            return Err(bad_request(format!(
                "Invalid context {raw}: write it as key=value|key2=value2"
            )));
        }
        context.insert(key.trim().to_owned(), value);
    }
    Ok(context)
}

/// `text` split at each `separator` not right after a backslash; the pieces keep their escapes.
/// (The SDKs escape only `=` and `|`, never the backslash, so a backslash right before a
/// separator always escapes it.)
fn split_unescaped(text: &str, separator: char) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if c == separator && !escaped {
            pieces.push(std::mem::take(&mut piece));
        } else {
            piece.push(c);
        }
        escaped = c == '\\';
    }
    pieces.push(piece);
    pieces
}

/// Undoes the SDKs' `\\=` and `\\|`.
fn unescape_context(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('=' | '|')) {
            continue;
        }
        out.push(c);
    }
    out
}

/// Which resource type a file is stored as: `auto` picks by MIME type; `image` and `video`
/// refuse what is not one, as Cloudinary does ("Invalid image file").
pub(crate) fn resolve_resource_type(requested: &str, mime: &str) -> Result<&'static str, ApiError> {
    let image = mime.starts_with("image/") || mime == "application/pdf";
    let video = mime.starts_with("video/") || mime.starts_with("audio/");
    match requested {
        "auto" if image => Ok("image"),
        "auto" if video => Ok("video"),
        "auto" | "raw" => Ok("raw"),
        "image" if image => Ok("image"),
        "image" => Err(bad_request(format!(
            "Invalid image file: the sandbox reads it as {mime}; upload it with resource type raw or auto"
        ))),
        "video" if video => Ok("video"),
        "video" => Err(bad_request(format!(
            "Invalid video file: the sandbox reads it as {mime}; upload it with resource type raw or auto"
        ))),
        other => Err(bad_request(format!(
            "Invalid resource type {other}: use image, video, raw or auto"
        ))),
    }
}

/// What an uploaded file is: its format read from its first bytes, else nothing (the file
/// name then decides, as at Cloudinary when the content is not a known media format).
#[derive(Debug, Clone, Copy)]
struct Content<'a> {
    sniffed: Option<Sniffed>,
    file_name: &'a str,
    content_type: Option<&'a str>,
}

impl<'a> Content<'a> {
    fn new(head: &[u8], file_name: &'a str, content_type: Option<&'a str>) -> Self {
        Self {
            sniffed: sniff::sniff(head),
            file_name,
            content_type,
        }
    }

    /// The MIME type the resource type is decided by and the file is served as.
    fn mime(&self) -> String {
        match self.sniffed {
            Some(sniffed) => sniffed.mime.to_owned(),
            None => super::guess_mime(self.file_name, self.content_type),
        }
    }

    /// The `format` of an image or video.
    fn format(&self) -> String {
        match self.sniffed {
            Some(sniffed) => sniffed.format.to_owned(),
            None => format_of(self.file_name, self.content_type),
        }
    }
}

/// The extension of a raw file's public id: only ever from its file name (a raw asset has no
/// format; with no extension in the name it gets none).
fn raw_extension(file_name: &str) -> String {
    extension(file_name).unwrap_or_default()
}

fn extension(file_name: &str) -> Option<String> {
    std::path::Path::new(file_name)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| !e.is_empty())
        .map(str::to_ascii_lowercase)
}

/// The extension Cloudinary reports as `format` when the bytes say nothing: from the file
/// name, else from the declared content type; lowercase, with `jpeg` spelled `jpg` as
/// Cloudinary does.
fn format_of(file_name: &str, content_type: Option<&str>) -> String {
    let from_name = extension(file_name);
    let from_type = || {
        content_type
            .and_then(mime_guess::get_mime_extensions_str)
            .and_then(|exts| exts.first())
            .map(|e| (*e).to_owned())
    };
    match from_name.or_else(from_type).unwrap_or_default().as_str() {
        "jpeg" | "jpe" => "jpg".to_owned(),
        other => other.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Upload

async fn upload(
    State(app): State<Arc<SandboxState>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path((cloud, resource_type)): Path<(String, String)>,
    req: Request,
) -> Response {
    let response = upload_inner(&app, &conn, &cloud, &resource_type, req)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    app.faults.delay().await;
    response
}

async fn upload_inner(
    app: &SandboxState,
    conn: &ConnHandle,
    cloud: &str,
    resource_type: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let fault = app.faults.draw();
    match fault {
        Some(Fault::ConnectionReset) => return Ok(faults::reset(conn, req.into_body()).await),
        Some(Fault::SlowBody) => {
            return Ok(faults::slow_body(Flavor::Cloudinary, req.into_body()).await)
        }
        _ => {}
    }
    // Judged on the URL and headers alone, so before the body: a request these refuse keeps
    // none of its file.
    let chunked = chunk_headers(req.headers());
    check_cloud(app, cloud)?;
    if !matches!(resource_type, "image" | "video" | "raw" | "auto") {
        return Err(bad_request(format!(
            "Invalid resource type {resource_type}: use image, video, raw or auto"
        )));
    }
    let chunked = chunked?;
    let mut multipart = Multipart::from_request(req, &()).await.map_err(|rejection| {
        bad_request(format!(
            "The upload must be a multipart/form-data POST ({}): send the file and the parameters as form fields",
            rejection.body_text()
        ))
    })?;
    let limits = FormLimits {
        tmp_dir: app.store.tmp_dir(),
        max_file_size: app.max_file_size,
        flavor: Flavor::Cloudinary,
        // A chunk's bytes are its upload's: discarding them would leave gaps in the partial.
        discard: app.discard && chunked.is_none(),
    };
    let now = dropkey_core::unix_now();
    let form = form::read_form_gated(&mut multipart, limits, &mut |fields| {
        check_before_file(app, fields, now)
    })
    .await
    .map_err(|failure| failure.error)?;
    let fields = &form.fields;
    // Again over every field: some may have come after the file.
    let algorithm = authenticate(app, fields, now)?;
    let params = UploadParams::parse(fields)?;
    let file = match (form.file, form.file_url) {
        (Some(file), _) => file,
        (None, Some(url)) => {
            if chunked.is_some() {
                return Err(bad_request(
                    "A chunked upload (X-Unique-Upload-Id) carries the file's bytes: send each chunk as a file part, or upload the URL without chunking",
                ));
            }
            // Fetched only once the signature has verified: a forged request makes the
            // sandbox fetch nothing.
            if let Some(fault) = fault {
                return Ok(faults::answer(fault, Flavor::Cloudinary));
            }
            remote::fetch_file(&url, limits).await?
        }
        (None, None) => return Err(bad_request("Missing required parameter - file")),
    };
    match chunked {
        None => {
            let content = Content::new(&file.head, &file.file_name, file.content_type.as_deref());
            let mime = content.mime();
            let stored_type = resolve_resource_type(resource_type, &mime)?;
            if file.size == 0 {
                return Err(bad_request("Empty file"));
            }
            if let Some(fault) = fault {
                return Ok(faults::answer(fault, Flavor::Cloudinary));
            }
            let upload = Upload {
                resource_type: stored_type,
                params: &params,
                content,
                mime: &mime,
                size: file.size,
                sha256: &file.sha256,
                upload_id: None,
                algorithm,
            };
            let (_, response) = commit(app, upload, BlobSource::Temp(file.temp)).await?;
            Ok(Json(response).into_response())
        }
        Some((upload_id, range)) => {
            let chunk = Chunk {
                cloud,
                resource_type,
                upload_id: &upload_id,
                range,
                params: &params,
                fields,
                algorithm,
            };
            receive_chunk(app, chunk, file, fault).await
        }
    }
}

/// What [`commit`] stores.
struct Upload<'a> {
    resource_type: &'static str,
    params: &'a UploadParams,
    content: Content<'a>,
    mime: &'a str,
    size: u64,
    sha256: &'a str,
    upload_id: Option<&'a str>,
    algorithm: Algorithm,
}

/// Stores an accepted upload under its final public id and records it in the ledger.
/// Returns the asset and the upload response.
async fn commit(
    app: &SandboxState,
    upload: Upload<'_>,
    source: BlobSource,
) -> Result<(ClAsset, Value), ApiError> {
    let params = upload.params;
    let now = dropkey_core::unix_now();
    let file_name = std::path::Path::new(upload.content.file_name);
    let stem = file_name
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let format = if upload.resource_type == "raw" {
        String::new()
    } else {
        upload.content.format()
    };
    let raw_ext = raw_extension(upload.content.file_name);
    let mut index = app.store.index.write().await;
    let key = loop {
        // `random`: the id holds characters the sandbox drew, so a collision is redrawn; an id
        // the client chose (or a file name without suffix) names the asset to replace.
        let (base, random) = match &params.public_id {
            Some(id) => (id.clone(), false),
            None => {
                let readable = clean_stem(stem);
                let (base, random) = if params.use_filename && !readable.is_empty() {
                    if params.unique_filename {
                        let suffix = super::random_lower_alphanumeric(6);
                        (format!("{readable}_{suffix}"), true)
                    } else {
                        (readable, false)
                    }
                } else {
                    (super::random_lower_alphanumeric(20), true)
                };
                // Raw files keep their extension in the public id; they have no format.
                if upload.resource_type == "raw" && !raw_ext.is_empty() {
                    (format!("{base}.{raw_ext}"), random)
                } else {
                    (base, random)
                }
            }
        };
        let public_id = if params.folder.is_empty() {
            base
        } else {
            format!("{}/{base}", params.folder)
        };
        let key = ClKey {
            resource_type: upload.resource_type.to_owned(),
            delivery_type: params.delivery_type.clone(),
            public_id,
        };
        if !(random && index.cl.contains_key(&key)) {
            break key;
        }
    };
    let existing = index.cl.get(&key).cloned();
    if let Some(existing) = &existing {
        if !params.overwrite {
            // Cloudinary answers with the asset that is there, marked as existing.
            if let BlobSource::Partial(path) = &source {
                let _ = tokio::fs::remove_file(path).await;
            }
            let mut response = asset_json(app, existing, upload.algorithm);
            if let Some(object) = response.as_object_mut() {
                object.insert("existing".into(), json!(true));
            }
            return Ok((existing.clone(), response));
        }
    }
    let version = existing.as_ref().map_or(now, |e| now.max(e.version + 1));
    let asset_id = existing
        .as_ref()
        .map_or_else(|| super::random_hex(16), |e| e.asset_id.clone());
    let asset = ClAsset {
        blob: format!("cl-{asset_id}-v{version}"),
        asset_id,
        public_id: key.public_id.clone(),
        resource_type: key.resource_type.clone(),
        delivery_type: key.delivery_type.clone(),
        version,
        version_id: super::random_hex(16),
        format,
        bytes: upload.size,
        sha256: upload.sha256.to_owned(),
        mime: upload.mime.to_owned(),
        tags: params.tags.clone(),
        folder: params.folder.clone(),
        original_filename: stem.to_owned(),
        context: params.context.clone(),
        created_at: time::rfc3339(now),
    };
    let ledger = LedgerEntry {
        provider: "cloudinary",
        id: &asset.public_id,
        name: upload.content.file_name,
        folder: &asset.folder,
        tags: &asset.tags,
        size: asset.bytes,
        sha256: &asset.sha256,
        scheme: "signed",
        token_sha256: None,
        upload_id: upload.upload_id,
        at: time::rfc3339_millis(time::now_millis()),
    };
    app.store
        .commit(
            &app.store.cl_meta_path(&asset.asset_id),
            &asset,
            &asset.blob,
            source,
            existing.as_ref().map(|old| (old, old.blob.as_str())),
            &ledger,
        )
        .await
        .map_err(|err| internal("storing the upload", err))?;
    index.cl.insert(key, asset.clone());
    let response = asset_json(app, &asset, upload.algorithm);
    Ok((asset, response))
}

/// A file name stem made safe as a public id: the characters public ids refuse become `_`.
fn clean_stem(stem: &str) -> String {
    stem.chars()
        .map(|c| {
            if matches!(c, '?' | '&' | '#' | '\\' | '%' | '<' | '>' | '/') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `{base}/res/{cloud}/{resource_type}/{type}/v{version}/{public_id}.{format}`.
fn delivery_url(app: &SandboxState, asset: &ClAsset) -> String {
    let mut url = format!(
        "{}/res/{}/{}/{}/v{}/{}",
        app.base_url,
        app.cloudinary.cloud_name,
        asset.resource_type,
        asset.delivery_type,
        asset.version,
        super::encode_url_path(&asset.public_id)
    );
    if !asset.format.is_empty() {
        url.push('.');
        url.push_str(&asset.format);
    }
    url
}

/// The upload response, in Cloudinary's shape.
fn asset_json(app: &SandboxState, asset: &ClAsset, algorithm: Algorithm) -> Value {
    // Cloudinary signs its answer: the signature of public_id and version with the API secret,
    // which clients can verify.
    let signed: BTreeMap<String, String> = [
        ("public_id".to_owned(), asset.public_id.clone()),
        ("version".to_owned(), asset.version.to_string()),
    ]
    .into_iter()
    .collect();
    let url = delivery_url(app, asset);
    let mut value = json!({
        "asset_id": asset.asset_id,
        "public_id": asset.public_id,
        "version": asset.version,
        "version_id": asset.version_id,
        "signature": sign(&signed, &app.cloudinary.api_secret, algorithm),
        "resource_type": asset.resource_type,
        "created_at": asset.created_at,
        "tags": asset.tags,
        "bytes": asset.bytes,
        "type": asset.delivery_type,
        "etag": &asset.sha256[..asset.sha256.len().min(32)],
        "placeholder": false,
        "url": url,
        "secure_url": url,
        "folder": asset.folder,
        "original_filename": asset.original_filename,
        "api_key": app.cloudinary.api_key,
    });
    if let Some(object) = value.as_object_mut() {
        if !asset.format.is_empty() {
            object.insert("format".into(), json!(asset.format));
        }
        if let Some(context) = &asset.context {
            object.insert("context".into(), json!({ "custom": context }));
        }
    }
    value
}

// ---------------------------------------------------------------------------------------------
// Chunked uploads

/// `Content-Range: bytes START-END/TOTAL`; TOTAL is `-1` (or `*`) when the client does not know
/// it yet, as the Node SDK sends on every chunk but the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRange {
    pub start: u64,
    pub end: u64,
    pub total: Option<u64>,
}

impl ChunkRange {
    fn len(&self) -> u64 {
        // `end >= start` by construction; saturating keeps `bytes 0-18446744073709551615`
        // from overflowing (its length then fails to match any real chunk).
        (self.end - self.start).saturating_add(1)
    }
}

pub(crate) fn parse_content_range(value: &str) -> Result<ChunkRange, String> {
    let malformed = || {
        format!("Content-Range `{value}` is not `bytes START-END/TOTAL` (e.g. bytes 0-5999999/22000000)")
    };
    let rest = value.trim().strip_prefix("bytes ").ok_or_else(malformed)?;
    let (span, total) = rest.split_once('/').ok_or_else(malformed)?;
    let (start, end) = span.split_once('-').ok_or_else(malformed)?;
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u64>().ok()
    };
    let start = number(start).ok_or_else(malformed)?;
    let end = number(end).ok_or_else(malformed)?;
    let total = match total {
        "-1" | "*" => None,
        t => Some(number(t).ok_or_else(malformed)?),
    };
    if end < start {
        return Err(format!(
            "Content-Range `{value}` ends before it starts: END must be at least START"
        ));
    }
    if let Some(total) = total {
        if end >= total {
            return Err(format!(
                "Content-Range `{value}` ends at byte {end}, beyond the total of {total} bytes (END is the last byte's index)"
            ));
        }
    }
    Ok(ChunkRange { start, end, total })
}

/// The chunk headers, if this is a chunk: both `X-Unique-Upload-Id` and `Content-Range`.
fn chunk_headers(headers: &HeaderMap) -> Result<Option<(String, ChunkRange)>, ApiError> {
    let id = headers.get("x-unique-upload-id");
    let range = headers.get(header::CONTENT_RANGE);
    let (id, range) = match (id, range) {
        (None, None) => return Ok(None),
        (Some(id), Some(range)) => (id, range),
        _ => {
            return Err(bad_request(
                "A chunked upload needs both X-Unique-Upload-Id and Content-Range (bytes START-END/TOTAL) on every chunk",
            ))
        }
    };
    let id = id
        .to_str()
        .ok()
        .filter(|id| !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            bad_request("X-Unique-Upload-Id must be 1 to 255 visible ASCII characters, the same on every chunk of one upload")
        })?;
    let range = range
        .to_str()
        .map_err(|_| bad_request("Content-Range is not ASCII"))
        .and_then(|r| parse_content_range(r).map_err(bad_request))?;
    Ok(Some((id.to_owned(), range)))
}

/// What is on disk about a chunked upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChunkState {
    upload_id: String,
    /// The resource type of the URL the chunks go to.
    resource_type: String,
    total: Option<u64>,
    /// Bytes appended and acknowledged; the partial file may hold more after a crash.
    committed: u64,
    /// The first chunk's parameters except timestamp and signature: every chunk must repeat them.
    params: BTreeMap<String, String>,
    /// Set once assembled: resends then get the stored asset.
    completed: Option<Completed>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Completed {
    resource_type: String,
    delivery_type: String,
    public_id: String,
}

struct Chunk<'a> {
    cloud: &'a str,
    resource_type: &'a str,
    upload_id: &'a str,
    range: ChunkRange,
    params: &'a UploadParams,
    fields: &'a BTreeMap<String, String>,
    algorithm: Algorithm,
}

async fn receive_chunk(
    app: &SandboxState,
    chunk: Chunk<'_>,
    file: ReceivedFile,
    fault: Option<Fault>,
) -> Result<Response, ApiError> {
    let range = chunk.range;
    let id = chunk.upload_id;
    if file.size != range.len() {
        return Err(bad_request(format!(
            "Content-Range bytes {}-{} announces {} bytes, but the chunk's file part carries {}",
            range.start,
            range.end,
            range.len(),
            file.size
        )));
    }
    // Checked on the range's end too: with an unknown total (-1) the chunks alone say how big
    // the file is getting.
    if range.total.is_some_and(|total| total > app.max_file_size)
        || range.end.saturating_add(1) > app.max_file_size
    {
        return Err(ApiError::cl(
            StatusCode::PAYLOAD_TOO_LARGE,
            form::too_large_message(Flavor::Cloudinary, app.max_file_size),
        ));
    }
    if let Some(fault) = fault {
        return Ok(faults::answer(fault, Flavor::Cloudinary));
    }
    let key = Store::chunk_key(chunk.cloud, id);
    let lock = app.store.chunk_lock(&key);
    let _serialised = lock.lock().await;
    let state_path = app.store.chunk_state_path(&key);
    let part_path = app.store.chunk_part_path(&key);
    let identity: BTreeMap<String, String> = chunk
        .fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "timestamp" | "signature"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut state = match Store::read_json::<ChunkState>(&state_path)
        .await
        .map_err(|err| internal("reading the chunked upload's state", err))?
    {
        None if range.start != 0 => {
            return Err(bad_request(format!(
                "Upload {id} has no data yet, but this chunk starts at byte {}: send the chunk starting at byte 0 first",
                range.start
            )))
        }
        None => ChunkState {
            upload_id: id.to_owned(),
            resource_type: chunk.resource_type.to_owned(),
            total: range.total,
            committed: 0,
            params: identity,
            completed: None,
        },
        Some(mut state) => {
            if let Some(done) = &state.completed {
                return completed_response(app, id, done, chunk.algorithm).await;
            }
            if state.resource_type != chunk.resource_type {
                return Err(bad_request(format!(
                    "Upload {id} was started as resource type {}, but this chunk is sent as {}: send every chunk to the same URL",
                    state.resource_type, chunk.resource_type
                )));
            }
            if state.params != identity {
                let differing = state
                    .params
                    .keys()
                    .chain(identity.keys())
                    .find(|k| state.params.get(*k) != identity.get(*k))
                    .cloned()
                    .unwrap_or_default();
                return Err(bad_request(format!(
                    "This chunk's parameters differ from the first chunk's of upload {id} (at `{differing}`): send the same upload parameters with every chunk"
                )));
            }
            match (state.total, range.total) {
                (Some(before), Some(now)) if before != now => {
                    return Err(bad_request(format!(
                        "Content-Range gives a total of {now} bytes, but earlier chunks of upload {id} gave {before}: the total must not change"
                    )))
                }
                (None, Some(now)) => state.total = Some(now),
                _ => {}
            }
            state
        }
    };
    if let Some(total) = state.total {
        if range.end >= total || state.committed > total {
            return Err(bad_request(format!(
                "Chunk bytes {}-{} lie beyond the total of {total} bytes of upload {id}",
                range.start, range.end
            )));
        }
    }
    if range.end < state.committed {
        // A resend of data already received (the client missed our answer): acknowledge it
        // and change nothing, unless all data is in and only the assembly is missing.
        if state.total == Some(state.committed) {
            return assemble(app, &chunk, state, &state_path, &part_path, &file).await;
        }
        return Ok(Json(progress(id, &state)).into_response());
    }
    if range.start > state.committed {
        return Err(bad_request(format!(
            "Chunk bytes {}-{} of upload {id} leave a gap: only bytes 0-{} were received; send the chunk starting at byte {} next",
            range.start,
            range.end,
            state.committed.saturating_sub(1),
            state.committed
        )));
    }
    if range.start < state.committed {
        return Err(bad_request(format!(
            "Chunk bytes {}-{} of upload {id} overlap the {} bytes already received without matching them: send the chunk starting at byte {}",
            range.start, range.end, state.committed, state.committed
        )));
    }
    Store::append_chunk(
        part_path.clone(),
        file.temp.path().to_path_buf(),
        state.committed,
    )
    .await
    .map_err(|err| internal("appending the chunk", err))?;
    state.committed = range.end + 1;
    app.store
        .write_json_atomic(&state_path, &state)
        .await
        .map_err(|err| internal("recording the chunk", err))?;
    if state.total == Some(state.committed) {
        return assemble(app, &chunk, state, &state_path, &part_path, &file).await;
    }
    Ok(Json(progress(id, &state)).into_response())
}

fn progress(upload_id: &str, state: &ChunkState) -> Value {
    json!({
        "done": false,
        "upload_id": upload_id,
        "bytes_received": state.committed,
        "total_bytes": state.total,
    })
}

/// All bytes are in: the partial file becomes the stored asset.
async fn assemble(
    app: &SandboxState,
    chunk: &Chunk<'_>,
    mut state: ChunkState,
    state_path: &std::path::Path,
    part_path: &std::path::Path,
    last: &ReceivedFile,
) -> Result<Response, ApiError> {
    let sha256 = Store::hash_file(part_path.to_path_buf())
        .await
        .map_err(|err| internal("reading the assembled upload", err))?;
    // Decided on the whole file's first bytes: a later chunk starts anywhere in it.
    let head = read_head(part_path)
        .await
        .map_err(|err| internal("reading the assembled upload", err))?;
    let content = Content::new(&head, &last.file_name, last.content_type.as_deref());
    let mime = content.mime();
    let stored_type = resolve_resource_type(chunk.resource_type, &mime)?;
    let upload = Upload {
        resource_type: stored_type,
        params: chunk.params,
        content,
        mime: &mime,
        size: state.committed,
        sha256: &sha256,
        upload_id: Some(chunk.upload_id),
        algorithm: chunk.algorithm,
    };
    let (asset, response) =
        commit(app, upload, BlobSource::Partial(part_path.to_path_buf())).await?;
    state.completed = Some(Completed {
        resource_type: asset.resource_type,
        delivery_type: asset.delivery_type,
        public_id: asset.public_id,
    });
    if let Err(err) = app.store.write_json_atomic(state_path, &state).await {
        // The asset is stored and in the ledger; only a resend of a chunk would now fail.
        tracing::warn!(
            "cannot mark chunked upload {} complete: {err}",
            chunk.upload_id
        );
    }
    Ok(Json(response).into_response())
}

/// The first [`sniff::SNIFF_LEN`] bytes of a file (fewer if it is shorter).
async fn read_head(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path).await?;
    let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
    file.take(sniff::SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .await?;
    Ok(head)
}

async fn completed_response(
    app: &SandboxState,
    upload_id: &str,
    done: &Completed,
    algorithm: Algorithm,
) -> Result<Response, ApiError> {
    let key = ClKey {
        resource_type: done.resource_type.clone(),
        delivery_type: done.delivery_type.clone(),
        public_id: done.public_id.clone(),
    };
    let index = app.store.index.read().await;
    match index.cl.get(&key) {
        Some(asset) => Ok(Json(asset_json(app, asset, algorithm)).into_response()),
        None => Err(bad_request(format!(
            "Upload {upload_id} was completed as {}, which has since been deleted: start a new upload with a new X-Unique-Upload-Id",
            done.public_id
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Destroy, resource details, private downloads, delivery

async fn destroy(
    State(app): State<Arc<SandboxState>>,
    Path((cloud, resource_type)): Path<(String, String)>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let fields = read_params(&app, req).await?;
    check_cloud(&app, &cloud)?;
    check_stored_resource_type(&resource_type)?;
    authenticate(&app, &fields, dropkey_core::unix_now())?;
    let public_id = fields
        .get("public_id")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad_request("Missing required parameter - public_id"))?;
    let delivery_type = fields
        .get("type")
        .filter(|t| !t.is_empty())
        .map_or("upload", String::as_str);
    if !DELIVERY_TYPES.contains(&delivery_type) {
        return Err(bad_request(format!(
            "Invalid type {delivery_type}: use upload, private or authenticated"
        )));
    }
    if let Some(value) = fields.get("invalidate") {
        if parse_bool(value).is_none() {
            return Err(bad_request(format!(
                "Invalid boolean parameter invalidate - {value}: use true or false"
            )));
        }
    }
    let key = ClKey {
        resource_type,
        delivery_type: delivery_type.to_owned(),
        public_id: public_id.clone(),
    };
    let mut index = app.store.index.write().await;
    let Some(asset) = index.cl.remove(&key) else {
        return Ok(Json(json!({ "result": "not found" })));
    };
    if let Err(err) = app
        .store
        .remove(&app.store.cl_meta_path(&asset.asset_id), &asset.blob)
        .await
    {
        index.cl.insert(key, asset);
        return Err(internal("deleting the asset", err));
    }
    Ok(Json(json!({ "result": "ok" })))
}

/// The parameters of a non-upload POST: form-urlencoded, multipart without a file, or a JSON
/// object, as the SDKs send them.
async fn read_params(
    app: &SandboxState,
    req: Request,
) -> Result<BTreeMap<String, String>, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(req, &())
            .await
            .map_err(|rejection| {
                bad_request(format!(
                    "Malformed multipart body ({})",
                    rejection.body_text()
                ))
            })?;
        let limits = FormLimits {
            tmp_dir: app.store.tmp_dir(),
            max_file_size: app.max_file_size,
            flavor: Flavor::Cloudinary,
            // Parameters only: a file part here is refused.
            discard: false,
        };
        // Refused as soon as it starts, so a file given as text is neither decoded nor fetched.
        let mut no_file = |_: &BTreeMap<String, String>| -> Result<(), ApiError> {
            Err(bad_request(
                "This endpoint takes no file: drop the `file` field",
            ))
        };
        let form = form::read_form_gated(&mut multipart, limits, &mut no_file)
            .await
            .map_err(|failure| failure.error)?;
        return Ok(form.fields);
    }
    let body = axum::body::to_bytes(req.into_body(), MAX_FIELDS_BYTES)
        .await
        .map_err(|_| {
            ApiError::cl(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The request body is over {MAX_FIELDS_BYTES} bytes or was cut short"),
            )
        })?;
    if content_type.starts_with("application/json") {
        let object: serde_json::Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|err| bad_request(format!("The JSON body is not an object: {err}")))?;
        let mut params = BTreeMap::new();
        for (key, value) in object {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(bad_request(format!(
                        "Parameter {key} must be a string, number or boolean"
                    )))
                }
            };
            params.insert(key, text);
        }
        return Ok(params);
    }
    unique_pairs(url::form_urlencoded::parse(&body))
}

/// Query or form pairs into a map, refusing a name given twice (it would be ambiguous which
/// value was signed).
fn unique_pairs<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut params = BTreeMap::new();
    for (key, value) in pairs {
        if params.insert(key.to_string(), value.to_string()).is_some() {
            return Err(bad_request(format!(
                "Parameter {key} is given twice: give each parameter once"
            )));
        }
    }
    Ok(params)
}

/// Admin API: HTTP Basic with the API key and secret.
async fn resource(
    State(app): State<Arc<SandboxState>>,
    Path((cloud, resource_type, delivery_type, public_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    check_cloud(&app, &cloud)?;
    let Some((user, password)) = super::basic_auth(&headers) else {
        return Err(unauthorized(
            "Must supply api_key: send HTTP Basic auth with the API key as the username and the API secret as the password",
        ));
    };
    let secret = app.cloudinary.api_secret.expose_secret();
    if *user != app.cloudinary.api_key || !super::ct_eq(password.as_bytes(), secret.as_bytes()) {
        return Err(unauthorized(format!(
            "Invalid credentials for API key {}: use this cloud's API key and API secret",
            user.as_str()
        )));
    }
    check_stored_resource_type(&resource_type)?;
    let key = ClKey {
        resource_type,
        delivery_type,
        public_id,
    };
    let index = app.store.index.read().await;
    let asset = index
        .cl
        .get(&key)
        .ok_or_else(|| not_found(&key.public_id))?;
    let mut value = asset_json(&app, asset, Algorithm::Sha1);
    if let Some(object) = value.as_object_mut() {
        // The Admin API describes the resource; the upload-only fields are not part of it.
        for field in ["signature", "api_key", "original_filename"] {
            object.remove(field);
        }
    }
    Ok(Json(value))
}

/// A private download link (`dropkey_core::sign::cloudinary::private_download_url`): every query
/// parameter but `api_key` and `signature` is signed; `expires_at` (default: an hour after
/// `timestamp`) must not be past.
async fn download(
    State(app): State<Arc<SandboxState>>,
    Path((cloud, resource_type)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    check_cloud(&app, &cloud)?;
    check_stored_resource_type(&resource_type)?;
    let query = uri.query().unwrap_or_default();
    let params = unique_pairs(url::form_urlencoded::parse(query.as_bytes()))?;
    check_api_key(&app, &params)?;
    let signature = params
        .get("signature")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| unauthorized("Missing required parameter - signature"))?;
    verify_signature(&app, &params, signature)
        .map_err(|string| invalid_signature(signature, &string))?;
    let timestamp = params
        .get("timestamp")
        .and_then(|t| super::parse_int(t))
        .ok_or_else(|| bad_request("Missing or invalid parameter - timestamp"))?;
    let expires_at = match params.get("expires_at") {
        Some(text) => super::parse_int(text)
            .ok_or_else(|| bad_request(format!("Invalid expires_at {text}: give a Unix time")))?,
        None => timestamp.saturating_add(3600),
    };
    let now = dropkey_core::unix_now();
    if now > expires_at {
        return Err(ApiError::cl(
            StatusCode::FORBIDDEN,
            format!(
                "This download link expired at {} (the sandbox's clock reads {}): request a new one",
                time::cloudinary_time(expires_at),
                time::cloudinary_time(now)
            ),
        ));
    }
    let public_id = params
        .get("public_id")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad_request("Missing required parameter - public_id"))?;
    let delivery_type = params
        .get("type")
        .filter(|t| !t.is_empty())
        .map_or("upload", String::as_str);
    let key = ClKey {
        resource_type,
        delivery_type: delivery_type.to_owned(),
        public_id: public_id.clone(),
    };
    let asset = {
        let index = app.store.index.read().await;
        index.cl.get(&key).cloned()
    }
    .ok_or_else(|| not_found(public_id))?;
    if let Some(format) = params.get("format").filter(|f| !f.is_empty()) {
        if !asset.format.is_empty() && !format.eq_ignore_ascii_case(&asset.format) {
            return Err(bad_request(format!(
                "The sandbox does not convert formats: {public_id} is stored as {}; ask for format {} or none",
                asset.format, asset.format
            )));
        }
    }
    let attachment = match params.get("attachment").map(String::as_str) {
        None => false,
        Some(value) => parse_bool(value).ok_or_else(|| {
            bad_request(format!("Invalid boolean parameter attachment - {value}"))
        })?,
    };
    let disposition = attachment.then(|| {
        let name = asset.public_id.rsplit('/').next().unwrap_or_default();
        let name = if asset.format.is_empty() {
            name.to_owned()
        } else {
            format!("{name}.{}", asset.format)
        };
        format!(
            "attachment; filename=\"{}\"",
            name.replace(['"', '\\'], "_")
        )
    });
    super::serve_blob(&app.store.blob_path(&asset.blob), &asset.mime, disposition)
        .await
        .map_err(|err| internal("reading the stored file", err))
}

/// Delivery of public assets: `/res/{cloud}/{resource_type}/{type}/v{version}/{public_id}.{format}`
/// (the version is optional, as at Cloudinary; transformations are not supported).
async fn deliver(
    State(app): State<Arc<SandboxState>>,
    Path((cloud, resource_type, delivery_type, rest)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    check_cloud(&app, &cloud)?;
    check_stored_resource_type(&resource_type)?;
    if delivery_type != "upload" {
        return Err(ApiError::cl(
            StatusCode::FORBIDDEN,
            format!(
                "Resources of type {delivery_type} are not delivered publicly: fetch them through a signed download link (/v1_1/{cloud}/{resource_type}/download, e.g. from `dropkey private-url`)"
            ),
        ));
    }
    let rest = match rest.split_once('/') {
        Some((version, tail))
            if version.len() > 1
                && version.starts_with('v')
                && version[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            tail
        }
        _ => rest.as_str(),
    };
    let asset = {
        let index = app.store.index.read().await;
        let lookup = |public_id: &str| {
            index.cl.get(&ClKey {
                resource_type: resource_type.clone(),
                delivery_type: delivery_type.clone(),
                public_id: public_id.to_owned(),
            })
        };
        let with_format = rest.rsplit_once('.').and_then(|(id, ext)| {
            lookup(id).filter(|a| !a.format.is_empty() && a.format.eq_ignore_ascii_case(ext))
        });
        with_format.or_else(|| lookup(rest)).cloned()
    }
    .ok_or_else(|| not_found(rest))?;
    super::serve_blob(&app.store.blob_path(&asset.blob), &asset.mime, None)
        .await
        .map_err(|err| internal("reading the stored file", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-99/250"),
            Ok(ChunkRange {
                start: 0,
                end: 99,
                total: Some(250)
            })
        );
        assert_eq!(
            parse_content_range("bytes 100-199/-1"),
            Ok(ChunkRange {
                start: 100,
                end: 199,
                total: None
            })
        );
        assert_eq!(parse_content_range("bytes 0-0/1").map(|r| r.len()), Ok(1));
        for bad in [
            "0-99/250",
            "bytes 0-99",
            "bytes 99-0/250",
            "bytes 0-250/250",
            "bytes -1-5/10",
            "bytes 0-x/10",
            "bytes 0-9/+10",
            "bytes */10",
        ] {
            assert!(parse_content_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upload_params_validate() {
        let p = UploadParams::parse(&params(&[])).unwrap();
        assert_eq!(p.delivery_type, "upload");
        assert!(p.unique_filename && p.overwrite && !p.use_filename);
        let p = UploadParams::parse(&params(&[
            ("folder", "/kyc/1/"),
            ("public_id", "passport"),
            ("tags", "a, b,"),
            ("type", "private"),
            ("use_filename", "1"),
            ("context", "alt=x|k=v=w"),
        ]))
        .unwrap();
        assert_eq!(p.folder, "kyc/1");
        assert_eq!(p.public_id.as_deref(), Some("passport"));
        assert_eq!(p.tags, ["a", "b"]);
        assert_eq!(p.delivery_type, "private");
        assert!(p.use_filename);
        assert_eq!(p.context.unwrap()["k"], "v=w");
        // The SDKs' escapes (`encode_context`) are undone.
        let p = UploadParams::parse(&params(&[(
            "context",
            r"alt=plain|caption=a\=b|note=x\|y|path=c:\dir|odd=a\\=b",
        )]))
        .unwrap();
        let context = p.context.unwrap();
        assert_eq!(context.len(), 5, "{context:?}");
        assert_eq!(context["alt"], "plain");
        assert_eq!(context["caption"], "a=b");
        assert_eq!(context["note"], "x|y");
        assert_eq!(context["path"], r"c:\dir");
        assert_eq!(context["odd"], r"a\=b");
        for bad in [
            vec![("type", "public")],
            vec![("overwrite", "yes")],
            vec![("public_id", "a/../b")],
            vec![("public_id", "/a")],
            vec![("public_id", "a?b")],
            vec![("folder", "a//b")],
            vec![("upload_preset", "p")],
            vec![("context", "=x")],
        ] {
            assert!(UploadParams::parse(&params(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resource_types_and_formats() {
        assert_eq!(resolve_resource_type("auto", "image/png").unwrap(), "image");
        assert_eq!(
            resolve_resource_type("auto", "audio/mpeg").unwrap(),
            "video"
        );
        assert_eq!(resolve_resource_type("auto", "text/plain").unwrap(), "raw");
        assert_eq!(
            resolve_resource_type("image", "application/pdf").unwrap(),
            "image"
        );
        assert!(resolve_resource_type("image", "text/plain").is_err());
        assert!(resolve_resource_type("video", "image/png").is_err());
        assert_eq!(resolve_resource_type("raw", "image/png").unwrap(), "raw");
        assert_eq!(format_of("a.JPEG", None), "jpg");
        assert_eq!(format_of("a", Some("image/png")), "png");
        assert_eq!(format_of("a", None), "");
        assert_eq!(clean_stem("my file?#"), "my file__");
    }
}
