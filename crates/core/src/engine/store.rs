//! The durable queue and history: one SQLite database (`<data dir>/dropkey.db`, WAL mode).
//!
//! A job is written `queued` before its upload starts and `done` (with the provider's id, URL
//! and response) after the provider acknowledged it, each commit at `synchronous=FULL`, so both
//! survive power loss, not only a killed process. A job that was `running` when the process
//! died is simply `queued` again at the next start, which is why only in-flight jobs can ever be
//! sent twice. A job also records its file's identity (device, inode, size, mtime, and the
//! watcher's SHA-256), which every attempt checks before it sends a byte. Cloudinary chunked uploads also record
//! their upload id and the bytes the provider acknowledged, so they resume mid-file.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::identity::FileIdentity;
use super::job::{DuplicateOf, IntakeId, JobId, JobSource, JobState, NewJob, QueueCounts, Sent};
use crate::config::{OnDuplicate, Resize};
use crate::metadata::MetadataPolicy;
use crate::sign::Params;

mod watch_stats;
pub use watch_stats::SourceCounts;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the job database {path}: {source}; check that the data directory (--data-dir) is writable and not used by an older Dropkey")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the job database failed: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("job {0} is not in the database")]
    NoSuchJob(JobId),
}

/// A job as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobRecord {
    pub id: JobId,
    pub profile: String,
    pub path: PathBuf,
    pub file_name: String,
    pub size: u64,
    pub params: Params,
    pub state: JobState,
    pub attempts: u32,
    pub error: Option<String>,
    pub remote_id: Option<String>,
    pub url: Option<String>,
    pub response: Option<serde_json::Value>,
    pub upload_id: Option<String>,
    pub bytes_acked: u64,
    pub source: JobSource,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// The file as checked when queued (none for jobs queued by older versions).
    #[serde(skip)]
    pub file: Option<FileIdentity>,
    /// Jobs queued by versions before metadata policies were sent as they were: `keep`.
    pub metadata: MetadataPolicy,
    pub on_duplicate: OnDuplicate,
    pub resize: Option<Resize>,
    /// What a finished upload sent.
    pub sent: Option<Sent>,
}

impl JobRecord {
    /// The bytes a finished upload sent (after its metadata policy or resizing); the file's
    /// size for jobs that have not sent anything, or were recorded before this was kept.
    pub fn sent_size(&self) -> u64 {
        self.sent.as_ref().map_or(self.size, |sent| sent.size)
    }
}

pub struct Store {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY,
    profile     TEXT NOT NULL,
    path        TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    params      TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    remote_id   TEXT,
    url         TEXT,
    response    TEXT,
    upload_id   TEXT,
    bytes_acked INTEGER NOT NULL DEFAULT 0,
    source      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    file_dev      INTEGER,
    file_ino      INTEGER,
    file_mtime_ns INTEGER,
    file_sha256   TEXT,
    file_nofollow INTEGER NOT NULL DEFAULT 0,
    done_seq      INTEGER,
    is_image      INTEGER,
    private       INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, id);
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs(finished_at);
CREATE TABLE IF NOT EXISTS watch_journal (
    watch       TEXT NOT NULL,
    rel_path    TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    job_id      INTEGER,
    action_done INTEGER NOT NULL DEFAULT 0,
    recorded_at INTEGER NOT NULL,
    file_dev    INTEGER,
    file_ino    INTEGER,
    PRIMARY KEY (watch, rel_path)
);
CREATE INDEX IF NOT EXISTS journal_by_content ON watch_journal(watch, size, sha256);
CREATE INDEX IF NOT EXISTS journal_by_job ON watch_journal(job_id);
";

/// A watched file Dropkey has queued for upload: what it looked like then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Identifies the watch (its profile and canonical folder).
    pub watch: String,
    /// Path relative to the watched folder, `/`-separated.
    pub rel_path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: String,
    pub job_id: Option<JobId>,
    /// The after-upload action (move, delete) has been applied.
    pub action_done: bool,
    /// Device and inode of the file, as last seen (to tell a file replaced with the same size
    /// and mtime without reading it).
    pub file_inode: Option<(u64, u64)>,
}

/// Journal entries (joined with their job, for conditions on its state).
const JOURNAL_SELECT: &str = "SELECT j.watch, j.rel_path, j.size, j.mtime_ns, j.sha256, j.job_id,
    j.action_done, j.file_dev, j.file_ino
    FROM watch_journal j LEFT JOIN jobs ON jobs.id = j.job_id";

const COLUMNS: &str = "id, profile, path, file_name, size, params, state, attempts, error, \
    remote_id, url, response, upload_id, bytes_acked, source, created_at, finished_at, \
    file_dev, file_ino, file_mtime_ns, file_sha256, file_nofollow, metadata, on_duplicate, \
    sent_sha256, sent_size, sent_metadata, duplicate_of, duplicate_at, resize";

/// Columns added after the first release, for databases created before them.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("jobs", "file_dev", "INTEGER"),
    ("jobs", "file_ino", "INTEGER"),
    ("jobs", "file_mtime_ns", "INTEGER"),
    ("jobs", "file_sha256", "TEXT"),
    ("jobs", "file_nofollow", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "done_seq", "INTEGER"),
    ("jobs", "is_image", "INTEGER"),
    ("jobs", "private", "INTEGER"),
    ("watch_journal", "file_dev", "INTEGER"),
    ("watch_journal", "file_ino", "INTEGER"),
    ("jobs", "dismissed", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "intake", "INTEGER"),
    ("jobs", "metadata", "TEXT"),
    ("jobs", "on_duplicate", "TEXT"),
    ("jobs", "sent_sha256", "TEXT"),
    ("jobs", "sent_size", "INTEGER"),
    ("jobs", "sent_metadata", "TEXT"),
    ("jobs", "duplicate_of", "INTEGER"),
    ("jobs", "duplicate_at", "INTEGER"),
    ("jobs", "resize", "TEXT"),
];

/// Indexes on columns of [`ADDED_COLUMNS`]: created once the columns exist.
const ADDED_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS jobs_in_view ON jobs(id) WHERE dismissed = 0;
CREATE INDEX IF NOT EXISTS jobs_in_view_by_state ON jobs(state, size) WHERE dismissed = 0;
CREATE INDEX IF NOT EXISTS jobs_by_intake ON jobs(intake, state) WHERE intake IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_content ON jobs(sent_sha256, profile)
    WHERE state = 'done' AND duplicate_of IS NULL;
";

const INSERT_JOB: &str = "INSERT INTO jobs (profile, path, file_name, size, params, state, source,
        created_at, file_dev, file_ino, file_mtime_ns, file_sha256, file_nofollow, intake,
        metadata, on_duplicate, resize)
    VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

fn insert_job(
    tx: &rusqlite::Transaction<'_>,
    job: &NewJob,
    intake: Option<IntakeId>,
    now: i64,
) -> rusqlite::Result<JobId> {
    let file = job.file.as_ref();
    tx.prepare_cached(INSERT_JOB)?.execute(params![
        job.profile,
        job.path.to_string_lossy(),
        job.file_name,
        job.size as i64,
        serde_json::to_string(&job.params).unwrap_or_default(),
        job.source.to_text(),
        now,
        file.map(|f| f.dev as i64),
        file.map(|f| f.ino as i64),
        file.map(|f| f.mtime_ns),
        file.and_then(|f| f.sha256.clone()),
        file.is_some_and(|f| f.no_follow),
        intake.map(|i| i.0),
        job.metadata.as_str(),
        job.on_duplicate.as_str(),
        job.resize.map(Resize::to_text),
    ])?;
    Ok(JobId(tx.last_insert_rowid()))
}

impl Store {
    /// Jobs queued or running in `data_dir`'s database, read without creating or changing
    /// anything (for `doctor`); `None` when there is no database or it cannot be read.
    pub fn count_waiting(data_dir: &Path) -> Option<u64> {
        let path = data_dir.join("dropkey.db");
        if !path.is_file() {
            return None;
        }
        let conn =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        conn.query_row(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')",
            [],
            |r| r.get::<_, i64>(0),
        )
        .ok()
        .map(|n| n.max(0) as u64)
    }

    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir_err = |source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        crate::private_fs::create_dir_all(data_dir).map_err(dir_err)?;
        let path = data_dir.join("dropkey.db");
        // Older versions left these to the umask (0644); the front ends tighten the rest of the
        // data dir (`private_fs::secure_existing`).
        crate::private_fs::tighten(data_dir, crate::private_fs::DIR_MODE).map_err(dir_err)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = data_dir.join(format!("dropkey.db{suffix}"));
            crate::private_fs::tighten(&file, crate::private_fs::FILE_MODE).map_err(dir_err)?;
        }
        // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
        // database file's mode, so all three stay private whatever the umask.
        crate::private_fs::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(dir_err)?;
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        // WAL: readers (the app's history view) never block the writer. `synchronous=FULL`:
        // every commit (queued, done, a journal entry leaving) reaches the disk before the
        // call returns, so power loss can neither drop queued work nor bring back a done job.
        // NORMAL would survive a killed process but not power loss. The cost is one WAL fsync per
        // transaction; a batch enqueue is one transaction.
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        add_missing_columns(&conn).map_err(open_err)?;
        conn.execute_batch(ADDED_INDEXES).map_err(open_err)?;
        conn.execute_batch(watch_stats::INDEXES).map_err(open_err)?;
        prepare_history_search(&conn).map_err(open_err)?;
        Ok(Self { conn })
    }

    /// Records new jobs as `queued`, all in one durable transaction.
    pub fn enqueue(&mut self, jobs: &[NewJob], now: i64) -> Result<Vec<JobId>, StoreError> {
        self.enqueue_in(jobs, None, now)
    }

    /// [`Store::enqueue`], recording the intake (a dropped folder being walked) the jobs came
    /// from, so cancelling it can cancel them too.
    pub fn enqueue_in(
        &mut self,
        jobs: &[NewJob],
        intake: Option<IntakeId>,
        now: i64,
    ) -> Result<Vec<JobId>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            ids.push(insert_job(&tx, job, intake, now)?);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Queues a watched file and records it in the journal in one transaction, so a crash can
    /// never leave a queued upload the journal does not know about (which would upload twice)
    /// or a journal entry with no upload (which would never upload).
    pub fn enqueue_watched(
        &mut self,
        job: &NewJob,
        entry: &JournalEntry,
        now: i64,
    ) -> Result<JobId, StoreError> {
        let tx = self.conn.transaction()?;
        let id = insert_job(&tx, job, None, now)?;
        tx.execute(
            "INSERT OR REPLACE INTO watch_journal
                 (watch, rel_path, size, mtime_ns, sha256, job_id, action_done, recorded_at,
                  file_dev, file_ino)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9)",
            params![
                entry.watch,
                entry.rel_path,
                entry.size as i64,
                entry.mtime_ns,
                entry.sha256,
                id.0,
                now,
                entry.file_inode.map(|(dev, _)| dev as i64),
                entry.file_inode.map(|(_, ino)| ino as i64),
            ],
        )?;
        tx.commit()?;
        Ok(id)
    }

    pub fn journal_get(
        &self,
        watch: &str,
        rel_path: &str,
    ) -> Result<Option<JournalEntry>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("{JOURNAL_SELECT} WHERE j.watch = ?1 AND j.rel_path = ?2"),
                params![watch, rel_path],
                row_to_journal,
            )
            .optional()?)
    }

    /// Entries of `watch` with this content (to recognise a renamed file or folder). At most 32:
    /// a folder of thousands of identical files must not make every new one check them all.
    pub fn journal_by_content(
        &self,
        watch: &str,
        size: u64,
        sha256: &str,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{JOURNAL_SELECT} WHERE j.watch = ?1 AND j.size = ?2 AND j.sha256 = ?3 LIMIT 32"
        ))?;
        let rows = stmt
            .query_map(params![watch, size as i64, sha256], row_to_journal)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn journal_by_job(&self, job: JobId) -> Result<Option<JournalEntry>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("{JOURNAL_SELECT} WHERE j.job_id = ?1"),
                [job.0],
                row_to_journal,
            )
            .optional()?)
    }

    /// Moves an entry to a new relative path (its file was renamed) or refreshes its metadata.
    pub fn journal_update(
        &mut self,
        watch: &str,
        old_rel: &str,
        new_rel: &str,
        size: u64,
        mtime_ns: i64,
        file_inode: Option<(u64, u64)>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE OR REPLACE watch_journal SET rel_path = ?3, size = ?4, mtime_ns = ?5,
                 file_dev = ?6, file_ino = ?7
             WHERE watch = ?1 AND rel_path = ?2",
            params![
                watch,
                old_rel,
                new_rel,
                size as i64,
                mtime_ns,
                file_inode.map(|(dev, _)| dev as i64),
                file_inode.map(|(_, ino)| ino as i64),
            ],
        )?;
        Ok(())
    }

    /// Entries whose upload is done but whose after-upload action has not run yet.
    pub fn journal_pending_actions(&self, watch: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{JOURNAL_SELECT} WHERE j.watch = ?1 AND j.action_done = 0 AND jobs.state = 'done'"
        ))?;
        let rows = stmt
            .query_map([watch], row_to_journal)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Forgets the entry at `rel_path` (its file was deleted or moved away after its upload):
    /// a new file at that path is a new file.
    pub fn journal_remove(&mut self, watch: &str, rel_path: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM watch_journal WHERE watch = ?1 AND rel_path = ?2",
            params![watch, rel_path],
        )?;
        Ok(())
    }

    /// Entries of `watch` whose upload failed, with their job (to notice a file that was
    /// replaced between queueing and uploading).
    pub fn journal_failed(
        &self,
        watch: &str,
    ) -> Result<Vec<(JournalEntry, JobRecord)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{JOURNAL_SELECT} WHERE j.watch = ?1 AND jobs.state = 'failed'"
        ))?;
        let entries = stmt
            .query_map([watch], row_to_journal)?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(job) = entry.job_id {
                out.push((entry, self.get(job)?));
            }
        }
        Ok(out)
    }

    pub fn journal_action_done(&mut self, watch: &str, rel_path: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE watch_journal SET action_done = 1 WHERE watch = ?1 AND rel_path = ?2",
            params![watch, rel_path],
        )?;
        Ok(())
    }

    /// After a crash, jobs that were running are queued again. Returns how many.
    pub fn requeue_interrupted(&mut self) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE jobs SET state = 'queued' WHERE state = 'running'",
            [],
        )?)
    }

    /// The oldest queued job not in `skip`, marked `running`.
    pub fn claim_next(&mut self, skip: &[JobId]) -> Result<Option<JobRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?1"
        ))?;
        let limit = skip.len() as i64 + 1;
        let candidates = stmt
            .query_map([limit], row_to_record)?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        let Some(mut job) = candidates.into_iter().find(|j| !skip.contains(&j.id)) else {
            return Ok(None);
        };
        self.conn.execute(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1 WHERE id = ?1",
            [job.id.0],
        )?;
        job.state = JobState::Running;
        job.attempts += 1;
        Ok(Some(job))
    }

    pub fn set_state(
        &mut self,
        id: JobId,
        state: JobState,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let finished = state.is_terminal().then_some(now);
        let changed = self.conn.execute(
            "UPDATE jobs SET state = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
            params![id.0, state.as_str(), error, finished],
        )?;
        if changed == 0 {
            return Err(StoreError::NoSuchJob(id));
        }
        Ok(())
    }

    pub fn mark_done(
        &mut self,
        id: JobId,
        remote_id: &str,
        url: &str,
        response: &serde_json::Value,
        sent: Option<&Sent>,
        now: i64,
    ) -> Result<(), StoreError> {
        // One transaction: the history search index (filled by a trigger) never lags the job.
        let tx = self.conn.transaction()?;
        let kind = upload_kind_of(&tx, id, response)?;
        let duplicate = sent.and_then(|s| s.duplicate_of);
        tx.execute(
            &format!(
                "UPDATE jobs SET state = 'done', error = NULL, remote_id = ?2, url = ?3, response = ?4,
                     finished_at = ?5, is_image = ?6, private = ?7, done_seq = {NEXT_DONE_SEQ},
                     sent_sha256 = ?8, sent_size = ?9, sent_metadata = ?10, duplicate_of = ?11,
                     duplicate_at = ?12
                 WHERE id = ?1"
            ),
            params![
                id.0,
                remote_id,
                url,
                response.to_string(),
                now,
                kind.is_image,
                kind.private,
                sent.map(|s| s.sha256.as_str()),
                sent.map(|s| s.size as i64),
                sent.map(|s| serde_json::to_string(&s.metadata).unwrap_or_default()),
                duplicate.map(|d| d.job.0),
                duplicate.map(|d| d.uploaded_at),
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Remembers a chunked upload's progress so a restart resumes from the last acknowledged
    /// chunk instead of byte 0.
    pub fn record_chunk(
        &mut self,
        id: JobId,
        upload_id: &str,
        bytes_acked: u64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET upload_id = ?2, bytes_acked = ?3 WHERE id = ?1",
            params![id.0, upload_id, bytes_acked as i64],
        )?;
        Ok(())
    }

    /// Puts a stopped job (cancelled, failed, needs attention) back in the queue.
    pub fn retry(&mut self, id: JobId) -> Result<(), StoreError> {
        let changed = self.conn.execute(
            "UPDATE jobs SET state = 'queued', error = NULL, finished_at = NULL, dismissed = 0
             WHERE id = ?1 AND state IN ('failed', 'needs_attention', 'cancelled', 'paused')",
            [id.0],
        )?;
        if changed == 0 {
            return Err(StoreError::NoSuchJob(id));
        }
        Ok(())
    }

    pub fn get(&self, id: JobId) -> Result<JobRecord, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id.0],
                row_to_record,
            )
            .optional()?
            .ok_or(StoreError::NoSuchJob(id))
    }

    /// Jobs waiting for a worker or interrupted mid-upload, oldest first. Jobs the user paused
    /// are not among them: nothing will run them until they are resumed.
    pub fn unfinished(&self) -> Result<Vec<JobId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM jobs WHERE state IN ('queued', 'running') ORDER BY id",
        )?;
        let ids = stmt
            .query_map([], |r| r.get::<_, i64>(0).map(JobId))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    pub fn count_in_state(&self, state: JobState) -> Result<u64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM jobs WHERE state = ?1",
            [state.as_str()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Finished uploads, newest first.
    pub fn history(&self, limit: usize, since: Option<i64>) -> Result<Vec<JobRecord>, StoreError> {
        self.history_page(limit, 0, since)
    }

    /// One page of [`Store::history`]: `limit` uploads after skipping the `offset` newest.
    pub fn history_page(
        &self,
        limit: usize,
        offset: usize,
        since: Option<i64>,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE state = 'done' AND finished_at >= ?1
             ORDER BY finished_at DESC, id DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let clamp = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(
                params![since.unwrap_or(0), clamp(limit), clamp(offset)],
                row_to_record,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// One page, oldest first, of the finished uploads with ids after `after` that finished at
    /// or after `since`: `verify` walks them by id, so uploads finishing meanwhile shift nothing.
    pub fn done_page(
        &self,
        after: JobId,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE state = 'done' AND id > ?1 AND finished_at >= ?2
             ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    after.0,
                    since.unwrap_or(0),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                row_to_record,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The highest job id so far (0 for an empty queue): where `resume` stops, so jobs queued
    /// while it runs are not its business.
    pub fn last_job_id(&self) -> Result<JobId, StoreError> {
        Ok(JobId(self.conn.query_row(
            "SELECT COALESCE(MAX(id), 0) FROM jobs",
            [],
            |r| r.get::<_, i64>(0),
        )?))
    }

    /// One page, oldest first, of the ids in `(after, up_to]` of jobs waiting or running.
    /// `resume` pages with it instead of loading every unfinished id at once.
    pub fn unfinished_page(
        &self,
        after: JobId,
        up_to: JobId,
        limit: usize,
    ) -> Result<Vec<JobId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM jobs WHERE id > ?1 AND id <= ?2 AND state IN ('queued', 'running')
             ORDER BY id LIMIT ?3",
        )?;
        let ids = stmt
            .query_map(
                params![after.0, up_to.0, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| r.get::<_, i64>(0).map(JobId),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// One page, oldest first, of the jobs in `(after, up_to]` that reached an end (for a
    /// waiter that missed their events).
    pub fn ended_page(
        &self,
        after: JobId,
        up_to: JobId,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE id > ?1 AND id <= ?2
               AND state IN ('done', 'failed', 'needs_attention', 'cancelled', 'deleted')
             ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![after.0, up_to.0, i64::try_from(limit).unwrap_or(i64::MAX)],
                row_to_record,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The finished upload whose URL or remote id is `target` (for delete-by-URL).
    pub fn find_done(&self, profile: &str, target: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM jobs WHERE state = 'done' AND profile = ?1
                     AND (url = ?2 OR remote_id = ?2) ORDER BY id DESC LIMIT 1"
                ),
                params![profile, target],
                row_to_record,
            )
            .optional()?)
    }

    /// Marks `id` deleted, and with it every finished job that points to the same remote file
    /// (its duplicates, or the upload it duplicated): their links died with it.
    pub fn mark_deleted(&mut self, id: JobId) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET state = 'deleted' WHERE id = ?1 OR (state = 'done' AND remote_id IS NOT NULL
                 AND (profile, remote_id) = (SELECT profile, remote_id FROM jobs WHERE id = ?1))",
            [id.0],
        )?;
        Ok(())
    }

    /// The newest finished upload (not itself a duplicate) of content `sha256` by `profile`
    /// with the same upload parameters (folder, tags, every other one), other than job `except`.
    /// An upload that differs in any parameter is another upload, not a repeat.
    pub fn find_duplicate(
        &self,
        profile: &str,
        sha256: &str,
        params: &Params,
        except: JobId,
    ) -> Result<Option<JobRecord>, StoreError> {
        let params = serde_json::to_string(params).unwrap_or_default();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs INDEXED BY jobs_by_content
             WHERE sent_sha256 = ?1 AND profile = ?2 AND state = 'done' AND duplicate_of IS NULL
               AND id <> ?3 AND params = ?4
             ORDER BY id DESC LIMIT 1"
        ))?;
        Ok(stmt
            .query_row(params![sha256, profile, except.0, params], row_to_record)
            .optional()?)
    }

    // -----------------------------------------------------------------------------------------
    // The queue view: what the app's Upload screen lists. Every job is in it until the user
    // clears it once finished (`dismissed`); a retried job comes back. The window reads counts
    // and pages of it, never the whole of it, so a drop of a million files costs the window no
    // more than a drop of ten.

    /// How many jobs of the queue view are in each state, and their bytes.
    pub fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT state, COUNT(*), COALESCE(SUM(size), 0) FROM jobs WHERE dismissed = 0
             GROUP BY state",
        )?;
        let mut counts = QueueCounts::default();
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?.max(0) as u64,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?;
        for row in rows {
            let (state, n, bytes) = row?;
            let Some(state) = JobState::parse(&state) else {
                continue;
            };
            counts.add(state, n, bytes);
        }
        Ok(counts)
    }

    /// Rows `offset..offset + limit` of the queue view, oldest first.
    pub fn queue_page(&self, offset: u64, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE dismissed = 0 ORDER BY id LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    i64::try_from(limit).unwrap_or(i64::MAX),
                    i64::try_from(offset).unwrap_or(i64::MAX)
                ],
                row_to_record,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Takes the finished jobs out of the queue view (their history stays). Returns how many.
    pub fn dismiss_finished(&mut self) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE jobs SET dismissed = 1 WHERE dismissed = 0
               AND state IN ('done', 'failed', 'needs_attention', 'cancelled', 'deleted')",
            [],
        )?)
    }

    /// Puts every failed or stuck job of the queue view back in the queue. Returns how many.
    pub fn retry_failed(&mut self) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE jobs SET state = 'queued', error = NULL, finished_at = NULL
             WHERE dismissed = 0 AND state IN ('failed', 'needs_attention')",
            [],
        )?)
    }

    /// Cancels the jobs of `intake` that wait (queued or paused); running ones are the
    /// engine's to stop. Returns how many.
    pub fn cancel_waiting_of(&mut self, intake: IntakeId, now: i64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE jobs SET state = 'cancelled', error = 'cancelled', finished_at = ?2
             WHERE intake = ?1 AND state IN ('queued', 'paused')",
            params![intake.0, now],
        )?)
    }

    /// The intake a job came from, if any.
    pub fn intake_of(&self, id: JobId) -> Result<Option<IntakeId>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT intake FROM jobs WHERE id = ?1", [id.0], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()?
            .flatten()
            .map(IntakeId))
    }

    /// Whether any job is queued or running: one index probe, whatever the queue's size.
    pub fn has_unfinished(&self) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('queued', 'running'))",
            [],
            |r| r.get::<_, bool>(0),
        )?)
    }

    /// Jobs queued or running, counted (what [`Store::unfinished`] lists).
    pub fn count_unfinished(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')",
                [],
                |r| r.get::<_, i64>(0),
            )?
            .max(0) as u64)
    }

    // ---- Watch scans: the journal compared a batch at a time ----

    /// The journal entries of `watch` at the paths `rel_paths` (those that have one), in one
    /// query: a scan compares its files a batch at a time, not one query per file. The paths
    /// go in as one JSON array, so a batch of thousands needs no thousands of placeholders, and
    /// each is looked up through the `(watch, rel_path)` key.
    pub fn journal_get_many(
        &self,
        watch: &str,
        rel_paths: &[&str],
    ) -> Result<std::collections::HashMap<String, JournalEntry>, StoreError> {
        if rel_paths.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let wanted = serde_json::to_string(rel_paths).unwrap_or_else(|_| "[]".into());
        let mut stmt = self.conn.prepare_cached(JOURNAL_GET_MANY)?;
        let rows = stmt
            .query_map(params![watch, wanted], row_to_journal)?
            .map(|row| row.map(|entry| (entry.rel_path.clone(), entry)))
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Marks the after-upload action done, in one statement, for every entry of `watch` whose
    /// upload is done: what `after_upload = "keep"` does at start, without loading the entries.
    pub fn journal_keep_done(&mut self, watch: &str) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            // EXISTS, not `job_id IN (SELECT ...)`: that would first list every done job.
            "UPDATE watch_journal SET action_done = 1
             WHERE watch = ?1 AND action_done = 0
               AND EXISTS (SELECT 1 FROM jobs
                           WHERE jobs.id = watch_journal.job_id AND jobs.state = 'done')",
            [watch],
        )?)
    }

    /// One page, by path, of [`Store::journal_pending_actions`]: the entries after `after`.
    /// A watch pages through them at start instead of loading a million at once.
    pub fn journal_pending_actions_page(
        &self,
        watch: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{JOURNAL_SELECT} WHERE j.watch = ?1 AND j.rel_path > ?2 AND j.action_done = 0
               AND jobs.state = 'done' ORDER BY j.rel_path LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![watch, after, i64::try_from(limit).unwrap_or(i64::MAX)],
                row_to_journal,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    // -----------------------------------------------------------------------------------------
    // History search (issue 16: a million rows). Finished uploads carry a `done_seq` (their
    // place in finish order) and an FTS5 row keyed by it, kept in step by triggers on `jobs`.
    // A query walks the FTS index newest first and stops at the page, so its cost follows the
    // page and the matches' doclists, not the size of the history.

    /// One page of the finished uploads matching `query`, newest first, and how many match.
    pub fn history_search(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.history_search_counting(query, EXACT_COUNT)
    }

    /// [`Store::history_search`] counting up to `exact_count` matches of the words.
    fn history_search_counting(
        &self,
        query: &HistoryQuery,
        exact_count: i64,
    ) -> Result<HistoryPage, StoreError> {
        let clamp = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let (limit, offset) = (clamp(query.limit), clamp(query.offset));
        let searched = query.fts_expression();
        // Without words, the count is a sum over `history_counts` (kept by the triggers):
        // counting a million index entries would take longer than the whole page.
        let mut exact = true;
        let mut total: i64 = if query.has_words() {
            // Exact up to `EXACT_COUNT` matches; past that (a letter or two typed, half the
            // history matching) an estimate from how far back the first `EXACT_COUNT` reach,
            // since counting half a million matches alone would take the whole 100 ms.
            let (counted, oldest): (i64, Option<i64>) = self
                .conn
                .prepare_cached(
                    "SELECT COUNT(*), MIN(seq) FROM (SELECT rowid AS seq FROM history_fts
                     WHERE history_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2)",
                )?
                .query_row(params![searched, EXACT_COUNT], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            match oldest {
                Some(oldest) if counted >= exact_count => {
                    exact = false;
                    let newest: i64 = self.conn.query_row(NEWEST_DONE_SEQ, [], |r| r.get(0))?;
                    let span = (newest - oldest + 1).max(1) as f64;
                    ((counted as f64) * (newest.max(1) as f64) / span).round() as i64
                }
                _ => counted,
            }
        } else {
            let (is_image, private) = match query.kind {
                HistoryKind::All => (None, None),
                HistoryKind::Images => (Some(true), None),
                HistoryKind::Other => (Some(false), None),
                HistoryKind::Private => (None, Some(true)),
            };
            self.conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(n), 0) FROM history_counts
                     WHERE (?1 IS NULL OR profile = ?1) AND (?2 IS NULL OR is_image = ?2)
                       AND (?3 IS NULL OR private = ?3)",
                )?
                .query_row(params![query.profile, is_image, private], |r| r.get(0))?
        };
        let records = match searched {
            None => self
                .conn
                .prepare_cached(&format!(
                    // Named: without statistics the planner would take `jobs_by_state` (for
                    // `state = 'done'`) and sort every finished job for the one page.
                    "SELECT {COLUMNS} FROM jobs INDEXED BY jobs_history WHERE state = 'done'
                     ORDER BY done_seq DESC LIMIT ?1 OFFSET ?2"
                ))?
                .query_map(params![limit, offset], row_to_record)?
                .collect::<Result<Vec<_>, _>>()?,
            // The page's sequence numbers first (the FTS index alone, in rowid order), then
            // their jobs by the `jobs_history` index: never a join over every match. CROSS JOIN
            // keeps that order (SQLite never reorders it); the planner would otherwise walk
            // `jobs`.
            Some(expr) => self
                .conn
                .prepare_cached(&format!(
                    "SELECT {J_COLUMNS} FROM (
                         SELECT rowid AS seq FROM history_fts WHERE history_fts MATCH ?1
                         ORDER BY rowid DESC LIMIT ?2 OFFSET ?3) AS hit
                     CROSS JOIN jobs AS j INDEXED BY jobs_history
                     WHERE j.done_seq = hit.seq AND j.state = 'done'
                     ORDER BY hit.seq DESC"
                ))?
                .query_map(params![expr, limit, offset], row_to_record)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        // A short page is the end: whatever the estimate said, the count is now known.
        if !exact && (records.len() as i64) < limit && (!records.is_empty() || offset == 0) {
            total = offset + records.len() as i64;
            exact = true;
        }
        Ok(HistoryPage {
            records,
            total: total.max(0) as u64,
            exact,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// History search: the query, the index's schema and how old databases gain it.

/// What the history shows: all uploads, images, other files, or private ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryKind {
    #[default]
    All,
    Images,
    Other,
    Private,
}

impl HistoryKind {
    /// `all`, `images`, `other` or `private`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(Self::All),
            "images" => Some(Self::Images),
            "other" => Some(Self::Other),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// A search of the finished uploads: every word of `text` (any order, each a prefix of a word
/// in the name, folder, profile, URL, tags or path), the profile and the kind, one page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub text: String,
    pub profile: Option<String>,
    pub kind: HistoryKind,
    pub limit: usize,
    pub offset: usize,
}

/// One page of a [`HistoryQuery`], and how many uploads match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub records: Vec<JobRecord>,
    pub total: u64,
    /// `total` is counted, not estimated (words matching more than `EXACT_COUNT` uploads are
    /// estimated until a page reaches the end).
    pub exact: bool,
}

/// Matches of a search counted one by one; more are estimated.
const EXACT_COUNT: i64 = 50_000;

impl HistoryQuery {
    /// The text has a word to search for (not only spaces and punctuation).
    fn has_words(&self) -> bool {
        self.text.chars().any(char::is_alphanumeric)
    }

    /// The FTS5 expression, none when nothing narrows the history. Only letters and digits of
    /// the user's text reach it (each word becomes a quoted phrase of its alphanumeric runs,
    /// the tokenizer's own split), so no input is FTS syntax: `"`, `*` or `NEAR(` are just
    /// separators.
    fn fts_expression(&self) -> Option<String> {
        let mut terms = Vec::new();
        for word in self.text.split_whitespace() {
            let tokens: Vec<String> = word
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase)
                .collect();
            if !tokens.is_empty() {
                // The prefix applies to the phrase's last token: "sunse" finds sunset.jpg,
                // "photo-99" finds photo-9921.png.
                terms.push(format!("{{{SEARCHED}}} : \"{}\"*", tokens.join(" ")));
            }
        }
        if let Some(profile) = &self.profile {
            terms.push(format!("facets : \"{}\"", profile_facet(profile)));
        }
        match self.kind {
            HistoryKind::All => {}
            HistoryKind::Images => terms.push("facets : kimage".into()),
            HistoryKind::Other => terms.push("facets : kother".into()),
            HistoryKind::Private => terms.push("facets : kprivate".into()),
        }
        (!terms.is_empty()).then(|| terms.join(" AND "))
    }
}

/// The FTS columns the user's words search (not `facets`, which holds the filters' tokens).
const SEARCHED: &str = "name folder profile url tags path";

/// A profile as one token (hex of its name): any name, and never a word the user types.
fn profile_facet(profile: &str) -> String {
    format!("p{}", hex::encode(profile.as_bytes()))
}

/// `COLUMNS` of the `jobs` table aliased `j`.
const J_COLUMNS: &str = "j.id, j.profile, j.path, j.file_name, j.size, j.params, j.state, \
    j.attempts, j.error, j.remote_id, j.url, j.response, j.upload_id, j.bytes_acked, j.source, \
    j.created_at, j.finished_at, j.file_dev, j.file_ino, j.file_mtime_ns, j.file_sha256, \
    j.file_nofollow, j.metadata, j.on_duplicate, j.sent_sha256, j.sent_size, j.sent_metadata, \
    j.duplicate_of, j.duplicate_at, j.resize";

/// A done job's sequence number: the next after the newest done one (kept when it already is
/// done). Reusing a deleted job's number is harmless: its FTS row left with it.
const NEXT_DONE_SEQ: &str = concat!(
    "(CASE WHEN state = 'done' AND done_seq IS NOT NULL THEN done_seq ELSE (",
    "SELECT COALESCE(MAX(done_seq), 0) + 1 FROM jobs INDEXED BY jobs_history WHERE state = 'done'",
    ") END)"
);
/// The newest done job's sequence number, read from the end of `jobs_history`. Named: without
/// statistics the planner takes `jobs_by_state` for `state = 'done'` and reads every finished
/// job to find the largest, once per upload, which made a 100,000-file batch quadratic.
const NEWEST_DONE_SEQ: &str =
    "SELECT COALESCE(MAX(done_seq), 0) FROM jobs INDEXED BY jobs_history WHERE state = 'done'";

/// The FTS row of a job (`row` is `new.`, `old.` or empty), in `history_fts`'s column order.
/// Folder and tags live in the params' JSON; `facets` holds the filters as tokens.
fn fts_values(row: &str) -> String {
    let param = |name: &str| {
        format!("CASE WHEN json_valid({row}params) THEN json_extract({row}params, '$.{name}') END")
    };
    format!(
        "{row}file_name, {folder}, {row}profile, {row}url, {tags}, {row}path,
         'k' || CASE WHEN {row}is_image THEN 'image' ELSE 'other' END
             || CASE WHEN {row}private THEN ' kprivate' ELSE '' END
             || ' p' || lower(hex({row}profile))",
        folder = param("folder"),
        tags = param("tags"),
    )
}

/// Counts a done job (`row` is `new.` or empty) in `history_counts`: per profile and kind, so
/// a count without words is a sum over a few rows.
fn count_upsert(row: &str) -> String {
    format!(
        "INSERT INTO history_counts (profile, is_image, private, n)
         SELECT {row}profile, COALESCE({row}is_image, 0) <> 0, COALESCE({row}private, 0) <> 0, 1
         WHERE true
         ON CONFLICT (profile, is_image, private) DO UPDATE SET n = n + 1;"
    )
}

/// The history's indexes, FTS table and triggers (after `ADDED_COLUMNS`: they name new columns).
fn history_schema() -> String {
    let values = fts_values("new.");
    format!(
        "CREATE INDEX IF NOT EXISTS jobs_history ON jobs(done_seq) WHERE state = 'done';
         CREATE INDEX IF NOT EXISTS jobs_unindexed ON jobs(id)
             WHERE state = 'done' AND done_seq IS NULL;
         CREATE VIRTUAL TABLE IF NOT EXISTS history_fts USING fts5(
             name, folder, profile, url, tags, path, facets,
             content = '', contentless_delete = 1, prefix = '1 2 3',
             tokenize = 'unicode61 remove_diacritics 2');
         CREATE TABLE IF NOT EXISTS history_counts (
             profile  TEXT NOT NULL,
             is_image INTEGER NOT NULL,
             private  INTEGER NOT NULL,
             n        INTEGER NOT NULL,
             PRIMARY KEY (profile, is_image, private)
         ) WITHOUT ROWID;
         CREATE TRIGGER IF NOT EXISTS history_fts_done AFTER UPDATE OF state ON jobs
             WHEN new.state = 'done' AND old.state <> 'done' AND new.done_seq IS NOT NULL
         BEGIN
             INSERT INTO history_fts (rowid, name, folder, profile, url, tags, path, facets)
             VALUES (new.done_seq, {values});
             {count_new}
         END;
         CREATE TRIGGER IF NOT EXISTS history_fts_undone AFTER UPDATE OF state ON jobs
             WHEN old.state = 'done' AND new.state <> 'done' AND old.done_seq IS NOT NULL
         BEGIN
             DELETE FROM history_fts WHERE rowid = old.done_seq;
             {uncount}
         END;
         CREATE TRIGGER IF NOT EXISTS history_fts_gone AFTER DELETE ON jobs
             WHEN old.state = 'done' AND old.done_seq IS NOT NULL
         BEGIN
             DELETE FROM history_fts WHERE rowid = old.done_seq;
             {uncount}
         END;",
        count_new = count_upsert("new."),
        uncount = "UPDATE history_counts SET n = n - 1 WHERE profile = old.profile
             AND is_image = (COALESCE(old.is_image, 0) <> 0)
             AND private = (COALESCE(old.private, 0) <> 0);",
    )
}

/// Creates the history index, and indexes finished uploads that are not yet: all of them in a
/// database from before it (once, on the first open by this version), or the few an older
/// version finished meanwhile. One transaction, so a crash midway leaves no half index behind.
fn prepare_history_search(conn: &Connection) -> rusqlite::Result<()> {
    // Both checks are cheap: `sqlite_master`, and the partial index of unindexed done jobs.
    let ready = |conn: &Connection| -> rusqlite::Result<bool> {
        let exists: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'history_fts'",
            [],
            |r| r.get(0),
        )?;
        Ok(exists
            && !conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'done' AND done_seq IS NULL)",
                [],
                |r| r.get::<_, bool>(0),
            )?)
    };
    if ready(conn)? {
        return Ok(());
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    if ready(&tx)? {
        return Ok(());
    }
    let fresh: bool = tx.query_row(
        "SELECT COUNT(*) = 0 FROM sqlite_master WHERE name = 'history_fts'",
        [],
        |r| r.get(0),
    )?;
    tx.execute_batch(&history_schema())?;
    if fresh {
        // Counts left from an index that is gone would count its jobs twice.
        tx.execute_batch("DELETE FROM history_counts")?;
    }
    {
        let mut seq: i64 = tx.query_row(NEWEST_DONE_SEQ, [], |r| r.get(0))?;
        let mut select = tx.prepare(
            "SELECT id, file_name, params, response FROM jobs
             WHERE state = 'done' AND done_seq IS NULL ORDER BY finished_at, id",
        )?;
        let mut update =
            tx.prepare("UPDATE jobs SET done_seq = ?2, is_image = ?3, private = ?4 WHERE id = ?1")?;
        let mut index = tx.prepare(&format!(
            "INSERT INTO history_fts (rowid, name, folder, profile, url, tags, path, facets)
             SELECT done_seq, {} FROM jobs WHERE id = ?1",
            fts_values("")
        ))?;
        let mut count =
            tx.prepare(&count_upsert("").replace("WHERE true", "FROM jobs WHERE id = ?1"))?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let name: String = row.get(1)?;
            let job_params: Params =
                serde_json::from_str(&row.get::<_, String>(2)?).unwrap_or_default();
            let response: Option<serde_json::Value> = row
                .get::<_, Option<String>>(3)?
                .and_then(|r| serde_json::from_str(&r).ok());
            let kind = UploadKind::of(&name, &job_params, response.as_ref());
            seq += 1;
            update.execute(params![id, seq, kind.is_image, kind.private])?;
            index.execute([id])?;
            count.execute([id])?;
        }
    }
    tx.commit()
}

/// The kind of job `id` once `response` is its provider's answer.
fn upload_kind_of(
    tx: &rusqlite::Transaction<'_>,
    id: JobId,
    response: &serde_json::Value,
) -> rusqlite::Result<UploadKind> {
    let row = tx
        .query_row(
            "SELECT file_name, params FROM jobs WHERE id = ?1",
            [id.0],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?;
    Ok(match row {
        Some((name, job_params)) => UploadKind::of(
            &name,
            &serde_json::from_str(&job_params).unwrap_or_default(),
            Some(response),
        ),
        None => UploadKind::default(),
    })
}

/// What the history's kind filter and icons need to know of an upload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadKind {
    pub is_image: bool,
    /// Needs a signed link to be opened (ImageKit private file, Cloudinary private type).
    pub private: bool,
}

const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "avif", "bmp", "svg", "tif", "tiff", "heic", "ico",
];

/// An image by its name's extension (when the provider did not say).
pub fn looks_like_image(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

impl UploadKind {
    /// From the provider's answer (ImageKit's `fileType` and `isPrivateFile`, Cloudinary's
    /// `resource_type` and `type`), else the upload's parameters and the file name.
    pub fn of(file_name: &str, params: &Params, response: Option<&serde_json::Value>) -> Self {
        let field = |name: &str| {
            response
                .and_then(|r| r.get(name))
                .and_then(serde_json::Value::as_str)
        };
        let is_image = match field("fileType").or(field("resource_type")) {
            Some(kind) => kind == "image",
            None => looks_like_image(file_name),
        };
        let private = params.get("isPrivateFile").map(String::as_str) == Some("true")
            || response
                .and_then(|r| r.get("isPrivateFile"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
            || matches!(field("type"), Some("private" | "authenticated"))
            || params.get("type").map(String::as_str) == Some("private");
        Self { is_image, private }
    }
}

/// See [`Store::journal_get_many`].
const JOURNAL_GET_MANY: &str = "SELECT j.watch, j.rel_path, j.size, j.mtime_ns, j.sha256, j.job_id,
    j.action_done, j.file_dev, j.file_ino
    FROM watch_journal j
    WHERE j.watch = ?1 AND j.rel_path IN (SELECT value FROM json_each(?2))";

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let params: String = row.get(5)?;
    let state: String = row.get(6)?;
    let response: Option<String> = row.get(11)?;
    Ok(JobRecord {
        id: JobId(row.get(0)?),
        profile: row.get(1)?,
        path: PathBuf::from(row.get::<_, String>(2)?),
        file_name: row.get(3)?,
        size: row.get::<_, i64>(4)?.max(0) as u64,
        params: serde_json::from_str(&params).unwrap_or_default(),
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        attempts: row.get::<_, i64>(7)?.max(0) as u32,
        error: row.get(8)?,
        remote_id: row.get(9)?,
        url: row.get(10)?,
        response: response.and_then(|r| serde_json::from_str(&r).ok()),
        upload_id: row.get(12)?,
        bytes_acked: row.get::<_, i64>(13)?.max(0) as u64,
        source: JobSource::from_text(&row.get::<_, String>(14)?),
        created_at: row.get(15)?,
        finished_at: row.get(16)?,
        file: match (
            row.get::<_, Option<i64>>(17)?,
            row.get::<_, Option<i64>>(18)?,
        ) {
            (Some(dev), Some(ino)) => Some(FileIdentity {
                dev: dev as u64,
                ino: ino as u64,
                size: row.get::<_, i64>(4)?.max(0) as u64,
                mtime_ns: row.get::<_, Option<i64>>(19)?.unwrap_or(0),
                sha256: row.get(20)?,
                no_follow: row.get::<_, i64>(21)? != 0,
            }),
            _ => None,
        },
        metadata: row
            .get::<_, Option<String>>(22)?
            .and_then(|m| MetadataPolicy::parse(&m))
            .unwrap_or(MetadataPolicy::Keep),
        on_duplicate: row
            .get::<_, Option<String>>(23)?
            .and_then(|m| OnDuplicate::parse(&m))
            .unwrap_or(OnDuplicate::Upload),
        resize: row
            .get::<_, Option<String>>(29)?
            .and_then(|r| Resize::from_text(&r)),
        sent: match row.get::<_, Option<String>>(24)? {
            Some(sha256) => Some(Sent {
                sha256,
                size: row.get::<_, Option<i64>>(25)?.unwrap_or(0).max(0) as u64,
                metadata: row
                    .get::<_, Option<String>>(26)?
                    .and_then(|m| serde_json::from_str(&m).ok())
                    .unwrap_or_default(),
                duplicate_of: match (row.get::<_, Option<i64>>(27)?, row.get(28)?) {
                    (Some(job), Some(uploaded_at)) => Some(DuplicateOf {
                        job: JobId(job),
                        uploaded_at,
                    }),
                    _ => None,
                },
            }),
            None => None,
        },
    })
}

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, name, kind) in ADDED_COLUMNS {
        let exists: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            params![table, name],
            |r| r.get(0),
        )?;
        if !exists {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {kind};"))?;
        }
    }
    Ok(())
}

fn row_to_journal(row: &rusqlite::Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        watch: row.get(0)?,
        rel_path: row.get(1)?,
        size: row.get::<_, i64>(2)?.max(0) as u64,
        mtime_ns: row.get(3)?,
        sha256: row.get(4)?,
        job_id: row.get::<_, Option<i64>>(5)?.map(JobId),
        action_done: row.get::<_, i64>(6)? != 0,
        file_inode: match (row.get::<_, Option<i64>>(7)?, row.get::<_, Option<i64>>(8)?) {
            (Some(dev), Some(ino)) => Some((dev as u64, ino as u64)),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn job(name: &str) -> NewJob {
        NewJob {
            profile: "p".into(),
            path: PathBuf::from(format!("/tmp/{name}")),
            file_name: name.into(),
            size: 3,
            params: Params::new(),
            source: JobSource::Cli,
            file: None,
            metadata: MetadataPolicy::Keep,
            on_duplicate: OnDuplicate::Upload,
            resize: None,
        }
    }

    #[test]
    fn the_queue_view_is_counted_and_paged_without_reading_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let jobs: Vec<NewJob> = (0..2_500).map(|i| job(&format!("f{i}"))).collect();
        let ids = store.enqueue_in(&jobs, Some(IntakeId(7)), 1).unwrap();
        store
            .mark_done(ids[0], "r0", "https://x/0", &serde_json::json!({}), None, 2)
            .unwrap();
        store
            .set_state(ids[1], JobState::Failed, Some("no"), 2)
            .unwrap();
        store
            .set_state(ids[2], JobState::NeedsAttention, Some("slow"), 2)
            .unwrap();
        assert!(store.has_unfinished().unwrap());
        let counts = store.queue_counts().unwrap();
        assert_eq!(
            (
                counts.total(),
                counts.done,
                counts.failed,
                counts.needs_attention
            ),
            (2_500, 1, 1, 1)
        );
        assert_eq!(counts.queued, 2_497);
        assert_eq!((counts.bytes_total, counts.bytes_done), (7_500, 3));
        let page = store.queue_page(2_000, 1_000).unwrap();
        assert_eq!(page.len(), 500);
        assert_eq!(page[0].id, ids[2_000]);
        assert_eq!(page.last().map(|r| r.id), ids.last().copied());

        // Retry all failed: both, in one statement; they stay in the view.
        assert_eq!(store.retry_failed().unwrap(), 2);
        assert_eq!(store.queue_counts().unwrap().queued, 2_499);
        // Clear finished: the done one leaves the view (and stays in the history).
        assert_eq!(store.dismiss_finished().unwrap(), 1);
        assert_eq!(store.queue_counts().unwrap().total(), 2_499);
        assert_eq!(store.queue_page(0, 1).unwrap()[0].id, ids[1]);
        assert_eq!(store.history(10, None).unwrap().len(), 1);
        // A job retried from the history comes back into the view.
        store.set_state(ids[0], JobState::Failed, None, 3).unwrap();
        store.retry(ids[0]).unwrap();
        assert_eq!(store.queue_page(0, 1).unwrap()[0].id, ids[0]);
    }

    #[test]
    fn cancelling_an_intake_cancels_only_its_waiting_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert!(!store.has_unfinished().unwrap());
        let mine = store
            .enqueue_in(&[job("a"), job("b"), job("c")], Some(IntakeId(1)), 1)
            .unwrap();
        let other = store.enqueue_in(&[job("d")], Some(IntakeId(2)), 1).unwrap();
        let loose = store.enqueue(&[job("e")], 1).unwrap();
        store
            .mark_done(mine[0], "r", "https://x/a", &serde_json::json!({}), None, 2)
            .unwrap();
        store.set_state(mine[1], JobState::Paused, None, 2).unwrap();
        assert_eq!(store.intake_of(mine[2]).unwrap(), Some(IntakeId(1)));
        assert_eq!(store.intake_of(loose[0]).unwrap(), None);
        assert_eq!(store.cancel_waiting_of(IntakeId(1), 3).unwrap(), 2);
        let state = |id| store.get(id).unwrap().state;
        assert_eq!(state(mine[0]), JobState::Done);
        assert_eq!(state(mine[1]), JobState::Cancelled);
        assert_eq!(state(mine[2]), JobState::Cancelled);
        assert_eq!(state(other[0]), JobState::Queued);
        assert_eq!(state(loose[0]), JobState::Queued);
    }

    #[test]
    fn the_queue_view_answers_from_its_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            rows.join("; ")
        };
        let counts = plan(
            "SELECT state, COUNT(*), COALESCE(SUM(size), 0) FROM jobs WHERE dismissed = 0 GROUP BY state",
        );
        assert!(counts.contains("jobs_in_view_by_state"), "{counts}");
        let page = plan("SELECT * FROM jobs WHERE dismissed = 0 ORDER BY id LIMIT 10 OFFSET 10");
        assert!(page.contains("jobs_in_view"), "{page}");
        let intake = plan("SELECT id FROM jobs WHERE intake = 1 AND state IN ('queued', 'paused')");
        assert!(intake.contains("jobs_by_intake"), "{intake}");
        // Once per upload: a seek to the end of `jobs_history`, never a walk over the done jobs
        // (which made a 100,000-file batch quadratic).
        for sql in [
            NEWEST_DONE_SEQ.to_string(),
            format!("SELECT {NEXT_DONE_SEQ} FROM jobs WHERE id = 1"),
        ] {
            let newest = plan(&sql);
            assert!(
                newest.contains("COVERING INDEX jobs_history") && !newest.contains("jobs_by_state"),
                "{newest}"
            );
        }
    }

    #[test]
    fn queue_claims_in_order_and_requeues_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let ids = store.enqueue(&[job("a"), job("b"), job("c")], 10).unwrap();
        let first = store.claim_next(&[]).unwrap().unwrap();
        assert_eq!(first.id, ids[0]);
        let second = store.claim_next(&[]).unwrap().unwrap();
        assert_eq!(second.id, ids[1]);
        store
            .mark_done(
                first.id,
                "rid",
                "http://x/a",
                &serde_json::json!({}),
                None,
                11,
            )
            .unwrap();
        drop(store);

        // "Crash": reopen. `b` was running and is queued again; `a` stays done.
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.requeue_interrupted().unwrap(), 1);
        assert_eq!(store.count_in_state(JobState::Queued).unwrap(), 2);
        let again = store.claim_next(&[]).unwrap().unwrap();
        assert_eq!(again.id, ids[1]);
        assert_eq!(again.attempts, 2);
        assert_eq!(store.history(10, None).unwrap().len(), 1);
        assert_eq!(
            store.find_done("p", "http://x/a").unwrap().unwrap().id,
            ids[0]
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_database_and_its_wal_and_shm_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut store = Store::open(&data).unwrap();
        store.enqueue(&[job("a")], 1).unwrap();
        // While the store is open its -wal and -shm exist; SQLite gives them the database's mode.
        for name in ["dropkey.db", "dropkey.db-wal", "dropkey.db-shm"] {
            let mode = std::fs::metadata(data.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    /// `synchronous` as the store's connection has it now.
    fn synchronous(store: &Store) -> i64 {
        store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn queued_and_done_commit_at_synchronous_full() {
        // FULL (2): a commit is on disk, WAL included, before the call returns. NORMAL (1)
        // loses the last commits on power loss.
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(synchronous(&store), 2);
        let entry = JournalEntry {
            watch: "w".into(),
            rel_path: "a".into(),
            size: 3,
            mtime_ns: 1,
            sha256: "x".into(),
            job_id: None,
            action_done: false,
            file_inode: None,
        };
        let id = store.enqueue_watched(&job("a"), &entry, 1).unwrap();
        assert_eq!(synchronous(&store), 2, "after enqueue_watched");
        store.enqueue(&[job("b")], 1).unwrap();
        assert_eq!(synchronous(&store), 2, "after enqueue");
        store.claim_next(&[]).unwrap();
        store
            .mark_done(id, "rid", "http://x/a", &serde_json::json!({}), None, 2)
            .unwrap();
        assert_eq!(synchronous(&store), 2, "after mark_done");
    }

    #[test]
    fn identity_round_trips_and_old_databases_gain_the_columns() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A database from before the identity columns.
            let conn = Connection::open(dir.path().join("dropkey.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE jobs (id INTEGER PRIMARY KEY, profile TEXT NOT NULL, path TEXT NOT NULL,
                 file_name TEXT NOT NULL, size INTEGER NOT NULL, params TEXT NOT NULL,
                 state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT, remote_id TEXT,
                 url TEXT, response TEXT, upload_id TEXT, bytes_acked INTEGER NOT NULL DEFAULT 0,
                 source TEXT NOT NULL, created_at INTEGER NOT NULL, finished_at INTEGER);
                 CREATE TABLE watch_journal (watch TEXT NOT NULL, rel_path TEXT NOT NULL,
                 size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
                 job_id INTEGER, action_done INTEGER NOT NULL DEFAULT 0,
                 recorded_at INTEGER NOT NULL, PRIMARY KEY (watch, rel_path));
                 INSERT INTO watch_journal VALUES ('w', 'old.txt', 3, 1, 'x', 1, 0, 1);
                 INSERT INTO jobs (profile, path, file_name, size, params, state, source, created_at)
                 VALUES ('p', '/tmp/old', 'old', 3, '{}', 'queued', 'cli', 1);",
            )
            .unwrap();
        }
        let mut store = Store::open(dir.path()).unwrap();
        let old = store.claim_next(&[]).unwrap().unwrap();
        assert_eq!(old.file, None);
        let entry = store.journal_get("w", "old.txt").unwrap().unwrap();
        assert_eq!(entry.file_inode, None);
        store
            .journal_update("w", "old.txt", "old.txt", 3, 2, Some((7, 42)))
            .unwrap();
        let entry = store.journal_get("w", "old.txt").unwrap().unwrap();
        assert_eq!((entry.mtime_ns, entry.file_inode), (2, Some((7, 42))));
        let mut new = job("new");
        new.file = Some(FileIdentity {
            dev: 7,
            ino: 42,
            size: 3,
            mtime_ns: 123,
            sha256: Some("abc".into()),
            no_follow: true,
        });
        let id = store.enqueue(&[new.clone()], 2).unwrap()[0];
        assert_eq!(store.get(id).unwrap().file, new.file);
    }

    #[test]
    fn a_removed_journal_entry_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let entry = JournalEntry {
            watch: "w".into(),
            rel_path: "scan.pdf".into(),
            size: 3,
            mtime_ns: 1,
            sha256: "x".into(),
            job_id: None,
            action_done: false,
            file_inode: None,
        };
        store.enqueue_watched(&job("scan.pdf"), &entry, 1).unwrap();
        assert!(store.journal_get("w", "scan.pdf").unwrap().is_some());
        store.journal_remove("w", "scan.pdf").unwrap();
        assert!(store.journal_get("w", "scan.pdf").unwrap().is_none());
    }

    /// Done uploads named `names` (in finish order), with folder and tags params.
    fn done_uploads(store: &mut Store, profile: &str, names: &[&str]) -> Vec<JobId> {
        let mut ids = Vec::new();
        for name in names {
            let mut new = job(name);
            new.profile = profile.into();
            new.params.insert("folder".into(), "/trips/2026".into());
            new.params.insert("tags".into(), "holiday,beach".into());
            let id = store.enqueue(&[new], 1).unwrap()[0];
            let url = format!("https://cdn.example/{profile}/{name}");
            // Every upload its own remote file, as at ImageKit.
            store
                .mark_done(
                    id,
                    &format!("file_{}", id.0),
                    &url,
                    &serde_json::json!({}),
                    None,
                    100,
                )
                .unwrap();
            ids.push(id);
        }
        ids
    }

    fn search(store: &Store, text: &str) -> (Vec<String>, u64) {
        let page = store
            .history_search(&HistoryQuery {
                text: text.into(),
                limit: 100,
                ..HistoryQuery::default()
            })
            .unwrap();
        let names = page.records.iter().map(|r| r.file_name.clone()).collect();
        (names, page.total)
    }

    #[test]
    fn history_search_matches_word_prefixes_in_any_order_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        done_uploads(
            &mut store,
            "p",
            &[
                "sunset-beach.jpg",
                "report.pdf",
                "photo-9921.png",
                "sunrise.PNG",
            ],
        );
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(search(&store, "sunse"), (names(&["sunset-beach.jpg"]), 1));
        assert_eq!(
            search(&store, "BEACH sunse"),
            (names(&["sunset-beach.jpg"]), 1)
        );
        assert_eq!(
            search(&store, "sun"),
            (names(&["sunrise.PNG", "sunset-beach.jpg"]), 2)
        );
        assert_eq!(search(&store, "photo-99"), (names(&["photo-9921.png"]), 1));
        // Folder, tags, profile and URL are searched too; every word must match.
        assert_eq!(search(&store, "trips holiday").1, 4);
        assert_eq!(search(&store, "cdn.example report").1, 1);
        assert_eq!(search(&store, "report sunset").1, 0);
        // Nothing typed: everything, newest first.
        let (all, total) = search(&store, "  ");
        assert_eq!(total, 4);
        assert_eq!(all[0], "sunrise.PNG");
    }

    #[test]
    fn history_search_takes_any_text_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        done_uploads(&mut store, "p", &["a.txt"]);
        for text in [
            "\"",
            "*",
            "NEAR(",
            "a\" OR \"b",
            "{name}: a",
            "-a",
            "^a",
            "a:b",
            "(",
            ")",
            "AND",
            "NOT a",
            "'",
            "\u{0}",
            "é",
            "🙂",
        ] {
            let query = HistoryQuery {
                text: text.into(),
                limit: 10,
                ..HistoryQuery::default()
            };
            assert!(store.history_search(&query).is_ok(), "{text:?}");
        }
        // Operators are words like any other: "a OR zzz" needs both "a" and "zzz".
        assert_eq!(search(&store, "a OR zzz").1, 0);
        assert_eq!(search(&store, "NEAR(a").1, 0);
        assert_eq!(search(&store, "\"a\"").1, 1);
    }

    #[test]
    fn history_search_filters_by_profile_and_kind_and_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        done_uploads(&mut store, "ik", &["one.jpg", "two.pdf", "three.png"]);
        done_uploads(&mut store, "cl-2", &["four.jpg"]);
        let mut secret = job("secret.pdf");
        secret.params.insert("isPrivateFile".into(), "true".into());
        let id = store.enqueue(&[secret], 1).unwrap()[0];
        let answer = serde_json::json!({ "fileType": "non-image" });
        store
            .mark_done(id, "rid", "https://x/s", &answer, None, 100)
            .unwrap();
        let query = |profile: Option<&str>, kind, limit, offset| {
            let page = store
                .history_search(&HistoryQuery {
                    text: String::new(),
                    profile: profile.map(str::to_owned),
                    kind,
                    limit,
                    offset,
                })
                .unwrap();
            let names: Vec<String> = page.records.into_iter().map(|r| r.file_name).collect();
            (names, page.total)
        };
        let ik = query(Some("ik"), HistoryKind::All, 10, 0);
        assert_eq!(
            ik,
            (
                vec!["three.png".into(), "two.pdf".into(), "one.jpg".into()],
                3
            )
        );
        assert_eq!(query(Some("cl-2"), HistoryKind::All, 10, 0).1, 1);
        assert_eq!(query(Some("c"), HistoryKind::All, 10, 0).1, 0);
        assert_eq!(query(None, HistoryKind::Images, 10, 0).1, 3);
        assert_eq!(
            query(None, HistoryKind::Other, 10, 0).0,
            vec!["secret.pdf".to_string(), "two.pdf".into()]
        );
        assert_eq!(
            query(None, HistoryKind::Private, 10, 0),
            (vec!["secret.pdf".into()], 1)
        );
        assert_eq!(
            query(Some("ik"), HistoryKind::Images, 1, 1),
            (vec!["one.jpg".into()], 2)
        );
        // Paging the whole history: the same order as one big page.
        let all = query(None, HistoryKind::All, 10, 0).0;
        assert_eq!(all.len(), 5);
        assert_eq!(query(None, HistoryKind::All, 2, 3).0, all[3..5].to_vec());
        assert_eq!(query(None, HistoryKind::All, 2, 9).0, Vec::<String>::new());
    }

    #[test]
    fn a_search_matching_very_many_estimates_its_count_until_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        const CAP: i64 = 20;
        let names: Vec<String> = (0..CAP + 10)
            .map(|i| {
                if i % 2 == 0 {
                    format!("s{i}.jpg")
                } else {
                    format!("t{i}.jpg")
                }
            })
            .collect();
        let jobs: Vec<NewJob> = names.iter().map(|n| job(n)).collect();
        let ids = store.enqueue(&jobs, 1).unwrap();
        for id in ids {
            store
                .mark_done(id, "r", "u", &serde_json::json!({}), None, 2)
                .unwrap();
        }
        let search = |text: &str, offset| {
            let query = HistoryQuery {
                text: text.into(),
                limit: 5,
                offset,
                ..HistoryQuery::default()
            };
            store.history_search_counting(&query, CAP).unwrap()
        };
        let n = CAP as u64 + 10;
        let all = search("jpg", 0);
        assert!(!all.exact);
        assert!(all.total.abs_diff(n) <= 2, "{}", all.total);
        let half = search("s", 0);
        assert!(half.exact, "fewer than the cap: counted");
        assert_eq!(half.total, n / 2);
        // The last page knows the count.
        let end = search("jpg", n as usize - 3);
        assert_eq!((end.records.len(), end.total, end.exact), (3, n, true));
    }

    fn sent(sha256: &str, duplicate_of: Option<DuplicateOf>) -> Sent {
        Sent {
            sha256: sha256.into(),
            size: 3,
            metadata: crate::metadata::Report::default(),
            duplicate_of,
        }
    }

    #[test]
    fn a_duplicate_is_the_same_bytes_profile_and_parameters_and_still_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut a = job("a.jpg");
        a.params.insert("folder".into(), "/f".into());
        let first = store.enqueue(&[a.clone()], 1).unwrap()[0];
        store
            .mark_done(
                first,
                "file_1",
                "https://x/a.jpg",
                &serde_json::json!({}),
                Some(&sent("abc", None)),
                5,
            )
            .unwrap();
        let later = store.enqueue(&[a.clone()], 6).unwrap()[0];
        let found = |store: &Store, sha: &str, params: &Params| {
            store
                .find_duplicate("p", sha, params, later)
                .unwrap()
                .map(|r| r.id)
        };
        assert_eq!(found(&store, "abc", &a.params), Some(first));
        assert_eq!(found(&store, "abd", &a.params), None, "other bytes");
        let mut tagged = a.params.clone();
        tagged.insert("tags".into(), "x".into());
        assert_eq!(found(&store, "abc", &tagged), None, "other parameters");
        assert_eq!(
            store.find_duplicate("q", "abc", &a.params, later).unwrap(),
            None,
            "other profile"
        );
        // The second one finishes as a duplicate: lookups still lead to the first upload.
        let earlier = DuplicateOf {
            job: first,
            uploaded_at: 5,
        };
        store
            .mark_done(
                later,
                "file_1",
                "https://x/a.jpg",
                &serde_json::json!({}),
                Some(&sent("abc", Some(earlier))),
                7,
            )
            .unwrap();
        let third = store.enqueue(&[a.clone()], 8).unwrap()[0];
        let hit = store
            .find_duplicate("p", "abc", &a.params, third)
            .unwrap()
            .unwrap();
        assert_eq!(hit.id, first);
        let record = store.get(later).unwrap();
        assert_eq!(record.sent.unwrap().duplicate_of, Some(earlier));
        // Deleting either deletes the remote file both point to: neither is a duplicate then.
        store.mark_deleted(later).unwrap();
        assert_eq!(store.get(first).unwrap().state, JobState::Deleted);
        assert_eq!(
            store.find_duplicate("p", "abc", &a.params, third).unwrap(),
            None
        );
    }

    #[test]
    fn jobs_from_before_metadata_policies_read_back_as_sent_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let id = store.enqueue(&[job("old.jpg")], 1).unwrap()[0];
        store
            .conn
            .execute(
                "UPDATE jobs SET metadata = NULL, on_duplicate = NULL WHERE id = ?1",
                [id.0],
            )
            .unwrap();
        let record = store.get(id).unwrap();
        assert_eq!(record.metadata, MetadataPolicy::Keep);
        assert_eq!(record.on_duplicate, OnDuplicate::Upload);
        assert_eq!(record.sent, None);
    }

    #[test]
    fn deleted_uploads_leave_the_search() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let ids = done_uploads(&mut store, "p", &["keep.jpg", "drop.jpg"]);
        store.mark_deleted(ids[1]).unwrap();
        assert_eq!(search(&store, "drop"), (vec![], 0));
        assert_eq!(search(&store, "").1, 1);
        // A later upload takes the freed place at the top, findable, and nothing is doubled.
        done_uploads(&mut store, "p", &["new.jpg"]);
        assert_eq!(
            search(&store, "jpg"),
            (vec!["new.jpg".into(), "keep.jpg".into()], 2)
        );
    }

    #[test]
    fn an_older_database_gets_its_history_indexed_in_finish_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            done_uploads(&mut store, "p", &["first.jpg", "second.pdf"]);
        }
        {
            // As a version before the search left it: no index, no sequence, no kinds; the
            // second upload finished first.
            let conn = Connection::open(dir.path().join("dropkey.db")).unwrap();
            conn.execute_batch(
                "DROP TRIGGER history_fts_done; DROP TRIGGER history_fts_undone;
                 DROP TRIGGER history_fts_gone; DROP TABLE history_fts;
                 UPDATE jobs SET done_seq = NULL, is_image = NULL, private = NULL;
                 UPDATE jobs SET finished_at = 50 WHERE file_name = 'second.pdf';",
            )
            .unwrap();
        }
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(
            search(&store, ""),
            (vec!["first.jpg".into(), "second.pdf".into()], 2)
        );
        assert_eq!(search(&store, "seco"), (vec!["second.pdf".into()], 1));
        let images = store
            .history_search(&HistoryQuery {
                kind: HistoryKind::Images,
                limit: 10,
                ..HistoryQuery::default()
            })
            .unwrap();
        assert_eq!(images.total, 1);
        // An older version finishes an upload (no sequence number): the next open indexes it.
        let id = store.enqueue(&[job("later.gif")], 1).unwrap()[0];
        drop(store);
        let conn = Connection::open(dir.path().join("dropkey.db")).unwrap();
        conn.execute(
            "UPDATE jobs SET state = 'done', url = 'u', finished_at = 200 WHERE id = ?1",
            [id.0],
        )
        .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(search(&store, "").0[0], "later.gif");
        assert_eq!(search(&store, "later").1, 1);
    }

    #[test]
    fn claim_skips_jobs_held_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let ids = store.enqueue(&[job("a"), job("b")], 1).unwrap();
        let next = store.claim_next(&[ids[0]]).unwrap().unwrap();
        assert_eq!(next.id, ids[1]);
    }
}

#[cfg(test)]
mod journal_batch_tests {
    use super::tests::job;
    use super::*;

    fn entry(watch: &str, rel: &str, size: u64) -> JournalEntry {
        JournalEntry {
            watch: watch.into(),
            rel_path: rel.into(),
            size,
            mtime_ns: size as i64 * 10,
            sha256: format!("sha-{rel}"),
            job_id: None,
            action_done: false,
            file_inode: Some((1, size)),
        }
    }

    fn journal(store: &mut Store, entries: &[JournalEntry]) {
        let tx = store.conn.transaction().unwrap();
        for e in entries {
            tx.execute(
                "INSERT INTO watch_journal (watch, rel_path, size, mtime_ns, sha256, action_done,
                     recorded_at, file_dev, file_ino) VALUES (?1, ?2, ?3, ?4, ?5, 0, 1, ?6, ?7)",
                params![
                    e.watch,
                    e.rel_path,
                    e.size as i64,
                    e.mtime_ns,
                    e.sha256,
                    e.file_inode.map(|(d, _)| d as i64),
                    e.file_inode.map(|(_, i)| i as i64)
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_batch_of_paths_is_compared_in_one_query() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        // Names JSON and SQL would both trip over, among plain ones.
        let odd = [
            "quote\"d.jpg",
            "back\\slash.jpg",
            "new\nline.jpg",
            "ünï 😀.jpg",
            "a'b.jpg",
        ];
        let mut known: Vec<JournalEntry> = (0..1_000)
            .map(|i| entry("w", &format!("d{}/f{i}.txt", i % 7), i))
            .collect();
        known.extend(odd.iter().map(|rel| entry("w", rel, 5)));
        journal(&mut store, &known);
        // The same paths under another watch must not answer for this one.
        journal(&mut store, &[entry("other", "d0/unknown0.txt", 1)]);

        let mut asked: Vec<String> = known.iter().map(|e| e.rel_path.clone()).collect();
        asked.extend((0..1_500).map(|i| format!("d{}/unknown{i}.txt", i % 7)));
        let refs: Vec<&str> = asked.iter().map(String::as_str).collect();
        let found = store.journal_get_many("w", &refs).unwrap();
        assert_eq!(found.len(), known.len());
        for e in &known {
            assert_eq!(found.get(&e.rel_path), Some(e), "{}", e.rel_path);
        }
        assert!(store.journal_get_many("w", &[]).unwrap().is_empty());
        assert!(store.journal_get_many("nobody", &refs).unwrap().is_empty());
    }

    #[test]
    fn pending_actions_come_a_page_at_a_time_and_keep_marks_them_in_one_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for i in 0..25 {
            let rel = format!("f{i:02}");
            let id = store
                .enqueue_watched(&job(&rel), &entry("w", &rel, i), 1)
                .unwrap();
            // Every other upload is done; the rest still queued.
            if i % 2 == 0 {
                store.claim_next(&[]).unwrap();
                store
                    .mark_done(id, "rid", "http://x", &serde_json::json!({}), None, 2)
                    .unwrap();
            } else {
                store.claim_next(&[]).unwrap();
                store.requeue_interrupted().unwrap();
            }
        }
        let mut after = String::new();
        let mut seen = Vec::new();
        loop {
            let page = store.journal_pending_actions_page("w", &after, 4).unwrap();
            assert!(page.len() <= 4);
            let Some(last) = page.last() else { break };
            after = last.rel_path.clone();
            seen.extend(page.into_iter().map(|e| e.rel_path));
        }
        let done: Vec<String> = (0..25).step_by(2).map(|i| format!("f{i:02}")).collect();
        assert_eq!(seen, done);
        assert_eq!(store.journal_keep_done("w").unwrap(), done.len());
        assert!(store
            .journal_pending_actions_page("w", "", 100)
            .unwrap()
            .is_empty());
        assert_eq!(store.journal_keep_done("w").unwrap(), 0);
    }

    #[test]
    fn a_batch_lookup_uses_the_journal_key_not_a_scan() {
        // A million-entry journal scanned once per batch would make a rescan quadratic.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {JOURNAL_GET_MANY}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["w", "[\"a\"]"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let journal_steps: Vec<&String> = plan.iter().filter(|s| s.contains(" j ")).collect();
        assert!(!journal_steps.is_empty(), "{plan:?}");
        assert!(
            journal_steps
                .iter()
                .all(|s| s.contains("rel_path=?") || s.contains("rel_path>")),
            "{plan:?}"
        );
    }
}
