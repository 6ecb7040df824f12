//! Watched folders: every finished file that appears is uploaded once, with its folder's tags
//! and remote folder, also across restarts and crashes.
//!
//! - [`filter`]: which files count (globs, temp files, dot-files).
//! - This module: one task per watch. It turns `notify` events (inotify / FSEvents /
//!   ReadDirectoryChangesW) into candidates, waits until each is finished (closed after
//!   writing, renamed into place, or size and mtime stable for [`STABLE_FOR`]), and hands it to
//!   the engine together with its journal entry in one transaction.
//!
//! Symbolic links are never followed, at any depth, on the event path and in scans alike:
//! candidates are looked at with `lstat`, every folder between the root and a file must be a
//! real folder, and the file is opened component by component with `O_NOFOLLOW`
//! ([`identity::open_beneath`]). A link pointing inside the root is skipped too: the file it
//! points to is uploaded under its own path, once. The job records the file's identity
//! (device, inode, size, mtime, SHA-256) and the engine uploads only that file.
//!
//! Exactly once: the journal (in the engine's SQLite store) is keyed by the watch and the
//! relative path and remembers size, mtime, device, inode and SHA-256. A file already journaled
//! with the same content is never queued again; a journaled content under a new path whose old
//! path is gone is a rename, not a new file; a file deleted or moved by `after_upload` leaves the
//! journal, so a new file at its path is new. A catch-up scan at start (and after an event-queue overflow, a
//! periodic safety-net rescan, and the folder coming back after it vanished) finds what appeared
//! while no events were seen. Scans stream (`walk.rs`): a batch of files at a time, compared with
//! the journal in one query, and paused while `PENDING_CAP` candidates wait, so memory stays
//! flat whatever the size of the tree. Retries, concurrency and crash safety are the engine's.

pub mod filter;
pub mod overview;
mod walk;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AfterUpload, OnChange, Profile, Watch};
use crate::engine::identity::{self, mtime_ns, FileIdentity};
use crate::engine::store::JournalEntry;
use crate::engine::{Engine, EngineError, Event, JobId, JobSource, JobState};
use crate::sign::Params;
use filter::Filter;

/// A file with no close event is finished once its size and mtime held still this long.
pub const STABLE_FOR: Duration = Duration::from_millis(1500);
/// How often candidates are checked, while there are any (an idle watch does not tick).
const TICK: Duration = Duration::from_millis(50);
/// Candidates a scan lets wait at once: past this it stops walking until those are uploaded or
/// dropped, so a scan of a million new files holds this many, not a million.
const PENDING_CAP: usize = 10_000;
/// Files a scan walks and compares with the journal at a time (one journal query each).
const SCAN_BATCH: usize = 1_000;
/// Finished candidates hashed and queued per tick at most, so events (and the engine's
/// finished uploads) are seen between them even when a scan made thousands ready at once.
const READY_PER_TICK: usize = 256;
/// Events (from `notify`, from the engine) taken in one turn of the loop at most.
const EVENTS_PER_TURN: usize = 1_024;
/// The safety-net rescan, in case an event was lost without an overflow report.
const SAFETY_RESCAN: Duration = Duration::from_secs(600);
/// How often a vanished folder is looked for.
const MISSING_RETRY: Duration = Duration::from_secs(2);
/// How long a watch whose watcher failed waits before it tries again (the cause, such as the
/// system's inotify limit, may be lifted meanwhile).
const ERROR_RETRY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum WatchStatus {
    Starting,
    Watching,
    Paused,
    /// The folder is gone (deleted, unmounted); watching resumes when it returns.
    Missing(String),
    /// The folder is there but the file watcher failed on it; tried again every
    /// [`ERROR_RETRY`].
    Error(String),
}

/// One watch as front ends show it.
#[derive(Debug, Clone, Serialize)]
pub struct WatchInfo {
    pub key: String,
    pub path: PathBuf,
    pub profile: String,
    pub status: WatchStatus,
    pub last_upload: Option<String>,
    pub uploads: u64,
}

struct WatchState {
    info: WatchInfo,
    paused: tokio::sync::watch::Sender<bool>,
}

/// The running watches. Dropping it does not stop them: call [`Watcher::shutdown`].
pub struct Watcher {
    states: Arc<Mutex<Vec<WatchState>>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The journal's name for a watch: its profile and canonical folder.
pub fn watch_key(watch: &Watch) -> String {
    let path = std::fs::canonicalize(&watch.path).unwrap_or_else(|_| watch.path.clone());
    format!("{}:{}", watch.profile, path.display())
}

impl Watcher {
    /// Starts one task per watch. Profiles must exist in the engine's config.
    pub fn start(engine: Engine, watches: Vec<Watch>) -> Self {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let states = Arc::new(Mutex::new(Vec::new()));
        for (index, watch) in watches.into_iter().enumerate() {
            let (paused, paused_rx) = tokio::sync::watch::channel(false);
            let key = watch_key(&watch);
            lock(&states).push(WatchState {
                info: WatchInfo {
                    key: key.clone(),
                    path: watch.path.clone(),
                    profile: watch.profile.clone(),
                    status: WatchStatus::Starting,
                    last_upload: None,
                    uploads: 0,
                },
                paused,
            });
            let task = WatchTask {
                engine: engine.clone(),
                filter: Filter::new(&watch),
                watch,
                key,
                index,
                states: states.clone(),
                cancel: cancel.child_token(),
                paused: paused_rx,
                pending_cap: pending_cap(),
            };
            tracker.spawn(task.run());
        }
        tracker.close();
        Self {
            states,
            cancel,
            tracker,
        }
    }

    pub fn infos(&self) -> Vec<WatchInfo> {
        lock(&self.states).iter().map(|s| s.info.clone()).collect()
    }

    /// Pauses (or resumes) the watch `key`, or every watch when `key` is `None`.
    pub fn set_paused(&self, key: Option<&str>, paused: bool) {
        for state in lock(&self.states).iter() {
            if key.is_none_or(|k| k == state.info.key) {
                state.paused.send_replace(paused);
            }
        }
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
    }
}

/// A file seen changing, not yet known to be finished.
#[derive(Debug, Clone, Copy)]
struct Pending {
    size: u64,
    mtime: SystemTime,
    /// When size/mtime last changed.
    since: Instant,
    /// Closed after writing, or renamed into place: finished as soon as it holds still.
    closed: bool,
}

struct WatchTask {
    engine: Engine,
    watch: Watch,
    filter: Filter,
    key: String,
    index: usize,
    states: Arc<Mutex<Vec<WatchState>>>,
    cancel: CancellationToken,
    paused: tokio::sync::watch::Receiver<bool>,
    /// [`PENDING_CAP`], lower in tests.
    pending_cap: usize,
}

/// [`PENDING_CAP`], or with the test build `DROPKEY_WATCH_PENDING_CAP`, so a test can prove on
/// a small tree that a scan larger than the cap still finds every file.
fn pending_cap() -> usize {
    #[cfg(feature = "fault-points")]
    if let Some(cap) = std::env::var("DROPKEY_WATCH_PENDING_CAP")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&cap| cap > 0)
    {
        return cap;
    }
    PENDING_CAP
}

/// One walk under way: a blocking walker sends its files a batch at a time through a channel
/// that holds one batch, so a scan holds a few batches whatever the size of the tree. Dropping
/// it stops the walker.
struct Scan {
    root: PathBuf,
    files: mpsc::Receiver<Vec<(PathBuf, std::fs::Metadata)>>,
    started: Instant,
    seen: u64,
    candidates: u64,
    peak_pending: usize,
}

impl Scan {
    fn start(root: PathBuf, recursive: bool, batch: usize) -> Self {
        let (tx, files) = mpsc::channel(1);
        let walk_root = root.clone();
        tokio::task::spawn_blocking(move || {
            let mut walk = walk::Walk::new(&walk_root, recursive);
            loop {
                let batch = walk.next_batch(batch);
                if batch.is_empty() || tx.blocking_send(batch).is_err() {
                    return;
                }
            }
        });
        Self {
            root,
            files,
            started: Instant::now(),
            seen: 0,
            candidates: 0,
            peak_pending: 0,
        }
    }
}

/// The scans of one watch: at most one of the whole tree (at start, after lost events,
/// periodically) and one of a folder moved or copied in, which goes first (its files may come
/// with no events of their own, and a full scan of a big tree takes minutes). Further folders
/// wait as paths.
struct Scans {
    recursive: bool,
    batch: usize,
    full: Option<Scan>,
    /// Asked for again while one ran (events were lost meanwhile): run another after it.
    full_again: bool,
    folder: Option<Scan>,
    folders: VecDeque<PathBuf>,
}

impl Scans {
    fn new(recursive: bool, batch: usize) -> Self {
        Self {
            recursive,
            batch,
            full: None,
            full_again: false,
            folder: None,
            folders: VecDeque::new(),
        }
    }

    /// A scan of the whole tree at `root`; when one is under way, another after it only if
    /// `again` (what it already passed may have changed unseen).
    fn request_full(&mut self, root: &Path, again: bool) {
        if self.full.is_some() {
            self.full_again |= again;
        } else {
            self.full = Some(Scan::start(root.to_path_buf(), self.recursive, self.batch));
        }
    }

    fn request_folder(&mut self, folder: PathBuf) {
        self.folders.push_back(folder);
        self.next_folder();
    }

    fn next_folder(&mut self) {
        if self.folder.is_none() {
            if let Some(folder) = self.folders.pop_front() {
                self.folder = Some(Scan::start(folder, self.recursive, self.batch));
            }
        }
    }

    fn is_active(&self) -> bool {
        self.full.is_some() || self.folder.is_some()
    }

    fn clear(&mut self) {
        *self = Self::new(self.recursive, self.batch);
    }

    /// The next batch of the scan that goes first, `None` when that scan is over (cancel-safe:
    /// the batch waits in the channel when another branch wins). Never resolves with no scan.
    async fn next(&mut self) -> Option<Vec<(PathBuf, std::fs::Metadata)>> {
        match (&mut self.folder, &mut self.full) {
            (Some(scan), _) | (None, Some(scan)) => scan.files.recv().await,
            (None, None) => std::future::pending().await,
        }
    }

    /// The scan `next` reads from.
    fn current(&mut self) -> Option<&mut Scan> {
        match (&mut self.folder, &mut self.full) {
            (Some(scan), _) | (None, Some(scan)) => Some(scan),
            (None, None) => None,
        }
    }
}

enum Leave {
    Cancelled,
    Missing(String),
    /// The watcher failed on a folder that is still there.
    Error(String),
}

impl WatchTask {
    fn set_status(&self, status: WatchStatus) {
        if let Some(state) = lock(&self.states).get_mut(self.index) {
            if state.info.status != status {
                tracing::info!("watch {}: {:?}", self.watch.path.display(), status);
            }
            state.info.status = status;
        }
    }

    async fn run(mut self) {
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            if !self.watch.path.is_dir() {
                self.set_status(WatchStatus::Missing(format!(
                    "{} does not exist or is not a folder (deleted or unmounted?); watching resumes when it is back",
                    self.watch.path.display()
                )));
                tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    _ = tokio::time::sleep(MISSING_RETRY) => continue,
                }
            }
            match self.watch_folder().await {
                Leave::Cancelled => return,
                Leave::Missing(why) => self.set_status(WatchStatus::Missing(why)),
                Leave::Error(why) if self.watch.path.is_dir() => {
                    self.set_status(WatchStatus::Error(why));
                    tokio::select! {
                        _ = self.cancel.cancelled() => return,
                        _ = tokio::time::sleep(ERROR_RETRY) => {}
                    }
                }
                // It failed because the folder went away: missing, not an error.
                Leave::Error(why) => self.set_status(WatchStatus::Missing(why)),
            }
        }
    }

    async fn watch_folder(&mut self) -> Leave {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // The handler only forwards: a handler that blocks overflows the kernel queue.
        // Never descend into a linked folder: its events would carry paths inside the root
        // for files outside it.
        let watcher = notify::RecommendedWatcher::new(
            move |res: notify::Result<notify::Event>| {
                // Reads (opened, closed without writing) tell nothing, and every file the
                // watch hashes and uploads is read twice: dropped here, they never queue up.
                if res.as_ref().is_ok_and(|e| is_read_only(&e.kind)) {
                    return;
                }
                let _ = tx.send(res);
            },
            notify::Config::default().with_follow_symlinks(false),
        );
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(err) => return Leave::Error(watch_failed(&self.watch.path, &err)),
        };
        let mode = if self.watch.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        if let Err(err) = watcher.watch(&self.watch.path, mode) {
            return Leave::Error(watch_failed(&self.watch.path, &err));
        }
        let root_id = folder_identity(&self.watch.path);
        let mut events = self.engine.subscribe();
        let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
        let batch = SCAN_BATCH.min(self.pending_cap / 2).max(1);
        let mut scans = Scans::new(self.watch.recursive, batch);
        let paused = *self.paused.borrow_and_update();
        self.set_status(if paused {
            WatchStatus::Paused
        } else {
            WatchStatus::Watching
        });
        self.apply_pending_actions().await;
        self.recheck_failed(None, &mut pending).await;
        if !paused {
            scans.request_full(&self.watch.path, true);
        }
        let periodic = self
            .watch
            .scan_interval
            .map(Duration::from_secs)
            .unwrap_or(SAFETY_RESCAN);
        let mut rescan = tokio::time::interval_at(tokio::time::Instant::now() + periodic, periodic);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let running = !*self.paused.borrow();
            // Idle (nothing pending) the watch does not tick at all; a scan walks on only while
            // a batch more keeps the pending candidates within the cap.
            let ticking = running && !pending.is_empty();
            let walking = running && scans.is_active() && pending.len() + batch <= self.pending_cap;
            tokio::select! {
                _ = self.cancel.cancelled() => return Leave::Cancelled,
                changed = self.paused.changed() => {
                    if changed.is_err() { return Leave::Cancelled; }
                    if *self.paused.borrow_and_update() {
                        pending.clear();
                        scans.clear();
                        self.set_status(WatchStatus::Paused);
                    } else {
                        self.set_status(WatchStatus::Watching);
                        // Whatever appeared while paused.
                        scans.request_full(&self.watch.path, true);
                    }
                }
                files = scans.next(), if walking => {
                    match files {
                        Some(files) => self.scan_batch(files, &mut scans, &mut pending),
                        None => {
                            if self.scan_done(&mut scans) {
                                // The safety net counts from the end of the last full scan, so
                                // a scan longer than the interval does not run back to back.
                                rescan.reset();
                            }
                        }
                    }
                }
                event = rx.recv() => {
                    let Some(event) = event else { return Leave::Error("the file watcher stopped; Dropkey starts it again in a few seconds".into()) };
                    // What has queued up is taken in one turn: one event per turn would fall
                    // behind a busy watch and its queue would grow without end.
                    let mut next = Some(event);
                    let mut taken = 0;
                    while let Some(event) = next.take() {
                        if let Some(leave) = self.on_notify(event, root_id, &mut watcher, &mut scans, &mut pending) {
                            return leave;
                        }
                        taken += 1;
                        if taken < EVENTS_PER_TURN {
                            next = rx.try_recv().ok();
                        }
                    }
                }
                _ = tick.tick(), if ticking => {
                    self.check_pending(&mut pending).await;
                }
                _ = rescan.tick() => {
                    if root_state(&self.watch.path, root_id).is_err() {
                        return Leave::Missing(format!("{} was removed", self.watch.path.display()));
                    }
                    // One under way already covers what this one would look at.
                    if running { scans.request_full(&self.watch.path, false); }
                }
                event = events.recv() => {
                    // As above: the engine's events are taken as they queued up, so this
                    // receiver does not lag (and miss uploads to act on) behind a busy engine.
                    // Lagged: uploads ended unseen; what they left to do is in the journal.
                    let mut lagged = matches!(event, Err(tokio::sync::broadcast::error::RecvError::Lagged(_)));
                    let mut next = event.ok();
                    let mut taken = 0;
                    while let Some(event) = next.take() {
                        if let Event::Finished(finished) = event {
                            match finished.state {
                                JobState::Done => {
                                    self.after_upload(finished.job, finished.uploaded.as_ref().map(|u| u.url.clone())).await;
                                }
                                JobState::Failed => self.recheck_failed(Some(finished.job), &mut pending).await,
                                _ => {}
                            }
                        }
                        taken += 1;
                        if taken < EVENTS_PER_TURN {
                            next = match events.try_recv() {
                                Ok(event) => Some(event),
                                Err(err) => {
                                    lagged |= matches!(err, tokio::sync::broadcast::error::TryRecvError::Lagged(_));
                                    None
                                }
                            };
                        }
                    }
                    if lagged {
                        tracing::warn!("watch {}: missed finished uploads; catching up from the journal", self.watch.path.display());
                        self.apply_pending_actions().await;
                        self.recheck_failed(None, &mut pending).await;
                    }
                }
            }
        }
    }

    /// One event from `notify`; `Some` when the watch must leave the folder.
    fn on_notify(
        &self,
        event: notify::Result<notify::Event>,
        root_id: Option<(u64, u64)>,
        watcher: &mut notify::RecommendedWatcher,
        scans: &mut Scans,
        pending: &mut HashMap<PathBuf, Pending>,
    ) -> Option<Leave> {
        if *self.paused.borrow() {
            return None;
        }
        match event {
            Ok(event) => {
                if event.need_rescan() {
                    tracing::warn!(
                        "watch {}: events were lost (queue overflow); rescanning",
                        self.watch.path.display()
                    );
                    scans.request_full(&self.watch.path, true);
                    return None;
                }
                // Deleted and re-created before we looked: the kernel watch is on
                // the old folder and will never report the new one's files.
                let root_removed = matches!(event.kind, EventKind::Remove(_))
                    && event.paths.iter().any(|p| p == &self.watch.path);
                match root_state(&self.watch.path, root_id) {
                    Err(how) => {
                        return Some(Leave::Missing(format!(
                            "{} was {how}",
                            self.watch.path.display()
                        )))
                    }
                    Ok(()) if root_removed => {
                        return Some(Leave::Missing(format!(
                            "{} was replaced",
                            self.watch.path.display()
                        )))
                    }
                    Ok(()) => {}
                }
                self.on_event(&event, watcher, scans, pending);
            }
            Err(err) => {
                tracing::warn!("watch {}: {err}; rescanning", self.watch.path.display());
                scans.request_full(&self.watch.path, true);
            }
        }
        None
    }

    fn on_event(
        &self,
        event: &notify::Event,
        watcher: &mut notify::RecommendedWatcher,
        scans: &mut Scans,
        pending: &mut HashMap<PathBuf, Pending>,
    ) {
        let finished_signal = matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
        );
        let renamed = matches!(
            event.kind,
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
        );
        let relevant = finished_signal
            || renamed
            || matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any
            );
        if !relevant {
            return;
        }
        // For a rename with both paths, the last one is the new name.
        let paths: Vec<&PathBuf> = if matches!(
            event.kind,
            EventKind::Modify(ModifyKind::Name(RenameMode::Both))
        ) {
            event.paths.last().into_iter().collect()
        } else {
            event.paths.iter().collect()
        };
        for path in paths {
            // `lstat`: a symlink is not a file or a folder to look into.
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                pending.remove(path);
                continue;
            };
            if meta.is_dir() {
                // A folder moved or copied in: its files may come with no events of their own.
                if renamed || matches!(event.kind, EventKind::Create(_)) {
                    // notify's inotify backend adds its watch on a new folder only after it has
                    // forwarded the folder's event: a file written in between has no events and
                    // is missed by a walk made before it exists (seen under load). Watching the
                    // folder here, before the walk, closes the gap: what the walk misses, the
                    // watch reports. Other backends watch whole trees and have no such gap.
                    #[cfg(any(target_os = "linux", target_os = "android"))]
                    if self.watch.recursive {
                        if let Err(err) = watcher.watch(path, RecursiveMode::Recursive) {
                            tracing::debug!("watch {}: {err}", path.display());
                        }
                    }
                    #[cfg(not(any(target_os = "linux", target_os = "android")))]
                    let _ = &watcher;
                    scans.request_folder(path.clone());
                }
                continue;
            }
            self.consider(path, &meta, finished_signal || renamed, pending);
        }
    }

    fn consider(
        &self,
        path: &Path,
        meta: &std::fs::Metadata,
        closed: bool,
        pending: &mut HashMap<PathBuf, Pending>,
    ) {
        let Some(rel) = relative(&self.watch.path, path) else {
            return;
        };
        if !self.filter.accepts(&rel) {
            return;
        }
        if meta.file_type().is_symlink() {
            tracing::info!(
                "watch {}: {rel} is a symbolic link: not followed, not uploaded",
                self.watch.path.display()
            );
            return;
        }
        if !meta.is_file() || !real_folders_between(&self.watch.path, path) {
            return;
        }
        let size = meta.len();
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let entry = pending.entry(path.to_path_buf()).or_insert(Pending {
            size,
            mtime,
            since: Instant::now(),
            closed,
        });
        if entry.size != size || entry.mtime != mtime {
            entry.size = size;
            entry.mtime = mtime;
            entry.since = Instant::now();
        }
        entry.closed |= closed;
    }

    async fn check_pending(&mut self, pending: &mut HashMap<PathBuf, Pending>) {
        let now = Instant::now();
        let mut ready = Vec::new();
        pending.retain(|path, p| {
            // A file with no finished signal cannot be ready before it held still long enough:
            // look at it only then (a catch-up scan may leave thousands pending).
            if ready.len() >= READY_PER_TICK
                || (!p.closed && now.duration_since(p.since) < STABLE_FOR)
            {
                return true;
            }
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                return false;
            };
            let size = meta.len();
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if size != p.size || mtime != p.mtime {
                // Still being written: whatever closed before does not count any more.
                *p = Pending {
                    size,
                    mtime,
                    since: now,
                    closed: false,
                };
                return true;
            }
            if p.closed || now.duration_since(p.since) >= STABLE_FOR {
                ready.push(path.clone());
                return false;
            }
            true
        });
        for path in ready {
            if let Err(err) = self.handle_ready(&path).await {
                tracing::warn!(
                    "watch {}: {}: {err}",
                    self.watch.path.display(),
                    path.display()
                );
            }
        }
    }

    /// Compares a batch of walked files with the journal in one query and makes candidates of
    /// the unknown or changed ones.
    fn scan_batch(
        &self,
        files: Vec<(PathBuf, std::fs::Metadata)>,
        scans: &mut Scans,
        pending: &mut HashMap<PathBuf, Pending>,
    ) {
        let walked = files.len() as u64;
        let files: Vec<(PathBuf, std::fs::Metadata, String)> = files
            .into_iter()
            .filter_map(|(path, meta)| {
                let rel = relative(&self.watch.path, &path)?;
                self.filter.accepts(&rel).then_some((path, meta, rel))
            })
            .collect();
        let rels: Vec<&str> = files.iter().map(|(_, _, rel)| rel.as_str()).collect();
        let known = match self
            .engine
            .with_store(|s| s.journal_get_many(&self.key, &rels))
        {
            Ok(known) => known,
            Err(err) => {
                // Each candidate is looked up again before it is queued.
                tracing::warn!("watch {}: {err}", self.watch.path.display());
                HashMap::new()
            }
        };
        let mut candidates = 0;
        for (path, meta, rel) in &files {
            // Already journaled with the same size and mtime: nothing to do, and no hashing.
            if known.get(rel).is_some_and(|k| unchanged(k, meta)) {
                continue;
            }
            // Unknown or changed: it must hold still like any other candidate (it may be
            // mid-copy right now).
            self.consider(path, meta, false, pending);
            candidates += 1;
        }
        if let Some(scan) = scans.current() {
            scan.seen += walked;
            scan.candidates += candidates;
            scan.peak_pending = scan.peak_pending.max(pending.len());
        }
    }

    /// The scan that went first is over: starts the next one due. True when it was a full scan.
    fn scan_done(&self, scans: &mut Scans) -> bool {
        let (scan, full) = match scans.folder.take() {
            Some(scan) => (scan, false),
            None => match scans.full.take() {
                Some(scan) => (scan, true),
                None => return false,
            },
        };
        let line = format!(
            "watch {}: scan of {} done: {} files in {:.1} s, {} new or changed, at most {} waiting at once",
            self.watch.path.display(),
            scan.root.display(),
            scan.seen,
            scan.started.elapsed().as_secs_f64(),
            scan.candidates,
            scan.peak_pending
        );
        if full {
            tracing::info!("{line}");
            if std::mem::take(&mut scans.full_again) {
                scans.request_full(&self.watch.path, false);
            }
        } else {
            tracing::debug!("{line}");
            scans.next_folder();
        }
        full
    }

    /// A finished file: queue it unless the journal says it is already uploaded.
    async fn handle_ready(&mut self, path: &Path) -> Result<(), EngineError> {
        let Some(rel) = relative(&self.watch.path, path) else {
            return Ok(());
        };
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Ok(());
        };
        if !meta.is_file() {
            return Ok(());
        }
        let known = self.engine.with_store(|s| s.journal_get(&self.key, &rel))?;
        if known.as_ref().is_some_and(|k| unchanged(k, &meta)) {
            return Ok(());
        }
        // Opened below the root without following any link, then identified and hashed on
        // that handle: the identity the job carries is the file's that was hashed.
        let (root, rel2) = (self.watch.path.clone(), rel.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let mut file = identity::open_beneath(&root, &rel2)?;
            let mut id = FileIdentity::of(&file.metadata()?, true);
            id.sha256 = Some(identity::sha256_of(&mut file)?);
            // Written to while it was hashed: not finished after all; its next event decides.
            if id.difference(&file.metadata()?).is_some() {
                return Err(std::io::Error::other("changed while it was hashed"));
            }
            Ok::<_, std::io::Error>(id)
        })
        .await;
        let file_id = match checked {
            Ok(Ok(id)) if id.size == meta.len() && id.mtime_ns == mtime_ns(&meta) => id,
            Ok(Err(err)) if err.raw_os_error().is_some_and(is_link_refusal) => {
                tracing::info!(
                    "watch {}: {rel} is reached through a symbolic link: not followed, not uploaded",
                    self.watch.path.display()
                );
                return Ok(());
            }
            // Vanished, unreadable, or changed while hashed: the next event will tell.
            _ => return Ok(()),
        };
        let (size, mtime) = (file_id.size, file_id.mtime_ns);
        let inode = Some((file_id.dev, file_id.ino));
        let sha256 = file_id.sha256.clone().unwrap_or_default();
        if let Some(k) = &known {
            if k.sha256 == sha256 || self.watch.on_change == OnChange::Ignore {
                // Same content touched, or a rewrite this watch ignores: remember the new
                // metadata so it is not hashed again.
                let (key, rel2) = (self.key.clone(), rel.clone());
                self.engine
                    .with_store(|s| s.journal_update(&key, &rel2, &rel2, size, mtime, inode))?;
                if k.sha256 != sha256 {
                    tracing::info!(
                        "{} changed after its upload; on_change = \"ignore\"",
                        path.display()
                    );
                }
                return Ok(());
            }
        } else {
            // The same content under a path that no longer exists: a rename (of the file or a
            // folder), not a new file.
            let same = self
                .engine
                .with_store(|s| s.journal_by_content(&self.key, size, &sha256))?;
            if let Some(old) = same
                .into_iter()
                .find(|e| !self.watch.path.join(&e.rel_path).exists())
            {
                let key = self.key.clone();
                self.engine.with_store(|s| {
                    s.journal_update(&key, &old.rel_path, &rel, size, mtime, inode)
                })?;
                tracing::info!(
                    "{} was renamed from {}; not uploading again",
                    rel,
                    old.rel_path
                );
                return Ok(());
            }
        }
        let profile = match self.engine.config().profile(&self.watch.profile) {
            Some(p) => p.clone(),
            None => return Ok(()),
        };
        let overrides = self.overrides(&profile, &rel);
        let mut job = self.engine.prepare(
            &profile,
            path,
            &overrides,
            JobSource::Watch(self.watch.path.clone()),
        )?;
        job.size = size;
        job.file = Some(file_id);
        if let Some(metadata) = self.watch.metadata {
            job.metadata = metadata;
        }
        if let Some(on_duplicate) = self.watch.on_duplicate {
            job.on_duplicate = on_duplicate;
        }
        if let Some(resize) = self.watch.resize {
            job.resize = resize;
        }
        let entry = JournalEntry {
            watch: self.key.clone(),
            rel_path: rel,
            size,
            mtime_ns: mtime,
            sha256,
            job_id: None,
            action_done: false,
            file_inode: inode,
        };
        self.engine.enqueue_watched(&job, &entry)?;
        Ok(())
    }

    /// The watch's folder (through `remote_path`) and tags for the file at `rel`.
    fn overrides(&self, profile: &Profile, rel: &str) -> Params {
        let mut params = Params::new();
        let base = self
            .watch
            .folder
            .clone()
            .or_else(|| profile.folder.clone())
            .unwrap_or_else(|| "/".into());
        let folder = match &self.watch.remote_path {
            Some(template) => render_remote_path(template, &base, rel, crate::unix_now()),
            None => base,
        };
        params.insert("folder".into(), folder);
        if let Some(tags) = &self.watch.tags {
            params.insert("tags".into(), tags.join(","));
        }
        params
    }

    async fn after_upload(&mut self, job: JobId, url: Option<String>) {
        let Ok(Some(entry)) = self.engine.with_store(|s| s.journal_by_job(job)) else {
            return;
        };
        if entry.watch != self.key {
            return;
        }
        if let Some(state) = lock(&self.states).get_mut(self.index) {
            state.info.uploads += 1;
            state.info.last_upload = url;
        }
        self.apply_action(&entry).await;
    }

    /// The after-upload actions not applied yet (the process stopped first, or their uploads'
    /// events were missed), a page at a time: after a crash there may be a million.
    async fn apply_pending_actions(&mut self) {
        const PAGE: usize = 256;
        let key = self.key.clone();
        if self.watch.after_upload == AfterUpload::Keep {
            let _ = self.engine.with_store(|s| s.journal_keep_done(&key));
            return;
        }
        let mut after = String::new();
        loop {
            let Ok(page) = self
                .engine
                .with_store(|s| s.journal_pending_actions_page(&key, &after, PAGE))
            else {
                return;
            };
            let Some(last) = page.last() else {
                return;
            };
            after = last.rel_path.clone();
            let full = page.len() == PAGE;
            for entry in page {
                self.apply_action(&entry).await;
            }
            if !full {
                return;
            }
        }
    }

    /// A watched upload failed (`job`, or at start every failed one): if its file is no longer
    /// the one that was queued (the engine refused to send it), the journal forgets the old
    /// entry and the file at that path is a candidate again, as a new file.
    async fn recheck_failed(
        &mut self,
        job: Option<JobId>,
        pending: &mut HashMap<PathBuf, Pending>,
    ) {
        let key = self.key.clone();
        let failed = match job {
            Some(job) => self.engine.with_store(|s| {
                Ok(match s.journal_by_job(job)? {
                    Some(entry) if entry.watch == key => vec![(entry, s.get(job)?)],
                    _ => Vec::new(),
                })
            }),
            None => self.engine.with_store(|s| s.journal_failed(&key)),
        };
        for (entry, record) in failed.unwrap_or_default() {
            let Some(expected) = record.file else {
                continue;
            };
            let path = self.watch.path.join(&entry.rel_path);
            let now = std::fs::symlink_metadata(&path);
            let mut changed = match &now {
                Ok(meta) => expected.difference(meta),
                Err(_) => Some("gone".into()),
            };
            if changed.is_none() && job.is_some() {
                // Same inode, size and mtime: only the content can tell (one file, on failure).
                let (root, rel, sha) = (
                    self.watch.path.clone(),
                    entry.rel_path.clone(),
                    expected.sha256.clone(),
                );
                let same = tokio::task::spawn_blocking(move || {
                    let mut file = identity::open_beneath(&root, &rel)?;
                    Ok::<_, std::io::Error>(Some(identity::sha256_of(&mut file)?) == sha)
                })
                .await;
                if matches!(same, Ok(Ok(false))) {
                    changed = Some("rewritten in place".into());
                }
            }
            let Some(why) = changed else {
                // Failed for another reason (a refusal by the provider): the user decides.
                continue;
            };
            let _ = self
                .engine
                .with_store(|s| s.journal_remove(&entry.watch, &entry.rel_path));
            tracing::warn!(
                "watch {}: {} was replaced after it was queued ({why}); job {} did not upload it, and the file now there is queued as a new file",
                self.watch.path.display(),
                entry.rel_path,
                record.id
            );
            if let Ok(meta) = now {
                self.consider(&path, &meta, true, pending);
            }
        }
    }

    /// Moves or deletes an uploaded file, only if it is still the file that was uploaded (same
    /// device and inode as queued, same SHA-256). A file deleted or moved away leaves the
    /// journal: a new file at its path is a new file.
    async fn apply_action(&self, entry: &JournalEntry) {
        let done = |store: &mut crate::engine::store::Store| {
            store.journal_action_done(&entry.watch, &entry.rel_path)
        };
        if self.watch.after_upload == AfterUpload::Keep {
            let _ = self.engine.with_store(done);
            return;
        }
        let expected = entry
            .job_id
            .and_then(|id| self.engine.job(id).ok())
            .and_then(|job| job.file);
        let (root, entry2, action) = (
            self.watch.path.clone(),
            entry.clone(),
            self.watch.after_upload.clone(),
        );
        let acted =
            tokio::task::spawn_blocking(move || act(&root, &entry2, expected.as_ref(), &action))
                .await
                .unwrap_or_else(|err| Err(std::io::Error::other(err.to_string())));
        let path = self.watch.path.join(&entry.rel_path);
        match acted {
            Ok(Acted::Done(what)) => {
                tracing::info!("after upload: {} {what}", path.display());
                let _ = self
                    .engine
                    .with_store(|s| s.journal_remove(&entry.watch, &entry.rel_path));
            }
            Ok(Acted::Gone) => {
                let _ = self
                    .engine
                    .with_store(|s| s.journal_remove(&entry.watch, &entry.rel_path));
            }
            Ok(Acted::Changed(why)) => {
                // The uploaded file is no longer at this path: what is there now is a new file.
                tracing::warn!(
                    "after upload: {} left in place: {why}; it is not the file that was uploaded, so it counts as a new file",
                    path.display()
                );
                let _ = self
                    .engine
                    .with_store(|s| s.journal_remove(&entry.watch, &entry.rel_path));
            }
            // Left for the next start to try again.
            Err(err) => tracing::warn!("after upload of {}: {err}", path.display()),
        }
    }
}

enum Acted {
    /// Deleted, or moved to the path given.
    Done(String),
    /// Nothing at the path any more.
    Gone,
    /// Not the uploaded file any more: left alone.
    Changed(String),
}

/// Deletes or moves the file of `entry` if it is still the uploaded one. Each step renames
/// first (never over an existing name) and checks that what it renamed is the inode it
/// verified, undoing the rename otherwise, so a file swapped in meanwhile is never destroyed or
/// archived in place of the uploaded one.
fn act(
    root: &Path,
    entry: &JournalEntry,
    expected: Option<&FileIdentity>,
    action: &AfterUpload,
) -> std::io::Result<Acted> {
    let path = root.join(&entry.rel_path);
    let mut file = match identity::open_beneath(root, &entry.rel_path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Acted::Gone),
        Err(err) if err.raw_os_error().is_some_and(is_link_refusal) => {
            return Ok(Acted::Changed("a symbolic link is in its place".into()))
        }
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    if let Some(expected) = expected {
        if !identity::same_inode_as(expected, &meta) {
            return Ok(Acted::Changed("another file was put at its path".into()));
        }
    }
    if meta.len() != entry.size || identity::sha256_of(&mut file)? != entry.sha256 {
        return Ok(Acted::Changed(
            "its content changed after the upload".into(),
        ));
    }
    drop(file);
    let parent = path.parent().unwrap_or(root);
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let (target, what) = match action {
        AfterUpload::Keep => return Ok(Acted::Gone),
        AfterUpload::Delete => {
            let hidden = parent.join(format!(
                ".dropkey-deleting-{}",
                uuid::Uuid::new_v4().simple()
            ));
            (hidden, None)
        }
        AfterUpload::Move(dir) => {
            let rel_dir = entry.rel_path.rsplit_once('/').map_or("", |(d, _)| d);
            let target_dir = root.join(dir).join(rel_dir);
            std::fs::create_dir_all(&target_dir)?;
            if !real_folders_between(root, &target_dir.join("x")) {
                return Err(std::io::Error::other(format!(
                    "{} is or passes through a symbolic link: not moving files there",
                    target_dir.display()
                )));
            }
            let target = move_free_name(&path, &target_dir, &name)?;
            (target.clone(), Some(target))
        }
    };
    if what.is_none() {
        identity::rename_no_replace(&path, &target)?;
    }
    // What was renamed must be the inode checked above; anything else goes back.
    let moved = std::fs::symlink_metadata(&target)?;
    if !identity::same_inode(&moved, &meta) {
        let undo = identity::rename_no_replace(&target, &path);
        return Ok(Acted::Changed(format!(
            "it was replaced while being {}{}",
            if what.is_some() { "moved" } else { "deleted" },
            match undo {
                Ok(()) => String::new(),
                Err(err) => format!(
                    "; the file now at {} could not be put back: {err}",
                    target.display()
                ),
            }
        )));
    }
    match what {
        Some(target) => Ok(Acted::Done(format!("moved to {}", target.display()))),
        None => {
            std::fs::remove_file(&target)?;
            Ok(Acted::Done("deleted".into()))
        }
    }
}

/// Moves `path` into `dir` under `name`, or `stem (1).ext`, `stem (2).ext`, ... when taken:
/// never over an existing file.
fn move_free_name(path: &Path, dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<PathBuf> {
    let as_path = Path::new(name);
    let stem = as_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = as_path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    for n in 0..10_000u32 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        match identity::rename_no_replace(path, &candidate) {
            Ok(()) => return Ok(candidate),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::other(format!(
        "{} holds 10,000 files named like {}: clear it out",
        dir.display(),
        name.to_string_lossy()
    )))
}

/// Whether the file `meta` describes is still the journaled one, without reading it: same size
/// and mtime, and the same inode as queued (another file put in its place with the same size and
/// mtime is not the journaled file).
fn unchanged(entry: &JournalEntry, meta: &std::fs::Metadata) -> bool {
    entry.size == meta.len()
        && entry.mtime_ns == mtime_ns(meta)
        && entry
            .file_inode
            .is_none_or(|inode| inode == identity::dev_ino(meta))
}

/// An event for a file only read: opened, accessed, or closed without writing.
/// Why the file watcher could not watch `path`, and what to do about it.
fn watch_failed(path: &Path, err: &notify::Error) -> String {
    let hint = match &err.kind {
        notify::ErrorKind::MaxFilesWatch => {
            "; the system's limit of watched folders is reached: raise fs.inotify.max_user_watches (sysctl) or watch fewer subfolders"
        }
        notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            "; Dropkey may not read it: check the folder's permissions"
        }
        _ => "",
    };
    format!("cannot watch {}: {err}{hint}", path.display())
}

fn is_read_only(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Access(access) if !matches!(access, AccessKind::Close(AccessMode::Write)))
}

/// Whether every folder between `root` and `path`'s parent is a real folder, not a link.
fn real_folders_between(root: &Path, path: &Path) -> bool {
    let Some(rel) = path.parent().and_then(|p| p.strip_prefix(root).ok()) else {
        return false;
    };
    let mut dir = root.to_path_buf();
    for part in rel.components() {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            _ => return false,
        }
    }
    true
}

/// The errors `openat` gives for a symlink it was told not to follow (`ELOOP`), or a link where
/// a folder was expected (`ENOTDIR`).
fn is_link_refusal(code: i32) -> bool {
    #[cfg(unix)]
    {
        code == rustix::io::Errno::LOOP.raw_os_error()
            || code == rustix::io::Errno::NOTDIR.raw_os_error()
    }
    #[cfg(not(unix))]
    {
        let _ = code;
        false
    }
}

/// `rel` of `path` under `root`, `/`-separated; `None` outside it.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Which folder `path` is (device and inode), to notice one deleted and re-created in its place.
fn folder_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| identity(&m))
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        (meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        (0, 0)
    }
}

/// Whether the watched folder is still the one the watch was set on (`root_id`), with one
/// `stat` per call (it runs for every event): `Err("removed")` when it is gone or no longer a
/// folder, `Err("replaced")` when another folder stands in its place.
fn root_state(path: &Path, root_id: Option<(u64, u64)>) -> Result<(), &'static str> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            if Some(identity(&meta)) == root_id {
                Ok(())
            } else {
                Err("replaced")
            }
        }
        _ => Err("removed"),
    }
}

/// Renders a `remote_path` template for the file at `rel`, dated `now` (UTC).
pub fn render_remote_path(template: &str, folder: &str, rel: &str, now: i64) -> String {
    let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
    let (y, m, d) = civil_date(now);
    let rendered = template
        .replace("{folder}", folder)
        .replace("{dir}", dir)
        .replace("{yyyy}", &format!("{y:04}"))
        .replace("{mm}", &format!("{m:02}"))
        .replace("{dd}", &format!("{d:02}"))
        .replace("{date}", &format!("{y:04}-{m:02}-{d:02}"));
    // Empty placeholders leave `//`: collapse them.
    let parts: Vec<&str> = rendered.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

/// (year, month, day) of a Unix time, UTC.
pub(crate) fn civil_date(unix: i64) -> (i64, u32, u32) {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_path_templates() {
        // 2024-05-01 10:00:00 UTC
        let t = 1_714_557_600;
        assert_eq!(
            render_remote_path("{folder}/{yyyy}/{mm}/{dir}", "/shoots", "day1/a.jpg", t),
            "/shoots/2024/05/day1"
        );
        assert_eq!(
            render_remote_path("{folder}/{dir}", "/shoots/", "a.jpg", t),
            "/shoots"
        );
        assert_eq!(
            render_remote_path("/x/{date}", "/", "a/b/c.jpg", t),
            "/x/2024-05-01"
        );
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
    }

    #[test]
    fn reads_are_dropped_writes_are_kept() {
        use notify::event::{CreateKind, DataChange};
        assert!(is_read_only(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(is_read_only(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_read_only(&EventKind::Access(AccessKind::Read)));
        assert!(!is_read_only(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!is_read_only(&EventKind::Create(CreateKind::File)));
        assert!(!is_read_only(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(!is_read_only(&EventKind::Any));
    }

    #[test]
    fn relative_paths_use_slashes() {
        assert_eq!(
            relative(Path::new("/w"), Path::new("/w/a/b.jpg")).as_deref(),
            Some("a/b.jpg")
        );
        assert_eq!(relative(Path::new("/w"), Path::new("/w")), None);
        assert_eq!(relative(Path::new("/w"), Path::new("/x/a")), None);
    }
}
