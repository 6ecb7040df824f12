//! The rig the end-to-end tests share: a throwaway directory, a runtime, the embedded sandbox
//! listening on loopback, and `config.toml` pointing at it. It owns their lifetimes (the
//! sandbox shuts down gracefully before the directory goes) and the ways a test reaches them:
//! the `dropkey` binary, an in-process engine, the sandbox's ledger.
//!
//! Each test file compiles `common` into its own crate, so a file adds its constructor and the
//! helpers only it needs in an `impl Rig` block of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dropkey_core::config::{Config, Paths};
use dropkey_core::engine::{Engine, EngineSettings};
use dropkey_sandbox::{Faults, SandboxHandle};
use serde_json::Value;

/// What the config says besides the `[sandbox]` table, given the running sandbox and the
/// rig's directory.
type ConfigFn<'a> = Box<dyn FnOnce(&SandboxHandle, &Path) -> String + 'a>;

pub struct RigBuilder<'a> {
    key: String,
    faults: Faults,
    sandbox_profile: bool,
    config: Option<ConfigFn<'a>>,
    secrets: Vec<String>,
}

impl<'a> RigBuilder<'a> {
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// TOML written to `config.toml` beside the `[sandbox]` table (profiles, watches,
    /// `[upload]`, `[serve]`...), built once the sandbox's address is known.
    pub fn config(mut self, toml: impl FnOnce(&SandboxHandle, &Path) -> String + 'a) -> Self {
        self.config = Some(Box::new(toml));
        self
    }

    /// No `[sandbox]` table, so no built-in `sandbox` profile: for configs whose profiles
    /// must be the only ones (a server that may pick the one ImageKit profile by itself).
    pub fn without_sandbox_profile(mut self) -> Self {
        self.sandbox_profile = false;
        self
    }

    /// Profiles (besides `sandbox`) whose secret is the rig's key in [`Rig::dropkey`]'s
    /// environment.
    pub fn secrets_for(mut self, profiles: &[&str]) -> Self {
        self.secrets
            .extend(profiles.iter().map(|p| (*p).to_owned()));
        self
    }

    pub fn start(self) -> Rig {
        let runtime = super::runtime();
        let dir = tempfile::tempdir().unwrap();
        let sandbox = super::start_sandbox(&runtime, dir.path(), &self.key, self.faults);
        let mut text = self
            .config
            .map(|config| config(&sandbox, dir.path()))
            .unwrap_or_default();
        // Last, so that keys at the top of the extra TOML stay top-level keys.
        if self.sandbox_profile {
            text.push_str(&format!("\n[sandbox]\nlisten = \"{}\"\n", sandbox.addr()));
        }
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        Rig {
            dir,
            runtime,
            sandbox: Some(sandbox),
            key: self.key,
            secrets: self.secrets,
        }
    }
}

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub runtime: tokio::runtime::Runtime,
    /// An `Option` so that `drop` can move it out to shut it down.
    sandbox: Option<SandboxHandle>,
    key: String,
    secrets: Vec<String>,
}

impl Rig {
    /// A fault-free sandbox whose accounts (ImageKit `public_sandbox`, the built-in
    /// Cloudinary cloud) are secured by `key`.
    pub fn builder<'a>(key: &str) -> RigBuilder<'a> {
        RigBuilder {
            key: key.to_owned(),
            faults: Faults::default(),
            sandbox_profile: true,
            config: None,
            secrets: Vec::new(),
        }
    }

    pub fn sandbox(&self) -> &SandboxHandle {
        self.sandbox.as_ref().unwrap()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `<dir>/files`, created on first use.
    pub fn files(&self) -> PathBuf {
        let dir = self.dir.path().join("files");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// What the sandbox stored, one record per accepted upload.
    pub fn ledger(&self) -> Vec<Value> {
        super::read_records(&self.sandbox().ledger_path())
    }

    /// `dropkey --config <rig> --data-dir <rig> ARGS`, with the key as the secret of `sandbox`
    /// and of the builder's [`RigBuilder::secrets_for`] profiles, and nothing else from the
    /// test's environment.
    pub fn dropkey(&self, args: &[&str]) -> Command {
        let mut cmd = super::isolated_dropkey();
        cmd.env("DROPKEY_SECRET_SANDBOX", &self.key);
        for profile in &self.secrets {
            cmd.env(
                format!("DROPKEY_SECRET_{}", profile.to_uppercase()),
                &self.key,
            );
        }
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args);
        cmd
    }

    /// Runs [`Rig::dropkey`] to its end: the exit code, stdout's JSON lines, stderr.
    pub fn run(&self, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
        json_lines(self.dropkey(args).stdin(Stdio::null()).output().unwrap())
    }

    /// An engine in this process on the rig's config, with its store in `data_dir`. It reads
    /// profile secrets from this process's environment.
    pub fn start_engine(
        &self,
        data_dir: &Path,
        settings: impl FnOnce(&mut EngineSettings),
    ) -> (Engine, Config) {
        let paths = Paths::resolve(Some(self.config_path()), Some(data_dir.to_path_buf())).unwrap();
        let config = Config::load(&paths).unwrap();
        let mut engine_settings = EngineSettings::new(&paths.data_dir, &config.upload);
        settings(&mut engine_settings);
        let _guard = self.runtime.enter();
        let engine = Engine::start(
            config.clone(),
            dropkey_core::secrets::Secrets::new(&paths.data_dir),
            engine_settings,
        )
        .unwrap();
        (engine, config)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.runtime.block_on(sandbox.shutdown());
        }
    }
}

/// A finished `dropkey` run: the exit code, stdout's lines parsed as JSON, stderr.
pub fn json_lines(out: Output) -> (Option<i32>, Vec<Value>, String) {
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    (
        out.status.code(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
