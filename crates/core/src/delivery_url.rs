//! Cloudinary delivery URLs (`https://res.cloudinary.com/{cloud}/{type}/{delivery}/...`): which
//! asset one names, resolved strictly against a profile's cloud, for `dropkey delete` and the
//! token server's `DELETE /delete-files` alike. A URL that does not name an asset of the
//! profile's own cloud, in exactly Cloudinary's form, names nothing.

use crate::config::{Profile, Provider};
use crate::sign::cloudinary::{DeliveryType, ResourceType};

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

/// Resolves a Cloudinary delivery URL strictly (after the Cloudinary signed-upload demo): https on
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
}
