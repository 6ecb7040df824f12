//! The upload queue: drops walked in the background (intakes), the queue view the window
//! pages through, one job's controls, and clipboard images saved to upload.

use std::path::PathBuf;

use dropkey_core::engine::intake::{self, Intake, IntakeRequest};
use dropkey_core::engine::store::JobRecord;
use dropkey_core::engine::JobSource;

use super::{lock, Backend};
use crate::error::AppError;
use crate::models::{
    core_job_id, EnqueueRequest, EnqueueResult, IntakeView, JobView, QueueCountsView, QueuePage,
};

/// How long `enqueue_files` waits for a drop to be walked before it answers and lets the walk
/// go on in the background.
const INTAKE_WAIT: std::time::Duration = std::time::Duration::from_millis(300);
/// How long cancelling a drop waits for its walk to notice.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Rows of the queue view one call returns at most.
const MAX_QUEUE_PAGE: u32 = 1_000;

/// The drops still being walked, by the id the window knows them by.
#[derive(Default)]
pub(super) struct Intakes {
    next_id: u32,
    running: Vec<(u32, Intake)>,
}

impl Backend {
    /// Queues files and folders: folders are walked in the background (an intake), so a drop
    /// of any size answers within `INTAKE_WAIT`. A small drop has finished by then and its
    /// result is complete; a large one goes on, reported by [`Backend::intake_views`] and
    /// cancelled with [`Backend::cancel_intake`].
    pub async fn enqueue_files(&self, request: EnqueueRequest) -> Result<EnqueueResult, AppError> {
        let profile = self.profile(&request.destination.profile)?;
        let intake = self.engine.start_intake(IntakeRequest {
            profile: profile.clone(),
            paths: request.paths.iter().map(PathBuf::from).collect(),
            destination: intake::Destination {
                folder: request.destination.folder,
                tags: request.destination.tags,
                keep_structure: request.keep_structure,
            },
            source: JobSource::App,
        })?;
        // A scope of its own: the preferences' lock must be gone before the await below.
        {
            let mut prefs = lock(&self.prefs);
            if prefs.last_profile.as_deref() != Some(profile.name.as_str()) {
                prefs.last_profile = Some(profile.name.clone());
                if let Err(err) = prefs.save(&self.paths.data_dir) {
                    tracing::warn!("cannot save the app preferences: {err}");
                }
            }
        }
        let progress = intake.wait(INTAKE_WAIT).await;
        let running = if progress.finished {
            None
        } else {
            let mut intakes = lock(&self.intakes);
            intakes.next_id = intakes.next_id.wrapping_add(1).max(1);
            let id = intakes.next_id;
            intakes.running.push((id, intake));
            Some(id)
        };
        Ok(EnqueueResult::from_progress(&progress, running))
    }

    /// The intakes still walking, and those that ended since the last call (each reported
    /// once as finished, then forgotten).
    pub fn intake_views(&self) -> Vec<IntakeView> {
        let mut intakes = lock(&self.intakes);
        let views = intakes
            .running
            .iter()
            .map(|(id, intake)| IntakeView::new(*id, &intake.label, &intake.progress()))
            .collect::<Vec<_>>();
        // The same progress the views were made from: one reported finished is the one dropped.
        intakes
            .running
            .retain(|(id, _)| !views.iter().any(|v| v.id == *id && v.finished));
        views
    }

    /// Stops a drop that is still being walked and cancels the uploads it queued.
    pub async fn cancel_intake(&self, id: u32) -> Result<u32, AppError> {
        let intake = {
            let intakes = lock(&self.intakes);
            intakes
                .running
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, intake)| intake.clone())
        };
        let intake = intake.ok_or_else(|| {
            AppError::not_found("that drop has finished queueing (cancel its uploads one by one)")
        })?;
        intake.stop();
        // The walk may queue one more batch before it sees the stop: wait for it to end, so
        // that batch is cancelled too.
        intake.wait(CANCEL_WAIT).await;
        let engine = self.engine.clone();
        let n = tokio::task::spawn_blocking(move || engine.cancel_intake(intake.id))
            .await
            .map_err(AppError::internal)??;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// One window of the queue view with its counts: the window asks for the rows around its
    /// scroll position, never for the whole queue.
    pub fn queue_page(&self, offset: u32, limit: u32) -> Result<QueuePage, AppError> {
        let limit = limit.clamp(1, MAX_QUEUE_PAGE) as usize;
        let counts = self.engine.queue_counts()?;
        let jobs = self
            .engine
            .queue_page(u64::from(offset), limit)?
            .iter()
            .map(JobView::from)
            .collect();
        Ok(QueuePage {
            counts: QueueCountsView::from(&counts),
            offset,
            jobs,
        })
    }

    /// The queue view's counts.
    pub fn queue_counts(&self) -> Result<QueueCountsView, AppError> {
        Ok(QueueCountsView::from(&self.engine.queue_counts()?))
    }

    /// Takes finished jobs out of the queue view (their history stays), however many.
    pub fn clear_finished(&self) -> Result<u32, AppError> {
        let n = self.engine.dismiss_finished()?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Puts every failed or stuck upload of the queue back in the queue, however many.
    pub fn retry_failed(&self) -> Result<u32, AppError> {
        let n = self.engine.retry_failed()?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub fn job_record(&self, id: u32) -> Result<JobRecord, AppError> {
        let id = core_job_id(id)?;
        self.engine
            .job(id)
            .map_err(|_| AppError::not_found(format!("there is no upload {id}")))
    }

    pub fn cancel(&self, id: u32) -> Result<(), AppError> {
        let record = self.job_record(id)?;
        Ok(self.engine.cancel(record.id)?)
    }

    /// Puts a failed, stuck, cancelled or paused upload back in the queue (the engine refuses
    /// the others).
    pub fn retry(&self, id: u32) -> Result<(), AppError> {
        let record = self.job_record(id)?;
        Ok(self.engine.retry(record.id)?)
    }

    /// Queues a file that was skipped as a duplicate to be uploaded after all.
    pub fn upload_anyway(&self, id: u32) -> Result<u32, AppError> {
        let record = self.job_record(id)?;
        Ok(crate::models::job_id(self.engine.upload_anyway(record.id)?))
    }

    pub fn set_uploads_paused(&self, paused: bool) {
        if paused {
            self.engine.pause_all();
        } else {
            self.engine.resume_all();
        }
    }

    /// Saves a clipboard image as a PNG under the data dir and returns its path.
    pub fn save_image(&self, rgba: &[u8], width: u32, height: u32) -> Result<PathBuf, AppError> {
        Ok(dropkey_core::pasted::save_png(
            &self.paths.data_dir,
            rgba,
            width,
            height,
        )?)
    }
}
