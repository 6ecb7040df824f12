//! `dropkey profile list|set|remove`: the profiles in the config file, edited the same way as
//! the app's Settings (comments and layout kept, validated before the file is replaced). The
//! private key is not set here: `dropkey key set` reads it from stdin into the keychain.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::Context;
use crate::Error;
use dropkey_core::config::{
    ImageKitAuth, MetadataPolicy, OnDuplicate, Profile, ProviderKind, Resize,
};
use dropkey_core::config_edit::{self, ProfileSpec};
use dropkey_core::engine::connection;
use dropkey_core::profile::ProfileStatus;
use dropkey_core::secrets::SecretSource;

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List every profile (the built-in sandbox first) and where its key comes from.
    List,
    /// Add a profile, or change one, in the config file.
    Set(Box<SetArgs>),
    /// Test a profile against its provider with its key (nothing is uploaded): one line,
    /// `{"profile","ok":true,"message"}`, or exit 2 with the provider's reason.
    Test { name: String },
    /// Remove a profile from the config file (and its key from the keychain with --with-key).
    Remove {
        name: String,
        /// Also delete the profile's private key from the keychain.
        #[arg(long)]
        with_key: bool,
    },
}

#[derive(Debug, Args)]
pub struct SetArgs {
    name: String,
    /// imagekit or cloudinary.
    #[arg(long)]
    provider: String,
    /// ImageKit: v2 (default), v1 or remote.
    #[arg(long)]
    auth: Option<String>,
    #[arg(long)]
    public_key: Option<String>,
    #[arg(long)]
    url_endpoint: Option<String>,
    #[arg(long)]
    upload_url: Option<String>,
    #[arg(long)]
    api_url: Option<String>,
    /// ImageKit with auth = remote: the team token server's upload-token address.
    #[arg(long)]
    token_url: Option<String>,
    /// Default remote folder.
    #[arg(long)]
    folder: Option<String>,
    /// Default tag (repeat for more).
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[arg(long)]
    cloud_name: Option<String>,
    #[arg(long)]
    api_key: Option<String>,
    /// Cloudinary: upload as type=private.
    #[arg(long)]
    private: bool,
    /// What to remove from files' metadata before upload (default strip-location).
    #[arg(long, value_name = "POLICY", value_parser = ["keep", "strip-location", "strip-private", "strip-all"])]
    metadata: Option<String>,
    /// A file already uploaded with the same folder, tags and parameters: skip (default), upload, or ask (the app).
    #[arg(long, value_name = "ACTION", value_parser = ["skip", "upload", "ask"])]
    on_duplicate: Option<String>,
    /// Scale images larger than PX on their long side down before upload (16 to 65535).
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(16..=65_535))]
    max_dimension: Option<u32>,
    /// JPEG quality of resized images (1 to 100, default 85); needs --max-dimension.
    #[arg(long, value_name = "Q", requires = "max_dimension", value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: Option<u8>,
}

pub async fn run(ctx: &Context, command: &ProfileCommand) -> Result<Value, Error> {
    match command {
        ProfileCommand::Test { name } => {
            let profile = ctx.profile(name)?;
            // Something else answering at the sandbox's address is what the test is for.
            let _sandbox = match ctx
                .local_sandbox_for(std::iter::once(profile.name.as_str()))
                .await
            {
                Err(Error::LocalSandbox(err)) => {
                    return Err(Error::ConnectionFailed {
                        profile: profile.name.clone(),
                        reason: err.to_string(),
                    })
                }
                started => started?,
            };
            let http = reqwest::Client::builder()
                .user_agent(concat!("dropkey/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(std::time::Duration::from_secs(15))
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .map_err(|err| Error::Usage(format!("cannot start an HTTP client: {err}")))?;
            let check = connection::check(&http, &ctx.secrets, profile).await;
            if !check.ok {
                return Err(Error::ConnectionFailed {
                    profile: profile.name.clone(),
                    reason: check.message,
                });
            }
            Ok(json!({ "profile": profile.name, "ok": true, "message": check.message }))
        }
        ProfileCommand::List => {
            let profiles: Vec<Value> = ctx
                .config
                .profiles
                .values()
                .map(|p| status_json(ctx, p))
                .collect();
            Ok(json!({ "profiles": profiles }))
        }
        ProfileCommand::Set(args) => {
            let provider = ProviderKind::parse(&args.provider).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown provider `{}`: choose --provider imagekit or --provider cloudinary",
                    args.provider
                ))
            })?;
            // An empty --auth clears the key, as an emptied field does in Settings.
            let auth = match args.auth.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(text) => Some(ImageKitAuth::parse(text).ok_or_else(|| {
                    Error::Usage(format!(
                        "unknown auth scheme `{text}`: choose --auth v2 (JWT), v1 (token + expire + signature) or remote (a token server)"
                    ))
                })?),
            };
            let spec = ProfileSpec {
                name: args.name.clone(),
                provider,
                auth,
                public_key: args.public_key.clone(),
                url_endpoint: args.url_endpoint.clone(),
                upload_url: args.upload_url.clone(),
                api_url: args.api_url.clone(),
                token_url: args.token_url.clone(),
                folder: args.folder.clone(),
                tags: args.tags.clone(),
                cloud_name: args.cloud_name.clone(),
                api_key: args.api_key.clone(),
                private: args.private,
                metadata: args
                    .metadata
                    .as_deref()
                    .and_then(MetadataPolicy::parse)
                    .unwrap_or_default(),
                on_duplicate: args
                    .on_duplicate
                    .as_deref()
                    .and_then(OnDuplicate::parse)
                    .unwrap_or_default(),
                resize: args.max_dimension.map(|max_dimension| Resize {
                    max_dimension,
                    quality: args.quality.unwrap_or(Resize::DEFAULT_QUALITY),
                }),
            };
            let name = spec.name.trim();
            let existed = ctx.config.profile(name).is_some();
            let config = config_edit::upsert_profile(&ctx.paths, &spec)?;
            let profile = ctx.profile_in(&config, name)?;
            Ok(json!({
                "profile": status_json(ctx, profile),
                "created": !existed,
                "config": ctx.paths.config_file,
            }))
        }
        ProfileCommand::Remove { name, with_key } => {
            let profile = ctx.profile(name)?.clone();
            config_edit::remove_profile(&ctx.paths, name)?;
            let key_deleted = if *with_key {
                ctx.secrets.delete(&profile)?
            } else {
                false
            };
            Ok(json!({ "profile": name, "removed": true, "key_deleted": key_deleted }))
        }
    }
}

/// A profile's status; with no reachable keychain its key source is `unavailable`, with the
/// reason, rather than failing a command that does not need the key.
fn status_json(ctx: &Context, profile: &Profile) -> Value {
    match ctx.secrets.status(profile) {
        Ok(source) => json!(ProfileStatus::new(profile, source)),
        Err(err) => {
            let mut value = json!(ProfileStatus::new(profile, SecretSource::Missing));
            value["secret"] = json!("unavailable");
            value["secret_problem"] = json!(err.to_string());
            value
        }
    }
}
