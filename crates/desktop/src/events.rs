//! From the engine to the window: engine events are coalesced for 200 ms (latest state and
//! progress per job win) and queued as one batch for the window, which pulls them with
//! `next_events` ([`UiEvents`](crate::pull::UiEvents)), so 1,000 uploads cost at most five answers a second. Messages carry changed
//! rows and ids, never what the window reads in pages: a finished upload is named by its id, and
//! the History screen reads the rows it shows (before, each flush read and sent up to 200 full
//! history rows from the store, whether or not the screen was open). The same loop keeps the
//! tray's tooltip and recent uploads current and sends one notification per finished batch,
//! through the [`Shell`] the app supplies: this crate knows no window, tray or clipboard.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use dropkey_core::engine::{Event, JobId, JobState};

use crate::backend::{Backend, Batch};
use crate::models::{job_id, AppStatus, IntakeView, JobView, ProgressView, UiEvent, WatchView};

const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Watch status and the app status are polled this many flushes apart (and at once after a
/// connectivity change).
const POLL_EVERY: u32 = 3;
/// The tray is rebuilt at most this often during a burst (and once when it ends): each rebuild
/// runs on the GTK main thread and re-exports the menu over D-Bus, and doing it at the flush
/// rate made the window drop most frames while 1,000 files uploaded.
const TRAY_EVERY: Duration = Duration::from_secs(1);

/// What [`forward`] needs of the desktop: the window's queue, the clipboard, the tray and
/// notifications. The app implements it over its Tauri handle.
pub trait Shell {
    /// Sends `events` to the window, if it listens.
    fn send(&self, events: Vec<UiEvent>);
    /// Puts `text` on the clipboard; false if the clipboard refused it.
    fn copy_text(&self, text: &str) -> bool;
    /// Shows `status` in the tray's tooltip.
    fn set_status(&self, status: &AppStatus);
    /// Rebuilds the tray menu (recent uploads, watches).
    fn refresh_menu(&self);
    /// Tells the user, once, how a batch of uploads ended.
    fn notify_batch(&self, backend: &Backend, batch: Batch);
}

/// More changed jobs than this in one flush are not sent row by row: the window reads its rows
/// again instead.
const MAX_CHANGED: usize = 256;
/// Finished uploads named to the History screen per flush at most (the newest); it reads its
/// rows from the backend in any case, and the page it reads says how many there are.
const MAX_UPLOADED: usize = 1000;
/// The queue's counts are a query over the whole queue: during a burst, at most this often.
const COUNTS_EVERY: Duration = Duration::from_millis(400);

/// Engine events gathered between two flushes.
#[derive(Default)]
pub struct Batcher {
    changed: BTreeSet<JobId>,
    progress: HashMap<JobId, ProgressView>,
    uploaded: VecDeque<JobId>,
    finished: Vec<JobState>,
    /// Rows changed in bulk or unseen: the window reads its rows again.
    reload: bool,
    /// The queue's counts changed since they were last sent.
    counts_due: bool,
    counts_sent: Option<tokio::time::Instant>,
    /// Connectivity changed: the status (and its offline line) is due at the next flush.
    status_due: bool,
    /// Files skipped as already uploaded since the last flush, and the newest of them.
    duplicates: usize,
    last_duplicate: Option<(String, String)>,
}

/// Files skipped as already uploaded in one flush: the newest one's link goes to the
/// clipboard, as an upload's would, and the window says so.
pub struct Duplicates {
    pub count: usize,
    pub line: String,
    pub url: String,
}

/// One flush: what goes to the window, and what the shell should act on.
pub struct Flushed {
    pub events: Vec<UiEvent>,
    pub batch_ended: Option<Batch>,
    pub uploaded: bool,
    pub status_due: bool,
    pub duplicates: Option<Duplicates>,
}

impl Batcher {
    pub fn add(&mut self, event: &Event) {
        match event {
            // New rows are appended: the counts say so, and the window reads them when they
            // come into its view (they arrive by the thousand when a folder is dropped).
            Event::Queued { .. } => self.counts_due = true,
            // Rows changed anywhere (retry all, a cancelled drop): the window reads again.
            Event::QueueChanged => self.resync(),
            Event::Started { job, .. } | Event::Paused { job } => {
                self.change(*job);
            }
            Event::Retrying { job, .. } => {
                self.change(*job);
                self.progress.remove(job);
            }
            Event::Progress(p) => {
                self.progress.insert(
                    p.job,
                    ProgressView {
                        id: job_id(p.job),
                        bytes_sent: p.bytes_sent as f64,
                        total: p.total as f64,
                        speed: if p.speed.is_finite() { p.speed } else { 0.0 },
                        eta_secs: p.eta_secs.filter(|s| s.is_finite()),
                    },
                );
            }
            Event::Offline { .. } | Event::Online { .. } => self.status_due = true,
            Event::Finished(f) => {
                self.change(f.job);
                self.progress.remove(&f.job);
                self.finished.push(f.state);
                if let Some(up) = &f.uploaded {
                    if let Some(earlier) = up.sent.as_ref().and_then(|s| s.duplicate_of) {
                        let name = f.path.file_name().unwrap_or_default().to_string_lossy();
                        self.duplicates += 1;
                        self.last_duplicate = Some((earlier.line(&name), up.url.clone()));
                    }
                }
                if f.state == JobState::Done {
                    if self.uploaded.len() == MAX_UPLOADED {
                        self.uploaded.pop_front();
                    }
                    self.uploaded.push_back(f.job);
                }
            }
        }
    }

    fn change(&mut self, job: JobId) {
        self.counts_due = true;
        if self.reload {
            return;
        }
        self.changed.insert(job);
        if self.changed.len() > MAX_CHANGED {
            self.changed.clear();
            self.reload = true;
        }
    }

    /// Some events were dropped: the window reads its rows and counts again.
    pub fn resync(&mut self) {
        self.reload = true;
        self.counts_due = true;
    }

    pub fn flush(&mut self, backend: &Backend) -> Flushed {
        let mut events = Vec::new();
        let now = tokio::time::Instant::now();
        let counts_now = self.counts_due
            && self
                .counts_sent
                .is_none_or(|at| now.duration_since(at) >= COUNTS_EVERY);
        if counts_now {
            if let Ok(counts) = backend.queue_counts() {
                events.push(UiEvent::Queue {
                    counts,
                    reload: std::mem::take(&mut self.reload),
                });
                self.counts_due = false;
                self.counts_sent = Some(now);
            }
        }
        let jobs: Vec<JobView> = std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|id| backend.engine.job(id).ok())
            .map(|r| JobView::from(&r))
            .collect();
        if !jobs.is_empty() {
            events.push(UiEvent::Jobs { jobs });
        }
        if !self.progress.is_empty() {
            let mut updates: Vec<ProgressView> = self.progress.drain().map(|(_, p)| p).collect();
            updates.sort_by_key(|p| p.id);
            events.push(UiEvent::Progress { updates });
        }
        let uploaded = !self.uploaded.is_empty();
        if uploaded {
            let ids = std::mem::take(&mut self.uploaded)
                .into_iter()
                .map(job_id)
                .collect();
            events.push(UiEvent::Uploaded { ids });
        }
        let finished = std::mem::take(&mut self.finished);
        let batch_ended = backend.batch_finished(&finished);
        let count = std::mem::take(&mut self.duplicates);
        let duplicates =
            self.last_duplicate
                .take()
                .map(|(line, url)| Duplicates { count, line, url });
        Flushed {
            events,
            batch_ended,
            uploaded,
            status_due: std::mem::take(&mut self.status_due),
            duplicates,
        }
    }
}

/// Runs until the engine stops: forwards its events and keeps the tray current.
pub async fn forward(shell: impl Shell, backend: Arc<Backend>) {
    let mut events = backend.engine.subscribe();
    let mut batcher = Batcher::default();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_status: Option<AppStatus> = None;
    let mut last_watches: Option<Vec<WatchView>> = None;
    let mut last_intakes: Vec<IntakeView> = Vec::new();
    let mut quiet = 0u32;
    let mut menu_due = false;
    let mut last_menu: Option<tokio::time::Instant> = None;
    // The tooltip as last shown, and when.
    let mut tooltip: Option<(AppStatus, tokio::time::Instant)> = None;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => batcher.add(&event),
                Err(RecvError::Lagged(_)) => batcher.resync(),
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                let flushed = batcher.flush(&backend);
                let busy = !flushed.events.is_empty();
                let mut out = flushed.events;
                if let Some(dup) = flushed.duplicates {
                    let copied = shell.copy_text(&dup.url);
                    let message = match (dup.count, copied) {
                        (1, true) => format!("{}: its link is copied", dup.line),
                        (1, false) => dup.line,
                        (n, _) => format!("{n} files were already uploaded and were not sent again ({})", dup.line),
                    };
                    out.push(UiEvent::Notice { message, error: false });
                }
                let intakes = backend.intake_views();
                if intakes != last_intakes {
                    out.push(UiEvent::Intakes { intakes: intakes.clone() });
                    last_intakes = intakes;
                }
                quiet += 1;
                // Not on every busy flush: the status counts the unfinished jobs, and a
                // million of them cost a count each time.
                if flushed.status_due || quiet >= POLL_EVERY {
                    quiet = 0;
                    let status = backend.status();
                    if last_status.as_ref() != Some(&status) {
                        out.push(UiEvent::Status { status: status.clone() });
                        last_status = Some(status);
                    }
                    let watches = backend.watches();
                    if last_watches.as_ref() != Some(&watches) {
                        out.push(UiEvent::Watches { watches: watches.clone() });
                        last_watches = Some(watches);
                        // The tray lists each watch's state and counts.
                        menu_due = true;
                    }
                }
                shell.send(out);
                let now = tokio::time::Instant::now();
                let tray_due = |last: Option<tokio::time::Instant>| {
                    !busy || last.is_none_or(|at| now.duration_since(at) >= TRAY_EVERY)
                };
                if let Some(status) = &last_status {
                    // A change of activity (idle, uploading, paused, error) shows at once; a
                    // count that changes shows at most once a second.
                    let shown = tooltip.as_ref();
                    let changed = shown.is_none_or(|(s, _)| s != status);
                    let urgent = shown.is_none_or(|(s, _)| s.activity != status.activity);
                    if changed && (urgent || tray_due(shown.map(|(_, at)| *at))) {
                        shell.set_status(status);
                        tooltip = Some((status.clone(), now));
                    }
                }
                menu_due |= flushed.uploaded;
                if menu_due && tray_due(last_menu) {
                    shell.refresh_menu();
                    menu_due = false;
                    last_menu = Some(now);
                }
                if let Some(batch) = flushed.batch_ended {
                    shell.notify_batch(&backend, batch);
                }
            }
        }
    }
}
