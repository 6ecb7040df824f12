//! The `dropkey` command line. `main` parses, [`run`] dispatches to one function per command;
//! each command returns the JSON it prints. Machine output is JSON on stdout; logs and errors go
//! to stderr, errors as one line that says what went wrong and how to fix it.

mod doctor;
mod key;
mod output;
mod sign;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Paths, Profile};
use crate::secrets::Secrets;
use crate::Error;

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
    /// Manage a profile's private key in the OS keychain.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Check the keychain service, the config, each profile's secret and the clock.
    Doctor(doctor::DoctorArgs),
}

/// What every command needs: where things are, the config, and the secret store.
pub(crate) struct Context {
    paths: Paths,
    config: Config,
    secrets: Secrets,
}

impl Context {
    fn load(cli: &Cli) -> Result<Self, Error> {
        let paths = Paths::resolve(cli.config.clone(), cli.data_dir.clone())?;
        let config = Config::load(&paths)?;
        let secrets = Secrets::new(&paths.data_dir);
        Ok(Self {
            paths,
            config,
            secrets,
        })
    }

    fn profile(&self, name: &str) -> Result<&Profile, Error> {
        self.config
            .profile(name)
            .ok_or_else(|| Error::UnknownProfile {
                name: name.to_owned(),
                known: self
                    .config
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
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::error_line(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

fn run(cli: &Cli) -> Result<(), Error> {
    let value = match &cli.command {
        // Doctor reports a broken config instead of stopping at it, so it loads on its own.
        Command::Doctor(args) => return doctor::run(cli, args),
        Command::Sign(args) => sign::sign(&Context::load(cli)?, args)?,
        Command::PrivateUrl(args) => sign::private_url(&Context::load(cli)?, args)?,
        Command::Key(cmd) => key::run(&Context::load(cli)?, cmd)?,
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
