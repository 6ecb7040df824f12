//! Changes to the config file made from the app's Settings and the CLI: profiles and watched
//! folders.
//!
//! The file stays the user's: edits go through `toml_edit`, so comments, key order and layout
//! survive. Every edit re-reads the file first (so a change made by hand since Dropkey started
//! is never overwritten), is validated by resolving the result exactly as [`Config::load`]
//! would, and only then replaces the file, atomically through a temp file beside it. A bad edit
//! therefore never reaches the disk, and a crash leaves the old file or the new one.
//!
//! Secrets never pass through here: a profile's private key goes to the keychain
//! ([`crate::secrets`]); the config holds only public settings.

use std::path::{Path, PathBuf};

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use crate::config::{
    valid_profile_name, Config, ConfigError, ImageKitAuth, MetadataPolicy, OnDuplicate, Paths,
    Profile, Provider, ProviderKind, Resize, CLOUDINARY_API, IMAGEKIT_API, IMAGEKIT_UPLOAD_V1,
    IMAGEKIT_UPLOAD_V2, SANDBOX_PROFILE,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigEditError {
    /// The file as it is now does not parse or validate: it must be fixed by hand first.
    #[error("{0}; Dropkey only edits a config file that is valid, so fix it first")]
    Current(ConfigError),
    /// The edit would make the config invalid; the file is unchanged.
    #[error("{0} (in the edited config; the file was not changed)")]
    Rejected(ConfigError),
    #[error("{0}")]
    Input(String),
    #[error("cannot write the config file {path}: {source}; check that its folder is writable")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A profile as Settings edits it. Empty strings count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileSpec {
    pub name: String,
    pub provider: ProviderKind,
    /// ImageKit's scheme; none writes no `auth` key (V2, the default).
    pub auth: Option<ImageKitAuth>,
    pub public_key: Option<String>,
    pub url_endpoint: Option<String>,
    pub upload_url: Option<String>,
    pub api_url: Option<String>,
    pub token_url: Option<String>,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub cloud_name: Option<String>,
    pub api_key: Option<String>,
    /// Cloudinary: upload as `type=private`.
    pub private: bool,
    /// Written only when not the default (`strip-location`).
    pub metadata: MetadataPolicy,
    /// Written only when not the default (`skip`).
    pub on_duplicate: OnDuplicate,
    /// `max_dimension` and `quality`; none writes neither (images are sent at their size).
    pub resize: Option<Resize>,
}

impl ProfileSpec {
    /// The settings of a configured profile, as the edit form starts from them. Addresses
    /// that are the provider's defaults are left out, so saving the form does not pin them.
    pub fn from_profile(profile: &Profile) -> Self {
        let unless_default = |url: &url::Url, default: &str| {
            let default = url::Url::parse(default).ok();
            (default.as_ref() != Some(url)).then(|| url.to_string())
        };
        let mut spec = Self {
            name: profile.name.clone(),
            provider: profile.provider.kind(),
            folder: profile.folder.clone(),
            tags: profile.tags.clone(),
            metadata: profile.metadata,
            on_duplicate: profile.on_duplicate,
            resize: profile.resize,
            ..Self::default()
        };
        match &profile.provider {
            Provider::ImageKit(ik) => {
                let default_upload = match ik.auth {
                    ImageKitAuth::V1 => IMAGEKIT_UPLOAD_V1,
                    ImageKitAuth::V2 | ImageKitAuth::Remote => IMAGEKIT_UPLOAD_V2,
                };
                spec.auth = Some(ik.auth);
                spec.public_key = Some(ik.public_key.clone());
                spec.url_endpoint = Some(ik.url_endpoint.to_string());
                spec.upload_url = unless_default(&ik.upload_url, default_upload);
                spec.api_url = unless_default(&ik.api_url, IMAGEKIT_API);
                spec.token_url = ik.token_url.as_ref().map(ToString::to_string);
            }
            Provider::Cloudinary(cl) => {
                spec.cloud_name = Some(cl.cloud_name.clone());
                spec.api_key = Some(cl.api_key.clone());
                spec.api_url = unless_default(&cl.api_url, CLOUDINARY_API);
                spec.private = cl.private;
            }
        }
        spec
    }
}

/// The provider's own hosts: a profile may always send its key there.
const PROVIDER_HOSTS: &[&str] = &[
    "https://upload.imagekit.io",
    "https://api.imagekit.io",
    "https://api.cloudinary.com",
];

/// The origins of `spec`'s key-, token- and file-bearing URLs (upload, API, token server)
/// that are neither the provider's own nor already used by `current`, the profile as saved:
/// the addresses a front end asks the user to confirm before the key can reach them. Sorted,
/// once each; an unparsable URL is left to the config's own check.
pub fn hosts_to_confirm(spec: &ProfileSpec, current: Option<&Profile>) -> Vec<String> {
    let known: Vec<String> = current
        .map(|p| match &p.provider {
            Provider::ImageKit(ik) => [
                Some(&ik.upload_url),
                Some(&ik.api_url),
                ik.token_url.as_ref(),
            ]
            .into_iter()
            .flatten()
            .map(|u| u.origin().ascii_serialization())
            .collect(),
            Provider::Cloudinary(cl) => vec![cl.api_url.origin().ascii_serialization()],
        })
        .unwrap_or_default();
    let mut hosts: Vec<String> = [&spec.upload_url, &spec.api_url, &spec.token_url]
        .into_iter()
        .flatten()
        .filter_map(|u| url::Url::parse(u.trim()).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| !PROVIDER_HOSTS.contains(&o.as_str()) && !known.contains(o))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// A watched folder as Settings adds it; the other rules are written in the file by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSpec {
    pub path: PathBuf,
    pub profile: String,
    pub folder: Option<String>,
    /// `None`: the profile's tags.
    pub tags: Option<Vec<String>>,
    pub recursive: bool,
}

/// The keys of a profile table that Settings owns. `use_unique_file_name` is not among them:
/// it is kept as the user wrote it.
const PROFILE_KEYS: &[&str] = &[
    "provider",
    "auth",
    "public_key",
    "url_endpoint",
    "upload_url",
    "api_url",
    "token_url",
    "folder",
    "tags",
    "cloud_name",
    "api_key",
    "private",
    "metadata",
    "on_duplicate",
    "max_dimension",
    "quality",
];

const NEW_FILE_HEADER: &str = "# Dropkey's config (see the README, \"Config\").\n# Settings in the app edit this file and keep your comments and layout.\n\n";

/// Adds `spec` as a profile, or replaces the settings of the profile of that name. Returns the
/// config as it now is.
pub fn upsert_profile(paths: &Paths, spec: &ProfileSpec) -> Result<Config, ConfigEditError> {
    let spec = normalise(spec);
    if spec.name == SANDBOX_PROFILE {
        return Err(ConfigEditError::Input(format!(
            "`{SANDBOX_PROFILE}` is the built-in profile and cannot be changed: choose another name"
        )));
    }
    if !valid_profile_name(&spec.name) {
        return Err(ConfigEditError::Input(format!(
            "`{}` is not a valid profile name: use 1 to 64 letters, digits, '-', '_' or '.'",
            spec.name
        )));
    }
    edit(paths, |doc, _| {
        let profiles = table_entry(doc.as_table_mut(), "profiles");
        let table = table_entry(profiles, &spec.name);
        // A profile is written with its own `[profiles.NAME]` header.
        table.set_implicit(false);
        for key in PROFILE_KEYS {
            let item = match *key {
                "provider" => Some(value(spec.provider.as_str())),
                "auth" => spec.auth.map(|auth| value(auth.as_str())),
                "public_key" => spec.public_key.as_deref().map(value),
                "url_endpoint" => spec.url_endpoint.as_deref().map(value),
                "upload_url" => spec.upload_url.as_deref().map(value),
                "api_url" => spec.api_url.as_deref().map(value),
                "token_url" => spec.token_url.as_deref().map(value),
                "folder" => spec.folder.as_deref().map(value),
                "tags" => (!spec.tags.is_empty()).then(|| value(string_array(&spec.tags))),
                "cloud_name" => spec.cloud_name.as_deref().map(value),
                "api_key" => spec.api_key.as_deref().map(value),
                "private" => spec.private.then(|| value(true)),
                "metadata" => (spec.metadata != MetadataPolicy::default())
                    .then(|| value(spec.metadata.as_str())),
                "on_duplicate" => (spec.on_duplicate != OnDuplicate::default())
                    .then(|| value(spec.on_duplicate.as_str())),
                "max_dimension" => spec.resize.map(|r| value(i64::from(r.max_dimension))),
                "quality" => spec
                    .resize
                    .filter(|r| r.quality != Resize::DEFAULT_QUALITY)
                    .map(|r| value(i64::from(r.quality))),
                _ => None,
            };
            match item {
                // Assigning through `get_mut` keeps a comment written before the key.
                Some(item) => match table.get_mut(key) {
                    Some(slot) => *slot = item,
                    None => {
                        table.insert(key, item);
                    }
                },
                None => {
                    table.remove(key);
                }
            }
        }
        Ok(())
    })
}

/// Removes a profile. Refused while a watched folder uploads with it.
pub fn remove_profile(paths: &Paths, name: &str) -> Result<Config, ConfigEditError> {
    if name == SANDBOX_PROFILE {
        return Err(ConfigEditError::Input(format!(
            "`{SANDBOX_PROFILE}` is the built-in profile and cannot be removed"
        )));
    }
    edit(paths, |doc, current| {
        let users: Vec<String> = current
            .watches
            .iter()
            .filter(|w| w.profile == name)
            .map(|w| w.path.display().to_string())
            .collect();
        if !users.is_empty() {
            return Err(ConfigEditError::Input(format!(
                "profile `{name}` uploads the watched folder{} {}: remove {} first",
                if users.len() == 1 { "" } else { "s" },
                users.join(", "),
                if users.len() == 1 { "it" } else { "them" },
            )));
        }
        let removed = doc
            .get_mut("profiles")
            .and_then(Item::as_table_like_mut)
            .and_then(|profiles| profiles.remove(name));
        if removed.is_none() {
            return Err(ConfigEditError::Input(format!(
                "there is no profile `{name}` in the config file"
            )));
        }
        Ok(())
    })
}

/// Adds a watched folder. Refused if the folder is already watched with that profile.
pub fn add_watch(paths: &Paths, spec: &WatchSpec) -> Result<Config, ConfigEditError> {
    if !spec.path.is_absolute() || !spec.path.is_dir() {
        return Err(ConfigEditError::Input(format!(
            "{} is not a folder: choose an existing folder",
            spec.path.display()
        )));
    }
    let path = std::fs::canonicalize(&spec.path).unwrap_or_else(|_| spec.path.clone());
    let path_text = path.to_str().ok_or_else(|| {
        ConfigEditError::Input(format!(
            "{} is not valid UTF-8, which the config file cannot hold: rename the folder",
            path.display()
        ))
    })?;
    edit(paths, |doc, current| {
        if current
            .watches
            .iter()
            .any(|w| w.profile == spec.profile && same_dir(&w.path, &path))
        {
            return Err(ConfigEditError::Input(format!(
                "{} is already watched with profile `{}`",
                path.display(),
                spec.profile
            )));
        }
        let mut table = Table::new();
        table.insert("path", value(path_text));
        table.insert("profile", value(spec.profile.as_str()));
        if let Some(folder) = spec.folder.as_deref().filter(|f| !f.trim().is_empty()) {
            table.insert("folder", value(folder.trim()));
        }
        if let Some(tags) = &spec.tags {
            table.insert("tags", value(string_array(tags)));
        }
        if !spec.recursive {
            table.insert("recursive", value(false));
        }
        match doc.get_mut("watch") {
            Some(Item::ArrayOfTables(watches)) => watches.push(table),
            Some(_) => {
                return Err(ConfigEditError::Input(
                    "the config's `watch` key is not a list of [[watch]] tables: fix it by hand"
                        .into(),
                ))
            }
            None => {
                let mut watches = ArrayOfTables::new();
                watches.push(table);
                doc.insert("watch", Item::ArrayOfTables(watches));
            }
        }
        Ok(())
    })
}

/// Removes the watched folder whose key ([`crate::watch::watch_key`]) is `key`. Returns the
/// config as it now is.
pub fn remove_watch(paths: &Paths, key: &str) -> Result<Config, ConfigEditError> {
    edit(paths, |doc, current| {
        // Resolving keeps the `[[watch]]` order, so the n-th watch is the n-th table.
        let index = current
            .watches
            .iter()
            .position(|w| crate::watch::watch_key(w) == key)
            .ok_or_else(|| {
                ConfigEditError::Input(format!(
                    "no watched folder `{key}` in the config file: it may have been removed already"
                ))
            })?;
        match doc.get_mut("watch") {
            Some(Item::ArrayOfTables(watches)) if index < watches.len() => {
                watches.remove(index);
                if watches.is_empty() {
                    doc.remove("watch");
                }
                Ok(())
            }
            _ => Err(ConfigEditError::Input(
                "the config's [[watch]] tables changed while Dropkey read them: try again".into(),
            )),
        }
    })
}

/// Changes the watched folder whose key is `key` to `spec`'s profile, remote folder, tags and
/// subfolder choice; its folder stays (`spec.path` is ignored) and so does every other key of
/// its table (include/exclude, after_upload, ...), with its comments. Same checks as
/// [`add_watch`]: the profile must exist, and the folder may not be watched twice with one
/// profile. Returns the config as it now is.
pub fn edit_watch(paths: &Paths, key: &str, spec: &WatchSpec) -> Result<Config, ConfigEditError> {
    edit(paths, |doc, current| {
        let index = current
            .watches
            .iter()
            .position(|w| crate::watch::watch_key(w) == key)
            .ok_or_else(|| {
                ConfigEditError::Input(format!(
                    "no watched folder `{key}` in the config file: it may have been removed"
                ))
            })?;
        let path = &current.watches[index].path;
        if current
            .watches
            .iter()
            .enumerate()
            .any(|(i, w)| i != index && w.profile == spec.profile && same_dir(&w.path, path))
        {
            return Err(ConfigEditError::Input(format!(
                "{} is already watched with profile `{}`",
                path.display(),
                spec.profile
            )));
        }
        let table = match doc.get_mut("watch") {
            Some(Item::ArrayOfTables(watches)) => watches.get_mut(index),
            _ => None,
        }
        .ok_or_else(|| {
            ConfigEditError::Input(
                "the config's [[watch]] tables changed while Dropkey read them: try again".into(),
            )
        })?;
        table.insert("profile", value(spec.profile.as_str()));
        match spec
            .folder
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            Some(folder) => {
                table.insert("folder", value(folder));
            }
            None => {
                table.remove("folder");
            }
        }
        match &spec.tags {
            Some(tags) => {
                table.insert("tags", value(string_array(tags)));
            }
            None => {
                table.remove("tags");
            }
        }
        if spec.recursive {
            table.remove("recursive");
        } else {
            table.insert("recursive", value(false));
        }
        Ok(())
    })
}

/// Reads the file (or starts one), applies `change`, validates, writes.
fn edit(
    paths: &Paths,
    change: impl FnOnce(&mut DocumentMut, &Config) -> Result<(), ConfigEditError>,
) -> Result<Config, ConfigEditError> {
    let path = &paths.config_file;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigEditError::Current(ConfigError::Read {
                path: path.clone(),
                source,
            }))
        }
    };
    let current = Config::from_toml(&text, path).map_err(ConfigEditError::Current)?;
    let mut doc: DocumentMut = text.parse().map_err(|_| {
        // `Config::from_toml` accepted it, so this is a disagreement between TOML parsers.
        ConfigEditError::Input(format!(
            "{} could not be read for editing: edit it by hand",
            path.display()
        ))
    })?;
    change(&mut doc, &current)?;
    let mut new_text = doc.to_string();
    if text.trim().is_empty() {
        new_text = format!("{NEW_FILE_HEADER}{}", new_text.trim_start());
    }
    let config = Config::from_toml(&new_text, path).map_err(ConfigEditError::Rejected)?;
    write_atomic(path, &new_text)?;
    Ok(config)
}

fn write_atomic(path: &Path, text: &str) -> Result<(), ConfigEditError> {
    let write_err = |source| ConfigEditError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::private_fs::create_dir_all(&dir).map_err(write_err)?;
    let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(write_err)?;
    {
        use std::io::Write as _;
        temp.write_all(text.as_bytes()).map_err(write_err)?;
        temp.as_file().sync_all().map_err(write_err)?;
    }
    // Keep the permissions the user gave the file.
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(temp.path(), meta.permissions());
    }
    temp.persist(path).map_err(|err| write_err(err.error))?;
    Ok(())
}

/// `parent.key` as a table, created (as a header-less parent) if absent.
fn table_entry<'a>(parent: &'a mut Table, key: &str) -> &'a mut Table {
    if !matches!(parent.get(key), Some(Item::Table(_))) {
        let mut table = Table::new();
        table.set_implicit(true);
        parent.insert(key, Item::Table(table));
    }
    match parent.get_mut(key) {
        Some(Item::Table(table)) => table,
        _ => unreachable!("the table was just inserted"),
    }
}

fn string_array(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || std::fs::canonicalize(a).is_ok_and(|a| a == b)
}

/// Trims every field and drops empty ones, so that a cleared input removes its key.
fn normalise(spec: &ProfileSpec) -> ProfileSpec {
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    ProfileSpec {
        name: spec.name.trim().to_owned(),
        provider: spec.provider,
        auth: spec.auth,
        public_key: opt(&spec.public_key),
        url_endpoint: opt(&spec.url_endpoint),
        upload_url: opt(&spec.upload_url),
        api_url: opt(&spec.api_url),
        token_url: opt(&spec.token_url),
        folder: opt(&spec.folder),
        tags: spec
            .tags
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        cloud_name: opt(&spec.cloud_name),
        api_key: opt(&spec.api_key),
        private: spec.private,
        metadata: spec.metadata,
        on_duplicate: spec.on_duplicate,
        resize: spec.resize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths {
            config_file: dir.join("config.toml"),
            config_explicit: false,
            data_dir: dir.join("data"),
        }
    }

    fn imagekit(name: &str) -> ProfileSpec {
        ProfileSpec {
            name: name.into(),
            provider: ProviderKind::ImageKit,
            public_key: Some("public_abc".into()),
            url_endpoint: Some("https://ik.imagekit.io/team".into()),
            folder: Some("/web".into()),
            tags: vec!["a".into(), " ".into(), "b".into()],
            ..ProfileSpec::default()
        }
    }

    #[test]
    fn a_profile_is_added_to_a_missing_file_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let config = upsert_profile(&paths, &imagekit("team")).unwrap();
        let profile = config.profile("team").unwrap();
        assert_eq!(profile.folder.as_deref(), Some("/web"));
        assert_eq!(profile.tags, ["a", "b"]);
        let text = std::fs::read_to_string(&paths.config_file).unwrap();
        assert!(text.starts_with("# Dropkey's config"), "{text}");
        assert!(text.contains("[profiles.team]"), "{text}");
        assert_eq!(Config::load(&paths).unwrap().profile("team"), Some(profile));
    }

    #[test]
    fn editing_keeps_comments_and_other_tables_and_clears_emptied_keys() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let original = "# my notes\n[upload]\nconcurrency = 6 # fast disk\n\n[profiles.team]\n# the shared account\nprovider = \"imagekit\"\npublic_key = \"public_old\"\nurl_endpoint = \"https://ik.imagekit.io/old\"\nfolder = \"/old\"\nuse_unique_file_name = false\n";
        std::fs::write(&paths.config_file, original).unwrap();
        let mut spec = imagekit("team");
        spec.folder = Some("  ".into());
        let config = upsert_profile(&paths, &spec).unwrap();
        let text = std::fs::read_to_string(&paths.config_file).unwrap();
        assert!(
            text.starts_with("# my notes\n[upload]\nconcurrency = 6 # fast disk\n"),
            "{text}"
        );
        assert!(
            text.contains("# the shared account\nprovider = \"imagekit\""),
            "{text}"
        );
        assert!(!text.contains("folder"), "{text}");
        assert!(text.contains("use_unique_file_name = false"), "{text}");
        assert_eq!(config.upload.concurrency, 6);
        assert_eq!(config.profile("team").unwrap().folder, None);
    }

    #[test]
    fn invalid_edits_and_names_leave_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        upsert_profile(&paths, &imagekit("team")).unwrap();
        let before = std::fs::read_to_string(&paths.config_file).unwrap();

        let mut no_key = imagekit("other");
        no_key.public_key = None;
        let err = upsert_profile(&paths, &no_key).unwrap_err();
        assert!(matches!(err, ConfigEditError::Rejected(_)), "{err}");
        assert!(err.to_string().contains("public_key"), "{err}");

        for bad in ["", "has space", "sandbox"] {
            let err = upsert_profile(&paths, &imagekit(bad)).unwrap_err();
            assert!(matches!(err, ConfigEditError::Input(_)), "{bad}: {err}");
        }
        // Cloudinary settings missing: refused by the config's own rules.
        let mut incomplete = imagekit("x");
        incomplete.provider = ProviderKind::Cloudinary;
        assert!(upsert_profile(&paths, &incomplete).is_err());
        assert_eq!(std::fs::read_to_string(&paths.config_file).unwrap(), before);
    }

    #[test]
    fn a_broken_file_is_not_edited() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        std::fs::write(&paths.config_file, "[profiles.team\n").unwrap();
        let err = upsert_profile(&paths, &imagekit("x")).unwrap_err();
        assert!(matches!(err, ConfigEditError::Current(_)), "{err}");
        assert!(err.to_string().contains("fix it first"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&paths.config_file).unwrap(),
            "[profiles.team\n"
        );
    }

    #[test]
    fn watches_are_added_once_block_their_profile_and_are_removed_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let folder = dir.path().join("drop");
        std::fs::create_dir(&folder).unwrap();
        upsert_profile(&paths, &imagekit("team")).unwrap();
        let spec = WatchSpec {
            path: folder.clone(),
            profile: "team".into(),
            folder: Some("/inbox".into()),
            tags: Some(vec!["watched".into()]),
            recursive: true,
        };
        let config = add_watch(&paths, &spec).unwrap();
        assert_eq!(config.watches.len(), 1);
        assert_eq!(config.watches[0].folder.as_deref(), Some("/inbox"));
        assert_eq!(config.watches[0].tags, Some(vec!["watched".to_owned()]));
        assert!(matches!(
            add_watch(&paths, &spec),
            Err(ConfigEditError::Input(_))
        ));
        let mut unknown = spec.clone();
        unknown.profile = "nobody".into();
        assert!(matches!(
            add_watch(&paths, &unknown),
            Err(ConfigEditError::Rejected(_))
        ));
        let err = remove_profile(&paths, "team").unwrap_err();
        assert!(err.to_string().contains("remove it first"), "{err}");

        let key = crate::watch::watch_key(&config.watches[0]);
        let config = remove_watch(&paths, &key).unwrap();
        assert!(config.watches.is_empty());
        assert!(remove_watch(&paths, &key).is_err());
        let config = remove_profile(&paths, "team").unwrap();
        assert!(config.profile("team").is_none());
        assert!(remove_profile(&paths, "team").is_err());
        assert!(remove_profile(&paths, "sandbox").is_err());
    }

    #[test]
    fn a_watch_is_edited_in_place_keeping_its_other_rules_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let folder = dir.path().join("drop");
        std::fs::create_dir(&folder).unwrap();
        upsert_profile(&paths, &imagekit("team")).unwrap();
        upsert_profile(&paths, &imagekit("other")).unwrap();
        let spec = WatchSpec {
            path: folder.clone(),
            profile: "team".into(),
            folder: Some("/inbox".into()),
            tags: Some(vec!["watched".into()]),
            recursive: true,
        };
        let config = add_watch(&paths, &spec).unwrap();
        let key = crate::watch::watch_key(&config.watches[0]);
        // A rule written by hand, with a comment, survives the edit.
        let text = std::fs::read_to_string(&paths.config_file).unwrap();
        std::fs::write(
            &paths.config_file,
            text.replace(
                "folder = \"/inbox\"",
                "folder = \"/inbox\"\n# keep drafts out\nexclude = [\"**/drafts/**\"]",
            ),
        )
        .unwrap();
        let edited = WatchSpec {
            path: dir.path().join("ignored"),
            profile: "other".into(),
            folder: None,
            tags: None,
            recursive: false,
        };
        let config = edit_watch(&paths, &key, &edited).unwrap();
        let watch = &config.watches[0];
        assert_eq!(watch.path, std::fs::canonicalize(&folder).unwrap());
        assert_eq!(
            (
                watch.profile.as_str(),
                watch.folder.as_deref(),
                &watch.tags,
                watch.recursive
            ),
            ("other", None, &None, false)
        );
        let text = std::fs::read_to_string(&paths.config_file).unwrap();
        assert!(
            text.contains("# keep drafts out\nexclude = [\"**/drafts/**\"]"),
            "{text}"
        );

        // The same rules as adding: a profile that does not exist is refused, and so is a
        // second watch of the folder with the same profile; the file is left as it was.
        let key = crate::watch::watch_key(watch);
        let unknown = WatchSpec {
            profile: "nobody".into(),
            ..edited.clone()
        };
        assert!(matches!(
            edit_watch(&paths, &key, &unknown),
            Err(ConfigEditError::Rejected(_))
        ));
        add_watch(&paths, &spec).unwrap();
        let twice = WatchSpec {
            profile: "team".into(),
            ..edited.clone()
        };
        let err = edit_watch(&paths, &key, &twice).unwrap_err();
        assert!(err.to_string().contains("already watched"), "{err}");
        assert!(edit_watch(&paths, "team:/nowhere", &edited).is_err());
    }

    #[test]
    fn a_profile_read_back_into_the_form_saves_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let config = upsert_profile(&paths, &imagekit("team")).unwrap();
        let before = std::fs::read_to_string(&paths.config_file).unwrap();
        let spec = ProfileSpec::from_profile(config.profile("team").unwrap());
        assert_eq!(spec.upload_url, None, "defaults are not pinned");
        assert_eq!(spec.api_url, None);
        assert_eq!(spec.auth, Some(ImageKitAuth::V2));
        upsert_profile(&paths, &spec).unwrap();
        let after = std::fs::read_to_string(&paths.config_file).unwrap();
        // Only `auth = "v2"` (the default, now explicit) may differ.
        assert_eq!(after.replace("auth = \"v2\"\n", ""), before);
    }

    #[test]
    fn only_new_non_provider_hosts_need_the_users_word() {
        let spec = |upload: Option<&str>, api: Option<&str>| ProfileSpec {
            upload_url: upload.map(Into::into),
            api_url: api.map(Into::into),
            ..imagekit("p")
        };
        assert!(hosts_to_confirm(&spec(None, None), None).is_empty());
        assert!(hosts_to_confirm(
            &spec(
                Some("https://upload.imagekit.io/api/v2/files/upload"),
                Some("https://api.imagekit.io")
            ),
            None
        )
        .is_empty());
        assert_eq!(
            hosts_to_confirm(
                &spec(
                    Some("https://media.example.com/up"),
                    Some("https://media.example.com")
                ),
                None
            ),
            ["https://media.example.com"]
        );
        // Already the saved profile's: no new question.
        let dir = tempfile::tempdir().unwrap();
        let config = upsert_profile(
            &paths(dir.path()),
            &spec(Some("https://media.example.com/up"), None),
        )
        .unwrap();
        let saved = config.profile("p");
        assert!(
            hosts_to_confirm(&spec(Some("https://media.example.com/up2"), None), saved).is_empty()
        );
        // Another port is another address; plain http is another origin too.
        assert_eq!(
            hosts_to_confirm(&spec(None, Some("https://media.example.com:8443")), saved),
            ["https://media.example.com:8443"]
        );
        assert_eq!(
            hosts_to_confirm(&spec(Some("http://media.example.com/up"), None), saved),
            ["http://media.example.com"]
        );
    }

    #[test]
    fn a_cloudinary_profile_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let spec = ProfileSpec {
            name: "cl".into(),
            provider: ProviderKind::Cloudinary,
            cloud_name: Some("demo".into()),
            api_key: Some("1234".into()),
            private: true,
            ..ProfileSpec::default()
        };
        let config = upsert_profile(&paths, &spec).unwrap();
        match &config.profile("cl").unwrap().provider {
            crate::config::Provider::Cloudinary(cl) => {
                assert_eq!(cl.cloud_name, "demo");
                assert!(cl.private);
            }
            other => panic!("{other:?}"),
        }
    }
}
