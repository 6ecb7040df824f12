//! What a profile contributes to a request, and the public view of a profile that front ends
//! show. Both the CLI and the app build upload parameters here, so they sign the same thing.

use serde::Serialize;

use crate::config::{ImageKitAuth, Profile, Provider, ProviderKind};
use crate::secrets::SecretSource;
use crate::sign::cloudinary::{DeliveryType, ResourceType};
use crate::sign::Params;

/// A user-supplied `NAME=VALUE` parameter that failed validation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamError {
    #[error("--param `{0}` has no `=`: write it as NAME=VALUE, e.g. --param fileName=photo.jpg")]
    NoEquals(String),
    #[error("--param `{0}` has an invalid name: names are letters, digits and '_' and start with a letter")]
    BadName(String),
    #[error("--param `{0}` is given twice: give each parameter once")]
    Duplicate(String),
    #[error("--param `{name}` cannot be set here: {why}")]
    Reserved { name: String, why: &'static str },
    #[error("--param `{name}={value}` must be true or false")]
    NotBool { name: String, value: String },
}

/// Parses `NAME=VALUE` strings; the value may be empty or contain further `=`.
pub fn parse_params(raw: &[String]) -> Result<Params, ParamError> {
    let mut params = Params::new();
    for item in raw {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| ParamError::NoEquals(item.clone()))?;
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ParamError::BadName(name.to_owned()));
        }
        if params.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(ParamError::Duplicate(name.to_owned()));
        }
    }
    Ok(params)
}

/// ImageKit upload parameters that are booleans on the wire ("true"/"false").
const IMAGEKIT_BOOLEANS: &[&str] = &[
    "useUniqueFileName",
    "isPrivateFile",
    "isPublished",
    "overwriteFile",
    "overwriteAITags",
    "overwriteTags",
    "overwriteCustomMetadata",
];

/// Names that the signing scheme owns and a user may not set.
fn reserved(provider: &Provider, name: &str) -> Option<&'static str> {
    match provider {
        Provider::ImageKit(_) => match name {
            "file" => Some("it is the file itself"),
            "token" | "signature" | "expire" => Some("Dropkey signs every upload itself"),
            "iat" | "exp" => Some("the token's times come from --timestamp and --expire-in"),
            "publicKey" => Some("it comes from the profile's public_key"),
            _ => None,
        },
        Provider::Cloudinary(_) => match name {
            "file" => Some("it is the file itself"),
            "signature" | "api_key" | "timestamp" => Some("Dropkey signs every upload itself"),
            "cloud_name" | "resource_type" => {
                Some("it comes from the profile and the URL, not the signature")
            }
            _ => None,
        },
    }
}

/// The parameters an upload with `profile` signs and sends: the profile's defaults (folder,
/// tags, useUniqueFileName / type=private) with `overrides` on top.
pub fn upload_params(profile: &Profile, overrides: &Params) -> Result<Params, ParamError> {
    let mut params = Params::new();
    match &profile.provider {
        Provider::ImageKit(ik) => {
            if let Some(folder) = &profile.folder {
                params.insert("folder".into(), folder.clone());
            }
            if !profile.tags.is_empty() {
                params.insert("tags".into(), profile.tags.join(","));
            }
            if let Some(unique) = ik.use_unique_file_name {
                params.insert("useUniqueFileName".into(), unique.to_string());
            }
        }
        Provider::Cloudinary(cl) => {
            if let Some(folder) = &profile.folder {
                params.insert("folder".into(), folder.clone());
            }
            if !profile.tags.is_empty() {
                params.insert("tags".into(), profile.tags.join(","));
            }
            if cl.private {
                params.insert("type".into(), "private".into());
            }
        }
    }
    for (name, value) in overrides {
        if let Some(why) = reserved(&profile.provider, name) {
            return Err(ParamError::Reserved {
                name: name.clone(),
                why,
            });
        }
        if matches!(profile.provider, Provider::ImageKit(_))
            && IMAGEKIT_BOOLEANS.contains(&name.as_str())
            && value != "true"
            && value != "false"
        {
            return Err(ParamError::NotBool {
                name: name.clone(),
                value: value.clone(),
            });
        }
        params.insert(name.clone(), value.clone());
    }
    Ok(params)
}

/// A Cloudinary asset named by one of its delivery URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudinaryAsset {
    pub public_id: String,
    pub resource_type: ResourceType,
    pub delivery_type: DeliveryType,
}

/// Why a URL does not name an asset of the profile's cloud.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct DeliveryUrlError(String);

/// Resolves a Cloudinary delivery URL strictly (after doc 004): https on
/// `res.cloudinary.com` (or, for a local or self-hosted `api_url` such as the sandbox, the same
/// scheme, host and port as `api_url` under `/res/`), then
/// `/{cloud}/{image|video|raw}/{upload|private|authenticated}/[v<digits>/]<public id>[.<ext>]`,
/// and the profile's own cloud. Shared by `dropkey delete` and `dropkey serve`'s
/// `DELETE /delete-files`.
pub fn cloudinary_asset(
    target: &str,
    profile: &Profile,
) -> Result<CloudinaryAsset, DeliveryUrlError> {
    let err = |m: String| DeliveryUrlError(m);
    let Provider::Cloudinary(cl) = &profile.provider else {
        return Err(err("not a Cloudinary profile".into()));
    };
    // URL parsing resolves `.` and `..` segments (`%2e` included), so `upload/v1/../x` would
    // quietly name another asset: refuse them in the text as given.
    let raw_path = target
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    if raw_path.split('/').skip(1).any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        decoded == "." || decoded == ".."
    }) {
        return Err(err("the URL has '.' or '..' path segments".into()));
    }
    let url = url::Url::parse(target).map_err(|_| err(format!("`{target}` is not a valid URL")))?;
    let api = &cl.api_url;
    let official = api.host_str() == Some("api.cloudinary.com");
    let rest = if official {
        if url.scheme() != "https" || url.host_str() != Some("res.cloudinary.com") {
            return Err(err(
                "a Cloudinary URL must be https://res.cloudinary.com/...".into(),
            ));
        }
        url.path().trim_start_matches('/').to_owned()
    } else {
        // A local or self-hosted endpoint (the sandbox): same scheme, host and port as api_url.
        if url.scheme() != api.scheme()
            || url.host_str() != api.host_str()
            || url.port_or_known_default() != api.port_or_known_default()
        {
            return Err(err(format!(
                "the URL must be on this profile's delivery host ({})",
                api.origin().ascii_serialization()
            )));
        }
        url.path()
            .trim_start_matches('/')
            .strip_prefix("res/")
            .ok_or_else(|| err("the URL is not a delivery URL (/res/...)".into()))?
            .to_owned()
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("a delivery URL carries no user name or password".into()));
    }
    let decoded = percent_encoding::percent_decode_str(&rest)
        .decode_utf8_lossy()
        .into_owned();
    let mut parts = decoded.splitn(4, '/');
    let (cloud, resource_type, delivery, tail) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if cloud != cl.cloud_name {
        return Err(err(format!(
            "the URL is for cloud `{cloud}`, not this profile's `{}`",
            cl.cloud_name
        )));
    }
    let Some(resource_type) = ResourceType::parse(resource_type) else {
        return Err(err(format!(
            "resource type `{resource_type}` is not image, video or raw"
        )));
    };
    let Some(delivery_type) = DeliveryType::parse(delivery) else {
        return Err(err(format!(
            "delivery type `{delivery}` is not upload, private or authenticated"
        )));
    };
    let tail = match tail.split_once('/') {
        Some((version, rest))
            if version.len() > 1
                && version.starts_with('v')
                && version[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => tail,
    };
    // Raw files keep their extension in the public id; images and videos do not.
    let public_id = if resource_type == ResourceType::Raw {
        tail.to_owned()
    } else {
        match tail.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() && !ext.contains('/') => stem.to_owned(),
            _ => tail.to_owned(),
        }
    };
    if public_id.is_empty()
        || public_id.chars().any(char::is_control)
        || public_id
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(err("the URL has no valid public id".into()));
    }
    Ok(CloudinaryAsset {
        public_id,
        resource_type,
        delivery_type,
    })
}

/// A profile as a front end shows it: where uploads go and whether a secret is set. It has no
/// field that could hold the secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProfileStatus {
    pub name: String,
    pub provider: ProviderKind,
    /// ImageKit's scheme; none for Cloudinary.
    pub auth: Option<ImageKitAuth>,
    /// The URL endpoint (ImageKit) or cloud name (Cloudinary).
    pub destination: String,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub secret: SecretSource,
    /// The built-in sandbox profile, the destination of a fresh install.
    pub is_default: bool,
}

impl ProfileStatus {
    pub fn new(profile: &Profile, secret: SecretSource) -> Self {
        let (auth, destination) = match &profile.provider {
            Provider::ImageKit(ik) => (Some(ik.auth), ik.url_endpoint.to_string()),
            Provider::Cloudinary(cl) => (None, cl.cloud_name.clone()),
        };
        Self {
            name: profile.name.clone(),
            provider: profile.provider.kind(),
            auth,
            destination,
            folder: profile.folder.clone(),
            tags: profile.tags.clone(),
            secret,
            is_default: profile.builtin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloudinary(api_url: &str) -> Profile {
        let text = format!(
            "[profiles.cl]\nprovider = \"cloudinary\"\ncloud_name = \"demo\"\napi_key = \"1\"\napi_url = \"{api_url}\"\n"
        );
        crate::config::Config::from_toml(&text, std::path::Path::new("c.toml"))
            .unwrap()
            .profile("cl")
            .unwrap()
            .clone()
    }

    #[test]
    fn cloudinary_urls_resolve_strictly() {
        let official = cloudinary("https://api.cloudinary.com");
        let asset = cloudinary_asset(
            "https://res.cloudinary.com/demo/image/upload/v123/kyc/1/passport.jpg",
            &official,
        )
        .unwrap();
        assert_eq!(asset.public_id, "kyc/1/passport");
        assert_eq!(asset.resource_type, ResourceType::Image);
        assert_eq!(asset.delivery_type, DeliveryType::Upload);
        let raw = cloudinary_asset(
            "https://res.cloudinary.com/demo/raw/private/a/b.pdf",
            &official,
        )
        .unwrap();
        assert_eq!(raw.public_id, "a/b.pdf");
        for bad in [
            "http://res.cloudinary.com/demo/image/upload/a.jpg",
            "https://evil.example/demo/image/upload/a.jpg",
            "https://res.cloudinary.com/other/image/upload/a.jpg",
            "https://res.cloudinary.com/demo/pdf/upload/a.jpg",
            "https://res.cloudinary.com/demo/image/fetch/a.jpg",
            "https://res.cloudinary.com/demo/image/upload/../a.jpg",
            "https://res.cloudinary.com/demo/image/upload/v1/../a.jpg",
            "https://res.cloudinary.com/demo/image/upload/v1/%2e%2e/a.jpg",
            "https://res.cloudinary.com/demo/image/upload/v1/./a.jpg",
            "https://user@res.cloudinary.com/demo/image/upload/a.jpg",
            "not a url",
        ] {
            assert!(cloudinary_asset(bad, &official).is_err(), "{bad}");
        }
        let local = cloudinary("http://127.0.0.1:7371");
        assert!(cloudinary_asset(
            "http://127.0.0.1:7371/res/demo/video/upload/v1/clip.mp4",
            &local
        )
        .is_ok());
        assert!(cloudinary_asset(
            "http://127.0.0.1:7372/res/demo/video/upload/v1/clip.mp4",
            &local
        )
        .is_err());
        assert!(cloudinary_asset(
            "https://127.0.0.1:7371/res/demo/video/upload/v1/clip.mp4",
            &local
        )
        .is_err());
    }

    #[test]
    fn params_parse_and_reject_bad_input() {
        let ok = parse_params(&["a=1".into(), "b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(ok["b"], "x=y");
        assert_eq!(ok["c"], "");
        assert_eq!(
            parse_params(&["novalue".into()]),
            Err(ParamError::NoEquals("novalue".into()))
        );
        assert!(matches!(
            parse_params(&["=1".into()]),
            Err(ParamError::BadName(_))
        ));
        assert!(matches!(
            parse_params(&["1a=1".into()]),
            Err(ParamError::BadName(_))
        ));
        assert!(matches!(
            parse_params(&["a=1".into(), "a=2".into()]),
            Err(ParamError::Duplicate(_))
        ));
    }
}
