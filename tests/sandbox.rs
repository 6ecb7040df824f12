//! The embedded sandbox over real HTTP on loopback: every scheme it accepts, every way it must
//! refuse, its storage across restarts, its fault injection, and `dropkey sandbox` itself.
//! Tests wait on responses and process events, never on sleeps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dropkey_core::sign::cloudinary::{self as cl_sign, Algorithm, DownloadRequest};
use dropkey_core::sign::imagekit as ik_sign;
use dropkey_core::sign::Params;
use dropkey_sandbox::{self as sandbox, Faults, SandboxConfig, SandboxHandle};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Digest as _;

const SECRET: &str = "private_sandbox_integration_secret";
const PUBLIC: &str = "public_sandbox";
const CL_KEY: &str = sandbox::CLOUDINARY_API_KEY;

fn secret() -> SecretString {
    SecretString::from(SECRET)
}

fn now() -> i64 {
    dropkey_core::unix_now()
}

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// Bytes that differ from position to position, so a shifted or truncated copy is caught.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed)
        .collect()
}

fn hmac_sha1_hex(key: &str, message: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A sandbox on a free port with a throwaway root.
struct Sandbox {
    handle: Option<SandboxHandle>,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Sandbox {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(tweak: impl FnOnce(&mut SandboxConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let handle = start(&dir.path().join("sandbox"), tweak).await;
        Self {
            handle: Some(handle),
            dir,
            client: reqwest::Client::new(),
        }
    }

    fn handle(&self) -> &SandboxHandle {
        self.handle.as_ref().unwrap()
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("sandbox")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle().base_url())
    }

    /// Stops the server (waiting for it) and starts a new one on the same root.
    async fn restart(&mut self, tweak: impl FnOnce(&mut SandboxConfig)) {
        self.handle.take().unwrap().shutdown().await;
        self.handle = Some(start(&self.root(), tweak).await);
    }

    fn ledger(&self) -> Vec<Value> {
        common::read_records(&self.handle().ledger_path())
    }

    fn stored_blobs(&self) -> usize {
        std::fs::read_dir(self.root().join("files"))
            .unwrap()
            .count()
    }

    fn temp_files(&self) -> usize {
        std::fs::read_dir(self.root().join("tmp")).unwrap().count()
    }

    async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, Vec<u8>)>,
    ) -> reqwest::Response {
        self.try_post(path, fields, file, &[])
            .await
            .expect("the sandbox answers")
    }

    async fn try_post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, Vec<u8>)>,
        headers: &[(&str, String)],
    ) -> reqwest::Result<reqwest::Response> {
        // The file goes between the fields: the sandbox must not depend on the order.
        let mut form = Form::new();
        let mut file = file;
        for (i, (name, value)) in fields.iter().enumerate() {
            if i == 1 {
                if let Some((file_name, bytes)) = file.take() {
                    form = form.part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
                }
            }
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        if let Some((file_name, bytes)) = file {
            form = form.part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
        }
        let mut request = self.client.post(self.url(path)).multipart(form);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await
    }

    /// An ImageKit V2 upload of `file` with `upload` signed into a fresh token.
    async fn ik_v2(&self, upload: &[(&str, &str)], file: (&str, Vec<u8>)) -> (StatusCode, Value) {
        let token = fresh_token(upload);
        let mut fields = upload.to_vec();
        fields.push(("token", &token));
        fields.push(("publicKey", PUBLIC));
        let response = self.post("/api/v2/files/upload", &fields, Some(file)).await;
        (response.status(), response.json().await.unwrap())
    }

    /// A signed Cloudinary upload of `file` with `upload` (plus timestamp).
    async fn cl_upload(
        &self,
        resource_type: &str,
        upload: &[(&str, &str)],
        file: (&str, Vec<u8>),
    ) -> (StatusCode, Value) {
        let (fields, _) = cl_fields(upload, now(), Algorithm::Sha1);
        let refs = as_refs(&fields);
        let response = self
            .post(
                &format!("/v1_1/sandbox/{resource_type}/upload"),
                &refs,
                Some(file),
            )
            .await;
        (response.status(), response.json().await.unwrap())
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }
}

async fn start(root: &Path, tweak: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut config =
        SandboxConfig::builtin("127.0.0.1:0".parse().unwrap(), root.to_path_buf(), secret());
    tweak(&mut config);
    sandbox::start(config).await.expect("the sandbox starts")
}

fn v2_token(upload: &[(&str, &str)], iat: i64, exp: i64) -> String {
    ik_sign::sign_v2(&secret(), PUBLIC, &params(upload), iat, exp).unwrap()
}

/// A token no other call returns. Signing is deterministic: the same parameters signed in the
/// same second give the same JWT, which the sandbox (like ImageKit) takes only once, so each
/// token gets its own expiry.
fn fresh_token(upload: &[(&str, &str)]) -> String {
    use std::sync::atomic::{AtomicI64, Ordering};
    static SEQUENCE: AtomicI64 = AtomicI64::new(0);
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed) % 3000;
    let iat = now();
    v2_token(upload, iat, iat + 600 + n)
}

/// Signed Cloudinary fields: `upload` + timestamp + signature + api_key; also the signature.
fn cl_fields(
    upload: &[(&str, &str)],
    timestamp: i64,
    algorithm: Algorithm,
) -> (Vec<(String, String)>, String) {
    let mut signed = params(upload);
    signed.insert("timestamp".into(), timestamp.to_string());
    let signature = cl_sign::sign(&signed, &secret(), algorithm);
    let mut fields: Vec<(String, String)> = signed.into_iter().collect();
    fields.push(("signature".into(), signature.clone()));
    fields.push(("api_key".into(), CL_KEY.to_owned()));
    (fields, signature)
}

fn as_refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn message(body: &Value) -> &str {
    body["message"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .unwrap_or_else(|| panic!("no error message in {body}"))
}

#[track_caller]
fn assert_error(status: StatusCode, body: &Value, want: StatusCode, needle: &str) {
    assert_eq!(status, want, "{body}");
    assert!(
        message(body).contains(needle),
        "expected `{needle}` in: {}",
        message(body)
    );
}

// -------------------------------------------------------------------------------------------
// ImageKit

#[tokio::test]
async fn v2_upload_is_stored_and_served_byte_identical() {
    let sb = Sandbox::new().await;
    let bytes = data(300_000, 1);
    let upload = [
        ("fileName", "photo.jpg"),
        ("folder", "/uploads/chat"),
        ("tags", "chat,media"),
        ("useUniqueFileName", "true"),
        ("customMetadata", r#"{"k":"v"}"#),
        ("description", "a test photo"),
    ];
    let token = v2_token(&upload, now(), now() + 3600);
    let mut fields = upload.to_vec();
    fields.push(("token", &token));
    let response = sb
        .post(
            "/api/v2/files/upload",
            &fields,
            Some(("photo.jpg", bytes.clone())),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();

    let file_id = body["fileId"].as_str().unwrap();
    assert_eq!(file_id.len(), 24);
    assert!(file_id.bytes().all(|b| b.is_ascii_hexdigit()));
    let name = body["name"].as_str().unwrap();
    assert!(
        name.starts_with("photo_") && name.ends_with(".jpg"),
        "{name}"
    );
    assert_eq!(name.len(), "photo_".len() + 8 + ".jpg".len());
    let path = format!("/uploads/chat/{name}");
    assert_eq!(body["filePath"], path);
    assert_eq!(body["url"], sb.url(&format!("/ik/sandbox{path}")));
    assert_eq!(
        body["thumbnailUrl"],
        sb.url(&format!("/ik/sandbox/tr:n-ik_ml_thumbnail{path}"))
    );
    assert_eq!(body["size"], 300_000);
    assert_eq!(body["fileType"], "image");
    assert_eq!(body["mime"], "image/jpeg");
    assert_eq!(body["tags"], json!(["chat", "media"]));
    assert_eq!(body["isPrivateFile"], false);
    assert_eq!(body["isPublished"], true);
    assert_eq!(body["customCoordinates"], Value::Null);
    assert_eq!(body["customMetadata"], json!({"k": "v"}));
    assert_eq!(body["AITags"], Value::Null);
    assert_eq!(body["description"], "a test photo");
    assert_eq!(body["versionInfo"]["name"], "Version 1");
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));

    let served = sb.get(body["url"].as_str().unwrap()).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    assert_eq!(served.headers()["content-length"], "300000");
    assert_eq!(served.bytes().await.unwrap(), bytes);
    let transformed = sb
        .get(&sb.url(&format!("/ik/sandbox/tr:w-100,h-100{path}")))
        .await;
    assert_eq!(transformed.bytes().await.unwrap(), bytes);
    let head = sb
        .client
        .head(body["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "300000");

    let ledger = sb.ledger();
    assert_eq!(ledger.len(), 1);
    let line = &ledger[0];
    assert_eq!(line["provider"], "imagekit");
    assert_eq!(line["id"], file_id);
    assert_eq!(line["name"], name);
    assert_eq!(line["folder"], "/uploads/chat/");
    assert_eq!(line["tags"], json!(["chat", "media"]));
    assert_eq!(line["size"], 300_000);
    assert_eq!(line["sha256"], sha256(&bytes));
    assert_eq!(line["scheme"], "v2");
    assert_eq!(line["token_sha256"], sha256(token.as_bytes()));
    assert!(line["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(sb.temp_files(), 0);
}

/// A file of several megabytes and an odd length crosses the sandbox's write batches: every
/// byte must reach the disk and the hash, in order.
#[tokio::test]
async fn a_multi_megabyte_upload_is_stored_and_hashed_exactly() {
    let sb = Sandbox::new().await;
    let bytes = data(5 * 1024 * 1024 + 12_345, 7);
    let upload = [("fileName", "big.bin")];
    let token = v2_token(&upload, now(), now() + 3600);
    let mut fields = upload.to_vec();
    fields.push(("token", &token));
    let response = sb
        .post(
            "/api/v2/files/upload",
            &fields,
            Some(("big.bin", bytes.clone())),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["size"], bytes.len());
    let served = sb.get(body["url"].as_str().unwrap()).await;
    assert_eq!(served.bytes().await.unwrap(), bytes);
    let ledger = sb.ledger();
    assert_eq!(ledger[0]["sha256"], sha256(&bytes));
    assert_eq!(ledger[0]["size"], bytes.len());
}

#[tokio::test]
async fn a_discarding_sandbox_checks_and_counts_but_keeps_no_bytes() {
    let sb = Sandbox::with(|config| {
        config.discard = true;
        config.max_file_size = 4 * 1024 * 1024;
    })
    .await;
    let bytes = data(3 * 1024 * 1024 + 7, 3);
    let upload = [("fileName", "bench.bin")];
    let (status, body) = sb.ik_v2(&upload, ("bench.bin", bytes.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["size"], bytes.len(), "every byte is counted");
    let ledger = sb.ledger();
    assert_eq!(ledger[0]["size"], bytes.len());
    assert_eq!(ledger[0]["sha256"], "", "nothing was hashed");
    let served = sb.get(body["url"].as_str().unwrap()).await;
    assert!(served.bytes().await.unwrap().is_empty(), "nothing was kept");
    // Every check still runs: a bad token and an oversize file are refused.
    let t = now();
    let wrong_key = ik_sign::sign_v2(
        &SecretString::from("not-the-key"),
        PUBLIC,
        &params(&upload),
        t,
        t + 600,
    )
    .unwrap();
    let forged = sb
        .post(
            "/api/v2/files/upload",
            &[("fileName", "bench.bin"), ("token", &wrong_key)],
            Some(("bench.bin", data(10, 1))),
        )
        .await;
    let status = forged.status();
    assert_error(
        status,
        &forged.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "signature does not match",
    );
    let (status, body) = sb
        .ik_v2(&upload, ("bench.bin", data(5 * 1024 * 1024, 2)))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than this sandbox accepts",
    );
    assert_eq!(sb.ledger().len(), 1);
    assert_eq!(sb.temp_files(), 0);
}

#[tokio::test]
async fn v2_refuses_bad_tokens_with_the_right_status_and_message() {
    let sb = Sandbox::new().await;
    let t = now();
    let file = || Some(("a.jpg", b"abc".to_vec()));
    let raw_jwt = |claims: Value| {
        let header = jsonwebtoken::Header {
            kid: Some(PUBLIC.into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        };
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };

    // Payload swapped after signing: the signature no longer matches.
    let good = fresh_token(&[("fileName", "a.jpg")]);
    let forged_payload =
        URL_SAFE_NO_PAD.encode(json!({"fileName": "b.jpg", "iat": t, "exp": t + 600}).to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    let wrong_key = ik_sign::sign_v2(
        &SecretString::from("not-the-key"),
        PUBLIC,
        &params(&[("fileName", "a.jpg")]),
        t,
        t + 600,
    )
    .unwrap();
    let wrong_kid = ik_sign::sign_v2(
        &secret(),
        "public_other",
        &params(&[("fileName", "a.jpg")]),
        t,
        t + 600,
    )
    .unwrap();
    let expired = v2_token(&[("fileName", "a.jpg")], t - 1000, t - 10);
    let too_long = raw_jwt(json!({"fileName": "a.jpg", "iat": t, "exp": t + 3601}));
    let not_string =
        raw_jwt(json!({"fileName": "a.jpg", "isPrivateFile": false, "iat": t, "exp": t + 60}));
    let no_exp = raw_jwt(json!({"fileName": "a.jpg", "iat": t}));
    let for_name = fresh_token(&[("fileName", "a.jpg")]);
    let for_name_and_tags = fresh_token(&[("fileName", "a.jpg"), ("tags", "x")]);
    let for_key_check = fresh_token(&[("fileName", "a.jpg")]);

    // (what, form fields, expected status, expected part of the message)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            "tampered payload",
            vec![("fileName", "b.jpg"), ("token", &tampered)],
            StatusCode::UNAUTHORIZED,
            "signature does not match",
        ),
        (
            "wrong private key",
            vec![("fileName", "a.jpg"), ("token", &wrong_key)],
            StatusCode::UNAUTHORIZED,
            "signature does not match",
        ),
        (
            "wrong kid",
            vec![("fileName", "a.jpg"), ("token", &wrong_kid)],
            StatusCode::UNAUTHORIZED,
            "kid `public_other` is not this account's public key",
        ),
        (
            "expired",
            vec![("fileName", "a.jpg"), ("token", &expired)],
            StatusCode::FORBIDDEN,
            "expired",
        ),
        (
            "exp - iat over an hour",
            vec![("fileName", "a.jpg"), ("token", &too_long)],
            StatusCode::BAD_REQUEST,
            "valid for 3601 s",
        ),
        (
            "non-string payload value",
            vec![
                ("fileName", "a.jpg"),
                ("isPrivateFile", "false"),
                ("token", &not_string),
            ],
            StatusCode::BAD_REQUEST,
            "`isPrivateFile` is the boolean false, not a string",
        ),
        (
            "no exp",
            vec![("fileName", "a.jpg"), ("token", &no_exp)],
            StatusCode::BAD_REQUEST,
            "has no `exp`",
        ),
        (
            "form field not in the payload",
            vec![
                ("fileName", "a.jpg"),
                ("folder", "/x"),
                ("token", &for_name),
            ],
            StatusCode::BAD_REQUEST,
            "form field `folder` is not in the token's payload",
        ),
        (
            "payload field missing from the form",
            vec![("fileName", "a.jpg"), ("token", &for_name_and_tags)],
            StatusCode::BAD_REQUEST,
            "payload signs `tags`, but the form has no such field",
        ),
        (
            "publicKey mismatch",
            vec![
                ("fileName", "a.jpg"),
                ("publicKey", "public_other"),
                ("token", &for_key_check),
            ],
            StatusCode::UNAUTHORIZED,
            "publicKey `public_other` does not match the token's kid",
        ),
        (
            "no token",
            vec![("fileName", "a.jpg")],
            StatusCode::BAD_REQUEST,
            "Missing token",
        ),
    ];
    for (what, fields, status, needle) in cases {
        let response = sb.post("/api/v2/files/upload", &fields, file()).await;
        let got = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(got, status, "{what}: {body}");
        assert!(
            message(&body).contains(needle),
            "{what}: {}",
            message(&body)
        );
        assert!(body["help"]
            .as_str()
            .unwrap()
            .contains("support@imagekit.io"));
    }
    assert!(sb.ledger().is_empty());
    assert_eq!(sb.stored_blobs(), 0);
    assert_eq!(sb.temp_files(), 0);
}

#[tokio::test]
async fn v2_tokens_are_spent_even_by_failed_requests_and_across_restarts() {
    let mut sb = Sandbox::new().await;
    let upload = [("fileName", "a.jpg")];
    let file = || Some(("a.jpg", b"abc".to_vec()));

    // First use fails validation (an unsigned field), yet spends the token.
    let token = fresh_token(&upload);
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[("fileName", "a.jpg"), ("folder", "/x"), ("token", &token)],
            file(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[("fileName", "a.jpg"), ("token", &token)],
            file(),
        )
        .await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::FORBIDDEN,
        "already been used",
    );

    // A body refused while being read (a duplicate field) spends the token it carried too.
    let token = fresh_token(&upload);
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[
                ("fileName", "a.jpg"),
                ("token", &token),
                ("fileName", "a.jpg"),
            ],
            file(),
        )
        .await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "given twice",
    );
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[("fileName", "a.jpg"), ("token", &token)],
            file(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A successful upload spends its token; a restart does not forget it.
    let token = fresh_token(&upload);
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[("fileName", "a.jpg"), ("token", &token)],
            file(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    sb.restart(|_| {}).await;
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[("fileName", "a.jpg"), ("token", &token)],
            file(),
        )
        .await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::FORBIDDEN,
        "already been used",
    );
    assert_eq!(sb.ledger().len(), 1);
}

#[tokio::test]
async fn v1_upload_and_its_refusals() {
    let sb = Sandbox::new().await;
    let file = || Some(("doc.pdf", b"%PDF-1.4 test".to_vec()));
    let t = now();
    let v1 = |token: &str, expire: i64| hmac_sha1_hex(SECRET, &format!("{token}{expire}"));
    let post = |token: String, expire: i64, signature: String| {
        let sb = &sb;
        async move {
            let expire = expire.to_string();
            let fields = [
                ("fileName", "doc.pdf"),
                ("publicKey", PUBLIC),
                ("token", token.as_str()),
                ("expire", expire.as_str()),
                ("signature", signature.as_str()),
            ];
            let r = sb.post("/api/v1/files/upload", &fields, file()).await;
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };

    let auth = ik_sign::sign_v1(&secret(), "token-ok", t + 1800, t).unwrap();
    let (status, body) = post(auth.token.clone(), auth.expire, auth.signature.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fileType"], "non-image");
    assert_eq!(body["mime"], "application/pdf");
    assert_eq!(sb.ledger()[0]["scheme"], "v1");

    let (status, body) = post("token-bad-sig".into(), t + 60, v1("other", t + 60)).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "signature does not match",
    );
    let (status, body) = post("token-far".into(), t + 4000, v1("token-far", t + 4000)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "less than 1 hour");
    let (status, body) = post("token-past".into(), t - 10, v1("token-past", t - 10)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "expired");
    let fresh = ik_sign::sign_v1(&secret(), "token-ok", t + 900, t).unwrap();
    let (status, body) = post(fresh.token, fresh.expire, fresh.signature).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "already been used");
    assert_eq!(sb.ledger().len(), 1);
}

#[tokio::test]
async fn files_api_details_and_delete_need_basic_auth() {
    let sb = Sandbox::new().await;
    let (status, uploaded) = sb
        .ik_v2(&[("fileName", "a.txt")], ("a.txt", b"hello".to_vec()))
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = uploaded["fileId"].as_str().unwrap();
    let details = sb.url(&format!("/v1/files/{id}/details"));

    let r = sb.client.get(&details).send().await.unwrap();
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "does not contain private API key",
    );
    for (user, password) in [("wrong", None), ("wrong", Some(SECRET)), ("", Some(SECRET))] {
        let r = sb
            .client
            .get(&details)
            .basic_auth(user, password)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_error(
            status,
            &r.json().await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "cannot be authenticated",
        );
    }
    // ImageKit ignores the password: `@imagekit/nodejs` 7 sends `do_not_set`.
    for password in ["x", "do_not_set"] {
        let r = sb
            .client
            .get(&details)
            .basic_auth(SECRET, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "password {password}");
    }
    let r = sb
        .client
        .get(&details)
        .basic_auth(SECRET, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), uploaded);

    let file_url = sb.url(&format!("/v1/files/{id}"));
    let r = sb.client.delete(&file_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = sb
        .client
        .delete(&file_url)
        .basic_auth(SECRET, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = sb
        .client
        .get(&details)
        .basic_auth(SECRET, Some(""))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "The requested file does not exist.",
    );
    assert_eq!(message(&body), "The requested file does not exist.");
    let r = sb
        .client
        .delete(&file_url)
        .basic_auth(SECRET, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        sb.get(uploaded["url"].as_str().unwrap()).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = sb
        .client
        .get(sb.url("/v1/files/not-an-id/details"))
        .basic_auth(SECRET, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sb.stored_blobs(), 0);
}

#[tokio::test]
async fn private_imagekit_files_need_a_valid_signed_url() {
    let sb = Sandbox::new().await;
    let bytes = data(10_000, 2);
    let (status, body) = sb
        .ik_v2(
            &[
                ("fileName", "secret doc.png"),
                ("folder", "kyc"),
                ("isPrivateFile", "true"),
                ("useUniqueFileName", "false"),
            ],
            ("secret doc.png", bytes.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["isPrivateFile"], true);
    assert_eq!(body["filePath"], "/kyc/secret_doc.png");
    let url = body["url"].as_str().unwrap();
    let r = sb.get(url).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "This file is private",
    );

    let endpoint = sb.url(sandbox::IMAGEKIT_URL_PATH);
    let link = |path: &str, tr: Option<&str>, expire: i64, key: &SecretString| {
        ik_sign::signed_url(key, &endpoint, path, tr, Some(expire)).unwrap()
    };
    let ok = link("/kyc/secret_doc.png", None, now() + 60, &secret());
    let r = sb.get(&ok).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), bytes);
    // The full URL as a path, and a transformation, sign and verify the same way.
    let with_tr = link(url, Some("w-100"), now() + 60, &secret());
    assert_eq!(sb.get(&with_tr).await.status(), StatusCode::OK);

    let expired = link("/kyc/secret_doc.png", None, now() - 5, &secret());
    let r = sb.get(&expired).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "expired",
    );
    let wrong_key = link(
        "/kyc/secret_doc.png",
        None,
        now() + 60,
        &SecretString::from("x"),
    );
    assert_eq!(sb.get(&wrong_key).await.status(), StatusCode::UNAUTHORIZED);
    let tampered = ok.replace("ik-t=", "ik-t=1");
    assert_eq!(sb.get(&tampered).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn zero_byte_files_and_unicode_names() {
    let sb = Sandbox::new().await;
    let (status, body) = sb
        .ik_v2(
            &[("fileName", "ünïcødé фото 写真.txt")],
            ("x.txt", Vec::new()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["size"], 0);
    let name = body["name"].as_str().unwrap();
    assert!(
        name.starts_with("ünïcødé_фото_写真_") && name.ends_with(".txt"),
        "{name}"
    );
    let r = sb.get(body["url"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "0");
    assert!(r.bytes().await.unwrap().is_empty());

    let (status, body) = sb
        .ik_v2(
            &[
                ("fileName", "naïve café.md"),
                ("folder", "/notes/été"),
                ("useUniqueFileName", "false"),
            ],
            ("x.md", "# hi".as_bytes().to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["filePath"], "/notes/été/naïve_café.md");
    assert!(body["url"]
        .as_str()
        .unwrap()
        .ends_with("/notes/%C3%A9t%C3%A9/na%C3%AFve_caf%C3%A9.md"));
    assert_eq!(
        sb.get(body["url"].as_str().unwrap())
            .await
            .text()
            .await
            .unwrap(),
        "# hi"
    );

    let (status, body) = sb.cl_upload("raw", &[], ("empty.txt", Vec::new())).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Empty file");
    let (status, body) = sb
        .cl_upload(
            "raw",
            &[("use_filename", "true"), ("unique_filename", "false")],
            ("résumé 2024.pdf", b"%PDF".to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["public_id"], "résumé 2024.pdf");
    assert_eq!(body["original_filename"], "résumé 2024");
    assert!(body.get("format").is_none(), "raw files have no format");
    let r = sb.get(body["secure_url"].as_str().unwrap()).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"%PDF");
    assert_eq!(sb.ledger().len(), 3);
}

#[tokio::test]
async fn oversize_bodies_get_413_and_nothing_is_stored() {
    let sb = Sandbox::with(|c| c.max_file_size = 1024).await;
    let token = fresh_token(&[("fileName", "big.bin")]);
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[("fileName", "big.bin"), ("token", &token)],
            Some(("big.bin", data(200_000, 3))),
        )
        .await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than this sandbox accepts (1024 bytes",
    );
    let (status, body) = sb.cl_upload("raw", &[], ("big.bin", data(5000, 3))).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "File size too large",
    );
    // A chunked upload announcing more than the limit is refused at its first chunk.
    let (fields, _) = cl_fields(&[], now(), Algorithm::Sha1);
    let refs = as_refs(&fields);
    let headers = [
        ("X-Unique-Upload-Id", "too-big".to_owned()),
        ("Content-Range", "bytes 0-99/5000".to_owned()),
    ];
    let r = sb
        .try_post(
            "/v1_1/sandbox/raw/upload",
            &refs,
            Some(("big.bin", data(100, 3))),
            &headers,
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(sb.ledger().is_empty());
    assert_eq!(sb.stored_blobs(), 0);
    assert_eq!(sb.temp_files(), 0);
    // Exactly the limit is fine.
    let (status, _) = sb
        .ik_v2(&[("fileName", "ok.bin")], ("ok.bin", data(1024, 3)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sb.ledger().len(), 1);
}

// -------------------------------------------------------------------------------------------
// Cloudinary

#[tokio::test]
async fn cloudinary_signed_upload_is_stored_served_and_described() {
    let sb = Sandbox::new().await;
    let bytes = data(50_000, 4);
    let (status, body) = sb
        .cl_upload(
            "image",
            &[
                ("folder", "kyc/1"),
                ("public_id", "passport"),
                ("tags", "kyc,id"),
            ],
            ("passport.png", bytes.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let version = body["version"].as_i64().unwrap();
    assert!((now() - version).abs() < 60);
    assert_eq!(body["public_id"], "kyc/1/passport");
    assert_eq!(body["format"], "png");
    assert_eq!(body["resource_type"], "image");
    assert_eq!(body["type"], "upload");
    assert_eq!(body["bytes"], 50_000);
    assert_eq!(body["tags"], json!(["kyc", "id"]));
    assert_eq!(body["folder"], "kyc/1");
    assert_eq!(body["original_filename"], "passport");
    assert_eq!(body["api_key"], CL_KEY);
    assert_eq!(body["placeholder"], false);
    assert_eq!(body["asset_id"].as_str().unwrap().len(), 32);
    let expected_url = sb.url(&format!(
        "/res/sandbox/image/upload/v{version}/kyc/1/passport.png"
    ));
    assert_eq!(body["secure_url"], expected_url);
    assert_eq!(body["url"], expected_url);
    let response_signature = cl_sign::sign(
        &params(&[
            ("public_id", "kyc/1/passport"),
            ("version", &version.to_string()),
        ]),
        &secret(),
        Algorithm::Sha1,
    );
    assert_eq!(body["signature"], response_signature);

    let served = sb.get(&expected_url).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap(), bytes);
    let unversioned = sb
        .get(&sb.url("/res/sandbox/image/upload/kyc/1/passport.png"))
        .await;
    assert_eq!(unversioned.status(), StatusCode::OK);

    let admin = sb.url("/v1_1/sandbox/resources/image/upload/kyc/1/passport");
    let r = sb.client.get(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = sb
        .client
        .get(&admin)
        .basic_auth(CL_KEY, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = sb
        .client
        .get(&admin)
        .basic_auth(CL_KEY, Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let described: Value = r.json().await.unwrap();
    assert_eq!(described["public_id"], "kyc/1/passport");
    assert_eq!(described["bytes"], 50_000);
    let r = sb
        .client
        .get(sb.url("/v1_1/sandbox/resources/image/upload/kyc/1/nope"))
        .basic_auth(CL_KEY, Some(SECRET))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message(&body), "Resource not found - kyc/1/nope");

    // A SHA-256 signature works too; without public_id the id is 20 random characters.
    let (fields, _) = cl_fields(&[("folder", "kyc/1")], now(), Algorithm::Sha256);
    let refs = as_refs(&fields);
    let r = sb
        .post(
            "/v1_1/sandbox/auto/upload",
            &refs,
            Some(("scan.jpeg", data(100, 5))),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let id = body["public_id"].as_str().unwrap();
    let random = id.strip_prefix("kyc/1/").unwrap();
    assert_eq!(random.len(), 20);
    assert!(random
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(body["format"], "jpg");
    assert_eq!(body["resource_type"], "image");

    let ledger = sb.ledger();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[0]["provider"], "cloudinary");
    assert_eq!(ledger[0]["id"], "kyc/1/passport");
    assert_eq!(ledger[0]["name"], "passport.png");
    assert_eq!(ledger[0]["scheme"], "signed");
    assert_eq!(ledger[0]["sha256"], sha256(&bytes));
    assert!(ledger[0].get("token_sha256").is_none());
}

#[tokio::test]
async fn cloudinary_refuses_bad_signatures_stale_requests_and_wrong_accounts() {
    let sb = Sandbox::new().await;
    let file = || Some(("a.png", data(10, 6)));
    let t = now();

    // Signed for one tag set, sent with another: the message shows what the server signed.
    let (mut fields, signature) =
        cl_fields(&[("tags", "a"), ("public_id", "x")], t, Algorithm::Sha1);
    for (k, v) in &mut fields {
        if k == "tags" {
            *v = "b".into();
        }
    }
    let refs = as_refs(&fields);
    let r = sb.post("/v1_1/sandbox/image/upload", &refs, file()).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        message(&body),
        format!(
            "Invalid Signature {signature}. String to sign - 'public_id=x&tags=b&timestamp={t}'."
        )
    );

    let (fields, _) = cl_fields(&[], t - 4000, Algorithm::Sha1);
    let refs = as_refs(&fields);
    let r = sb.post("/v1_1/sandbox/image/upload", &refs, file()).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "Stale request - reported time is ",
    );
    assert!(message(&body).contains("which is out of range"));

    let (mut fields, _) = cl_fields(&[], t, Algorithm::Sha1);
    fields.retain(|(k, _)| k != "api_key");
    fields.push(("api_key".into(), "other_key".into()));
    let refs = as_refs(&fields);
    let r = sb.post("/v1_1/sandbox/image/upload", &refs, file()).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "Unknown API key other_key",
    );

    let (fields, _) = cl_fields(&[], t, Algorithm::Sha1);
    let refs = as_refs(&fields);
    let r = sb
        .post("/v1_1/othercloud/image/upload", &refs, file())
        .await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::NOT_FOUND,
        "Invalid cloud_name othercloud",
    );
    let r = sb
        .post(
            "/v1_1/sandbox/image/upload",
            &refs,
            Some(("notes.txt", b"text".to_vec())),
        )
        .await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "Invalid image file",
    );
    let r = sb.post("/v1_1/sandbox/image/upload", &refs, None).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "Missing required parameter - file",
    );
    assert!(sb.ledger().is_empty());
    assert_eq!(sb.stored_blobs(), 0);
}

#[tokio::test]
async fn cloudinary_private_assets_need_a_signed_download_link() {
    let sb = Sandbox::new().await;
    let bytes = data(4096, 7);
    let (status, body) = sb
        .cl_upload(
            "image",
            &[
                ("folder", "kyc/1"),
                ("public_id", "secret"),
                ("type", "private"),
            ],
            ("scan.png", bytes.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "private");
    let r = sb.get(body["secure_url"].as_str().unwrap()).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::FORBIDDEN,
        "not delivered publicly",
    );

    let base = sb.handle().base_url();
    let link = |timestamp: i64, expires_at: i64, attachment: Option<bool>| {
        cl_sign::private_download_url(
            &DownloadRequest {
                api_url: &base,
                cloud_name: sandbox::CLOUDINARY_CLOUD,
                api_key: CL_KEY,
                public_id: "kyc/1/secret",
                format: Some("png"),
                resource_type: cl_sign::ResourceType::Image,
                delivery_type: cl_sign::DeliveryType::Private,
                timestamp,
                expires_at,
                attachment,
            },
            &secret(),
            Algorithm::Sha1,
        )
        .unwrap()
    };
    let r = sb.get(&link(now(), now() + 60, None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap(), bytes);
    let r = sb.get(&link(now(), now() + 60, Some(true))).await;
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"secret.png\""
    );

    let r = sb.get(&link(now() - 120, now() - 60, None)).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::FORBIDDEN,
        "expired",
    );
    let tampered = link(now(), now() + 60, None).replace("kyc%2F1%2Fsecret", "kyc%2F1%2Fother");
    let r = sb.get(&tampered).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "Invalid Signature",
    );
}

#[tokio::test]
async fn cloudinary_chunked_upload_survives_a_resent_chunk_and_a_restart() {
    let mut sb = Sandbox::new().await;
    let whole = data(100_001, 8);
    let (c1, rest) = whole.split_at(40_000);
    let (c2, c3) = rest.split_at(40_000);
    let upload_id = "dropkey-test-upload-1";
    let (status, body) = chunk_post(&sb, upload_id, c1, "bytes 0-39999/100001").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["done"], false);
    assert_eq!(body["bytes_received"], 40_000);
    // The same chunk again (the client missed the answer): acknowledged, not appended.
    let (status, body) = chunk_post(&sb, upload_id, c1, "bytes 0-39999/100001").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bytes_received"], 40_000);
    // A gap is refused.
    let (status, body) = chunk_post(&sb, upload_id, c3, "bytes 80000-100000/100001").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "leave a gap");
    // A different total is refused.
    let (status, body) = chunk_post(&sb, upload_id, c2, "bytes 40000-79999/100002").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "the total must not change",
    );

    sb.restart(|_| {}).await;
    assert!(sb.ledger().is_empty());
    // The Node SDK sends -1 as the total of every chunk but the last.
    let (status, body) = chunk_post(&sb, upload_id, c2, "bytes 40000-79999/-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bytes_received"], 80_000);
    let (status, body) = chunk_post(&sb, upload_id, c3, "bytes 80000-100000/100001").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["public_id"], "big/video");
    assert_eq!(body["resource_type"], "video");
    assert_eq!(body["format"], "mp4");
    assert_eq!(body["bytes"], 100_001);
    let served = sb.get(body["secure_url"].as_str().unwrap()).await;
    assert_eq!(served.bytes().await.unwrap(), whole);

    // Resending the last chunk returns the same asset and stores nothing new.
    let (status, again) = chunk_post(&sb, upload_id, c3, "bytes 80000-100000/100001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["asset_id"], body["asset_id"]);
    let ledger = sb.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["upload_id"], upload_id);
    assert_eq!(ledger[0]["sha256"], sha256(&whole));
    assert_eq!(ledger[0]["size"], 100_001);
}

async fn chunk_post(
    sb: &Sandbox,
    upload_id: &str,
    chunk: &[u8],
    range: &str,
) -> (StatusCode, Value) {
    let (fields, _) = cl_fields(&[("public_id", "big/video")], now(), Algorithm::Sha1);
    let refs = as_refs(&fields);
    let headers = [
        ("X-Unique-Upload-Id", upload_id.to_owned()),
        ("Content-Range", range.to_owned()),
    ];
    let r = sb
        .try_post(
            "/v1_1/sandbox/video/upload",
            &refs,
            Some(("movie.mp4", chunk.to_vec())),
            &headers,
        )
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn cloudinary_destroy_removes_an_asset_once() {
    let sb = Sandbox::new().await;
    let (status, body) = sb
        .cl_upload(
            "raw",
            &[("public_id", "docs/a.txt")],
            ("a.txt", b"abc".to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["secure_url"].as_str().unwrap().to_owned();
    let destroy = |signature_ok: bool| {
        let (mut fields, _) = cl_fields(
            &[("public_id", "docs/a.txt"), ("invalidate", "true")],
            now(),
            Algorithm::Sha1,
        );
        if !signature_ok {
            fields.retain(|(k, _)| k != "signature");
            fields.push(("signature".into(), "0".repeat(40)));
        }
        sb.client
            .post(sb.url("/v1_1/sandbox/raw/destroy"))
            .form(&fields)
            .send()
    };
    let r = destroy(false).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = destroy(true).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"result": "ok"}));
    assert_eq!(sb.get(&url).await.status(), StatusCode::NOT_FOUND);
    let r = destroy(true).await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"result": "not found"})
    );
    assert_eq!(sb.stored_blobs(), 0);
}

// -------------------------------------------------------------------------------------------
// Faults and the ledger

/// A raw HTTP/1.1 response: status, lowercase headers, body (Content-Length framed).
async fn read_raw_response(
    reader: &mut tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok((status, headers, body))
}

#[tokio::test]
async fn a_chunked_body_whose_terminator_comes_late_keeps_the_connection_alive() {
    use tokio::io::AsyncWriteExt as _;
    let sb = Sandbox::new().await;
    let (fields, _) = cl_fields(&[("public_id", "late/end")], now(), Algorithm::Sha1);
    let boundary = "dropkeyboundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, value) in &fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(b"late terminator\n");
    body.extend_from_slice(format!("\r\n--{boundary}--").as_bytes());

    let stream = tokio::net::TcpStream::connect(sb.handle().addr())
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read);
    let head = format!(
        "POST /v1_1/sandbox/raw/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    );
    write.write_all(head.as_bytes()).await.unwrap();
    write.write_all(&body).await.unwrap();
    write.write_all(b"\r\n").await.unwrap();
    write.flush().await.unwrap();
    // The whole multipart body is in: once the upload is in the ledger, the handler is done
    // with the body, and only then does the chunked terminator follow, as Node sends it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sb.ledger().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the ledger"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    write.write_all(b"0\r\n\r\n").await.unwrap();
    write.flush().await.unwrap();
    let (status, headers, first) = read_raw_response(&mut reader).await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first));
    let first: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(first["public_id"], "late/end");
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close")),
        "{headers:?}"
    );

    // The same socket takes the next request.
    let nonce = "0123456789abcdef0123456789abcdef";
    write
        .write_all(
            format!(
                "GET {}?nonce={nonce} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                dropkey_core::sandbox_identity::IDENTITY_PATH
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let (status, _, proof) = read_raw_response(&mut reader)
        .await
        .expect("the keep-alive connection answers a second request");
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(proof).unwrap(),
        dropkey_core::sandbox_identity::identity_proof(&secret(), nonce)
    );
}

#[tokio::test]
async fn a_request_refused_before_its_body_does_not_invite_an_expected_body() {
    use tokio::io::AsyncWriteExt as _;
    let sb = Sandbox::new().await;
    let stream = tokio::net::TcpStream::connect(sb.handle().addr())
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read);
    // Not multipart: refused from the head alone. The client waits for `100 Continue` before
    // sending its 10 MiB, so the answer must come without it, and close the connection.
    write
        .write_all(
            b"POST /v1_1/sandbox/raw/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let (status, headers, body) = read_raw_response(&mut reader).await.unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(message(&body).contains("multipart/form-data"), "{body}");
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close")),
        "{headers:?}"
    );
}

#[tokio::test]
async fn cloudinary_context_values_lose_the_sdks_escapes() {
    let sb = Sandbox::new().await;
    // What the Node SDK's `encode_context` makes of {alt: "plain", caption: "a=b", note: "x|y"}.
    let (status, body) = sb
        .cl_upload(
            "raw",
            &[("context", r"alt=plain|caption=a\=b|note=x\|y")],
            ("notes.txt", b"context".to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["context"]["custom"],
        json!({"alt": "plain", "caption": "a=b", "note": "x|y"})
    );
}

/// A 1x1 PNG.
const PNG_1X1: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";

#[tokio::test]
async fn cloudinary_reads_the_type_from_the_bytes_and_the_name_only_as_a_fallback() {
    let sb = Sandbox::new().await;
    // A PNG with no extension (the SDKs' `upload_stream` names every file `file`).
    let (status, body) = sb.cl_upload("image", &[], ("file", PNG_1X1.to_vec())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["format"], "png");
    // `auto` stores it as an image, not raw.
    let (status, body) = sb
        .cl_upload("auto", &[], ("upload", PNG_1X1.to_vec()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resource_type"], "image");
    assert_eq!(body["format"], "png");
    let served = sb.get(body["secure_url"].as_str().unwrap()).await;
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap(), PNG_1X1);
    // The bytes win over a misleading name.
    let mut jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0".to_vec();
    jpeg.extend_from_slice(&data(1000, 1));
    let (status, body) = sb.cl_upload("auto", &[], ("photo.txt", jpeg)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resource_type"], "image");
    assert_eq!(body["format"], "jpg");
    // Bytes that are no known format: the name decides.
    let (status, body) = sb
        .cl_upload("auto", &[], ("notes", b"plain text".to_vec()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resource_type"], "raw");
    let (status, body) = sb
        .cl_upload("image", &[], ("notes", b"plain text".to_vec()))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Invalid image file");
}

#[tokio::test]
async fn cloudinary_file_may_be_a_data_uri_or_a_loopback_url() {
    let sb = Sandbox::new().await;
    let mut bytes = PNG_1X1.to_vec();
    bytes.extend_from_slice(&data(300_000, 7));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    // `file` is a text field, as the SDKs send a data URI or a URL; it is not signed.
    let upload = |resource_type: &'static str, file: String, signed: &'static [(&str, &str)]| {
        let sb = &sb;
        async move {
            let (mut fields, _) = cl_fields(signed, now(), Algorithm::Sha1);
            fields.push(("file".into(), file));
            let r = sb
                .post(
                    &format!("/v1_1/sandbox/{resource_type}/upload"),
                    &as_refs(&fields),
                    None,
                )
                .await;
            let cld_error = r.headers().get("x-cld-error").is_some();
            let status = r.status();
            let body = r.json::<Value>().await.unwrap();
            if status != StatusCode::OK {
                // Cloudinary's error shape, not ImageKit's.
                assert!(body["error"]["message"].is_string(), "{body}");
                assert!(body.get("help").is_none() && cld_error, "{body}");
            }
            (status, body)
        }
    };
    let (status, uri) = upload("image", format!("data:image/png;base64,{b64}"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    assert_eq!(uri["resource_type"], "image");
    assert_eq!(uri["format"], "png");
    assert_eq!(uri["bytes"], bytes.len());
    let served = sb.get(uri["secure_url"].as_str().unwrap()).await;
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());
    // The bytes decide the type, not the data URI's declared one.
    let (status, body) = upload(
        "auto",
        format!("data:application/octet-stream;base64,{b64}"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resource_type"], "image");
    assert_eq!(body["format"], "png");
    // A URL on loopback: the sandbox's own delivery URL of the first upload; the name comes
    // from the URL's last segment.
    let url = uri["secure_url"].as_str().unwrap().to_owned();
    let (status, fetched) = upload("auto", url.clone(), &[("use_filename", "true")]).await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    assert_eq!(fetched["resource_type"], "image");
    let stem = url.rsplit('/').next().unwrap().split('.').next().unwrap();
    assert_eq!(fetched["original_filename"], stem);
    let served = sb.get(fetched["secure_url"].as_str().unwrap()).await;
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let ledger = sb.ledger();
    assert_eq!(ledger.len(), 3);
    assert!(ledger.iter().all(|l| l["sha256"] == sha256(&bytes)));

    let (status, body) = upload("image", "https://example.com/a.png".into(), &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "loopback only");
    let (status, body) = upload("image", "ftp://127.0.0.1/a.png".into(), &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "loopback only");
    let (status, body) = upload("image", format!("{}/missing.png", sb.url("/sandbox")), &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "HTTP 404");
    // Cloudinary takes base64 only as a data URI.
    let (status, body) = upload("image", b64.clone(), &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "must be a data URI");
    let (status, body) = upload("image", "data:image/png;base64,iVBO!!".into(), &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "not valid base64");
    let (status, body) = upload("image", "data:text/plain,hello".into(), &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, ";base64");
    let (status, body) = upload("image", "data:image/png;base64".into(), &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "no ','");
    // A URL with a bad signature is refused before anything is fetched.
    let mut fields = vec![
        ("api_key".to_owned(), CL_KEY.to_owned()),
        ("timestamp".to_owned(), now().to_string()),
        ("signature".to_owned(), "0".repeat(40)),
    ];
    fields.push(("file".into(), url));
    let r = sb
        .post("/v1_1/sandbox/image/upload", &as_refs(&fields), None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sb.ledger().len(), 3);
    assert_eq!(sb.temp_files(), 0);
}

#[tokio::test]
async fn cloudinary_raw_files_take_an_extension_only_from_their_name() {
    let sb = Sandbox::new().await;
    let (fields, _) = cl_fields(&[], now(), Algorithm::Sha1);
    let refs = as_refs(&fields);
    let part = || {
        Part::bytes(b"no extension here".to_vec())
            .file_name("blob")
            .mime_str("application/octet-stream")
            .unwrap()
    };
    let mut form = Form::new().part("file", part());
    for (name, value) in &refs {
        form = form.text(name.to_string(), value.to_string());
    }
    let r = sb
        .client
        .post(sb.url("/v1_1/sandbox/raw/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let public_id = body["public_id"].as_str().unwrap();
    assert!(!public_id.contains('.'), "{public_id}");
    assert!(body.get("format").is_none(), "{body}");
    // A chunked upload (`upload_large` strips the extension from the name it sends).
    let whole = data(30_000, 3);
    let upload_id = "raw-no-extension";
    for (start, end, total) in [(0, 14_999, "-1"), (15_000, 29_999, "30000")] {
        let (fields, _) = cl_fields(&[], now(), Algorithm::Sha1);
        let mut form = Form::new();
        for (name, value) in &fields {
            form = form.text(name.clone(), value.clone());
        }
        form = form.part(
            "file",
            Part::bytes(whole[start..=end].to_vec())
                .file_name("big")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
        let r = sb
            .client
            .post(sb.url("/v1_1/sandbox/raw/upload"))
            .header("X-Unique-Upload-Id", upload_id)
            .header("Content-Range", format!("bytes {start}-{end}/{total}"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        if total != "-1" {
            let public_id = body["public_id"].as_str().unwrap();
            assert!(!public_id.contains('.'), "{public_id}");
            assert_eq!(body["resource_type"], "raw");
        }
    }
    // With an extension in the name, the public id keeps it.
    let (status, body) = sb
        .cl_upload("raw", &[], ("report.CSV", b"a,b".to_vec()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["public_id"].as_str().unwrap().ends_with(".csv"),
        "{body}"
    );
}

#[tokio::test]
async fn cloudinary_chunked_uploads_are_typed_by_the_first_chunk() {
    let sb = Sandbox::new().await;
    let mut whole = PNG_1X1.to_vec();
    whole.extend_from_slice(&data(20_000, 5));
    let total = whole.len();
    let half = total / 2;
    let upload_id = "png-in-two";
    let mut last = Value::Null;
    for (start, end, total_text) in [
        (0, half - 1, "-1".to_owned()),
        (half, total - 1, total.to_string()),
    ] {
        let (fields, _) = cl_fields(&[], now(), Algorithm::Sha1);
        let mut form = Form::new();
        for (name, value) in &fields {
            form = form.text(name.clone(), value.clone());
        }
        form = form.part(
            "file",
            Part::bytes(whole[start..=end].to_vec()).file_name("photo"),
        );
        let r = sb
            .client
            .post(sb.url("/v1_1/sandbox/image/upload"))
            .header("X-Unique-Upload-Id", upload_id)
            .header("Content-Range", format!("bytes {start}-{end}/{total_text}"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        last = r.json().await.unwrap();
    }
    assert_eq!(last["resource_type"], "image", "{last}");
    assert_eq!(last["format"], "png", "{last}");
    assert_eq!(last["bytes"], total);
}

#[tokio::test]
async fn fail_rate_one_faults_every_upload_and_the_ledger_stays_empty() {
    let mut sb = Sandbox::with(|c| {
        c.faults = Faults {
            fail_rate: 1.0,
            latency_ms: 0,
            seed: Some(42),
        }
    })
    .await;
    let mut seen = HashSet::new();
    let mut spent_token = None;
    for i in 0..60 {
        let imagekit = i % 2 == 0;
        let token = fresh_token(&[("fileName", "a.bin")]);
        let result = if imagekit {
            sb.try_post(
                "/api/v2/files/upload",
                &[("fileName", "a.bin"), ("token", &token)],
                Some(("a.bin", data(100_000, 9))),
                &[],
            )
            .await
        } else {
            let (fields, _) = cl_fields(&[], now(), Algorithm::Sha1);
            let refs = as_refs(&fields);
            sb.try_post(
                "/v1_1/sandbox/raw/upload",
                &refs,
                Some(("a.bin", data(100_000, 9))),
                &[],
            )
            .await
        };
        let outcome = match result {
            Err(_) => "reset",
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let reset = r
                    .headers()
                    .get("x-ratelimit-reset")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: Value = r.json().await.unwrap();
                match status {
                    500 => "500",
                    503 if retry_after.as_deref() == Some("1") => "503 retry-after",
                    503 => "503",
                    429 => {
                        assert!(imagekit);
                        assert_eq!(reset.as_deref(), Some("1000"));
                        "rate limit"
                    }
                    420 => {
                        assert!(!imagekit);
                        assert!(message(&body).starts_with("Rate Limit Exceeded. Try again on "));
                        "rate limit"
                    }
                    408 => "slow body",
                    other => panic!("upload {i} was not faulted: {other} {body}"),
                }
            }
        };
        if imagekit && matches!(outcome, "500" | "503" | "503 retry-after" | "rate limit") {
            spent_token.get_or_insert(token);
        }
        seen.insert(outcome);
        if seen.len() == 6 && spent_token.is_some() {
            break;
        }
    }
    assert_eq!(seen.len(), 6, "every kind of fault appears: {seen:?}");
    assert!(sb.ledger().is_empty());
    assert_eq!(sb.stored_blobs(), 0);

    // An answered fault came after the token was checked: it is spent, as at ImageKit.
    sb.restart(|_| {}).await;
    let token = spent_token.unwrap();
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[("fileName", "a.bin"), ("token", &token)],
            Some(("a.bin", data(10, 9))),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, _) = sb
        .ik_v2(&[("fileName", "a.bin")], ("a.bin", data(10, 9)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sb.ledger().len(), 1);
}

#[tokio::test]
async fn latency_delays_upload_responses_only() {
    let sb = Sandbox::with(|c| c.faults.latency_ms = 300).await;
    let started = Instant::now();
    let (status, body) = sb
        .ik_v2(&[("fileName", "a.txt")], ("a.txt", b"x".to_vec()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(
        sb.get(body["url"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn the_ledger_has_one_line_per_accepted_upload() {
    let sb = Sandbox::new().await;
    let uploads = (0..6).map(|i| {
        let sb = &sb;
        async move {
            let bytes = data(20_000 + i, i as u8);
            let name = format!("f{i}.bin");
            let (status, body) = if i % 2 == 0 {
                sb.ik_v2(
                    &[("fileName", &name), ("folder", "/batch")],
                    (&name, bytes.clone()),
                )
                .await
            } else {
                sb.cl_upload("raw", &[("folder", "batch")], (&name, bytes.clone()))
                    .await
            };
            assert_eq!(status, StatusCode::OK, "{body}");
            (body, sha256(&bytes))
        }
    });
    let results = futures_util::future::join_all(uploads).await;
    // A refused upload in between adds nothing.
    let (status, _) = sb.cl_upload("image", &[], ("x.txt", b"x".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let ledger = sb.ledger();
    assert_eq!(ledger.len(), 6);
    let ids: HashSet<&str> = ledger.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 6);
    for (body, hash) in &results {
        let id = body["fileId"]
            .as_str()
            .or(body["public_id"].as_str())
            .unwrap();
        let line = ledger
            .iter()
            .find(|l| l["id"] == id)
            .expect("in the ledger");
        assert_eq!(line["sha256"], *hash);
    }
    let tokens: Vec<&str> = ledger
        .iter()
        .filter_map(|l| l["token_sha256"].as_str())
        .collect();
    assert_eq!(tokens.len(), 3);
    assert_eq!(
        tokens.iter().collect::<HashSet<_>>().len(),
        3,
        "no token used twice"
    );
}

// -------------------------------------------------------------------------------------------
// `dropkey sandbox`

#[tokio::test]
async fn cli_sandbox_prints_its_address_serves_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead as _, Read as _};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let data_dir = dir.path().join("data");
    let mut command = common::isolated_dropkey();
    let mut child = command
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .env("DROPKEY_SECRET_SANDBOX", SECRET)
        .env("DROPKEY_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let first_line = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        }),
    )
    .await
    .expect("the first line comes within a minute")
    .unwrap()
    .unwrap();
    let info: Value = serde_json::from_str(&first_line).expect("the first line is JSON");
    let listen = info["listen"].as_str().unwrap();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{info}"
    );
    let base = format!("http://{listen}");
    assert_eq!(info["imagekit"]["publicKey"], PUBLIC);
    assert_eq!(
        info["imagekit"]["urlEndpoint"],
        format!("{base}/ik/sandbox")
    );
    assert_eq!(
        info["imagekit"]["uploadUrl"],
        format!("{base}/api/v2/files/upload")
    );
    assert_eq!(info["imagekit"]["apiUrl"], base);
    assert_eq!(info["cloudinary"]["cloud_name"], sandbox::CLOUDINARY_CLOUD);
    assert_eq!(info["cloudinary"]["api_key"], CL_KEY);
    assert_eq!(info["cloudinary"]["api_url"], base);
    assert_eq!(
        PathBuf::from(info["root"].as_str().unwrap()),
        data_dir.join("sandbox")
    );

    let upload = [("fileName", "cli.txt"), ("folder", "/uploads/chat")];
    let token = fresh_token(&upload);
    let form = Form::new()
        .text("fileName", "cli.txt")
        .text("folder", "/uploads/chat")
        .text("token", token)
        .part(
            "file",
            Part::bytes(b"from the cli test".to_vec()).file_name("cli.txt"),
        );
    let response = reqwest::Client::new()
        .post(info["imagekit"]["uploadUrl"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let served = reqwest::get(body["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(served.text().await.unwrap(), "from the cli test");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .expect("the sandbox exits within 30 s of SIGTERM")
    .unwrap()
    .unwrap();
    let logs = stderr_reader.join().unwrap();
    assert!(status.success(), "exit {status:?}; stderr:\n{logs}");
    assert!(logs.contains("POST /api/v2/files/upload -> 200"), "{logs}");
    assert!(!logs.contains(SECRET), "the secret never reaches the logs");
    let ledger = std::fs::read_to_string(info["ledger"].as_str().unwrap()).unwrap();
    assert_eq!(ledger.lines().count(), 1);
}

#[tokio::test]
async fn server_side_uploads_authenticate_with_the_private_key() {
    let sb = Sandbox::new().await;
    let url = sb.url("/api/v1/files/upload");
    let form = || {
        reqwest::multipart::Form::new()
            .text("fileName", "server.txt")
            .text("folder", "/srv")
            .part(
                "file",
                reqwest::multipart::Part::bytes(b"server side".to_vec()).file_name("server.txt"),
            )
    };
    let r = sb
        .client
        .post(&url)
        .basic_auth("not-the-key", Some(""))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = sb
        .client
        .post(&url)
        .basic_auth(SECRET, Some(""))
        .multipart(form().text("token", "also-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = sb
        .client
        .post(&url)
        .basic_auth(SECRET, Some(""))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body["filePath"]
        .as_str()
        .unwrap()
        .starts_with("/srv/server"));
}

// -------------------------------------------------------------------------------------------
// Issue 15: refusals answered on a usable connection, tokens recorded only when they verified,
// auth before the file, `file` as base64 or a loopback URL.

/// One HTTP/1.1 exchange on an open socket: writes `request` whole, then reads one response
/// (head and `Content-Length` body). Any I/O error (a reset, `EPIPE`) is returned, not hidden.
async fn raw_exchange(
    stream: &mut tokio::net::TcpStream,
    request: &[u8],
) -> std::io::Result<(u16, String, Value)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(request).await?;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((status, head, serde_json::from_slice(&body).unwrap()))
}

/// A multipart upload request: `fields` first, then a file part of `file_len` bytes.
fn raw_upload(
    host: &str,
    path: &str,
    auth: Option<&str>,
    fields: &[(&str, &str)],
    file_len: usize,
) -> Vec<u8> {
    let auth: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    raw_upload_with(host, path, &auth, fields, file_len)
}

/// [`raw_upload`] with any extra headers.
fn raw_upload_with(
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
    file_len: usize,
) -> Vec<u8> {
    let boundary = "----dropkey-raw-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&data(file_len, 9));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut out = request.into_bytes();
    out.extend_from_slice(&body);
    out
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn refused_uploads_are_answered_and_the_connection_stays_usable() {
    let sb = Sandbox::new().await;
    let addr = sb.handle().addr();
    let host = addr.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let wrong_key = basic("not-the-key", "do_not_set");
    // Ten 4 MiB uploads with a wrong key on one keep-alive connection: each is answered 401,
    // none breaks the connection.
    for i in 0..10 {
        let request = raw_upload(
            &host,
            "/api/v1/files/upload",
            Some(&wrong_key),
            &[("fileName", "big.bin")],
            4 * 1024 * 1024,
        );
        let (status, head, body) = raw_exchange(&mut stream, &request)
            .await
            .unwrap_or_else(|err| panic!("request {i}: {err}"));
        assert_eq!(status, 401, "request {i}: {body}");
        assert!(!head.contains("connection: close"), "{head}");
        assert!(message(&body).contains("cannot be authenticated"));
    }
    // A forged token and a body that is not multipart: answered on the same connection too.
    let request = raw_upload(
        &host,
        "/api/v2/files/upload",
        None,
        &[("fileName", "big.bin"), ("token", "a.b.c")],
        4 * 1024 * 1024,
    );
    let (status, _, body) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 401, "{body}");
    let mut request = format!(
        "POST /api/v1/files/upload HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        basic(SECRET, ""),
        1024 * 1024
    )
    .into_bytes();
    request.extend_from_slice(&vec![b' '; 1024 * 1024]);
    let (status, _, body) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("multipart/form-data"));
    // And the connection still uploads.
    let request = raw_upload(
        &host,
        "/api/v1/files/upload",
        Some(&basic(SECRET, "do_not_set")),
        &[("fileName", "ok.bin")],
        1000,
    );
    let (status, _, body) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(sb.ledger().len(), 1);
    assert_eq!(sb.temp_files(), 0);
}

fn used_token_lines(sb: &Sandbox) -> Vec<String> {
    std::fs::read_to_string(sb.root().join("used-tokens"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn only_tokens_that_verified_are_recorded_and_auth_comes_before_the_file() {
    // A 64 KiB limit: a file part over it that the sandbox streamed would get 413, so a 401 or
    // 403 for a 1 MiB file proves the token was judged before any of the file was kept.
    let sb = Sandbox::with(|c| c.max_file_size = 64 * 1024).await;
    let host = sb.handle().addr().to_string();
    let mut stream = tokio::net::TcpStream::connect(sb.handle().addr())
        .await
        .unwrap();
    let mut forged = Vec::new();
    for i in 0..200 {
        // Random-looking JWTs signed with another key, and V1 tokens with bad signatures.
        let token = ik_sign::sign_v2(
            &SecretString::from(format!("forger-{i}")),
            PUBLIC,
            &params(&[("fileName", "a.bin")]),
            now(),
            now() + 600,
        )
        .unwrap();
        forged.push(token);
    }
    for token in &forged {
        let r = sb
            .post(
                "/api/v2/files/upload",
                &[("token", token), ("fileName", "a.bin")],
                Some(("a.bin", b"abc".to_vec())),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    for i in 0..20 {
        let expire = (now() + 600).to_string();
        let token = format!("forged-v1-{i}");
        let fields = [
            ("token", token.as_str()),
            ("expire", expire.as_str()),
            ("signature", "0000"),
            ("publicKey", PUBLIC),
            ("fileName", "a.bin"),
        ];
        let r = sb
            .post(
                "/api/v1/files/upload",
                &fields,
                Some(("a.bin", b"abc".to_vec())),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let lines = used_token_lines(&sb);
    assert!(lines.is_empty(), "{} forged tokens recorded", lines.len());

    // Forged, then valid but spent: both refused before the 1 MiB file, on one connection.
    let request = raw_upload(
        &host,
        "/api/v2/files/upload",
        None,
        &[("token", &forged[0]), ("fileName", "a.bin")],
        1024 * 1024,
    );
    let (status, _, body) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 401, "{body}");
    let token = fresh_token(&[("fileName", "a.bin")]);
    let r = sb
        .post(
            "/api/v2/files/upload",
            &[("token", &token), ("fileName", "a.bin")],
            Some(("a.bin", b"abc".to_vec())),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let lines = used_token_lines(&sb);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let exp: i64 = lines[0].split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        exp > now(),
        "the line records the token's exp: {}",
        lines[0]
    );
    let request = raw_upload(
        &host,
        "/api/v2/files/upload",
        None,
        &[("token", &token), ("fileName", "a.bin")],
        1024 * 1024,
    );
    let (status, _, body) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("already been used"));
    // Expired, and a V1 signature that does not match: refused before the file as well.
    let expired = v2_token(&[("fileName", "a.bin")], now() - 1000, now() - 10);
    let request = raw_upload(
        &host,
        "/api/v2/files/upload",
        None,
        &[("token", &expired), ("fileName", "a.bin")],
        1024 * 1024,
    );
    let (status, _, body) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 403, "{body}");
    let expire = (now() + 600).to_string();
    let request = raw_upload(
        &host,
        "/api/v1/files/upload",
        None,
        &[
            ("token", "v1-token"),
            ("expire", &expire),
            ("signature", "0000"),
            ("publicKey", PUBLIC),
            ("fileName", "a.bin"),
        ],
        1024 * 1024,
    );
    let (status, _, body) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(used_token_lines(&sb).len(), 1);
    assert_eq!(sb.ledger().len(), 1);
    assert_eq!(sb.temp_files(), 0);
}

#[tokio::test]
async fn imagekit_file_may_be_base64_a_data_uri_or_a_loopback_url() {
    let sb = Sandbox::new().await;
    let bytes = data(300_000, 5);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let upload = |file: String, name: &'static str| {
        let sb = &sb;
        async move {
            let token = fresh_token(&[("fileName", name)]);
            let r = sb
                .post(
                    "/api/v2/files/upload",
                    &[("fileName", name), ("token", &token), ("file", &file)],
                    None,
                )
                .await;
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, plain) = upload(b64.clone(), "plain.bin").await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(plain["size"], bytes.len());
    let (status, uri) = upload(format!("data:image/png;base64,{b64}"), "uri.png").await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    let served = sb.get(uri["url"].as_str().unwrap()).await;
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());
    // A URL on loopback: here the sandbox's own delivery URL of the first upload.
    let (status, fetched) = upload(plain["url"].as_str().unwrap().to_owned(), "url.bin").await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    let served = sb.get(fetched["url"].as_str().unwrap()).await;
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let ledger = sb.ledger();
    assert_eq!(ledger.len(), 3);
    assert!(ledger.iter().all(|l| l["sha256"] == sha256(&bytes)));

    let (status, body) = upload("https://example.com/a.png".into(), "far.png").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "loopback only");
    let (status, body) = upload(format!("{}/missing.bin", sb.url("/ik/sandbox")), "404.bin").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "HTTP 404");
    let (status, body) = upload(format!("http://127.0.0.1/{}", "a".repeat(9000)), "long.bin").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "longer than 8192 bytes",
    );
    let (status, body) = upload("not base64!".into(), "bad.bin").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "valid base64");
    let (status, body) = upload("data:text/plain,hello".into(), "bad.txt").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, ";base64");
    assert_eq!(sb.ledger().len(), 3);
    assert_eq!(sb.temp_files(), 0);

    // The size limit holds for decoded base64 too.
    let small = Sandbox::with(|c| c.max_file_size = 1000).await;
    let token = fresh_token(&[("fileName", "big.bin")]);
    let big = base64::engine::general_purpose::STANDARD.encode(data(1001, 1));
    let r = small
        .post(
            "/api/v2/files/upload",
            &[("fileName", "big.bin"), ("token", &token), ("file", &big)],
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_chunked_body_whose_end_comes_late_keeps_the_connection() {
    use tokio::io::AsyncWriteExt as _;
    let sb = Sandbox::new().await;
    let host = sb.handle().addr().to_string();
    let mut stream = tokio::net::TcpStream::connect(sb.handle().addr())
        .await
        .unwrap();
    for i in 1..=3 {
        let token = fresh_token(&[("fileName", "late.txt")]);
        let whole = raw_upload(
            &host,
            "/api/v2/files/upload",
            None,
            &[("token", &token), ("fileName", "late.txt")],
            100,
        );
        // The same multipart body, sent chunked: all of it in one chunk, the terminating
        // `0\r\n\r\n` only once the sandbox has accepted the upload, as Node's client may.
        let split = whole.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let (head, body) = whole.split_at(split);
        let head = String::from_utf8_lossy(head)
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("content-length"))
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
            .trim_end()
            .to_owned()
            + "\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut first = head.into_bytes();
        first.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        first.extend_from_slice(body);
        first.extend_from_slice(b"\r\n");
        stream.write_all(&first).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while sb.ledger().len() < i {
            assert!(Instant::now() < deadline, "upload {i} never landed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (status, head, body) = raw_exchange(&mut stream, b"0\r\n\r\n")
            .await
            .unwrap_or_else(|err| panic!("upload {i}: {err}"));
        assert_eq!(status, 200, "{body}");
        assert!(!head.contains("connection: close"), "{head}");
    }
}

#[tokio::test]
async fn cloudinary_judges_the_signature_before_the_file() {
    // A 64 KiB limit: a file part over it that the sandbox streamed would get 413, so a 401 or
    // 400 for a 1 MiB file proves the request was judged before any of the file was kept.
    let sb = Sandbox::with(|c| c.max_file_size = 64 * 1024).await;
    let host = sb.handle().addr().to_string();
    let mut stream = tokio::net::TcpStream::connect(sb.handle().addr())
        .await
        .unwrap();
    let big = 1024 * 1024;
    let t = now();
    let (mut forged, _) = cl_fields(&[("public_id", "x")], t, Algorithm::Sha1);
    for (k, v) in &mut forged {
        if k == "public_id" {
            *v = "y".into();
        }
    }
    let (stale, _) = cl_fields(&[("public_id", "x")], t - 4000, Algorithm::Sha256);
    let (mut stranger, _) = cl_fields(&[("public_id", "x")], t, Algorithm::Sha1);
    for (k, v) in &mut stranger {
        if k == "api_key" {
            *v = "other_key".into();
        }
    }
    let refusals = [
        (&forged, 401, "Invalid Signature"),
        (&stale, 400, "Stale request"),
        (&stranger, 401, "Unknown API key other_key"),
    ];
    let chunk_headers = [
        ("X-Unique-Upload-Id", "forged-chunks"),
        ("Content-Range", "bytes 0-1048575/-1"),
    ];
    // Every case is run and compared at once, so a failure shows each one's answer.
    let mut wanted = Vec::new();
    let mut got = Vec::new();
    for (fields, want, needle) in refusals {
        let refs = as_refs(fields);
        // A single upload, then the first chunk of a chunked one, on one keep-alive connection.
        for (kind, headers) in [("single", &[][..]), ("first chunk", &chunk_headers[..])] {
            let request = raw_upload_with(&host, "/v1_1/sandbox/image/upload", headers, &refs, big);
            let (status, head, body) = raw_exchange(&mut stream, &request).await.unwrap();
            wanted.push((kind, needle, want, true, false));
            got.push((
                kind,
                needle,
                status,
                message(&body).contains(needle),
                head.contains("connection: close"),
            ));
            assert_eq!(sb.temp_files(), 0);
        }
    }
    assert_eq!(got, wanted);
    let chunks = std::fs::read_dir(sb.root().join("chunks")).unwrap().count();
    assert_eq!(chunks, 0, "a refused chunk left a partial");
    // A forged data URI is not decoded either (600 KiB: over the file limit once decoded, but
    // with its base64 within the request limit, the file's plus the fields' allowance).
    let data_uri = format!(
        "data:application/octet-stream;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(data(600 * 1024, 4))
    );
    let mut refs = as_refs(&forged);
    refs.push(("file", &data_uri));
    let r = sb.post("/v1_1/sandbox/raw/upload", &refs, None).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "Invalid Signature",
    );
    assert_eq!(sb.temp_files(), 0);

    // The file first: judged after it, as before (the fields may sign what follows it).
    let (fields, signature) = cl_fields(&[], t, Algorithm::Sha1);
    let forged_late: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| match k.as_str() {
            "timestamp" => (k.clone(), (t + 1).to_string()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let request = file_between(&host, &[], &forged_late);
    let (status, _, answer) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 401, "{answer}");
    assert!(message(&answer).contains(&format!("Invalid Signature {signature}")));
    let (fields, _) = cl_fields(&[], t, Algorithm::Sha1);
    let (status, _, answer) = raw_exchange(&mut stream, &file_between(&host, &[], &fields))
        .await
        .unwrap();
    assert_eq!(status, 200, "a valid upload with its file first: {answer}");
    // Credentials before the file and a signed parameter after it: the signature is judged on
    // what came before (the documented price of judging before the file).
    let (fields, signature) = cl_fields(&[("public_id", "late")], t, Algorithm::Sha1);
    let (before, after): (Vec<_>, Vec<_>) = fields.into_iter().partition(|(k, _)| k != "public_id");
    let request = file_between(&host, &before, &after);
    let (status, _, answer) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 401, "{answer}");
    assert_eq!(
        message(&answer),
        format!("Invalid Signature {signature}. String to sign - 'timestamp={t}'.")
    );

    // Valid requests with the fields first still upload, single and chunked.
    let (fields, _) = cl_fields(&[("public_id", "ok")], now(), Algorithm::Sha1);
    let refs = as_refs(&fields);
    let request = raw_upload_with(&host, "/v1_1/sandbox/raw/upload", &[], &refs, 1000);
    let (status, _, answer) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["public_id"], "ok");
    let (fields, _) = cl_fields(&[("public_id", "chunked")], now(), Algorithm::Sha1);
    let refs = as_refs(&fields);
    let request = raw_upload_with(
        &host,
        "/v1_1/sandbox/raw/upload",
        &[
            ("X-Unique-Upload-Id", "good-chunks"),
            ("Content-Range", "bytes 0-999/2000"),
        ],
        &refs,
        1000,
    );
    let (status, _, answer) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["bytes_received"], 1000);
    let request = raw_upload_with(
        &host,
        "/v1_1/sandbox/raw/upload",
        &[
            ("X-Unique-Upload-Id", "good-chunks"),
            ("Content-Range", "bytes 1000-1999/2000"),
        ],
        &refs,
        1000,
    );
    let (status, _, answer) = raw_exchange(&mut stream, &request).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["public_id"], "chunked");
    assert_eq!(answer["bytes"], 2000);
    assert_eq!(sb.ledger().len(), 3);
    assert_eq!(sb.temp_files(), 0);
}

/// A raw Cloudinary upload request: `before`, a 1000-byte file part, then `after`.
fn file_between(host: &str, before: &[(String, String)], after: &[(String, String)]) -> Vec<u8> {
    let boundary = "file-between";
    let field = |(name, value): &(String, String)| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
        .into_bytes()
    };
    let mut body: Vec<u8> = before.iter().flat_map(field).collect();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&data(1000, 3));
    body.extend_from_slice(b"\r\n");
    body.extend(after.iter().flat_map(field));
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut request = format!(
        "POST /v1_1/sandbox/raw/upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}
