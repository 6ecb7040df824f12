//! The `dropkey` command line. `main` parses, [`run`] dispatches to one function per command;
//! each command returns the JSON it prints. Machine output is JSON on stdout; logs and errors go
//! to stderr, errors as one line that says what went wrong and how to fix it.

mod doctor;

mod key;
mod output;
mod profiles;
mod sandbox;
mod serve;
mod sign;
mod upload;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::Error;
use dropkey_core::config::{Config, Paths, Profile};
use dropkey_core::secrets::Secrets;

#[derive(Debug, Parser)]
#[command(
    name = "dropkey",
    version,
    about = "Signed uploads to ImageKit and Cloudinary, with the private key kept in your keychain"
)]
pub struct Cli {
    /// Config file (default: the platform config dir, e.g. ~/.config/dropkey/config.toml).
    #[arg(long, global = true, env = "DROPKEY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (default: the platform data dir, e.g. ~/.local/share/dropkey).
    #[arg(long, global = true, env = "DROPKEY_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print upload credentials for PROFILE (ImageKit V2 JWT, V1 signature, or Cloudinary params).
    Sign(sign::SignArgs),
    /// Print a short-lived signed link to a private file.
    PrivateUrl(sign::PrivateUrlArgs),
    /// List, add, change or remove profiles in the config file.
    #[command(subcommand)]
    Profile(profiles::ProfileCommand),
    /// Manage a profile's private key in the OS keychain.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Check the keychain service, the config, each profile's secret and the clock.
    Doctor(doctor::DoctorArgs),
    /// Upload files; prints one JSON line per file.
    Upload(upload::UploadArgs),
    /// Finish the uploads an interrupted Dropkey left queued.
    Resume(upload::ResumeArgs),
    /// Delete uploaded files at the provider, by id or URL.
    Delete(upload::DeleteArgs),
    /// List finished uploads, newest first (JSON lines).
    History(upload::HistoryArgs),
    /// Ask the provider whether every uploaded file still exists with the right size.
    Verify(upload::VerifyArgs),
    /// Upload every finished file that appears in the configured (or given) folders.
    Watch(watch::WatchArgs),
    /// Run the local ImageKit/Cloudinary-compatible sandbox server.
    Sandbox(sandbox::SandboxArgs),
    /// Team mode: run the token server (until SIGINT/SIGTERM), or manage its bearer tokens.
    Serve(serve::ServeArgs),
}

/// What every command needs: where things are, the config, and the secret store.
pub(crate) struct Context {
    paths: Paths,
    config: Config,
    secrets: Secrets,
}

impl Context {
    fn load(cli: &Cli) -> Result<Self, Error> {
        Self::open(cli, false)
    }

    /// Like [`Context::load`], but a missing config file (even one the user named) is an empty
    /// one: the file about to be created.
    fn load_creating(cli: &Cli) -> Result<Self, Error> {
        Self::open(cli, true)
    }

    fn open(cli: &Cli, missing_is_empty: bool) -> Result<Self, Error> {
        let paths = Paths::resolve(cli.config.clone(), cli.data_dir.clone())?;
        if let Err(err) = dropkey_core::private_fs::secure_existing(&paths) {
            // Not fatal: the files stay as they were, and the user learns why.
            tracing::warn!(
                "cannot make {} private (mode 0700/0600): {err}",
                paths.data_dir.display()
            );
        }
        let config = if missing_is_empty {
            Config::load(&Paths {
                config_explicit: false,
                ..paths.clone()
            })?
        } else {
            Config::load(&paths)?
        };
        let secrets = Secrets::new(&paths.data_dir);
        Ok(Self {
            paths,
            config,
            secrets,
        })
    }

    /// Starts the local sandbox in this process when one of `profiles` is the built-in sandbox
    /// profile and nothing listens at its address.
    async fn local_sandbox_for<'a>(
        &self,
        profiles: impl Iterator<Item = &'a str>,
    ) -> Result<Option<dropkey_sandbox::SandboxHandle>, Error> {
        dropkey_sandbox::in_process::ensure_for(
            &self.config,
            &self.secrets,
            &self.paths.data_dir,
            profiles,
        )
        .await
        .map_err(Error::from)
    }

    fn profile(&self, name: &str) -> Result<&Profile, Error> {
        self.profile_in(&self.config, name)
    }

    /// `name` in `config` (a config other than the loaded one: just edited).
    fn profile_in<'c>(&self, config: &'c Config, name: &str) -> Result<&'c Profile, Error> {
        config.profile(name).ok_or_else(|| Error::UnknownProfile {
            name: name.to_owned(),
            known: config
                .profiles
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            config: self.paths.config_file.display().to_string(),
        })
    }
}

/// Entry point of the `dropkey` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return output::clap_error(&err),
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            output::error_line(&Error::Usage(format!(
                "cannot start the async runtime: {err}"
            )));
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::error_line(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

async fn run(cli: &Cli) -> Result<(), Error> {
    let value = match &cli.command {
        // Doctor reports a broken config instead of stopping at it, so it loads on its own.
        Command::Doctor(args) => return doctor::run(cli, args),
        Command::Sign(args) => sign::sign(&Context::load(cli)?, args)?,
        Command::PrivateUrl(args) => sign::private_url(&Context::load(cli)?, args)?,
        Command::Key(cmd) => key::run(&Context::load(cli)?, cmd)?,
        // `profile set` may create the config file, also one named with --config.
        Command::Profile(cmd) => profiles::run(&Context::load_creating(cli)?, cmd).await?,
        // Streaming commands print their own lines.
        Command::Upload(args) => return upload::upload(Context::load(cli)?, args).await,
        Command::Resume(args) => return upload::resume(Context::load(cli)?, args).await,
        Command::Delete(args) => return upload::delete(Context::load(cli)?, args).await,
        Command::History(args) => return upload::history(Context::load(cli)?, args),
        Command::Verify(args) => return upload::verify(Context::load(cli)?, args).await,
        Command::Watch(args) => return watch::run(Context::load(cli)?, args).await,
        Command::Sandbox(args) => return sandbox::run(&Context::load(cli)?, args).await,
        Command::Serve(args) => return serve::run(Context::load(cli)?, args).await,
    };
    output::json_line(&value);
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DROPKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second init (tests calling `main` twice) is harmless, so its error is ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
