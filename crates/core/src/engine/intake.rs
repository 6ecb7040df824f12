//! Intakes: queueing what the user dropped, picked or pasted, however much it is.
//!
//! A drop of one folder can name a million files. An intake walks it on a blocking thread
//! ([`crate::inputs::walk_folder`], the CLI's walk) and queues what it finds in batches, so
//! the first upload starts while the rest is still being found, and nothing holds the whole
//! batch: memory is one batch of jobs and a bounded list of rejections. Its jobs carry its id,
//! so cancelling it stops the walk and cancels the jobs it queued that have not finished.
//!
//! The destination rules (folder, tags, keep-structure) live here too, so every front end
//! that queues files sends them to the same place.

use std::ops::ControlFlow;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::job::{IntakeId, NewJob};
use super::{Engine, EngineError};
use crate::config::Profile;
use crate::inputs::{walk_folder, Found};
use crate::sign::Params;

pub const MAX_FOLDER_LEN: usize = 1_024;
pub const MAX_TAGS: usize = 100;
pub const MAX_TAG_LEN: usize = 128;
/// Rejections kept with their reasons; the rest are only counted.
pub const KEPT_REJECTIONS: usize = 20;
/// The first batch is small so the first upload starts at once; later ones are larger so a
/// big folder costs few transactions.
const FIRST_BATCH: usize = 64;
const BATCH: usize = 1_000;
/// A batch is queued after this long even if not full, so a slow disk still shows progress.
const BATCH_TIME: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("no files given")]
    Empty,
    #[error("the folder is over {MAX_FOLDER_LEN} characters or has control characters")]
    FolderTooLong,
    #[error("the folder must not contain `.` or `..` parts")]
    FolderDots,
    #[error("at most {MAX_TAGS} tags")]
    TooManyTags,
    #[error("tag `{0}` is empty, over {MAX_TAG_LEN} characters, or contains a comma or control characters")]
    BadTag(String),
}

/// Where a request's files go, as the user set it for this batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destination {
    /// `None`: the profile's folder; `Some("")`: the root.
    pub folder: Option<String>,
    /// `None`: the profile's tags; `Some([])`: no tags.
    pub tags: Option<Vec<String>>,
    /// A dropped folder's files go under `<folder>/<dropped folder>/<sub folders>`.
    pub keep_structure: bool,
}

/// What to queue.
#[derive(Debug, Clone)]
pub struct IntakeRequest {
    pub profile: Profile,
    /// Files and folders (folders are walked); absolute paths only.
    pub paths: Vec<PathBuf>,
    pub destination: Destination,
    /// Who asked, recorded on every job.
    pub source: super::JobSource,
}

/// A path that was not queued, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub path: String,
    pub reason: String,
}

/// How far an intake got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntakeProgress {
    /// Files found so far (queued or rejected).
    pub found: u64,
    pub queued: u64,
    pub rejected: u64,
    /// The first [`KEPT_REJECTIONS`] rejections.
    pub rejections: Vec<Rejection>,
    /// The walk ended (all found, cancelled, or failed).
    pub finished: bool,
    pub cancelled: bool,
    /// Why it stopped early, when the queue could not be written.
    pub error: Option<String>,
}

impl IntakeProgress {
    fn reject(&mut self, path: String, reason: String) {
        self.found += 1;
        self.rejected += 1;
        if self.rejections.len() < KEPT_REJECTIONS {
            self.rejections.push(Rejection { path, reason });
        }
    }
}

/// A running (or finished) intake.
#[derive(Debug, Clone)]
pub struct Intake {
    pub id: IntakeId,
    /// A short description: the folder's or file's name, and how many more.
    pub label: String,
    progress: watch::Receiver<IntakeProgress>,
    cancel: CancellationToken,
}

impl Intake {
    pub fn progress(&self) -> IntakeProgress {
        self.progress.borrow().clone()
    }

    /// Waits until the walk ended, or `limit` passed; the progress either way.
    pub async fn wait(&self, limit: Duration) -> IntakeProgress {
        let mut rx = self.progress.clone();
        let _ = tokio::time::timeout(limit, rx.wait_for(|p| p.finished)).await;
        let progress = rx.borrow().clone();
        progress
    }

    /// Stops the walk; the jobs already queued are the engine's to cancel
    /// ([`Engine::cancel_intake`]).
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

/// The upload parameters a destination sets, checked. Tags are trimmed.
pub fn destination_params(destination: &Destination) -> Result<Params, IntakeError> {
    let mut params = Params::new();
    if let Some(folder) = &destination.folder {
        let folder = folder.trim();
        if folder.len() > MAX_FOLDER_LEN || folder.chars().any(char::is_control) {
            return Err(IntakeError::FolderTooLong);
        }
        if Path::new(folder)
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(IntakeError::FolderDots);
        }
        if !folder.is_empty() {
            params.insert("folder".into(), folder.to_owned());
        }
    }
    if let Some(tags) = &destination.tags {
        if tags.len() > MAX_TAGS {
            return Err(IntakeError::TooManyTags);
        }
        for tag in tags {
            if tag.trim().is_empty()
                || tag.len() > MAX_TAG_LEN
                || tag.contains(',')
                || tag.chars().any(char::is_control)
            {
                return Err(IntakeError::BadTag(tag.clone()));
            }
        }
        if !tags.is_empty() {
            params.insert(
                "tags".into(),
                tags.iter().map(|t| t.trim()).collect::<Vec<_>>().join(","),
            );
        }
    }
    Ok(params)
}

/// Unique ids without a table: milliseconds since the epoch, bumped past the last one given.
fn next_id() -> IntakeId {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
    )
    .unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let id = now.max(last + 1);
        match LAST.compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return IntakeId(id),
            Err(seen) => last = seen,
        }
    }
}

/// The request's top-level paths, without those another one already covers: a file inside a
/// dropped folder, a folder inside another, the same path twice. Folders are only walked once,
/// so no set of every file found is needed.
fn roots(paths: &[PathBuf]) -> Vec<(PathBuf, bool)> {
    let is_dir: Vec<bool> = paths.iter().map(|p| p.is_dir()).collect();
    let folders: Vec<&PathBuf> = paths
        .iter()
        .zip(&is_dir)
        .filter_map(|(p, d)| d.then_some(p))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (path, dir) in paths.iter().zip(is_dir) {
        if !path.is_absolute() {
            out.push((path.clone(), dir));
            continue;
        }
        let inside_another = folders
            .iter()
            .any(|folder| *folder != path && path.starts_with(folder));
        if inside_another || !seen.insert(path.clone()) {
            continue;
        }
        out.push((path.clone(), dir));
    }
    out
}

impl Engine {
    /// Starts queueing `request` in the background and returns at once. Fails only when the
    /// request itself is wrong (no paths, a bad folder or tag); files that cannot be queued
    /// are counted in the progress as rejected.
    pub fn start_intake(&self, request: IntakeRequest) -> Result<Intake, EngineError> {
        if request.paths.is_empty() {
            return Err(IntakeError::Empty.into());
        }
        let overrides = destination_params(&request.destination)?;
        let id = next_id();
        let label = match request.paths.as_slice() {
            [one] => display_name(one),
            [first, rest @ ..] => format!("{} and {} more", display_name(first), rest.len()),
            [] => String::new(),
        };
        let (tx, rx) = watch::channel(IntakeProgress::default());
        let cancel = CancellationToken::new();
        let intake = Intake {
            id,
            label,
            progress: rx,
            cancel: cancel.clone(),
        };
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut run = Run {
                engine: &engine,
                request: &request,
                overrides,
                id,
                tx: &tx,
                cancel: &cancel,
                batch: Vec::with_capacity(FIRST_BATCH),
                batch_started: Instant::now(),
                progress: IntakeProgress::default(),
                first_sent: false,
            };
            run.run();
        });
        Ok(intake)
    }
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

struct Run<'a> {
    engine: &'a Engine,
    request: &'a IntakeRequest,
    overrides: Params,
    id: IntakeId,
    tx: &'a watch::Sender<IntakeProgress>,
    cancel: &'a CancellationToken,
    batch: Vec<NewJob>,
    batch_started: Instant,
    progress: IntakeProgress,
    first_sent: bool,
}

impl Run<'_> {
    fn run(&mut self) {
        let flow = self.walk();
        if flow.is_continue() {
            let _ = self.flush();
        }
        self.progress.finished = true;
        self.progress.cancelled = self.cancel.is_cancelled();
        self.tx.send_replace(self.progress.clone());
    }

    fn walk(&mut self) -> ControlFlow<()> {
        // Where this batch goes: the request's folder (empty = the root), else the profile's.
        let base_folder = match &self.request.destination.folder {
            Some(folder) => Some(folder.trim().to_owned()).filter(|f| !f.is_empty()),
            None => self.request.profile.folder.clone(),
        };
        for (root, is_dir) in roots(&self.request.paths) {
            if !root.is_absolute() || root.as_os_str().to_string_lossy().contains('\0') {
                self.progress
                    .reject(root.display().to_string(), "not an absolute path".into());
                continue;
            }
            if !is_dir {
                self.file(&root, None, base_folder.as_deref())?;
                continue;
            }
            let base = self
                .request
                .destination
                .keep_structure
                .then(|| root.file_name().map(|n| n.to_string_lossy().into_owned()))
                .flatten();
            let before = self.progress.found;
            walk_folder(&root, &mut |found| match found {
                Found::File(file) => {
                    let sub = base.as_ref().map(|base| {
                        let rel_dir = file
                            .parent()
                            .and_then(|p| p.strip_prefix(&root).ok())
                            .map(|p| p.to_string_lossy().replace('\\', "/"))
                            .unwrap_or_default();
                        if rel_dir.is_empty() {
                            base.clone()
                        } else {
                            format!("{base}/{rel_dir}")
                        }
                    });
                    self.file(&file, sub, base_folder.as_deref())
                }
                Found::Unlisted { path, why } => {
                    self.progress.reject(path.display().to_string(), why);
                    ControlFlow::Continue(())
                }
            })?;
            if self.progress.found == before {
                self.progress
                    .reject(root.display().to_string(), "the folder has no files".into());
            }
        }
        ControlFlow::Continue(())
    }

    /// Checks one file and adds it to the batch.
    fn file(&mut self, path: &Path, sub: Option<String>, base: Option<&str>) -> ControlFlow<()> {
        if self.cancel.is_cancelled() {
            return ControlFlow::Break(());
        }
        let mut these = self.overrides.clone();
        let to_root = sub.is_none() && base.is_none();
        if let Some(sub) = sub {
            let folder = match base {
                Some(base) if !base.trim_matches('/').is_empty() => {
                    format!("{}/{sub}", base.trim_end_matches('/'))
                }
                _ => format!("/{sub}"),
            };
            these.insert("folder".into(), folder);
        }
        match self.engine.prepare(
            &self.request.profile,
            path,
            &these,
            self.request.source.clone(),
        ) {
            Ok(mut job) => {
                // A batch that cleared the folder or the tags drops the profile's defaults.
                if to_root {
                    job.params.remove("folder");
                }
                if self
                    .request
                    .destination
                    .tags
                    .as_ref()
                    .is_some_and(Vec::is_empty)
                {
                    job.params.remove("tags");
                }
                self.progress.found += 1;
                self.batch.push(job);
            }
            Err(err) => {
                let reason = match err {
                    EngineError::PreCheck { why, .. } => why,
                    other => other.to_string(),
                };
                self.progress.reject(path.display().to_string(), reason);
            }
        }
        let size = if self.first_sent { BATCH } else { FIRST_BATCH };
        if self.batch.len() >= size || self.batch_started.elapsed() >= BATCH_TIME {
            self.flush()?;
        }
        ControlFlow::Continue(())
    }

    fn flush(&mut self) -> ControlFlow<()> {
        if !self.batch.is_empty() {
            // Checked again right before writing: a cancel that came while this batch was
            // being checked must not queue it.
            if self.cancel.is_cancelled() {
                return ControlFlow::Break(());
            }
            match self.engine.enqueue_in(&self.batch, Some(self.id)) {
                Ok(ids) => self.progress.queued += ids.len() as u64,
                Err(err) => {
                    self.progress.error = Some(err.to_string());
                    return ControlFlow::Break(());
                }
            }
            self.batch.clear();
            self.first_sent = true;
        }
        self.batch_started = Instant::now();
        self.tx.send_replace(self.progress.clone());
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_skip_what_another_root_covers() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir_all(a.join("b")).unwrap();
        std::fs::write(a.join("x.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("y.jpg"), b"y").unwrap();
        let got = roots(&[
            a.join("x.jpg"),
            a.clone(),
            a.join("b"),
            dir.path().join("y.jpg"),
            dir.path().join("y.jpg"),
            PathBuf::from("relative.jpg"),
        ]);
        assert_eq!(
            got,
            vec![
                (a.clone(), true),
                (dir.path().join("y.jpg"), false),
                (PathBuf::from("relative.jpg"), false),
            ]
        );
    }

    #[test]
    fn destinations_are_checked() {
        let tags = |t: &[&str]| Destination {
            tags: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Destination::default()
        };
        assert!(matches!(
            destination_params(&tags(&["a,b"])),
            Err(IntakeError::BadTag(_))
        ));
        assert!(matches!(
            destination_params(&tags(&["\u{7}"])),
            Err(IntakeError::BadTag(_))
        ));
        let folder = |f: &str| Destination {
            folder: Some(f.into()),
            ..Destination::default()
        };
        assert!(matches!(
            destination_params(&folder("a/../b")),
            Err(IntakeError::FolderDots)
        ));
        let ok = destination_params(&Destination {
            folder: Some(" /shots ".into()),
            tags: Some(vec![" one ".into(), "two".into()]),
            keep_structure: false,
        })
        .unwrap();
        assert_eq!(ok.get("folder").map(String::as_str), Some("/shots"));
        assert_eq!(ok.get("tags").map(String::as_str), Some("one,two"));
    }

    #[test]
    fn ids_never_repeat() {
        let ids: Vec<IntakeId> = (0..1000).map(|_| next_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
