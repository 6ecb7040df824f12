//! The HTTP surface of `dropkey serve`.
//!
//! | route | auth | answers |
//! | --- | --- | --- |
//! | `GET /api/media/get-upload-token` | bearer | the upload-token guide's envelope; `data` = {token, expire, publicKey, urlEndpoint, uploadUrl, fields} |
//! | `POST /api/media/upload-token` | bearer | ImageKit's Upload API V2 guide: `{uploadPayload, expire, publicKey}` -> `{token}` |
//! | `GET /api/media/auth` | bearer | ImageKit's V1 client-side upload guide: `{token, expire, signature}` (auth = "v1" profiles) |
//! | `GET /upload-signature` | bearer | the Cloudinary signed-upload demo: Cloudinary signed upload parameters |
//! | `GET /download-url` | bearer | the Cloudinary signed-upload demo: a one-minute private download link |
//! | `DELETE /delete-files` | bearer + may_delete | the Cloudinary signed-upload demo: `{urls: [{type, url}]}`, validated strictly |
//! | `GET /healthz`, `GET /openapi.json` | none | liveness; the API description |
//!
//! Every error is `{status, success: false, message}` with the status that fits: 401 (no or bad
//! bearer token), 403 (the token's policy refuses), 404 (unknown profile or route), 405, 408
//! (the body did not arrive within `header_timeout`), 413 (body too large), 414 (query too
//! long), 422 (malformed input), 429 (rate limited, with `Retry-After`: a token over its budget,
//! or a client IP over `auth_failures_per_minute` requests without a valid token), 502 (the
//! provider failed).
//!
//! Authentication, rate limiting and the audit record happen in one middleware around the
//! authenticated routes; handlers get the caller as an extension and leave an audit
//! [`Note`] in their response's extensions. The client IP comes from [`TrustedProxies`]. A
//! request with a valid token is never counted against its IP, so one misconfigured client
//! behind a shared address cannot lock out the others.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest as _, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use secrecy::SecretString;
use serde_json::{json, Map, Value};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use super::audit::{clip, Audit, Note, SumKey};
use super::policy::{Policies, Policy, PolicyError};
use super::proxy::TrustedProxies;
use super::ratelimit::{retry_after_secs, RateLimiter};
use super::tokens::TokenSet;
use super::{ServeConfig, ServeError, ServedProfile};
use dropkey_core::config::{Cloudinary, ImageKit, ImageKitAuth, Provider};
use dropkey_core::engine::clock::SkewClock;
use dropkey_core::serve_config::CorsOrigins;
use dropkey_core::sign::cloudinary::{DeliveryType, ResourceType};
use dropkey_core::sign::{cloudinary, imagekit, Params};

/// Largest request body accepted (a delete of 100 URLs fits several times over).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest query string accepted.
pub const MAX_QUERY: usize = 4 * 1024;
/// Most URLs one `DELETE /delete-files` may name.
pub const MAX_DELETE_URLS: usize = 100;
/// The Cloudinary signed-upload demo's private links live one minute.
const DOWNLOAD_LINK_LIFETIME: i64 = 60;
/// Cloudinary accepts a signed upload for an hour after its timestamp.
const CLOUDINARY_SIGNATURE_LIFETIME: i64 = 3600;
/// Default lifetime of V1 parameters (the SDKs' 30 minutes), capped by the token's maximum.
const V1_DEFAULT_LIFETIME: i64 = 1800;

/// What every handler shares. Holds the served profiles' keys, so it never derives `Debug`.
pub struct ServeState {
    profiles: BTreeMap<String, ServedProfile>,
    policies: Policies,
    tokens: TokenSet,
    limiter: RateLimiter,
    /// Requests without a valid bearer token, per client IP (an IPv6 client per /64).
    failures: RateLimiter<IpAddr>,
    auth_failures_per_minute: u32,
    proxies: TrustedProxies,
    /// How long a request body may take to arrive once its head has.
    body_timeout: Duration,
    audit: Audit,
    /// Provider calls (Cloudinary destroy).
    http: reqwest::Client,
    clock: SkewClock,
    /// Varies each issued token's expiry, so two tokens for the same parameters in the same
    /// second still differ (a token is one-time: an identical second one would be refused).
    nonce: AtomicU64,
    openapi: Bytes,
}

impl ServeState {
    pub fn new(
        config: &ServeConfig,
        tokens: TokenSet,
        audit: Audit,
    ) -> Result<Arc<Self>, ServeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ServeError::Http(e.to_string()))?;
        let profiles = config
            .profiles
            .iter()
            .map(|p| {
                (
                    p.profile.name.clone(),
                    ServedProfile {
                        profile: p.profile.clone(),
                        secret: p.secret.clone(),
                    },
                )
            })
            .collect();
        Ok(Arc::new(Self {
            profiles,
            policies: Policies::new(&config.settings),
            tokens,
            limiter: RateLimiter::new(),
            failures: RateLimiter::new(),
            auth_failures_per_minute: config.settings.auth_failures_per_minute,
            proxies: TrustedProxies::new(config.settings.trusted_proxies.clone()),
            body_timeout: config.settings.header_timeout,
            audit,
            http,
            clock: SkewClock::default(),
            nonce: AtomicU64::new(0),
            openapi: Bytes::from(super::openapi::document().to_string()),
        }))
    }

    fn served_names(&self) -> Vec<&str> {
        self.profiles.keys().map(String::as_str).collect()
    }

    /// An expiry `lifetime` seconds after `now`, made a little earlier per token issued (by
    /// up to a tenth of the lifetime, at most 10 minutes) so that tokens stay unique.
    fn expiry(&self, now: i64, lifetime: i64) -> i64 {
        let spread = (lifetime / 10).clamp(1, 600) as u64;
        let nudge = self.nonce.fetch_add(1, Ordering::Relaxed) % spread;
        now + lifetime - nudge as i64
    }
}

/// Who is calling: the bearer token's name and its policy.
#[derive(Clone)]
pub struct Caller {
    name: Arc<str>,
    policy: Arc<Policy>,
}

/// An error answer: `{status, success: false, message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl From<PolicyError> for ApiError {
    fn from(err: PolicyError) -> Self {
        let status = if err.is_validation() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::FORBIDDEN
        };
        Self::new(status, err.to_string())
    }
}

impl From<dropkey_core::sign::SignError> for ApiError {
    fn from(err: dropkey_core::sign::SignError) -> Self {
        Self::invalid(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": self.status.as_u16(),
            "success": false,
            "message": self.message,
        });
        let note = Note {
            error: Some(self.message),
            ..Note::default()
        };
        let mut response = (self.status, Extension(note), Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a late body may still come; it must not be read as the next request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type Answer = Result<Response, ApiError>;

fn ok(message: &str, data: Value, note: Note) -> Response {
    let body = json!({"status": 200, "success": true, "message": message, "data": data});
    (Extension(note), Json(body)).into_response()
}

/// The whole router: authenticated routes, public routes, limits and CORS.
pub fn router(app: Arc<ServeState>, cors: &CorsOrigins) -> Router {
    let authed = Router::new()
        .route("/api/media/get-upload-token", get(get_upload_token))
        .route("/api/media/upload-token", post(post_upload_token))
        .route("/api/media/auth", get(v1_auth))
        .route("/upload-signature", get(upload_signature))
        .route("/download-url", get(download_url))
        .route("/delete-files", delete(delete_files))
        .route_layer(from_fn_with_state(app.clone(), read_body))
        .route_layer(from_fn_with_state(app.clone(), authenticate));
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi));
    let router = authed
        .merge(public)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(from_fn(limit_query))
        .layer(from_fn(json_errors))
        .with_state(app);
    match cors_layer(cors) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

fn cors_layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) if list.is_empty() => return None,
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        ),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

// ---------------------------------------------------------------------------------------------
// Middleware

/// Authenticates the bearer token, applies its rate limit, runs the handler and writes the
/// audit record, whatever the outcome. A request without a valid token counts against its
/// client IP's budget instead (429 once spent) and is audited in aggregate.
async fn authenticate(
    State(app): State<Arc<ServeState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| app.proxies.client(c.0.ip(), request.headers()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let caller = match bearer(request.headers()).and_then(|token| {
        app.tokens.verify(token).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the bearer token is not valid (unknown or removed): ask the server's operator for one (`dropkey serve token add NAME`)",
            )
        })
    }) {
        Ok(name) => Caller {
            policy: app.policies.get(&name),
            name,
        },
        Err(err) => {
            let ip = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.ip);
            let per_minute = app.auth_failures_per_minute;
            let response = match app.failures.check(&limit_key(ip), per_minute, Instant::now()) {
                Ok(()) => err.into_response(),
                Err(wait) => {
                    let secs = retry_after_secs(wait);
                    ApiError {
                        status: StatusCode::TOO_MANY_REQUESTS,
                        message: format!(
                            "too many requests without a valid bearer token from {ip} (more than {per_minute} a minute): retry in {secs} s with a valid token"
                        ),
                        retry_after: Some(secs),
                    }
                    .into_response()
                }
            };
            let note = response.extensions().get::<Note>().cloned().unwrap_or_default();
            app.audit
                .summed(
                    SumKey::auth_failures(group_label(ip)),
                    client,
                    method.as_str(),
                    &path,
                    response.status().as_u16(),
                    note,
                )
                .await;
            return response;
        }
    };
    let limited = app.limiter.check(
        &*caller.name,
        caller.policy.rate_limit_per_minute,
        Instant::now(),
    );
    let response = match limited {
        Err(wait) => {
            let secs = retry_after_secs(wait);
            ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!(
                    "token `{}` is over its limit of {} requests a minute: retry in {secs} s",
                    caller.name, caller.policy.rate_limit_per_minute
                ),
                retry_after: Some(secs),
            }
            .into_response()
        }
        Ok(()) => {
            request.extensions_mut().insert(caller.clone());
            next.run(request).await
        }
    };
    let note = response
        .extensions()
        .get::<Note>()
        .cloned()
        .unwrap_or_default();
    let status = response.status().as_u16();
    if limited.is_err() {
        // A token holder can repeat these as fast as an anonymous client.
        app.audit
            .summed(
                SumKey::rate_limited(&caller.name),
                client,
                method.as_str(),
                &path,
                status,
                note,
            )
            .await;
    } else {
        app.audit
            .log(&caller.name, client, method.as_str(), &path, status, note)
            .await;
    }
    response
}

/// The key an IP's failures are counted under: the address, or for IPv6 its /64, which one
/// client typically holds whole (it could otherwise use a fresh address per request).
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// [`limit_key`] as the audit log names it.
fn group_label(ip: IpAddr) -> String {
    match limit_key(ip) {
        IpAddr::V6(net) => format!("{net}/64"),
        v4 => v4.to_string(),
    }
}

/// Reads an authenticated request's body, giving it `header_timeout` to arrive: hyper bounds
/// only the head, and a body trickled in (or promised by Content-Length and never sent) would
/// otherwise hold the connection as long as the client likes.
async fn read_body(State(app): State<Arc<ServeState>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // The body is already wrapped by the size limit, so an oversized one fails here as 413.
    let read = tokio::time::timeout(
        app.body_timeout,
        Bytes::from_request(Request::new(body), &()),
    );
    let body = match read.await {
        Ok(Ok(bytes)) => Body::from(bytes),
        Ok(Err(rejection)) => return body_error(rejection).into_response(),
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms of its headers: send the whole request at once",
                    app.body_timeout.as_millis()
                ),
            )
            .into_response()
        }
    };
    next.run(Request::from_parts(parts, body)).await
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing bearer token: send `Authorization: Bearer <token>` (the server's operator creates one with `dropkey serve token add NAME`)",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

async fn limit_query(request: Request, next: Next) -> Response {
    let len = request.uri().query().map_or(0, str::len);
    if len > MAX_QUERY {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the query string is {len} bytes, more than the {MAX_QUERY} accepted: send fewer or shorter parameters"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Gives every error answer produced below the handlers (axum's 405, the body limit's 413) the
/// same JSON shape as the handlers' own.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than the {MAX_BODY} bytes accepted")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not accept that method: see /openapi.json".to_owned()
        }
        other => format!(
            "{} {}",
            other.as_u16(),
            other.canonical_reason().unwrap_or("error")
        ),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = json!({"status": status.as_u16(), "success": false, "message": message});
    Response::from_parts(parts, Body::from(body.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Request helpers

/// The query as a map. Each name at most once, names as the providers spell them.
fn query_params(query: Option<&str>) -> Result<Params, ApiError> {
    let mut params = Params::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ApiError::invalid(format!(
                "query parameter `{}` has an invalid name: names are letters, digits and '_' and start with a letter",
                clip(&name)
            )));
        }
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(ApiError::invalid(format!(
                "query parameter `{name}` is given twice: give each once"
            )));
        }
    }
    Ok(params)
}

/// Only `allowed` query names, for endpoints that take no upload parameters.
fn only(params: &Params, allowed: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(ApiError::invalid(format!(
            "unknown query parameter `{extra}`: this endpoint takes {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn integer(name: &str, value: &str) -> Result<i64, ApiError> {
    value.parse::<i64>().map_err(|_| {
        ApiError::invalid(format!(
            "{name} must be a whole number, got `{}`",
            clip(value)
        ))
    })
}

/// The request body, within the size limit.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(body_error)
}

fn body_error(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            format!("the request body is larger than the {MAX_BODY} bytes accepted"),
        )
    } else {
        ApiError::new(status, format!("cannot read the request body: {rejection}"))
    }
}

fn json_object(bytes: &[u8], shape: &str) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid(format!(
            "the body must be a JSON object: {shape}"
        ))),
        Err(err) => Err(ApiError::invalid(format!(
            "the body is not JSON ({err}): send {shape} with Content-Type: application/json"
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    ImageKitV2,
    ImageKitV1,
    Cloudinary,
}

impl Kind {
    fn fits(self, provider: &Provider) -> bool {
        match (self, provider) {
            (Self::ImageKitV2, Provider::ImageKit(ik)) => ik.auth == ImageKitAuth::V2,
            (Self::ImageKitV1, Provider::ImageKit(ik)) => ik.auth == ImageKitAuth::V1,
            (Self::Cloudinary, Provider::Cloudinary(_)) => true,
            _ => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ImageKitV2 => "an ImageKit profile with auth = \"v2\"",
            Self::ImageKitV1 => "an ImageKit profile with auth = \"v1\"",
            Self::Cloudinary => "a Cloudinary profile",
        }
    }

    fn endpoint_for(provider: &Provider) -> &'static str {
        match provider {
            Provider::ImageKit(ik) if ik.auth == ImageKitAuth::V1 => "/api/media/auth",
            Provider::ImageKit(_) => "/api/media/get-upload-token",
            Provider::Cloudinary(_) => "/upload-signature",
        }
    }
}

/// The profile a request is for: the one it names, else the only one of the right kind this
/// caller may use.
fn select<'a>(
    app: &'a ServeState,
    caller: &Caller,
    requested: Option<&str>,
    kind: Kind,
    public_key: Option<&str>,
) -> Result<&'a ServedProfile, ApiError> {
    let served = app.served_names();
    if let Some(name) = requested {
        let Some(found) = app.profiles.get(name) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "this server has no profile `{}`; check profile=",
                    clip(name)
                ),
            ));
        };
        caller.policy.check_profile(&caller.name, name, &served)?;
        if !kind.fits(&found.profile.provider) {
            if kind == Kind::ImageKitV1 && matches!(found.profile.provider, Provider::ImageKit(_)) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("profile `{name}` signs with V2 JWTs, which bind the upload's folder and parameters; V1 signatures bind nothing, so this server issues them only for auth = \"v1\" profiles: use /api/media/get-upload-token"),
                ));
            }
            return Err(ApiError::invalid(format!(
                "profile `{name}` is not {}: use {} for it",
                kind.describe(),
                Kind::endpoint_for(&found.profile.provider)
            )));
        }
        return Ok(found);
    }
    let candidates: Vec<&ServedProfile> = app
        .profiles
        .values()
        .filter(|p| kind.fits(&p.profile.provider) && caller.policy.may_use(&p.profile.name))
        .filter(|p| match (public_key, &p.profile.provider) {
            (Some(key), Provider::ImageKit(ik)) => ik.public_key == key,
            _ => true,
        })
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => match public_key {
            Some(key) => Err(ApiError::invalid(format!(
                "publicKey `{}` is not the public key of a profile this token may use",
                clip(key)
            ))),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "this server has no {} that token `{}` may use",
                    kind.describe(),
                    caller.name
                ),
            )),
        },
        several => Err(ApiError::invalid(format!(
            "several profiles fit ({}): name one with profile=NAME",
            several
                .iter()
                .map(|p| p.profile.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn imagekit(served: &ServedProfile) -> Result<&ImageKit, ApiError> {
    match &served.profile.provider {
        Provider::ImageKit(ik) => Ok(ik),
        Provider::Cloudinary(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: an ImageKit endpoint selected a Cloudinary profile",
        )),
    }
}

fn cloudinary_of(served: &ServedProfile) -> Result<&Cloudinary, ApiError> {
    match &served.profile.provider {
        Provider::Cloudinary(cl) => Ok(cl),
        Provider::ImageKit(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: a Cloudinary endpoint selected an ImageKit profile",
        )),
    }
}

fn upload_note(profile: &str, params: &Params, expire: i64) -> Note {
    Note {
        profile: Some(profile.to_owned()),
        file_name: params
            .get("fileName")
            .or_else(|| params.get("public_id"))
            .map(|v| clip(v)),
        folder: params.get("folder").map(|v| clip(v)),
        expire: Some(expire),
        ..Note::default()
    }
}

fn secret(served: &ServedProfile) -> &SecretString {
    &served.secret
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// The upload-token guide's endpoint, with ImageKit's Upload API V2 guide's rules: the client names `fileName` and any allowed
/// parameters in the query; the JWT signs them plus the server's policy, and `data.fields` is
/// every form field the upload must carry besides `file` and `token`.
async fn get_upload_token(
    State(app): State<Arc<ServeState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut client = query_params(query.as_deref())?;
    let requested = client.remove("profile");
    let expire_in = client
        .remove("expire")
        .map(|v| integer("expire", &v))
        .transpose()?;
    let served = select(&app, &caller, requested.as_deref(), Kind::ImageKitV2, None)?;
    let ik = imagekit(served)?;
    if !client.contains_key("fileName") {
        return Err(ApiError::invalid(
            "add fileName=<the file's name> to the query: the upload must send it, so the JWT must sign it (ImageKit's Upload API V2 guide)",
        ));
    }
    let lifetime = caller.policy.lifetime(&caller.name, expire_in)?;
    let params = caller
        .policy
        .build_params(&caller.name, &served.profile, &client)?;
    let now = app.clock.now();
    let exp = app.expiry(now, lifetime);
    let token = imagekit::sign_v2(secret(served), &ik.public_key, &params, now, exp)?;
    let note = upload_note(&served.profile.name, &params, exp);
    Ok(ok(
        "Upload token generated successfully",
        json!({
            "token": token,
            "expire": exp,
            "publicKey": ik.public_key,
            "urlEndpoint": ik.url_endpoint.as_str().trim_end_matches('/'),
            "uploadUrl": ik.upload_url.as_str(),
            "fields": params,
        }),
        note,
    ))
}

/// ImageKit's Upload API V2 guide's backend endpoint: signs exactly the client's `uploadPayload`, which must fit the
/// token's policy as it is.
async fn post_upload_token(
    State(app): State<Arc<ServeState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    const SHAPE: &str =
        "{\"uploadPayload\": {NAME: \"string\", ...}, \"expire\": SECONDS, \"publicKey\": \"...\"}";
    let query = query_params(query.as_deref())?;
    only(&query, &["profile"])?;
    let body = json_object(&body_bytes(body)?, SHAPE)?;
    if let Some(extra) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "uploadPayload" | "expire" | "publicKey"))
    {
        return Err(ApiError::invalid(format!(
            "unknown field `{}` in the body: send {SHAPE}",
            clip(extra)
        )));
    }
    let Some(Value::Object(raw_payload)) = body.get("uploadPayload") else {
        return Err(ApiError::invalid(format!(
            "uploadPayload must be an object of upload parameters: send {SHAPE}"
        )));
    };
    let mut payload = Params::new();
    for (name, value) in raw_payload {
        let Value::String(text) = value else {
            return Err(ApiError::invalid(format!(
                "uploadPayload.{} must be a string (ImageKit's Upload API V2 guide: every value is stringified, e.g. \"true\", \"a,b\"), got {value}",
                clip(name)
            )));
        };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ApiError::invalid(format!(
                "uploadPayload has an invalid parameter name `{}`",
                clip(name)
            )));
        }
        payload.insert(name.clone(), text.clone());
    }
    let expire = match body.get("expire") {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            ApiError::invalid(format!("expire must be a whole number of seconds, got {n}"))
        })?,
        _ => {
            return Err(ApiError::invalid(format!(
                "expire (seconds, at most 3600) is missing or not a number: send {SHAPE}"
            )))
        }
    };
    let Some(Value::String(public_key)) = body.get("publicKey") else {
        return Err(ApiError::invalid(format!(
            "publicKey is missing or not a string: send {SHAPE}"
        )));
    };
    let served = select(
        &app,
        &caller,
        query.get("profile").map(String::as_str),
        Kind::ImageKitV2,
        Some(public_key),
    )?;
    let ik = imagekit(served)?;
    if ik.public_key != *public_key {
        return Err(ApiError::invalid(format!(
            "publicKey `{}` is not profile `{}`'s public key",
            clip(public_key),
            served.profile.name
        )));
    }
    let lifetime = caller.policy.lifetime(&caller.name, Some(expire))?;
    caller
        .policy
        .check_payload(&caller.name, &served.profile, &payload)?;
    let now = app.clock.now();
    let exp = app.expiry(now, lifetime);
    let token = imagekit::sign_v2(secret(served), &ik.public_key, &payload, now, exp)?;
    let note = upload_note(&served.profile.name, &payload, exp);
    Ok((Extension(note), Json(json!({ "token": token }))).into_response())
}

/// ImageKit's V1 client-side upload guide's V1 parameters. A V1 signature covers only token and expire, so it is issued only
/// for `auth = "v1"` profiles and only to tokens with `folder_prefix = "/"`: the default
/// confines a token to the profile's folder, which V1 cannot enforce.
async fn v1_auth(
    State(app): State<Arc<ServeState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Answer {
    let query = query_params(query.as_deref())?;
    only(&query, &["profile", "token", "expire"])?;
    let served = select(
        &app,
        &caller,
        query.get("profile").map(String::as_str),
        Kind::ImageKitV1,
        None,
    )?;
    caller.policy.check_v1(&caller.name)?;
    let now = app.clock.now();
    let token = match query.get("token") {
        Some(t) if !t.is_empty()
            && t.len() <= 64
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => t.clone(),
        Some(t) => {
            return Err(ApiError::invalid(format!(
                "token `{}` must be 1 to 64 letters, digits, '-' or '_' (or leave it out for a fresh UUID)",
                clip(t)
            )))
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let expire = match query.get("expire") {
        Some(v) => {
            let expire = integer("expire", v)?;
            if expire <= now || expire - now >= imagekit::V1_MAX_LIFETIME {
                return Err(ApiError::invalid(format!(
                    "expire must be a Unix time in the next hour (ImageKit's V1 client-side upload guide), got {expire} while it is {now}"
                )));
            }
            caller.policy.lifetime(&caller.name, Some(expire - now))?;
            expire
        }
        None => {
            let lifetime = caller
                .policy
                .max_expire
                .min(V1_DEFAULT_LIFETIME)
                .min(imagekit::V1_MAX_LIFETIME - 1);
            now + lifetime
        }
    };
    let auth = imagekit::sign_v1(secret(served), &token, expire, now)?;
    let note = Note {
        expire: Some(expire),
        ..Note::profile(&served.profile.name)
    };
    Ok((Extension(note), Json(json!(auth))).into_response())
}

/// The Cloudinary signed-upload demo's signature endpoint. The server sets folder, tags and (from the profile's
/// `private`) `type`; the client may add what its token allows, never `type`.
async fn upload_signature(
    State(app): State<Arc<ServeState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Answer {
    let mut client = query_params(query.as_deref())?;
    let requested = client.remove("profile");
    let served = select(&app, &caller, requested.as_deref(), Kind::Cloudinary, None)?;
    let cl = cloudinary_of(served)?;
    let mut params = caller
        .policy
        .build_params(&caller.name, &served.profile, &client)?;
    let timestamp = app.clock.now();
    params.insert("timestamp".into(), timestamp.to_string());
    let signature = cloudinary::sign(&params, secret(served), cloudinary::Algorithm::Sha1);
    let mut fields = params.clone();
    fields.insert("signature".into(), signature.clone());
    fields.insert("api_key".into(), cl.api_key.clone());
    let expire = timestamp + CLOUDINARY_SIGNATURE_LIFETIME;
    let note = upload_note(&served.profile.name, &params, expire);
    Ok(ok(
        "Upload signature generated successfully",
        json!({
            "payload": params,
            "signature": signature,
            "cloudname": cl.cloud_name,
            "apiKey": cl.api_key,
            "uploadUrl": format!("{}/v1_1/{}/auto/upload", cl.api_url.as_str().trim_end_matches('/'), cl.cloud_name),
            "fields": fields,
            "expire": expire,
            "expiresIn": "1 hour",
        }),
        note,
    ))
}

/// The Cloudinary signed-upload demo's one-minute private download link, for an asset inside the caller's folder.
async fn download_url(
    State(app): State<Arc<ServeState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Answer {
    let query = query_params(query.as_deref())?;
    only(&query, &["profile", "public_id", "format", "resource_type"])?;
    let served = select(
        &app,
        &caller,
        query.get("profile").map(String::as_str),
        Kind::Cloudinary,
        None,
    )?;
    let cl = cloudinary_of(served)?;
    let public_id = query.get("public_id").map(String::as_str).unwrap_or("");
    if public_id.is_empty()
        || public_id.len() > 512
        || public_id.chars().any(char::is_control)
        || public_id
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(ApiError::invalid(
            "public_id must name an asset, e.g. kyc/1/passport (no empty, '.' or '..' segments)",
        ));
    }
    let format = query
        .get("format")
        .map(String::as_str)
        .filter(|f| !f.is_empty());
    if let Some(f) = format {
        if f.len() > 10 || !f.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ApiError::invalid(format!(
                "format `{}` must be a file extension such as pdf or jpg",
                clip(f)
            )));
        }
    }
    let resource_type = match query.get("resource_type") {
        None => ResourceType::Image,
        Some(text) => ResourceType::parse(text).ok_or_else(|| {
            ApiError::invalid(format!(
                "resource_type must be image, video or raw, got `{}`",
                clip(text)
            ))
        })?,
    };
    caller
        .policy
        .check_id(&caller.name, &served.profile, public_id)?;
    let now = app.clock.now();
    let expires_at = now + DOWNLOAD_LINK_LIFETIME;
    let url = cloudinary::private_download_url(
        &cloudinary::DownloadRequest {
            api_url: cl.api_url.as_str(),
            cloud_name: &cl.cloud_name,
            api_key: &cl.api_key,
            public_id,
            format,
            resource_type,
            delivery_type: if cl.private {
                DeliveryType::Private
            } else {
                DeliveryType::Upload
            },
            timestamp: now,
            expires_at,
            attachment: None,
        },
        secret(served),
        cloudinary::Algorithm::Sha1,
    )?;
    let note = Note {
        ids: vec![clip(public_id)],
        expire: Some(expires_at),
        ..Note::profile(&served.profile.name)
    };
    Ok(ok(
        "Download URL generated successfully",
        json!({"downloadUrl": url, "expire": expires_at, "expiresIn": "1 min"}),
        note,
    ))
}

/// The Cloudinary signed-upload demo's delete-by-URL. Every item is validated before anything is deleted: `type` is
/// image|video|raw, the URL a delivery URL of the profile's cloud whose resource type matches,
/// and the asset inside the caller's folder.
async fn delete_files(
    State(app): State<Arc<ServeState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    const SHAPE: &str = "{\"urls\": [{\"type\": \"image|video|raw\", \"url\": \"https://res.cloudinary.com/...\"}]}";
    caller.policy.check_delete(&caller.name)?;
    let query = query_params(query.as_deref())?;
    only(&query, &["profile"])?;
    let served = select(
        &app,
        &caller,
        query.get("profile").map(String::as_str),
        Kind::Cloudinary,
        None,
    )?;
    let body = json_object(&body_bytes(body)?, SHAPE)?;
    if body.len() != 1 {
        return Err(ApiError::invalid(format!(
            "the body must be exactly {SHAPE}"
        )));
    }
    let Some(Value::Array(items)) = body.get("urls") else {
        return Err(ApiError::invalid(format!(
            "urls must be an array: send {SHAPE}"
        )));
    };
    if items.is_empty() || items.len() > MAX_DELETE_URLS {
        return Err(ApiError::invalid(format!(
            "urls must hold 1 to {MAX_DELETE_URLS} items, got {}",
            items.len()
        )));
    }
    let mut targets = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::Object(item) = item else {
            return Err(ApiError::invalid(format!(
                "urls[{index}] must be an object {{type, url}}"
            )));
        };
        let (Some(Value::String(kind)), Some(Value::String(url)), 2) =
            (item.get("type"), item.get("url"), item.len())
        else {
            return Err(ApiError::invalid(format!(
                "urls[{index}] must be exactly {{\"type\": \"image|video|raw\", \"url\": \"...\"}}"
            )));
        };
        let Some(kind) = ResourceType::parse(kind) else {
            return Err(ApiError::invalid(format!(
                "urls[{index}].type must be image, video or raw, got `{}`",
                clip(kind)
            )));
        };
        let asset =
            dropkey_core::delivery_url::cloudinary_asset(url, &served.profile).map_err(|err| {
                ApiError::invalid(format!("urls[{index}].url `{}`: {err}", clip(url)))
            })?;
        if asset.resource_type != kind {
            return Err(ApiError::invalid(format!(
                "urls[{index}]: type is `{kind}` but the URL is a {} URL",
                asset.resource_type
            )));
        }
        caller
            .policy
            .check_id(&caller.name, &served.profile, &asset.public_id)?;
        targets.push((url.clone(), asset));
    }
    let mut results = Vec::with_capacity(targets.len());
    let mut failures = Vec::new();
    for (url, asset) in &targets {
        let outcome = dropkey_core::engine::provider::delete(
            &app.http,
            &app.clock,
            &served.profile,
            secret(served),
            &asset.public_id,
            asset.resource_type,
            asset.delivery_type,
        )
        .await;
        match outcome {
            Ok(existed) => results.push(json!({
                "url": url, "publicId": asset.public_id, "deleted": existed,
            })),
            Err(failure) => {
                failures.push(format!("{}: {}", asset.public_id, failure.reason()));
                results.push(json!({
                    "url": url, "publicId": asset.public_id, "error": failure.reason(),
                }));
            }
        }
    }
    let note = Note {
        ids: targets.iter().map(|(_, a)| clip(&a.public_id)).collect(),
        error: (!failures.is_empty()).then(|| failures.join("; ")),
        ..Note::profile(&served.profile.name)
    };
    if !failures.is_empty() {
        let body = json!({
            "status": 502,
            "success": false,
            "message": format!("{} of {} deletions failed at Cloudinary: {}", failures.len(), targets.len(), failures.join("; ")),
            "data": {"results": results},
        });
        return Ok((StatusCode::BAD_GATEWAY, Extension(note), Json(body)).into_response());
    }
    Ok(ok(
        &format!("Deleted {} file(s)", targets.len()),
        json!({ "results": results }),
        note,
    ))
}

async fn healthz() -> Response {
    Json(json!({"status": 200, "success": true, "message": "ok"})).into_response()
}

async fn openapi(State(app): State<Arc<ServeState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        app.openapi.clone(),
    )
        .into_response()
}

async fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route: see /openapi.json for the endpoints",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(c));
        assert_eq!(group_label(a), "2001:db8:1:2::/64");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(group_label(v4), "192.0.2.7");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(group_label(mapped), "192.0.2.7");
    }
}
