//! ImageKit's side of the sandbox: Upload API V2 (JWT, ImageKit's Upload API V2 guide) and V1 (token + expire +
//! signature, ImageKit's V1 client-side upload guide), the file details and delete endpoints of the files API, and delivery
//! under [`IMAGEKIT_URL_PATH`], with signed URLs for private files.
//!
//! Strictness, in the order a request meets it: a server-side upload's key (HTTP Basic, 401)
//! on the headers; a token's signature (401) and lifetime (403 when expired or reused) as soon as
//! the fields carrying it have arrived, before the file part is written anywhere; then the form
//! against the JWT payload, and the upload parameters (400, naming the field). A token that
//! verified is spent even if the request then fails (ImageKit's V2 and V1 upload guides both say so); a forged
//! one is not recorded. Every refusal is answered after the body is read (or discarded), so the
//! client gets the error rather than a reset connection.
//!
//! `file` may be a file part, base64 (plain or a data URI) or a URL, as ImageKit's upload API
//! documents; URLs are fetched from loopback only (`remote`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest as _, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{json, Map, Value};

use super::conn::ConnHandle;
use super::error::{ApiError, Flavor};
use super::faults::{self, Fault};
use super::form::{self, FormLimits, ReceivedFile};
use super::store::{self, BlobSource, IkFile, LedgerEntry, TokenUse};
use super::{remote, time, SandboxState, IMAGEKIT_URL_PATH};
use dropkey_core::sign::imagekit::{NEVER_EXPIRES, V1_MAX_LIFETIME, V2_MAX_LIFETIME};

pub(crate) fn routes() -> Router<Arc<SandboxState>> {
    Router::new()
        .route("/api/v2/files/upload", post(upload_v2))
        .route("/api/v1/files/upload", post(upload_v1))
        .route("/v1/files/{file_id}/details", get(details))
        .route("/v1/files/{file_id}", axum::routing::delete(delete_file))
        .route(&format!("{IMAGEKIT_URL_PATH}/{{*path}}"), get(deliver))
}

/// Which upload API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    V2,
    V1,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V1 => "v1",
        }
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::ik(StatusCode::BAD_REQUEST, message)
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::ik(StatusCode::UNAUTHORIZED, message)
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::ik(StatusCode::FORBIDDEN, message)
}

fn not_found() -> ApiError {
    ApiError::ik(StatusCode::NOT_FOUND, "The requested file does not exist.")
}

// ---------------------------------------------------------------------------------------------
// Upload

async fn upload_v2(
    State(app): State<Arc<SandboxState>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    req: Request,
) -> Response {
    let response = upload(&app, &conn, req, Scheme::V2)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    app.faults.delay().await;
    response
}

async fn upload_v1(
    State(app): State<Arc<SandboxState>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    req: Request,
) -> Response {
    let response = upload(&app, &conn, req, Scheme::V1)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    app.faults.delay().await;
    response
}

async fn upload(
    app: &SandboxState,
    conn: &ConnHandle,
    req: Request,
    scheme: Scheme,
) -> Result<Response, ApiError> {
    // Server-side upload (ImageKit's documented server API, and what its server SDKs send): the
    // private key over HTTP Basic instead of a token. A wrong key is refused on the headers,
    // without a byte of the file kept (`drain` reads the body before the answer goes out).
    let server_side = req
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION);
    if server_side {
        check_private_key(app, req.headers())?;
    }
    let fault = app.faults.draw();
    match fault {
        Some(Fault::ConnectionReset) => return Ok(faults::reset(conn, req.into_body()).await),
        Some(Fault::SlowBody) => {
            return Ok(faults::slow_body(Flavor::ImageKit, req.into_body()).await)
        }
        _ => {}
    }
    let mut multipart = Multipart::from_request(req, &()).await.map_err(|rejection| {
        bad_request(format!(
            "The upload must be a multipart/form-data POST ({}): send the file and the parameters as form fields",
            rejection.body_text()
        ))
    })?;
    let limits = FormLimits {
        tmp_dir: app.store.tmp_dir(),
        max_file_size: app.max_file_size,
        flavor: Flavor::ImageKit,
        discard: app.discard,
    };
    let now = dropkey_core::unix_now();
    let mut auth = TokenAuth {
        app,
        scheme,
        now,
        verified: None,
    };
    let read = if server_side {
        form::read_form(&mut multipart, limits).await
    } else {
        form::read_form_gated(&mut multipart, limits, &mut |fields| {
            auth.check_before_file(fields)
        })
        .await
    };
    let form = match read {
        Ok(form) => form,
        Err(failure) => {
            // A token that verified is spent, whatever else is wrong with the request (docs
            // 001 and 003). A forged one is not recorded: it could never be used anyway, and
            // recording it would let anyone grow the used-token set.
            if !server_side {
                if let Some(token) = token_of(&failure.fields) {
                    if let Ok(exp) = auth.verify(&failure.fields, token) {
                        app.store
                            .consume_token(token, exp, now)
                            .await
                            .map_err(spend_failed)?;
                    }
                }
            }
            return Err(failure.error);
        }
    };
    let fields = &form.fields;
    let mut token_sha = None;
    let params = if server_side {
        if fields.contains_key("token") || fields.contains_key("signature") {
            return Err(bad_request(
                "Send either HTTP Basic auth with the private key (server-side upload) or a token, not both",
            ));
        }
        UploadParams::parse(fields, Scheme::V1)?
    } else {
        let token = token_of(fields).ok_or_else(|| {
            bad_request(match scheme {
                Scheme::V2 => "Missing token for upload: Upload API V2 needs a JWT signed with your private key in the `token` field (ImageKit's Upload API V2 guide)",
                Scheme::V1 => "Missing token for upload: send the one-time `token` with `expire` and `signature` (ImageKit's V1 client-side upload guide)",
            })
        })?;
        let exp = auth.verify(fields, token)?;
        let token_use = app
            .store
            .consume_token(token, exp, now)
            .await
            .map_err(spend_failed)?;
        if token_use == TokenUse::Reused {
            return Err(reused());
        }
        if let Some(jwt) = auth.verified.as_ref().and_then(|v| v.jwt.as_ref()) {
            match_payload(fields, jwt)?;
        }
        token_sha = Some(store::sha256_hex(token.as_bytes()));
        UploadParams::parse(fields, scheme)?
    };
    let file = match (form.file, form.file_url) {
        (Some(file), _) => file,
        (None, Some(url)) => {
            if let Some(fault) = fault {
                return Ok(faults::answer(fault, Flavor::ImageKit));
            }
            remote::fetch_file(&url, limits).await?
        }
        (None, None) => return Err(bad_request(
            "Missing file parameter for upload: send the file as a multipart file part named `file`, its base64, or a URL",
        )),
    };
    if let Some(fault) = fault {
        return Ok(faults::answer(fault, Flavor::ImageKit));
    }
    let record = commit(app, params, file, scheme, token_sha.as_deref()).await?;
    Ok(Json(file_json(&record, &app.base_url)).into_response())
}

fn token_of(fields: &BTreeMap<String, String>) -> Option<&str> {
    fields
        .get("token")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

fn reused() -> ApiError {
    forbidden(
        "This token has already been used: ImageKit accepts each token once, even when the request that carried it failed. Generate a fresh token for every upload attempt, retries included",
    )
}

fn spend_failed(err: std::io::Error) -> ApiError {
    ApiError::internal(Flavor::ImageKit, "recording the used token", err)
}

/// A token-authenticated upload's credentials, verified as soon as the form has carried them.
struct TokenAuth<'a> {
    app: &'a SandboxState,
    scheme: Scheme,
    now: i64,
    verified: Option<Verified>,
}

/// A token whose signature and lifetime checked out.
struct Verified {
    /// When the token expires: until then it stays in the used-token set.
    exp: i64,
    /// A V2 token's payload, which the whole form must match.
    jwt: Option<Jwt>,
}

impl TokenAuth<'_> {
    /// Before the file part: verifies the token if the fields it needs came first, so that a
    /// forged, expired or spent token is refused before any of the file is written.
    fn check_before_file(&mut self, fields: &BTreeMap<String, String>) -> Result<(), ApiError> {
        let Some(token) = token_of(fields) else {
            return Ok(());
        };
        let v1_fields = ["publicKey", "expire", "signature"];
        if self.scheme == Scheme::V1 && !v1_fields.iter().all(|f| fields.contains_key(*f)) {
            return Ok(());
        }
        self.verify(fields, token)?;
        if self.app.store.token_spent(token) {
            return Err(reused());
        }
        Ok(())
    }

    /// Verifies the token (once) and returns its expiry.
    fn verify(&mut self, fields: &BTreeMap<String, String>, token: &str) -> Result<i64, ApiError> {
        if let Some(verified) = &self.verified {
            return Ok(verified.exp);
        }
        let keys = &self.app.imagekit;
        let verified = match self.scheme {
            Scheme::V2 => {
                let jwt = verify_jwt(token, &keys.public_key, &keys.private_key, self.now)?;
                Verified {
                    exp: jwt.exp,
                    jwt: Some(jwt),
                }
            }
            Scheme::V1 => Verified {
                exp: verify_v1(fields, token, &keys.public_key, &keys.private_key, self.now)?,
                jwt: None,
            },
        };
        let exp = verified.exp;
        self.verified = Some(verified);
        Ok(exp)
    }
}

/// Stores an accepted upload: picks its final name and fileId under the index lock (so two
/// uploads cannot take the same path), writes it, records it in the ledger.
async fn commit(
    app: &SandboxState,
    params: UploadParams,
    file: ReceivedFile,
    scheme: Scheme,
    // `None` for a server-side upload, which has no token.
    token_sha: Option<&str>,
) -> Result<IkFile, ApiError> {
    let mime = super::guess_mime(&params.file_name, file.content_type.as_deref());
    let now = time::now_millis();
    let stamp = time::rfc3339_millis(now);
    let mut index = app.store.index.write().await;
    let (name, replaced) = if params.use_unique_file_name {
        loop {
            let candidate = unique_name(&params.file_name, &super::random_alphanumeric(8));
            if !index
                .ik_paths
                .contains_key(&format!("{}{candidate}", params.folder))
            {
                break (candidate, None);
            }
        }
    } else {
        let path = format!("{}{}", params.folder, params.file_name);
        let existing = index
            .ik_paths
            .get(&path)
            .and_then(|id| index.ik.get(id))
            .cloned();
        if let Some(old) = &existing {
            if !params.overwrite_file {
                return Err(bad_request(format!(
                    "A file already exists at {path}, and overwriteFile is false with useUniqueFileName false: set overwriteFile to true to replace it, or useUniqueFileName to true to keep both"
                )));
            }
            if old.version >= MAX_VERSIONS {
                return Err(bad_request(format!(
                    "The file at {path} already has {MAX_VERSIONS} versions, ImageKit's maximum: delete it first"
                )));
            }
        }
        (params.file_name.clone(), existing)
    };
    let file_path = format!("{}{name}", params.folder);
    let (file_id, version, created_at) = match &replaced {
        Some(old) => (old.file_id.clone(), old.version + 1, old.created_at.clone()),
        None => (super::random_hex(12), 1, stamp.clone()),
    };
    let record = IkFile {
        blob: format!("ik-{file_id}-v{version}"),
        file_id,
        name,
        folder: params.folder,
        file_path,
        size: file.size,
        sha256: file.sha256.clone(),
        mime,
        tags: params.tags,
        is_private: params.is_private_file,
        is_published: params.is_published,
        custom_coordinates: params.custom_coordinates,
        custom_metadata: params.custom_metadata,
        description: params.description,
        version,
        version_id: super::random_hex(12),
        created_at,
        updated_at: stamp,
    };
    let tags = record.tags.clone().unwrap_or_default();
    let ledger = LedgerEntry {
        provider: "imagekit",
        id: &record.file_id,
        name: &record.name,
        folder: &record.folder,
        tags: &tags,
        size: record.size,
        sha256: &record.sha256,
        scheme: scheme.as_str(),
        token_sha256: token_sha,
        upload_id: None,
        at: time::rfc3339_millis(now),
    };
    app.store
        .commit(
            &app.store.ik_meta_path(&record.file_id),
            &record,
            &record.blob,
            BlobSource::Temp(file.temp),
            replaced.as_ref().map(|old| (old, old.blob.as_str())),
            &ledger,
        )
        .await
        .map_err(|err| ApiError::internal(Flavor::ImageKit, "storing the upload", err))?;
    index
        .ik_paths
        .insert(record.file_path.clone(), record.file_id.clone());
    index.ik.insert(record.file_id.clone(), record.clone());
    Ok(record)
}

/// ImageKit's upload guides: "A file can have a maximum of 100 versions."
const MAX_VERSIONS: u32 = 100;

/// The upload and details response, in ImageKit's shape.
pub(crate) fn file_json(file: &IkFile, base_url: &str) -> Value {
    let path = super::encode_url_path(&file.file_path);
    let mut value = json!({
        "fileId": file.file_id,
        "name": file.name,
        "size": file.size,
        "versionInfo": { "id": file.version_id, "name": format!("Version {}", file.version) },
        "filePath": file.file_path,
        "url": format!("{base_url}{IMAGEKIT_URL_PATH}{path}"),
        "thumbnailUrl": format!("{base_url}{IMAGEKIT_URL_PATH}/tr:n-ik_ml_thumbnail{path}"),
        "fileType": if file.mime.starts_with("image/") { "image" } else { "non-image" },
        "mime": file.mime,
        "tags": file.tags,
        "isPrivateFile": file.is_private,
        "isPublished": file.is_published,
        "customCoordinates": file.custom_coordinates,
        "customMetadata": file.custom_metadata,
        "AITags": null,
        "createdAt": file.created_at,
        "updatedAt": file.updated_at,
    });
    if let (Some(description), Some(object)) = (&file.description, value.as_object_mut()) {
        object.insert("description".into(), json!(description));
    }
    value
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// A V2 token whose signature verified, with its payload.
#[derive(Debug)]
pub(crate) struct Jwt {
    pub kid: String,
    pub exp: i64,
    /// Every payload entry except `iat` and `exp`, all strings.
    pub payload: BTreeMap<String, String>,
}

/// Checks a V2 token as ImageKit's Upload API V2 guide describes it: HS256 with the private key, `kid` = the account's
/// public key, integer `iat` and `exp` at most an hour apart, `exp` not past, string values.
pub(crate) fn verify_jwt(
    token: &str,
    public_key: &str,
    private_key: &SecretString,
    now: i64,
) -> Result<Jwt, ApiError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(unauthorized(
            "The token is not a JWT: expected three base64url parts separated by '.' (ImageKit's Upload API V2 guide)",
        ));
    };
    let header = decode_json_object(header_b64)
        .ok_or_else(|| unauthorized("The token's header is not a base64url-encoded JSON object"))?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        other => {
            return Err(unauthorized(format!(
                "The token's header has alg {}: ImageKit accepts only HS256 (ImageKit's Upload API V2 guide)",
                describe(other)
            )))
        }
    }
    if let Some(typ) = header.get("typ") {
        if typ.as_str() != Some("JWT") {
            return Err(unauthorized(format!(
                "The token's header has typ {typ}: it must be \"JWT\""
            )));
        }
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => kid.clone(),
        other => {
            return Err(unauthorized(format!(
                "The token's header has kid {}: set kid to your ImageKit public key (ImageKit's Upload API V2 guide)",
                describe(other)
            )))
        }
    };
    if kid != public_key {
        return Err(unauthorized(format!(
            "The token's kid `{}` is not this account's public key `{public_key}`: sign with the public key of the account you upload to as kid",
            shorten(&kid)
        )));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| unauthorized("The token's signature is not base64url (without padding)"))?;
    let expected = dropkey_core::sign::hmac_sha256(
        private_key.expose_secret().as_bytes(),
        format!("{header_b64}.{payload_b64}").as_bytes(),
    );
    if !super::ct_eq(&expected, &signature) {
        return Err(unauthorized(
            "The token's signature does not match: it was not signed (HMAC-SHA256) with this account's private key, or its header or payload changed after signing",
        ));
    }
    let payload = decode_json_object(payload_b64)
        .ok_or_else(|| bad_request("The token's payload is not a base64url-encoded JSON object"))?;
    let iat = int_claim(&payload, "iat")?;
    let exp = int_claim(&payload, "exp")?;
    if exp <= iat {
        return Err(bad_request(format!(
            "The token's exp ({exp}) is not after its iat ({iat}): exp must be later than iat"
        )));
    }
    // Saturating: both claims are client-chosen, and their difference may not fit an i64.
    let lifetime = exp.saturating_sub(iat);
    if lifetime > V2_MAX_LIFETIME {
        return Err(bad_request(format!(
            "The token is valid for {lifetime} s (exp - iat), more than the {V2_MAX_LIFETIME} s ImageKit allows (ImageKit's Upload API V2 guide): sign it with exp at most iat + {V2_MAX_LIFETIME}"
        )));
    }
    if exp <= now {
        return Err(forbidden(format!(
            "The token expired at {exp} ({}); the sandbox's clock reads {now} ({}): sign a fresh token for each upload",
            time::rfc3339(exp),
            time::rfc3339(now)
        )));
    }
    let mut params = BTreeMap::new();
    for (key, value) in payload {
        if key == "iat" || key == "exp" {
            continue;
        }
        match value {
            Value::String(text) => {
                params.insert(key, text);
            }
            other => {
                return Err(bad_request(format!(
                    "The token's payload value of `{key}` is {}, not a string: ImageKit's Upload API V2 guide wants every upload parameter stringified (e.g. \"true\", \"tag1,tag2\")",
                    describe(Some(&other))
                )))
            }
        }
    }
    Ok(Jwt {
        kid,
        exp,
        payload: params,
    })
}

fn decode_json_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn int_claim(payload: &Map<String, Value>, name: &str) -> Result<i64, ApiError> {
    match payload.get(name) {
        Some(value) => value.as_i64().ok_or_else(|| {
            bad_request(format!(
                "The token's `{name}` is {}, not an integer number of seconds (ImageKit's Upload API V2 guide)",
                describe(Some(value))
            ))
        }),
        None => Err(bad_request(format!(
            "The token's payload has no `{name}`: ImageKit's Upload API V2 guide requires integer iat and exp"
        ))),
    }
}

fn describe(value: Option<&Value>) -> String {
    match value {
        None => "missing".into(),
        Some(Value::String(s)) => format!("\"{}\"", shorten(s)),
        Some(Value::Number(n)) => format!("the number {n}"),
        Some(Value::Bool(b)) => format!("the boolean {b}"),
        Some(Value::Null) => "null".into(),
        Some(Value::Array(_)) => "an array".into(),
        Some(Value::Object(_)) => "an object".into(),
    }
}

/// A value quoted in a message, cut short so messages stay one readable line.
fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX).collect();
    short.push('…');
    short
}

/// ImageKit's Upload API V2 guide: the form must carry exactly the signed parameters with exactly the signed values
/// (besides `file` and `token`); `publicKey`, if sent, must be the token's `kid`.
pub(crate) fn match_payload(fields: &BTreeMap<String, String>, jwt: &Jwt) -> Result<(), ApiError> {
    for (source, key) in [
        ("form field", fields.get("publicKey")),
        ("token's payload value", jwt.payload.get("publicKey")),
    ] {
        if let Some(key) = key {
            if *key != jwt.kid {
                return Err(unauthorized(format!(
                    "The {source} publicKey `{}` does not match the token's kid `{}`: send the account's public key",
                    shorten(key),
                    jwt.kid
                )));
            }
        }
    }
    for reserved in ["file", "token"] {
        if jwt.payload.contains_key(reserved) {
            return Err(bad_request(format!(
                "The token's payload contains `{reserved}`: sign every upload parameter except file and token (ImageKit's Upload API V2 guide)"
            )));
        }
    }
    for (name, value) in fields {
        if name == "token" || name == "publicKey" {
            continue;
        }
        match jwt.payload.get(name) {
            None => {
                return Err(bad_request(format!(
                    "The form field `{name}` is not in the token's payload: every upload parameter except file and token must be signed into the JWT (ImageKit's Upload API V2 guide)"
                )))
            }
            Some(signed) if signed != value => {
                return Err(bad_request(format!(
                    "The form field `{name}` is \"{}\" but the token's payload signed \"{}\": send exactly the values that were signed",
                    shorten(value),
                    shorten(signed)
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(name) = jwt
        .payload
        .keys()
        .find(|name| *name != "publicKey" && !fields.contains_key(*name))
    {
        return Err(bad_request(format!(
            "The token's payload signs `{name}`, but the form has no such field: send every signed parameter with its signed value (ImageKit's Upload API V2 guide)"
        )));
    }
    Ok(())
}

/// ImageKit's V1 client-side upload guide: `publicKey`, `expire` (in the future, less than an hour ahead) and `signature` =
/// lowercase hex HMAC-SHA1(private key, token + expire). Returns `expire`.
pub(crate) fn verify_v1(
    fields: &BTreeMap<String, String>,
    token: &str,
    public_key: &str,
    private_key: &SecretString,
    now: i64,
) -> Result<i64, ApiError> {
    let sent_key = fields.get("publicKey").ok_or_else(|| {
        bad_request("Missing publicKey for upload: V1 client-side uploads must send the account's public key (ImageKit's V1 client-side upload guide)")
    })?;
    if sent_key != public_key {
        return Err(unauthorized(format!(
            "Your account cannot be authenticated: publicKey `{}` is not this account's public key `{public_key}`",
            shorten(sent_key)
        )));
    }
    let signature = fields
        .get("signature")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            bad_request("Missing signature for upload: send signature = lowercase hex HMAC-SHA1(private key, token + expire) (ImageKit's V1 client-side upload guide)")
        })?;
    let expire_text = fields.get("expire").ok_or_else(|| {
        bad_request("Missing expire for upload: send the Unix time (seconds) until which the signature is valid (ImageKit's V1 client-side upload guide)")
    })?;
    let expire = super::parse_int(expire_text).ok_or_else(|| {
        bad_request(format!(
            "expire `{}` is not a Unix time in seconds (ImageKit's V1 client-side upload guide)",
            shorten(expire_text)
        ))
    })?;
    let expected = dropkey_core::sign::hmac_sha1_hex(
        private_key.expose_secret().as_bytes(),
        format!("{token}{expire_text}").as_bytes(),
    );
    if !super::ct_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(unauthorized(
            "The signature does not match: it must be the lowercase hex HMAC-SHA1 of token + expire, keyed with this account's private key (ImageKit's V1 client-side upload guide)",
        ));
    }
    if expire <= now {
        return Err(forbidden(format!(
            "The signature expired at {expire} ({}); the sandbox's clock reads {now}: request fresh authentication parameters for each upload",
            time::rfc3339(expire)
        )));
    }
    if expire - now >= V1_MAX_LIFETIME {
        return Err(bad_request(format!(
            "expire is {} s in the future, but ImageKit's V1 client-side upload guide requires less than 1 hour ({V1_MAX_LIFETIME} s): use a nearer expire",
            expire - now
        )));
    }
    Ok(expire)
}

// ---------------------------------------------------------------------------------------------
// Upload parameters

/// Every parameter ImageKit's upload API documents, beside the V1-only ones.
const KNOWN_PARAMS: &[&str] = &[
    "fileName",
    "useUniqueFileName",
    "tags",
    "folder",
    "isPrivateFile",
    "isPublished",
    "customCoordinates",
    "responseFields",
    "extensions",
    "webhookUrl",
    "overwriteFile",
    "overwriteAITags",
    "overwriteTags",
    "overwriteCustomMetadata",
    "customMetadata",
    "transformation",
    "checks",
    "description",
    "publicKey",
    "token",
];
const V1_ONLY_PARAMS: &[&str] = &["signature", "expire"];
const BOOLEAN_PARAMS: &[&str] = &[
    "useUniqueFileName",
    "isPrivateFile",
    "isPublished",
    "overwriteFile",
    "overwriteAITags",
    "overwriteTags",
    "overwriteCustomMetadata",
];
const RESPONSE_FIELDS: &[&str] = &[
    "tags",
    "customCoordinates",
    "isPrivateFile",
    "embeddedMetadata",
    "isPublished",
    "customMetadata",
    "metadata",
    "selectedFieldsSchema",
];
/// ImageKit's limit on all tags of a file together.
const MAX_TAGS_CHARS: usize = 500;
const MAX_FILE_NAME_CHARS: usize = 1024;

/// The validated upload parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UploadParams {
    /// `fileName` with the characters ImageKit replaces already replaced.
    pub file_name: String,
    pub folder: String,
    pub tags: Option<Vec<String>>,
    pub use_unique_file_name: bool,
    pub is_private_file: bool,
    pub is_published: bool,
    pub overwrite_file: bool,
    pub custom_metadata: Map<String, Value>,
    pub custom_coordinates: Option<String>,
    pub description: Option<String>,
}

impl UploadParams {
    pub(crate) fn parse(
        fields: &BTreeMap<String, String>,
        scheme: Scheme,
    ) -> Result<Self, ApiError> {
        for name in fields.keys() {
            if KNOWN_PARAMS.contains(&name.as_str()) {
                continue;
            }
            if V1_ONLY_PARAMS.contains(&name.as_str()) {
                if scheme == Scheme::V1 {
                    continue;
                }
                return Err(bad_request(format!(
                    "`{name}` is an Upload API V1 parameter: V2 authenticates with the token alone; drop it"
                )));
            }
            return Err(bad_request(format!(
                "Unknown upload parameter `{}`: ImageKit's upload API takes {}",
                shorten(name),
                KNOWN_PARAMS
                    .iter()
                    .filter(|p| !matches!(**p, "publicKey" | "token"))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for name in BOOLEAN_PARAMS {
            if let Some(value) = fields.get(*name) {
                if value != "true" && value != "false" {
                    return Err(bad_request(format!(
                        "`{name}` must be \"true\" or \"false\", not \"{}\"",
                        shorten(value)
                    )));
                }
            }
        }
        let flag = |name: &str, default: bool| fields.get(name).map_or(default, |v| v == "true");
        let file_name = file_name(fields.get("fileName").map(String::as_str))?;
        let folder = normalize_folder(fields.get("folder").map_or("", String::as_str));
        let tags = match fields.get("tags") {
            Some(raw) => parse_tags(raw)?,
            None => None,
        };
        let custom_metadata = match fields.get("customMetadata") {
            None => Map::new(),
            Some(raw) => match serde_json::from_str(raw) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(bad_request(format!(
                    "customMetadata must be a JSON object, e.g. {{\"brand\":\"Nike\"}}, not \"{}\"",
                    shorten(raw)
                )))
                }
            },
        };
        let custom_coordinates = match fields.get("customCoordinates") {
            None => None,
            Some(raw) if raw.is_empty() => None,
            Some(raw) => {
                let parts: Vec<_> = raw.split(',').collect();
                if parts.len() != 4 || parts.iter().any(|p| p.parse::<u32>().is_err()) {
                    return Err(bad_request(format!(
                        "customCoordinates must be x,y,width,height as four whole numbers, not \"{}\"",
                        shorten(raw)
                    )));
                }
                Some(raw.clone())
            }
        };
        if let Some(raw) = fields.get("responseFields") {
            if let Some(bad) = raw
                .split(',')
                .map(str::trim)
                .find(|f| !RESPONSE_FIELDS.contains(f))
            {
                return Err(bad_request(format!(
                    "responseFields names `{}`, which is not one of {}",
                    shorten(bad),
                    RESPONSE_FIELDS.join(", ")
                )));
            }
        }
        for (name, want_array) in [("extensions", true), ("transformation", false)] {
            if let Some(raw) = fields.get(name) {
                let ok = match serde_json::from_str::<Value>(raw) {
                    Ok(Value::Array(_)) => want_array,
                    Ok(Value::Object(_)) => !want_array,
                    _ => false,
                };
                if !ok {
                    return Err(bad_request(format!(
                        "{name} must be a JSON {}, not \"{}\"",
                        if want_array { "array" } else { "object" },
                        shorten(raw)
                    )));
                }
            }
        }
        if let Some(raw) = fields.get("webhookUrl") {
            let ok = url::Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(bad_request(format!(
                    "webhookUrl must be an http(s) URL, not \"{}\"",
                    shorten(raw)
                )));
            }
        }
        Ok(Self {
            file_name,
            folder,
            tags,
            use_unique_file_name: flag("useUniqueFileName", true),
            is_private_file: flag("isPrivateFile", false),
            is_published: flag("isPublished", true),
            overwrite_file: flag("overwriteFile", true),
            custom_metadata,
            custom_coordinates,
            description: fields.get("description").filter(|d| !d.is_empty()).cloned(),
        })
    }
}

/// Checks `fileName` and replaces the characters ImageKit replaces: "The file name can contain
/// alphanumeric characters (including unicode letters, marks, and numerals in other languages),
/// `.` and `-`. Any other character including space will be replaced by `_`."
pub(crate) fn file_name(raw: Option<&str>) -> Result<String, ApiError> {
    let raw = raw.ok_or_else(|| {
        bad_request("Missing fileName parameter for upload: name the file, e.g. fileName=photo.jpg")
    })?;
    if raw.is_empty() {
        return Err(bad_request(
            "fileName is empty: name the file, e.g. fileName=photo.jpg",
        ));
    }
    if raw.contains('/') {
        return Err(bad_request(format!(
            "fileName \"{}\" contains '/': give the folder in the folder parameter and only the name here",
            shorten(raw)
        )));
    }
    let count = raw.chars().count();
    if count > MAX_FILE_NAME_CHARS {
        return Err(bad_request(format!(
            "fileName is {count} characters long; ImageKit allows at most {MAX_FILE_NAME_CHARS}"
        )));
    }
    if raw.chars().all(|c| c == '.') {
        return Err(bad_request(format!(
            "fileName \"{raw}\" is not a file name: use a name such as photo.jpg"
        )));
    }
    Ok(sanitize(raw, &['.', '-']))
}

/// `folder` with ImageKit's rules (alphanumerics, `/`, `_`, `-`; anything else becomes `_`),
/// empty segments dropped, and one slash before and after: `uploads//chat` → `/uploads/chat/`.
pub(crate) fn normalize_folder(raw: &str) -> String {
    let mut folder = String::from("/");
    for segment in raw.split('/').filter(|s| !s.is_empty()) {
        folder.push_str(&sanitize(segment, &['-', '_']));
        folder.push('/');
    }
    folder
}

fn sanitize(text: &str, allowed: &[char]) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || is_combining_mark(c) || allowed.contains(&c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The common combining-mark blocks. Without Unicode tables this cannot cover every mark (some
/// Indic vowel signs are outside these blocks); those would become `_`, a visible difference,
/// never a wrong path.
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A | 0x064B..=0x065F
        | 0x0900..=0x0903 | 0x093A..=0x094F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF | 0x3099..=0x309A | 0xFE20..=0xFE2F)
}

/// `tags`: comma-separated, each non-empty, at most 500 characters in all, no `%`.
pub(crate) fn parse_tags(raw: &str) -> Result<Option<Vec<String>>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.contains('%') {
        return Err(bad_request(format!(
            "tags \"{}\" contain '%', which ImageKit does not allow in tags",
            shorten(raw)
        )));
    }
    let tags: Vec<String> = raw.split(',').map(|t| t.trim().to_owned()).collect();
    if tags.iter().any(String::is_empty) {
        return Err(bad_request(format!(
            "tags \"{}\" contain an empty tag: write them as tag1,tag2",
            shorten(raw)
        )));
    }
    let total: usize = tags.iter().map(|t| t.chars().count()).sum();
    if total > MAX_TAGS_CHARS {
        return Err(bad_request(format!(
            "tags are {total} characters in all; ImageKit allows at most {MAX_TAGS_CHARS}"
        )));
    }
    Ok(Some(tags))
}

/// `photo.jpg` + `Ab3dE6gH` → `photo_Ab3dE6gH.jpg`: the suffix goes before the last extension.
pub(crate) fn unique_name(name: &str, suffix: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}_{suffix}.{ext}"),
        _ => format!("{name}_{suffix}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Files API

/// HTTP Basic with the private key as the username, as ImageKit's API: the password is
/// ignored (`@imagekit/nodejs` 7 sends `do_not_set`, older SDKs an empty one).
fn check_private_key(app: &SandboxState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some((user, _password)) = super::basic_auth(headers) else {
        return Err(unauthorized(
            "Your request does not contain private API key: send HTTP Basic auth with the private key as the username (the password is ignored)",
        ));
    };
    let key = app.imagekit.private_key.expose_secret();
    if !super::ct_eq(user.as_bytes(), key.as_bytes()) {
        return Err(unauthorized(
            "Your account cannot be authenticated: use HTTP Basic auth with this account's private key as the username",
        ));
    }
    Ok(())
}

fn check_file_id(file_id: &str) -> Result<(), ApiError> {
    if file_id.len() == 24 && file_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    Err(bad_request(format!(
        "Your request contains invalid fileId parameter: `{}` is not a 24-character file id",
        shorten(file_id)
    )))
}

async fn details(
    State(app): State<Arc<SandboxState>>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    check_private_key(&app, &headers)?;
    check_file_id(&file_id)?;
    let index = app.store.index.read().await;
    let file = index.ik.get(&file_id).ok_or_else(not_found)?;
    Ok(Json(file_json(file, &app.base_url)))
}

async fn delete_file(
    State(app): State<Arc<SandboxState>>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    check_private_key(&app, &headers)?;
    check_file_id(&file_id)?;
    let mut index = app.store.index.write().await;
    let file = index.ik.remove(&file_id).ok_or_else(not_found)?;
    if let Err(err) = app
        .store
        .remove(&app.store.ik_meta_path(&file.file_id), &file.blob)
        .await
    {
        index.ik.insert(file.file_id.clone(), file);
        return Err(ApiError::internal(
            Flavor::ImageKit,
            "deleting the file",
            err,
        ));
    }
    index.ik_paths.remove(&file.file_path);
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Delivery

async fn deliver(State(app): State<Arc<SandboxState>>, uri: Uri) -> Result<Response, ApiError> {
    // The raw path, percent-encoded as sent: the signature of a private file covers exactly it.
    let relative = uri
        .path()
        .strip_prefix(IMAGEKIT_URL_PATH)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or_default();
    // A leading `tr:` segment asks for a transformation; the sandbox serves the original.
    let file_part = match relative.split_once('/') {
        Some((first, rest)) if first.starts_with("tr:") => rest,
        _ => relative,
    };
    let decoded = percent_encoding::percent_decode_str(file_part)
        .decode_utf8()
        .map_err(|_| not_found())?;
    let file_path = format!("/{decoded}");
    let file = {
        let index = app.store.index.read().await;
        index
            .ik_paths
            .get(&file_path)
            .and_then(|id| index.ik.get(id))
            .filter(|f| f.is_published)
            .cloned()
    }
    .ok_or_else(not_found)?;
    if file.is_private {
        verify_signed_url(
            &app.imagekit.private_key,
            relative,
            uri.query(),
            dropkey_core::unix_now(),
        )?;
    }
    super::serve_blob(&app.store.blob_path(&file.blob), &file.mime, None)
        .await
        .map_err(|err| ApiError::internal(Flavor::ImageKit, "reading the stored file", err))
}

/// The check behind `dropkey_core::sign::imagekit::signed_url`: `ik-s` = hex HMAC-SHA1(private key,
/// <path after the URL endpoint, as sent> + <ik-t, or 9999999999 when absent>), and `ik-t` not
/// past.
pub(crate) fn verify_signed_url(
    private_key: &SecretString,
    signed_part: &str,
    query: Option<&str>,
    now: i64,
) -> Result<(), ApiError> {
    let params: BTreeMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let signature = params.get("ik-s").ok_or_else(|| {
        unauthorized("This file is private: request it with a signed URL (ik-t and ik-s), e.g. from `dropkey private-url`")
    })?;
    let never = NEVER_EXPIRES.to_string();
    let expiry_text = params.get("ik-t").unwrap_or(&never);
    let expiry = super::parse_int(expiry_text).ok_or_else(|| {
        unauthorized(format!(
            "ik-t `{}` is not a Unix time in seconds",
            shorten(expiry_text)
        ))
    })?;
    let expected = dropkey_core::sign::hmac_sha1_hex(
        private_key.expose_secret().as_bytes(),
        format!("{signed_part}{expiry_text}").as_bytes(),
    );
    if !super::ct_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(unauthorized(
            "The URL's signature (ik-s) does not match its path and expiry: sign the URL with this account's private key and do not change it afterwards",
        ));
    }
    if expiry < now {
        return Err(unauthorized(format!(
            "The signed URL expired at {expiry} ({}): request a new one",
            time::rfc3339(expiry)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dropkey_core::sign::imagekit::{sign_v2, signed_url};
    use dropkey_core::sign::Params;

    const PUBLIC: &str = "public_k";

    fn key() -> SecretString {
        SecretString::from("private_k")
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn token(pairs: &[(&str, &str)], iat: i64, exp: i64) -> String {
        let p: Params = params(pairs);
        sign_v2(&key(), PUBLIC, &p, iat, exp).unwrap()
    }

    fn hand_made(header: &str, payload: &str, secret: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = dropkey_core::sign::hmac_sha256(secret.as_bytes(), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn jwt_from_sign_v2_verifies_and_yields_its_payload() {
        let t = token(&[("fileName", "a.jpg")], 1000, 1000 + 3600);
        let jwt = verify_jwt(&t, PUBLIC, &key(), 2000).unwrap();
        assert_eq!(jwt.kid, PUBLIC);
        assert_eq!(jwt.payload, params(&[("fileName", "a.jpg")]));
    }

    #[test]
    fn jwt_failures_have_the_right_status() {
        let good = token(&[("fileName", "a.jpg")], 1000, 2000);
        let status = |t: &str, now: i64| verify_jwt(t, PUBLIC, &key(), now).unwrap_err().status;
        assert_eq!(
            status(&good, 2000),
            StatusCode::FORBIDDEN,
            "exp == now is expired"
        );
        assert_eq!(status("abc", 1500), StatusCode::UNAUTHORIZED);
        assert_eq!(
            verify_jwt(&good, "public_other", &key(), 1500)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            verify_jwt(&good, PUBLIC, &SecretString::from("other"), 1500)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        // Payload swapped for another one: the signature no longer matches.
        let other = token(&[("fileName", "b.jpg")], 1000, 2000);
        let mut parts: Vec<_> = good.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        assert_eq!(status(&parts.join("."), 1500), StatusCode::UNAUTHORIZED);

        let header = r#"{"alg":"HS256","typ":"JWT","kid":"public_k"}"#;
        let cases = [
            (r#"{"iat":1000,"exp":4601}"#, StatusCode::BAD_REQUEST),
            (r#"{"iat":1000}"#, StatusCode::BAD_REQUEST),
            (r#"{"iat":1000,"exp":2000.5}"#, StatusCode::BAD_REQUEST),
            (r#"{"iat":"1000","exp":2000}"#, StatusCode::BAD_REQUEST),
            (
                r#"{"iat":1000,"exp":2000,"tags":["a"]}"#,
                StatusCode::BAD_REQUEST,
            ),
            (
                r#"{"iat":1000,"exp":2000,"useUniqueFileName":true}"#,
                StatusCode::BAD_REQUEST,
            ),
            (r#"{"iat":1000,"exp":900}"#, StatusCode::BAD_REQUEST),
            (
                r#"{"iat":-9223372036854775808,"exp":9223372036854775807}"#,
                StatusCode::BAD_REQUEST,
            ),
            (r#"{"iat":1000,"exp":2000,"a":"b"}"#, StatusCode::OK),
        ];
        for (payload, want) in cases {
            let t = hand_made(header, payload, "private_k");
            let got =
                verify_jwt(&t, PUBLIC, &key(), 1500).map_or_else(|e| e.status, |_| StatusCode::OK);
            assert_eq!(got, want, "{payload}");
        }
        for header in [
            r#"{"alg":"none","kid":"public_k"}"#,
            r#"{"alg":"HS512","kid":"public_k"}"#,
            r#"{"alg":"HS256","typ":"JWS","kid":"public_k"}"#,
            r#"{"alg":"HS256"}"#,
        ] {
            let t = hand_made(header, r#"{"iat":1000,"exp":2000}"#, "private_k");
            assert_eq!(status(&t, 1500), StatusCode::UNAUTHORIZED, "{header}");
        }
    }

    #[test]
    fn form_must_equal_the_payload_both_ways() {
        let jwt = Jwt {
            kid: PUBLIC.into(),
            exp: 0,
            payload: params(&[("fileName", "a.jpg"), ("tags", "x,y")]),
        };
        let ok = params(&[("fileName", "a.jpg"), ("tags", "x,y"), ("token", "t")]);
        assert!(match_payload(&ok, &jwt).is_ok());
        let mut with_key = ok.clone();
        with_key.insert("publicKey".into(), PUBLIC.into());
        assert!(match_payload(&with_key, &jwt).is_ok());
        with_key.insert("publicKey".into(), "public_x".into());
        assert_eq!(
            match_payload(&with_key, &jwt).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        let extra = params(&[("fileName", "a.jpg"), ("tags", "x,y"), ("folder", "/f")]);
        let err = match_payload(&extra, &jwt).unwrap_err();
        assert!(err
            .message
            .contains("`folder` is not in the token's payload"));
        let missing = params(&[("fileName", "a.jpg")]);
        let err = match_payload(&missing, &jwt).unwrap_err();
        assert!(err.message.contains("signs `tags`"));
        let changed = params(&[("fileName", "b.jpg"), ("tags", "x,y")]);
        let err = match_payload(&changed, &jwt).unwrap_err();
        assert!(err.message.contains("`fileName`"), "{}", err.message);
    }

    #[test]
    fn v1_checks_key_signature_and_expiry_window() {
        let now = 1_700_000_000;
        let sign = |token: &str, expire: i64| {
            dropkey_core::sign::imagekit::sign_v1(&key(), token, expire, expire - 60)
                .unwrap()
                .signature
        };
        let fields = |expire: i64, sig: &str| {
            params(&[
                ("publicKey", PUBLIC),
                ("expire", &expire.to_string()),
                ("signature", sig),
            ])
        };
        let ok = fields(now + 60, &sign("t", now + 60));
        assert!(verify_v1(&ok, "t", PUBLIC, &key(), now).is_ok());
        let status = |f: &BTreeMap<String, String>| {
            verify_v1(f, "t", PUBLIC, &key(), now).unwrap_err().status
        };
        assert_eq!(
            status(&fields(now + 60, &sign("u", now + 60))),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(&fields(now + 60, &sign("t", now + 60).to_uppercase())),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(status(&fields(now, &sign("t", now))), StatusCode::FORBIDDEN);
        assert_eq!(
            status(&fields(now + 3600, &sign("t", now + 3600))),
            StatusCode::BAD_REQUEST
        );
        assert!(verify_v1(
            &fields(now + 3599, &sign("t", now + 3599)),
            "t",
            PUBLIC,
            &key(),
            now
        )
        .is_ok());
        let mut wrong_key = ok.clone();
        wrong_key.insert("publicKey".into(), "public_x".into());
        assert_eq!(status(&wrong_key), StatusCode::UNAUTHORIZED);
        let mut no_key = ok;
        no_key.remove("publicKey");
        assert_eq!(status(&no_key), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn params_validate_and_default() {
        let p = UploadParams::parse(&params(&[("fileName", "a b.jpg")]), Scheme::V2).unwrap();
        assert_eq!(p.file_name, "a_b.jpg");
        assert_eq!(p.folder, "/");
        assert!(p.use_unique_file_name && p.is_published && p.overwrite_file);
        assert!(!p.is_private_file);
        assert_eq!(p.tags, None);
        let p = UploadParams::parse(
            &params(&[
                ("fileName", "ünï-cödé.PNG"),
                ("folder", "uploads//chat"),
                ("tags", "a, b"),
                ("customMetadata", r#"{"k":1}"#),
                ("isPrivateFile", "true"),
            ]),
            Scheme::V2,
        )
        .unwrap();
        assert_eq!(p.file_name, "ünï-cödé.PNG");
        assert_eq!(p.folder, "/uploads/chat/");
        assert_eq!(p.tags, Some(vec!["a".into(), "b".into()]));
        assert_eq!(p.custom_metadata["k"], 1);
        assert!(p.is_private_file);
        for bad in [
            vec![("tags", "a")],
            vec![("fileName", "")],
            vec![("fileName", "a/b")],
            vec![("fileName", "..")],
            vec![("fileName", "a"), ("isPrivateFile", "yes")],
            vec![("fileName", "a"), ("customMetadata", "[1]")],
            vec![("fileName", "a"), ("tags", "a,,b")],
            vec![("fileName", "a"), ("tags", "100%")],
            vec![("fileName", "a"), ("customCoordinates", "1,2,3")],
            vec![("fileName", "a"), ("nope", "1")],
            vec![("fileName", "a"), ("expire", "1")],
            vec![("fileName", "a"), ("webhookUrl", "ftp://x")],
            vec![("fileName", "a"), ("responseFields", "tags,bogus")],
        ] {
            assert!(
                UploadParams::parse(&params(&bad), Scheme::V2).is_err(),
                "{bad:?}"
            );
        }
        assert!(UploadParams::parse(
            &params(&[("fileName", "a"), ("expire", "1"), ("signature", "s")]),
            Scheme::V1
        )
        .is_ok());
        let long = "x".repeat(1025);
        assert!(file_name(Some(&long)).is_err());
        assert!(file_name(Some(&"x".repeat(1024))).is_ok());
    }

    #[test]
    fn folders_normalise() {
        assert_eq!(normalize_folder(""), "/");
        assert_eq!(normalize_folder("/"), "/");
        assert_eq!(normalize_folder("uploads/chat"), "/uploads/chat/");
        assert_eq!(normalize_folder("/uploads/chat/"), "/uploads/chat/");
        assert_eq!(normalize_folder("a/../b c"), "/a/__/b_c/");
    }

    #[test]
    fn unique_names_go_before_the_extension() {
        assert_eq!(unique_name("a.jpg", "X1"), "a_X1.jpg");
        assert_eq!(unique_name("a.tar.gz", "X1"), "a.tar_X1.gz");
        assert_eq!(unique_name("README", "X1"), "README_X1");
        assert_eq!(unique_name(".env", "X1"), ".env_X1");
        let random = super::super::random_alphanumeric(8);
        assert_eq!(random.len(), 8);
        assert!(random.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn signed_urls_from_the_signer_verify() {
        let url = signed_url(
            &key(),
            "http://h/ik/sandbox",
            "/a b/c.jpg",
            Some("w-100"),
            Some(2000),
        )
        .unwrap();
        let (path, query) = url
            .strip_prefix("http://h/ik/sandbox/")
            .unwrap()
            .split_once('?')
            .unwrap();
        assert_eq!(path, "tr:w-100/a%20b/c.jpg");
        assert!(verify_signed_url(&key(), path, Some(query), 1999).is_ok());
        assert!(verify_signed_url(&key(), path, Some(query), 2001).is_err());
        assert!(verify_signed_url(&key(), "tr:w-100/a%20b/d.jpg", Some(query), 1999).is_err());
        assert!(verify_signed_url(&key(), path, None, 1999).is_err());
        let forever = signed_url(&key(), "http://h/ik/sandbox", "/x.jpg", None, None).unwrap();
        let (path, query) = forever
            .strip_prefix("http://h/ik/sandbox/")
            .unwrap()
            .split_once('?')
            .unwrap();
        assert!(verify_signed_url(&key(), path, Some(query), 5_000_000_000).is_ok());
    }
}
