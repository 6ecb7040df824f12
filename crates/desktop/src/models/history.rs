//! History: a search, its pages, and a finished upload as the screen shows it.

use serde::{Deserialize, Serialize};

use dropkey_core::config::{Profile, Provider as CoreProvider};
use dropkey_core::engine::store::{HistoryKind as CoreHistoryKind, JobRecord, UploadKind};
use dropkey_core::engine::JobSource;

use super::{job_id, Provider};

/// A finished upload, as the History screen shows it.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct HistoryEntry {
    pub id: u32,
    pub name: String,
    pub path: String,
    pub profile: String,
    pub provider: Option<Provider>,
    #[specta(type = u32)]
    pub size: f64,
    /// Unix seconds.
    #[specta(type = u32)]
    pub finished_at: f64,
    pub url: String,
    pub remote_id: String,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub is_image: bool,
    /// Needs a signed link to be opened (ImageKit private file, Cloudinary private type).
    pub private: bool,
    /// ImageKit's URL endpoint, where a `tr:` segment goes; none for Cloudinary.
    pub url_endpoint: Option<String>,
    pub source: UploadSource,
    /// What was removed from the file's metadata ("removed location, serial numbers"), or why
    /// something was kept; none when the file was sent as it was.
    pub metadata: Option<String>,
    /// Set when nothing was sent: the same content was already uploaded.
    pub duplicate_of: Option<DuplicateView>,
}

/// The earlier upload a duplicate's link comes from.
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq)]
pub struct DuplicateView {
    pub job: u32,
    /// Unix seconds.
    #[specta(type = u32)]
    pub uploaded_at: f64,
}

impl DuplicateView {
    pub fn of(record: &JobRecord) -> Option<Self> {
        let earlier = record.sent.as_ref()?.duplicate_of?;
        Some(Self {
            job: super::queue::job_id(earlier.job),
            uploaded_at: earlier.uploaded_at as f64,
        })
    }
}

/// The metadata report's line, when there is something to say.
pub fn metadata_line(record: &JobRecord) -> Option<String> {
    let report = &record.sent.as_ref()?.metadata;
    (!report.is_empty()).then(|| report.line())
}

/// Who asked for the upload.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UploadSource {
    App,
    Cli,
    Watch {
        folder: String,
    },
    /// Recorded by another version of Dropkey under a name this one does not know.
    Other {
        name: String,
    },
}

impl From<&JobSource> for UploadSource {
    fn from(source: &JobSource) -> Self {
        match source {
            JobSource::App => Self::App,
            JobSource::Cli => Self::Cli,
            JobSource::Watch(folder) => Self::Watch {
                folder: folder.display().to_string(),
            },
            JobSource::Other(name) => Self::Other { name: name.clone() },
        }
    }
}

/// What the History screen shows: all uploads, images, other files, or private ones.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HistoryKind {
    #[default]
    All,
    Images,
    Other,
    Private,
}

impl From<HistoryKind> for CoreHistoryKind {
    fn from(kind: HistoryKind) -> Self {
        match kind {
            HistoryKind::All => Self::All,
            HistoryKind::Images => Self::Images,
            HistoryKind::Other => Self::Other,
            HistoryKind::Private => Self::Private,
        }
    }
}

/// A History search: every word of `text` (each a word prefix, any order), the profile (none:
/// all) and the kind; `limit` uploads after skipping the `offset` newest matches.
#[derive(Debug, Clone, Deserialize, specta::Type, PartialEq, Eq)]
pub struct HistoryQuery {
    pub text: String,
    pub profile: Option<String>,
    pub kind: HistoryKind,
    pub offset: u32,
    pub limit: u32,
}

/// One page of a History search, and how many uploads match in all.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    pub offset: u32,
    pub total: u32,
}

pub fn history_entry(record: &JobRecord, profile: Option<&Profile>) -> HistoryEntry {
    // The same derivation the store keeps for the history's kind filter.
    let UploadKind { is_image, private } =
        UploadKind::of(&record.file_name, &record.params, record.response.as_ref());
    let url_endpoint = profile.and_then(|p| match &p.provider {
        CoreProvider::ImageKit(ik) => {
            Some(ik.url_endpoint.as_str().trim_end_matches('/').to_owned())
        }
        CoreProvider::Cloudinary(_) => None,
    });
    HistoryEntry {
        id: job_id(record.id),
        name: record.file_name.clone(),
        path: record.path.display().to_string(),
        profile: record.profile.clone(),
        provider: profile.map(|p| Provider::from(&p.provider)),
        size: record.sent_size() as f64,
        finished_at: record.finished_at.unwrap_or(record.created_at) as f64,
        url: record.url.clone().unwrap_or_default(),
        remote_id: record.remote_id.clone().unwrap_or_default(),
        folder: record.params.get("folder").cloned(),
        tags: record
            .params
            .get("tags")
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        is_image,
        private,
        url_endpoint,
        source: (&record.source).into(),
        metadata: metadata_line(record),
        duplicate_of: DuplicateView::of(record),
    }
}
