//! The upload queue: jobs and their states, drops being queued, progress, the queue view.

use serde::{Deserialize, Serialize};

use dropkey_core::engine::intake::IntakeProgress;
use dropkey_core::engine::store::JobRecord;
use dropkey_core::engine::{JobId, JobState, QueueCounts};

use crate::error::AppError;

/// A job's state as the queue shows it.
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobStateView {
    Queued,
    Running,
    Paused,
    Done,
    Failed,
    NeedsAttention,
    Cancelled,
    Deleted,
}

impl From<JobState> for JobStateView {
    fn from(state: JobState) -> Self {
        match state {
            JobState::Queued => Self::Queued,
            JobState::Running => Self::Running,
            JobState::Paused => Self::Paused,
            JobState::Done => Self::Done,
            JobState::Failed => Self::Failed,
            JobState::NeedsAttention => Self::NeedsAttention,
            JobState::Cancelled => Self::Cancelled,
            JobState::Deleted => Self::Deleted,
        }
    }
}

/// One file in the upload queue.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct JobView {
    pub id: u32,
    pub name: String,
    pub path: String,
    pub profile: String,
    pub folder: Option<String>,
    #[specta(type = u32)]
    pub size: f64,
    pub state: JobStateView,
    pub attempts: u32,
    pub error: Option<String>,
    pub url: Option<String>,
    /// Bytes acknowledged so far (progress events carry the live figure).
    #[specta(type = u32)]
    pub bytes_sent: f64,
    /// As [`super::history::HistoryEntry::metadata`].
    pub metadata: Option<String>,
    pub duplicate_of: Option<super::history::DuplicateView>,
}

pub fn job_id(id: JobId) -> u32 {
    // Row ids start at 1 and grow by one per file: 4 billion uploads are out of reach.
    u32::try_from(id.0).unwrap_or(u32::MAX)
}

pub fn core_job_id(id: u32) -> Result<JobId, AppError> {
    if id == 0 {
        return Err(AppError::input("job id 0 does not exist"));
    }
    Ok(JobId(i64::from(id)))
}

impl From<&JobRecord> for JobView {
    fn from(record: &JobRecord) -> Self {
        let done = matches!(record.state, JobState::Done | JobState::Deleted);
        Self {
            id: job_id(record.id),
            name: record.file_name.clone(),
            path: record.path.display().to_string(),
            profile: record.profile.clone(),
            folder: record.params.get("folder").cloned(),
            size: record.size as f64,
            state: record.state.into(),
            attempts: record.attempts,
            error: record.error.clone(),
            url: record.url.clone(),
            bytes_sent: if done {
                record.size as f64
            } else {
                record.bytes_acked as f64
            },
            metadata: super::history::metadata_line(record),
            duplicate_of: super::history::DuplicateView::of(record),
        }
    }
}

/// Live progress of one running job (at most ~10 a second per job).
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct ProgressView {
    pub id: u32,
    #[specta(type = u32)]
    pub bytes_sent: f64,
    #[specta(type = u32)]
    pub total: f64,
    /// Bytes per second, smoothed.
    #[specta(type = u32)]
    pub speed: f64,
    #[specta(type = Option<u32>)]
    pub eta_secs: Option<f64>,
}

/// What `enqueue_files` and `upload_clipboard` send.
#[derive(Debug, Clone, Deserialize, specta::Type)]
pub struct Destination {
    pub profile: String,
    /// Remote folder for this batch; empty = the provider's root; absent = the profile's.
    pub folder: Option<String>,
    /// Tags for this batch; empty = none; absent = the profile's.
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, specta::Type)]
pub struct EnqueueRequest {
    /// Absolute paths of files and folders (folders are walked).
    pub paths: Vec<String>,
    pub destination: Destination,
    /// A dropped folder's files go under `<folder>/<dropped folder>/<sub folders>`.
    pub keep_structure: bool,
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct Rejected {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, specta::Type, PartialEq, Eq)]
pub struct EnqueueResult {
    /// Files queued so far (all of them unless `running`).
    pub queued: u32,
    /// The first rejections, with their reasons.
    pub rejected: Vec<Rejected>,
    /// Every rejection, counted.
    pub rejected_total: u32,
    /// The intake still walking the drop in the background (see `UiEvent::Intakes`).
    pub running: Option<u32>,
    /// Why queueing stopped early (the queue database could not be written).
    pub error: Option<String>,
}

fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn rejections(progress: &IntakeProgress) -> Vec<Rejected> {
    progress
        .rejections
        .iter()
        .map(|r| Rejected {
            path: r.path.clone(),
            reason: r.reason.clone(),
        })
        .collect()
}

impl EnqueueResult {
    pub fn from_progress(progress: &IntakeProgress, running: Option<u32>) -> Self {
        Self {
            queued: count(progress.queued),
            rejected: rejections(progress),
            rejected_total: count(progress.rejected),
            running,
            error: progress.error.clone(),
        }
    }
}

/// A drop being walked and queued in the background.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct IntakeView {
    pub id: u32,
    /// What was dropped: "Photos", "a.jpg and 3 more".
    pub label: String,
    pub found: u32,
    pub queued: u32,
    pub rejected: Vec<Rejected>,
    pub rejected_total: u32,
    /// Walked to the end (or cancelled, or stopped by `error`); reported once, then gone.
    pub finished: bool,
    pub cancelled: bool,
    pub error: Option<String>,
}

impl IntakeView {
    pub fn new(id: u32, label: &str, progress: &IntakeProgress) -> Self {
        Self {
            id,
            label: label.to_owned(),
            found: count(progress.found),
            queued: count(progress.queued),
            rejected: rejections(progress),
            rejected_total: count(progress.rejected),
            finished: progress.finished,
            cancelled: progress.cancelled,
            error: progress.error.clone(),
        }
    }
}

/// The queue by state: the summary line and the scroll bar's length, without the jobs.
#[derive(Debug, Clone, Copy, Default, Serialize, specta::Type, PartialEq)]
pub struct QueueCountsView {
    pub total: u32,
    pub queued: u32,
    pub running: u32,
    pub paused: u32,
    pub done: u32,
    /// Failed and needing attention (what "Retry failed" retries).
    pub failed: u32,
    pub cancelled: u32,
    /// Finished in any way (what "Clear finished" clears).
    pub finished: u32,
    #[specta(type = u32)]
    pub bytes_total: f64,
    #[specta(type = u32)]
    pub bytes_done: f64,
}

impl From<&QueueCounts> for QueueCountsView {
    fn from(c: &QueueCounts) -> Self {
        Self {
            total: count(c.total()),
            queued: count(c.queued),
            running: count(c.running),
            paused: count(c.paused),
            done: count(c.done + c.deleted),
            failed: count(c.failed + c.needs_attention),
            cancelled: count(c.cancelled),
            finished: count(c.finished()),
            bytes_total: c.bytes_total as f64,
            bytes_done: c.bytes_done as f64,
        }
    }
}

/// Rows `offset..offset + jobs.len()` of the queue, oldest first, and the counts they were
/// read with.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct QueuePage {
    pub counts: QueueCountsView,
    pub offset: u32,
    pub jobs: Vec<JobView>,
}
