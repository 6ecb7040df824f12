//! Finished uploads: History's pages, signed links, deletion at the provider (both rules in
//! `dropkey_core::engine::uploaded`), the newest URLs for the tray.

use dropkey_core::engine::store::HistoryQuery as CoreHistoryQuery;

use super::Backend;
use crate::error::AppError;
use crate::models::{core_job_id, history_entry, HistoryPage, HistoryQuery};

/// The most History rows one call returns (the screen asks for windows of a few hundred).
const MAX_HISTORY_PAGE: u32 = 1_000;
const MAX_SEARCH_LEN: usize = 1_024;

impl Backend {
    /// One page of the finished uploads matching `query`, newest first (the store's search
    /// index answers: the page never holds more than `MAX_HISTORY_PAGE` entries).
    pub fn history(&self, query: HistoryQuery) -> Result<HistoryPage, AppError> {
        if query.text.len() > MAX_SEARCH_LEN {
            return Err(AppError::input("that search is too long; use fewer words"));
        }
        let page = self.engine.history_search(&CoreHistoryQuery {
            text: query.text,
            profile: query.profile.filter(|p| !p.is_empty()),
            kind: query.kind.into(),
            limit: query.limit.clamp(1, MAX_HISTORY_PAGE) as usize,
            offset: query.offset as usize,
        })?;
        let config = self.config();
        Ok(HistoryPage {
            entries: page
                .records
                .iter()
                .map(|r| history_entry(r, config.profile(&r.profile)))
                .collect(),
            offset: query.offset,
            total: u32::try_from(page.total).unwrap_or(u32::MAX),
        })
    }

    /// A link to a finished upload that works for `expire_in` seconds, even for a private file.
    pub async fn signed_link(&self, id: u32, expire_in: u32) -> Result<String, AppError> {
        Ok(self.engine.signed_link(core_job_id(id)?, expire_in).await?)
    }

    /// Deletes a finished upload at the provider and marks it deleted in the history. Returns
    /// whether the provider still had it.
    pub async fn delete_upload(&self, id: u32) -> Result<bool, AppError> {
        Ok(self.engine.delete_upload(core_job_id(id)?).await?)
    }

    pub fn last_url(&self) -> Result<Option<String>, AppError> {
        Ok(self
            .engine
            .history(1, None)?
            .into_iter()
            .find_map(|r| r.url))
    }

    /// The newest uploads for the tray's submenu: (name, url).
    pub fn recent(&self, n: usize) -> Vec<(String, String)> {
        self.engine
            .history(n, None)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.url.map(|u| (r.file_name, u)))
            .collect()
    }
}
