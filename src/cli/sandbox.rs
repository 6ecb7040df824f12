//! `dropkey sandbox`: runs the embedded ImageKit/Cloudinary-compatible server in the foreground
//! until SIGINT or SIGTERM. Its first stdout line says where it listens and the account values
//! a client needs; request logs go to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{output, Context};
use crate::Error;
use dropkey_core::config::{Provider, SANDBOX_PROFILE, SANDBOX_PUBLIC_KEY};
use dropkey_sandbox::{self as sandbox, Faults, SandboxConfig, SandboxError};

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on (default: the config's [sandbox] listen, 127.0.0.1:7371); port 0
    /// picks a free port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Probability from 0 to 1 that an upload gets an injected fault (500, 503, 429/420,
    /// a reset connection or a stalled body).
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    fail_rate: f64,
    /// Milliseconds added before every upload response.
    #[arg(long, value_name = "N", default_value_t = 0)]
    latency_ms: u64,
    /// Seed for the fault decisions, to make a run reproducible.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Largest accepted file in bytes (default 5 GiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    max_file_size: Option<u64>,
    /// For benchmarks of clients: accept uploads after every check but keep none of their
    /// bytes (stored files are empty; the ledger's sha256 is "").
    #[arg(long)]
    discard: bool,
    /// Storage directory (default: <data dir>/sandbox).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a probability: use a number from 0 to 1, e.g. 0.2"
        )),
    }
}

pub async fn run(ctx: &Context, args: &SandboxArgs) -> Result<(), Error> {
    let profile = ctx.profile(SANDBOX_PROFILE)?.clone();
    // The keychain answers over D-Bus, synchronously: keep it off the async threads.
    let secrets = ctx.secrets.clone();
    let lookup = profile.clone();
    let (secret, _) = tokio::task::spawn_blocking(move || secrets.get(&lookup))
        .await
        .map_err(|err| SandboxError::Runtime(std::io::Error::other(err.to_string())))??;
    let public_key = match &profile.provider {
        Provider::ImageKit(ik) => ik.public_key.clone(),
        Provider::Cloudinary(_) => SANDBOX_PUBLIC_KEY.to_owned(),
    };
    let listen = args.listen.unwrap_or(ctx.config.sandbox.listen);
    let root = args
        .root
        .clone()
        .unwrap_or_else(|| ctx.paths.data_dir.join("sandbox"));
    let mut config = SandboxConfig::builtin(listen, root.clone(), secret);
    config.imagekit.public_key = public_key.clone();
    config.faults = Faults {
        fail_rate: args.fail_rate,
        latency_ms: args.latency_ms,
        seed: args.seed,
    };
    if let Some(max) = args.max_file_size {
        config.max_file_size = max;
    }
    config.discard = args.discard;
    let cloudinary = config.cloudinary.clone();
    let handle = sandbox::start(config).await?;
    let base = handle.base_url();
    output::json_line(&json!({
        "listen": handle.addr().to_string(),
        "imagekit": {
            "publicKey": public_key,
            "urlEndpoint": format!("{base}{}", sandbox::IMAGEKIT_URL_PATH),
            "uploadUrl": format!("{base}/api/v2/files/upload"),
            "apiUrl": base,
        },
        "cloudinary": {
            "cloud_name": cloudinary.cloud_name,
            "api_key": cloudinary.api_key,
            "api_url": base,
        },
        "root": root.display().to_string(),
        "ledger": handle.ledger_path().display().to_string(),
    }));
    let stopped = stop_signal().await;
    tracing::info!("stopping the sandbox");
    handle.shutdown().await;
    stopped.map_err(|err| SandboxError::Signal(err).into())
}

/// Waits for SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
