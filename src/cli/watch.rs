//! `dropkey watch`: the configured watches (or one ad-hoc), until SIGINT/SIGTERM. One JSON line
//! per finished upload on stdout, as `upload` prints them; watch status on stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{output, Context};
use crate::Error;
use dropkey_core::config::Watch;
use dropkey_core::engine::{Engine, EngineSettings, Event};
use dropkey_core::watch::Watcher;

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// With DIR: watch DIR with this profile instead of the configured watches.
    #[arg(requires = "dir")]
    profile: Option<String>,
    /// The folder to watch.
    dir: Option<PathBuf>,
    /// Uploads in flight at once (1 to 64).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: Option<u16>,
}

pub async fn run(ctx: Context, args: &WatchArgs) -> Result<(), Error> {
    let watches =
        match (&args.profile, &args.dir) {
            (Some(profile), Some(dir)) => {
                ctx.profile(profile)?;
                if !dir.is_dir() {
                    return Err(Error::Usage(format!(
                        "{} is not a folder: pass an existing directory to watch",
                        dir.display()
                    )));
                }
                let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                vec![Watch::ad_hoc(dir, profile)]
            }
            _ if ctx.config.watches.is_empty() => return Err(Error::Usage(
                "no [[watch]] entries in the config: add one, or run `dropkey watch PROFILE DIR`"
                    .into(),
            )),
            _ => ctx.config.watches.clone(),
        };
    let _sandbox = ctx
        .local_sandbox_for(watches.iter().map(|w| w.profile.as_str()))
        .await?;
    let mut settings = EngineSettings::new(&ctx.paths.data_dir, &ctx.config.upload);
    if let Some(n) = args.concurrency {
        settings.concurrency = n as usize;
    }
    let engine = Engine::start(ctx.config.clone(), ctx.secrets.clone(), settings)?;
    let mut events = engine.subscribe();
    let watcher = Watcher::start(engine.clone(), watches);
    let mut last_status = Vec::new();
    let mut status_tick = tokio::time::interval(Duration::from_millis(500));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            event = events.recv() => match event {
                Ok(Event::Finished(finished)) => {
                    let path = finished.path.to_string_lossy();
                    output::json_line(&super::upload::finished_line(&path, &finished));
                }
                Ok(Event::Offline { hosts }) if !hosts.is_empty() => {
                    if let Some(offline) = engine.offline() {
                        let _ = writeln!(std::io::stderr(), "{}", offline.line());
                    }
                }
                Ok(Event::Online { origin, offline_ms }) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "online — {origin} answers again after {} s; uploads go on",
                        offline_ms / 1000
                    );
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("{n} engine events were dropped; `dropkey history` has every upload");
                }
                Err(_) => break,
            },
            _ = status_tick.tick() => {
                let status: Vec<_> = watcher.infos().into_iter().map(|i| (i.path, i.status)).collect();
                if status != last_status {
                    for (path, state) in &status {
                        let _ = writeln!(std::io::stderr(), "watch {}: {}", path.display(), describe(state));
                    }
                    last_status = status;
                }
            }
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "stopping: in-flight uploads go back to the queue"
    );
    watcher.shutdown().await;
    engine.shutdown().await;
    Ok(())
}

fn describe(status: &dropkey_core::watch::WatchStatus) -> String {
    use dropkey_core::watch::WatchStatus::*;
    match status {
        Starting => "starting".into(),
        Watching => "watching".into(),
        Paused => "paused".into(),
        Missing(why) => format!("missing: {why}"),
        Error(why) => format!("error: {why}"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
