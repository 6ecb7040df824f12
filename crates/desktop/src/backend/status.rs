//! What the tray icon and the window header show, and the per-batch counts behind the one
//! notification each batch ends with.

use dropkey_core::engine::JobState;

use super::{lock, Backend};
use crate::models::{Activity, AppStatus};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub done: u32,
    pub failed: u32,
    /// Failures of the last finished batch, shown until the next batch starts.
    pub last_failed: u32,
}

impl Backend {
    pub fn status(&self) -> AppStatus {
        let pending = self.engine.count_unfinished().unwrap_or(0);
        let uploads_paused = self.engine.is_paused();
        let watching_paused = self.watching_paused();
        let batch = *lock(&self.batch);
        let failed = batch.failed.max(batch.last_failed);
        let watch_error = self.watch_infos().iter().any(|w| {
            matches!(
                w.status,
                dropkey_core::watch::WatchStatus::Error(_)
                    | dropkey_core::watch::WatchStatus::Missing(_)
            )
        });
        let activity = if uploads_paused || watching_paused {
            Activity::Paused
        } else if pending > 0 {
            Activity::Uploading
        } else if failed > 0 || watch_error {
            Activity::Error
        } else {
            Activity::Idle
        };
        AppStatus {
            activity,
            pending: u32::try_from(pending).unwrap_or(u32::MAX),
            uploads_paused,
            watching_paused,
            failed,
            offline: self.engine.offline().map(|o| o.line()),
        }
    }

    /// Counts finished jobs into the current batch. Returns the batch when it just ended
    /// (nothing left to do), for one notification per batch.
    pub fn batch_finished(&self, states: &[JobState]) -> Option<Batch> {
        if states.is_empty() {
            return None;
        }
        let mut batch = lock(&self.batch);
        for state in states {
            match state {
                JobState::Done => batch.done += 1,
                JobState::Failed | JobState::NeedsAttention => batch.failed += 1,
                _ => {}
            }
        }
        drop(batch);
        let idle = self.engine.has_unfinished().is_ok_and(|busy| !busy);
        if !idle {
            return None;
        }
        let mut batch = lock(&self.batch);
        let ended = *batch;
        if ended.done == 0 && ended.failed == 0 {
            return None;
        }
        *batch = Batch {
            last_failed: ended.failed,
            ..Batch::default()
        };
        Some(ended)
    }
}
