//! What the store answers about the jobs of one source (a watched folder): how many uploaded
//! since a time, wait, or failed; the newest uploads; and retrying its failed ones. Every query
//! is answered by `jobs_by_watch`, an index of watched jobs only (source, state, finished_at),
//! so it costs what it counts, not the size of the history, and the app's and the CLI's jobs
//! add nothing to it.

use rusqlite::params;

use super::{row_to_record, JobRecord, Store, StoreError, COLUMNS};
use crate::engine::job::JobSource;

/// Created when the store opens. Partial: only sources written `watch:...` (the range below is
/// exactly the texts starting with `watch:`); every query repeats [`WATCHED`] so that SQLite
/// can prove the index applies.
pub(super) const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS jobs_by_watch ON jobs(source, state, finished_at)
    WHERE source >= 'watch:' AND source < 'watch;';
";

/// The partial index's condition, word for word (SQLite matches the terms, it does not reason).
const WATCHED: &str = "source >= 'watch:' AND source < 'watch;'";

/// A source's jobs by what they wait for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Done at or after the `since` asked for.
    pub uploaded_since: u64,
    /// Queued, running or paused.
    pub waiting: u64,
    /// Failed or needing attention.
    pub failed: u64,
}

impl Store {
    /// How many of `source`'s jobs finished since `since` (Unix seconds), wait, or failed.
    /// Sources other than a watch have no index here and count as nothing.
    pub fn source_counts(
        &self,
        source: &JobSource,
        since: i64,
    ) -> Result<SourceCounts, StoreError> {
        if !matches!(source, JobSource::Watch(_)) {
            return Ok(SourceCounts::default());
        }
        let text = source.to_text();
        let count = |sql: &str, since: Option<i64>| -> Result<u64, StoreError> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let n: i64 = match since {
                Some(since) => stmt.query_row(params![text, since], |r| r.get(0))?,
                None => stmt.query_row(params![text], |r| r.get(0))?,
            };
            Ok(n.max(0) as u64)
        };
        Ok(SourceCounts {
            uploaded_since: count(
                &format!(
                    "SELECT COUNT(*) FROM jobs WHERE source = ?1 AND {WATCHED}
                       AND state = 'done' AND finished_at >= ?2"
                ),
                Some(since),
            )?,
            waiting: count(
                &format!(
                    "SELECT COUNT(*) FROM jobs WHERE source = ?1 AND {WATCHED}
                       AND state IN ('queued', 'running', 'paused')"
                ),
                None,
            )?,
            failed: count(
                &format!(
                    "SELECT COUNT(*) FROM jobs WHERE source = ?1 AND {WATCHED}
                       AND state IN ('failed', 'needs_attention')"
                ),
                None,
            )?,
        })
    }

    /// `source`'s newest `limit` uploads (done), newest first.
    pub fn source_recent(
        &self,
        source: &JobSource,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        if !matches!(source, JobSource::Watch(_)) {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE source = ?1 AND {WATCHED} AND state = 'done'
             ORDER BY finished_at DESC, id DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(
                params![source.to_text(), i64::try_from(limit).unwrap_or(i64::MAX)],
                row_to_record,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Puts `source`'s failed or stuck jobs back in the queue (also those cleared from the
    /// queue view, which they re-enter). Returns how many.
    pub fn retry_failed_of(&mut self, source: &JobSource) -> Result<usize, StoreError> {
        if !matches!(source, JobSource::Watch(_)) {
            return Ok(0);
        }
        Ok(self.conn.execute(
            &format!(
                "UPDATE jobs SET state = 'queued', error = NULL, finished_at = NULL, dismissed = 0
                 WHERE source = ?1 AND {WATCHED} AND state IN ('failed', 'needs_attention')"
            ),
            params![source.to_text()],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::tests::job;
    use super::*;
    use crate::engine::job::{JobState, NewJob};

    fn watched(name: &str, folder: &str) -> NewJob {
        NewJob {
            source: JobSource::Watch(PathBuf::from(folder)),
            ..job(name)
        }
    }

    #[test]
    fn a_watch_counts_only_its_own_jobs_by_what_they_wait_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let photos = JobSource::Watch(PathBuf::from("/w/photos"));
        let jobs = vec![
            watched("old.jpg", "/w/photos"),
            watched("today.jpg", "/w/photos"),
            watched("later.jpg", "/w/photos"),
            watched("broken.jpg", "/w/photos"),
            watched("stuck.jpg", "/w/photos"),
            watched("waiting.jpg", "/w/photos"),
            watched("paused.jpg", "/w/photos"),
            // Another watch whose path starts the same, and the app's own jobs.
            watched("other.jpg", "/w/photos2"),
            job("dropped.jpg"),
        ];
        let ids = store.enqueue(&jobs, 1).unwrap();
        let done = |store: &mut Store, i: usize, at: i64| {
            store
                .mark_done(
                    ids[i],
                    "r",
                    &format!("https://x/{i}"),
                    &serde_json::json!({}),
                    None,
                    at,
                )
                .unwrap();
        };
        done(&mut store, 0, 99);
        done(&mut store, 1, 100);
        done(&mut store, 2, 150);
        done(&mut store, 7, 150);
        done(&mut store, 8, 150);
        store
            .set_state(ids[3], JobState::Failed, Some("no"), 120)
            .unwrap();
        store
            .set_state(ids[4], JobState::NeedsAttention, Some("slow"), 120)
            .unwrap();
        store
            .set_state(ids[6], JobState::Paused, None, 120)
            .unwrap();

        let counts = store.source_counts(&photos, 100).unwrap();
        assert_eq!(
            counts,
            SourceCounts {
                uploaded_since: 2,
                waiting: 2,
                failed: 2
            }
        );
        assert_eq!(
            store.source_counts(&JobSource::App, 0).unwrap(),
            SourceCounts::default()
        );

        let recent: Vec<_> = store
            .source_recent(&photos, 2)
            .unwrap()
            .into_iter()
            .map(|r| (r.file_name, r.url))
            .collect();
        assert_eq!(
            recent,
            vec![
                ("later.jpg".to_owned(), Some("https://x/2".to_owned())),
                ("today.jpg".to_owned(), Some("https://x/1".to_owned())),
            ]
        );

        // Retry failed: this watch's two, even when cleared from the queue view; not others'.
        store.dismiss_finished().unwrap();
        assert_eq!(store.retry_failed_of(&photos).unwrap(), 2);
        let after = store.source_counts(&photos, 100).unwrap();
        assert_eq!((after.waiting, after.failed), (4, 0));
        assert_eq!(store.get(ids[3]).unwrap().state, JobState::Queued);
        assert_eq!(store.queue_counts().unwrap().queued, 3);
        assert_eq!(store.retry_failed_of(&JobSource::Cli).unwrap(), 0);
    }

    #[test]
    fn a_watch_is_counted_from_its_index_not_by_reading_the_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let rows = stmt
                .query_map(params!["watch:/w", 0], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            rows.join("; ")
        };
        for sql in [
            format!("SELECT COUNT(*) FROM jobs WHERE source = ?1 AND {WATCHED} AND state = 'done' AND finished_at >= ?2"),
            format!("SELECT COUNT(*) FROM jobs WHERE source = ?1 AND {WATCHED} AND state IN ('queued', 'running', 'paused') AND ?2 = ?2"),
            format!("SELECT {COLUMNS} FROM jobs WHERE source = ?1 AND {WATCHED} AND state = 'done' ORDER BY finished_at DESC, id DESC LIMIT ?2"),
        ] {
            let used = plan(&sql);
            assert!(used.contains("INDEX jobs_by_watch"), "{sql}: {used}");
            assert!(!used.contains("TEMP B-TREE"), "{sql} sorts: {used}");
        }
    }
}
