//! ImageKit's three signing schemes:
//! - Upload API V2 (ImageKit's Upload API V2 guide): an HS256 JWT whose header carries the public key as `kid` and whose
//!   payload holds every upload parameter as a string, plus integer `iat` and `exp`.
//! - Upload API V1 (ImageKit's V1 client-side upload guide): `signature = hex(HMAC-SHA1(private key, token + expire))`.
//! - Signed delivery URLs: `ik-t` (expiry) and `ik-s = hex(HMAC-SHA1(private key,
//!   <url without the endpoint> + <expiry>))`, as the official SDKs build them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::{hmac_sha1_hex, hmac_sha256, Params, SignError};

/// ImageKit's Upload API V2 guide: "The expiration time `exp` must not exceed the issued time `iat` by more than 3600
/// seconds."
pub const V2_MAX_LIFETIME: i64 = 3600;
/// ImageKit's V1 client-side upload guide: `expire` "must be a Unix time in less than 1 hour into the future".
pub const V1_MAX_LIFETIME: i64 = 3600;

/// Parameters that are part of the upload request but never of the JWT payload (ImageKit's Upload API V2 guide), or
/// that the JWT itself owns.
const V2_RESERVED: &[(&str, &str)] = &[
    ("file", "it is the file itself, never signed"),
    ("token", "it is the JWT itself"),
    ("iat", "the issue time is set from --timestamp"),
    ("exp", "the expiry is set from --expire or --expire-in"),
];

#[derive(Serialize)]
struct JwtHeader<'a> {
    // Field order is the wire order: it matches ImageKit's Upload API V2 guide and the `jsonwebtoken` npm package the
    // docs use, so tokens are byte-identical to the ones the official examples produce.
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct JwtPayload<'a> {
    #[serde(flatten)]
    params: &'a Params,
    iat: i64,
    exp: i64,
}

/// Signs an Upload API V2 token for exactly `params` (every form field the upload will send
/// besides `file` and `token`).
pub fn sign_v2(
    private_key: &SecretString,
    public_key: &str,
    params: &Params,
    iat: i64,
    exp: i64,
) -> Result<String, SignError> {
    if let Some((name, why)) = V2_RESERVED
        .iter()
        .find(|(name, _)| params.contains_key(*name))
    {
        return Err(SignError::ReservedParam {
            name: (*name).to_owned(),
            why,
        });
    }
    if exp <= iat {
        return Err(SignError::ExpireNotAfterNow {
            expire: exp,
            now: iat,
        });
    }
    if exp - iat > V2_MAX_LIFETIME {
        return Err(SignError::ExpireTooFar {
            scheme: "ImageKit Upload API V2",
            lifetime: exp - iat,
            max: V2_MAX_LIFETIME,
        });
    }
    let header = JwtHeader {
        alg: "HS256",
        typ: "JWT",
        kid: public_key,
    };
    let payload = JwtPayload { params, iat, exp };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json_bytes(&header)),
        URL_SAFE_NO_PAD.encode(json_bytes(&payload)),
    );
    let signature = hmac_sha256(
        private_key.expose_secret().as_bytes(),
        signing_input.as_bytes(),
    );
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising string maps and integers into a Vec cannot fail.
    serde_json::to_vec(value).unwrap_or_else(|_| unreachable!("plain JSON values serialise"))
}

/// The V1 authentication parameters of ImageKit's V1 client-side upload guide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V1Auth {
    pub token: String,
    pub expire: i64,
    pub signature: String,
}

/// `signature = lowercase hex HMAC-SHA1(private key, token + expire)`. `now` is only used to
/// enforce ImageKit's V1 client-side upload guide's "less than 1 hour into the future".
pub fn sign_v1(
    private_key: &SecretString,
    token: &str,
    expire: i64,
    now: i64,
) -> Result<V1Auth, SignError> {
    if token.is_empty() {
        return Err(SignError::EmptyToken);
    }
    if expire - now >= V1_MAX_LIFETIME {
        return Err(SignError::ExpireTooFar {
            scheme: "ImageKit Upload API V1 (expire must be less than 1 hour ahead)",
            lifetime: expire - now,
            max: V1_MAX_LIFETIME - 1,
        });
    }
    let signature = hmac_sha1_hex(
        private_key.expose_secret().as_bytes(),
        format!("{token}{expire}").as_bytes(),
    );
    Ok(V1Auth {
        token: token.to_owned(),
        expire,
        signature,
    })
}

/// The expiry the SDKs sign when a URL should never expire.
pub const NEVER_EXPIRES: i64 = 9_999_999_999;

/// A signed delivery URL for `path` (a file path such as `/folder/a.jpg`, or a full URL under
/// `url_endpoint`), with an optional transformation (`w-800,f-auto`) as a `tr:` path segment.
/// With `expire_at` the link stops working then (`ik-t`); without, it never expires.
///
/// Unlike the Node SDK, which joins endpoint and path as text and so signs `//` when both carry
/// a slash, the endpoint and the path are joined with exactly one `/`.
pub fn signed_url(
    private_key: &SecretString,
    url_endpoint: &str,
    path: &str,
    transformation: Option<&str>,
    expire_at: Option<i64>,
) -> Result<String, SignError> {
    let endpoint = url_endpoint.trim_end_matches('/');
    let relative = if path.contains("://") {
        path.strip_prefix(endpoint)
            .ok_or_else(|| SignError::InvalidInput {
                what: "file path",
                value: path.to_owned(),
                why: "a full URL must start with the profile's url_endpoint; or pass the file path",
            })?
    } else {
        path
    };
    // Browsers' URL parsers (and so the SDK) turn `\` into `/` and drop tabs and newlines.
    let relative: String = relative
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect();
    let relative = relative.trim_start_matches('/');
    if relative.is_empty() {
        return Err(SignError::InvalidInput {
            what: "file path",
            value: path.to_owned(),
            why: "name a file, e.g. /uploads/photo.jpg",
        });
    }
    let mut signed_part = String::new();
    if let Some(tr) = transformation.filter(|t| !t.is_empty()) {
        signed_part.push_str("tr:");
        signed_part.push_str(tr);
        signed_part.push('/');
    }
    signed_part.push_str(&encode_path(relative));
    let expiry = expire_at.unwrap_or(NEVER_EXPIRES);
    let signature = hmac_sha1_hex(
        private_key.expose_secret().as_bytes(),
        format!("{signed_part}{expiry}").as_bytes(),
    );
    Ok(match expire_at {
        Some(t) => format!("{endpoint}/{signed_part}?ik-t={t}&ik-s={signature}"),
        None => format!("{endpoint}/{signed_part}?ik-s={signature}"),
    })
}

/// The WHATWG "path percent-encode set", which `new URL()` (and so the Node SDK) applies.
pub const WHATWG_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Percent-encodes a path the way a WHATWG URL serialiser does, keeping `/` separators.
fn encode_path(path: &str) -> String {
    percent_encoding::utf8_percent_encode(path, WHATWG_PATH).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretString {
        SecretString::from("private_test_key")
    }

    #[test]
    fn v2_header_and_payload_are_doc_001_shaped() {
        let mut params = Params::new();
        params.insert("fileName".into(), "dress.jpg".into());
        params.insert("useUniqueFileName".into(), "false".into());
        let token = sign_v2(&key(), "public_k", &params, 1714035985, 1714039585).unwrap();
        let parts: Vec<_> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
        assert_eq!(
            std::str::from_utf8(&header).unwrap(),
            r#"{"alg":"HS256","typ":"JWT","kid":"public_k"}"#
        );
        let payload = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        assert_eq!(
            std::str::from_utf8(&payload).unwrap(),
            r#"{"fileName":"dress.jpg","useUniqueFileName":"false","iat":1714035985,"exp":1714039585}"#
        );
    }

    #[test]
    fn v2_refuses_lifetimes_over_an_hour_and_reserved_names() {
        let params = Params::new();
        assert!(sign_v2(&key(), "p", &params, 100, 100 + 3600).is_ok());
        assert!(matches!(
            sign_v2(&key(), "p", &params, 100, 100 + 3601),
            Err(SignError::ExpireTooFar { .. })
        ));
        assert!(matches!(
            sign_v2(&key(), "p", &params, 100, 100),
            Err(SignError::ExpireNotAfterNow { .. })
        ));
        let mut bad = Params::new();
        bad.insert("token".into(), "x".into());
        assert!(matches!(
            sign_v2(&key(), "p", &bad, 1, 2),
            Err(SignError::ReservedParam { .. })
        ));
    }

    #[test]
    fn v1_matches_the_doc_003_formula() {
        let auth = sign_v1(&key(), "tok", 1_700_000_000, 1_700_000_000 - 60).unwrap();
        assert_eq!(
            auth.signature,
            hmac_sha1_hex(b"private_test_key", b"tok1700000000")
        );
        assert!(sign_v1(&key(), "tok", 3600, 0).is_err());
        assert!(sign_v1(&key(), "tok", 3599, 0).is_ok());
        assert_eq!(sign_v1(&key(), "", 10, 0), Err(SignError::EmptyToken));
    }

    #[test]
    fn signed_url_accepts_paths_and_endpoint_urls_alike() {
        let a = signed_url(
            &key(),
            "https://ik.imagekit.io/demo/",
            "/a b/c.jpg",
            None,
            Some(99),
        )
        .unwrap();
        let b = signed_url(
            &key(),
            "https://ik.imagekit.io/demo",
            "https://ik.imagekit.io/demo/a b/c.jpg",
            None,
            Some(99),
        )
        .unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("https://ik.imagekit.io/demo/a%20b/c.jpg?ik-t=99&ik-s="));
        assert!(signed_url(
            &key(),
            "https://x.io/e",
            "https://other.io/a.jpg",
            None,
            Some(9)
        )
        .is_err());
        assert!(signed_url(&key(), "https://x.io/e", "/", None, Some(9)).is_err());
    }
}
