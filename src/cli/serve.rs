//! `dropkey serve`: runs the token server in the foreground until SIGINT or SIGTERM (its first
//! stdout line says where it listens), and `dropkey serve token add|list|remove` manages the
//! bearer tokens callers present to it.

use std::net::SocketAddr;

use clap::{Args, Subcommand};
use secrecy::ExposeSecret as _;
use serde_json::json;

use super::{output, Context};
use crate::Error;
use dropkey_serve::{self as serve, tokens, ServeConfig, ServeError};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    command: Option<ServeCommand>,
    /// Address to listen on (default: the config's [serve] listen, 127.0.0.1:8787); port 0
    /// picks a free port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum ServeCommand {
    /// Manage the bearer tokens callers present (stored hashed in the data directory).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token called NAME and print it, once: {"name","token"}.
    Add { name: String },
    /// List the tokens' names, creation times and whether the config gives them a policy.
    List,
    /// Remove the token called NAME; a running server stops accepting it within a second.
    Remove { name: String },
}

pub async fn run(ctx: Context, args: &ServeArgs) -> Result<(), Error> {
    match &args.command {
        Some(ServeCommand::Token(command)) => token(&ctx, command),
        None => serve(ctx, args.listen).await,
    }
}

fn token(ctx: &Context, command: &TokenCommand) -> Result<(), Error> {
    let path = tokens::tokens_path(&ctx.paths.data_dir);
    let value = match command {
        TokenCommand::Add { name } => {
            let token = tokens::add(&path, name)?;
            // The one place a bearer token is ever shown: its owner must copy it now.
            json!({ "name": name, "token": token.expose_secret() })
        }
        TokenCommand::List => {
            let list: Vec<_> = tokens::list(&path)?
                .into_iter()
                .map(|t| {
                    let policy = if ctx.config.serve.tokens.contains_key(&t.name) {
                        "config"
                    } else {
                        "default"
                    };
                    json!({ "name": t.name, "created": t.created, "policy": policy })
                })
                .collect();
            json!({ "tokens": list })
        }
        TokenCommand::Remove { name } => {
            let removed = tokens::remove(&path, name)?;
            json!({ "name": name, "removed": removed })
        }
    };
    output::json_line(&value);
    Ok(())
}

async fn serve(ctx: Context, listen: Option<SocketAddr>) -> Result<(), Error> {
    // The keychain answers over D-Bus, synchronously: keep it off the async threads.
    let Context {
        paths,
        config,
        secrets,
    } = ctx;
    let data_dir = paths.data_dir.clone();
    let mut serve_config = tokio::task::spawn_blocking(move || {
        ServeConfig::from_config(&config, &data_dir, |profile| {
            secrets.get(profile).map(|(secret, _)| secret)
        })
    })
    .await
    .map_err(|err| ServeError::Runtime(std::io::Error::other(err.to_string())))??;
    if let Some(listen) = listen {
        serve_config.settings.listen = listen;
    }
    let names: Vec<String> = serve_config
        .profiles
        .iter()
        .map(|p| p.profile.name.clone())
        .collect();
    // Listen for signals before saying where we listen: whoever reads that line may stop us
    // at once, and must get a graceful shutdown rather than the default SIGTERM death.
    let stop = StopSignal::install().map_err(ServeError::Signal)?;
    let handle = serve::start(serve_config).await?;
    output::json_line(&json!({ "listen": handle.addr().to_string() }));
    tracing::info!("serving profiles {}", names.join(", "));
    stop.wait().await;
    tracing::info!("stopping: letting requests in flight finish");
    handle.shutdown().await;
    Ok(())
}

/// SIGINT (Ctrl-C) and, on Unix, SIGTERM, registered up front.
struct StopSignal {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
