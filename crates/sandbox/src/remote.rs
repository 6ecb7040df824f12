//! `file` given as a URL: the provider fetches it (ImageKit: "the server must receive the
//! response headers within 8 seconds; otherwise the request fails with 400"; the same limit
//! serves for Cloudinary). The sandbox is a local tool, so it fetches only from this machine
//! (127.0.0.0/8, ::1, `localhost`), never through a proxy, following redirects only while they
//! stay on loopback; anything else gets a 400 in the provider's error shape that says so. The
//! body is streamed to the temp file under the upload size limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt as _;

use super::error::{ApiError, Flavor};
use super::form::{self, FileSink, FormLimits, ReceivedFile};

/// ImageKit's limit for the response headers, also applied to every wait for body bytes.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(8);
const MAX_REDIRECTS: usize = 5;

/// Whether `url` is http(s) on a loopback host.
pub(crate) fn is_loopback_url(url: &url::Url) -> bool {
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).to_canonical().is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn client(flavor: Flavor) -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let policy = reqwest::redirect::Policy::custom(|attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if is_loopback_url(attempt.url()) {
                    attempt.follow()
                } else {
                    attempt.error("a redirect left loopback")
                }
            });
            reqwest::Client::builder()
                // A proxy from the environment would take the request off this machine.
                .no_proxy()
                .redirect(policy)
                // `localhost` is this machine whatever the resolver says.
                .resolve(
                    "localhost",
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                )
                .connect_timeout(FETCH_TIMEOUT)
                .build()
                .map_err(|err| err.to_string())
        })
        .as_ref()
        .map_err(|err| ApiError::internal(flavor, "building the URL fetcher", err))
}

/// Fetches `file` given as a URL into a temp file, within `limits`.
pub(crate) async fn fetch_file(
    raw: &str,
    limits: FormLimits<'_>,
) -> Result<ReceivedFile, ApiError> {
    let flavor = limits.flavor;
    let bad_request = |message: String| ApiError::new(flavor, StatusCode::BAD_REQUEST, message);
    let url = url::Url::parse(raw).map_err(|err| {
        bad_request(format!(
            "The field `file` looks like a URL but does not parse ({err}): send a valid http(s) URL"
        ))
    })?;
    if !is_loopback_url(&url) {
        return Err(bad_request(format!(
            "The sandbox fetches `file` URLs on loopback only (127.0.0.0/8, ::1, localhost), and `{}` is not: serve the file on this machine, or upload its bytes or {} instead",
            url.host_str().unwrap_or_default(),
            match flavor {
                Flavor::ImageKit => "base64",
                Flavor::Cloudinary => "a data URI",
            }
        )));
    }
    let shown = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let failed = |why: String| {
        bad_request(format!(
            "Could not fetch the file from {shown} ({why}): check that the URL serves the file"
        ))
    };
    let response = tokio::time::timeout(FETCH_TIMEOUT, client(flavor)?.get(url.clone()).send())
        .await
        .map_err(|_| {
            failed(format!(
                "no response headers within {} s",
                FETCH_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|err| failed(err.without_url().to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("it answered HTTP {status}")));
    }
    let too_large = || {
        ApiError::new(
            flavor,
            StatusCode::PAYLOAD_TOO_LARGE,
            form::too_large_message(flavor, limits.max_file_size),
        )
    };
    if response
        .content_length()
        .is_some_and(|len| len > limits.max_file_size)
    {
        return Err(too_large());
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|v| !v.is_empty());
    let file_name = url
        .path_segments()
        .and_then(|mut segments| segments.next_back().map(str::to_owned))
        .unwrap_or_default();
    let io_failed =
        |err: std::io::Error| ApiError::internal(flavor, "writing the fetched file", err);
    let mut sink = FileSink::start(limits.tmp_dir, !limits.discard, limits.max_file_size)
        .await
        .map_err(io_failed)?;
    let mut body = response.bytes_stream();
    loop {
        let next = tokio::time::timeout(FETCH_TIMEOUT, body.next())
            .await
            .map_err(|_| {
                failed(format!(
                    "no data for {} s while reading the body",
                    FETCH_TIMEOUT.as_secs()
                ))
            })?;
        match next {
            None => break,
            Some(Ok(chunk)) => sink.push(chunk).await.map_err(|_| too_large())?,
            Some(Err(err)) => return Err(failed(err.without_url().to_string())),
        }
    }
    sink.finish(file_name, content_type)
        .await
        .map_err(io_failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_fetched() {
        for ok in [
            "http://127.0.0.1:8080/a.png",
            "https://127.9.9.9/a",
            "http://[::1]:9/a",
            "http://LOCALHOST/a",
            "http://[::ffff:127.0.0.1]/a",
        ] {
            assert!(is_loopback_url(&url::Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://example.com/a.png",
            "http://10.0.0.1/a",
            "http://localhost.example.com/a",
            "http://[::2]/a",
            "ftp://127.0.0.1/a",
            "file:///etc/passwd",
            "http://0.0.0.0/a",
        ] {
            assert!(!is_loopback_url(&url::Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
