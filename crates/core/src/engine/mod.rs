//! The upload engine: every way a file leaves the machine (the CLI, the window, a watched
//! folder, the tray) goes through here.
//!
//! - [`store`]: the durable queue and history (SQLite, WAL). A job is recorded before its
//!   upload starts and marked done after the provider acknowledged it.
//! - [`provider`]: one attempt per provider (ImageKit V2/V1, Cloudinary, chunked), signed with a
//!   fresh token each time, the body streamed from disk by [`body`].
//! - [`retry`]: transient vs permanent failures, backoff with full jitter, provider hints.
//! - [`clock`]: the provider's time, learnt from `Date` headers, for signing.
//! - [`job`]: job states and the events front ends consume.
//! - [`uploaded`]: a finished upload at its provider: signed links, deletion.
//!
//! Who owns what: the store owns a job's durable state; the dispatcher (one task) owns claiming
//! queued jobs within the concurrency limit; each running job's task owns its attempts,
//! backoff and the transitions out of `running`; controls (cancel, pause) reach a running job
//! through its cancellation token. Shutdown cancels the dispatcher and every job task and waits
//! for them (`CancellationToken` + `TaskTracker`); interrupted jobs go back to `queued`.

pub mod body;
pub mod clock;
pub mod connection;
pub mod fault;
pub mod identity;
pub mod intake;
pub mod job;
pub mod provider;
pub mod reach;
pub mod retry;
pub mod store;
#[cfg(test)]
mod tests;
pub mod uploaded;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::{broadcast, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, OnDuplicate, Profile};
use crate::metadata;
use crate::profile::{upload_params, ParamError};
use crate::secrets::{SecretError, Secrets};
use crate::sign::Params;
pub use job::{
    DuplicateOf, Event, Finished, IntakeId, JobId, JobSource, JobState, NewJob, Offline,
    OfflineHost, Progress, QueueCounts, Sent, Uploaded,
};
pub use provider::Transfer;
use retry::Failure;
pub use retry::RetryPolicy;
use store::{JobRecord, Store, StoreError};

const EVENT_CAPACITY: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the HTTP client: {0}")]
    Http(String),
    #[error("{}: {why}", path.display())]
    PreCheck { path: PathBuf, why: String },
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Intake(#[from] intake::IntakeError),
    #[error("upload {id} is {}: only failed, stuck, cancelled or paused uploads can be retried", state.as_str())]
    NotRetryable { id: JobId, state: JobState },
    #[error(
        "upload {0} was uploaded, not skipped as a duplicate: there is nothing to upload anyway"
    )]
    NotADuplicate(JobId),
    #[error("profile `{0}` is no longer in the config: add it back to upload with it")]
    ProfileGone(String),
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub data_dir: PathBuf,
    /// Uploads in flight at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub transfer: Transfer,
    /// Progress events per job at most this often.
    pub progress_interval: Duration,
    /// How unreachable hosts are probed.
    pub probe: reach::ProbePolicy,
    /// Largest file accepted, in bytes (the provider plan's limit).
    pub max_file_size: u64,
    /// Start as after [`Engine::pause_all`]: `resume` learns which jobs it reports on before
    /// any of them can end.
    pub start_paused: bool,
}

impl EngineSettings {
    /// The config's `[upload]` table applied to the defaults.
    pub fn new(data_dir: &Path, upload: &crate::config::UploadSettings) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            concurrency: upload.concurrency,
            retry: RetryPolicy {
                give_up_after: upload.give_up_after,
                ..RetryPolicy::default()
            },
            transfer: Transfer {
                chunk_threshold: upload.chunk_threshold,
                chunk_size: upload.chunk_size,
                ..Transfer::default()
            },
            progress_interval: Duration::from_millis(100),
            probe: reach::ProbePolicy::default(),
            max_file_size: upload.max_file_size,
            start_paused: false,
        }
    }
}

/// Why a running job is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancel,
    Pause,
    /// Pause-all or shutdown: back to the queue, not "paused" by the user.
    Requeue,
}

/// Upload slots: `slots` is the limit; `surplus` counts slots that running jobs still hold
/// after the limit went down, withdrawn as they come back.
struct Limit {
    slots: usize,
    surplus: usize,
}

struct Control {
    token: CancellationToken,
    reason: Mutex<Option<Stop>>,
}

struct Shared {
    store: Mutex<Store>,
    /// Swapped whole when Settings edits the config file; a job reads it when it starts.
    config: std::sync::RwLock<Arc<Config>>,
    secrets: Secrets,
    secret_cache: Mutex<HashMap<String, Arc<SecretString>>>,
    http: reqwest::Client,
    clock: clock::SkewClock,
    settings: EngineSettings,
    /// One permit per upload slot; the dispatcher takes one before it claims a job.
    slots: Arc<Semaphore>,
    limit: Mutex<Limit>,
    events: broadcast::Sender<Event>,
    wake: Notify,
    paused_all: tokio::sync::watch::Sender<bool>,
    running: Mutex<HashMap<JobId, Arc<Control>>>,
    /// Queued jobs the user paused: the dispatcher passes them over.
    held: Mutex<HashSet<JobId>>,
    nonce: AtomicU64,
    shutdown: CancellationToken,
    reach: Arc<reach::Reach>,
}

/// A running engine. Cheap to clone; [`Engine::shutdown`] stops it.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    tracker: TaskTracker,
}

impl Shared {
    fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks is a bug already reported by the panic itself;
    // the data (plain maps, a SQLite handle) stays consistent, so carry on with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Engine {
    /// Opens the store, puts jobs interrupted by a crash back in the queue, and starts
    /// dispatching (including those: this is what resumes an interrupted process's work).
    pub fn start(
        config: Config,
        secrets: Secrets,
        settings: EngineSettings,
    ) -> Result<Self, EngineError> {
        let mut store = Store::open(&settings.data_dir)?;
        let requeued = store.requeue_interrupted()?;
        if requeued > 0 {
            tracing::info!("{requeued} upload(s) interrupted earlier are queued again");
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("dropkey/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| EngineError::Http(retry::error_chain(&e)))?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let concurrency = settings.concurrency.max(1);
        let start_paused = settings.start_paused;
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let reach = Arc::new(reach::Reach::new(
            settings.probe.clone(),
            http.clone(),
            events.clone(),
            tracker.clone(),
            shutdown.clone(),
        ));
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            config: std::sync::RwLock::new(Arc::new(config)),
            secrets,
            secret_cache: Mutex::new(HashMap::new()),
            http,
            clock: clock::SkewClock::default(),
            settings,
            slots: Arc::new(Semaphore::new(concurrency)),
            limit: Mutex::new(Limit {
                slots: concurrency,
                surplus: 0,
            }),
            events,
            wake: Notify::new(),
            paused_all: tokio::sync::watch::channel(start_paused).0,
            running: Mutex::new(HashMap::new()),
            held: Mutex::new(HashSet::new()),
            nonce: AtomicU64::new(rand::random::<u32>() as u64),
            shutdown,
            reach,
        });
        tracker.spawn(dispatch(shared.clone(), tracker.clone()));
        Ok(Self { shared, tracker })
    }

    /// Uploads in flight at once, as last set.
    pub fn concurrency(&self) -> usize {
        lock(&self.shared.limit).slots
    }

    /// Changes how many uploads run at once, without a restart. More slots start queued jobs
    /// at once. Fewer stop no running job: free slots go at once, busy ones as their jobs end,
    /// and no job starts until the running ones fit the new limit.
    pub fn set_concurrency(&self, n: usize) {
        let n = n.max(1);
        let mut limit = lock(&self.shared.limit);
        if n > limit.slots {
            let more = n - limit.slots;
            let kept = more.min(limit.surplus);
            limit.surplus -= kept;
            self.shared.slots.add_permits(more - kept);
        } else {
            let fewer = limit.slots - n;
            let freed = self.shared.slots.forget_permits(fewer);
            limit.surplus += fewer - freed;
        }
        limit.slots = n;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Upload hosts that cannot be reached now, and how many jobs wait for them; `None` when
    /// every host uploads went to lately answers.
    pub fn offline(&self) -> Option<Offline> {
        let hosts = self.shared.reach.offline();
        if hosts.is_empty() {
            return None;
        }
        let waiting = {
            let store = lock(&self.shared.store);
            [JobState::Queued, JobState::Running]
                .into_iter()
                .map(|s| store.count_in_state(s).unwrap_or(0))
                .sum::<u64>()
        };
        let next_probe_secs = hosts.iter().map(|h| h.next_probe_secs).min().unwrap_or(0);
        Some(Offline {
            hosts,
            waiting,
            next_probe_secs,
        })
    }

    /// The config jobs start with now.
    pub fn config(&self) -> Arc<Config> {
        self.shared.config()
    }

    /// Replaces the config (profiles edited in Settings): jobs that start from now on use it,
    /// running ones finish with the one they started with.
    pub fn set_config(&self, config: Config) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(config);
    }

    /// Checks `path` and resolves what an upload of it with `profile` will send.
    pub fn prepare(
        &self,
        profile: &Profile,
        path: &Path,
        overrides: &Params,
        source: JobSource,
    ) -> Result<NewJob, EngineError> {
        prepare_job(
            profile,
            path,
            overrides,
            source,
            self.shared.settings.max_file_size,
        )
    }

    /// Records `jobs` as queued (durably) and wakes the dispatcher.
    pub fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<JobId>, EngineError> {
        self.enqueue_in(jobs, None)
    }

    /// [`Engine::enqueue`] for jobs of an intake (see [`intake`]).
    pub fn enqueue_in(
        &self,
        jobs: &[NewJob],
        intake: Option<IntakeId>,
    ) -> Result<Vec<JobId>, EngineError> {
        let ids = lock(&self.shared.store).enqueue_in(jobs, intake, crate::unix_now())?;
        fault::point("enqueued");
        for (id, job) in ids.iter().zip(jobs) {
            self.emit(Event::Queued {
                job: *id,
                path: job.path.clone(),
                size: job.size,
            });
        }
        self.shared.wake.notify_one();
        Ok(ids)
    }

    /// Queues a watched file together with its journal entry (one transaction).
    pub fn enqueue_watched(
        &self,
        job: &NewJob,
        entry: &store::JournalEntry,
    ) -> Result<JobId, EngineError> {
        let id = lock(&self.shared.store).enqueue_watched(job, entry, crate::unix_now())?;
        fault::point("enqueued");
        self.emit(Event::Queued {
            job: id,
            path: job.path.clone(),
            size: job.size,
        });
        self.shared.wake.notify_one();
        Ok(id)
    }

    /// Runs `f` with the store (for the watcher's journal look-ups).
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, EngineError> {
        Ok(f(&mut lock(&self.shared.store))?)
    }

    pub fn job(&self, id: JobId) -> Result<JobRecord, EngineError> {
        Ok(lock(&self.shared.store).get(id)?)
    }

    /// Jobs queued or interrupted (not the ones the user paused).
    pub fn unfinished(&self) -> Result<Vec<JobId>, EngineError> {
        Ok(lock(&self.shared.store).unfinished()?)
    }

    pub fn history(&self, limit: usize, since: Option<i64>) -> Result<Vec<JobRecord>, EngineError> {
        Ok(lock(&self.shared.store).history(limit, since)?)
    }

    /// One page of the finished uploads matching `query` (words, profile, kind), and how many
    /// match: answered by the store's search index, never by loading the history.
    pub fn history_search(
        &self,
        query: &store::HistoryQuery,
    ) -> Result<store::HistoryPage, EngineError> {
        Ok(lock(&self.shared.store).history_search(query)?)
    }

    /// Drops the cached secret of `profile`, so the next upload reads the one just stored or
    /// removed in the keychain.
    pub fn forget_secret(&self, profile: &str) {
        lock(&self.shared.secret_cache).remove(profile);
    }

    pub fn cancel(&self, id: JobId) -> Result<(), EngineError> {
        // All under the store's lock, which the dispatcher holds while it claims a job and
        // registers it as running, and a job's task holds while it leaves `running` and records
        // its end: a job is either running here (its task ends it) or not (it is ended here),
        // never cancelled in the store while its upload goes on.
        let mut store = lock(&self.shared.store);
        if self.stop_running(id, Stop::Cancel) {
            return Ok(());
        }
        let record = store.get(id)?;
        if !record.state.is_terminal() {
            lock(&self.shared.held).remove(&id);
            finish_in(
                &self.shared,
                &mut store,
                &record,
                JobState::Cancelled,
                None,
                Some("cancelled".into()),
            );
        }
        Ok(())
    }

    pub fn pause(&self, id: JobId) -> Result<(), EngineError> {
        lock(&self.shared.held).insert(id);
        if !self.stop_running(id, Stop::Pause) {
            let record = self.job(id)?;
            if record.state == JobState::Queued {
                lock(&self.shared.store).set_state(
                    id,
                    JobState::Paused,
                    None,
                    crate::unix_now(),
                )?;
                self.emit(Event::Paused { job: id });
            }
        }
        Ok(())
    }

    pub fn resume(&self, id: JobId) -> Result<(), EngineError> {
        lock(&self.shared.held).remove(&id);
        let record = self.job(id)?;
        if record.state == JobState::Paused {
            lock(&self.shared.store).retry(id)?;
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Puts a failed, stuck, cancelled or paused job back in the queue; refuses the others.
    pub fn retry(&self, id: JobId) -> Result<(), EngineError> {
        let state = self.job(id)?.state;
        if !state.can_retry() {
            return Err(EngineError::NotRetryable { id, state });
        }
        lock(&self.shared.held).remove(&id);
        lock(&self.shared.store).retry(id)?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Queues the file of `id`, a job skipped as a duplicate, once more to be uploaded
    /// whatever the history holds ("Upload anyway"), with the same name, parameters and
    /// metadata policy. The file is checked afresh, as any new job.
    pub fn upload_anyway(&self, id: JobId) -> Result<JobId, EngineError> {
        let record = self.job(id)?;
        if record.sent.as_ref().and_then(|s| s.duplicate_of).is_none() {
            return Err(EngineError::NotADuplicate(id));
        }
        let config = self.config();
        let profile = config
            .profile(&record.profile)
            .ok_or_else(|| EngineError::ProfileGone(record.profile.clone()))?;
        let mut job = self.prepare(profile, &record.path, &Params::new(), record.source.clone())?;
        job.file_name = record.file_name;
        job.params = record.params;
        job.metadata = record.metadata;
        job.resize = record.resize;
        job.on_duplicate = OnDuplicate::Upload;
        let ids = self.enqueue(std::slice::from_ref(&job))?;
        ids.into_iter()
            .next()
            .ok_or(EngineError::Store(StoreError::NoSuchJob(id)))
    }

    /// The queue view by state (see [`Store::queue_counts`]).
    pub fn queue_counts(&self) -> Result<QueueCounts, EngineError> {
        Ok(lock(&self.shared.store).queue_counts()?)
    }

    /// Rows `offset..offset + limit` of the queue view, oldest first.
    pub fn queue_page(&self, offset: u64, limit: usize) -> Result<Vec<JobRecord>, EngineError> {
        Ok(lock(&self.shared.store).queue_page(offset, limit)?)
    }

    /// Jobs queued or running, counted.
    pub fn count_unfinished(&self) -> Result<u64, EngineError> {
        Ok(lock(&self.shared.store).count_unfinished()?)
    }

    /// Whether any job is queued or running (without counting them).
    pub fn has_unfinished(&self) -> Result<bool, EngineError> {
        Ok(lock(&self.shared.store).has_unfinished()?)
    }

    /// Takes the finished jobs out of the queue view. Returns how many.
    pub fn dismiss_finished(&self) -> Result<usize, EngineError> {
        let n = lock(&self.shared.store).dismiss_finished()?;
        if n > 0 {
            self.emit(Event::QueueChanged);
        }
        Ok(n)
    }

    /// Puts every failed or stuck job of the queue view back in the queue, in one
    /// transaction whatever their number. Returns how many.
    pub fn retry_failed(&self) -> Result<usize, EngineError> {
        let n = lock(&self.shared.store).retry_failed()?;
        if n > 0 {
            self.emit(Event::QueueChanged);
            self.shared.wake.notify_one();
        }
        Ok(n)
    }

    /// [`Engine::retry_failed`] for the jobs of one source (a watched folder's "Retry failed").
    pub fn retry_failed_of(&self, source: &JobSource) -> Result<usize, EngineError> {
        let n = lock(&self.shared.store).retry_failed_of(source)?;
        if n > 0 {
            self.emit(Event::QueueChanged);
            self.shared.wake.notify_one();
        }
        Ok(n)
    }

    /// Cancels what `intake` queued and has not finished: the waiting jobs in one
    /// transaction, the running ones one by one. Returns how many were cancelled.
    pub fn cancel_intake(&self, intake: IntakeId) -> Result<usize, EngineError> {
        let mut n = lock(&self.shared.store).cancel_waiting_of(intake, crate::unix_now())?;
        let running: Vec<JobId> = lock(&self.shared.running).keys().copied().collect();
        for id in running {
            if lock(&self.shared.store).intake_of(id)? == Some(intake)
                && self.stop_running(id, Stop::Cancel)
            {
                n += 1;
            }
        }
        self.emit(Event::QueueChanged);
        Ok(n)
    }

    /// Stops starting jobs and sends the running ones back to the queue.
    pub fn pause_all(&self) {
        self.shared.paused_all.send_replace(true);
        let running: Vec<JobId> = lock(&self.shared.running).keys().copied().collect();
        for id in running {
            self.stop_running(id, Stop::Requeue);
        }
    }

    pub fn resume_all(&self) {
        self.shared.paused_all.send_replace(false);
        self.shared.wake.notify_one();
    }

    pub fn is_paused(&self) -> bool {
        *self.shared.paused_all.borrow()
    }

    /// Stops dispatching, interrupts running uploads (they stay queued for next time) and
    /// waits for every task to finish.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let running: Vec<JobId> = lock(&self.shared.running).keys().copied().collect();
        for id in running {
            self.stop_running(id, Stop::Requeue);
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Waits until every job in `ids` has finished, calling `on_event` for each event about
    /// them (progress included), and returns how each ended, in the order they finished.
    pub async fn wait_for(
        &self,
        mut events: broadcast::Receiver<Event>,
        ids: &[JobId],
        mut on_event: impl FnMut(&Event),
    ) -> Vec<Finished> {
        let mut pending: HashSet<JobId> = ids.iter().copied().collect();
        let mut done = Vec::with_capacity(ids.len());
        // Jobs that finished before we started listening.
        self.collect_finished(&mut pending, &mut done, &mut on_event);
        while !pending.is_empty() {
            match events.recv().await {
                Ok(event) => {
                    if !event.job().is_some_and(|id| pending.contains(&id)) {
                        // Engine-wide news (offline, online) is for every waiter.
                        if event.job().is_none() {
                            on_event(&event);
                        }
                        continue;
                    }
                    on_event(&event);
                    if let Event::Finished(finished) = event {
                        pending.remove(&finished.job);
                        done.push(finished);
                    }
                }
                // Missed events: the store knows how each job ended.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.collect_finished(&mut pending, &mut done, &mut on_event)
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        done
    }

    fn collect_finished(
        &self,
        pending: &mut HashSet<JobId>,
        done: &mut Vec<Finished>,
        on_event: &mut impl FnMut(&Event),
    ) {
        let mut ids: Vec<JobId> = pending.iter().copied().collect();
        ids.sort();
        for id in ids {
            let Ok(record) = self.job(id) else { continue };
            if record.state.is_terminal() {
                let finished = finished_from(&record);
                on_event(&Event::Finished(finished.clone()));
                pending.remove(&id);
                done.push(finished);
            }
        }
    }

    fn stop_running(&self, id: JobId, why: Stop) -> bool {
        let control = lock(&self.shared.running).get(&id).cloned();
        match control {
            Some(control) => {
                *lock(&control.reason) = Some(why);
                control.token.cancel();
                true
            }
            None => false,
        }
    }

    fn emit(&self, event: Event) {
        // No subscriber is fine: events are a view, the store is the truth.
        let _ = self.shared.events.send(event);
    }
}

/// How `record` ended, as a [`Finished`] event would have said it (for waiters that missed it).
pub fn finished_from(record: &JobRecord) -> Finished {
    Finished {
        job: record.id,
        path: record.path.clone(),
        state: record.state,
        uploaded: match (&record.remote_id, &record.url) {
            (Some(id), Some(url)) if record.state == JobState::Done => Some(Uploaded {
                id: id.clone(),
                url: url.clone(),
                response: record.response.clone().unwrap_or(serde_json::Value::Null),
                sent: record.sent.clone().map(Box::new),
            }),
            _ => None,
        },
        error: record.error.clone(),
    }
}

/// Checks a file before it is queued: it exists, is a regular readable file, fits the limit,
/// and has a name the providers accept.
pub fn prepare_job(
    profile: &Profile,
    path: &Path,
    overrides: &Params,
    source: JobSource,
    max_file_size: u64,
) -> Result<NewJob, EngineError> {
    let pre = |why: String| EngineError::PreCheck {
        path: path.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|err| {
        pre(match err.kind() {
            std::io::ErrorKind::NotFound => "no such file: check the path".to_owned(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: Dropkey cannot read it".to_owned()
            }
            _ => format!("cannot read it: {err}"),
        })
    })?;
    if meta.is_dir() {
        return Err(pre(
            "is a directory: pass the files inside it, or -r (--recursive) to upload every file in it"
                .into(),
        ));
    }
    if !meta.is_file() {
        return Err(pre("is not a regular file".into()));
    }
    // The identity every attempt checks is the one of the file opened here (without blocking,
    // should a FIFO have been put at the path since the check above).
    let file =
        identity::open_file(path, false).map_err(|err| pre(format!("cannot open it: {err}")))?;
    let opened = file
        .metadata()
        .map_err(|err| pre(format!("cannot read it: {err}")))?;
    if !opened.is_file() {
        return Err(pre("is not a regular file".into()));
    }
    let identity = identity::FileIdentity::of(&opened, false);
    if identity.size > max_file_size {
        return Err(pre(format!(
            "is {} bytes, over this profile's limit of {max_file_size} bytes",
            identity.size
        )));
    }
    let file_name = match overrides.get("fileName") {
        Some(name) => name.clone(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| pre("has no file name".into()))?,
    };
    if file_name.is_empty()
        || file_name.len() > 1024
        || file_name.contains('/')
        || file_name.chars().any(char::is_control)
    {
        return Err(pre(format!(
            "the name `{file_name}` would be rejected by the provider (empty, over 1024 bytes, or with '/' or control characters): rename it or pass --param fileName=..."
        )));
    }
    let params = upload_params(profile, overrides)?;
    Ok(NewJob {
        profile: profile.name.clone(),
        path: path.to_path_buf(),
        file_name,
        size: identity.size,
        params,
        source,
        file: Some(identity),
        metadata: profile.metadata,
        on_duplicate: profile.on_duplicate,
        resize: profile.resize,
    })
}

async fn dispatch(shared: Arc<Shared>, tracker: TaskTracker) {
    let semaphore = shared.slots.clone();
    let mut paused = shared.paused_all.subscribe();
    loop {
        // Honour pause-all before taking a slot.
        while *paused.borrow_and_update() {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                changed = paused.changed() => if changed.is_err() { return },
            }
        }
        let permit = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            permit = semaphore.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        {
            // A slot given back by a job after the limit went down.
            let mut limit = lock(&shared.limit);
            if limit.surplus > 0 {
                limit.surplus -= 1;
                permit.forget();
                continue;
            }
        }
        if *paused.borrow() {
            continue;
        }
        let held: Vec<JobId> = {
            let running = lock(&shared.running);
            lock(&shared.held)
                .iter()
                .chain(running.keys())
                .copied()
                .collect()
        };
        let control = Arc::new(Control {
            token: shared.shutdown.child_token(),
            reason: Mutex::new(None),
        });
        // Claimed and registered as running under one hold of the store's lock: a cancel in
        // between would find the job neither waiting nor running (see `Engine::cancel`).
        let claimed = {
            let mut store = lock(&shared.store);
            let claimed = store.claim_next(&held);
            if let Ok(Some(job)) = &claimed {
                lock(&shared.running).insert(job.id, control.clone());
            }
            claimed
        };
        match claimed {
            Ok(Some(job)) => {
                fault::point("claimed");
                let shared = shared.clone();
                tracker.spawn(async move {
                    run_job(&shared, job, &control).await;
                    drop(permit);
                });
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    _ = shared.wake.notified() => {}
                    _ = paused.changed() => {}
                }
            }
            Err(err) => {
                drop(permit);
                tracing::error!("the job queue cannot be read: {err}");
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

fn finish(
    shared: &Shared,
    record: &JobRecord,
    state: JobState,
    uploaded: Option<Uploaded>,
    error: Option<String>,
) {
    let mut store = lock(&shared.store);
    finish_in(shared, &mut store, record, state, uploaded, error);
}

/// Records how a job ended and says so, with the store's lock held: the job leaves `running`
/// in the same hold, so `Engine::cancel` never sees it between the two.
fn finish_in(
    shared: &Shared,
    store: &mut Store,
    record: &JobRecord,
    state: JobState,
    uploaded: Option<Uploaded>,
    error: Option<String>,
) {
    let now = crate::unix_now();
    if uploaded.is_some() {
        fault::point("acknowledged");
    }
    lock(&shared.running).remove(&record.id);
    let stored = match &uploaded {
        Some(up) => store.mark_done(
            record.id,
            &up.id,
            &up.url,
            &up.response,
            up.sent.as_deref(),
            now,
        ),
        None => store.set_state(record.id, state, error.as_deref(), now),
    };
    if let Err(err) = stored {
        tracing::error!(
            "job {} ended ({}) but could not be recorded: {err}",
            record.id,
            state.as_str()
        );
    }
    if uploaded.is_some() {
        fault::point("done");
    }
    let _ = shared.events.send(Event::Finished(Finished {
        job: record.id,
        path: record.path.clone(),
        state,
        uploaded,
        error,
    }));
}

/// What an upload sends: the plan of its bytes, their SHA-256, and the scaled-down copy they
/// come from when the image was resized (removed when the job's attempts end).
struct Prepared {
    plan: Arc<metadata::Plan>,
    sha256: String,
    resized: Option<ResizedFile>,
}

/// A scaled-down copy in the data directory, deleted when dropped.
struct ResizedFile(PathBuf);

impl Drop for ResizedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The bytes a job sends (its file after the metadata policy, or its scaled-down copy) and
/// their SHA-256, read on the blocking pool. The file is checked to be the one queued (device,
/// inode, size, mtime; the attempt checks the watcher's hash when it opens the file again to
/// send it).
async fn prepare_send(job: &JobRecord, data_dir: &Path) -> Result<Prepared, String> {
    let path = job.path.clone();
    let expected = job.file.clone();
    let policy = job.metadata;
    let resize = job.resize;
    let out = data_dir.join("resized").join(job.id.0.to_string());
    let task = tokio::task::spawn_blocking(move || {
        let fail = |err: &dyn std::fmt::Display| format!("{}: {err}", path.display());
        let mut file =
            identity::open_verified(&path, expected.as_ref(), false).map_err(|err| fail(&err))?;
        let size = file.metadata().map_err(|err| fail(&err))?.len();
        let mut not_resized = None;
        if let Some(limit) = resize {
            match metadata::resized(&mut file, size, policy, limit, &out) {
                Ok(Some(plan)) => {
                    let copy = ResizedFile(out);
                    let mut reader = std::fs::File::open(&copy.0).map_err(|err| fail(&err))?;
                    let sha256 = identity::sha256_of(&mut reader).map_err(|err| fail(&err))?;
                    return Ok(Prepared {
                        plan: Arc::new(plan),
                        sha256,
                        resized: Some(copy),
                    });
                }
                Ok(None) => {}
                Err(why) => not_resized = Some(why),
            }
        }
        let mut plan = metadata::plan(&mut file, size, policy).map_err(|err| fail(&err))?;
        if let Some(why) = not_resized {
            plan.report.kept = Some(match plan.report.kept.take() {
                Some(kept) => format!("{kept}; {why}"),
                None => why,
            });
        }
        if let Some(kept) = &plan.report.kept {
            tracing::info!("{}: {kept}", path.display());
        }
        let plan = Arc::new(plan);
        // A file sent as it is has the hash the watcher took (and the attempt checks it).
        let known = expected
            .as_ref()
            .and_then(|f| f.sha256.clone())
            .filter(|_| plan.is_unchanged());
        let sha256 = match known {
            Some(sha256) => sha256,
            None => {
                let mut reader = plan.clone().reader(file);
                identity::sha256_of_reader(&mut reader).map_err(|err| fail(&err))?
            }
        };
        Ok(Prepared {
            plan,
            sha256,
            resized: None,
        })
    });
    task.await
        .unwrap_or_else(|err| Err(format!("reading the file failed: {err}")))
}

/// The earlier upload of the same bytes with the same profile and parameters, if the
/// provider still has it. A file deleted since (in Dropkey or at the provider) is not a
/// duplicate; nor is one whose provider cannot be asked now (the upload then goes ahead and
/// meets the outage like any other).
async fn duplicate_of(
    shared: &Shared,
    profile: &Profile,
    secret: &SecretString,
    job: &JobRecord,
    sha256: &str,
) -> Option<JobRecord> {
    let found = lock(&shared.store).find_duplicate(&job.profile, sha256, &job.params, job.id);
    let earlier = match found {
        Ok(found) => found?,
        Err(err) => {
            tracing::warn!(job = job.id.0, "duplicate lookup failed: {err}");
            return None;
        }
    };
    let remote_id = earlier.remote_id.as_deref()?;
    let kind = uploaded::cloudinary_kind(earlier.response.as_ref(), profile);
    let answer = provider::details(
        &shared.http,
        profile,
        secret,
        remote_id,
        kind.resource_type,
        kind.delivery_type,
    )
    .await;
    match answer {
        Ok(provider::RemoteFile::Present { .. }) => Some(earlier),
        Ok(provider::RemoteFile::Missing) => {
            tracing::info!(
                job = job.id.0,
                earlier = earlier.id.0,
                "the earlier upload is gone at the provider: uploading again"
            );
            None
        }
        Err(_) => None,
    }
}

fn secret_for(shared: &Shared, profile: &Profile) -> Result<Arc<SecretString>, SecretError> {
    if let Some(secret) = lock(&shared.secret_cache).get(&profile.name) {
        return Ok(secret.clone());
    }
    let (secret, _) = shared.secrets.get(profile)?;
    let secret = Arc::new(secret);
    lock(&shared.secret_cache).insert(profile.name.clone(), secret.clone());
    Ok(secret)
}

async fn run_job(shared: &Arc<Shared>, mut job: JobRecord, control: &Control) {
    let outcome = attempts(shared, &mut job, control).await;
    match outcome {
        Outcome::Done(uploaded) => finish(shared, &job, JobState::Done, Some(uploaded), None),
        Outcome::Failed(reason) => finish(shared, &job, JobState::Failed, None, Some(reason)),
        Outcome::NeedsAttention(reason) => {
            finish(shared, &job, JobState::NeedsAttention, None, Some(reason))
        }
        Outcome::Stopped(Stop::Cancel) => finish(
            shared,
            &job,
            JobState::Cancelled,
            None,
            Some("cancelled".into()),
        ),
        Outcome::Stopped(stop) => {
            let state = if stop == Stop::Pause {
                JobState::Paused
            } else {
                JobState::Queued
            };
            let requeued = {
                let mut store = lock(&shared.store);
                lock(&shared.running).remove(&job.id);
                store.set_state(job.id, state, None, crate::unix_now())
            };
            if let Err(err) = requeued {
                tracing::error!("job {} could not be re-queued: {err}", job.id);
            }
            if stop == Stop::Pause {
                let _ = shared.events.send(Event::Paused { job: job.id });
            } else {
                shared.wake.notify_one();
            }
        }
    }
}

enum Outcome {
    Done(Uploaded),
    Failed(String),
    NeedsAttention(String),
    Stopped(Stop),
}

async fn attempts(shared: &Arc<Shared>, job: &mut JobRecord, control: &Control) -> Outcome {
    let stopped = || lock(&control.reason).unwrap_or(Stop::Requeue);
    let config = shared.config();
    let Some(profile) = config.profile(&job.profile) else {
        return Outcome::Failed(format!(
            "profile `{}` is no longer in the config: add it back, or cancel the job",
            job.profile
        ));
    };
    let secret = match secret_for(shared, profile) {
        Ok(secret) => secret,
        Err(err) => return Outcome::Failed(err.to_string()),
    };
    let Prepared {
        plan,
        sha256,
        resized,
    } = match prepare_send(job, &shared.settings.data_dir).await {
        Ok(prepared) => prepared,
        Err(reason) => return Outcome::Failed(reason),
    };
    let sent = |duplicate_of| Sent {
        sha256: sha256.clone(),
        size: plan.len(),
        metadata: plan.report.clone(),
        duplicate_of,
    };
    if job.on_duplicate != OnDuplicate::Upload {
        if let Some(earlier) = duplicate_of(shared, profile, &secret, job, &sha256).await {
            let uploaded_at = earlier.finished_at.unwrap_or(earlier.created_at);
            tracing::info!(
                job = job.id.0,
                earlier = earlier.id.0,
                "already uploaded: not sent again"
            );
            return Outcome::Done(Uploaded {
                id: earlier.remote_id.unwrap_or_default(),
                url: earlier.url.unwrap_or_default(),
                response: earlier.response.unwrap_or(serde_json::Value::Null),
                sent: Some(Box::new(sent(Some(DuplicateOf {
                    job: earlier.id,
                    uploaded_at,
                })))),
            });
        }
    }
    let policy = &shared.settings.retry;
    let deadline = tokio::time::Instant::now() + policy.give_up_after;
    let mut attempt_no = 0;
    // Transient failures since the host last answered: the backoff's exponent.
    let mut streak = 0;
    // Connect failures in a row: a host that answers the probe but not the upload (a proxy
    // in between, a port that differs) must not be retried at the probe's pace.
    let mut unreachable = 0;
    loop {
        attempt_no += 1;
        tracing::info!(job = job.id.0, path = %job.path.display(), attempt = attempt_no, "upload started");
        let _ = shared.events.send(Event::Started {
            job: job.id,
            attempt: attempt_no,
        });
        let sent_bytes = Arc::new(AtomicU64::new(0));
        let reporter = spawn_progress(
            shared,
            job.id,
            plan.len(),
            sent_bytes.clone(),
            control.token.child_token(),
        );
        let attempt = provider::Attempt {
            http: &shared.http,
            clock: &shared.clock,
            profile,
            secret: &secret,
            job,
            transfer: &shared.settings.transfer,
            sent: sent_bytes.clone(),
            nonce: shared.nonce.fetch_add(1, Ordering::Relaxed),
            plan: &plan,
            resized: resized.as_ref().map(|r| r.0.as_path()),
        };
        let mut chunk = (job.upload_id.clone(), job.bytes_acked);
        let store = &shared.store;
        let id = job.id;
        let mut on_chunk = |upload_id: &str, acked: u64| {
            if acked > 0 {
                fault::point("chunk-acknowledged");
            }
            chunk = (Some(upload_id.to_owned()), acked);
            if let Err(err) = lock(store).record_chunk(id, upload_id, acked) {
                tracing::warn!("job {id}: chunk progress not recorded: {err}");
            }
        };
        let result = tokio::select! {
            result = provider::upload(&attempt, &mut on_chunk) => Some(result),
            _ = control.token.cancelled() => None,
        };
        reporter.cancel();
        (job.upload_id, job.bytes_acked) = chunk;
        let failure = match result {
            None => return Outcome::Stopped(stopped()),
            Some(Ok(mut uploaded)) => {
                uploaded.sent = Some(Box::new(sent(None)));
                return Outcome::Done(uploaded);
            }
            Some(Err(Failure::Permanent { reason })) => return Outcome::Failed(reason),
            Some(Err(failure)) => failure,
        };
        match failure {
            Failure::Unreachable { reason, origin } => {
                let _ = shared.events.send(Event::Retrying {
                    job: job.id,
                    attempt: attempt_no,
                    delay_ms: shared.settings.probe.first.as_millis() as u64,
                    reason: format!("offline: {reason}"),
                });
                let answered = shared
                    .reach
                    .wait_for(&origin, &reason, deadline, &control.token)
                    .await;
                if control.token.is_cancelled() {
                    return Outcome::Stopped(stopped());
                }
                if !answered {
                    return Outcome::NeedsAttention(format!(
                        "{origin} could not be reached for {} (the retry budget); last error: {reason}",
                        human(policy.give_up_after)
                    ));
                }
                streak = 0;
                unreachable += 1;
                if unreachable > 1 {
                    tokio::select! {
                        _ = tokio::time::sleep(policy.backoff(unreachable - 1)) => {}
                        _ = control.token.cancelled() => return Outcome::Stopped(stopped()),
                    }
                }
                continue;
            }
            Failure::Transient {
                reason,
                retry_after,
            } => {
                unreachable = 0;
                streak += 1;
                let delay = match retry_after {
                    Some(wait) => wait,
                    None => policy.backoff(streak),
                };
                if tokio::time::Instant::now() + delay > deadline {
                    let why = match retry_after {
                        Some(wait) => format!("the provider asked to wait {} s", wait.as_secs()),
                        None => format!("retried for {}", human(policy.give_up_after)),
                    };
                    return Outcome::NeedsAttention(format!(
                        "gave up after {attempt_no} attempts ({why}, the retry budget); last error: {reason}"
                    ));
                }
                let _ = shared.events.send(Event::Retrying {
                    job: job.id,
                    attempt: attempt_no,
                    delay_ms: delay.as_millis() as u64,
                    reason,
                });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = control.token.cancelled() => return Outcome::Stopped(stopped()),
                }
            }
            Failure::Permanent { reason } => return Outcome::Failed(reason),
        }
    }
}

/// `90 s`, `10 min`, `24 h`: a budget as people say it.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// Reports `sent` as throttled progress events until `stop` is cancelled.
fn spawn_progress(
    shared: &Arc<Shared>,
    job: JobId,
    total: u64,
    sent: Arc<AtomicU64>,
    stop: CancellationToken,
) -> CancellationToken {
    let shared = shared.clone();
    let interval = shared.settings.progress_interval;
    let handle = stop.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut last = (started, 0u64);
        let mut speed = 0.0f64;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let now = Instant::now();
            let bytes = sent.load(Ordering::Relaxed);
            if bytes == last.1 && bytes != 0 {
                continue;
            }
            let dt = now.duration_since(last.0).as_secs_f64();
            if dt > 0.0 {
                let instant = (bytes - last.1.min(bytes)) as f64 / dt;
                // Smoothed so the number is readable, not jittery.
                speed = if speed == 0.0 {
                    instant
                } else {
                    0.7 * speed + 0.3 * instant
                };
            }
            last = (now, bytes);
            let eta_secs = (speed > 0.0).then(|| total.saturating_sub(bytes) as f64 / speed);
            let _ = shared.events.send(Event::Progress(Progress {
                job,
                bytes_sent: bytes,
                total,
                speed,
                eta_secs,
            }));
        }
    });
    handle
}
