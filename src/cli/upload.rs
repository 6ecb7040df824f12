//! `dropkey upload`, `resume`, `delete`, `history` and `verify`: the engine and the provider's
//! file APIs, one JSON line per file on stdout, progress bars on stderr when it is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::ops::ControlFlow;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::{output, Context};
use crate::Error;
use dropkey_core::config::{MetadataPolicy, OnDuplicate, Profile, Resize};
use dropkey_core::engine::provider::{self, RemoteFile};
use dropkey_core::engine::store::{HistoryKind, HistoryQuery};
use dropkey_core::engine::uploaded::{self, cloudinary_kind, RemoteAsset, UploadedError};
use dropkey_core::engine::{
    Engine, EngineSettings, Event, Finished, JobId, JobSource, JobState, NewJob,
};
use dropkey_core::inputs::{self, Found};
use dropkey_core::profile::parse_params;
use tokio::sync::broadcast;

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Profile name from the config (`sandbox` is built in).
    profile: String,
    /// Files to upload (with -r, also folders).
    #[arg(value_name = "FILE", required_unless_present = "files_from")]
    files: Vec<PathBuf>,
    /// Also upload the files listed in FILE, one path per line; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    files_from: Option<PathBuf>,
    /// Upload every file in the folders given or listed, recursively (hidden and temp files
    /// and symlinks inside them are skipped); without it a folder is an error.
    #[arg(short = 'r', long)]
    recursive: bool,
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
    /// What to remove from the files' metadata before sending them, instead of the profile's
    /// setting (default strip-location). The files on disk are never changed.
    #[arg(long, value_name = "POLICY", value_parser = ["keep", "strip-location", "strip-private", "strip-all"])]
    metadata: Option<String>,
    /// What to do with a file whose content this profile already uploaded with the same folder, tags and parameters,
    /// instead of the profile's setting (default skip: print the earlier upload with
    /// "duplicate_of"; ask skips too, as the CLI cannot ask).
    #[arg(long, value_name = "ACTION", value_parser = ["skip", "upload", "ask"])]
    on_duplicate: Option<String>,
    /// Scale JPEG and PNG images larger than PX on their long side down to PX before sending
    /// (re-encoded; 0 turns off the profile's max_dimension). The files on disk are never changed.
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(0..=65_535))]
    max_dimension: Option<u32>,
    /// JPEG quality of resized images, 1 to 100 (default: the profile's, else 85).
    #[arg(long, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: Option<u8>,
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
    /// How many of the newest uploads to skip first (with --limit, pages through history).
    #[arg(long, value_name = "M", default_value_t = 0)]
    offset: usize,
    /// Only uploads matching every word (any order; each word a prefix of a word in the name,
    /// folder, profile, URL, tags or path).
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Only uploads to this profile.
    #[arg(long, value_name = "P")]
    profile: Option<String>,
    /// Only images, other files, or private files.
    #[arg(long, value_name = "KIND", default_value = "all", value_parser = parse_kind)]
    kind: HistoryKind,
}

fn parse_kind(text: &str) -> Result<HistoryKind, String> {
    HistoryKind::parse(text)
        .ok_or_else(|| format!("unknown kind {text:?}: use all, images, other or private"))
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

/// The line `upload`, `resume` and `watch` print for a finished file.
pub(super) fn finished_line(path: &str, finished: &Finished) -> Value {
    match (&finished.state, &finished.uploaded) {
        (JobState::Done, Some(up)) => {
            let mut line = json!({
                "path": path, "ok": true, "url": up.url, "id": up.id, "response": up.response,
            });
            if let Some(sent) = &up.sent {
                if let Some(earlier) = sent.duplicate_of {
                    line["duplicate_of"] = json!({
                        "job": earlier.job, "uploaded_at": earlier.uploaded_at,
                    });
                }
                if !sent.metadata.is_empty() {
                    line["metadata"] = json!(sent.metadata);
                }
            }
            line
        }
        _ => json!({
            "path": path,
            "ok": false,
            "error": finished.error.clone().unwrap_or_else(|| finished.state.as_str().to_owned()),
        }),
    }
}

pub async fn upload(ctx: Context, args: &UploadArgs) -> Result<(), Error> {
    let mut profile = ctx.profile(&args.profile)?.clone();
    // clap has checked the values: a failed parse cannot happen, and would keep the profile's.
    if let Some(policy) = args.metadata.as_deref().and_then(MetadataPolicy::parse) {
        profile.metadata = policy;
    }
    if let Some(action) = args.on_duplicate.as_deref().and_then(OnDuplicate::parse) {
        profile.on_duplicate = action;
    }
    profile.resize = match (args.max_dimension, args.quality) {
        (Some(0), _) => None,
        (Some(px), _) if px < 16 => {
            return Err(Error::Usage(format!(
                "--max-dimension {px} is too small: give 16 pixels or more, or 0 to turn resizing off"
            )));
        }
        (Some(px), quality) => Some(Resize {
            max_dimension: px,
            quality: quality
                .or(profile.resize.map(|r| r.quality))
                .unwrap_or(Resize::DEFAULT_QUALITY),
        }),
        (None, Some(quality)) => match profile.resize {
            Some(resize) => Some(Resize { quality, ..resize }),
            None => {
                return Err(Error::Usage(
                    "--quality is for resized images: add --max-dimension PX (or set max_dimension in the profile)".into(),
                ))
            }
        },
        (None, None) => profile.resize,
    };
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
        .unwrap_or(dropkey_core::engine::retry::ATTENDED_BUDGET);
    let engine = Engine::start(ctx.config.clone(), ctx.secrets.clone(), settings)?;
    let mut events = engine.subscribe();
    let (work_tx, mut work) = tokio::sync::mpsc::channel(2);
    {
        let engine = engine.clone();
        let files = args.files.clone();
        let files_from = args.files_from.clone();
        let recursive = args.recursive;
        // Not awaited: on an error it may sit in a blocking read of stdin; dropping `work`
        // ends it at its next send, and the process exits anyway.
        tokio::task::spawn_blocking(move || {
            produce(
                &engine,
                &profile,
                &overrides,
                &files,
                files_from.as_deref(),
                recursive,
                &work_tx,
            )
        });
    }
    let mut tracker = Tracker::new(&engine);
    let mut total = 0;
    let mut inputs_done = false;
    let outcome = loop {
        if inputs_done && tracker.outstanding == 0 {
            break Ok(());
        }
        // Only a window of this run's jobs is queued and unfinished at once, so the names kept
        // for printing stay flat however many files the inputs name.
        let room = !inputs_done && tracker.outstanding < WINDOW;
        tokio::select! {
            biased;
            event = events.recv() => match event {
                Ok(event) => tracker.on_event(&event),
                Err(broadcast::error::RecvError::Lagged(_)) => tracker.catch_up(),
                Err(broadcast::error::RecvError::Closed) => break Ok(()),
            },
            item = work.recv(), if room => match item {
                None => inputs_done = true,
                Some(Work::Batch(batch)) => {
                    let (jobs, names): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    match engine.enqueue(&jobs) {
                        Ok(ids) => {
                            total += ids.len();
                            tracker.add(ids, names);
                        }
                        Err(err) => break Err(Error::from(err)),
                    }
                }
                Some(Work::Failed { path, error }) => {
                    total += 1;
                    tracker.failed += 1;
                    output::json_line(&json!({"path": path, "ok": false, "error": error}));
                }
                Some(Work::Fatal(err)) => break Err(err),
            },
        }
    };
    drop(work);
    let failed = tracker.finish();
    engine.shutdown().await;
    outcome?;
    if failed > 0 {
        return Err(Error::SomeFailed {
            failed,
            total,
            what: "uploads",
        });
    }
    Ok(())
}

/// Jobs per store transaction, and per message from the input walker.
const BATCH: usize = 1_000;
/// How many of this run's jobs may be queued and unfinished at once.
const WINDOW: usize = 2 * BATCH;
/// A batch that is not full goes out after this long, so a slow `--files-from` producer
/// (`find` on a network share) starts uploads without waiting for a thousand paths.
const BATCH_AGE: std::time::Duration = std::time::Duration::from_millis(200);

/// What the input walker hands the upload loop.
enum Work {
    /// Files that passed their pre-check, with the names to print for them.
    Batch(Vec<(NewJob, String)>),
    /// A file that failed its pre-check (or a folder that could not be listed).
    Failed { path: String, error: String },
    /// An error that ends the command (a bad parameter, an unreadable --files-from).
    Fatal(Error),
}

/// Walks the inputs on a blocking thread, pre-checks each file and sends batches; the bounded
/// channel makes it wait while the upload loop has a full window.
fn produce(
    engine: &Engine,
    profile: &Profile,
    overrides: &dropkey_core::sign::Params,
    files: &[PathBuf],
    files_from: Option<&std::path::Path>,
    recursive: bool,
    tx: &tokio::sync::mpsc::Sender<Work>,
) {
    let send = |work: Work| match tx.blocking_send(work) {
        Ok(()) => ControlFlow::Continue(()),
        // The upload loop stopped (an error): no one wants the rest.
        Err(_) => ControlFlow::Break(()),
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut started = std::time::Instant::now();
    let walked = inputs::walk_inputs(files, files_from, recursive, &mut |found| match found {
        Found::Unlisted { path, why } => send(Work::Failed {
            path: path.display().to_string(),
            error: why,
        }),
        Found::File(path) => {
            let shown = path.to_string_lossy().into_owned();
            // Jobs hold absolute paths, so `resume` from another directory finds the files.
            let absolute = std::path::absolute(&path).unwrap_or(path);
            match engine.prepare(profile, &absolute, overrides, JobSource::Cli) {
                Ok(job) => {
                    if batch.is_empty() {
                        started = std::time::Instant::now();
                    }
                    batch.push((job, shown));
                    if batch.len() >= BATCH || started.elapsed() >= BATCH_AGE {
                        send(Work::Batch(std::mem::replace(
                            &mut batch,
                            Vec::with_capacity(BATCH),
                        )))
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                // A bad parameter is the same for every file: a usage error, not a failed file.
                Err(dropkey_core::engine::EngineError::Param(err)) => {
                    let _ = send(Work::Fatal(err.into()));
                    ControlFlow::Break(())
                }
                Err(err) => send(Work::Failed {
                    path: shown,
                    error: err.to_string(),
                }),
            }
        }
    });
    let last = match walked {
        Err(err) => Work::Fatal(Error::Usage(err.to_string())),
        Ok(()) if batch.is_empty() => return,
        Ok(()) => Work::Batch(batch),
    };
    let _ = tx.blocking_send(last);
}

/// The jobs of this run that are queued and not yet reported, by batch: their ids (ascending,
/// as the store gave them) and the names to print. Each finished job is printed once, as it
/// finishes, and forgotten with its batch.
struct Tracker {
    engine: Engine,
    batches: std::collections::VecDeque<TrackedBatch>,
    outstanding: usize,
    failed: usize,
    bars: Bars,
}

struct TrackedBatch {
    ids: Vec<JobId>,
    /// `None` once printed.
    names: Vec<Option<String>>,
    left: usize,
}

impl Tracker {
    fn new(engine: &Engine) -> Self {
        Self {
            engine: engine.clone(),
            batches: std::collections::VecDeque::new(),
            outstanding: 0,
            failed: 0,
            bars: Bars::new(),
        }
    }

    fn add(&mut self, ids: Vec<JobId>, names: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        self.outstanding += ids.len();
        self.batches.push_back(TrackedBatch {
            left: ids.len(),
            ids,
            names: names.into_iter().map(Some).collect(),
        });
    }

    /// Where `id` is among the unreported jobs.
    fn find(&self, id: JobId) -> Option<(usize, usize)> {
        self.batches.iter().enumerate().find_map(|(b, batch)| {
            let i = batch.ids.binary_search(&id).ok()?;
            batch.names[i].is_some().then_some((b, i))
        })
    }

    /// Prints how a job of this run ended, once.
    fn report(&mut self, finished: &Finished) {
        let Some((b, i)) = self.find(finished.job) else {
            return;
        };
        let Some(name) = self.batches[b].names[i].take() else {
            return;
        };
        self.batches[b].left -= 1;
        self.outstanding -= 1;
        while self.batches.front().is_some_and(|batch| batch.left == 0) {
            self.batches.pop_front();
        }
        if finished.state != JobState::Done {
            self.failed += 1;
        }
        output::json_line(&finished_line(&name, finished));
    }

    fn on_event(&mut self, event: &Event) {
        match event.job() {
            // Engine-wide news (offline, online) is for every waiter.
            None => self.bars.on_event(&self.engine, event, self.outstanding),
            Some(id) if self.find(id).is_some() => {
                self.bars.on_event(&self.engine, event, self.outstanding);
                if let Event::Finished(finished) = event {
                    self.report(finished);
                }
            }
            Some(_) => {}
        }
    }

    /// After missed events: the store knows how each job ended.
    fn catch_up(&mut self) {
        let unreported: Vec<JobId> = self
            .batches
            .iter()
            .flat_map(|b| {
                b.ids
                    .iter()
                    .zip(&b.names)
                    .filter(|(_, name)| name.is_some())
                    .map(|(id, _)| *id)
            })
            .collect();
        for id in unreported {
            let Ok(record) = self.engine.job(id) else {
                continue;
            };
            if record.state.is_terminal() {
                let finished = dropkey_core::engine::finished_from(&record);
                self.bars.on_event(
                    &self.engine,
                    &Event::Finished(finished.clone()),
                    self.outstanding,
                );
                self.report(&finished);
            }
        }
    }

    /// Clears the progress bars; returns how many jobs failed.
    fn finish(self) -> usize {
        self.bars.finish();
        self.failed
    }
}

/// The ids `resume` still has to report, one bit each from the lowest: flat enough for a
/// million jobs (125 KiB), and unlike a list of events it survives missed ones.
#[derive(Default)]
struct IdSet {
    base: i64,
    bits: Vec<u64>,
    len: usize,
}

impl IdSet {
    /// Ids must come in ascending order (as the store pages them).
    fn insert(&mut self, id: JobId) {
        if self.bits.is_empty() {
            self.base = id.0;
        }
        let Ok(at) = usize::try_from(id.0 - self.base) else {
            return;
        };
        if at / 64 >= self.bits.len() {
            self.bits.resize(at / 64 + 1, 0);
        }
        if self.bits[at / 64] & (1 << (at % 64)) == 0 {
            self.bits[at / 64] |= 1 << (at % 64);
            self.len += 1;
        }
    }

    fn slot(&self, id: JobId) -> Option<(usize, u64)> {
        let at = usize::try_from(id.0.checked_sub(self.base)?).ok()?;
        (at / 64 < self.bits.len()).then_some((at / 64, 1 << (at % 64)))
    }

    fn contains(&self, id: JobId) -> bool {
        self.slot(id)
            .is_some_and(|(word, bit)| self.bits[word] & bit != 0)
    }

    /// Whether `id` was there.
    fn remove(&mut self, id: JobId) -> bool {
        match self.slot(id) {
            Some((word, bit)) if self.bits[word] & bit != 0 => {
                self.bits[word] &= !bit;
                self.len -= 1;
                true
            }
            _ => false,
        }
    }
}

pub async fn resume(ctx: Context, args: &ResumeArgs) -> Result<(), Error> {
    let _sandbox = ctx
        .local_sandbox_for(std::iter::once(dropkey_core::config::SANDBOX_PROFILE))
        .await?;
    let mut settings = settings(&ctx, args.concurrency);
    // Held until every job to report is known: one that ended before its page was read would
    // otherwise go unreported.
    settings.start_paused = true;
    let engine = Engine::start(ctx.config.clone(), ctx.secrets.clone(), settings)?;
    let mut events = engine.subscribe();
    let mut bars = Bars::new();
    let mut pending = IdSet::default();
    let mut failed = 0;
    let outcome: Result<usize, Error> = async {
        let mut report = |finished: &Finished| {
            if finished.state != JobState::Done {
                failed += 1;
            }
            output::json_line(&finished_line(
                &finished.path.display().to_string(),
                finished,
            ));
        };
        let up_to = engine.with_store(|store| store.last_job_id())?;
        let mut after = JobId(0);
        loop {
            let page = engine.with_store(|store| store.unfinished_page(after, up_to, BATCH))?;
            for id in &page {
                pending.insert(*id);
            }
            match page.last() {
                Some(last) if page.len() == BATCH => after = *last,
                _ => break,
            }
        }
        let total = pending.len;
        if total == 0 {
            tracing::info!("nothing to resume");
        }
        engine.resume_all();
        while pending.len > 0 {
            match events.recv().await {
                Ok(Event::Finished(finished)) => {
                    if pending.remove(finished.job) {
                        bars.on_event(&engine, &Event::Finished(finished.clone()), pending.len);
                        report(&finished);
                    }
                }
                Ok(event) => {
                    if event.job().is_none_or(|id| pending.contains(id)) {
                        bars.on_event(&engine, &event, pending.len);
                    }
                }
                // Missed events: the store knows how each job ended.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let mut after = JobId(pending.base - 1);
                    loop {
                        let page =
                            engine.with_store(|store| store.ended_page(after, up_to, BATCH))?;
                        for record in &page {
                            if pending.remove(record.id) {
                                let finished = dropkey_core::engine::finished_from(record);
                                bars.on_event(
                                    &engine,
                                    &Event::Finished(finished.clone()),
                                    pending.len,
                                );
                                report(&finished);
                            }
                        }
                        match page.last() {
                            Some(last) if page.len() == BATCH => after = last.id,
                            _ => break,
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        Ok(total)
    }
    .await;
    bars.finish();
    engine.shutdown().await;
    let total = outcome?;
    if failed > 0 {
        return Err(Error::SomeFailed {
            failed,
            total,
            what: "uploads",
        });
    }
    Ok(())
}

pub fn history(ctx: Context, args: &HistoryArgs) -> Result<(), Error> {
    let store = dropkey_core::engine::store::Store::open(&ctx.paths.data_dir)
        .map_err(dropkey_core::engine::EngineError::from)?;
    let query = HistoryQuery {
        text: args.search.clone().unwrap_or_default(),
        profile: args.profile.clone(),
        kind: args.kind,
        limit: args.limit,
        offset: args.offset,
    };
    for record in store
        .history_search(&query)
        .map_err(dropkey_core::engine::EngineError::from)?
        .records
    {
        output::json_line(&json!({
            "job": record.id,
            "path": record.path,
            "profile": record.profile,
            "id": record.remote_id,
            "url": record.url,
            "size": record.sent_size(),
            "sha256": record.sent.as_ref().map(|s| s.sha256.as_str()),
            "finished_at": record.finished_at,
        }));
    }
    Ok(())
}

pub async fn verify(ctx: Context, args: &VerifyArgs) -> Result<(), Error> {
    let _sandbox = ctx
        .local_sandbox_for(std::iter::once(dropkey_core::config::SANDBOX_PROFILE))
        .await?;
    let store = dropkey_core::engine::store::Store::open(&ctx.paths.data_dir)
        .map_err(dropkey_core::engine::EngineError::from)?;
    let http = reqwest::Client::new();
    let mut problems = 0;
    let mut checked = 0;
    let mut secrets = HashMap::new();
    // A page at a time, by id: a million uploads are never all in memory.
    let mut after = JobId(0);
    loop {
        let page = store
            .done_page(after, args.since, BATCH)
            .map_err(dropkey_core::engine::EngineError::from)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        checked += page.len();
        for record in &page {
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
                    let kind = cloudinary_kind(record.response.as_ref(), profile);
                    let id = record.remote_id.clone().unwrap_or_default();
                    match provider::details(
                        &http,
                        profile,
                        secret,
                        &id,
                        kind.resource_type,
                        kind.delivery_type,
                    )
                    .await
                    {
                        // What was sent, after its metadata policy or resizing.
                        Ok(RemoteFile::Present { size: Some(size) })
                            if size != record.sent_size() =>
                        {
                            Some(format!(
                                "size is {size} bytes at the provider, {} sent",
                                record.sent_size()
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
    }
    tracing::info!("verified {checked} upload(s), {problems} problem(s)");
    if problems > 0 {
        return Err(Error::SomeFailed {
            failed: problems,
            total: checked,
            what: "verifications",
        });
    }
    Ok(())
}

pub async fn delete(ctx: Context, args: &DeleteArgs) -> Result<(), Error> {
    let profile = ctx.profile(&args.profile)?.clone();
    let _sandbox = ctx
        .local_sandbox_for(std::iter::once(profile.name.as_str()))
        .await?;
    let (secret, _) = ctx.secrets.get(&profile)?;
    let mut store = dropkey_core::engine::store::Store::open(&ctx.paths.data_dir)
        .map_err(dropkey_core::engine::EngineError::from)?;
    let http = reqwest::Client::new();
    let clock = dropkey_core::engine::clock::SkewClock::default();
    let mut failed = 0;
    for target in &args.targets {
        let known = store.find_done(&profile.name, target).ok().flatten();
        let line = match RemoteAsset::resolve(target, &profile, known.as_ref()) {
            Err(why) => json!({"target": target, "ok": false, "error": why.to_string()}),
            Ok(asset) => {
                let deleted = uploaded::delete(
                    &http,
                    &clock,
                    &profile,
                    &secret,
                    &asset,
                    known.as_ref().map(|record| record.id),
                    |id| store.mark_deleted(id),
                )
                .await;
                match deleted {
                    Ok(existed) => {
                        json!({"target": target, "ok": true, "id": asset.id, "deleted": existed})
                    }
                    // Gone at the provider: the line says so; only the history lags.
                    Err(UploadedError::NotRecorded { existed, source }) => {
                        tracing::warn!(
                            "{target}: deleted, but the history still lists it: {source}"
                        );
                        json!({"target": target, "ok": true, "id": asset.id, "deleted": existed})
                    }
                    Err(err) => {
                        json!({"target": target, "ok": false, "id": asset.id, "error": err.to_string()})
                    }
                }
            }
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
    style: Option<indicatif::ProgressStyle>,
    bars: HashMap<JobId, indicatif::ProgressBar>,
}

impl Bars {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self {
                multi: None,
                style: None,
                bars: HashMap::new(),
            };
        }
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {wide_msg} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        Self {
            multi: Some(indicatif::MultiProgress::new()),
            style: Some(style),
            bars: HashMap::new(),
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

    /// `waiting`: this run's jobs not finished yet. A job gets its bar with its first progress,
    /// so only jobs in flight have one.
    fn on_event(&mut self, engine: &Engine, event: &Event, waiting: usize) {
        match event {
            Event::Offline { hosts } if !hosts.is_empty() => {
                let offline = dropkey_core::engine::Offline {
                    waiting: waiting as u64,
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
                if !self.bars.contains_key(&p.job) {
                    let (Some(multi), Some(style), Ok(job)) =
                        (&self.multi, &self.style, engine.job(p.job))
                    else {
                        return;
                    };
                    let bar = multi.add(indicatif::ProgressBar::new(job.size));
                    bar.set_style(style.clone());
                    bar.set_message(job.file_name.clone());
                    self.bars.insert(p.job, bar);
                }
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
