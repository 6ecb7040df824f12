//! Helpers shared by the CLI integration tests: a throwaway config and data dir, and a
//! `dropkey` command that sees only the environment a test gives it. The end-to-end tests'
//! sandbox rig is in [`rig`].

#![allow(dead_code)]

pub mod rig;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub const CONFIG: &str = r#"
[profiles.ik]
provider = "imagekit"
auth = "v2"
public_key = "public_abc"
url_endpoint = "https://ik.imagekit.io/acme"
folder = "/uploads/chat"
tags = ["chat", "media"]
use_unique_file_name = true

[profiles.ik1]
provider = "imagekit"
auth = "v1"
public_key = "public_v1"
url_endpoint = "https://ik.imagekit.io/acme"

[profiles.cl]
provider = "cloudinary"
cloud_name = "demo"
api_key = "1234"
folder = "kyc/1"
tags = ["kyc"]
private = true

[profiles.remote]
provider = "imagekit"
auth = "remote"
public_key = "public_abc"
url_endpoint = "https://ik.imagekit.io/acme"
token_url = "https://tokens.example.com/api/media/get-upload-token"

[[watch]]
path = "/tmp/dropkey-watch"
profile = "ik"
folder = "/uploads/watched"
tags = ["watched"]
"#;

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self::with_config(CONFIG)
    }

    pub fn with_config(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        Self { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `dropkey --config <tmp> --data-dir <tmp> ARGS`, with no inherited DROPKEY_* variables.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_with_config(&self.config(), args)
    }

    /// Like [`Env::cmd`] with another config file.
    pub fn cmd_with_config(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("dropkey").expect("binary");
        for (key, _) in std::env::vars() {
            if key.starts_with("DROPKEY_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(self.data())
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("run dropkey")
    }
}

pub fn stdout_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "dropkey failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

/// Every regular file below `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// True when a Secret Service answers on this session bus. CI sets DROPKEY_REQUIRE_KEYCHAIN=1,
/// which turns a missing service into a failure instead of a skip.
pub fn keychain_available() -> bool {
    let probe =
        keyring::Entry::new("dropkey-test-probe", "probe").and_then(|e| match e.get_password() {
            Err(keyring::Error::NoEntry) | Ok(_) => Ok(()),
            Err(err) => Err(err),
        });
    match probe {
        Ok(()) => true,
        Err(err) => {
            assert!(
                std::env::var_os("DROPKEY_REQUIRE_KEYCHAIN").is_none(),
                "DROPKEY_REQUIRE_KEYCHAIN is set but no Secret Service answers: {err}"
            );
            eprintln!(
                "SKIPPED: no Secret Service on this session bus ({err}); run under `make test`"
            );
            false
        }
    }
}

/// The JSON lines of a file another thread or process may be appending to (the sandbox's
/// ledger): only complete, newline-terminated lines, so a line being written is never parsed.
pub fn read_records(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The `dropkey` binary with no `DROPKEY_*` variable inherited from the test's environment
/// (a developer's own keys or config must not leak into a test).
pub fn isolated_dropkey() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("dropkey"));
    for (key, _) in std::env::vars() {
        if key.starts_with("DROPKEY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A multi-threaded runtime for tests that start the sandbox or the engine in-process.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The built-in sandbox (its accounts secured by `key`) under `dir/sandbox`, on a free
/// loopback port.
pub fn start_sandbox(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    key: &str,
    faults: dropkey_sandbox::Faults,
) -> dropkey_sandbox::SandboxHandle {
    let mut config = dropkey_sandbox::SandboxConfig::builtin(
        "127.0.0.1:0".parse().unwrap(),
        dir.join("sandbox"),
        secrecy::SecretString::from(key),
    );
    config.faults = faults;
    rt.block_on(dropkey_sandbox::start(config)).unwrap()
}

/// A fault-free built-in sandbox under `dir/sandbox` holding `key`, and `dir/config.toml`
/// pointing the built-in `sandbox` profile at it.
pub fn sandbox_for_config(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    key: &str,
) -> dropkey_sandbox::SandboxHandle {
    let handle = start_sandbox(rt, dir, key, dropkey_sandbox::Faults::default());
    std::fs::write(
        dir.join("config.toml"),
        format!("[sandbox]\nlisten = \"{}\"\n", handle.addr()),
    )
    .unwrap();
    handle
}
