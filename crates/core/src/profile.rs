//! What a profile contributes to a request, and the public view of a profile that front ends
//! show. Both the CLI and the app build upload parameters here, so they sign the same thing.

use serde::Serialize;

use crate::config::{ImageKitAuth, Profile, Provider, ProviderKind};
use crate::secrets::SecretSource;
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
    pub metadata: crate::metadata::MetadataPolicy,
    pub on_duplicate: crate::config::OnDuplicate,
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
            metadata: profile.metadata,
            on_duplicate: profile.on_duplicate,
            tags: profile.tags.clone(),
            secret,
            is_default: profile.builtin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
