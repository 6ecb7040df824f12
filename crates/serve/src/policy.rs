//! What a bearer token may do, and the upload parameters a request ends up signing.
//!
//! A token's policy comes from its `[serve.tokens.NAME]` table, else the safe default: every
//! served profile, the profile's own folder as the folder prefix, lifetimes up to
//! `serve.max_expire`, only [`DEFAULT_ALLOWED_PARAMS`] from the client, no delete.
//!
//! The server's side of every upload is the profile's (folder, tags, useUniqueFileName, or
//! Cloudinary's type=private). A client may add the parameters its token allows, restate the
//! server's own values, and choose a folder inside the prefix; anything else is refused (403)
//! rather than silently dropped, so a client never uploads with something other than it asked.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dropkey_core::config::{Profile, Provider};
use dropkey_core::profile::{upload_params, ParamError};
use dropkey_core::sign::Params;

use dropkey_core::serve_config::{valid_folder, ServeSettings, DEFAULT_ALLOWED_PARAMS, MAX_EXPIRE};

/// Why a request does not fit its token's policy (403), or is malformed (422).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("token `{token}` may not use profile `{profile}`; it may use: {allowed}. Ask the server's operator to add the profile to [serve.tokens.{token}] profiles")]
    ProfileNotAllowed {
        token: String,
        profile: String,
        allowed: String,
    },
    #[error("parameter `{name}` is not allowed for token `{token}` (allowed: {allowed}); drop it, or ask the operator to add it to [serve.tokens.{token}] allowed_params")]
    ParamNotAllowed {
        token: String,
        name: String,
        allowed: String,
    },
    #[error("the server decides `type` from the profile's policy (the Cloudinary signed-upload demo: never let the client choose private delivery); drop the type parameter")]
    TypeFromClient,
    #[error("folder `{folder}` is outside `{prefix}`, the only folder token `{token}` may upload to; use `{prefix}` or a folder below it")]
    FolderOutsidePrefix {
        token: String,
        folder: String,
        prefix: String,
    },
    #[error("`{id}` is outside `{prefix}`, the only folder token `{token}` may act on")]
    IdOutsidePrefix {
        token: String,
        id: String,
        prefix: String,
    },
    #[error("a lifetime of {requested} s is more than the {max} s token `{token}` may ask for; ask for {max} or less")]
    ExpireTooLong {
        token: String,
        requested: i64,
        max: i64,
    },
    #[error("token `{token}` may not delete files; ask the operator to set may_delete = true in [serve.tokens.{token}]")]
    DeleteNotAllowed { token: String },
    #[error("token `{token}` is limited to folder `{prefix}`, which a V1 signature cannot enforce (it signs only token and expire); use the V2 endpoint /api/media/get-upload-token")]
    V1CannotEnforce { token: String, prefix: String },
    #[error("token `{token}` has no folder_prefix, so it may upload only inside each profile's folder (the safe default), which a V1 signature cannot enforce (it signs only token and expire); use the V2 endpoint /api/media/get-upload-token, or, to allow this token V1 uploads to any folder, the operator sets folder_prefix = \"/\" in [serve.tokens.{token}]")]
    V1NeedsUnconfined { token: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Param(#[from] ParamError),
}

impl PolicyError {
    /// 422 for malformed input, 403 for a request the policy refuses.
    pub fn is_validation(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Param(_))
    }
}

/// One token's effective policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `None`: every served profile.
    profiles: Option<BTreeSet<String>>,
    /// `None`: the profile's own folder is the prefix.
    folder_prefix: Option<String>,
    pub max_expire: i64,
    allowed_params: BTreeSet<String>,
    pub may_delete: bool,
    pub rate_limit_per_minute: u32,
}

/// Every token's policy, by token name.
#[derive(Debug)]
pub struct Policies {
    by_name: HashMap<String, Arc<Policy>>,
    default: Arc<Policy>,
}

impl Policies {
    pub fn new(settings: &ServeSettings) -> Self {
        let default = Policy {
            profiles: None,
            folder_prefix: None,
            max_expire: settings.max_expire,
            allowed_params: DEFAULT_ALLOWED_PARAMS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            may_delete: false,
            rate_limit_per_minute: settings.rate_limit_per_minute,
        };
        let by_name = settings
            .tokens
            .iter()
            .map(|(name, table)| {
                let policy = Policy {
                    profiles: table.profiles.as_ref().map(|p| p.iter().cloned().collect()),
                    folder_prefix: table.folder_prefix.clone(),
                    max_expire: table
                        .max_expire
                        .unwrap_or(settings.max_expire)
                        .min(settings.max_expire),
                    allowed_params: match &table.allowed_params {
                        Some(list) => list.iter().cloned().collect(),
                        None => default.allowed_params.clone(),
                    },
                    may_delete: table.may_delete,
                    rate_limit_per_minute: table
                        .rate_limit_per_minute
                        .unwrap_or(settings.rate_limit_per_minute),
                };
                (name.clone(), Arc::new(policy))
            })
            .collect();
        Self {
            by_name,
            default: Arc::new(default),
        }
    }

    pub fn get(&self, token: &str) -> Arc<Policy> {
        self.by_name
            .get(token)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }
}

impl Policy {
    pub fn may_use(&self, profile: &str) -> bool {
        self.profiles.as_ref().is_none_or(|p| p.contains(profile))
    }

    /// Whether this token may have V1 parameters. A V1 signature covers only token and expire,
    /// so it can honour no folder boundary: only a token whose table explicitly lifts it
    /// (`folder_prefix = "/"`) gets one. No prefix is not enough, since the default confines a
    /// token to each profile's folder.
    pub fn check_v1(&self, token: &str) -> Result<(), PolicyError> {
        match self.folder_prefix.as_deref() {
            None => Err(PolicyError::V1NeedsUnconfined {
                token: token.to_owned(),
            }),
            Some(prefix) if prefix.split('/').all(str::is_empty) => Ok(()),
            Some(prefix) => Err(PolicyError::V1CannotEnforce {
                token: token.to_owned(),
                prefix: prefix.to_owned(),
            }),
        }
    }

    /// The folder uploads with `profile` must stay in: the token's prefix, else the profile's
    /// folder, else none.
    pub fn prefix_for<'a>(&'a self, profile: &'a Profile) -> Option<&'a str> {
        self.folder_prefix.as_deref().or(profile.folder.as_deref())
    }

    pub fn check_profile(
        &self,
        token: &str,
        profile: &str,
        served: &[&str],
    ) -> Result<(), PolicyError> {
        if self.may_use(profile) {
            return Ok(());
        }
        let allowed: Vec<&str> = served.iter().copied().filter(|p| self.may_use(p)).collect();
        Err(PolicyError::ProfileNotAllowed {
            token: token.to_owned(),
            profile: profile.to_owned(),
            allowed: if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            },
        })
    }

    /// The token lifetime to issue: `requested` seconds, or the most this token may have.
    pub fn lifetime(&self, token: &str, requested: Option<i64>) -> Result<i64, PolicyError> {
        let Some(requested) = requested else {
            return Ok(self.max_expire);
        };
        if !(1..=MAX_EXPIRE).contains(&requested) {
            return Err(PolicyError::Invalid(format!(
                "expire must be a number of seconds from 1 to {MAX_EXPIRE} (ImageKit's Upload API V2 guide: a token lives at most an hour), got {requested}"
            )));
        }
        if requested > self.max_expire {
            return Err(PolicyError::ExpireTooLong {
                token: token.to_owned(),
                requested,
                max: self.max_expire,
            });
        }
        Ok(requested)
    }

    pub fn check_delete(&self, token: &str) -> Result<(), PolicyError> {
        if self.may_delete {
            Ok(())
        } else {
            Err(PolicyError::DeleteNotAllowed {
                token: token.to_owned(),
            })
        }
    }

    /// Checks that an asset (a Cloudinary public id) lies inside the folder this token may act
    /// on with `profile`.
    pub fn check_id(&self, token: &str, profile: &Profile, id: &str) -> Result<(), PolicyError> {
        match self.prefix_for(profile) {
            Some(prefix) if !within(id, prefix) => Err(PolicyError::IdOutsidePrefix {
                token: token.to_owned(),
                id: id.to_owned(),
                prefix: prefix.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// The parameters the server signs when a client asks with `client` (the GET endpoints):
    /// the profile's policy, the client's allowed parameters on top, and a folder inside the
    /// prefix (the prefix itself when the profile's folder lies outside it).
    pub fn build_params(
        &self,
        token: &str,
        profile: &Profile,
        client: &Params,
    ) -> Result<Params, PolicyError> {
        let mut params = upload_params(profile, client)?;
        let defaults = upload_params(profile, &Params::new())?;
        self.check_names(token, profile, client, &defaults)?;
        let prefix = self.prefix_for(profile);
        match client.get("folder") {
            Some(folder) => self.check_folder(token, folder, prefix)?,
            None => {
                if let Some(prefix) = prefix {
                    let inside = params.get("folder").is_some_and(|f| within(f, prefix));
                    if !inside {
                        params.insert("folder".into(), prefix.to_owned());
                    }
                }
            }
        }
        Ok(params)
    }

    /// Checks a complete payload a client wants signed as it is (ImageKit's Upload API V2 guide's POST endpoint): the
    /// server cannot add its policy to it, since the client sends exactly what it signed.
    pub fn check_payload(
        &self,
        token: &str,
        profile: &Profile,
        payload: &Params,
    ) -> Result<(), PolicyError> {
        upload_params(profile, payload)?;
        let defaults = upload_params(profile, &Params::new())?;
        self.check_names(token, profile, payload, &defaults)?;
        let prefix = self.prefix_for(profile);
        match payload.get("folder") {
            Some(folder) => self.check_folder(token, folder, prefix),
            // No folder: the file lands in the root folder.
            None => self.check_folder(token, "/", prefix),
        }
    }

    fn check_names(
        &self,
        token: &str,
        profile: &Profile,
        client: &Params,
        defaults: &Params,
    ) -> Result<(), PolicyError> {
        for (name, value) in client {
            if name == "folder" {
                continue;
            }
            if name == "type" && matches!(profile.provider, Provider::Cloudinary(_)) {
                return Err(PolicyError::TypeFromClient);
            }
            let restated = defaults.get(name) == Some(value);
            if !self.allowed_params.contains(name) && !restated {
                return Err(PolicyError::ParamNotAllowed {
                    token: token.to_owned(),
                    name: name.clone(),
                    allowed: self
                        .allowed_params
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    fn check_folder(
        &self,
        token: &str,
        folder: &str,
        prefix: Option<&str>,
    ) -> Result<(), PolicyError> {
        if !valid_folder(folder) || folder.split('/').any(|s| s == ".") {
            return Err(PolicyError::Invalid(format!(
                "folder `{}` is not a valid remote folder: use a path like /uploads/chat without '..', '.', backslashes or control characters",
                super::audit::clip(folder)
            )));
        }
        match prefix {
            Some(prefix) if !within(folder, prefix) => Err(PolicyError::FolderOutsidePrefix {
                token: token.to_owned(),
                folder: folder.to_owned(),
                prefix: prefix.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// Whether `path` is `prefix` or below it, segment by segment: `/a/b` is within `/a` and `a`,
/// `/ab` is not within `/a`. Leading, trailing and doubled slashes do not matter (ImageKit
/// folders start with `/`, Cloudinary's do not).
pub fn within(path: &str, prefix: &str) -> bool {
    let mut path = path.split('/').filter(|s| !s.is_empty());
    prefix
        .split('/')
        .filter(|s| !s.is_empty())
        .all(|p| path.next() == Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dropkey_core::config::Config;

    const CONFIG: &str = r#"
[profiles.ik]
provider = "imagekit"
public_key = "public_k"
url_endpoint = "https://ik.imagekit.io/acme"
folder = "/uploads/chat"
tags = ["chat", "media"]
use_unique_file_name = true

[profiles.cl]
provider = "cloudinary"
cloud_name = "demo"
api_key = "1"
folder = "kyc/1"
private = true

[serve.tokens.web]
profiles = ["ik"]
folder_prefix = "/uploads/web"
max_expire = 600
allowed_params = ["fileName"]

[serve.tokens.anywhere]
folder_prefix = "/"
"#;

    fn setup() -> (Config, Policies) {
        let config = Config::from_toml(CONFIG, std::path::Path::new("c.toml")).unwrap();
        let policies = Policies::new(&config.serve);
        (config, policies)
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn within_compares_whole_segments() {
        assert!(within("/uploads/chat", "/uploads/chat"));
        assert!(within("/uploads/chat/a", "/uploads/chat/"));
        assert!(within("uploads/chat/a", "/uploads/chat"));
        assert!(!within("/uploads/chatroom", "/uploads/chat"));
        assert!(!within("/uploads", "/uploads/chat"));
        assert!(within("/anything", "/"));
    }

    #[test]
    fn default_policy_adds_the_profile_and_allows_safe_params() {
        let (config, policies) = setup();
        let policy = policies.get("someone");
        let ik = config.profile("ik").unwrap();
        let built = policy
            .build_params("someone", ik, &params(&[("fileName", "a.jpg")]))
            .unwrap();
        assert_eq!(
            built,
            params(&[
                ("fileName", "a.jpg"),
                ("folder", "/uploads/chat"),
                ("tags", "chat,media"),
                ("useUniqueFileName", "true"),
            ])
        );
        // Restating the server's own value is fine; changing it is not.
        assert!(policy
            .build_params("someone", ik, &params(&[("useUniqueFileName", "true")]))
            .is_ok());
        assert!(matches!(
            policy.build_params("someone", ik, &params(&[("useUniqueFileName", "false")])),
            Err(PolicyError::ParamNotAllowed { .. })
        ));
        assert!(matches!(
            policy.build_params("someone", ik, &params(&[("folder", "/elsewhere")])),
            Err(PolicyError::FolderOutsidePrefix { .. })
        ));
        assert!(policy
            .build_params("someone", ik, &params(&[("folder", "/uploads/chat/sub")]))
            .is_ok());
        assert!(matches!(
            policy.build_params("someone", ik, &params(&[("folder", "/uploads/chat/../x")])),
            Err(PolicyError::Invalid(_))
        ));
        assert!(matches!(
            policy.build_params("someone", ik, &params(&[("token", "x")])),
            Err(PolicyError::Param(_))
        ));
        assert!(!policy.may_delete);
    }

    #[test]
    fn token_policy_narrows_profiles_folder_params_and_expire() {
        let (config, policies) = setup();
        let policy = policies.get("web");
        let ik = config.profile("ik").unwrap();
        assert!(policy.check_profile("web", "cl", &["cl", "ik"]).is_err());
        // The profile's folder is outside the token's prefix: the prefix is used instead.
        let built = policy
            .build_params("web", ik, &params(&[("fileName", "a.jpg")]))
            .unwrap();
        assert_eq!(built["folder"], "/uploads/web");
        assert!(matches!(
            policy.build_params("web", ik, &params(&[("tags", "x")])),
            Err(PolicyError::ParamNotAllowed { .. })
        ));
        assert_eq!(policy.lifetime("web", None), Ok(600));
        assert!(matches!(
            policy.lifetime("web", Some(601)),
            Err(PolicyError::ExpireTooLong { .. })
        ));
        assert!(matches!(
            policy.lifetime("web", Some(3601)),
            Err(PolicyError::Invalid(_))
        ));
        // ImageKit's Upload API V2 guide's POST: the payload must name a folder inside the prefix.
        assert!(policy
            .check_payload("web", ik, &params(&[("fileName", "a.jpg")]))
            .is_err());
        assert!(policy
            .check_payload(
                "web",
                ik,
                &params(&[("fileName", "a.jpg"), ("folder", "/uploads/web/x")])
            )
            .is_ok());
    }

    #[test]
    fn v1_needs_a_token_that_explicitly_may_upload_anywhere() {
        let (_, policies) = setup();
        assert!(matches!(
            policies.get("someone").check_v1("someone"),
            Err(PolicyError::V1NeedsUnconfined { .. })
        ));
        assert!(matches!(
            policies.get("web").check_v1("web"),
            Err(PolicyError::V1CannotEnforce { .. })
        ));
        assert_eq!(policies.get("anywhere").check_v1("anywhere"), Ok(()));
    }

    #[test]
    fn cloudinary_type_never_comes_from_the_client() {
        let (config, policies) = setup();
        let policy = policies.get("someone");
        let cl = config.profile("cl").unwrap();
        assert_eq!(
            policy.build_params("someone", cl, &params(&[("type", "upload")])),
            Err(PolicyError::TypeFromClient)
        );
        let built = policy.build_params("someone", cl, &Params::new()).unwrap();
        assert_eq!(built["type"], "private");
        assert!(policy.check_id("someone", cl, "kyc/1/passport").is_ok());
        assert!(policy.check_id("someone", cl, "kyc/2/passport").is_err());
    }
}
