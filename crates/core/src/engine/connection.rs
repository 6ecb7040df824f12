//! The connection test behind Settings' "Test" button and `dropkey profile test`: one request
//! to the provider, signed with the profile's real key, for a file that does not exist. A "not
//! found" proves the address and the key together; a refusal carries the provider's reason.
//! Nothing is uploaded or changed at the provider.

use serde::Serialize;

use super::provider::{self, RemoteFile};
use crate::config::{ImageKitAuth, Profile, Provider};
use crate::secrets::Secrets;
use crate::sign::cloudinary::{DeliveryType, ResourceType};

/// The ids asked about: well-formed, so the provider looks them up instead of refusing the
/// request (ImageKit's file ids are 24 hex digits, as MongoDB's object ids), but never given to
/// an upload, so the answer is "not found".
pub const IMAGEKIT_PROBE_ID: &str = "000000000000000000000000";
pub const CLOUDINARY_PROBE_ID: &str = "dropkey-connection-test";

/// What the test found, in words the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionCheck {
    pub ok: bool,
    pub message: String,
}

impl ConnectionCheck {
    fn failed(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
        }
    }
}

/// Tests `profile` against its provider with its key from `secrets` (read on a blocking
/// thread: the keychain answers over D-Bus). Never fails: every problem is a `ConnectionCheck`
/// with `ok: false` and the reason, which never contains the key.
pub async fn check(
    http: &reqwest::Client,
    secrets: &Secrets,
    profile: &Profile,
) -> ConnectionCheck {
    if let Provider::ImageKit(ik) = &profile.provider {
        if ik.auth == ImageKitAuth::Remote {
            return ConnectionCheck::failed(
                "this profile gets its tokens from a token server and holds no key to test; upload a file to test it",
            );
        }
    }
    let (secrets, lookup) = (secrets.clone(), profile.clone());
    let secret = match tokio::task::spawn_blocking(move || secrets.get(&lookup)).await {
        Ok(Ok((secret, _))) => secret,
        Ok(Err(err)) => return ConnectionCheck::failed(err.to_string()),
        Err(err) => {
            return ConnectionCheck::failed(format!("the keychain lookup did not finish: {err}"))
        }
    };
    let probe = match &profile.provider {
        Provider::ImageKit(_) => IMAGEKIT_PROBE_ID,
        Provider::Cloudinary(_) => CLOUDINARY_PROBE_ID,
    };
    let (image, public) = (ResourceType::Image, DeliveryType::Upload);
    match provider::details(http, profile, &secret, probe, image, public).await {
        Ok(RemoteFile::Missing | RemoteFile::Present { .. }) => ConnectionCheck {
            ok: true,
            message: format!(
                "Connected: {} accepted the key",
                profile.provider.kind().display_name()
            ),
        },
        Err(failure) => ConnectionCheck::failed(failure.reason()),
    }
}
