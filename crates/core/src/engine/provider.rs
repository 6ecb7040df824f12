//! One upload attempt, per provider: sign with a fresh token, build the multipart body from
//! the file, send, and read the answer. Also the provider calls that act on uploaded files
//! (details, delete). The retry loop around these lives in the engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use reqwest::multipart::{Form, Part};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::body::file_body;
use super::clock::SkewClock;
use super::identity::{open_verified, IdentityError};
use super::job::Uploaded;
use super::retry::{classify_status, classify_transport, Failure};
use super::store::JobRecord;
use crate::config::{Cloudinary, ImageKit, ImageKitAuth, Profile, Provider, MIN_CHUNK};
use crate::metadata::Plan;
use crate::sign::cloudinary::{DeliveryType, ResourceType};
use crate::sign::{cloudinary, imagekit, Params};

/// How bodies are read and when Cloudinary uploads go in chunks.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Bytes per stream frame (each one write to the socket).
    pub frame: usize,
    /// Cloudinary files above this many bytes go up in chunks.
    pub chunk_threshold: u64,
    pub chunk_size: u64,
}

impl Default for Transfer {
    fn default() -> Self {
        let upload = crate::config::UploadSettings::default();
        Self {
            // 1 MiB frames: the size measured fastest here (shared/tech-notes.md).
            frame: 1024 * 1024,
            chunk_threshold: upload.chunk_threshold,
            chunk_size: upload.chunk_size,
        }
    }
}

/// Everything one attempt needs.
pub struct Attempt<'a> {
    pub http: &'a reqwest::Client,
    pub clock: &'a SkewClock,
    pub profile: &'a Profile,
    pub secret: &'a SecretString,
    pub job: &'a JobRecord,
    pub transfer: &'a Transfer,
    /// Grows as bytes leave; reset by the caller per attempt.
    pub sent: Arc<AtomicU64>,
    /// Distinguishes this attempt's token from every other one made in the same second.
    pub nonce: u64,
    /// The bytes to send: the file after its metadata policy.
    pub plan: &'a Arc<Plan>,
    /// The scaled-down copy the plan reads, when the image was resized (`max_dimension`).
    pub resized: Option<&'a std::path::Path>,
}

/// Called after each acknowledged Cloudinary chunk with (upload id, bytes acknowledged).
pub type ChunkSink<'a> = &'a mut (dyn FnMut(&str, u64) + Send);

pub async fn upload(attempt: &Attempt<'_>, on_chunk: ChunkSink<'_>) -> Result<Uploaded, Failure> {
    sandbox_identity(attempt.profile, attempt.secret).await?;
    match &attempt.profile.provider {
        Provider::ImageKit(ik) => upload_imagekit(attempt, ik).await,
        Provider::Cloudinary(cl) => {
            if attempt.plan.len() > attempt.transfer.chunk_threshold {
                upload_cloudinary_chunked(attempt, cl, on_chunk).await
            } else {
                upload_cloudinary(attempt, cl).await
            }
        }
    }
}

/// For the built-in sandbox profile: the listener must prove it is this user's sandbox before it
/// gets a file or the key (see `crate::sandbox_identity`). Nothing answering is an outage (the
/// sandbox may be restarting); a wrong answer is permanent.
async fn sandbox_identity(profile: &Profile, secret: &SecretString) -> Result<(), Failure> {
    use crate::sandbox_identity::{check_identity, IdentityError};
    let Some(addr) = crate::sandbox_identity::builtin_target(profile) else {
        return Ok(());
    };
    match check_identity(addr, secret).await {
        Ok(()) => Ok(()),
        // Down or restarting: park at the sandbox's gate like any unreachable provider.
        Err(IdentityError::Unreachable(reason)) => Err(Failure::Unreachable {
            reason: format!("the local sandbox at {addr} does not answer ({reason})"),
            origin: format!("http://{addr}"),
        }),
        Err(IdentityError::Refused(reason)) => Err(Failure::permanent(format!(
            "something other than your Dropkey sandbox is listening at {addr} ({reason}), so \
             nothing was sent to it: stop that process, or give the sandbox another address \
             with [sandbox] listen in the config file"
        ))),
    }
}

fn file_part(attempt: &Attempt<'_>, range: std::ops::Range<u64>) -> Result<Part, Failure> {
    let len = range.end - range.start;
    let path = &attempt.job.path;
    // Opened once and checked on the handle the body then reads: what is sent is the file that
    // was queued. The hash (watched files) is checked when an attempt reads from byte 0; later
    // chunks of a chunked upload check device, inode, size and mtime.
    let file = match attempt.resized {
        // Dropkey's own copy, made from the checked file when the job started.
        Some(copy) => std::fs::File::open(copy).map_err(|err| {
            Failure::permanent(format!("the resized copy of {}: {err}", path.display()))
        })?,
        None => {
            open_verified(path, attempt.job.file.as_ref(), range.start == 0).map_err(|err| {
                if matches!(err, IdentityError::Changed(_)) {
                    tracing::warn!(job = attempt.job.id.0, "{}: {err}", path.display());
                }
                Failure::permanent(format!("{}: {err}", path.display()))
            })?
        }
    };
    let source = attempt.plan.clone().reader(file);
    let body = file_body(source, range, attempt.transfer.frame, attempt.sent.clone())
        .map_err(|err| Failure::permanent(format!("cannot read {}: {err}", path.display())))?;
    let mime = mime_guess::from_path(&attempt.job.file_name).first_or_octet_stream();
    Part::stream_with_length(body, len)
        .file_name(attempt.job.file_name.clone())
        .mime_str(mime.as_ref())
        .map_err(|err| Failure::permanent(format!("bad content type {mime}: {err}")))
}

fn text_fields(mut form: Form, fields: &Params) -> Form {
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    form
}

async fn send(
    attempt: &Attempt<'_>,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Value), Failure> {
    let response = request.send().await.map_err(|e| classify_transport(&e))?;
    attempt.clock.observe(response.headers());
    let status = response.status();
    let headers = response.headers().clone();
    let text = body_text(response).await?;
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, headers, json))
}

/// The most a provider's (or a token server's) answer may hold. Real answers are a few KiB; a
/// peer that streams more is broken or hostile, and must not grow our memory.
pub const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// Reads an answer's body, at most `limit` bytes, however long the peer keeps sending.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Result<Vec<u8>, u64>, reqwest::Error> {
    if let Some(len) = response.content_length() {
        if len > limit as u64 {
            return Ok(Err(len));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(Err((body.len() + chunk.len()) as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body))
}

async fn body_text(response: reqwest::Response) -> Result<String, Failure> {
    let from = response.url().origin().ascii_serialization();
    match read_limited(response, MAX_ANSWER)
        .await
        .map_err(|e| classify_transport(&e))?
    {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(_) => Err(Failure::permanent(format!(
            "the answer from {from} is over {} MiB, far more than any provider sends: check the profile's URLs",
            MAX_ANSWER / (1024 * 1024)
        ))),
    }
}

async fn body_json(response: reqwest::Response) -> Result<Value, Failure> {
    let text = body_text(response).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The provider's error message from an ImageKit (`message`) or Cloudinary (`error.message`)
/// error body.
fn provider_message(body: &Value) -> String {
    body.get("message")
        .or_else(|| body.get("error").and_then(|e| e.get("message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| match body {
            Value::String(s) if !s.is_empty() => s.chars().take(300).collect(),
            other => other.to_string(),
        })
}

fn rejected(
    attempt: &Attempt<'_>,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    signed: &str,
) -> Failure {
    let message = provider_message(body);
    match classify_status(status, headers, &message, attempt.clock.now()) {
        Failure::Permanent { reason } if matches!(status.as_u16(), 400 | 401 | 403) => {
            // A rejected signature explains itself: what we signed, beside what we sent.
            Failure::Permanent {
                reason: format!("{reason} (Dropkey signed {signed}; the secret is not shown)"),
            }
        }
        other => other,
    }
}

async fn upload_imagekit(attempt: &Attempt<'_>, ik: &ImageKit) -> Result<Uploaded, Failure> {
    let job = attempt.job;
    let mut fields = job.params.clone();
    fields
        .entry("fileName".into())
        .or_insert_with(|| job.file_name.clone());
    let now = attempt.clock.now();
    let signed;
    let mut upload_url = ik.upload_url.clone();
    let mut form = match ik.auth {
        ImageKitAuth::V2 => {
            // Two tokens for the same params in the same second would be byte-identical, and a
            // token is one-time: vary `exp` per attempt. The engine's nonce counts attempts, so
            // two attempts share an `exp` only with EXP_SPREAD attempts between them in one
            // second, far above what one engine sends (about 1,800/s measured on loopback; with
            // 600 a fast batch reused a retry's token).
            let exp = v2_exp(now, attempt.nonce);
            let token = imagekit::sign_v2(attempt.secret, &ik.public_key, &fields, now, exp)
                .map_err(|e| Failure::permanent(e.to_string()))?;
            signed = format!(
                "the JWT payload {} with iat {now} and exp {exp}",
                serde_json::to_string(&fields).unwrap_or_default()
            );
            text_fields(Form::new(), &fields).text("token", token)
        }
        ImageKitAuth::V1 => {
            let token = uuid::Uuid::new_v4().to_string();
            let expire = now + 1800 - (attempt.nonce % 600) as i64;
            let auth = imagekit::sign_v1(attempt.secret, &token, expire, now)
                .map_err(|e| Failure::permanent(e.to_string()))?;
            signed = format!("token + expire = \"{token}{expire}\" (HMAC-SHA1)");
            text_fields(Form::new(), &fields)
                .text("publicKey", ik.public_key.clone())
                .text("token", auth.token)
                .text("expire", auth.expire.to_string())
                .text("signature", auth.signature)
        }
        ImageKitAuth::Remote => {
            // The profile's secret is the token server's bearer token. A fresh one-time token
            // per attempt; the upload sends exactly the fields the server signed.
            let remote = remote_token(attempt, ik, &fields).await?;
            signed = format!(
                "nothing itself: the token server signed the fields {}",
                serde_json::to_string(&remote.fields).unwrap_or_default()
            );
            upload_url = remote.upload_url;
            text_fields(Form::new(), &remote.fields).text("token", remote.token)
        }
    };
    form = form.part("file", file_part(attempt, 0..attempt.plan.len())?);
    let request = attempt.http.post(upload_url).multipart(form);
    let (status, headers, body) = send(attempt, request).await?;
    if !status.is_success() {
        return Err(rejected(attempt, status, &headers, &body, &signed));
    }
    let id = body.get("fileId").and_then(Value::as_str);
    let url = body.get("url").and_then(Value::as_str);
    match (id, url) {
        (Some(id), Some(url)) => Ok(Uploaded {
            sent: None,
            id: id.to_owned(),
            url: url.to_owned(),
            response: body.clone(),
        }),
        _ => Err(Failure::permanent(format!(
            "ImageKit answered {status} without fileId and url: {body}"
        ))),
    }
}

/// A token from the profile's token server (`dropkey serve`) for `fields`.
async fn remote_token(
    attempt: &Attempt<'_>,
    ik: &ImageKit,
    fields: &Params,
) -> Result<crate::remote_signer::RemoteToken, Failure> {
    let Some(token_url) = &ik.token_url else {
        return Err(Failure::permanent(format!(
            "profile `{}` uses auth = \"remote\" but has no token_url: add token_url = \"https://.../api/media/get-upload-token\"",
            attempt.profile.name
        )));
    };
    let remote = crate::remote_signer::fetch_upload_token(
        attempt.http,
        token_url,
        attempt.secret,
        None,
        fields,
    )
    .await
    .map_err(|err| {
        let reason = format!("profile `{}`: {err}", attempt.profile.name);
        match (&err, super::reach::origin(token_url)) {
            (crate::remote_signer::RemoteError::Unreachable { .. }, Some(origin)) => {
                Failure::Unreachable { reason, origin }
            }
            _ if err.is_retryable() => Failure::Transient {
                reason,
                retry_after: err.retry_after(),
            },
            _ => Failure::Permanent { reason },
        }
    })?;
    upload_url_allowed(&remote.upload_url, &ik.upload_url, token_url).map_err(|why| {
        Failure::permanent(format!(
            "profile `{}`: the token server at {} said to upload to {}, which {why}; the file was not sent",
            attempt.profile.name,
            token_url.origin().ascii_serialization(),
            remote.upload_url.origin().ascii_serialization(),
        ))
    })?;
    Ok(remote)
}

/// How many distinct V2 `exp` values one second of attempts can use; a token then lives at
/// least `V2_MAX_LIFETIME - EXP_SPREAD` seconds (10 minutes).
const EXP_SPREAD: u64 = 3000;

/// The `exp` of the V2 token of the attempt numbered `nonce`, signed at `now`.
fn v2_exp(now: i64, nonce: u64) -> i64 {
    now + imagekit::V2_MAX_LIFETIME - (nonce % EXP_SPREAD) as i64
}

/// The ImageKit upload host; a token server may send files there.
const IMAGEKIT_UPLOAD_HOST: &str = "upload.imagekit.io";

/// Where a token server may send this machine's files: ImageKit's upload host, the origin the
/// profile itself names (`upload_url`), or, when the token server is on this machine, this
/// machine. A token server cannot redirect files anywhere else.
fn upload_url_allowed(returned: &Url, profile_upload: &Url, token_url: &Url) -> Result<(), String> {
    crate::config::check_key_url(returned)?;
    let same_origin = returned.origin() == profile_upload.origin();
    let imagekit = returned.scheme() == "https"
        && returned.host_str() == Some(IMAGEKIT_UPLOAD_HOST)
        && returned.port().is_none();
    let local = crate::config::is_loopback(returned) && crate::config::is_loopback(token_url);
    if same_origin || imagekit || local {
        Ok(())
    } else {
        Err(format!(
            "is neither ImageKit's upload host nor the profile's upload_url ({}): add it as the profile's upload_url if you trust it",
            profile_upload.origin().ascii_serialization()
        ))
    }
}

fn cloudinary_upload_url(cl: &Cloudinary) -> String {
    format!(
        "{}/v1_1/{}/auto/upload",
        cl.api_url.as_str().trim_end_matches('/'),
        cl.cloud_name
    )
}

/// The signed text fields of a Cloudinary upload, and a description of what was signed.
fn cloudinary_fields(attempt: &Attempt<'_>, cl: &Cloudinary) -> (Params, String) {
    let mut fields = attempt.job.params.clone();
    fields.insert("timestamp".into(), attempt.clock.now().to_string());
    let signature = cloudinary::sign(&fields, attempt.secret, cloudinary::Algorithm::Sha1);
    let signed = format!(
        "\"{}\" + the API secret (SHA-1)",
        cloudinary::string_to_sign(&fields)
    );
    fields.insert("signature".into(), signature);
    fields.insert("api_key".into(), cl.api_key.clone());
    (fields, signed)
}

fn cloudinary_uploaded(status: reqwest::StatusCode, body: &Value) -> Result<Uploaded, Failure> {
    let id = body.get("public_id").and_then(Value::as_str);
    let url = body
        .get("secure_url")
        .or_else(|| body.get("url"))
        .and_then(Value::as_str);
    match (id, url) {
        (Some(id), Some(url)) => Ok(Uploaded {
            sent: None,
            id: id.to_owned(),
            url: url.to_owned(),
            response: body.clone(),
        }),
        _ => Err(Failure::permanent(format!(
            "Cloudinary answered {status} without public_id and secure_url: {body}"
        ))),
    }
}

async fn upload_cloudinary(attempt: &Attempt<'_>, cl: &Cloudinary) -> Result<Uploaded, Failure> {
    let (fields, signed) = cloudinary_fields(attempt, cl);
    let form =
        text_fields(Form::new(), &fields).part("file", file_part(attempt, 0..attempt.plan.len())?);
    let request = attempt.http.post(cloudinary_upload_url(cl)).multipart(form);
    let (status, headers, body) = send(attempt, request).await?;
    if !status.is_success() {
        return Err(rejected(attempt, status, &headers, &body, &signed));
    }
    cloudinary_uploaded(status, &body)
}

/// Cloudinary's chunked upload: every chunk is a full signed request carrying
/// `X-Unique-Upload-Id` and `Content-Range`. Starts from the last chunk the provider
/// acknowledged (recorded through `on_chunk`), so a crash or a failed attempt never resends what
/// already arrived.
async fn upload_cloudinary_chunked(
    attempt: &Attempt<'_>,
    cl: &Cloudinary,
    on_chunk: ChunkSink<'_>,
) -> Result<Uploaded, Failure> {
    let job = attempt.job;
    let total = attempt.plan.len();
    let chunk = attempt.transfer.chunk_size.max(MIN_CHUNK);
    let upload_id = job
        .upload_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let mut start = job.bytes_acked.min(total);
    attempt.sent.store(start, Ordering::Relaxed);
    if start == 0 {
        on_chunk(&upload_id, 0);
    }
    loop {
        let end = (start + chunk).min(total);
        let (fields, signed) = cloudinary_fields(attempt, cl);
        let form = text_fields(Form::new(), &fields).part("file", file_part(attempt, start..end)?);
        let request = attempt
            .http
            .post(cloudinary_upload_url(cl))
            .header("X-Unique-Upload-Id", &upload_id)
            .header(
                "Content-Range",
                format!("bytes {start}-{}/{total}", end.saturating_sub(1)),
            )
            .multipart(form);
        let (status, headers, body) = send(attempt, request).await?;
        if !status.is_success() {
            return Err(rejected(attempt, status, &headers, &body, &signed));
        }
        if end >= total {
            return cloudinary_uploaded(status, &body);
        }
        on_chunk(&upload_id, end);
        start = end;
    }
}

/// What `verify` learns about one uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteFile {
    Present { size: Option<u64> },
    Missing,
}

fn basic_auth(
    request: reqwest::RequestBuilder,
    user: &str,
    password: &SecretString,
) -> reqwest::RequestBuilder {
    request.basic_auth(user, Some(password.expose_secret()))
}

/// Asks the provider whether the file `id` still exists, and its size.
pub async fn details(
    http: &reqwest::Client,
    profile: &Profile,
    secret: &SecretString,
    id: &str,
    resource_type: ResourceType,
    delivery_type: DeliveryType,
) -> Result<RemoteFile, Failure> {
    sandbox_identity(profile, secret).await?;
    let request = match &profile.provider {
        Provider::ImageKit(ik) => http
            .get(format!(
                "{}/v1/files/{}/details",
                ik.api_url.as_str().trim_end_matches('/'),
                path_segment(id)
            ))
            .basic_auth(secret.expose_secret(), Some("")),
        Provider::Cloudinary(cl) => basic_auth(
            http.get(format!(
                "{}/v1_1/{}/resources/{resource_type}/{delivery_type}/{}",
                cl.api_url.as_str().trim_end_matches('/'),
                cl.cloud_name,
                id.split('/')
                    .map(path_segment)
                    .collect::<Vec<_>>()
                    .join("/")
            )),
            &cl.api_key,
            secret,
        ),
    };
    let response = request.send().await.map_err(|e| classify_transport(&e))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(RemoteFile::Missing);
    }
    let headers = response.headers().clone();
    let body = body_json(response).await?;
    if !status.is_success() {
        return Err(classify_status(
            status,
            &headers,
            &provider_message(&body),
            crate::unix_now(),
        ));
    }
    let size = body
        .get("size")
        .or_else(|| body.get("bytes"))
        .and_then(Value::as_u64);
    Ok(RemoteFile::Present { size })
}

/// Deletes the file `id` at the provider. `Ok(false)` when it was already gone.
pub async fn delete(
    http: &reqwest::Client,
    clock: &SkewClock,
    profile: &Profile,
    secret: &SecretString,
    id: &str,
    resource_type: ResourceType,
    delivery_type: DeliveryType,
) -> Result<bool, Failure> {
    sandbox_identity(profile, secret).await?;
    match &profile.provider {
        Provider::ImageKit(ik) => {
            let response = http
                .delete(format!(
                    "{}/v1/files/{}",
                    ik.api_url.as_str().trim_end_matches('/'),
                    path_segment(id)
                ))
                .basic_auth(secret.expose_secret(), Some(""))
                .send()
                .await
                .map_err(|e| classify_transport(&e))?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(false);
            }
            if status.is_success() {
                return Ok(true);
            }
            let headers = response.headers().clone();
            let body = body_json(response).await?;
            Err(classify_status(
                status,
                &headers,
                &provider_message(&body),
                clock.now(),
            ))
        }
        Provider::Cloudinary(cl) => {
            let mut fields = Params::new();
            fields.insert("public_id".into(), id.to_owned());
            fields.insert("type".into(), delivery_type.as_str().to_owned());
            fields.insert("timestamp".into(), clock.now().to_string());
            let signature = cloudinary::sign(&fields, secret, cloudinary::Algorithm::Sha1);
            fields.insert("signature".into(), signature);
            fields.insert("api_key".into(), cl.api_key.clone());
            let response = http
                .post(format!(
                    "{}/v1_1/{}/{resource_type}/destroy",
                    cl.api_url.as_str().trim_end_matches('/'),
                    cl.cloud_name
                ))
                .form(&fields)
                .send()
                .await
                .map_err(|e| classify_transport(&e))?;
            clock.observe(response.headers());
            let status = response.status();
            let headers = response.headers().clone();
            let body = body_json(response).await?;
            if !status.is_success() {
                return Err(classify_status(
                    status,
                    &headers,
                    &provider_message(&body),
                    clock.now(),
                ));
            }
            match body.get("result").and_then(Value::as_str) {
                Some("ok") => Ok(true),
                Some("not found") => Ok(false),
                _ => Err(Failure::permanent(format!("Cloudinary answered {body}"))),
            }
        }
    }
}

fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that answers with `head` and then `body_len` bytes, once per connection.
    async fn hostile_peer(head: &'static str, body_len: usize) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = body_len;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if s.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                    left -= n;
                }
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn answers_are_read_up_to_the_limit_only() {
        let client = reqwest::Client::new();
        // Declared too long: refused before reading.
        let url = hostile_peer("HTTP/1.1 200 OK\r\ncontent-length: 8388608\r\n\r\n", 0).await;
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(
            read_limited(response, MAX_ANSWER).await.unwrap(),
            Err(8_388_608)
        );
        // No length, a body that keeps coming: cut at the limit.
        let url = hostile_peer("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", 6 << 20).await;
        let response = client.get(&url).send().await.unwrap();
        let read = read_limited(response, MAX_ANSWER).await.unwrap();
        assert!(matches!(read, Err(n) if n > MAX_ANSWER as u64), "{read:?}");
        // A normal answer is read whole.
        let url = hostile_peer("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", 10).await;
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(
            read_limited(response, MAX_ANSWER).await.unwrap(),
            Ok(vec![b'x'; 10])
        );
    }

    #[test]
    fn attempts_in_one_second_get_distinct_v2_tokens() {
        // The retry that reused a token came 600 attempts after its first try.
        let exps: std::collections::HashSet<i64> =
            (0..EXP_SPREAD).map(|n| v2_exp(1_000, 7 + n)).collect();
        assert_eq!(exps.len(), EXP_SPREAD as usize);
        assert_ne!(v2_exp(1_000, 7), v2_exp(1_000, 607));
        assert!(exps.iter().all(|&e| e > 1_000 + 600 && e <= 1_000 + 3600));
    }

    #[test]
    fn a_token_server_cannot_send_files_anywhere() {
        let u = |s: &str| Url::parse(s).unwrap();
        let profile = u("https://upload.imagekit.io/api/v2/files/upload");
        let remote = u("https://tokens.example.com/api/media/get-upload-token");
        assert!(upload_url_allowed(
            &u("https://upload.imagekit.io/api/v2/files/upload"),
            &profile,
            &remote
        )
        .is_ok());
        for bad in [
            "https://evil.example.com/api/v2/files/upload",
            "http://upload.imagekit.io/api/v2/files/upload",
            "https://upload.imagekit.io:8443/api/v2/files/upload",
            "http://127.0.0.1:7371/api/v2/files/upload",
        ] {
            assert!(
                upload_url_allowed(&u(bad), &profile, &remote).is_err(),
                "{bad}"
            );
        }
        let own = u("https://media-proxy.example.com/upload");
        assert!(
            upload_url_allowed(&u("https://media-proxy.example.com/other"), &own, &remote).is_ok()
        );
        let local_tokens = u("http://127.0.0.1:8080/api/media/get-upload-token");
        assert!(upload_url_allowed(
            &u("http://127.0.0.1:7371/api/v2/files/upload"),
            &profile,
            &local_tokens
        )
        .is_ok());
    }
}
