//! The CLI contract of the foundation issue, driven through the real `dropkey` binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::collections::BTreeMap;

use common::{stdout_json, Env};
use serde_json::Value;

const SECRET_IK: &str = "private_cli_test_key";
const SECRET_CL: &str = "cl_cli_test_secret";

fn envs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("DROPKEY_SECRET_IK", SECRET_IK),
        ("DROPKEY_SECRET_IK1", SECRET_IK),
        ("DROPKEY_SECRET_CL", SECRET_CL),
    ]
}

fn decode_v2(token: &str) -> (jsonwebtoken::Header, BTreeMap<String, Value>) {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    let header = decode_header(token).unwrap();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let data = decode::<BTreeMap<String, Value>>(
        token,
        &DecodingKey::from_secret(SECRET_IK.as_bytes()),
        &validation,
    )
    .expect("token verifies with the private key");
    (header, data.claims)
}

#[test]
fn sign_v2_merges_profile_params_and_params_as_strings() {
    let env = Env::new();
    let out = stdout_json(&env.run(
        &[
            "sign",
            "ik",
            "--param",
            "fileName=dress.jpg",
            "--param",
            "useUniqueFileName=false",
            "--timestamp",
            "1714035985",
        ],
        &envs(),
    ));
    let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["expire", "publicKey", "token", "uploadUrl", "urlEndpoint"]
    );
    assert_eq!(out["expire"], 1714035985 + 3600);
    assert_eq!(out["publicKey"], "public_abc");
    assert_eq!(out["urlEndpoint"], "https://ik.imagekit.io/acme");
    assert_eq!(
        out["uploadUrl"],
        "https://upload.imagekit.io/api/v2/files/upload"
    );
    let (header, claims) = decode_v2(out["token"].as_str().unwrap());
    assert_eq!(header.kid.as_deref(), Some("public_abc"));
    assert_eq!(claims["fileName"], "dress.jpg");
    assert_eq!(claims["folder"], "/uploads/chat");
    assert_eq!(claims["tags"], "chat,media");
    assert_eq!(claims["useUniqueFileName"], "false");
    assert_eq!(claims["iat"], 1714035985);
    assert_eq!(claims["exp"], 1714035985 + 3600);
    assert_eq!(claims.len(), 6);
}

#[test]
fn sign_v2_expire_options() {
    let env = Env::new();
    let out = stdout_json(&env.run(
        &["sign", "ik", "--timestamp", "1000000", "--expire-in", "60"],
        &envs(),
    ));
    assert_eq!(out["expire"], 1000060);
    let out = stdout_json(&env.run(
        &[
            "sign",
            "ik",
            "--timestamp",
            "1000000",
            "--expire",
            "1003600",
        ],
        &envs(),
    ));
    let (_, claims) = decode_v2(out["token"].as_str().unwrap());
    assert_eq!(claims["exp"], 1003600);
    // Without --timestamp the token is issued now.
    let out = stdout_json(&env.run(&["sign", "ik"], &envs()));
    let (_, claims) = decode_v2(out["token"].as_str().unwrap());
    let now = dropkey_core::unix_now();
    let iat = claims["iat"].as_i64().unwrap();
    assert!((now - 5..=now).contains(&iat));
}

#[test]
fn sign_v1_is_doc_003() {
    let env = Env::new();
    let out = stdout_json(&env.run(
        &[
            "sign",
            "ik1",
            "--token",
            "tok-1",
            "--expire",
            "1700000000",
            "--timestamp",
            "1699999000",
        ],
        &envs(),
    ));
    let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["expire", "signature", "token"]);
    assert_eq!(out["token"], "tok-1");
    assert_eq!(out["expire"], 1700000000);
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(SECRET_IK.as_bytes()).unwrap();
    mac.update(b"tok-11700000000");
    assert_eq!(out["signature"], hex::encode(mac.finalize().into_bytes()));

    // Defaults: a fresh UUID v4 and now + 30 minutes.
    let a = stdout_json(&env.run(&["sign", "ik1"], &envs()));
    let b = stdout_json(&env.run(&["sign", "ik1"], &envs()));
    assert_ne!(a["token"], b["token"]);
    let token = a["token"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(token).unwrap().get_version_num(), 4);
    let ahead = a["expire"].as_i64().unwrap() - dropkey_core::unix_now();
    assert!((1790..=1800).contains(&ahead), "expire {ahead} s ahead");
}

#[test]
fn sign_cloudinary_signs_profile_params() {
    let env = Env::new();
    let out = stdout_json(&env.run(
        &[
            "sign",
            "cl",
            "--timestamp",
            "1315060510",
            "--param",
            "public_id=passport",
        ],
        &envs(),
    ));
    assert_eq!(out["timestamp"], 1315060510);
    assert_eq!(out["api_key"], "1234");
    assert_eq!(out["cloud_name"], "demo");
    assert_eq!(out["folder"], "kyc/1");
    assert_eq!(out["tags"], "kyc");
    assert_eq!(out["type"], "private");
    assert_eq!(out["public_id"], "passport");
    use sha1::Digest;
    let to_sign = "folder=kyc/1&public_id=passport&tags=kyc&timestamp=1315060510&type=private";
    let expected = hex::encode(sha1::Sha1::digest(format!("{to_sign}{SECRET_CL}")));
    assert_eq!(out["signature"], expected);

    let out = stdout_json(&env.run(
        &[
            "sign",
            "cl",
            "--timestamp",
            "1315060510",
            "--param",
            "signature_algorithm=sha256",
        ],
        &envs(),
    ));
    let to_sign = "folder=kyc/1&tags=kyc&timestamp=1315060510&type=private";
    let expected = hex::encode(sha2::Sha256::digest(format!("{to_sign}{SECRET_CL}")));
    assert_eq!(out["signature"], expected);
    assert!(out.get("signature_algorithm").is_none());
}

#[test]
fn private_urls_for_both_providers() {
    let env = Env::new();
    let out = stdout_json(&env.run(&["private-url", "ik", "/uploads/a b.jpg"], &envs()));
    let url = out["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://ik.imagekit.io/acme/uploads/a%20b.jpg?ik-t="),
        "{url}"
    );
    let expiry: i64 = url
        .split("ik-t=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((expiry - dropkey_core::unix_now() - 60).abs() <= 2);

    let out = stdout_json(&env.run(
        &[
            "private-url",
            "cl",
            "kyc/1/passport",
            "--format",
            "pdf",
            "--resource-type",
            "raw",
            "--expire-in",
            "120",
        ],
        &envs(),
    ));
    let url = out["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://api.cloudinary.com/v1_1/demo/raw/download?timestamp="),
        "{url}"
    );
    assert!(url.contains("&public_id=kyc%2F1%2Fpassport&format=pdf&type=private&expires_at="));
    assert!(url.ends_with("&api_key=1234"));
}

#[test]
fn fresh_install_has_the_sandbox_profile_with_doc_000_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = assert_cmd::Command::cargo_bin("dropkey")
        .unwrap()
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DROPKEY_SECRET_SANDBOX", "private_sandbox_test")
        .args(["sign", "sandbox", "--param", "fileName=a.png"])
        .output()
        .unwrap();
    let out = stdout_json(&out);
    assert_eq!(out["publicKey"], "public_sandbox");
    assert_eq!(
        out["uploadUrl"],
        "http://127.0.0.1:7371/api/v2/files/upload"
    );
    let token = out["token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine;
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["folder"], "/uploads/chat");
    assert_eq!(payload["tags"], "chat,media");
    assert_eq!(payload["useUniqueFileName"], "true");
    assert_eq!(payload["fileName"], "a.png");
}

#[test]
fn key_status_reports_env_and_missing() {
    let env = Env::new();
    let out = stdout_json(&env.run(&["key", "status", "ik"], &envs()));
    assert_eq!(out, serde_json::json!({"profile": "ik", "source": "env"}));
    // A profile named with punctuation maps to an env name with underscores.
    let env = Env::with_config(
        "[profiles.my-cl]\nprovider = \"cloudinary\"\ncloud_name = \"demo\"\napi_key = \"1\"\n",
    );
    let out = stdout_json(&env.run(
        &["key", "status", "my-cl"],
        &[("DROPKEY_SECRET_MY_CL", "x")],
    ));
    assert_eq!(out["source"], "env");
}

#[test]
fn help_and_version_exit_zero() {
    let env = Env::new();
    let out = env.run(&["--help"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("private-url"));
    let out = env.run(&["--version"], &[]);
    assert!(out.status.success());
}

/// Bad inputs: every one exits 2 with exactly one line on stderr, nothing on stdout, no panic.
#[test]
fn bad_inputs_exit_2_with_one_clear_line() {
    let env = Env::new();
    let dir = env.dir.path();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let unknown_key = write(
        "unknown_key.toml",
        "[profiles.a]\nprovider = \"imagekit\"\npublik_key = \"x\"\n",
    );
    let bad_provider = write("bad_provider.toml", "[profiles.a]\nprovider = \"s3\"\n");
    let bad_auth = write(
        "bad_auth.toml",
        "[profiles.a]\nprovider = \"imagekit\"\nauth = \"v3\"\npublic_key = \"p\"\nurl_endpoint = \"https://x.io/a\"\n",
    );
    let missing_endpoint = write(
        "missing_endpoint.toml",
        "[profiles.a]\nprovider = \"imagekit\"\npublic_key = \"p\"\n",
    );
    let bad_url = write(
        "bad_url.toml",
        "[profiles.a]\nprovider = \"imagekit\"\npublic_key = \"p\"\nurl_endpoint = \"not a url\"\n",
    );
    let bad_toml = write("bad_toml.toml", "[profiles.a\nprovider = \"imagekit\"\n");
    let bad_type = write(
        "bad_type.toml",
        "[profiles.a]\nprovider = \"cloudinary\"\ncloud_name = \"d\"\napi_key = \"k\"\nprivate = \"yes\"\n",
    );
    let cross_field = write(
        "cross_field.toml",
        "[profiles.a]\nprovider = \"cloudinary\"\ncloud_name = \"d\"\napi_key = \"k\"\npublic_key = \"p\"\n",
    );
    let bad_watch = write(
        "bad_watch.toml",
        "[[watch]]\npath = \"/tmp/x\"\nprofile = \"nope\"\n",
    );
    let comma_tag = write(
        "comma_tag.toml",
        "[profiles.a]\nprovider = \"cloudinary\"\ncloud_name = \"d\"\napi_key = \"k\"\ntags = [\"a,b\"]\n",
    );
    let remote_no_url = write(
        "remote_no_url.toml",
        "[profiles.a]\nprovider = \"imagekit\"\nauth = \"remote\"\npublic_key = \"p\"\nurl_endpoint = \"https://x.io/a\"\n",
    );
    let bad_name = write(
        "bad_name.toml",
        "[profiles.\"a b\"]\nprovider = \"imagekit\"\n",
    );
    let missing_file = dir.join("nope.toml").to_string_lossy().into_owned();

    // A leading "@FILE" argument selects another config file.
    let with_config = |path: &str, args: &[&str]| -> Vec<String> {
        let mut v = vec![format!("@{path}")];
        v.extend(args.iter().map(|s| (*s).to_owned()));
        v
    };
    let plain = |args: &[&str]| -> Vec<String> { args.iter().map(|s| (*s).to_owned()).collect() };

    // (what, arguments, extra environment, a phrase the error line must contain)
    type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing config file",
            with_config(&missing_file, &["key", "status", "ik"]),
            vec![],
            "cannot read the config file",
        ),
        (
            "unknown config key",
            with_config(&unknown_key, &["key", "status", "a"]),
            vec![],
            ":3:1: profiles.a.publik_key",
        ),
        (
            "unknown provider",
            with_config(&bad_provider, &["key", "status", "a"]),
            vec![],
            ":2:12: profiles.a.provider",
        ),
        (
            "unknown auth",
            with_config(&bad_auth, &["key", "status", "a"]),
            vec![],
            "profiles.a.auth",
        ),
        (
            "missing url_endpoint",
            with_config(&missing_endpoint, &["key", "status", "a"]),
            vec![],
            "profiles.a.url_endpoint: missing",
        ),
        (
            "bad url",
            with_config(&bad_url, &["key", "status", "a"]),
            vec![],
            "not an http(s) URL",
        ),
        (
            "broken TOML",
            with_config(&bad_toml, &["key", "status", "a"]),
            vec![],
            "bad_toml.toml:1:",
        ),
        (
            "wrong value type",
            with_config(&bad_type, &["key", "status", "a"]),
            vec![],
            "profiles.a.private",
        ),
        (
            "ImageKit key in a Cloudinary profile",
            with_config(&cross_field, &["key", "status", "a"]),
            vec![],
            "for ImageKit profiles",
        ),
        (
            "watch of an unknown profile",
            with_config(&bad_watch, &["key", "status", "sandbox"]),
            vec![],
            "watch[0].profile",
        ),
        (
            "tag with a comma",
            with_config(&comma_tag, &["key", "status", "a"]),
            vec![],
            "profiles.a.tags",
        ),
        (
            "remote without token_url",
            with_config(&remote_no_url, &["key", "status", "a"]),
            vec![],
            "token_url",
        ),
        (
            "invalid profile name",
            with_config(&bad_name, &["key", "status", "a"]),
            vec![],
            "profile name",
        ),
        (
            "unknown profile",
            plain(&["sign", "nope"]),
            vec![],
            "unknown profile `nope`",
        ),
        (
            "unknown profile for private-url",
            plain(&["private-url", "nope", "x"]),
            vec![],
            "unknown profile",
        ),
        (
            "param without =",
            plain(&["sign", "ik", "--param", "fileName"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "NAME=VALUE",
        ),
        (
            "param with bad name",
            plain(&["sign", "ik", "--param", "9x=1"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "invalid name",
        ),
        (
            "param given twice",
            plain(&["sign", "ik", "--param", "a=1", "--param", "a=2"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "given twice",
        ),
        (
            "reserved param",
            plain(&["sign", "ik", "--param", "token=x"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "cannot be set",
        ),
        (
            "non-boolean flag param",
            plain(&["sign", "ik", "--param", "useUniqueFileName=yes"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "true or false",
        ),
        (
            "V2 expire too far",
            plain(&["sign", "ik", "--expire-in", "3601"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "at most 3600",
        ),
        (
            "V2 absolute expire too far",
            plain(&["sign", "ik", "--timestamp", "1000", "--expire", "4601"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "at most 3600",
        ),
        (
            "V1 expire an hour ahead",
            plain(&["sign", "ik1", "--expire-in", "3600"]),
            vec![("DROPKEY_SECRET_IK1", "k")],
            "1 hour",
        ),
        (
            "negative expire-in",
            plain(&["sign", "ik", "--expire-in", "-5"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "positive",
        ),
        (
            "expire not after timestamp",
            plain(&["sign", "ik", "--timestamp", "1000", "--expire", "999"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "not after",
        ),
        (
            "--expire with --expire-in",
            plain(&["sign", "ik", "--expire", "1", "--expire-in", "2"]),
            vec![],
            "cannot be used with",
        ),
        (
            "non-numeric expire-in",
            plain(&["sign", "ik", "--expire-in", "soon"]),
            vec![],
            "invalid value",
        ),
        (
            "--token on a V2 profile",
            plain(&["sign", "ik", "--token", "t"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "V1 profiles only",
        ),
        (
            "empty V1 token",
            plain(&["sign", "ik1", "--token", ""]),
            vec![("DROPKEY_SECRET_IK1", "k")],
            "must not be empty",
        ),
        (
            "--param on a V1 profile",
            plain(&["sign", "ik1", "--param", "a=1"]),
            vec![("DROPKEY_SECRET_IK1", "k")],
            "V1",
        ),
        (
            "--expire-in on Cloudinary",
            plain(&["sign", "cl", "--expire-in", "60"]),
            vec![("DROPKEY_SECRET_CL", "k")],
            "ImageKit profiles only",
        ),
        (
            "bad signature_algorithm",
            plain(&["sign", "cl", "--param", "signature_algorithm=md5"]),
            vec![("DROPKEY_SECRET_CL", "k")],
            "sha1 or sha256",
        ),
        (
            "remote profile cannot sign",
            plain(&["sign", "remote"]),
            vec![],
            "auth = \"remote\"",
        ),
        (
            "missing secret",
            plain(&["sign", "ik"]),
            vec![(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/dropkey-test-bus",
            )],
            "DROPKEY_SECRET_IK",
        ),
        (
            "no keychain service for key set",
            plain(&["key", "set", "ik"]),
            vec![(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/dropkey-test-bus",
            )],
            "no keychain service",
        ),
        (
            "empty secret on stdin",
            plain(&["key", "set", "ik"]),
            vec![],
            "empty",
        ),
        (
            "key set for an unknown profile",
            plain(&["key", "set", "nope"]),
            vec![],
            "unknown profile",
        ),
        (
            "private-url bad resource type",
            plain(&["private-url", "cl", "x", "--resource-type", "pdf"]),
            vec![("DROPKEY_SECRET_CL", "k")],
            "image, video, raw",
        ),
        (
            "private-url bad format",
            plain(&["private-url", "cl", "x", "--format", "p/df"]),
            vec![("DROPKEY_SECRET_CL", "k")],
            "not a file format",
        ),
        (
            "private-url --format on ImageKit",
            plain(&["private-url", "ik", "/a.jpg", "--format", "png"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "Cloudinary profiles only",
        ),
        (
            "private-url zero expire-in",
            plain(&["private-url", "ik", "/a.jpg", "--expire-in", "0"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "positive",
        ),
        (
            "private-url empty id",
            plain(&["private-url", "ik", " "]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "empty",
        ),
        (
            "private-url URL of another host",
            plain(&["private-url", "ik", "https://evil.example/a.jpg"]),
            vec![("DROPKEY_SECRET_IK", "k")],
            "url_endpoint",
        ),
        (
            "unknown subcommand",
            plain(&["upload-everything"]),
            vec![],
            "unrecognized subcommand",
        ),
        (
            "unknown flag",
            plain(&["sign", "ik", "--frobnicate"]),
            vec![],
            "unexpected argument",
        ),
        (
            "missing profile argument",
            plain(&["sign"]),
            vec![],
            "required",
        ),
        (
            "profile set with an unknown provider",
            plain(&["profile", "set", "x", "--provider", "s3"]),
            vec![],
            "unknown provider `s3`",
        ),
        (
            "profile set with an unknown auth scheme",
            plain(&[
                "profile",
                "set",
                "x",
                "--provider",
                "imagekit",
                "--auth",
                "v3",
            ]),
            vec![],
            "unknown auth scheme `v3`",
        ),
        (
            "key set of two lines",
            plain(&["key", "set", "ik"]),
            vec![],
            "does not look like a private key",
        ),
    ];
    assert!(cases.len() >= 25);
    for (what, args, extra_env, needle) in cases {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = match args.first().and_then(|a| a.strip_prefix('@')) {
            Some(config) => {
                let config = std::path::PathBuf::from(config);
                args.remove(0);
                env.cmd_with_config(&config, &args)
            }
            None => env.cmd(&args),
        };
        for (k, v) in &extra_env {
            cmd.env(k, v);
        }
        let stdin = if what.starts_with("empty secret") {
            "\n"
        } else if what == "key set of two lines" {
            "private_one\nprivate_two\n"
        } else {
            "not-a-real-key\n"
        };
        let out = cmd
            .write_stdin(stdin)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: exit code; stderr: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{what}: stdout must stay empty");
        assert_eq!(stderr.lines().count(), 1, "{what}: one line, got: {stderr}");
        assert!(stderr.starts_with("error: "), "{what}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{what}: expected `{needle}` in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}

#[test]
fn profile_set_list_and_remove_edit_the_config_file_in_place() {
    let env = Env::with_config("# team settings\n[upload]\nconcurrency = 3\n");
    let out = stdout_json(&env.run(
        &[
            "profile",
            "set",
            "web",
            "--provider",
            "imagekit",
            "--public-key",
            "public_web",
            "--url-endpoint",
            "https://ik.imagekit.io/web",
            "--tag",
            "a",
            "--tag",
            "b",
        ],
        &[("DROPKEY_SECRET_WEB", "private_web")],
    ));
    assert_eq!(out["created"], true);
    assert_eq!(out["profile"]["name"], "web");
    assert_eq!(out["profile"]["secret"], "env");
    assert_eq!(out["profile"]["tags"], serde_json::json!(["a", "b"]));
    let text = std::fs::read_to_string(env.config()).unwrap();
    assert!(
        text.starts_with("# team settings\n[upload]\nconcurrency = 3\n"),
        "{text}"
    );
    assert!(text.contains("[profiles.web]"), "{text}");

    // The new profile signs at once; a change replaces its settings.
    let signed = stdout_json(&env.run(
        &["sign", "web", "--param", "fileName=a.png"],
        &[("DROPKEY_SECRET_WEB", "private_web")],
    ));
    assert_eq!(signed["publicKey"], "public_web");
    let out = stdout_json(&env.run(
        &[
            "profile",
            "set",
            "web",
            "--provider",
            "imagekit",
            "--public-key",
            "public_web2",
            "--url-endpoint",
            "https://ik.imagekit.io/web",
        ],
        &[],
    ));
    assert_eq!(out["created"], false);
    let listed = stdout_json(&env.run(&["profile", "list"], &[]));
    let names: Vec<&str> = listed["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sandbox", "web"]);

    // An edit the config would refuse exits 2 with one line and leaves the file alone.
    let before = std::fs::read_to_string(env.config()).unwrap();
    let out = env.run(&["profile", "set", "bad", "--provider", "imagekit"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("public_key") && stderr.contains("not changed"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read_to_string(env.config()).unwrap(), before);

    let out = stdout_json(&env.run(&["profile", "remove", "web"], &[]));
    assert_eq!(out["removed"], true);
    assert!(!std::fs::read_to_string(env.config())
        .unwrap()
        .contains("profiles.web"));
    assert_eq!(
        env.run(&["profile", "remove", "web"], &[]).status.code(),
        Some(2)
    );
    assert_eq!(
        env.run(&["profile", "remove", "sandbox"], &[])
            .status
            .code(),
        Some(2)
    );
}

/// Finding 2 of the field report: a plain-http `api_url` received the ImageKit private key as
/// Basic auth. Key- and file-bearing endpoints are https, or http only to this machine; the
/// refusal is one line that says why, in `profile set` and at config load alike.
#[test]
fn endpoints_that_would_carry_a_key_in_clear_are_refused() {
    let env = Env::with_config("");
    for (flag, url) in [
        ("--api-url", "http://media.example.com"),
        ("--upload-url", "http://10.1.2.3/api/v2/files/upload"),
        ("--upload-url", "ftp://upload.example.com/x"),
    ] {
        let out = env.run(
            &[
                "profile",
                "set",
                "web",
                "--provider",
                "imagekit",
                "--public-key",
                "public_web",
                "--url-endpoint",
                "https://ik.imagekit.io/web",
                flag,
                url,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{flag} {url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("https") && stderr.contains("not changed"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(env.config()).unwrap(), "");
    }
    // Loopback over http is the sandbox's and a local token server's case: allowed.
    for url in [
        "http://127.0.0.1:7371",
        "http://localhost:9000",
        "http://[::1]:7371",
    ] {
        let out = env.run(
            &[
                "profile",
                "set",
                "local",
                "--provider",
                "imagekit",
                "--public-key",
                "public_web",
                "--url-endpoint",
                "https://ik.imagekit.io/web",
                "--api-url",
                url,
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A hand-edited file with a remote http token_url does not load at all.
    let env = Env::with_config(
        "[profiles.team]\nprovider = \"imagekit\"\nauth = \"remote\"\npublic_key = \"public_t\"\nurl_endpoint = \"https://ik.imagekit.io/t\"\ntoken_url = \"http://tokens.example.com/api/media/get-upload-token\"\n",
    );
    let out = env.run(&["profile", "list"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("profiles.team.token_url") && stderr.contains("unencrypted"),
        "{stderr}"
    );
}

#[test]
fn profile_test_proves_the_key_against_the_provider_and_names_a_refusal() {
    let rt = common::runtime();
    let env = Env::with_config("");
    let key = "private_profile_test_key";
    let _sandbox = common::sandbox_for_config(&rt, env.dir.path(), key);

    let ok = stdout_json(&env.run(
        &["profile", "test", "sandbox"],
        &[("DROPKEY_SECRET_SANDBOX", key)],
    ));
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(ok["message"].as_str().unwrap().contains("accepted the key"));

    // The same sandbox, asked with another key: refused, with the reason and without the key.
    let wrong = "private_not_the_sandbox_key";
    let out = env.run(
        &["profile", "test", "sandbox"],
        &[("DROPKEY_SECRET_SANDBOX", wrong)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("did not pass the connection test"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong), "{stderr}");

    // A token-server profile holds no key to test, and says so.
    let mut config = std::fs::read_to_string(env.config()).unwrap();
    config.push_str(
        "\n[profiles.remote]\nprovider = \"imagekit\"\nauth = \"remote\"\npublic_key = \"public_abc\"\nurl_endpoint = \"https://ik.imagekit.io/acme\"\ntoken_url = \"https://tokens.example.com/api/media/get-upload-token\"\n",
    );
    std::fs::write(env.config(), config).unwrap();
    let remote = env.run(&["profile", "test", "remote"], &[]);
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert_eq!(remote.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("token server"), "{stderr}");

    // A provider that cannot be reached (the network is down, the host is wrong): a failed test
    // that says so, at once, not an upload retried for minutes.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = std::fs::read_to_string(env.config()).unwrap();
    config.push_str(&format!(
        "\n[profiles.down]\nprovider = \"imagekit\"\npublic_key = \"public_abc\"\nurl_endpoint = \"https://ik.imagekit.io/acme\"\nupload_url = \"http://127.0.0.1:{port}/api/v2/files/upload\"\napi_url = \"http://127.0.0.1:{port}\"\n"
    ));
    std::fs::write(env.config(), config).unwrap();
    let down = env.run(
        &["profile", "test", "down"],
        &[("DROPKEY_SECRET_DOWN", "private_down_key")],
    );
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("did not pass the connection test"),
        "{stderr}"
    );
    assert!(!stderr.contains("private_down_key"), "{stderr}");
}
