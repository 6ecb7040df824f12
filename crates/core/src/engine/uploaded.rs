//! What a finished upload is at its provider, and what every front end does with one: which
//! file a job record, an id or a URL names there ([`cloudinary_kind`], [`RemoteAsset`]), a
//! signed link that opens it for a while, private files too ([`signed_link`]), and its deletion
//! at the provider with the history marked in step ([`delete`]).
//!
//! [`Engine::signed_link`] and [`Engine::delete_upload`] apply these to a job of the running
//! engine (the app). `dropkey private-url` and `dropkey delete` call the same functions with a
//! store opened for one command: starting an engine there would put another process's running
//! jobs back in the queue.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::Value;

use super::clock::SkewClock;
use super::store::{JobRecord, StoreError};
use super::{lock, provider, secret_for, Engine, JobId, JobState};
use crate::config::{Config, Profile, Provider};
use crate::secrets::SecretError;
use crate::sign::cloudinary::{DeliveryType, ResourceType};
use crate::sign::{cloudinary, imagekit, SignError};

/// How long a link made for a finished upload may last: a minute to a week.
pub const LINK_LIFETIME: std::ops::RangeInclusive<u32> = 60..=7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum UploadedError {
    #[error("there is no upload {0}")]
    NoSuchUpload(JobId),
    #[error("upload {id} is {}, not a finished upload", state.as_str())]
    NotFinished { id: JobId, state: JobState },
    #[error("profile `{0}` is no longer in the config: add it back to reach this file")]
    ProfileGone(String),
    #[error("the provider gave no id for this upload")]
    NoRemoteId,
    #[error("a signed link lasts between 60 seconds and 7 days")]
    LinkLifetime,
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The provider refused, or could not be reached: its reason.
    #[error("{0}")]
    Provider(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is gone at the provider; only the history still calls it uploaded.
    #[error("the file was deleted at the provider, but the upload history could not record it: {source}")]
    NotRecorded { existed: bool, source: StoreError },
    #[error("the key lookup stopped before it answered ({0}); try again")]
    Interrupted(String),
}

/// A string field of a provider's stored answer.
pub fn response_str<'a>(response: Option<&'a Value>, name: &str) -> Option<&'a str> {
    response.and_then(|r| r.get(name)).and_then(Value::as_str)
}

/// Cloudinary's resource type (`image`, `video`, `raw`) and delivery type (`upload`,
/// `private`, `authenticated`) of an asset: its file APIs and links need both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloudinaryKind {
    pub resource_type: ResourceType,
    pub delivery_type: DeliveryType,
}

/// The kind of an upload, from its stored answer; without one (an upload Dropkey did not
/// make), or where the answer names a kind Dropkey does not upload as, an image of the
/// profile's delivery type.
pub fn cloudinary_kind(response: Option<&Value>, profile: &Profile) -> CloudinaryKind {
    let private = matches!(&profile.provider, Provider::Cloudinary(cl) if cl.private);
    CloudinaryKind {
        resource_type: response_str(response, "resource_type")
            .and_then(ResourceType::parse)
            .unwrap_or_default(),
        delivery_type: response_str(response, "type")
            .and_then(DeliveryType::parse)
            .unwrap_or(if private {
                DeliveryType::Private
            } else {
                DeliveryType::Upload
            }),
    }
}

/// A finished upload and the profile it went to.
#[derive(Debug, Clone)]
pub struct Upload {
    pub record: JobRecord,
    pub profile: Profile,
}

impl Upload {
    /// `record`, if it is done (not deleted, failed or waiting) and its profile is still in
    /// `config`: only then can the provider be asked about its file.
    pub fn finished(record: JobRecord, config: &Config) -> Result<Self, UploadedError> {
        if record.state != JobState::Done {
            return Err(UploadedError::NotFinished {
                id: record.id,
                state: record.state,
            });
        }
        let profile = config
            .profile(&record.profile)
            .cloned()
            .ok_or_else(|| UploadedError::ProfileGone(record.profile.clone()))?;
        Ok(Self { record, profile })
    }

    pub fn cloudinary_kind(&self) -> CloudinaryKind {
        cloudinary_kind(self.record.response.as_ref(), &self.profile)
    }

    /// What a link to it names: ImageKit's file path (else its URL), or Cloudinary's public id
    /// in the format and kind it was stored as.
    pub fn link_target(&self) -> LinkTarget {
        let response = self.record.response.as_ref();
        match &self.profile.provider {
            Provider::ImageKit(_) => LinkTarget {
                id: response_str(response, "filePath")
                    .map(str::to_owned)
                    .or_else(|| self.record.url.clone())
                    .unwrap_or_default(),
                format: None,
                kind: CloudinaryKind::default(),
            },
            Provider::Cloudinary(_) => LinkTarget {
                id: self.record.remote_id.clone().unwrap_or_default(),
                format: response_str(response, "format").map(str::to_owned),
                kind: self.cloudinary_kind(),
            },
        }
    }
}

/// The file a signed link opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    /// ImageKit: the file path (or its URL); Cloudinary: the public id.
    pub id: String,
    /// Cloudinary only: the format to deliver, e.g. `pdf`.
    pub format: Option<String>,
    /// Cloudinary only.
    pub kind: CloudinaryKind,
}

/// A link that opens `target` of `profile` until `expires_at` (Unix seconds), private files
/// too: ImageKit's `ik-t`/`ik-s` URL, Cloudinary's private download URL.
pub fn signed_link(
    profile: &Profile,
    target: &LinkTarget,
    secret: &SecretString,
    now: i64,
    expires_at: i64,
) -> Result<String, SignError> {
    match &profile.provider {
        Provider::ImageKit(ik) => imagekit::signed_url(
            secret,
            ik.url_endpoint.as_str(),
            &target.id,
            None,
            Some(expires_at),
        ),
        Provider::Cloudinary(cl) => cloudinary::private_download_url(
            &cloudinary::DownloadRequest {
                api_url: cl.api_url.as_str(),
                cloud_name: &cl.cloud_name,
                api_key: &cl.api_key,
                public_id: &target.id,
                format: target.format.as_deref(),
                resource_type: target.kind.resource_type,
                delivery_type: target.kind.delivery_type,
                timestamp: now,
                expires_at,
                attachment: None,
            },
            secret,
            cloudinary::Algorithm::Sha1,
        ),
    }
}

/// A file at the provider, as its file APIs name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAsset {
    /// ImageKit's fileId, Cloudinary's public id.
    pub id: String,
    /// Cloudinary only (empty for an ImageKit id or URL).
    pub kind: CloudinaryKind,
}

/// Why a target given to `dropkey delete` names no file of the profile.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct TargetError(String);

impl RemoteAsset {
    /// The file a finished upload made.
    pub fn of_upload(upload: &Upload) -> Result<Self, UploadedError> {
        let id = upload
            .record
            .remote_id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or(UploadedError::NoRemoteId)?;
        Ok(Self {
            id,
            kind: upload.cloudinary_kind(),
        })
    }

    /// The file `target` names: for ImageKit a fileId, or a URL under the profile's
    /// `url_endpoint` that the history knows (`known`, the upload whose URL or id it is: a URL
    /// alone does not say the fileId); for Cloudinary a public id (of `known`'s kind, else the
    /// profile's) or a delivery URL, resolved strictly by [`crate::delivery_url::cloudinary_asset`].
    pub fn resolve(
        target: &str,
        profile: &Profile,
        known: Option<&JobRecord>,
    ) -> Result<Self, TargetError> {
        let err = |why: String| Err(TargetError(why));
        match &profile.provider {
            Provider::ImageKit(ik) => {
                if target.contains("://") {
                    let endpoint = ik.url_endpoint.as_str().trim_end_matches('/');
                    if !target.starts_with(&format!("{endpoint}/")) {
                        return err(format!(
                            "the URL is not under this profile's url_endpoint {endpoint}"
                        ));
                    }
                    match known {
                        Some(record) => Ok(Self {
                            id: record.remote_id.clone().unwrap_or_default(),
                            kind: CloudinaryKind::default(),
                        }),
                        None => err("this URL is not in Dropkey's upload history, so its file id is unknown: pass the fileId instead".into()),
                    }
                } else if !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    Ok(Self {
                        id: target.to_owned(),
                        kind: CloudinaryKind::default(),
                    })
                } else {
                    err(format!(
                        "`{target}` is neither an ImageKit file id nor a URL"
                    ))
                }
            }
            Provider::Cloudinary(_) => {
                if target.contains("://") {
                    crate::delivery_url::cloudinary_asset(target, profile)
                        .map(|asset| Self {
                            id: asset.public_id,
                            kind: CloudinaryKind {
                                resource_type: asset.resource_type,
                                delivery_type: asset.delivery_type,
                            },
                        })
                        .map_err(|why| TargetError(why.to_string()))
                } else if !target.is_empty()
                    && !target
                        .split('/')
                        .any(|s| s.is_empty() || s == "." || s == "..")
                {
                    Ok(Self {
                        id: target.to_owned(),
                        kind: cloudinary_kind(known.and_then(|r| r.response.as_ref()), profile),
                    })
                } else {
                    err(format!("`{target}` is not a valid Cloudinary public id"))
                }
            }
        }
    }
}

/// Deletes `asset` at `profile`'s provider, then, when the history knows the upload that made
/// it (`record`), marks that deleted through `mark_deleted`. Answers whether the provider still
/// had the file. A provider's refusal is [`UploadedError::Provider`]; a history that could not
/// be written once the file was gone is [`UploadedError::NotRecorded`].
pub async fn delete(
    http: &reqwest::Client,
    clock: &SkewClock,
    profile: &Profile,
    secret: &SecretString,
    asset: &RemoteAsset,
    record: Option<JobId>,
    mark_deleted: impl FnOnce(JobId) -> Result<(), StoreError>,
) -> Result<bool, UploadedError> {
    let existed = provider::delete(
        http,
        clock,
        profile,
        secret,
        &asset.id,
        asset.kind.resource_type,
        asset.kind.delivery_type,
    )
    .await
    .map_err(|failure| UploadedError::Provider(failure.reason().to_owned()))?;
    if let Some(id) = record {
        mark_deleted(id).map_err(|source| UploadedError::NotRecorded { existed, source })?;
    }
    Ok(existed)
}

impl Engine {
    /// The finished upload `id` and its profile, as the config is now.
    pub fn finished_upload(&self, id: JobId) -> Result<Upload, UploadedError> {
        let record = lock(&self.shared.store).get(id).map_err(|err| match err {
            StoreError::NoSuchJob(id) => UploadedError::NoSuchUpload(id),
            err => err.into(),
        })?;
        Upload::finished(record, &self.config())
    }

    /// A link that opens the finished upload `id` for `expire_in` seconds (within
    /// [`LINK_LIFETIME`]), private files too.
    pub async fn signed_link(&self, id: JobId, expire_in: u32) -> Result<String, UploadedError> {
        if !LINK_LIFETIME.contains(&expire_in) {
            return Err(UploadedError::LinkLifetime);
        }
        let upload = self.finished_upload(id)?;
        let secret = self.secret(&upload.profile).await?;
        let now = crate::unix_now();
        let expires_at = now + i64::from(expire_in);
        Ok(signed_link(
            &upload.profile,
            &upload.link_target(),
            &secret,
            now,
            expires_at,
        )?)
    }

    /// Deletes the finished upload `id` at its provider and marks it deleted in the history;
    /// whether the provider still had it.
    pub async fn delete_upload(&self, id: JobId) -> Result<bool, UploadedError> {
        let upload = self.finished_upload(id)?;
        let asset = RemoteAsset::of_upload(&upload)?;
        let secret = self.secret(&upload.profile).await?;
        delete(
            &self.shared.http,
            &self.shared.clock,
            &upload.profile,
            &secret,
            &asset,
            Some(upload.record.id),
            |id| lock(&self.shared.store).mark_deleted(id),
        )
        .await
    }

    /// `profile`'s key, as uploads get it (cached until `forget_secret`), read on the blocking
    /// pool: the keychain answers over D-Bus.
    async fn secret(&self, profile: &Profile) -> Result<Arc<SecretString>, UploadedError> {
        let shared = self.shared.clone();
        let profile = profile.clone();
        tokio::task::spawn_blocking(move || secret_for(&shared, &profile))
            .await
            .map_err(|err| UploadedError::Interrupted(err.to_string()))?
            .map_err(UploadedError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[profiles.ik]\nprovider = \"imagekit\"\nauth = \"v2\"\n\
        public_key = \"public_k\"\nurl_endpoint = \"https://ik.imagekit.io/demo\"\n\n\
        [profiles.cl]\nprovider = \"cloudinary\"\ncloud_name = \"demo\"\napi_key = \"1\"\n\n\
        [profiles.clp]\nprovider = \"cloudinary\"\ncloud_name = \"demo\"\napi_key = \"1\"\n\
        private = true\n";

    fn config() -> Config {
        Config::from_toml(CONFIG, std::path::Path::new("t.toml")).unwrap()
    }

    fn profile(name: &str) -> Profile {
        config().profiles[name].clone()
    }

    fn cloudinary_profile(api_url: &str) -> Profile {
        let text = format!(
            "[profiles.cl]\nprovider = \"cloudinary\"\ncloud_name = \"demo\"\napi_key = \"1\"\napi_url = \"{api_url}\"\n"
        );
        Config::from_toml(&text, std::path::Path::new("t.toml"))
            .unwrap()
            .profiles["cl"]
            .clone()
    }

    fn record(profile: &str, state: JobState, response: Option<Value>) -> JobRecord {
        JobRecord {
            id: JobId(7),
            profile: profile.into(),
            path: "/tmp/a.pdf".into(),
            file_name: "a.pdf".into(),
            size: 3,
            params: Default::default(),
            state,
            attempts: 1,
            error: None,
            remote_id: Some("docs/a".into()),
            url: Some("https://ik.imagekit.io/demo/docs/a.pdf".into()),
            response,
            upload_id: None,
            bytes_acked: 0,
            source: crate::engine::JobSource::Cli,
            created_at: 1,
            finished_at: Some(2),
            file: None,
            metadata: Default::default(),
            on_duplicate: Default::default(),
            resize: None,
            sent: None,
        }
    }

    fn kind(resource_type: &str, delivery_type: &str) -> CloudinaryKind {
        CloudinaryKind {
            resource_type: ResourceType::parse(resource_type).unwrap(),
            delivery_type: DeliveryType::parse(delivery_type).unwrap(),
        }
    }

    #[test]
    fn the_stored_answer_says_the_cloudinary_kind_else_the_profile_does() {
        let answer = serde_json::json!({"resource_type": "raw", "type": "authenticated"});
        assert_eq!(
            cloudinary_kind(Some(&answer), &profile("cl")),
            kind("raw", "authenticated")
        );
        assert_eq!(
            cloudinary_kind(None, &profile("cl")),
            kind("image", "upload")
        );
        assert_eq!(
            cloudinary_kind(None, &profile("clp")),
            kind("image", "private")
        );
        assert_eq!(
            cloudinary_kind(Some(&serde_json::json!({"type": 3})), &profile("clp")),
            kind("image", "private")
        );
    }

    #[test]
    fn only_a_done_upload_of_a_configured_profile_is_a_finished_upload() {
        let config = config();
        assert!(Upload::finished(record("cl", JobState::Done, None), &config).is_ok());
        for state in [JobState::Deleted, JobState::Failed, JobState::Queued] {
            let refused = Upload::finished(record("cl", state, None), &config).unwrap_err();
            assert!(
                matches!(refused, UploadedError::NotFinished { state: s, .. } if s == state),
                "{refused}"
            );
        }
        let gone = Upload::finished(record("old", JobState::Done, None), &config).unwrap_err();
        assert_eq!(
            gone.to_string(),
            "profile `old` is no longer in the config: add it back to reach this file"
        );
    }

    #[test]
    fn links_name_the_imagekit_path_or_the_cloudinary_asset_as_stored() {
        let config = config();
        let upload = |profile: &str, response: Option<Value>| {
            Upload::finished(record(profile, JobState::Done, response), &config).unwrap()
        };
        let with_path = upload("ik", Some(serde_json::json!({"filePath": "/docs/a.pdf"})));
        assert_eq!(with_path.link_target().id, "/docs/a.pdf");
        // Without a path in the answer, the URL (ImageKit signs URLs under its endpoint too).
        assert_eq!(
            upload("ik", None).link_target().id,
            "https://ik.imagekit.io/demo/docs/a.pdf"
        );
        let cl = upload(
            "clp",
            Some(serde_json::json!({"format": "pdf", "resource_type": "raw"})),
        );
        assert_eq!(
            cl.link_target(),
            LinkTarget {
                id: "docs/a".into(),
                format: Some("pdf".into()),
                kind: kind("raw", "private"),
            }
        );

        let secret = SecretString::from("private_test_key");
        let ik = signed_link(
            &profile("ik"),
            &with_path.link_target(),
            &secret,
            1_000,
            4_600,
        )
        .unwrap();
        assert!(
            ik.starts_with("https://ik.imagekit.io/demo/docs/a.pdf?"),
            "{ik}"
        );
        assert!(ik.contains("ik-t=4600") && ik.contains("ik-s="), "{ik}");
        let cl = signed_link(&profile("clp"), &cl.link_target(), &secret, 1_000, 4_600).unwrap();
        for part in [
            "/demo/raw/download?",
            "public_id=docs%2Fa",
            "format=pdf",
            "type=private",
            "expires_at=4600",
            "timestamp=1000",
            "signature=",
        ] {
            assert!(cl.contains(part), "{part} in {cl}");
        }
    }

    #[test]
    fn a_finished_upload_without_a_provider_id_cannot_be_deleted() {
        let config = config();
        let mut nameless = record("cl", JobState::Done, None);
        nameless.remote_id = Some(String::new());
        let upload = Upload::finished(nameless, &config).unwrap();
        assert!(matches!(
            RemoteAsset::of_upload(&upload),
            Err(UploadedError::NoRemoteId)
        ));
        let upload = Upload::finished(record("clp", JobState::Done, None), &config).unwrap();
        assert_eq!(
            RemoteAsset::of_upload(&upload).unwrap(),
            RemoteAsset {
                id: "docs/a".into(),
                kind: kind("image", "private"),
            }
        );
    }

    #[test]
    fn imagekit_targets_are_ids_or_known_urls_under_the_endpoint() {
        let ik = profile("ik");
        let known = record("ik", JobState::Done, None);
        assert_eq!(
            RemoteAsset::resolve("file_ID-1", &ik, None).unwrap().id,
            "file_ID-1"
        );
        assert_eq!(
            RemoteAsset::resolve("https://ik.imagekit.io/demo/docs/a.pdf", &ik, Some(&known))
                .unwrap()
                .id,
            "docs/a"
        );
        for (target, why) in [
            (
                "https://ik.imagekit.io/demo/docs/a.pdf",
                "this URL is not in Dropkey's upload history, so its file id is unknown: pass the fileId instead",
            ),
            (
                "https://ik.imagekit.io/other/a.pdf",
                "the URL is not under this profile's url_endpoint https://ik.imagekit.io/demo",
            ),
            ("a/b", "`a/b` is neither an ImageKit file id nor a URL"),
            ("", "`` is neither an ImageKit file id nor a URL"),
        ] {
            assert_eq!(
                RemoteAsset::resolve(target, &ik, None),
                Err(TargetError(why.into()))
            );
        }
    }

    #[test]
    fn cloudinary_public_ids_take_the_known_uploads_kind() {
        let clp = profile("clp");
        let known = record(
            "clp",
            JobState::Done,
            Some(serde_json::json!({"resource_type": "video", "type": "upload"})),
        );
        assert_eq!(
            RemoteAsset::resolve("docs/a", &clp, Some(&known)).unwrap(),
            RemoteAsset {
                id: "docs/a".into(),
                kind: kind("video", "upload"),
            }
        );
        assert_eq!(
            RemoteAsset::resolve("docs/a", &clp, None).unwrap().kind,
            kind("image", "private")
        );
        for bad in ["", "a//b", "a/../b", "./a", "a/"] {
            assert_eq!(
                RemoteAsset::resolve(bad, &clp, None),
                Err(TargetError(format!(
                    "`{bad}` is not a valid Cloudinary public id"
                )))
            );
        }
    }

    #[test]
    fn cloudinary_urls_are_validated_strictly() {
        let p = cloudinary_profile("https://api.cloudinary.com");
        let ok = RemoteAsset::resolve(
            "https://res.cloudinary.com/demo/image/upload/v123/kyc/1/passport.jpg",
            &p,
            None,
        )
        .unwrap();
        assert_eq!(
            ok,
            RemoteAsset {
                id: "kyc/1/passport".into(),
                kind: kind("image", "upload"),
            }
        );
        let raw = RemoteAsset::resolve(
            "https://res.cloudinary.com/demo/raw/private/v1/docs/a.pdf",
            &p,
            None,
        )
        .unwrap();
        assert_eq!(raw.id, "docs/a.pdf");
        for bad in [
            "http://res.cloudinary.com/demo/image/upload/v1/a.jpg",
            "https://evil.com/demo/image/upload/v1/a.jpg",
            "https://res.cloudinary.com/other/image/upload/v1/a.jpg",
            "https://res.cloudinary.com/demo/pdf/upload/v1/a.jpg",
            "https://res.cloudinary.com/demo/image/fetch/v1/a.jpg",
            "https://res.cloudinary.com/demo/image/upload/v1/../a.jpg",
            "https://res.cloudinary.com/demo/image/upload/",
        ] {
            assert!(RemoteAsset::resolve(bad, &p, None).is_err(), "{bad}");
        }
        let local = cloudinary_profile("http://127.0.0.1:7371");
        assert!(RemoteAsset::resolve(
            "http://127.0.0.1:7371/res/demo/image/upload/v5/a.png",
            &local,
            None
        )
        .is_ok());
        assert!(RemoteAsset::resolve(
            "http://127.0.0.1:9999/res/demo/image/upload/v5/a.png",
            &local,
            None
        )
        .is_err());
    }
}
