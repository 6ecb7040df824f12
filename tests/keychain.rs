//! The keychain, for real: these tests talk to the Secret Service on the session bus
//! (gnome-keyring in CI, started by `make test`), never a mock. They also prove that a secret,
//! once set, shows up in no output and no file, whatever command runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use common::{files_under, keychain_available, stdout_json, Env};

/// Profile names unique to this run, so a developer's own `dropkey` entries are never touched
/// and parallel runs do not collide.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn config(ik: &str, cl: &str) -> String {
    format!(
        r#"
[profiles.{ik}]
provider = "imagekit"
public_key = "public_abc"
url_endpoint = "https://ik.imagekit.io/acme"
folder = "/uploads/chat"
tags = ["chat", "media"]

[profiles.{cl}]
provider = "cloudinary"
cloud_name = "demo"
api_key = "1234"
private = true
"#
    )
}

#[test]
fn secrets_round_trip_through_the_keychain_and_never_leak() {
    if !keychain_available() {
        return;
    }
    let ik = unique("kt-ik");
    let cl = unique("kt-cl");
    let env = Env::with_config(&config(&ik, &cl));
    let ik_secret = format!("private_{}", uuid::Uuid::new_v4().simple());
    let cl_secret = format!("clsecret{}", uuid::Uuid::new_v4().simple());
    let trace = [("DROPKEY_LOG", "trace")];
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut run = |args: &[&str], stdin: &str| {
        let out = env
            .cmd(args)
            .env("DROPKEY_LOG", trace[0].1)
            .write_stdin(stdin.to_owned())
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        outputs.push((
            args.join(" "),
            [out.stdout.clone(), out.stderr.clone()].concat(),
        ));
        out
    };

    // Nothing set yet.
    assert_eq!(
        stdout_json(&run(&["key", "status", &ik], ""))["source"],
        "missing"
    );
    let out = run(&["sign", &ik], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("dropkey key set {ik}")));

    // Set both from stdin (with a trailing newline, as `echo` would give).
    let out = stdout_json(&run(&["key", "set", &ik], &format!("{ik_secret}\n")));
    assert_eq!(out["source"], "keychain");
    stdout_json(&run(&["key", "set", &cl], &cl_secret));
    assert_eq!(
        stdout_json(&run(&["key", "status", &ik], ""))["source"],
        "keychain"
    );

    // The keychain holds exactly what was typed, under service `dropkey`, account = profile.
    let stored = keyring::Entry::new("dropkey", &ik)
        .unwrap()
        .get_password()
        .unwrap();
    assert_eq!(stored, ik_secret);

    // Every command that uses the secret works with it...
    let token = stdout_json(&run(&["sign", &ik, "--param", "fileName=a.jpg"], ""))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(ik_secret.as_bytes()),
        &validation,
    )
    .expect("signed with the keychain secret");
    stdout_json(&run(&["sign", &cl, "--param", "public_id=x"], ""));
    stdout_json(&run(&["private-url", &ik, "/a.jpg"], ""));
    stdout_json(&run(&["private-url", &cl, "kyc/a", "--format", "pdf"], ""));
    stdout_json(&run(&["doctor", "--json"], ""));
    run(&["doctor"], "");
    assert_eq!(
        stdout_json(&run(&["profile", "list"], ""))["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == ik.as_str())
            .unwrap()["secret"],
        "keychain"
    );
    run(&["sign", &ik, "--expire-in", "99999"], "");
    run(&["sign", &cl, "--param", "bad"], "");
    run(&["--help"], "");

    // ...and the env override wins over the keychain.
    let out = env
        .cmd(&["key", "status", &ik])
        .env(dropkey_core::secrets::env_var_name(&ik), "from-env")
        .output()
        .unwrap();
    assert_eq!(stdout_json(&out)["source"], "env");

    // Delete: gone from the keychain, and deleting again says so.
    assert_eq!(
        stdout_json(&run(&["key", "delete", &ik], ""))["deleted"],
        true
    );
    assert_eq!(
        stdout_json(&run(&["key", "delete", &ik], ""))["deleted"],
        false
    );
    assert_eq!(
        stdout_json(&run(&["key", "status", &ik], ""))["source"],
        "missing"
    );
    stdout_json(&run(&["key", "delete", &cl], ""));

    for (what, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for secret in [&ik_secret, &cl_secret] {
            assert!(
                !text.contains(secret.as_str()),
                "`dropkey {what}` printed the secret"
            );
        }
    }
    let files = files_under(env.dir.path());
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [&ik_secret, &cl_secret] {
            assert!(
                !text.contains(secret.as_str()),
                "{} holds the secret",
                file.display()
            );
        }
    }
}

#[test]
fn sandbox_key_is_generated_once_into_the_keychain() {
    if !keychain_available() {
        return;
    }
    // The built-in profile's keychain entry is shared with a developer's real sandbox key, so
    // this test only reads it: after a sign, the key lives in the keychain (or was there).
    let env = Env::with_config("");
    let first = stdout_json(&env.run(&["sign", "sandbox"], &[]));
    assert_eq!(
        stdout_json(&env.run(&["key", "status", "sandbox"], &[]))["source"],
        "keychain"
    );
    let second = stdout_json(&env.run(&["sign", "sandbox"], &[]));
    assert_eq!(first["publicKey"], second["publicKey"]);
    let key = keyring::Entry::new("dropkey", "sandbox")
        .unwrap()
        .get_password()
        .unwrap();
    assert!(
        key.starts_with("private_sandbox_"),
        "a generated sandbox key"
    );
    assert!(
        !env.data().join("sandbox.key").exists(),
        "no file when the keychain works"
    );
}

#[test]
fn sandbox_key_falls_back_to_a_private_file_without_a_keychain() {
    let env = Env::with_config("");
    let no_bus = [(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/dropkey-test-bus",
    )];
    let out = env.run(&["sign", "sandbox"], &no_bus);
    stdout_json(&out);
    let path = env.data().join("sandbox.key");
    assert!(path.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        stdout_json(&env.run(&["key", "status", "sandbox"], &no_bus))["source"],
        "file"
    );
}

#[test]
fn key_set_refuses_what_is_not_one_key_as_the_app_does() {
    if !keychain_available() {
        return;
    }
    let ik = unique("kt-bad");
    let env = Env::with_config(&config(&ik, &unique("kt-unused")));
    let real = format!("private_{}", uuid::Uuid::new_v4().simple());
    // Two keys pasted at once, a key with a control character, one far too long, and blank.
    let too_long = "k".repeat(dropkey_core::secrets::MAX_SECRET_LEN + 1);
    for (input, says) in [
        (
            format!("{real}\nprivate_other\n"),
            "does not look like a private key",
        ),
        (format!("{real}\u{7}"), "does not look like a private key"),
        (too_long, "does not look like a private key"),
        ("   \n".to_owned(), "empty"),
    ] {
        let out = env
            .cmd(&["key", "set", &ik])
            .write_stdin(input)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            !stderr.contains(&real),
            "the refusal echoed the key: {stderr}"
        );
        assert_eq!(
            stdout_json(&env.run(&["key", "status", &ik], &[]))["source"],
            "missing",
            "a refused key was stored"
        );
    }
}
