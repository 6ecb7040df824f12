//! The config file and the directories Dropkey uses.
//!
//! Parsing and resolving are separate steps (as in ripgrep): [`RawConfig`] mirrors the TOML and
//! only deserialises, keeping every value's span; [`Config::from_toml`] validates it and builds
//! the resolved [`Config`], whose types can only hold valid values. Every error names the file,
//! line, column and field and says how to fix it.
//!
//! A fresh install needs no file: the built-in `sandbox` profile (ImageKit V2 scheme) points at
//! the embedded local sandbox, with the upload-token guide's upload defaults.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::metadata::resize::Resize;
pub use crate::metadata::MetadataPolicy;
use toml::Spanned;
use url::Url;

/// Name of the built-in profile that targets the local sandbox.
pub const SANDBOX_PROFILE: &str = "sandbox";
/// Where the local sandbox listens unless `[sandbox] listen` says otherwise.
pub const DEFAULT_SANDBOX_LISTEN: &str = "127.0.0.1:7371";
/// The sandbox's public key (it is public by definition; its private key is generated on first
/// use and kept like any other secret).
pub const SANDBOX_PUBLIC_KEY: &str = "public_sandbox";

pub const IMAGEKIT_UPLOAD_V2: &str = "https://upload.imagekit.io/api/v2/files/upload";
pub const IMAGEKIT_UPLOAD_V1: &str = "https://upload.imagekit.io/api/v1/files/upload";
pub const IMAGEKIT_API: &str = "https://api.imagekit.io";
pub const CLOUDINARY_API: &str = "https://api.cloudinary.com";

/// The upload-token guide's documented upload defaults, used by the built-in sandbox profile.
const DOC_DEFAULT_FOLDER: &str = "/uploads/chat";
const DOC_DEFAULT_TAGS: &[&str] = &["chat", "media"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}; check the path given with --config or DROPKEY_CONFIG")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {field}: {message}; fix: {fix}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        field: String,
        message: String,
        fix: String,
    },
    #[error("cannot find a home directory for Dropkey's {what}: pass --{flag} or set {env}")]
    NoHome {
        what: &'static str,
        flag: &'static str,
        env: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------
// Directories

/// Where the config file and the data directory are, and whether the user chose them.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config_file: PathBuf,
    /// A config file the user named must exist; the default one may be absent.
    pub config_explicit: bool,
    pub data_dir: PathBuf,
}

impl Paths {
    /// The paths the environment names (`DROPKEY_CONFIG`, `DROPKEY_DATA_DIR`), else the
    /// platform directories: what the app uses, and the CLI when no flag is given.
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self::resolve(var("DROPKEY_CONFIG"), var("DROPKEY_DATA_DIR"))
    }

    /// `--config` / `DROPKEY_CONFIG` and `--data-dir` / `DROPKEY_DATA_DIR` (already merged by the
    /// caller) win over the platform directories.
    pub fn resolve(
        config: Option<PathBuf>,
        data_dir: Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let dirs = directories::ProjectDirs::from("dev", "dropkey", "dropkey");
        let config_explicit = config.is_some();
        let config_file = match config {
            Some(path) => path,
            None => dirs
                .as_ref()
                .map(|d| d.config_dir().join("config.toml"))
                .ok_or(ConfigError::NoHome {
                    what: "config file",
                    flag: "config",
                    env: "DROPKEY_CONFIG",
                })?,
        };
        let data_dir =
            match data_dir {
                Some(path) => path,
                None => dirs.as_ref().map(|d| d.data_dir().to_path_buf()).ok_or(
                    ConfigError::NoHome {
                        what: "data directory",
                        flag: "data-dir",
                        env: "DROPKEY_DATA_DIR",
                    },
                )?,
            };
        Ok(Self {
            config_file,
            config_explicit,
            data_dir,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Raw: the file as written

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    profiles: BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    #[serde(default)]
    watch: Vec<Spanned<RawWatch>>,
    #[serde(default)]
    sandbox: Option<RawSandbox>,
    #[serde(default)]
    upload: Option<RawUpload>,
    #[serde(default)]
    serve: Option<crate::serve_config::RawServe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpload {
    concurrency: Option<Spanned<i64>>,
    /// Replaced by `give_up_after`; still accepted so older files load.
    max_attempts: Option<Spanned<i64>>,
    give_up_after: Option<Spanned<i64>>,
    chunk_threshold: Option<Spanned<i64>>,
    chunk_size: Option<Spanned<i64>>,
    max_file_size: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    provider: Spanned<String>,
    auth: Option<Spanned<String>>,
    public_key: Option<Spanned<String>>,
    url_endpoint: Option<Spanned<String>>,
    upload_url: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    token_url: Option<Spanned<String>>,
    folder: Option<Spanned<String>>,
    tags: Option<Spanned<Vec<String>>>,
    use_unique_file_name: Option<Spanned<bool>>,
    cloud_name: Option<Spanned<String>>,
    api_key: Option<Spanned<String>>,
    private: Option<Spanned<bool>>,
    metadata: Option<Spanned<String>>,
    on_duplicate: Option<Spanned<String>>,
    max_dimension: Option<Spanned<i64>>,
    quality: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    path: Spanned<String>,
    profile: Spanned<String>,
    folder: Option<Spanned<String>>,
    tags: Option<Spanned<Vec<String>>>,
    recursive: Option<bool>,
    include: Option<Spanned<Vec<String>>>,
    exclude: Option<Spanned<Vec<String>>>,
    remote_path: Option<Spanned<String>>,
    after_upload: Option<Spanned<String>>,
    on_change: Option<Spanned<String>>,
    scan_interval: Option<Spanned<i64>>,
    include_hidden: Option<bool>,
    metadata: Option<Spanned<String>>,
    on_duplicate: Option<Spanned<String>>,
    max_dimension: Option<Spanned<i64>>,
    quality: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    listen: Option<Spanned<String>>,
}

/// Whether a request that carries a private key, a bearer token, a signature or a file may go
/// to `url`: over https anywhere, over plain http only to this machine (the sandbox, a local
/// token server). Anything else would hand the key to every network hop on the way.
pub fn check_key_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "plain http to {} would send the key (or the files) unencrypted",
            url.host_str().unwrap_or("?")
        )),
        other => Err(format!("the scheme {other}: is not https")),
    }
}

/// `localhost`, 127.0.0.0/8 or `[::1]`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Resolved

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from; `None` when no file exists and only built-ins apply.
    pub source: Option<PathBuf>,
    pub profiles: BTreeMap<String, Profile>,
    pub watches: Vec<Watch>,
    pub sandbox: SandboxSettings,
    pub upload: UploadSettings,
    /// The `[serve]` table: `dropkey serve`'s listener and per-token policy.
    pub serve: crate::serve_config::ServeSettings,
}

/// The most uploads in flight the config (and the app's Settings) accept.
pub const MAX_CONCURRENCY: usize = 64;

/// The `[upload]` table: how the engine uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSettings {
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// How long an unattended upload keeps trying through outages and transient errors
    /// before it needs attention (`dropkey upload` uses its own `--max-wait`).
    pub give_up_after: std::time::Duration,
    /// Cloudinary files above this many bytes go up in chunks (at least 5 MiB).
    pub chunk_threshold: u64,
    /// Bytes per Cloudinary chunk (at least 5 MiB).
    pub chunk_size: u64,
    /// Largest file accepted, in bytes (the provider plan's limit).
    pub max_file_size: u64,
}

/// Cloudinary's smallest chunk.
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            give_up_after: crate::engine::retry::UNATTENDED_BUDGET,
            chunk_threshold: 20 * 1024 * 1024,
            chunk_size: 20 * 1024 * 1024,
            max_file_size: 100 * 1024 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub provider: Provider,
    /// Remote folder uploads go to unless overridden.
    pub folder: Option<String>,
    pub tags: Vec<String>,
    /// What is removed from files' metadata before they are sent.
    pub metadata: MetadataPolicy,
    /// What happens to a file this profile already uploaded with the same folder, tags and parameters.
    pub on_duplicate: OnDuplicate,
    /// Images larger than this on their long side are scaled down before upload; off when none.
    pub resize: Option<Resize>,
    /// True for the built-in sandbox profile (not written in the config file).
    pub builtin: bool,
}

// A handful of profiles live for the whole process: boxing to even out variant sizes buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    ImageKit(ImageKit),
    Cloudinary(Cloudinary),
}

impl Provider {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::ImageKit(_) => ProviderKind::ImageKit,
            Self::Cloudinary(_) => ProviderKind::Cloudinary,
        }
    }
}

/// Which provider a profile uploads to, without its settings (the config's `provider` key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The first choice of a new profile's form.
    #[default]
    ImageKit,
    Cloudinary,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageKit => "imagekit",
            Self::Cloudinary => "cloudinary",
        }
    }

    /// The provider's name as people write it.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::ImageKit => "ImageKit",
            Self::Cloudinary => "Cloudinary",
        }
    }

    /// `imagekit` or `cloudinary`, in any case, around white space.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "imagekit" => Some(Self::ImageKit),
            "cloudinary" => Some(Self::Cloudinary),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKitAuth {
    /// Upload API V2: a JWT per upload (ImageKit's Upload API V2 guide).
    V2,
    /// Upload API V1: token + expire + signature (ImageKit's V1 client-side upload guide).
    V1,
    /// Tokens come from a `dropkey serve` (or compatible) token server.
    Remote,
}

impl ImageKitAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V1 => "v1",
            Self::Remote => "remote",
        }
    }

    /// The config's spelling: `v2`, `v1` or `remote`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "v2" => Some(Self::V2),
            "v1" => Some(Self::V1),
            "remote" => Some(Self::Remote),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageKit {
    pub auth: ImageKitAuth,
    pub public_key: String,
    pub url_endpoint: Url,
    pub upload_url: Url,
    pub api_url: Url,
    pub token_url: Option<Url>,
    pub use_unique_file_name: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloudinary {
    pub cloud_name: String,
    pub api_key: String,
    pub api_url: Url,
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub path: PathBuf,
    pub profile: String,
    /// Remote folder, instead of the profile's.
    pub folder: Option<String>,
    /// Tags, instead of the profile's.
    pub tags: Option<Vec<String>>,
    pub recursive: bool,
    /// Globs (relative paths) a file must match; empty = every file.
    pub include: Vec<String>,
    /// Globs that exclude a file, on top of the temp-file patterns.
    pub exclude: Vec<String>,
    /// Remote folder template: `{folder}`, `{dir}` (the file's relative directory), `{yyyy}`,
    /// `{mm}`, `{dd}`, `{date}`.
    pub remote_path: Option<String>,
    pub after_upload: AfterUpload,
    pub on_change: OnChange,
    /// Also rescan every this many seconds (for network drives that send no events).
    pub scan_interval: Option<u64>,
    /// Upload dot-files too (they are skipped by default: editors and sync tools park temp
    /// files there).
    pub include_hidden: bool,
    /// Overrides the profile's `metadata`.
    pub metadata: Option<MetadataPolicy>,
    /// Overrides the profile's `on_duplicate`.
    pub on_duplicate: Option<OnDuplicate>,
    /// Overrides the profile's `max_dimension` (`Some(None)`: `max_dimension = 0`, off).
    pub resize: Option<Option<Resize>>,
}

impl Watch {
    /// A watch with every default: `dropkey watch PROFILE DIR`.
    pub fn ad_hoc(path: PathBuf, profile: &str) -> Self {
        Self {
            path,
            profile: profile.to_owned(),
            folder: None,
            tags: None,
            recursive: true,
            include: Vec::new(),
            exclude: Vec::new(),
            remote_path: None,
            after_upload: AfterUpload::Keep,
            on_change: OnChange::Ignore,
            scan_interval: None,
            include_hidden: false,
            metadata: None,
            on_duplicate: None,
            resize: None,
        }
    }
}

/// What happens to a watched file once the provider confirmed its upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterUpload {
    Keep,
    /// Move into this subfolder of the watched folder.
    Move(String),
    Delete,
}

/// What happens when a file's content (the bytes that would be sent) was already uploaded with
/// the same profile and the same folder, tags and parameters, and the provider still has it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum OnDuplicate {
    /// Nothing is sent: the earlier upload's URL is the result.
    #[default]
    Skip,
    /// Upload it again.
    Upload,
    /// As `skip`, and the app asks whether to upload it anyway (the CLI and watches, which
    /// cannot ask, skip).
    Ask,
}

impl OnDuplicate {
    pub const ALL: [Self; 3] = [Self::Skip, Self::Upload, Self::Ask];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Upload => "upload",
            Self::Ask => "ask",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// What a file rewritten after its upload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    Ignore,
    Upload,
}

impl Profile {
    pub fn provider_name(&self) -> &'static str {
        self.provider.kind().as_str()
    }
}

impl Config {
    /// Loads the config the paths name. A missing default file means "built-ins only"; a missing
    /// file the user named is an error.
    pub fn load(paths: &Paths) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(&paths.config_file) {
            Ok(text) => Self::from_toml(&text, &paths.config_file),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !paths.config_explicit => {
                Self::from_toml("", &paths.config_file).map(|mut c| {
                    c.source = None;
                    c
                })
            }
            Err(source) => Err(ConfigError::Read {
                path: paths.config_file.clone(),
                source,
            }),
        }
    }

    /// Parses and validates `text`; `path` is only used in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let ctx = Ctx { text, path };
        let raw: RawConfig = toml::from_str(text).map_err(|err| ctx.toml_error(&err))?;
        ctx.resolve(raw)
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }
}

/// Valid profile names double as keychain account names and env variable suffixes.
pub fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

pub(crate) struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Ctx<'_> {
    pub(crate) fn error(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        let message = without_quoted_value(message.into(), self.text.get(span));
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            field: field.into(),
            message,
            fix: fix.into(),
        }
    }

    fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let message = without_serde_value(&err.message().replace('\n', " "));
        let field = field_at(self.text, span.start);
        let fix = if message.contains("unknown field") {
            "remove the key or correct its spelling (see README, \"Config\")"
        } else if message.contains("missing field") {
            "add the missing key to that table"
        } else if message.contains("invalid type") {
            "give the value the type shown: strings in quotes, true/false unquoted, lists in [ ]"
        } else {
            "correct the TOML syntax at that position"
        };
        self.error(span, field, message, fix)
    }

    fn resolve(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let sandbox = match raw.sandbox.and_then(|s| s.listen) {
            Some(listen) => SandboxSettings {
                listen: listen.get_ref().parse().map_err(|_| {
                    self.error(
                        listen.span(),
                        "sandbox.listen",
                        format!("`{}` is not an IP address and port", listen.get_ref()),
                        "write it like \"127.0.0.1:7371\"",
                    )
                })?,
            },
            None => SandboxSettings {
                listen: DEFAULT_SANDBOX_LISTEN
                    .parse()
                    .unwrap_or_else(|_| unreachable!("the default address parses")),
            },
        };

        let upload = self.resolve_upload(raw.upload)?;
        let mut profiles = BTreeMap::new();
        profiles.insert(SANDBOX_PROFILE.to_owned(), sandbox_profile(&sandbox));
        // Each profile's DROPKEY_SECRET_ variable, which must be its own: two profiles reading
        // one variable would sign for one account with the other's key.
        let mut env_vars = BTreeMap::from([(
            crate::secrets::env_var_name(SANDBOX_PROFILE),
            SANDBOX_PROFILE.to_owned(),
        )]);
        for (name, raw_profile) in raw.profiles {
            let span = name.span();
            let name = name.into_inner();
            if !valid_profile_name(&name) {
                return Err(self.error(
                    span,
                    format!("profiles.{name}"),
                    "a profile name may only use letters, digits, '-', '_' and '.' (at most 64)",
                    "rename the table, e.g. [profiles.my-imagekit]",
                ));
            }
            let env_var = crate::secrets::env_var_name(&name);
            match env_vars.get(&env_var) {
                Some(other) if *other != name => {
                    return Err(self.error(
                        span,
                        format!("profiles.{name}"),
                        format!(
                            "profiles `{other}` and `{name}` would both read their key from \
                             {env_var}"
                        ),
                        "rename one of them so the names differ in more than letter case and \
                         '-', '_', '.'",
                    ));
                }
                _ => {
                    env_vars.insert(env_var, name.clone());
                }
            }
            let profile = self.resolve_profile(&name, raw_profile)?;
            profiles.insert(name, profile);
        }

        let mut watches = Vec::new();
        for (index, raw_watch) in raw.watch.into_iter().enumerate() {
            watches.push(self.resolve_watch(index, raw_watch, &profiles)?);
        }
        let serve = crate::serve_config::resolve(self, raw.serve, &profiles)?;

        Ok(Config {
            source: Some(self.path.to_path_buf()),
            profiles,
            watches,
            sandbox,
            upload,
            serve,
        })
    }

    fn resolve_upload(&self, raw: Option<RawUpload>) -> Result<UploadSettings, ConfigError> {
        let mut settings = UploadSettings::default();
        let Some(raw) = raw else {
            return Ok(settings);
        };
        let range = |value: &Spanned<i64>, key: &str, min: i64, max: i64| {
            let v = *value.get_ref();
            if (min..=max).contains(&v) {
                Ok(v)
            } else {
                Err(self.error(
                    value.span(),
                    format!("upload.{key}"),
                    format!("{v} is out of range"),
                    format!("use a whole number from {min} to {max}"),
                ))
            }
        };
        if let Some(v) = &raw.concurrency {
            settings.concurrency = range(v, "concurrency", 1, MAX_CONCURRENCY as i64)? as usize;
        }
        if raw.max_attempts.is_some() {
            tracing::warn!(
                "upload.max_attempts is no longer used: uploads retry for a time budget, `upload.give_up_after` (seconds); remove the line"
            );
        }
        if let Some(v) = &raw.give_up_after {
            settings.give_up_after =
                std::time::Duration::from_secs(
                    range(v, "give_up_after", 60, 30 * 24 * 3600)? as u64
                );
        }
        let min_chunk = MIN_CHUNK as i64;
        if let Some(v) = &raw.chunk_threshold {
            settings.chunk_threshold = range(v, "chunk_threshold", min_chunk, i64::MAX)? as u64;
        }
        if let Some(v) = &raw.chunk_size {
            settings.chunk_size = range(v, "chunk_size", min_chunk, 100 * min_chunk)? as u64;
        }
        if let Some(v) = &raw.max_file_size {
            settings.max_file_size = range(v, "max_file_size", 1, i64::MAX)? as u64;
        }
        Ok(settings)
    }

    fn resolve_profile(
        &self,
        name: &str,
        raw: Spanned<RawProfile>,
    ) -> Result<Profile, ConfigError> {
        let table_span = raw.span();
        let raw = raw.into_inner();
        let field = |key: &str| format!("profiles.{name}.{key}");
        let folder = raw
            .folder
            .map(|f| self.folder(f, &field("folder")))
            .transpose()?;
        let tags = raw
            .tags
            .map(|t| self.tags(t, &field("tags")))
            .transpose()?
            .unwrap_or_default();

        let provider = match raw.provider.get_ref().as_str() {
            "imagekit" => {
                for (key, value) in [
                    ("cloud_name", raw.cloud_name.as_ref().map(Spanned::span)),
                    ("api_key", raw.api_key.as_ref().map(Spanned::span)),
                    ("private", raw.private.as_ref().map(Spanned::span)),
                ] {
                    if let Some(span) = value {
                        return Err(self.error(
                            span,
                            field(key),
                            "this key is for Cloudinary profiles",
                            "remove it, or set provider = \"cloudinary\"",
                        ));
                    }
                }
                let auth = match raw.auth.as_ref() {
                    None => ImageKitAuth::V2,
                    Some(auth) => match ImageKitAuth::parse(auth.get_ref()) {
                        Some(parsed) => parsed,
                        None => {
                            return Err(self.error(
                                auth.span(),
                                field("auth"),
                                format!("unknown auth scheme `{}`", auth.get_ref()),
                                "use \"v2\" (JWT), \"v1\" (token + expire + signature) or \"remote\"",
                            ));
                        }
                    },
                };
                let public_key = self.required(
                    raw.public_key,
                    &table_span,
                    &field("public_key"),
                    "add public_key = \"public_...\" from your ImageKit dashboard",
                )?;
                let url_endpoint = self.required(
                    raw.url_endpoint,
                    &table_span,
                    &field("url_endpoint"),
                    "add url_endpoint = \"https://ik.imagekit.io/your_id\"",
                )?;
                let url_endpoint = self.parse_url(url_endpoint, &field("url_endpoint"))?;
                let default_upload = match auth {
                    ImageKitAuth::V1 => IMAGEKIT_UPLOAD_V1,
                    ImageKitAuth::V2 | ImageKitAuth::Remote => IMAGEKIT_UPLOAD_V2,
                };
                let upload_url =
                    self.url_or(raw.upload_url, &field("upload_url"), default_upload)?;
                let api_url = self.url_or(raw.api_url, &field("api_url"), IMAGEKIT_API)?;
                let token_url = match (auth, raw.token_url) {
                    (ImageKitAuth::Remote, Some(t)) => Some(self.key_url(t, &field("token_url"))?),
                    (ImageKitAuth::Remote, None) => return Err(self.error(
                        table_span.clone(),
                        field("token_url"),
                        "auth = \"remote\" needs the token server's address",
                        "add token_url = \"https://tokens.example.com/api/media/get-upload-token\"",
                    )),
                    (_, Some(t)) => {
                        return Err(self.error(
                            t.span(),
                            field("token_url"),
                            "token_url only applies to auth = \"remote\"",
                            "remove it, or set auth = \"remote\"",
                        ))
                    }
                    (_, None) => None,
                };
                Provider::ImageKit(ImageKit {
                    auth,
                    public_key: public_key.into_inner(),
                    url_endpoint,
                    upload_url,
                    api_url,
                    token_url,
                    use_unique_file_name: raw.use_unique_file_name.map(Spanned::into_inner),
                })
            }
            "cloudinary" => {
                for (key, value) in [
                    ("auth", raw.auth.as_ref().map(Spanned::span)),
                    ("public_key", raw.public_key.as_ref().map(Spanned::span)),
                    ("url_endpoint", raw.url_endpoint.as_ref().map(Spanned::span)),
                    ("upload_url", raw.upload_url.as_ref().map(Spanned::span)),
                    ("token_url", raw.token_url.as_ref().map(Spanned::span)),
                    (
                        "use_unique_file_name",
                        raw.use_unique_file_name.as_ref().map(Spanned::span),
                    ),
                ] {
                    if let Some(span) = value {
                        return Err(self.error(
                            span,
                            field(key),
                            "this key is for ImageKit profiles",
                            "remove it, or set provider = \"imagekit\"",
                        ));
                    }
                }
                let cloud_name = self.required(
                    raw.cloud_name,
                    &table_span,
                    &field("cloud_name"),
                    "add cloud_name = \"your-cloud\" from your Cloudinary console",
                )?;
                if !cloud_name
                    .get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(self.error(
                        cloud_name.span(),
                        field("cloud_name"),
                        format!("`{}` is not a Cloudinary cloud name", cloud_name.get_ref()),
                        "use the cloud name from your Cloudinary console (letters, digits, '-', '_')",
                    ));
                }
                let api_key = self.required(
                    raw.api_key,
                    &table_span,
                    &field("api_key"),
                    "add api_key = \"...\" (the public API key from your Cloudinary console)",
                )?;
                let api_url = self.url_or(raw.api_url, &field("api_url"), CLOUDINARY_API)?;
                Provider::Cloudinary(Cloudinary {
                    cloud_name: cloud_name.into_inner(),
                    api_key: api_key.into_inner(),
                    api_url,
                    private: raw.private.map(Spanned::into_inner).unwrap_or(false),
                })
            }
            other => {
                return Err(self.error(
                    raw.provider.span(),
                    field("provider"),
                    format!("unknown provider `{other}`"),
                    "use provider = \"imagekit\" or provider = \"cloudinary\"",
                ))
            }
        };
        Ok(Profile {
            name: name.to_owned(),
            provider,
            folder,
            tags,
            metadata: self
                .metadata(raw.metadata, &field("metadata"))?
                .unwrap_or_default(),
            on_duplicate: self
                .on_duplicate(raw.on_duplicate, &field("on_duplicate"))?
                .unwrap_or_default(),
            resize: self
                .resize(raw.max_dimension, raw.quality, &field, &table_span)?
                .flatten(),
            builtin: false,
        })
    }

    fn metadata(
        &self,
        raw: Option<Spanned<String>>,
        field: &str,
    ) -> Result<Option<MetadataPolicy>, ConfigError> {
        raw.map(|v| {
            MetadataPolicy::parse(v.get_ref()).ok_or_else(|| {
                self.error(
                    v.span(),
                    field,
                    format!("`{}` is not a metadata policy", v.get_ref()),
                    "use \"keep\", \"strip-location\", \"strip-private\" or \"strip-all\"",
                )
            })
        })
        .transpose()
    }

    /// `max_dimension` (0: off) and `quality`: `None` when neither is set.
    fn resize(
        &self,
        max_dimension: Option<Spanned<i64>>,
        quality: Option<Spanned<i64>>,
        field: &dyn Fn(&str) -> String,
        table_span: &Range<usize>,
    ) -> Result<Option<Option<Resize>>, ConfigError> {
        let quality = match quality {
            Some(q) if (1..=100).contains(q.get_ref()) => Some(*q.get_ref() as u8),
            Some(q) => {
                return Err(self.error(
                    q.span(),
                    field("quality"),
                    format!("{} is out of range", q.get_ref()),
                    "give a JPEG quality from 1 to 100 (85 is the default)",
                ))
            }
            None => None,
        };
        match max_dimension {
            None if quality.is_some() => Err(self.error(
                table_span.clone(),
                field("quality"),
                "quality is for resized images",
                "add max_dimension = <pixels>, or remove quality",
            )),
            None => Ok(None),
            Some(m) if *m.get_ref() == 0 => Ok(Some(None)),
            Some(m) if (16..=65_535).contains(m.get_ref()) => Ok(Some(Some(Resize {
                max_dimension: *m.get_ref() as u32,
                quality: quality.unwrap_or(Resize::DEFAULT_QUALITY),
            }))),
            Some(m) => Err(self.error(
                m.span(),
                field("max_dimension"),
                format!("{} is out of range", m.get_ref()),
                "give the long side's limit in pixels, 16 to 65535 (0 turns it off)",
            )),
        }
    }

    fn on_duplicate(
        &self,
        raw: Option<Spanned<String>>,
        field: &str,
    ) -> Result<Option<OnDuplicate>, ConfigError> {
        raw.map(|v| {
            OnDuplicate::parse(v.get_ref()).ok_or_else(|| {
                self.error(
                    v.span(),
                    field,
                    format!("`{}` is not an on-duplicate action", v.get_ref()),
                    "use \"skip\", \"upload\" or \"ask\"",
                )
            })
        })
        .transpose()
    }

    fn resolve_watch(
        &self,
        index: usize,
        raw: Spanned<RawWatch>,
        profiles: &BTreeMap<String, Profile>,
    ) -> Result<Watch, ConfigError> {
        let table_span = raw.span();
        let raw = raw.into_inner();
        let field = |key: &str| format!("watch[{index}].{key}");
        if raw.path.get_ref().trim().is_empty() {
            return Err(self.error(
                raw.path.span(),
                field("path"),
                "the watched folder's path is empty",
                "set path = \"/absolute/path/to/folder\"",
            ));
        }
        if !profiles.contains_key(raw.profile.get_ref()) {
            return Err(self.error(
                raw.profile.span(),
                field("profile"),
                format!("no profile named `{}`", raw.profile.get_ref()),
                format!(
                    "use one of: {}",
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let globs =
            |value: Option<Spanned<Vec<String>>>, key: &str| -> Result<Vec<String>, ConfigError> {
                let Some(value) = value else {
                    return Ok(Vec::new());
                };
                for glob in value.get_ref() {
                    if let Err(err) = globset::Glob::new(glob) {
                        return Err(self.error(
                            value.span(),
                            field(key),
                            format!("`{glob}` is not a valid glob: {err}"),
                            "use globs like \"*.jpg\" or \"**/exports/*.png\"",
                        ));
                    }
                }
                Ok(value.into_inner())
            };
        let include = globs(raw.include, "include")?;
        let exclude = globs(raw.exclude, "exclude")?;
        let remote_path = match raw.remote_path {
            Some(template) => {
                let known = ["{folder}", "{dir}", "{yyyy}", "{mm}", "{dd}", "{date}"];
                let mut rest = template.get_ref().clone();
                for k in known {
                    rest = rest.replace(k, "");
                }
                if rest.contains('{') || rest.contains('}') || rest.contains("..") {
                    return Err(self.error(
                        template.span(),
                        field("remote_path"),
                        format!("`{}` uses an unknown placeholder or '..'", template.get_ref()),
                        "use {folder}, {dir}, {yyyy}, {mm}, {dd} and {date}, e.g. \"{folder}/{yyyy}/{mm}/{dir}\"",
                    ));
                }
                Some(template.into_inner())
            }
            None => None,
        };
        let after_upload = match raw.after_upload.as_ref().map(|a| a.get_ref().as_str()) {
            None | Some("keep") => AfterUpload::Keep,
            Some("delete") => AfterUpload::Delete,
            Some(other) => match other.strip_prefix("move:") {
                Some(dir) if !dir.is_empty() && !dir.contains("..") && !dir.starts_with('/') => {
                    AfterUpload::Move(dir.to_owned())
                }
                _ => {
                    let span = raw.after_upload.as_ref().map(Spanned::span).unwrap_or(0..0);
                    return Err(self.error(
                        span,
                        field("after_upload"),
                        format!("`{other}` is not an after-upload action"),
                        "use \"keep\", \"delete\" or \"move:<subfolder>\" (relative, no '..')",
                    ));
                }
            },
        };
        let on_change = match raw.on_change.as_ref().map(|a| a.get_ref().as_str()) {
            None | Some("ignore") => OnChange::Ignore,
            Some("upload") => OnChange::Upload,
            Some(other) => {
                let span = raw.on_change.as_ref().map(Spanned::span).unwrap_or(0..0);
                return Err(self.error(
                    span,
                    field("on_change"),
                    format!("`{other}` is not an on-change action"),
                    "use \"ignore\" or \"upload\"",
                ));
            }
        };
        let scan_interval = match raw.scan_interval {
            Some(v) if (1..=86_400).contains(v.get_ref()) => Some(*v.get_ref() as u64),
            Some(v) => {
                return Err(self.error(
                    v.span(),
                    field("scan_interval"),
                    format!("{} is out of range", v.get_ref()),
                    "give seconds from 1 to 86400",
                ))
            }
            None => None,
        };
        Ok(Watch {
            path: PathBuf::from(raw.path.into_inner()),
            profile: raw.profile.into_inner(),
            folder: raw
                .folder
                .map(|f| self.folder(f, &field("folder")))
                .transpose()?,
            tags: raw.tags.map(|t| self.tags(t, &field("tags"))).transpose()?,
            recursive: raw.recursive.unwrap_or(true),
            include,
            exclude,
            remote_path,
            after_upload,
            on_change,
            scan_interval,
            include_hidden: raw.include_hidden.unwrap_or(false),
            metadata: self.metadata(raw.metadata, &field("metadata"))?,
            on_duplicate: self.on_duplicate(raw.on_duplicate, &field("on_duplicate"))?,
            resize: self.resize(raw.max_dimension, raw.quality, &field, &table_span)?,
        })
    }

    fn required(
        &self,
        value: Option<Spanned<String>>,
        table_span: &Range<usize>,
        field: &str,
        fix: &str,
    ) -> Result<Spanned<String>, ConfigError> {
        match value {
            Some(v) if !v.get_ref().trim().is_empty() => Ok(v),
            Some(v) => Err(self.error(v.span(), field, "must not be empty", fix)),
            None => Err(self.error(table_span.clone(), field, "missing required key", fix)),
        }
    }

    fn parse_url(&self, value: Spanned<String>, field: &str) -> Result<Url, ConfigError> {
        match Url::parse(value.get_ref()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
            // The value is not repeated: a key pasted into the wrong field must not reach a
            // terminal or a log.
            _ => Err(self.error(
                value.span(),
                field,
                "is not an http(s) URL",
                "write a full URL such as \"https://example.com/path\"",
            )),
        }
    }

    /// A URL a key, a token or a file is sent to: https, or http only to this machine.
    fn key_url(&self, value: Spanned<String>, field: &str) -> Result<Url, ConfigError> {
        let span = value.span();
        let url = self.parse_url(value, field)?;
        match check_key_url(&url) {
            Ok(()) => Ok(url),
            Err(why) => Err(self.error(
                span,
                field,
                why,
                "use https (or http only to localhost / 127.0.0.1 / [::1], e.g. the sandbox)",
            )),
        }
    }

    fn url_or(
        &self,
        value: Option<Spanned<String>>,
        field: &str,
        default: &str,
    ) -> Result<Url, ConfigError> {
        match value {
            Some(value) => self.key_url(value, field),
            None => Url::parse(default).map_err(|_| unreachable!("built-in URLs parse")),
        }
    }

    fn folder(&self, value: Spanned<String>, field: &str) -> Result<String, ConfigError> {
        let folder = value.get_ref();
        if folder.contains("..") || folder.contains('\\') || folder.chars().any(char::is_control) {
            return Err(self.error(
                value.span(),
                field,
                format!("`{folder}` is not a valid remote folder"),
                "use a path like \"/uploads/chat\" without '..', backslashes or control characters",
            ));
        }
        Ok(value.into_inner())
    }

    fn tags(&self, value: Spanned<Vec<String>>, field: &str) -> Result<Vec<String>, ConfigError> {
        for tag in value.get_ref() {
            if tag.trim().is_empty() || tag.contains(',') || tag.len() > 200 {
                return Err(self.error(
                    value.span(),
                    field,
                    format!("tag `{tag}` is empty, too long or contains a comma"),
                    "give each tag as its own string: tags = [\"summer\", \"dress\"]",
                ));
            }
        }
        Ok(value.into_inner())
    }
}

fn sandbox_profile(settings: &SandboxSettings) -> Profile {
    let base = format!("http://{}", settings.listen);
    let url = |path: &str| {
        Url::parse(&format!("{base}{path}"))
            .unwrap_or_else(|_| unreachable!("a socket address makes a valid URL"))
    };
    Profile {
        name: SANDBOX_PROFILE.to_owned(),
        provider: Provider::ImageKit(ImageKit {
            auth: ImageKitAuth::V2,
            public_key: SANDBOX_PUBLIC_KEY.to_owned(),
            url_endpoint: url("/ik/sandbox"),
            upload_url: url("/api/v2/files/upload"),
            api_url: url(""),
            token_url: None,
            use_unique_file_name: Some(true),
        }),
        folder: Some(DOC_DEFAULT_FOLDER.to_owned()),
        tags: DOC_DEFAULT_TAGS.iter().map(|t| (*t).to_owned()).collect(),
        metadata: MetadataPolicy::default(),
        on_duplicate: OnDuplicate::default(),
        resize: None,
        builtin: true,
    }
}

/// 1-based line and column of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary_compat(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted name of the key at `offset`: the nearest `[table]` header above it plus the key
/// on that line, so that a parse error can name the field even when serde only has a span.
/// A config error never shows a value: a key pasted into the wrong field would end up in a
/// terminal, a log or a bug report. `span_text` is the TOML source of the value the error is
/// about; when it is a string (it starts with a quote), its text in backticks is replaced. The
/// line, column and field still say where it is.
fn without_quoted_value(message: String, span_text: Option<&str>) -> String {
    let Some(raw) = span_text.map(str::trim) else {
        return message;
    };
    if !raw.starts_with(['"', '\'']) {
        return message;
    }
    let value = raw.trim_matches(['"', '\'']);
    if value.is_empty() {
        return message;
    }
    let quoted = format!("`{value}`");
    match message.strip_prefix(&quoted) {
        Some(rest) => format!("the value (not shown){rest}").replace(&quoted, "(value not shown)"),
        None => message.replace(&quoted, "(value not shown)"),
    }
}

/// serde's messages quote the value they got (`invalid type: string "…", expected a boolean`,
/// `unknown variant `…`, expected one of …`): keep only its kind and what was expected.
fn without_serde_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // The last one: the value itself may contain ", expected ".
            if let Some(at) = rest.rfind(", expected ") {
                let got = &rest[..at];
                let kind = if got.starts_with("floating point") {
                    "floating point number"
                } else {
                    got.split([' ', '`', '"']).next().unwrap_or("value")
                };
                return format!("{prefix}{kind}{}", &rest[at..]);
            }
            return format!("{prefix}(value not shown)");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return match rest.rfind("`, expected ") {
            Some(at) => format!("unknown value{}", &rest[at + 1..]),
            None => "unknown value".to_owned(),
        };
    }
    message.to_owned()
}

fn field_at(text: &str, offset: usize) -> String {
    let offset = text.floor_char_boundary_compat(offset.min(text.len()));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        return trimmed
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_owned();
    }
    let key = trimmed
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned());
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k,
        (Some(t), None) => t,
        (None, None) => "(top level)".to_owned(),
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut index: usize) -> usize {
        while index > 0 && !self.is_char_boundary(index) {
            index -= 1;
        }
        index
    }
}

#[cfg(test)]
mod key_url_tests {
    use super::*;

    fn profile_with(key: &str, value: &str) -> Result<Config, ConfigError> {
        Config::from_toml(
            &format!(
                "[profiles.p]\nprovider = \"imagekit\"\npublic_key = \"public_k\"\nurl_endpoint = \"https://ik.imagekit.io/x\"\n{key} = \"{value}\"\n"
            ),
            Path::new("c.toml"),
        )
    }

    #[test]
    fn key_bearing_urls_are_https_or_loopback() {
        for ok in [
            "https://api.imagekit.io",
            "http://127.0.0.1:7371",
            "http://127.9.9.9",
            "http://localhost:1",
            "http://[::1]:7371",
        ] {
            assert!(profile_with("api_url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.imagekit.io",
            "http://192.168.1.10",
            "http://localhost.evil.com",
            "http://[::2]",
        ] {
            let err = profile_with("upload_url", bad).unwrap_err().to_string();
            assert!(err.contains("unencrypted"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_key_pasted_into_a_url_field_is_not_echoed() {
        let err = profile_with("api_url", "private_SuperSecretKey123=")
            .unwrap_err()
            .to_string();
        assert!(err.contains("profiles.p.api_url"), "{err}");
        assert!(!err.contains("SuperSecret"), "{err}");
    }
}

#[cfg(test)]
mod upload_policy_tests {
    use super::*;

    const BASE: &str = "[profiles.p]\nprovider = \"imagekit\"\npublic_key = \"public_k\"\nurl_endpoint = \"https://ik.imagekit.io/x\"\n";

    fn load(extra: &str) -> Result<Config, ConfigError> {
        Config::from_toml(&format!("{BASE}{extra}"), Path::new("c.toml"))
    }

    #[test]
    fn new_profiles_strip_the_location_and_skip_duplicates_unless_told_otherwise() {
        let p = &load("").unwrap().profiles["p"];
        assert_eq!(p.metadata, MetadataPolicy::StripLocation);
        assert_eq!(p.on_duplicate, OnDuplicate::Skip);
        assert_eq!(p.resize, None);
        let p = &load("metadata = \"keep\"\non_duplicate = \"ask\"\nmax_dimension = 2560\n")
            .unwrap()
            .profiles["p"];
        assert_eq!(p.metadata, MetadataPolicy::Keep);
        assert_eq!(p.on_duplicate, OnDuplicate::Ask);
        assert_eq!(
            p.resize,
            Some(Resize {
                max_dimension: 2560,
                quality: 85
            })
        );
    }

    #[test]
    fn bad_values_name_the_field_and_the_fix() {
        for (extra, field, fix) in [
            (
                "metadata = \"strip\"\n",
                "profiles.p.metadata",
                "strip-location",
            ),
            (
                "on_duplicate = \"never\"\n",
                "profiles.p.on_duplicate",
                "\"skip\"",
            ),
            (
                "max_dimension = 5\n",
                "profiles.p.max_dimension",
                "16 to 65535",
            ),
            (
                "max_dimension = 100\nquality = 101\n",
                "profiles.p.quality",
                "1 to 100",
            ),
            ("quality = 80\n", "profiles.p.quality", "add max_dimension"),
        ] {
            let err = load(extra).unwrap_err().to_string();
            assert!(err.contains(field) && err.contains(fix), "{extra}: {err}");
        }
    }

    #[test]
    fn a_watch_overrides_its_profile_and_can_turn_resizing_off() {
        let config = load(
            "max_dimension = 1000\n[[watch]]\npath = \"/w\"\nprofile = \"p\"\nmetadata = \"strip-all\"\non_duplicate = \"upload\"\nmax_dimension = 0\n",
        )
        .unwrap();
        let watch = &config.watches[0];
        assert_eq!(watch.metadata, Some(MetadataPolicy::StripAll));
        assert_eq!(watch.on_duplicate, Some(OnDuplicate::Upload));
        assert_eq!(watch.resize, Some(None));
    }
}
