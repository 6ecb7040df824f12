//! Cloudinary request signing, as the official SDKs do it: the parameters (minus the ones
//! Cloudinary never signs) become `key=value` pairs, list values comma-joined, sorted and joined
//! with `&`; the API secret is appended and the whole hashed with SHA-1, or SHA-256 when the
//! account uses it. Private download URLs (the Cloudinary signed-upload demo's one-minute links) are signed the same way.

use secrecy::{ExposeSecret, SecretString};
use sha1::Digest as _;

use super::{Params, SignError};

/// Keys Cloudinary never includes in the signature (its docs: "all parameters except file,
/// cloud_name, resource_type and api_key"), plus the signature itself.
pub const UNSIGNED_KEYS: &[&str] = &[
    "file",
    "cloud_name",
    "resource_type",
    "api_key",
    "signature",
];

/// Cloudinary's resource types: which of its APIs and URL paths an asset lives under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    #[default]
    Image,
    Video,
    /// Anything else (documents, archives): the public id keeps its extension.
    Raw,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Raw => "raw",
        }
    }

    /// `image`, `video` or `raw`, as URLs, answers and flags spell them.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "raw" => Some(Self::Raw),
            _ => None,
        }
    }
}

impl std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cloudinary's delivery types for stored uploads (its `type`): who may fetch the asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryType {
    /// Public: anyone with the URL.
    #[default]
    Upload,
    /// Only through a signed download link.
    Private,
    /// Only through a signed delivery URL.
    Authenticated,
}

impl DeliveryType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Private => "private",
            Self::Authenticated => "authenticated",
        }
    }

    /// `upload`, `private` or `authenticated`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "upload" => Some(Self::Upload),
            "private" => Some(Self::Private),
            "authenticated" => Some(Self::Authenticated),
            _ => None,
        }
    }
}

impl std::fmt::Display for DeliveryType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// JavaScript's `encodeURIComponent` set, which the Node SDK's query strings use.
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The hash behind a signature. Cloudinary accounts use SHA-1 unless switched to SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    Sha1,
    Sha256,
}

impl Algorithm {
    pub fn parse(value: &str) -> Result<Self, SignError> {
        match value {
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            _ => Err(SignError::InvalidInput {
                what: "signature_algorithm",
                value: value.to_owned(),
                why: "use sha1 or sha256",
            }),
        }
    }
}

/// The exact string whose hash (with the secret appended) is the signature.
pub fn string_to_sign(params: &Params) -> String {
    // `Params` is sorted by key, which is the SDKs' order for Cloudinary's parameter names
    // (lowercase letters and '_'). Empty values are left out, as the SDKs drop blanks, and `&`
    // inside a value is escaped (the SDKs' signature version 2) so it cannot forge a new pair.
    params
        .iter()
        .filter(|(key, value)| !UNSIGNED_KEYS.contains(&key.as_str()) && !value.is_empty())
        .map(|(key, value)| format!("{key}={}", value.replace('&', "%26")))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lowercase hex signature of `params` with `api_secret`.
pub fn sign(params: &Params, api_secret: &SecretString, algorithm: Algorithm) -> String {
    // Hashed in two parts: a concatenated copy would leave the secret in a freed buffer.
    let input = string_to_sign(params);
    let secret = api_secret.expose_secret().as_bytes();
    match algorithm {
        Algorithm::Sha1 => hex::encode(
            sha1::Sha1::new()
                .chain_update(&input)
                .chain_update(secret)
                .finalize(),
        ),
        Algorithm::Sha256 => hex::encode(
            sha2::Sha256::new()
                .chain_update(&input)
                .chain_update(secret)
                .finalize(),
        ),
    }
}

/// What a private download link is for.
#[derive(Debug, Clone)]
pub struct DownloadRequest<'a> {
    pub api_url: &'a str,
    pub cloud_name: &'a str,
    pub api_key: &'a str,
    pub public_id: &'a str,
    pub format: Option<&'a str>,
    pub resource_type: ResourceType,
    pub delivery_type: DeliveryType,
    pub timestamp: i64,
    pub expires_at: i64,
    /// `Some(false)` is still sent (and signed), as the SDK does.
    pub attachment: Option<bool>,
}

/// A signed link to Cloudinary's private download endpoint that stops working at `expires_at`.
pub fn private_download_url(
    request: &DownloadRequest<'_>,
    api_secret: &SecretString,
    algorithm: Algorithm,
) -> Result<String, SignError> {
    if request.public_id.is_empty() {
        return Err(SignError::InvalidInput {
            what: "public id",
            value: String::new(),
            why: "name the asset, e.g. kyc/1/passport",
        });
    }
    if request.expires_at <= request.timestamp {
        return Err(SignError::ExpireNotAfterNow {
            expire: request.expires_at,
            now: request.timestamp,
        });
    }
    // Insertion order is the query order the Node SDK produces.
    let mut ordered: Vec<(&str, String)> = vec![
        ("timestamp", request.timestamp.to_string()),
        ("public_id", request.public_id.to_owned()),
    ];
    if let Some(format) = request.format.filter(|f| !f.is_empty()) {
        ordered.push(("format", format.to_owned()));
    }
    ordered.push(("type", request.delivery_type.as_str().to_owned()));
    if let Some(attachment) = request.attachment {
        ordered.push(("attachment", attachment.to_string()));
    }
    ordered.push(("expires_at", request.expires_at.to_string()));
    let params: Params = ordered
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let signature = sign(&params, api_secret, algorithm);
    ordered.push(("signature", signature));
    ordered.push(("api_key", request.api_key.to_owned()));
    let query = ordered
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, URI_COMPONENT)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    Ok(format!(
        "{}/v1_1/{}/{}/download?{query}",
        request.api_url.trim_end_matches('/'),
        request.cloud_name,
        request.resource_type,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn string_to_sign_drops_unsigned_and_empty_and_sorts_pairs() {
        let p = params(&[
            ("timestamp", "1315060510"),
            ("public_id", "sample"),
            ("file", "x"),
            ("api_key", "k"),
            ("cloud_name", "c"),
            ("resource_type", "image"),
            ("folder", ""),
            ("notes", "a&b"),
        ]);
        assert_eq!(
            string_to_sign(&p),
            "notes=a%26b&public_id=sample&timestamp=1315060510"
        );
    }

    #[test]
    fn cloudinary_documented_example() {
        // Cloudinary's "Generating authentication signatures" page: public_id=sample_image,
        // timestamp=1315060510, secret abcd -> this SHA-1.
        let p = params(&[
            ("eager", "w_400,h_300,c_pad|w_260,h_200,c_crop"),
            ("public_id", "sample_image"),
            ("timestamp", "1315060510"),
        ]);
        let secret = SecretString::from("abcd");
        assert_eq!(
            sign(&p, &secret, Algorithm::Sha1),
            "bfd09f95f331f558cbd1320e67aa8d488770583e"
        );
    }

    #[test]
    fn kinds_read_back_as_cloudinary_spells_them_and_nothing_else() {
        for kind in [ResourceType::Image, ResourceType::Video, ResourceType::Raw] {
            assert_eq!(ResourceType::parse(kind.as_str()), Some(kind));
        }
        for kind in [
            DeliveryType::Upload,
            DeliveryType::Private,
            DeliveryType::Authenticated,
        ] {
            assert_eq!(DeliveryType::parse(kind.as_str()), Some(kind));
        }
        for bad in ["", "Image", "auto", "image/", "fetch"] {
            assert_eq!(ResourceType::parse(bad), None, "{bad}");
            assert_eq!(DeliveryType::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn download_url_refuses_empty_ids_and_past_expiry() {
        let secret = SecretString::from("s");
        let mut req = DownloadRequest {
            api_url: "https://api.cloudinary.com",
            cloud_name: "demo",
            api_key: "1",
            public_id: "",
            format: None,
            resource_type: ResourceType::Image,
            delivery_type: DeliveryType::Private,
            timestamp: 10,
            expires_at: 70,
            attachment: None,
        };
        assert!(private_download_url(&req, &secret, Algorithm::Sha1).is_err());
        req.public_id = "a/b";
        req.expires_at = 10;
        assert!(private_download_url(&req, &secret, Algorithm::Sha1).is_err());
    }
}
