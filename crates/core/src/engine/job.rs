//! The vocabulary of the engine: jobs, their states, and the events the front ends consume.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{OnDuplicate, Resize};
use crate::metadata::{MetadataPolicy, Report};
use crate::sign::Params;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who asked for an upload. Recorded on every job (as `cli`, `app`, `watch:<folder>` in the
/// database and in JSON), so the history can say where a file came from and the app can tell
/// its own drops from a watch's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobSource {
    /// `dropkey upload` (and `resume` of what it queued).
    Cli,
    /// Dropped, picked, pasted or handed to the app.
    App,
    /// A watched folder, by its path.
    Watch(PathBuf),
    /// A name some other version of Dropkey recorded: kept as it was, never guessed at.
    Other(String),
}

impl JobSource {
    const WATCH_PREFIX: &'static str = "watch:";

    /// The form stored in the database and printed in JSON.
    pub fn to_text(&self) -> String {
        match self {
            Self::Cli => "cli".to_owned(),
            Self::App => "app".to_owned(),
            Self::Watch(folder) => format!("{}{}", Self::WATCH_PREFIX, folder.display()),
            Self::Other(name) => name.clone(),
        }
    }

    /// Reads [`JobSource::to_text`]'s form back; any other text is [`JobSource::Other`].
    pub fn from_text(text: &str) -> Self {
        match text {
            "cli" => Self::Cli,
            "app" => Self::App,
            _ => match text.strip_prefix(Self::WATCH_PREFIX) {
                Some(folder) if !folder.is_empty() => Self::Watch(PathBuf::from(folder)),
                _ => Self::Other(text.to_owned()),
            },
        }
    }
}

impl std::fmt::Display for JobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for JobSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_text())
    }
}

/// A job's life:
///
/// ```text
/// queued ──► running ──► done
///   ▲  ▲        │ ├────► failed            (pre-check or a permanent 4xx: the provider's message)
///   │  │        │ ├────► needs_attention   (transient errors outlasted every retry)
///   │  │        │ └────► cancelled
///   │  └────────┘ (paused, or the process stopped: back to the queue)
///   └── retry (from failed / needs_attention / cancelled)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Paused,
    Done,
    Failed,
    NeedsAttention,
    Cancelled,
    /// Done, then deleted at the provider with `dropkey delete`.
    Deleted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::NeedsAttention => "needs_attention",
            Self::Cancelled => "cancelled",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "needs_attention" => Self::NeedsAttention,
            "cancelled" => Self::Cancelled,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }

    /// No worker will touch the job again unless someone retries it.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Failed | Self::NeedsAttention | Self::Cancelled | Self::Deleted
        )
    }

    /// A job the user may put back in the queue: it stopped short of an upload (failed, out of
    /// time, cancelled) or waits for the user (paused). A done or deleted file would be sent
    /// twice, and a queued or running one is on its way already.
    pub fn can_retry(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::NeedsAttention | Self::Cancelled | Self::Paused
        )
    }
}

/// One request to queue files (a drop, a pick, a paste) whose folders are walked in the
/// background: its jobs carry its id, so cancelling it cancels them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct IntakeId(pub i64);

/// The queue view by state: what the window's summary line and scroll bar need, without
/// reading the jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    pub queued: u64,
    pub running: u64,
    pub paused: u64,
    pub done: u64,
    pub failed: u64,
    pub needs_attention: u64,
    pub cancelled: u64,
    pub deleted: u64,
    /// Bytes of every job but the cancelled ones.
    pub bytes_total: u64,
    /// Bytes of the uploaded ones (done, or done then deleted).
    pub bytes_done: u64,
}

impl QueueCounts {
    pub fn add(&mut self, state: JobState, jobs: u64, bytes: u64) {
        let slot = match state {
            JobState::Queued => &mut self.queued,
            JobState::Running => &mut self.running,
            JobState::Paused => &mut self.paused,
            JobState::Done => &mut self.done,
            JobState::Failed => &mut self.failed,
            JobState::NeedsAttention => &mut self.needs_attention,
            JobState::Cancelled => &mut self.cancelled,
            JobState::Deleted => &mut self.deleted,
        };
        *slot += jobs;
        if state != JobState::Cancelled {
            self.bytes_total += bytes;
        }
        if matches!(state, JobState::Done | JobState::Deleted) {
            self.bytes_done += bytes;
        }
    }

    /// Every job in the view.
    pub fn total(&self) -> u64 {
        self.queued
            + self.running
            + self.paused
            + self.done
            + self.failed
            + self.needs_attention
            + self.cancelled
            + self.deleted
    }

    /// Jobs that ended (what "Clear finished" takes away).
    pub fn finished(&self) -> u64 {
        self.done + self.failed + self.needs_attention + self.cancelled + self.deleted
    }
}

/// A file to upload, with everything resolved at enqueue time, so a job resumed after a crash
/// sends exactly what was asked for then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub profile: String,
    pub path: PathBuf,
    /// The name the provider stores (`fileName` for ImageKit).
    pub file_name: String,
    pub size: u64,
    /// The upload parameters (profile defaults merged with overrides), as sent.
    pub params: Params,
    pub source: JobSource,
    /// The file as it was checked when queued; every attempt uploads only that file.
    pub file: Option<super::identity::FileIdentity>,
    /// What is removed from the file's metadata before it is sent.
    pub metadata: MetadataPolicy,
    pub on_duplicate: OnDuplicate,
    /// Scale images down to this before sending (`max_dimension`).
    pub resize: Option<Resize>,
}

/// What the provider said about a finished upload.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Uploaded {
    pub id: String,
    pub url: String,
    pub response: serde_json::Value,
    /// What was sent (for a duplicate: what the earlier upload sent); none for uploads
    /// recorded by versions that did not keep it.
    /// Boxed: every event carries room for the largest variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<Box<Sent>>,
}

/// The bytes an upload sent: the file after its metadata policy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Sent {
    /// SHA-256 (hex) of the bytes sent.
    pub sha256: String,
    pub size: u64,
    /// What was removed from the file's metadata, and what had to be kept.
    pub metadata: Report,
    /// Set when nothing was sent because the same content was already uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<DuplicateOf>,
}

/// The earlier upload a duplicate's result comes from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct DuplicateOf {
    pub job: JobId,
    /// Unix seconds.
    pub uploaded_at: i64,
}

impl DuplicateOf {
    /// "photo.jpg was already uploaded on 2026-12-04 (UTC)", for notices.
    pub fn line(&self, name: &str) -> String {
        let (y, m, d) = crate::watch::civil_date(self.uploaded_at);
        format!("{name} was already uploaded on {y:04}-{m:02}-{d:02}")
    }
}

/// How a job ended, as front ends report it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finished {
    pub job: JobId,
    pub path: PathBuf,
    pub state: JobState,
    pub uploaded: Option<Uploaded>,
    pub error: Option<String>,
}

/// Throttled progress of one job.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Progress {
    pub job: JobId,
    pub bytes_sent: u64,
    pub total: u64,
    /// Bytes per second, smoothed.
    pub speed: f64,
    /// Seconds to go at the current speed, when known.
    pub eta_secs: Option<f64>,
}

/// A host uploads go to that cannot be reached now.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OfflineHost {
    /// `scheme://host:port`.
    pub origin: String,
    /// Jobs parked until it answers.
    pub parked: u64,
    pub offline_secs: u64,
    /// Seconds until the next probe.
    pub next_probe_secs: u64,
    /// The last connect error.
    pub reason: String,
}

/// The engine cannot reach some upload hosts: what front ends show as "offline".
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Offline {
    pub hosts: Vec<OfflineHost>,
    /// Jobs not finished yet (parked, queued or running): all wait for the network.
    pub waiting: u64,
    /// Seconds until the soonest probe.
    pub next_probe_secs: u64,
}

impl Offline {
    /// `offline — 3 waiting, next try in 4 s (cannot reach https://upload.imagekit.io:443)`.
    pub fn line(&self) -> String {
        let hosts: Vec<&str> = self.hosts.iter().map(|h| h.origin.as_str()).collect();
        format!(
            "offline — {} waiting, next try in {} s (cannot reach {})",
            self.waiting,
            self.next_probe_secs,
            hosts.join(", ")
        )
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Queued {
        job: JobId,
        path: PathBuf,
        size: u64,
    },
    Started {
        job: JobId,
        attempt: u32,
    },
    Progress(Progress),
    /// A transient failure; the job will try again after `delay_ms`.
    Retrying {
        job: JobId,
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    Paused {
        job: JobId,
    },
    Finished(Finished),
    /// Some upload hosts cannot be reached; sent when a job parks and after each failed probe.
    Offline {
        hosts: Vec<OfflineHost>,
    },
    /// `origin` answers again; the jobs parked on it go on.
    Online {
        origin: String,
        offline_ms: u64,
    },
    /// Many jobs changed at once (retry all failed, a cancelled intake): listeners read the
    /// queue again instead of getting one event per job.
    QueueChanged,
}

impl Event {
    /// The job the event is about; `None` for engine-wide events.
    pub fn job(&self) -> Option<JobId> {
        match self {
            Self::Queued { job, .. }
            | Self::Started { job, .. }
            | Self::Retrying { job, .. }
            | Self::Paused { job } => Some(*job),
            Self::Progress(p) => Some(p.job),
            Self::Finished(f) => Some(f.job),
            Self::Offline { .. } | Self::Online { .. } | Self::QueueChanged => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_reads_back_as_it_was_written() {
        for source in [
            JobSource::Cli,
            JobSource::App,
            JobSource::Watch(PathBuf::from("/home/ana/Photos: raw")),
            JobSource::Other("clipboard".into()),
        ] {
            assert_eq!(JobSource::from_text(&source.to_text()), source);
            assert_eq!(
                serde_json::to_value(&source).unwrap(),
                serde_json::Value::String(source.to_text())
            );
        }
        assert_eq!(JobSource::Watch("/w".into()).to_text(), "watch:/w");
        assert_eq!(
            JobSource::from_text("watch:"),
            JobSource::Other("watch:".into())
        );
    }

    #[test]
    fn only_stopped_or_paused_jobs_can_be_retried() {
        let all = [
            "queued",
            "running",
            "paused",
            "done",
            "failed",
            "needs_attention",
            "cancelled",
            "deleted",
        ];
        let retryable: Vec<&str> = all
            .into_iter()
            .filter(|s| JobState::parse(s).unwrap().can_retry())
            .collect();
        assert_eq!(
            retryable,
            ["paused", "failed", "needs_attention", "cancelled"]
        );
    }
}
