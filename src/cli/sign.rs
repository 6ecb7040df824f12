//! `dropkey sign` and `dropkey private-url`: the signing core applied to a profile, with the
//! clock and the secret supplied here.

use clap::Args;
use serde_json::{json, Value};

use super::Context;
use dropkey_core::config::{ImageKitAuth, Provider};
use dropkey_core::engine::uploaded::{signed_link, CloudinaryKind, LinkTarget};
use dropkey_core::profile::{parse_params, upload_params};
use dropkey_core::sign::cloudinary::{DeliveryType, ResourceType};
use dropkey_core::sign::{cloudinary, imagekit};
use dropkey_core::unix_now;

use crate::Error;

/// Default lifetime of a V2 token: the upload-token guide's endpoint issues hour-long tokens, the most ImageKit's Upload API V2 guide
/// allows.
const V2_DEFAULT_EXPIRE_IN: i64 = 3600;
/// Default lifetime of V1 parameters: ImageKit's V1 client-side upload guide's SDKs use 30 minutes.
const V1_DEFAULT_EXPIRE_IN: i64 = 1800;
/// Default lifetime of a private link: the Cloudinary signed-upload demo's one-minute download URL.
const LINK_DEFAULT_EXPIRE_IN: i64 = 60;

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Profile name from the config (`sandbox` is built in).
    profile: String,
    /// Extra upload parameter to sign, e.g. --param fileName=photo.jpg (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// ImageKit: seconds the token stays valid (V2 default 3600, at most 3600; V1 default 1800,
    /// less than 3600).
    #[arg(
        long,
        value_name = "SECS",
        conflicts_with = "expire",
        allow_negative_numbers = true
    )]
    expire_in: Option<i64>,
    /// ImageKit V1: the one-time token (default: a fresh UUID v4).
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// ImageKit: absolute expiry as a Unix time, instead of --expire-in.
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    expire: Option<i64>,
    /// The time to sign at as a Unix time (V2 `iat`, Cloudinary `timestamp`; default: now).
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    timestamp: Option<i64>,
}

#[derive(Debug, Args)]
pub struct PrivateUrlArgs {
    /// Profile name from the config.
    profile: String,
    /// ImageKit: the file path (or its URL); Cloudinary: the public id.
    id: String,
    /// Seconds the link stays valid (default 60).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    expire_in: Option<i64>,
    /// Cloudinary: the file format to deliver, e.g. pdf or jpg.
    #[arg(long, value_name = "F")]
    format: Option<String>,
    /// Cloudinary: image, video or raw (default image).
    #[arg(long, value_name = "T")]
    resource_type: Option<String>,
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

fn positive(name: &str, value: Option<i64>, default: i64) -> Result<i64, Error> {
    match value {
        None => Ok(default),
        Some(v) if v > 0 => Ok(v),
        Some(v) => Err(usage(format!(
            "{name} must be a positive number of seconds, got {v}"
        ))),
    }
}

fn timestamp(value: Option<i64>) -> Result<i64, Error> {
    match value {
        Some(t) if t <= 0 => Err(usage(format!(
            "--timestamp must be a positive Unix time in seconds, got {t}"
        ))),
        Some(t) => Ok(t),
        None => Ok(unix_now()),
    }
}

pub fn sign(ctx: &Context, args: &SignArgs) -> Result<Value, Error> {
    let profile = ctx.profile(&args.profile)?;
    let overrides = parse_params(&args.params)?;
    let now = timestamp(args.timestamp)?;
    match &profile.provider {
        Provider::ImageKit(ik) => match ik.auth {
            ImageKitAuth::V2 => {
                if args.token.is_some() {
                    return Err(usage("--token applies to ImageKit V1 profiles only: a V2 token is the JWT itself; drop --token"));
                }
                let exp = match args.expire {
                    Some(exp) => exp,
                    None => now + positive("--expire-in", args.expire_in, V2_DEFAULT_EXPIRE_IN)?,
                };
                let params = upload_params(profile, &overrides)?;
                let (secret, _) = ctx.secrets.get(profile)?;
                let token = imagekit::sign_v2(&secret, &ik.public_key, &params, now, exp)?;
                Ok(json!({
                    "token": token,
                    "expire": exp,
                    "publicKey": ik.public_key,
                    "urlEndpoint": ik.url_endpoint.as_str().trim_end_matches('/'),
                    "uploadUrl": ik.upload_url.as_str(),
                }))
            }
            ImageKitAuth::V1 => {
                if !args.params.is_empty() {
                    return Err(usage("--param does not apply to ImageKit V1 profiles: a V1 signature covers only token and expire; drop --param"));
                }
                let expire = match args.expire {
                    Some(expire) => expire,
                    None => now + positive("--expire-in", args.expire_in, V1_DEFAULT_EXPIRE_IN)?,
                };
                let token = match &args.token {
                    Some(token) => token.clone(),
                    None => uuid::Uuid::new_v4().to_string(),
                };
                let (secret, _) = ctx.secrets.get(profile)?;
                let auth = imagekit::sign_v1(&secret, &token, expire, now)?;
                Ok(json!({
                    "token": auth.token,
                    "expire": auth.expire,
                    "signature": auth.signature,
                }))
            }
            ImageKitAuth::Remote => Err(usage(format!(
                "profile `{}` uses auth = \"remote\": its tokens come from its token_url, and this machine holds no private key to sign with; run `dropkey sign` where the key is, or use a v2/v1 profile",
                profile.name
            ))),
        },
        Provider::Cloudinary(cl) => {
            for (flag, given) in [
                ("--token", args.token.is_some()),
                ("--expire", args.expire.is_some()),
                ("--expire-in", args.expire_in.is_some()),
            ] {
                if given {
                    return Err(usage(format!("{flag} applies to ImageKit profiles only: a Cloudinary signature is valid for an hour from --timestamp; drop {flag}")));
                }
            }
            let mut params = upload_params(profile, &overrides)?;
            // `signature_algorithm` chooses the hash (as in the SDKs' config); it is not an
            // upload parameter, so it is neither signed nor sent.
            let algorithm = match params.remove("signature_algorithm") {
                Some(value) => cloudinary::Algorithm::parse(&value)?,
                None => cloudinary::Algorithm::Sha1,
            };
            params.insert("timestamp".into(), now.to_string());
            let (secret, _) = ctx.secrets.get(profile)?;
            let signature = cloudinary::sign(&params, &secret, algorithm);
            let mut out = serde_json::Map::new();
            for (key, value) in params {
                out.insert(key, Value::String(value));
            }
            out.insert("timestamp".into(), json!(now));
            out.insert("signature".into(), json!(signature));
            out.insert("api_key".into(), json!(cl.api_key));
            out.insert("cloud_name".into(), json!(cl.cloud_name));
            Ok(Value::Object(out))
        }
    }
}

pub fn private_url(ctx: &Context, args: &PrivateUrlArgs) -> Result<Value, Error> {
    let profile = ctx.profile(&args.profile)?;
    let expire_in = positive("--expire-in", args.expire_in, LINK_DEFAULT_EXPIRE_IN)?;
    let now = unix_now();
    if args.id.trim().is_empty() {
        return Err(usage(
            "the file id is empty: pass the ImageKit file path or the Cloudinary public id",
        ));
    }
    let target = match &profile.provider {
        Provider::ImageKit(_) => {
            for (flag, given) in [
                ("--format", args.format.is_some()),
                ("--resource-type", args.resource_type.is_some()),
            ] {
                if given {
                    return Err(usage(format!("{flag} applies to Cloudinary profiles only; for ImageKit pass the file path; drop {flag}")));
                }
            }
            LinkTarget {
                id: args.id.clone(),
                format: None,
                kind: CloudinaryKind::default(),
            }
        }
        Provider::Cloudinary(_) => {
            let resource_type = match args.resource_type.as_deref() {
                None => ResourceType::Image,
                Some(text) => ResourceType::parse(text).ok_or_else(|| {
                    usage(format!(
                        "--resource-type `{text}` is not one of image, video, raw"
                    ))
                })?,
            };
            if let Some(format) = &args.format {
                if format.is_empty() || !format.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(usage(format!(
                        "--format `{format}` is not a file format: use an extension such as pdf or jpg"
                    )));
                }
            }
            LinkTarget {
                id: args.id.clone(),
                format: args.format.clone(),
                kind: CloudinaryKind {
                    resource_type,
                    delivery_type: DeliveryType::Private,
                },
            }
        }
    };
    let (secret, _) = ctx.secrets.get(profile)?;
    let url = signed_link(profile, &target, &secret, now, now + expire_in)?;
    Ok(json!({ "url": url }))
}
