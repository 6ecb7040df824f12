//! `dropkey upload`, `resume`, `delete`, `history` and `verify`: the engine and the provider's
//! file APIs, one JSON line per file on stdout, progress bars on stderr when it is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::{output, Context};
use crate::config::{Profile, Provider};
use crate::engine::provider::{self, RemoteFile};
use crate::engine::{Engine, EngineSettings, Event, Finished, JobId, JobState};
use crate::profile::parse_params;
use crate::Error;

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Profile name from the config (`sandbox` is built in).
    profile: String,
    /// Files to upload.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Remote folder, instead of the profile's.
    #[arg(long, value_name = "F")]
    folder: Option<String>,
    /// A tag, instead of the profile's tags (repeatable).
    #[arg(long = "tag", value_name = "T")]
    tags: Vec<String>,
    /// Any other documented upload parameter, e.g. --param isPrivateFile=true (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Uploads in flight at once (1 to 64, default 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: Option<u16>,
    /// Seconds each file keeps trying through outages and transient errors (default 600).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    max_wait: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Uploads in flight at once (1 to 64, default 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: Option<u16>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Profile name from the config.
    profile: String,
    /// ImageKit file ids or URLs; Cloudinary public ids or delivery URLs.
    #[arg(required = true, value_name = "ID_OR_URL")]
    targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many uploads to list (newest first).
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only uploads finished at or after this Unix time.
    #[arg(long, value_name = "T")]
    since: Option<i64>,
}

fn settings(ctx: &Context, concurrency: Option<u16>) -> EngineSettings {
    let mut settings = EngineSettings::new(&ctx.paths.data_dir, &ctx.config.upload);
    if let Some(n) = concurrency {
        settings.concurrency = n as usize;
    }
    settings
}

fn finished_line(path: &str, finished: &Finished) -> Value {
    match (&finished.state, &finished.uploaded) {
        (JobState::Done, Some(up)) => json!({
            "path": path, "ok": true, "url": up.url, "id": up.id, "response": up.response,
        }),
        _ => json!({
            "path": path,
            "ok": false,
            "error": finished.error.clone().unwrap_or_else(|| finished.state.as_str().to_owned()),
        }),
    }
}

pub async fn upload(ctx: Context, args: &UploadArgs) -> Result<(), Error> {
    let profile = ctx.profile(&args.profile)?.clone();
    let mut overrides = parse_params(&args.params)?;
    if let Some(folder) = &args.folder {
        if overrides.insert("folder".into(), folder.clone()).is_some() {
            return Err(Error::Usage(
                "give the folder once: --folder or --param folder=..., not both".into(),
            ));
        }
    }
    if !args.tags.is_empty() {
        if let Some(bad) = args
            .tags
            .iter()
            .find(|t| t.trim().is_empty() || t.contains(','))
        {
            return Err(Error::Usage(format!(
                "tag `{bad}` is empty or contains a comma: give each tag with its own --tag"
            )));
        }
        if overrides
            .insert("tags".into(), args.tags.join(","))
            .is_some()
        {
            return Err(Error::Usage(
                "give tags once: --tag or --param tags=..., not both".into(),
            ));
        }
    }
    let _sandbox = ctx
        .local_sandbox_for(std::iter::once(profile.name.as_str()))
        .await?;
    let mut settings = settings(&ctx, args.concurrency);
    // Someone (or a script) waits for this command: a bounded budget, not the day that
    // unattended jobs get.
    settings.retry.give_up_after = args
        .max_wait
        .map(std::time::Duration::from_secs)
        .unwrap_or(crate::engine::retry::ATTENDED_BUDGET);
    let engine = Engine::start(ctx.config.clone(), ctx.secrets.clone(), settings)?;
    let total = args.files.len();
    let mut failed = 0;
    let mut jobs = Vec::new();
    let mut shown: HashMap<usize, String> = HashMap::new();
    for path in &args.files {
        let shown_path = path.to_string_lossy().into_owned();
        // Jobs hold absolute paths, so `resume` from another directory finds the files.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        match engine.prepare(&profile, &absolute, &overrides, "cli") {
            Ok(job) => {
                shown.insert(jobs.len(), shown_path);
                jobs.push(job);
            }
            // A bad parameter is the same for every file: a usage error, not a failed file.
            Err(crate::engine::EngineError::Param(err)) => {
                engine.shutdown().await;
                return Err(err.into());
            }
            Err(err) => {
                failed += 1;
                output::json_line(
                    &json!({"path": shown_path, "ok": false, "error": err.to_string()}),
                );
            }
        }
    }
    let events = engine.subscribe();
    let ids = engine.enqueue(&jobs)?;
    let names: HashMap<JobId, String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, shown.remove(&i).unwrap_or_default()))
        .collect();
    let mut bars = Bars::new(&engine, &ids);
    let results = engine
        .wait_for(events, &ids, |event| bars.on_event(event))
        .await;
    bars.finish();
    for finished in &results {
        let shown_path = names
            .get(&finished.job)
            .cloned()
            .unwrap_or_else(|| finished.path.display().to_string());
        if finished.state != JobState::Done {
            failed += 1;
        }
        output::json_line(&finished_line(&shown_path, finished));
    }
    engine.shutdown().await;
    if failed > 0 {
        return Err(Error::SomeFailed {
            failed,
            total,
            what: "uploads",
        });
    }
    Ok(())
}

pub async fn resume(ctx: Context, args: &ResumeArgs) -> Result<(), Error> {
    let _sandbox = ctx
        .local_sandbox_for(std::iter::once(crate::config::SANDBOX_PROFILE))
        .await?;
    let engine = Engine::start(
        ctx.config.clone(),
        ctx.secrets.clone(),
        settings(&ctx, args.concurrency),
    )?;
    let events = engine.subscribe();
    let ids = engine.unfinished()?;
    if ids.is_empty() {
        tracing::info!("nothing to resume");
    }
    let mut bars = Bars::new(&engine, &ids);
    let results = engine
        .wait_for(events, &ids, |event| bars.on_event(event))
        .await;
    bars.finish();
    let mut failed = 0;
    for finished in &results {
        if finished.state != JobState::Done {
            failed += 1;
        }
        output::json_line(&finished_line(
            &finished.path.display().to_string(),
            finished,
        ));
    }
    engine.shutdown().await;
    if failed > 0 {
        return Err(Error::SomeFailed {
            failed,
            total: results.len(),
            what: "uploads",
        });
    }
    Ok(())
}

pub fn history(ctx: Context, args: &HistoryArgs) -> Result<(), Error> {
    let store = crate::engine::store::Store::open(&ctx.paths.data_dir)
        .map_err(crate::engine::EngineError::from)?;
    for record in store
        .history(args.limit, None)
        .map_err(crate::engine::EngineError::from)?
    {
        output::json_line(&json!({
            "job": record.id,
            "path": record.path,
            "profile": record.profile,
            "id": record.remote_id,
            "url": record.url,
            "size": record.size,
            "finished_at": record.finished_at,
        }));
    }
    Ok(())
}

/// Cloudinary's resource type and delivery type of an uploaded file, from its stored response.
fn cloudinary_kind(response: Option<&Value>, profile: &Profile) -> (String, String) {
    let field = |name: &str| {
        response
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let private = matches!(&profile.provider, Provider::Cloudinary(cl) if cl.private);
    (
        field("resource_type").unwrap_or_else(|| "image".into()),
        field("type").unwrap_or_else(|| {
            if private {
                "private".into()
            } else {
                "upload".into()
            }
        }),
    )
}

pub async fn verify(ctx: Context, args: &VerifyArgs) -> Result<(), Error> {
    let _sandbox = ctx
        .local_sandbox_for(std::iter::once(crate::config::SANDBOX_PROFILE))
        .await?;
    let store = crate::engine::store::Store::open(&ctx.paths.data_dir)
        .map_err(crate::engine::EngineError::from)?;
    let records = store
        .history(usize::MAX >> 1, args.since)
        .map_err(crate::engine::EngineError::from)?;
    let http = reqwest::Client::new();
    let mut problems = 0;
    let mut secrets = HashMap::new();
    for record in &records {
        let problem = match ctx.config.profile(&record.profile) {
            None => Some(format!(
                "profile `{}` is no longer configured",
                record.profile
            )),
            Some(profile) => {
                let secret = match secrets.get(&profile.name) {
                    Some(secret) => secret,
                    None => {
                        let (secret, _) = ctx.secrets.get(profile)?;
                        secrets.entry(profile.name.clone()).or_insert(secret)
                    }
                };
                let (resource_type, delivery) = cloudinary_kind(record.response.as_ref(), profile);
                let id = record.remote_id.clone().unwrap_or_default();
                match provider::details(&http, profile, secret, &id, &resource_type, &delivery)
                    .await
                {
                    Ok(RemoteFile::Present { size: Some(size) }) if size != record.size => {
                        Some(format!(
                            "size is {size} bytes at the provider, {} locally",
                            record.size
                        ))
                    }
                    Ok(RemoteFile::Present { .. }) => None,
                    Ok(RemoteFile::Missing) => Some("missing at the provider".into()),
                    Err(failure) => Some(format!("could not check: {}", failure.reason())),
                }
            }
        };
        if let Some(problem) = problem {
            problems += 1;
            output::json_line(&json!({
                "job": record.id, "path": record.path, "id": record.remote_id,
                "url": record.url, "ok": false, "problem": problem,
            }));
        }
    }
    tracing::info!(
        "verified {} upload(s), {problems} problem(s)",
        records.len()
    );
    if problems > 0 {
        return Err(Error::SomeFailed {
            failed: problems,
            total: records.len(),
            what: "verifications",
        });
    }
    Ok(())
}

/// What `delete` acts on, resolved from an id or a URL.
#[derive(Debug, PartialEq, Eq)]
struct DeleteTarget {
    id: String,
    resource_type: String,
    delivery_type: String,
}

/// Resolves a Cloudinary delivery URL strictly (after doc 004); the rules live in
/// [`crate::profile::cloudinary_asset`], shared with `dropkey serve`'s `DELETE /delete-files`.
fn cloudinary_target(target: &str, profile: &Profile) -> Result<DeleteTarget, String> {
    crate::profile::cloudinary_asset(target, profile)
        .map(|asset| DeleteTarget {
            id: asset.public_id,
            resource_type: asset.resource_type,
            delivery_type: asset.delivery_type,
        })
        .map_err(|err| err.to_string())
}

pub async fn delete(ctx: Context, args: &DeleteArgs) -> Result<(), Error> {
    let profile = ctx.profile(&args.profile)?.clone();
    let _sandbox = ctx
        .local_sandbox_for(std::iter::once(profile.name.as_str()))
        .await?;
    let (secret, _) = ctx.secrets.get(&profile)?;
    let mut store = crate::engine::store::Store::open(&ctx.paths.data_dir)
        .map_err(crate::engine::EngineError::from)?;
    let http = reqwest::Client::new();
    let clock = crate::engine::clock::SkewClock::default();
    let mut failed = 0;
    for target in &args.targets {
        let known = store.find_done(&profile.name, target).ok().flatten();
        let resolved: Result<DeleteTarget, String> = match &profile.provider {
            Provider::ImageKit(ik) => {
                if target.contains("://") {
                    let endpoint = ik.url_endpoint.as_str().trim_end_matches('/');
                    if !target.starts_with(&format!("{endpoint}/")) {
                        Err(format!(
                            "the URL is not under this profile's url_endpoint {endpoint}"
                        ))
                    } else {
                        match &known {
                            Some(record) => Ok(DeleteTarget { id: record.remote_id.clone().unwrap_or_default(), resource_type: String::new(), delivery_type: String::new() }),
                            None => Err("this URL is not in Dropkey's upload history, so its file id is unknown: pass the fileId instead".into()),
                        }
                    }
                } else if !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    Ok(DeleteTarget {
                        id: target.clone(),
                        resource_type: String::new(),
                        delivery_type: String::new(),
                    })
                } else {
                    Err(format!(
                        "`{target}` is neither an ImageKit file id nor a URL"
                    ))
                }
            }
            Provider::Cloudinary(_) => {
                if target.contains("://") {
                    cloudinary_target(target, &profile)
                } else if !target.is_empty()
                    && !target
                        .split('/')
                        .any(|s| s.is_empty() || s == "." || s == "..")
                {
                    let (resource_type, delivery_type) =
                        cloudinary_kind(known.as_ref().and_then(|r| r.response.as_ref()), &profile);
                    Ok(DeleteTarget {
                        id: target.clone(),
                        resource_type,
                        delivery_type,
                    })
                } else {
                    Err(format!("`{target}` is not a valid Cloudinary public id"))
                }
            }
        };
        let line = match resolved {
            Err(why) => json!({"target": target, "ok": false, "error": why}),
            Ok(t) => match provider::delete(
                &http,
                &clock,
                &profile,
                &secret,
                &t.id,
                &t.resource_type,
                &t.delivery_type,
            )
            .await
            {
                Ok(existed) => {
                    if let Some(record) = &known {
                        let _ = store.mark_deleted(record.id);
                    }
                    json!({"target": target, "ok": true, "id": t.id, "deleted": existed})
                }
                Err(failure) => {
                    json!({"target": target, "ok": false, "id": t.id, "error": failure.reason()})
                }
            },
        };
        if line["ok"] != true {
            failed += 1;
        }
        output::json_line(&line);
    }
    if failed > 0 {
        return Err(Error::SomeFailed {
            failed,
            total: args.targets.len(),
            what: "deletions",
        });
    }
    Ok(())
}

/// Progress bars on stderr, only when it is a terminal (scripts get clean output), and the
/// "offline" status line on stderr in any case.
struct Bars {
    multi: Option<indicatif::MultiProgress>,
    bars: HashMap<JobId, indicatif::ProgressBar>,
    pending: usize,
}

impl Bars {
    fn new(engine: &Engine, ids: &[JobId]) -> Self {
        if !std::io::stderr().is_terminal() || ids.is_empty() {
            return Self {
                multi: None,
                bars: HashMap::new(),
                pending: ids.len(),
            };
        }
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {wide_msg} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let mut bars = HashMap::new();
        for id in ids {
            if let Ok(job) = engine.job(*id) {
                let bar = multi.add(indicatif::ProgressBar::new(job.size));
                bar.set_style(style.clone());
                bar.set_message(job.file_name.clone());
                bars.insert(*id, bar);
            }
        }
        Self {
            multi: Some(multi),
            bars,
            pending: ids.len(),
        }
    }

    fn status_line(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Finished(_) => self.pending = self.pending.saturating_sub(1),
            Event::Offline { hosts } if !hosts.is_empty() => {
                let offline = crate::engine::Offline {
                    waiting: self.pending as u64,
                    next_probe_secs: hosts.iter().map(|h| h.next_probe_secs).min().unwrap_or(0),
                    hosts: hosts.clone(),
                };
                self.status_line(&offline.line());
            }
            Event::Online { origin, offline_ms } => self.status_line(&format!(
                "online — {origin} answers again after {} s; uploads go on",
                offline_ms / 1000
            )),
            _ => {}
        }
        if self.multi.is_none() {
            return;
        }
        match event {
            Event::Progress(p) => {
                if let Some(bar) = self.bars.get(&p.job) {
                    bar.set_position(p.bytes_sent);
                }
            }
            Event::Finished(f) => {
                if let Some(bar) = self.bars.remove(&f.job) {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }

    fn finish(self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(api_url: &str) -> Profile {
        let text = format!(
            "[profiles.cl]\nprovider = \"cloudinary\"\ncloud_name = \"demo\"\napi_key = \"1\"\napi_url = \"{api_url}\"\n"
        );
        crate::config::Config::from_toml(&text, std::path::Path::new("t.toml"))
            .unwrap()
            .profiles["cl"]
            .clone()
    }

    #[test]
    fn cloudinary_urls_are_validated_strictly() {
        let p = profile("https://api.cloudinary.com");
        let ok = cloudinary_target(
            "https://res.cloudinary.com/demo/image/upload/v123/kyc/1/passport.jpg",
            &p,
        )
        .unwrap();
        assert_eq!(
            ok,
            DeleteTarget {
                id: "kyc/1/passport".into(),
                resource_type: "image".into(),
                delivery_type: "upload".into()
            }
        );
        let raw = cloudinary_target(
            "https://res.cloudinary.com/demo/raw/private/v1/docs/a.pdf",
            &p,
        )
        .unwrap();
        assert_eq!(raw.id, "docs/a.pdf");
        for bad in [
            "http://res.cloudinary.com/demo/image/upload/v1/a.jpg",
            "https://evil.com/demo/image/upload/v1/a.jpg",
            "https://res.cloudinary.com/other/image/upload/v1/a.jpg",
            "https://res.cloudinary.com/demo/pdf/upload/v1/a.jpg",
            "https://res.cloudinary.com/demo/image/fetch/v1/a.jpg",
            "https://res.cloudinary.com/demo/image/upload/v1/../a.jpg",
            "https://res.cloudinary.com/demo/image/upload/",
            "not a url",
        ] {
            assert!(cloudinary_target(bad, &p).is_err(), "{bad}");
        }
        let local = profile("http://127.0.0.1:7371");
        assert!(cloudinary_target(
            "http://127.0.0.1:7371/res/demo/image/upload/v5/a.png",
            &local
        )
        .is_ok());
        assert!(cloudinary_target(
            "http://127.0.0.1:9999/res/demo/image/upload/v5/a.png",
            &local
        )
        .is_err());
    }
}
