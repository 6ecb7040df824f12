//! Team mode over real HTTP: `dropkey serve` (in-process and as the binary) issuing credentials
//! that the embedded sandbox accepts, refusing what its policy forbids, and an `auth = "remote"`
//! profile uploading through it with no provider key on the client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dropkey_core::config::Config;
use dropkey_sandbox as sandbox;
use dropkey_serve::{self as serve, tokens, ServeConfig, ServeHandle};
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{json, Value};

const KEY: &str = "private_serve_test_key_3f9a";
const PUBLIC_KEY: &str = "public_sandbox";
const ALLOWED_ORIGIN: &str = "http://allowed.example";

/// Profiles pointing at a sandbox at `base`, and the `[serve]` policy the tests exercise.
fn config_text(base: &str, extra: &str) -> String {
    format!(
        r#"
[profiles.ik]
provider = "imagekit"
auth = "v2"
public_key = "{PUBLIC_KEY}"
url_endpoint = "{base}/ik/sandbox"
upload_url = "{base}/api/v2/files/upload"
api_url = "{base}"
folder = "/uploads/chat"
tags = ["chat", "media"]
use_unique_file_name = true

[profiles.ikv1]
provider = "imagekit"
auth = "v1"
public_key = "{PUBLIC_KEY}"
url_endpoint = "{base}/ik/sandbox"
upload_url = "{base}/api/v1/files/upload"
api_url = "{base}"

[profiles.cl]
provider = "cloudinary"
cloud_name = "{cloud}"
api_key = "{api_key}"
api_url = "{base}"
folder = "kyc/1"
tags = ["kyc"]
private = true

[serve]
cors_origins = ["{ALLOWED_ORIGIN}"]

[serve.tokens.web]
profiles = ["ik"]
folder_prefix = "/uploads/web"
max_expire = 600
allowed_params = ["fileName"]

[serve.tokens.ops]
may_delete = true

[serve.tokens.slow]
rate_limit_per_minute = 3

[serve.tokens.legacy]
profiles = ["ikv1"]
folder_prefix = "/"

[serve.tokens.boxed]
profiles = ["ikv1"]
folder_prefix = "/boxed"
{extra}
"#,
        cloud = sandbox::CLOUDINARY_CLOUD,
        api_key = sandbox::CLOUDINARY_API_KEY,
    )
}

/// The shared sandbox rig with `dropkey serve` in-process in front of it, and a bearer token
/// per test policy.
struct Rig {
    base: common::rig::Rig,
    serve: Option<ServeHandle>,
    http: reqwest::Client,
    /// Bearer tokens by name: alice (default policy), web, ops, slow, legacy, boxed.
    tokens: Vec<(String, SecretString)>,
}

impl std::ops::Deref for Rig {
    type Target = common::rig::Rig;

    fn deref(&self) -> &common::rig::Rig {
        &self.base
    }
}

impl Rig {
    fn new() -> Self {
        Self::with("")
    }

    /// A rig whose `[serve]` table also has `serve_keys`.
    fn with(serve_keys: &str) -> Self {
        let base = sandbox_rig()
            .config(|sandbox, _| {
                config_text(&sandbox.base_url(), "").replacen(
                    "[serve]\n",
                    &format!("[serve]\n{serve_keys}\n"),
                    1,
                )
            })
            .start();
        let config_path = base.config_path();
        let text = std::fs::read_to_string(&config_path).unwrap();
        let config = Config::from_toml(&text, &config_path).unwrap();
        let data = base.data_dir();
        let tokens_file = tokens::tokens_path(&data);
        let tokens: Vec<(String, SecretString)> =
            ["alice", "web", "ops", "slow", "legacy", "boxed"]
                .iter()
                .map(|name| ((*name).to_owned(), tokens::add(&tokens_file, name).unwrap()))
                .collect();
        let mut serve_config =
            ServeConfig::from_config(&config, &data, |_| Ok(SecretString::from(KEY))).unwrap();
        serve_config.settings.listen = "127.0.0.1:0".parse().unwrap();
        let serve = base.runtime.block_on(serve::start(serve_config)).unwrap();
        Self {
            base,
            serve: Some(serve),
            http: reqwest::Client::new(),
            tokens,
        }
    }

    fn token(&self, name: &str) -> &str {
        self.tokens
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.expose_secret())
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.serve.as_ref().unwrap().base_url())
    }

    /// A request to the server with `token`'s bearer header (none for `None`).
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap();
            let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, headers, json)
        })
    }

    fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.call(reqwest::Method::GET, path, Some(token), None);
        (status, body)
    }

    /// Uploads `bytes` as `file` with `fields` (and `token` if given) to `url`.
    fn upload(
        &self,
        url: &str,
        fields: &Value,
        bytes: &[u8],
        file_name: &str,
    ) -> (StatusCode, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields.as_object().unwrap() {
            form = form.text(name.clone(), value.as_str().unwrap().to_owned());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(file_name.to_owned()),
        );
        self.runtime.block_on(async {
            let response = self.http.post(url).multipart(form).send().await.unwrap();
            let status = response.status();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    }

    fn fetch(&self, url: &str) -> (StatusCode, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self.http.get(url).send().await.unwrap();
            (response.status(), response.bytes().await.unwrap().to_vec())
        })
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("serve-audit.jsonl")).unwrap_or_default()
    }

    /// Stops the server (flushing the audit log) and checks that no line of it holds a bearer
    /// token or the private key.
    fn stop_and_check_audit(&mut self) -> Vec<Value> {
        if let Some(serve) = self.serve.take() {
            self.runtime.block_on(serve.shutdown());
        }
        let text = self.audit();
        for (name, token) in &self.tokens {
            assert!(
                !text.contains(token.expose_secret()),
                "the audit log holds {name}'s token"
            );
        }
        assert!(!text.contains(KEY), "the audit log holds the private key");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Before the sandbox, which `base` shuts down after this.
        if let Some(serve) = self.serve.take() {
            self.base.runtime.block_on(serve.shutdown());
        }
    }
}

/// The sandbox with no `[sandbox]` table in the config: the profiles of [`config_text`] are
/// the only ones the server has, as in a team's config.
fn sandbox_rig<'a>() -> common::rig::RigBuilder<'a> {
    common::rig::Rig::builder(KEY).without_sandbox_profile()
}

fn assert_error(status: StatusCode, body: &Value, expected: u16) {
    assert_eq!(status.as_u16(), expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{body}");
}

/// Replaces one claim of a JWT's payload, keeping the original signature.
fn tamper(token: &str, key: &str, value: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload.insert(key.into(), json!(value));
    let encoded = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    format!("{}.{encoded}.{}", parts[0], parts[2])
}

/// A small file for the upload tests.
fn photo() -> Vec<u8> {
    (0..5000u32).map(|i| (i * 7) as u8).collect()
}

#[test]
fn get_upload_token_answers_the_guides_envelope_with_a_one_time_token_for_the_policy() {
    let mut rig = Rig::new();
    let alice = rig.token("alice").to_owned();
    let photo = photo();

    // The upload-token guide's endpoint: the envelope, ImageKit's Upload API V2 guide's string payload, and the exact fields.
    let (status, body) = rig.get(
        "/api/media/get-upload-token?profile=ik&fileName=photo.jpg&tags=team",
        &alice,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], 200);
    assert_eq!(body["success"], true);
    let data = &body["data"];
    assert_eq!(data["publicKey"], PUBLIC_KEY);
    assert!(data["urlEndpoint"]
        .as_str()
        .unwrap()
        .ends_with("/ik/sandbox"));
    assert_eq!(
        data["fields"],
        json!({"fileName": "photo.jpg", "folder": "/uploads/chat", "tags": "team", "useUniqueFileName": "true"})
    );
    let token = data["token"].as_str().unwrap().to_owned();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["exp"], data["expire"]);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 3600);
    let upload_url = data["uploadUrl"].as_str().unwrap().to_owned();

    // The genuine token with exactly its fields uploads; the file is where the policy says.
    let mut fields = data["fields"].clone();
    fields["token"] = json!(token);
    let (status, answer) = rig.upload(&upload_url, &fields, &photo, "photo.jpg");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer["filePath"]
            .as_str()
            .unwrap()
            .starts_with("/uploads/chat/"),
        "{answer}"
    );
    assert_eq!(answer["tags"], json!(["team"]));
    assert_eq!(rig.fetch(answer["url"].as_str().unwrap()).1, photo);
    // One-time: the same token again is refused.
    let (status, _) = rig.upload(&upload_url, &fields, &photo, "photo.jpg");
    assert!(status.is_client_error());

    // Tokens for identical parameters in the same second still differ (one-time tokens).
    let (_, a) = rig.get(
        "/api/media/get-upload-token?profile=ik&fileName=same.jpg",
        &alice,
    );
    let (_, b) = rig.get(
        "/api/media/get-upload-token?profile=ik&fileName=same.jpg",
        &alice,
    );
    assert_ne!(a["data"]["token"], b["data"]["token"]);

    // The audit log: one line per authenticated request, with who and what, no secret.
    let lines = rig.stop_and_check_audit();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let first = &lines[0];
    assert_eq!(first["who"], "alice");
    assert_eq!(first["path"], "/api/media/get-upload-token");
    assert_eq!(first["status"], 200);
    assert_eq!(first["profile"], "ik");
    assert_eq!(first["file_name"], "photo.jpg");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn the_sandbox_refuses_a_tampered_token_and_a_form_that_differs_from_what_was_signed() {
    let mut rig = Rig::new();
    let alice = rig.token("alice").to_owned();
    let photo = photo();
    let (_, body) = rig.get(
        "/api/media/get-upload-token?profile=ik&fileName=photo.jpg",
        &alice,
    );
    let data = &body["data"];
    let token = data["token"].as_str().unwrap().to_owned();
    let upload_url = data["uploadUrl"].as_str().unwrap().to_owned();

    // A tampered payload (another folder, same signature) is refused...
    let mut fields = data["fields"].clone();
    fields["folder"] = json!("/elsewhere");
    fields["token"] = json!(tamper(&token, "folder", "/elsewhere"));
    let (status, answer) = rig.upload(&upload_url, &fields, &photo, "photo.jpg");
    assert!(status.is_client_error(), "{status} {answer}");
    // ...and so is a form that differs from what was signed.
    let (_, body2) = rig.get(
        "/api/media/get-upload-token?profile=ik&fileName=photo.jpg",
        &alice,
    );
    let mut fields = body2["data"]["fields"].clone();
    fields["fileName"] = json!("other.jpg");
    fields["token"] = body2["data"]["token"].clone();
    let (status, answer) = rig.upload(&upload_url, &fields, &photo, "photo.jpg");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    rig.stop_and_check_audit();
}

#[test]
fn a_web_token_uploads_under_its_own_folder_prefix_without_naming_a_profile() {
    let mut rig = Rig::new();
    let photo = photo();
    // Its folder prefix replaces the profile's folder, and `profile` may be left out since it
    // may use only one ImageKit V2 profile.
    let web = rig.token("web").to_owned();
    let (status, body) = rig.get(
        "/api/media/get-upload-token?fileName=w.png&expire=300",
        &web,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["fields"]["folder"], "/uploads/web");
    let upload_url = body["data"]["uploadUrl"].as_str().unwrap().to_owned();
    let mut fields = body["data"]["fields"].clone();
    fields["token"] = body["data"]["token"].clone();
    let (status, answer) = rig.upload(&upload_url, &fields, &photo, "w.png");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["filePath"]
        .as_str()
        .unwrap()
        .starts_with("/uploads/web/"));
    let lines = rig.stop_and_check_audit();
    assert!(lines
        .iter()
        .any(|l| l["who"] == "web" && l["folder"] == "/uploads/web"));
}

#[test]
fn post_upload_token_signs_exactly_the_clients_payload_within_the_policy() {
    let mut rig = Rig::new();
    let alice = rig.token("alice").to_owned();
    let photo = photo();
    let upload_url = format!("{}/api/v2/files/upload", rig.sandbox().base_url());
    // ImageKit's Upload API V2 guide's POST endpoint signs exactly the client's payload.
    let (status, _, body) = rig.call(
        reqwest::Method::POST,
        "/api/media/upload-token",
        Some(&alice),
        Some(json!({"uploadPayload": {"fileName": "post.jpg", "folder": "/uploads/chat/posts"}, "expire": 400, "publicKey": PUBLIC_KEY})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut fields = json!({"fileName": "post.jpg", "folder": "/uploads/chat/posts"});
    fields["token"] = body["token"].clone();
    let (status, answer) = rig.upload(&upload_url, &fields, &photo, "post.jpg");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["filePath"]
        .as_str()
        .unwrap()
        .starts_with("/uploads/chat/posts/"));
    // useUniqueFileName=false differs from the profile's policy and is not allowed to alice.
    let payload = json!({"fileName": "post.jpg", "folder": "/uploads/chat/posts", "useUniqueFileName": "false"});
    let (status, _, body) = rig.call(
        reqwest::Method::POST,
        "/api/media/upload-token",
        Some(&alice),
        Some(json!({"uploadPayload": payload, "expire": 400, "publicKey": PUBLIC_KEY})),
    );
    assert_error(status, &body, 403);
    rig.stop_and_check_audit();
}

#[test]
fn v1_auth_parameters_upload_for_an_unconfined_token_and_a_forged_expiry_is_refused() {
    let mut rig = Rig::new();
    let photo = photo();
    // ImageKit's V1 client-side upload guide's V1 parameters for the auth = "v1" profile, for a token that may upload to any
    // folder (folder_prefix = "/"): a V1 signature binds none.
    let (status, body) = rig.get("/api/media/auth?profile=ikv1", rig.token("legacy"));
    assert_eq!(status, StatusCode::OK, "{body}");
    let v1_url = format!("{}/api/v1/files/upload", rig.sandbox().base_url());
    let fields = json!({
        "fileName": "v1.jpg", "publicKey": PUBLIC_KEY,
        "token": body["token"], "expire": body["expire"].to_string(), "signature": body["signature"],
    });
    let (status, answer) = rig.upload(&v1_url, &fields, &photo, "v1.jpg");
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut forged = fields.clone();
    forged["expire"] = json!((body["expire"].as_i64().unwrap() + 1).to_string());
    forged["token"] = json!(uuid::Uuid::new_v4().to_string());
    let (status, _) = rig.upload(&v1_url, &forged, &photo, "v1.jpg");
    assert!(status.is_client_error());
    let lines = rig.stop_and_check_audit();
    assert!(lines
        .iter()
        .any(|l| l["who"] == "legacy" && l["path"] == "/api/media/auth"));
}

#[test]
fn cloudinary_signatures_links_and_deletes_work_against_the_sandbox() {
    let mut rig = Rig::new();
    let alice = rig.token("alice").to_owned();
    let ops = rig.token("ops").to_owned();
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();

    let (status, body) = rig.get("/upload-signature?profile=cl", &alice);
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    // The server decides type=private from the profile, never the client.
    assert_eq!(data["payload"]["type"], "private");
    assert_eq!(data["payload"]["folder"], "kyc/1");
    assert_eq!(data["cloudname"], sandbox::CLOUDINARY_CLOUD);
    let upload_url = data["uploadUrl"].as_str().unwrap().to_owned();
    let (status, answer) = rig.upload(&upload_url, &data["fields"], &bytes, "passport.png");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["type"], "private");
    let public_id = answer["public_id"].as_str().unwrap().to_owned();
    assert!(public_id.starts_with("kyc/1/"), "{answer}");
    let secure_url = answer["secure_url"].as_str().unwrap().to_owned();
    // A tampered field breaks the signature.
    let mut fields = data["fields"].clone();
    fields["folder"] = json!("kyc/2");
    let (status, _) = rig.upload(&upload_url, &fields, &bytes, "passport.png");
    assert!(status.is_client_error());

    // A one-minute private link to it.
    let format = answer["format"].as_str().unwrap_or("png").to_owned();
    let (status, body) = rig.get(
        &format!("/download-url?profile=cl&public_id={public_id}&format={format}"),
        &alice,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["expiresIn"], "1 min");
    let link = body["data"]["downloadUrl"].as_str().unwrap().to_owned();
    let (status, got) = rig.fetch(&link);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, bytes);
    // Outside the folder: refused.
    let (status, body) = rig.get(
        "/download-url?profile=cl&public_id=kyc/2/other&format=png",
        &alice,
    );
    assert_error(status, &body, 403);

    // Delete needs may_delete.
    let request = json!({"urls": [{"type": "image", "url": secure_url}]});
    let (status, _, body) = rig.call(
        reqwest::Method::DELETE,
        "/delete-files?profile=cl",
        Some(&alice),
        Some(request.clone()),
    );
    assert_error(status, &body, 403);
    let (status, _, body) = rig.call(
        reqwest::Method::DELETE,
        "/delete-files",
        Some(&ops),
        Some(request.clone()),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["results"][0]["deleted"], true);
    assert_eq!(body["data"]["results"][0]["publicId"], public_id.as_str());
    let (status, _) = rig.fetch(&link);
    assert!(status.is_client_error());
    // Again: already gone, still fine.
    let (status, _, body) = rig.call(
        reqwest::Method::DELETE,
        "/delete-files",
        Some(&ops),
        Some(request),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["results"][0]["deleted"], false);

    let lines = rig.stop_and_check_audit();
    assert!(lines
        .iter()
        .any(|l| l["who"] == "ops" && l["path"] == "/delete-files" && l["status"] == 200));
    assert!(lines
        .iter()
        .any(|l| l["who"] == "alice" && l["path"] == "/delete-files" && l["status"] == 403));
}

#[test]
fn missing_and_bad_bearer_tokens_are_401() {
    let mut rig = Rig::new();
    for path in [
        "/api/media/get-upload-token?fileName=a.jpg",
        "/api/media/auth",
        "/upload-signature",
        "/download-url?public_id=x",
    ] {
        let (status, headers, body) = rig.call(reqwest::Method::GET, path, None, None);
        assert_error(status, &body, 401);
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, _, body) = rig.call(reqwest::Method::GET, path, Some("dk_not-a-token"), None);
        assert_error(status, &body, 401);
    }
    // A near miss (the real token plus one character) is no token either.
    let almost = format!("{}x", rig.token("alice"));
    let (status, body) = rig.get("/api/media/get-upload-token?fileName=a.jpg", &almost);
    assert_error(status, &body, 401);
    // Another scheme.
    let response = rig.runtime.block_on(
        rig.http
            .get(rig.url("/upload-signature"))
            .basic_auth("alice", Some(rig.token("alice")))
            .send(),
    );
    assert_eq!(response.unwrap().status(), StatusCode::UNAUTHORIZED);
    // A token removed from the file stops working within about a second, without a restart.
    let alice = rig.token("alice").to_owned();
    let (status, _) = rig.get("/upload-signature?profile=cl", &alice);
    assert_eq!(status, StatusCode::OK);
    assert!(tokens::remove(&tokens::tokens_path(&rig.data_dir()), "alice").unwrap());
    let mut refused = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        if rig.get("/upload-signature?profile=cl", &alice).0 == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
    }
    assert!(refused, "a removed token was still accepted after 4 s");
    let lines = rig.stop_and_check_audit();
    assert!(lines
        .iter()
        .any(|l| l["who"].is_null() && l["status"] == 401));
}

#[test]
fn policy_refusals_are_403_and_unknown_profiles_404() {
    let rig = Rig::new();
    let alice = rig.token("alice").to_owned();
    let web = rig.token("web").to_owned();
    let cases: Vec<(&str, &str, u16)> = vec![
        // The web token may use ik only, below /uploads/web, with fileName only, 600 s at most.
        ("/upload-signature?profile=cl", &web, 403),
        (
            "/api/media/get-upload-token?profile=ik&fileName=a.jpg&folder=/uploads/chat",
            &web,
            403,
        ),
        (
            "/api/media/get-upload-token?profile=ik&fileName=a.jpg&folder=/uploads/webx",
            &web,
            403,
        ),
        (
            "/api/media/get-upload-token?profile=ik&fileName=a.jpg&tags=x",
            &web,
            403,
        ),
        (
            "/api/media/get-upload-token?profile=ik&fileName=a.jpg&expire=601",
            &web,
            403,
        ),
        // Not its profile.
        ("/api/media/auth?profile=ikv1", &web, 403),
        // Default policy: the profile's folder is the prefix, a few params, no type.
        (
            "/api/media/get-upload-token?profile=ik&fileName=a.jpg&folder=/elsewhere",
            &alice,
            403,
        ),
        (
            "/api/media/get-upload-token?profile=ik&fileName=a.jpg&isPrivateFile=true",
            &alice,
            403,
        ),
        (
            "/api/media/get-upload-token?profile=ik&fileName=a.jpg&useUniqueFileName=false",
            &alice,
            403,
        ),
        ("/upload-signature?profile=cl&type=private", &alice, 403),
        ("/upload-signature?profile=cl&type=upload", &alice, 403),
        ("/upload-signature?profile=cl&folder=kyc/2", &alice, 403),
        // V1 parameters only for auth = "v1" profiles...
        ("/api/media/auth?profile=ik", &alice, 403),
        // ...and only for tokens that may upload anywhere: the default policy holds alice to
        // the profile's folder, which a V1 signature cannot enforce.
        ("/api/media/auth?profile=ikv1", &alice, 403),
        (
            "/api/media/get-upload-token?profile=nope&fileName=a.jpg",
            &alice,
            404,
        ),
        ("/download-url?profile=nope&public_id=kyc/1/a", &alice, 404),
        ("/no/such/route", &alice, 404),
    ];
    for (path, token, expected) in cases {
        let (status, body) = rig.get(path, token);
        assert_eq!(status.as_u16(), expected, "{path}: {body}");
        assert_error(status, &body, expected);
    }
    // A V1 signature cannot keep a token inside its folder, so a confined token gets none,
    // and neither does one confined by default; the message says how to allow it.
    let (status, body) = rig.get("/api/media/auth?profile=ikv1", rig.token("boxed"));
    assert_error(status, &body, 403);
    assert!(
        body["message"].as_str().unwrap().contains("cannot enforce"),
        "{body}"
    );
    let (status, body) = rig.get("/api/media/auth?profile=ikv1", &alice);
    assert_error(status, &body, 403);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("cannot enforce") && message.contains("folder_prefix = \"/\""),
        "{body}"
    );
    let (status, body) = rig.get("/api/media/auth?profile=ikv1", rig.token("legacy"));
    assert_eq!(status, StatusCode::OK, "{body}");
    // Restating the server's own values is fine.
    let (status, body) = rig.get("/api/media/get-upload-token?profile=ik&fileName=a.jpg&useUniqueFileName=true&folder=/uploads/chat/sub", &alice);
    assert_eq!(status, StatusCode::OK, "{body}");
    // POST: expire over the token's maximum, a folder outside, no folder at all.
    for (payload, expire, expected) in [
        (
            json!({"fileName": "a.jpg", "folder": "/uploads/web"}),
            601,
            403,
        ),
        (
            json!({"fileName": "a.jpg", "folder": "/uploads/other"}),
            60,
            403,
        ),
        (json!({"fileName": "a.jpg"}), 60, 403),
        (
            json!({"fileName": "a.jpg", "folder": "/uploads/web/x"}),
            600,
            200,
        ),
    ] {
        let (status, _, body) = rig.call(
            reqwest::Method::POST,
            "/api/media/upload-token",
            Some(&web),
            Some(json!({"uploadPayload": payload, "expire": expire, "publicKey": PUBLIC_KEY})),
        );
        assert_eq!(status.as_u16(), expected, "{payload} {body}");
    }
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    let mut rig = Rig::new();
    let slow = rig.token("slow").to_owned();
    for _ in 0..3 {
        let (status, body) = rig.get("/upload-signature?profile=cl", &slow);
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = rig.call(
        reqwest::Method::GET,
        "/upload-signature?profile=cl",
        Some(&slow),
        None,
    );
    assert_error(status, &body, 429);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    // Other tokens have their own budget.
    let (status, _) = rig.get("/upload-signature?profile=cl", rig.token("alice"));
    assert_eq!(status, StatusCode::OK);
    // Hammering on while over the limit: every answer 429, and the audit log sums them up.
    for _ in 0..100 {
        let (status, _) = rig.get("/upload-signature?profile=cl", &slow);
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    let lines = rig.stop_and_check_audit();
    let slow_lines: Vec<&Value> = lines.iter().filter(|l| l["who"] == "slow").collect();
    // 3 answered, the first 429, one summary of the other 100.
    assert_eq!(slow_lines.len(), 5, "{slow_lines:?}");
    let summary = slow_lines
        .iter()
        .find(|l| l["event"] == "rate_limited")
        .unwrap();
    assert_eq!(summary["count"], 100, "{summary}");
    assert_eq!(summary["statuses"]["429"], 100, "{summary}");
}

#[test]
fn malformed_requests_are_422_and_nothing_is_deleted() {
    let rig = Rig::new();
    let alice = rig.token("alice").to_owned();
    let ops = rig.token("ops").to_owned();
    let base = rig.sandbox().base_url();
    let port = rig.sandbox().addr().port();
    let cloud = sandbox::CLOUDINARY_CLOUD;
    let good = format!("{base}/res/{cloud}/image/upload/v1/kyc/1/a.png");
    let bad_urls = [
        // http where the profile's delivery host is https (and vice versa for the sandbox).
        (
            "image",
            "http://res.cloudinary.com/sandbox/image/upload/v1/kyc/1/a.png".to_owned(),
        ),
        (
            "image",
            format!("https://127.0.0.1:{port}/res/{cloud}/image/upload/v1/kyc/1/a.png"),
        ),
        // Another host, another port, another cloud.
        (
            "image",
            format!("http://evil.example/res/{cloud}/image/upload/v1/kyc/1/a.png"),
        ),
        (
            "image",
            format!(
                "http://127.0.0.1:{}/res/{cloud}/image/upload/v1/kyc/1/a.png",
                port + 1
            ),
        ),
        (
            "image",
            format!("{base}/res/othercloud/image/upload/v1/kyc/1/a.png"),
        ),
        // Bad types: unknown, or not the URL's.
        ("pdf", good.clone()),
        ("video", good.clone()),
        (
            "image",
            format!("{base}/res/{cloud}/pdf/upload/v1/kyc/1/a.png"),
        ),
        (
            "image",
            format!("{base}/res/{cloud}/image/fetch/v1/kyc/1/a.png"),
        ),
        ("image", format!("{base}/res/{cloud}/image/upload/")),
        ("image", "not a url".to_owned()),
    ];
    for (kind, url) in &bad_urls {
        // A bad item among good ones fails the whole request before any deletion.
        let body = json!({"urls": [{"type": "image", "url": good}, {"type": kind, "url": url}]});
        let (status, _, answer) = rig.call(
            reqwest::Method::DELETE,
            "/delete-files?profile=cl",
            Some(&ops),
            Some(body),
        );
        assert_error(status, &answer, 422);
        assert!(
            answer["message"].as_str().unwrap().contains("urls[1]"),
            "{url}: {answer}"
        );
    }
    for body in [
        json!({"urls": []}),
        json!({"urls": "x"}),
        json!({"urls": [{"type": "image"}]}),
        json!({"urls": [{"type": "image", "url": good, "extra": 1}]}),
        json!({"urls": [{"type": "image", "url": good}], "more": true}),
        json!([1, 2]),
    ] {
        let (status, _, answer) = rig.call(
            reqwest::Method::DELETE,
            "/delete-files?profile=cl",
            Some(&ops),
            Some(body.clone()),
        );
        assert_error(status, &answer, 422);
    }
    let raw = rig.runtime.block_on(
        rig.http
            .delete(rig.url("/delete-files?profile=cl"))
            .bearer_auth(&ops)
            .body("{not json")
            .send(),
    );
    assert_eq!(raw.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);

    for path in [
        "/api/media/get-upload-token?profile=ik",
        "/api/media/get-upload-token?profile=ik&fileName=a.jpg&fileName=b.jpg",
        "/api/media/get-upload-token?profile=ik&fileName=a.jpg&expire=4000",
        "/api/media/get-upload-token?profile=ik&fileName=a.jpg&expire=soon",
        "/api/media/get-upload-token?profile=ik&fileName=a.jpg&token=x",
        "/api/media/get-upload-token?profile=ik&fileName=a.jpg&folder=/uploads/chat/../x",
        "/api/media/get-upload-token?profile=cl&fileName=a.jpg",
        // Several ImageKit V2 profiles? Only ik here, so this one is fine; Cloudinary needs no
        // name either. A bad parameter name is not.
        "/api/media/get-upload-token?profile=ik&fileName=a.jpg&bad-name=1",
        "/download-url?profile=cl",
        "/download-url?profile=cl&public_id=kyc/1/../x",
        "/download-url?profile=cl&public_id=kyc/1/a&resource_type=pdf",
        "/download-url?profile=cl&public_id=kyc/1/a&format=p.df",
    ] {
        let (status, body) = rig.get(path, &alice);
        assert_error(status, &body, 422);
    }
    for path in [
        "/api/media/auth?profile=ikv1&expire=1",
        "/api/media/auth?profile=ikv1&token=has%20space",
    ] {
        let (status, body) = rig.get(path, rig.token("legacy"));
        assert_error(status, &body, 422);
    }
    for body in [
        json!({"uploadPayload": {"fileName": "a.jpg", "useUniqueFileName": true}, "expire": 60, "publicKey": PUBLIC_KEY}),
        json!({"uploadPayload": {"fileName": "a.jpg"}, "expire": 60, "publicKey": "public_other"}),
        json!({"uploadPayload": {"fileName": "a.jpg"}, "expire": 4000, "publicKey": PUBLIC_KEY}),
        json!({"uploadPayload": {"fileName": "a.jpg"}, "expire": "60", "publicKey": PUBLIC_KEY}),
        json!({"uploadPayload": {"fileName": "a.jpg"}, "publicKey": PUBLIC_KEY}),
        json!({"uploadPayload": {"fileName": "a.jpg"}, "expire": 60, "publicKey": PUBLIC_KEY, "x": 1}),
        json!({"uploadPayload": ["a"], "expire": 60, "publicKey": PUBLIC_KEY}),
    ] {
        let (status, _, answer) = rig.call(
            reqwest::Method::POST,
            "/api/media/upload-token",
            Some(&alice),
            Some(body.clone()),
        );
        assert_error(status, &answer, 422);
    }
}

#[test]
fn body_and_query_size_limits_are_enforced() {
    let rig = Rig::new();
    let alice = rig.token("alice").to_owned();
    // An oversized body, with a Content-Length and without one (chunked: just over the limit,
    // then the client waits). The server answers 413 and closes; should bytes it never read
    // still be in its socket, the close is a reset that can reach the client before the answer,
    // so a reset is retried (a real client sees the same).
    let huge = json!({"uploadPayload": {"fileName": "x".repeat(100 * 1024)}, "expire": 60, "publicKey": PUBLIC_KEY});
    for chunked in [false, true] {
        let mut answered = None;
        for _ in 0..5 {
            let body = if chunked {
                let over = futures_util::stream::iter(
                    (0..65).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024]))),
                );
                let stream = futures_util::StreamExt::chain(over, futures_util::stream::pending());
                reqwest::Body::wrap_stream(stream)
            } else {
                reqwest::Body::from(huge.to_string())
            };
            let sent = rig.runtime.block_on(async {
                let r = rig
                    .http
                    .post(rig.url("/api/media/upload-token"))
                    .bearer_auth(&alice)
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await?;
                Ok::<_, reqwest::Error>((r.status(), r.json::<Value>().await?))
            });
            match sent {
                Ok(response) => {
                    answered = Some(response);
                    break;
                }
                Err(err) => assert!(!err.is_timeout(), "no answer to an oversized body: {err}"),
            }
        }
        let (status, answer) = answered.expect("an answer to an oversized body");
        assert_error(status, &answer, 413);
    }
    let long = format!(
        "/api/media/get-upload-token?profile=ik&fileName={}",
        "a".repeat(5000)
    );
    let (status, body) = rig.get(&long, &alice);
    assert_error(status, &body, 414);
    // Wrong method: still the JSON error shape.
    let (status, _, body) = rig.call(reqwest::Method::PUT, "/healthz", None, None);
    assert_error(status, &body, 405);
}

#[test]
fn cors_allows_listed_origins_only_and_public_routes_answer() {
    let rig = Rig::new();
    let preflight = |origin: &str| {
        rig.runtime.block_on(async {
            rig.http
                .request(
                    reqwest::Method::OPTIONS,
                    rig.url("/api/media/get-upload-token"),
                )
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "GET")
                .header("Access-Control-Request-Headers", "authorization")
                .send()
                .await
                .unwrap()
        })
    };
    let allowed = preflight(ALLOWED_ORIGIN);
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        ALLOWED_ORIGIN
    );
    assert!(allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase()
        .contains("authorization"));
    let denied = preflight("http://evil.example");
    assert!(denied
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // The actual request from the allowed origin carries the header too, errors included.
    let response = rig
        .runtime
        .block_on(
            rig.http
                .get(rig.url("/api/media/get-upload-token?fileName=a.jpg"))
                .header("Origin", ALLOWED_ORIGIN)
                .send(),
        )
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        ALLOWED_ORIGIN
    );

    let (status, _, body) = rig.call(reqwest::Method::GET, "/healthz", None, None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    let (status, _, doc) = rig.call(reqwest::Method::GET, "/openapi.json", None, None);
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/media/get-upload-token",
        "/api/media/upload-token",
        "/api/media/auth",
        "/upload-signature",
        "/download-url",
        "/delete-files",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The binary: `dropkey serve`, its token commands, and remote signing through it.

fn dropkey(config: &Path, data: &Path) -> Command {
    let mut cmd = common::isolated_dropkey();
    cmd.arg("--config").arg(config).arg("--data-dir").arg(data);
    cmd
}

/// `dropkey serve` as a child process, stopped with SIGTERM on drop.
struct ServeProcess {
    child: Child,
    addr: String,
}

impl ServeProcess {
    fn start(config: &Path, data: &Path) -> Self {
        let mut child = dropkey(config, data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DROPKEY_SECRET_IK", KEY)
            .env("DROPKEY_SECRET_CL", KEY)
            .env("DROPKEY_SECRET_IKV1", KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let first: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("first line `{line}`"));
        let addr = first["listen"].as_str().unwrap().to_owned();
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
            "{addr}"
        );
        Self { child, addr }
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dropkey serve ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn token_commands_print_the_token_once_and_store_only_its_hash() {
    let env = common::Env::with_config(&config_text("http://127.0.0.1:9", ""));
    let out = env.run(&["serve", "token", "add", "laptop"], &[]);
    let added = common::stdout_json(&out);
    assert_eq!(added["name"], "laptop");
    let token = added["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("dk_") && token.len() > 40);
    let stored = std::fs::read_to_string(env.data().join("serve-tokens.json")).unwrap();
    assert!(!stored.contains(&token));
    // Nothing under the config or data dir holds the token in clear.
    for file in common::files_under(env.dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&token),
            "{}",
            file.display()
        );
    }
    let out = env.run(&["serve", "token", "add", "laptop"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    let out = env.run(&["serve", "token", "add", "web"], &[]);
    assert!(out.status.success());
    let listed = common::stdout_json(&env.run(&["serve", "token", "list"], &[]));
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&token));
    assert_eq!(
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "web")
            .unwrap()["policy"],
        "config"
    );
    let removed = common::stdout_json(&env.run(&["serve", "token", "remove", "laptop"], &[]));
    assert_eq!(removed["removed"], true);
    let removed = common::stdout_json(&env.run(&["serve", "token", "remove", "laptop"], &[]));
    assert_eq!(removed["removed"], false);
    let out = env.run(&["serve", "token", "add", "bad name"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_serve_config_is_a_one_line_error_with_the_position() {
    for (extra, field) in [
        (
            "[serve.tokens.x]\nmax_expire = 4000\n",
            "serve.tokens.x.max_expire",
        ),
        (
            "[serve.tokens.y]\nprofiles = [\"nope\"]\n",
            "serve.tokens.y.profiles",
        ),
        (
            "[serve.tokens.z]\nallowed_params = [\"type\"]\n",
            "serve.tokens.z.allowed_params",
        ),
        (
            "[serve.tokens.w]\nsurprise = 1\n",
            "serve.tokens.w.surprise",
        ),
    ] {
        let env = common::Env::with_config(&config_text("http://127.0.0.1:9", extra));
        let out = env.run(&["serve", "token", "list"], &[]);
        assert_eq!(out.status.code(), Some(2), "{extra}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("config.toml:") && stderr.contains(field),
            "{stderr}"
        );
    }
    for (keys, field) in [
        (
            "cors_origins = [\"https://a.example/path\"]",
            "serve.cors_origins",
        ),
        ("max_connections = 0", "serve.max_connections"),
        ("header_timeout = \"soon\"", "serve.header_timeout"),
        ("header_timeout = \"20m\"", "serve.header_timeout"),
        ("header_timeout = 0", "serve.header_timeout"),
        (
            "auth_failures_per_minute = 0",
            "serve.auth_failures_per_minute",
        ),
        (
            "trusted_proxies = [\"proxy.local\"]",
            "serve.trusted_proxies",
        ),
        (
            "trusted_proxies = [\"10.1.2.3/8\"]",
            "serve.trusted_proxies",
        ),
    ] {
        let env = common::Env::with_config(&format!("[serve]\n{keys}\n"));
        let out = env.run(&["serve", "token", "list"], &[]);
        assert_eq!(out.status.code(), Some(2), "{keys}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(field), "{keys}: {stderr}");
    }
    // Good values load.
    let env = common::Env::with_config(
        "[serve]\nmax_connections = 64\nheader_timeout = \"2500ms\"\nauth_failures_per_minute = 5\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
    );
    let out = env.run(&["serve", "token", "list"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing to serve (only a remote profile, which has no key): exit 2, saying what to add.
    let env = common::Env::new();
    let remote_only = env.dir.path().join("remote.toml");
    std::fs::write(
        &remote_only,
        "[profiles.r]\nprovider = \"imagekit\"\nauth = \"remote\"\npublic_key = \"p\"\nurl_endpoint = \"https://ik.imagekit.io/x\"\ntoken_url = \"https://t.example/api/media/get-upload-token\"\n",
    )
    .unwrap();
    let out = env
        .cmd_with_config(&remote_only, &["serve", "--listen", "127.0.0.1:0"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no profile to serve"));
}

/// A team's two machines, below one rig's directory: a server running `dropkey serve` with the
/// key and a bearer token for the laptop, and a laptop whose `team` profile is `auth = "remote"`
/// and that has only that bearer token.
struct Team {
    rig: common::rig::Rig,
    serve: ServeProcess,
    bearer: String,
    server_data: PathBuf,
    client_dir: PathBuf,
    client_config: PathBuf,
    client_data: PathBuf,
    files: PathBuf,
}

impl Team {
    fn start() -> Self {
        let rig = sandbox_rig().start();
        let base = rig.sandbox().base_url();

        let server_dir = rig.dir.path().join("server");
        std::fs::create_dir_all(&server_dir).unwrap();
        let server_config = server_dir.join("config.toml");
        std::fs::write(&server_config, config_text(&base, "")).unwrap();
        let server_data = server_dir.join("data");
        let out = dropkey(&server_config, &server_data)
            .args(["serve", "token", "add", "laptop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bearer = serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let serve = ServeProcess::start(&server_config, &server_data);

        let client_dir = rig.dir.path().join("client");
        std::fs::create_dir_all(&client_dir).unwrap();
        let client_config = client_dir.join("config.toml");
        std::fs::write(
            &client_config,
            format!(
                r#"
[profiles.team]
provider = "imagekit"
auth = "remote"
public_key = "{PUBLIC_KEY}"
url_endpoint = "{base}/ik/sandbox"
token_url = "http://{addr}/api/media/get-upload-token?profile=ik"
"#,
                addr = serve.addr
            ),
        )
        .unwrap();
        let client_data = client_dir.join("data");
        let files = client_dir.join("files");
        std::fs::create_dir_all(&files).unwrap();
        Self {
            rig,
            serve,
            bearer,
            server_data,
            client_dir,
            client_config,
            client_data,
            files,
        }
    }

    /// `dropkey` on the laptop, with `bearer` as the profile's secret.
    fn laptop(&self, bearer: &str) -> Command {
        let mut command = dropkey(&self.client_config, &self.client_data);
        command.env("DROPKEY_SECRET_TEAM", bearer);
        command
    }

    /// SIGTERM to the server: it exits 0 (graceful); then its audit log, which holds neither
    /// the laptop's token nor the key.
    fn stop(self) -> Vec<Value> {
        let status = self.serve.stop();
        assert!(status.success(), "{status:?}");
        let audit = std::fs::read_to_string(self.server_data.join("serve-audit.jsonl")).unwrap();
        assert!(!audit.contains(&self.bearer) && !audit.contains(KEY));
        audit
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn a_remote_profile_uploads_through_serve_with_no_private_key_on_the_client() {
    let team = Team::start();
    let mut paths: Vec<PathBuf> = Vec::new();
    for i in 0..5u8 {
        let p = team.files.join(format!("team-{i}.jpg"));
        std::fs::write(
            &p,
            (0..2000u32)
                .map(|b| (b as u8).wrapping_mul(i + 3))
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        paths.push(p);
    }
    let out = team
        .laptop(&team.bearer)
        .arg("upload")
        .arg("team")
        .args(&paths)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for line in &lines {
        assert_eq!(line["ok"], true, "{line}");
        // The server's policy put it in the profile's folder with its tags.
        assert!(
            line["response"]["filePath"]
                .as_str()
                .unwrap()
                .starts_with("/uploads/chat/"),
            "{line}"
        );
        assert_eq!(line["response"]["tags"], json!(["chat", "media"]));
        let path = PathBuf::from(line["path"].as_str().unwrap());
        let got = team.rig.runtime.block_on(async {
            reqwest::get(line["url"].as_str().unwrap())
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        });
        assert_eq!(got.to_vec(), std::fs::read(&path).unwrap());
    }
    let ledger = std::fs::read_to_string(team.rig.sandbox().ledger_path()).unwrap();
    assert_eq!(ledger.lines().count(), 5);
    // No provider key anywhere on the client: not in its files, not in its output.
    for file in common::files_under(&team.client_dir) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(KEY), "{}", file.display());
        assert!(
            !text.contains(&team.bearer),
            "the bearer token was written to {}",
            file.display()
        );
    }
    assert!(
        !stdout.contains(&team.bearer)
            && !String::from_utf8_lossy(&out.stderr).contains(&team.bearer)
    );

    // The audit log names the laptop, never its token.
    let audit = team.stop();
    assert_eq!(
        audit
            .iter()
            .filter(|l| l["who"] == "laptop" && l["status"] == 200)
            .count(),
        5
    );
}

#[test]
fn a_wrong_bearer_token_is_a_permanent_failure_that_says_what_to_fix() {
    let team = Team::start();
    let other = team.files.join("other.jpg");
    std::fs::write(&other, b"other").unwrap();
    let out = team
        .laptop("dk_wrong")
        .args(["upload", "team"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["ok"], false);
    assert!(
        line["error"].as_str().unwrap().contains("bearer token"),
        "{line}"
    );
    // No retry storm: the server saw the refusal, counted as one client's failure.
    let audit = team.stop();
    assert!(audit
        .iter()
        .any(|l| l["who"].is_null() && l["status"] == 401));
    assert!(!audit.iter().any(|l| l["status"] == 200), "{audit:?}");
}

#[test]
fn sign_refuses_a_remote_profile_which_has_no_key_to_sign_with() {
    let team = Team::start();
    let out = team
        .laptop(&team.bearer)
        .args(["sign", "team"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(&team.bearer), "{stderr}");
    team.stop();
}

// ---------------------------------------------------------------------------------------------
// Hostile clients: idle, slow, many, forged. Loopback only, bounded in count and time.

/// The most a test waits for the server to close a connection that a 1 or 2 s header timeout
/// should close: generous for a loaded machine, far below the > 100 s such connections lived
/// without the timeout.
const CLOSE_WITHIN: Duration = Duration::from_secs(8);

fn connect(rig: &Rig) -> TcpStream {
    TcpStream::connect(rig.serve.as_ref().unwrap().addr()).unwrap()
}

/// Reads until the server closes `stream`, at the latest by `deadline`; returns what it sent.
fn read_until_closed(stream: &mut TcpStream, deadline: Instant, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{what}: still open after {CLOSE_WITHIN:?}");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("{what}: still open after {CLOSE_WITHIN:?}")
            }
            // A reset is a close too.
            Err(_) => return got,
        }
    }
}

/// One request on a kept-alive raw connection; the answer's head and body as text.
fn raw_get(stream: &mut TcpStream, path: &str) -> String {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    stream.set_read_timeout(Some(CLOSE_WITHIN)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering {path}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + CLOSE_WITHIN;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn idle_partial_and_trickling_connections_are_closed_within_the_header_timeout() {
    let rig = Rig::with("header_timeout = \"1s\"");
    let deadline = Instant::now() + CLOSE_WITHIN;
    let mut idle = connect(&rig);
    let mut partial = connect(&rig);
    partial.write_all(b"GET /heal").unwrap();
    // A complete request, then nothing on the kept-alive connection.
    let mut kept = connect(&rig);
    let answer = raw_get(&mut kept, "/healthz");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A header line every 200 ms, on and on: each arrives well within the timeout, the head
    // as a whole never does.
    let mut trickle = connect(&rig);
    let mut writer = trickle.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        let start = Instant::now();
        let _ = writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n");
        while start.elapsed() < CLOSE_WITHIN + Duration::from_secs(2) {
            if writer.write_all(b"X-Slow: 1\r\n").is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    });
    // A body promised and never finished, on an authenticated request: 408, then closed.
    let mut slow_body = connect(&rig);
    write!(
        slow_body,
        "POST /api/media/upload-token HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"upload",
        rig.token("alice")
    )
    .unwrap();

    // A body promised to a route that reads none, and never sent.
    let mut unread_body = connect(&rig);
    unread_body
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();

    read_until_closed(&mut idle, deadline, "an idle connection");
    let answer = String::from_utf8(read_until_closed(
        &mut unread_body,
        deadline,
        "an unread body",
    ))
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    read_until_closed(&mut partial, deadline, "half a request line");
    read_until_closed(&mut kept, deadline, "an idle kept-alive connection");
    read_until_closed(&mut trickle, deadline, "trickled headers");
    assert!(
        trickler.join().unwrap(),
        "the trickled connection was never closed"
    );
    let answer =
        String::from_utf8(read_until_closed(&mut slow_body, deadline, "a slow body")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"status\":408"), "{answer}");
    // The server itself is fine.
    let (status, _, _) = rig.call(reqwest::Method::GET, "/healthz", None, None);
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn a_client_that_stops_reading_is_disconnected() {
    let rig = Rig::with("header_timeout = \"1s\"");
    let serve = rig.serve.as_ref().unwrap();
    // Pipelined requests, never reading an answer, until the server's answers fill both
    // sockets' buffers and it stops reading in turn (bounded: 64 MiB of requests at most).
    let mut greedy = connect(&rig);
    greedy
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n".repeat(1024);
    let mut blocked = false;
    for _ in 0..(64 * 1024 * 1024 / request.len()) {
        if greedy.write_all(&request).is_err() {
            blocked = true;
            break;
        }
    }
    assert!(
        blocked,
        "the server kept reading without its answers being read"
    );
    // The server's writes make no progress: it gives up on the connection.
    wait_until("the stalled connection to close", || {
        serve.open_connections() == 0
    });
}

#[test]
fn the_connection_cap_holds_and_healthz_is_served_once_idle_sockets_time_out() {
    let rig = Rig::with("header_timeout = \"2s\"\nmax_connections = 8");
    let serve = rig.serve.as_ref().unwrap();
    // A client already holding a slot...
    let mut kept = connect(&rig);
    assert!(raw_get(&mut kept, "/healthz").starts_with("HTTP/1.1 200"));
    // ...then idle sockets: 7 take the other slots, 5 wait in the listen queue.
    let mut held: Vec<TcpStream> = (0..12).map(|_| connect(&rig)).collect();
    wait_until("every slot taken", || serve.open_connections() == 8);
    // The slot holder is still served while the cap is reached.
    assert!(raw_get(&mut kept, "/healthz").starts_with("HTTP/1.1 200"));
    // A new client waits in the queue and is served once idle sockets time out.
    let response = rig
        .runtime
        .block_on(async {
            rig.http
                .get(rig.url("/healthz"))
                .timeout(CLOSE_WITHIN * 2)
                .send()
                .await
        })
        .expect("/healthz answers once idle connections time out");
    assert_eq!(response.status(), StatusCode::OK);
    let deadline = Instant::now() + CLOSE_WITHIN * 2;
    for (i, socket) in held.iter_mut().enumerate() {
        read_until_closed(socket, deadline, &format!("idle socket {i}"));
    }
    assert_eq!(serve.peak_connections(), 8);
}

/// A GET with `token` as bearer and, if given, an X-Forwarded-For header.
fn forwarded(
    rig: &Rig,
    path: &str,
    token: &str,
    xff: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap) {
    let mut request = rig.http.get(rig.url(path)).bearer_auth(token);
    if let Some(xff) = xff {
        request = request.header("X-Forwarded-For", xff);
    }
    let response = rig.runtime.block_on(request.send()).unwrap();
    (response.status(), response.headers().clone())
}

#[test]
fn failed_auth_is_limited_per_ip_and_summed_up_in_the_audit_log() {
    let mut rig = Rig::new();
    let start = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..200 {
        let (status, headers) = forwarded(
            &rig,
            "/upload-signature?profile=cl",
            &format!("dk_wrong{i}"),
            None,
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
        statuses.push(status.as_u16());
    }
    let elapsed = start.elapsed();
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    // The default budget is 30 a minute, refilled continuously while the flood lasts.
    let refilled = (elapsed.as_secs_f64() / 2.0).ceil() as usize;
    assert!(
        unauthorized <= 30 + refilled,
        "{unauthorized} in {elapsed:?}"
    );
    assert_eq!(unauthorized + limited, 200, "{statuses:?}");
    let (status, _, body) = rig.call(
        reqwest::Method::GET,
        "/upload-signature?profile=cl",
        Some("dk_wrong"),
        None,
    );
    assert_error(status, &body, 429);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("valid bearer token"),
        "{body}"
    );
    // A valid token from the same address is not held back.
    let (status, _) = rig.get("/upload-signature?profile=cl", rig.token("alice"));
    assert_eq!(status, StatusCode::OK);

    let lines = rig.stop_and_check_audit();
    let failures: Vec<&Value> = lines.iter().filter(|l| l["who"].is_null()).collect();
    // One record and one summary for the minute (a minute boundary mid-flood could add one).
    assert!((2..=3).contains(&failures.len()), "{failures:?}");
    let accounted: u64 = failures
        .iter()
        .map(|l| {
            if l["event"] == "auth_failures" {
                l["count"].as_u64().unwrap()
            } else {
                1
            }
        })
        .sum();
    assert_eq!(accounted, 201, "{failures:?}");
    let summary = failures
        .iter()
        .find(|l| l["event"] == "auth_failures")
        .unwrap();
    assert_eq!(summary["ip"], "127.0.0.1");
    assert!(
        summary["statuses"]["429"].as_u64().unwrap() >= 100,
        "{summary}"
    );
    assert_eq!(lines.len(), failures.len() + 1, "{lines:?}");
}

#[test]
fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    // The server trusts no proxy: the header changes nothing, neither the audit's address nor
    // the per-IP budget (a client cannot escape it by making up addresses). A budget of 10 a
    // minute refills one every 6 s: far longer than these requests take.
    let mut rig = Rig::with("auth_failures_per_minute = 10");
    let alice = rig.token("alice").to_owned();
    let (status, _) = forwarded(
        &rig,
        "/upload-signature?profile=cl",
        &alice,
        Some("203.0.113.7"),
    );
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<u16> = (0..20)
        .map(|i| {
            forwarded(
                &rig,
                "/upload-signature?profile=cl",
                "dk_wrong",
                Some(&format!("198.51.100.{i}")),
            )
            .0
            .as_u16()
        })
        .collect();
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    let lines = rig.stop_and_check_audit();
    for line in &lines {
        assert_eq!(line["ip"], "127.0.0.1", "{line}");
        assert!(line.get("via").is_none(), "{line}");
    }

    // The test is the trusted proxy: the audit names the client it forwards for, and each
    // client has its own budget.
    let mut rig = Rig::with(
        "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\nauth_failures_per_minute = 10",
    );
    let alice = rig.token("alice").to_owned();
    let (status, _) = forwarded(
        &rig,
        "/upload-signature?profile=cl",
        &alice,
        Some("203.0.113.7"),
    );
    assert_eq!(status, StatusCode::OK);
    // What the client wrote on the left is not believed; the nearest untrusted hop is.
    let (status, _) = forwarded(
        &rig,
        "/upload-signature?profile=cl",
        &alice,
        Some("6.6.6.6, 198.51.100.4, 10.1.2.3"),
    );
    assert_eq!(status, StatusCode::OK);
    for _ in 0..10 {
        let (status, _) = forwarded(
            &rig,
            "/upload-signature?profile=cl",
            "dk_wrong",
            Some("192.0.2.1"),
        );
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = forwarded(
        &rig,
        "/upload-signature?profile=cl",
        "dk_wrong",
        Some("192.0.2.1"),
    );
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = forwarded(
        &rig,
        "/upload-signature?profile=cl",
        "dk_wrong",
        Some("192.0.2.2"),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let lines = rig.stop_and_check_audit();
    let alice_lines: Vec<&Value> = lines.iter().filter(|l| l["who"] == "alice").collect();
    assert_eq!(alice_lines[0]["ip"], "203.0.113.7", "{lines:?}");
    assert_eq!(alice_lines[0]["via"], "127.0.0.1", "{lines:?}");
    assert_eq!(alice_lines[1]["ip"], "198.51.100.4", "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l["who"].is_null() && l["ip"] == "192.0.2.2"));
}
