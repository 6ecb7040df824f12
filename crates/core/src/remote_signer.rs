//! The client side of team mode: how an `auth = "remote"` profile gets an upload token from a
//! `dropkey serve` (or any server answering the upload-token guide's `GET /api/media/get-upload-token` with
//! `data.fields`). The profile's secret is the bearer token; it goes only into the
//! `Authorization` header and never into a message.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::sign::Params;

/// What the token server issued for one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteToken {
    /// The one-time JWT to send as the `token` form field.
    pub token: String,
    /// Unix time the token stops working.
    pub expire: i64,
    pub public_key: String,
    pub url_endpoint: String,
    /// Where to POST the upload.
    pub upload_url: Url,
    /// Every form field the upload must send besides `file` and `token`: exactly what the JWT
    /// signs.
    pub fields: Params,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteError {
    #[error("cannot reach the token server at {url}: {detail}; check the profile's token_url and that `dropkey serve` runs there")]
    Unreachable { url: String, detail: String },
    #[error("the token server at {url} refused the bearer token ({message}); store a valid one with `dropkey key set PROFILE` (PROFILE = this remote profile) or set DROPKEY_SECRET_<PROFILE>")]
    Unauthorized { url: String, message: String },
    #[error("the token server at {url} answered {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("the token server at {url} sent an answer Dropkey cannot use ({detail}); is token_url a `dropkey serve` /api/media/get-upload-token endpoint?")]
    BadAnswer { url: String, detail: String },
}

impl RemoteError {
    /// Worth another attempt: the server could not be reached, was busy (429) or failed (5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Unauthorized { .. } | Self::BadAnswer { .. } => false,
        }
    }

    /// When the server asked us to come back (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Asks `token_url` for a token that signs `params` (which must include `fileName`). Query
/// parameters already in `token_url` (say `?profile=ik`) are kept; `profile` adds one.
pub async fn fetch_upload_token(
    http: &reqwest::Client,
    token_url: &Url,
    bearer: &SecretString,
    profile: Option<&str>,
    params: &Params,
) -> Result<RemoteToken, RemoteError> {
    let mut url = token_url.clone();
    {
        let mut query = url.query_pairs_mut();
        if let Some(profile) = profile {
            query.append_pair("profile", profile);
        }
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    // Messages name the server without the query, which carries the file's name and metadata.
    let shown = {
        let mut u = token_url.clone();
        u.set_query(None);
        u.to_string()
    };
    let response = http
        .get(url)
        .bearer_auth(bearer.expose_secret())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|err| RemoteError::Unreachable {
            url: shown.clone(),
            detail: crate::engine::retry::error_chain(&err),
        })?;
    let status = response.status();
    let retry_after = crate::engine::retry::retry_after(response.headers(), "", crate::unix_now());
    let text =
        match crate::engine::provider::read_limited(response, crate::engine::provider::MAX_ANSWER)
            .await
        {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Err(_)) => {
                return Err(RemoteError::BadAnswer {
                    url: shown,
                    detail: "the answer is over 4 MiB".into(),
                })
            }
            Err(err) => {
                return Err(RemoteError::Unreachable {
                    url: shown,
                    detail: crate::engine::retry::error_chain(&err),
                })
            }
        };
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| text.chars().take(200).collect());
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RemoteError::Unauthorized {
                url: shown,
                message,
            });
        }
        return Err(RemoteError::Refused {
            url: shown,
            status: status.as_u16(),
            message,
            retry_after,
        });
    }
    parse(&body).map_err(|detail| RemoteError::BadAnswer { url: shown, detail })
}

fn parse(body: &Value) -> Result<RemoteToken, String> {
    let data = body.get("data").ok_or("no `data` object")?;
    let text = |key: &str| -> Result<String, String> {
        data.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("`data.{key}` is missing or not a string"))
    };
    let token = text("token")?;
    let expire = data
        .get("expire")
        .and_then(Value::as_i64)
        .ok_or("`data.expire` is missing or not an integer")?;
    let upload_url = Url::parse(&text("uploadUrl")?)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or("`data.uploadUrl` is not an http(s) URL")?;
    let Some(Value::Object(raw_fields)) = data.get("fields") else {
        return Err("no `data.fields` object (a server written as the upload-token guide shows does not say which form fields the token signs)".into());
    };
    let mut fields = Params::new();
    for (name, value) in raw_fields {
        let value = value
            .as_str()
            .ok_or_else(|| format!("`data.fields.{name}` is not a string"))?;
        if matches!(name.as_str(), "file" | "token") {
            return Err(format!("`data.fields` must not contain `{name}`"));
        }
        fields.insert(name.clone(), value.to_owned());
    }
    Ok(RemoteToken {
        token,
        expire,
        public_key: text("publicKey")?,
        url_endpoint: text("urlEndpoint")?,
        upload_url,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_envelope_and_refuses_incomplete_answers() {
        let body = json!({"status": 200, "success": true, "message": "ok", "data": {
            "token": "a.b.c", "expire": 5, "publicKey": "public_k",
            "urlEndpoint": "https://ik.imagekit.io/x", "uploadUrl": "https://upload.imagekit.io/api/v2/files/upload",
            "fields": {"fileName": "a.jpg", "folder": "/f"}}});
        let token = parse(&body).unwrap();
        assert_eq!(token.fields["folder"], "/f");
        assert_eq!(token.expire, 5);
        let mut no_fields = body.clone();
        no_fields["data"].as_object_mut().unwrap().remove("fields");
        assert!(parse(&no_fields).is_err());
        let mut bad = body.clone();
        bad["data"]["fields"]["token"] = json!("x");
        assert!(parse(&bad).is_err());
        let mut number = body;
        number["data"]["fields"]["n"] = json!(1);
        assert!(parse(&number).is_err());
    }

    #[test]
    fn retryable_statuses() {
        let refused = |status| RemoteError::Refused {
            url: "u".into(),
            status,
            message: "m".into(),
            retry_after: None,
        };
        assert!(refused(429).is_retryable());
        assert!(refused(503).is_retryable());
        assert!(!refused(403).is_retryable());
        assert!(!refused(422).is_retryable());
    }
}
