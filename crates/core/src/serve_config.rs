//! The `[serve]` table of the config file: where `dropkey serve` listens, who may call it and
//! what each bearer token may do. [`RawServe`] mirrors the TOML (spans kept for messages);
//! [`resolve`] validates it into [`ServeSettings`] with the same file:line:column errors as
//! the rest of the config (it is called from `config::Ctx::resolve`).
//!
//! Only the settings live here, in the core, because the core parses the whole config file; the
//! server that acts on them is the `dropkey-serve` crate.
//!
//! ```toml
//! [serve]
//! listen = "127.0.0.1:8787"
//! cors_origins = ["https://app.example.com"]
//! rate_limit_per_minute = 600
//! max_expire = 3600
//! profiles = ["ik", "cl"]            # default: every profile with a local key
//! audit_log = "/var/log/dropkey/audit.jsonl"   # default: <data dir>/serve-audit.jsonl; "-" = stderr
//! max_connections = 512            # open connections at once; more wait in the listen queue
//! header_timeout = "10s"           # a request's head (and body) must arrive within this
//! auth_failures_per_minute = 30    # per client IP, then 429
//! trusted_proxies = ["10.0.0.0/8"] # peers whose X-Forwarded-For names the client
//!
//! [serve.tokens.web]
//! profiles = ["ik"]
//! folder_prefix = "/uploads/web"
//! max_expire = 600
//! allowed_params = ["fileName", "tags"]
//! may_delete = false
//! rate_limit_per_minute = 120
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{ConfigError, Ctx, ImageKitAuth, Profile, Provider};

/// Where `dropkey serve` listens unless `[serve] listen` or `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Token requests per bearer token and minute, unless configured.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 600;
/// The largest rate limit accepted (about 166,000 requests a second: effectively unlimited).
pub const MAX_RATE_LIMIT_PER_MINUTE: i64 = 10_000_000;
/// Connections served at once unless configured: far below a typical 1024 open-file limit,
/// far above what a team's clients hold.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// The largest `max_connections` accepted.
pub const MAX_MAX_CONNECTIONS: i64 = 1_000_000;
/// How long a client has for a request's head, and for its body, unless configured.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The range `header_timeout` must lie in.
pub const HEADER_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(600));
/// Failed or missing bearer tokens per client IP and minute before 429, unless configured.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 30;
/// ImageKit's Upload API V2 guide: a V2 token lives at most an hour. Also the default lifetime.
pub const MAX_EXPIRE: i64 = 3600;
/// What a token with no `[serve.tokens.NAME]` table may send besides the server's own policy.
pub const DEFAULT_ALLOWED_PARAMS: &[&str] =
    &["fileName", "tags", "customMetadata", "public_id", "context"];

/// Parameters that a client may never set, whatever a token's `allowed_params` says: the
/// signature scheme owns them, or (Cloudinary's `type`) the server decides them from its policy
/// (the Cloudinary signed-upload demo's own warning about letting the client choose private delivery).
const NEVER_ALLOWED: &[&str] = &[
    "file",
    "token",
    "signature",
    "expire",
    "publicKey",
    "iat",
    "exp",
    "api_key",
    "timestamp",
    "cloud_name",
    "resource_type",
    "type",
    "folder",
    "profile",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServe {
    listen: Option<Spanned<String>>,
    cors_origins: Option<Spanned<Vec<String>>>,
    rate_limit_per_minute: Option<Spanned<i64>>,
    max_expire: Option<Spanned<i64>>,
    profiles: Option<Spanned<Vec<String>>>,
    audit_log: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    header_timeout: Option<Spanned<toml::Value>>,
    auth_failures_per_minute: Option<Spanned<i64>>,
    trusted_proxies: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    tokens: BTreeMap<Spanned<String>, Spanned<RawTokenPolicy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenPolicy {
    profiles: Option<Spanned<Vec<String>>>,
    folder_prefix: Option<Spanned<String>>,
    max_expire: Option<Spanned<i64>>,
    allowed_params: Option<Spanned<Vec<String>>>,
    may_delete: Option<Spanned<bool>>,
    rate_limit_per_minute: Option<Spanned<i64>>,
}

/// The resolved `[serve]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    /// Origins whose pages may call the server from a browser. Empty: none (no CORS headers).
    pub cors_origins: CorsOrigins,
    /// Default per-token budget; a token's own table may lower or raise it.
    pub rate_limit_per_minute: u32,
    /// Longest token lifetime any caller gets, in seconds (at most 3600).
    pub max_expire: i64,
    /// The profiles served. `None`: every configured profile with a local key (ImageKit V2/V1
    /// and Cloudinary; not `remote` ones, and not the built-in sandbox profile).
    pub profiles: Option<Vec<String>>,
    /// Where the audit log goes; `None` is `<data dir>/serve-audit.jsonl`.
    pub audit_log: Option<AuditTarget>,
    /// Connections open at once; further ones wait in the kernel's listen queue.
    pub max_connections: usize,
    /// Time a client has to send a request's head (also the keep-alive idle limit), and
    /// again its body.
    pub header_timeout: Duration,
    /// Requests with a missing or wrong bearer token per client IP and minute, before 429.
    pub auth_failures_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed. Empty: none, the TCP peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Per-token policy, by token name. A token without an entry gets the default policy.
    pub tokens: BTreeMap<String, TokenPolicyConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`cors_origins = ["*"]`). Safe only because auth is a bearer header, which a
    /// page must hold itself; no cookie is ever honoured.
    Any,
    /// Exactly these `scheme://host[:port]` origins (possibly none).
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    File(PathBuf),
    /// `audit_log = "-"`: JSON lines on stderr, for the journal or a container's log driver.
    Stderr,
}

/// One `[serve.tokens.NAME]` table as written; unset keys fall back to the server's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenPolicyConfig {
    pub profiles: Option<Vec<String>>,
    pub folder_prefix: Option<String>,
    pub max_expire: Option<i64>,
    pub allowed_params: Option<Vec<String>>,
    pub may_delete: bool,
    pub rate_limit_per_minute: Option<u32>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!("the default listen address parses")),
            cors_origins: CorsOrigins::List(Vec::new()),
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            max_expire: MAX_EXPIRE,
            profiles: None,
            audit_log: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
            trusted_proxies: Vec::new(),
            tokens: BTreeMap::new(),
        }
    }
}

/// Whether `profile` can be served at all: it must hold a key on this machine.
pub fn servable(profile: &Profile) -> bool {
    !matches!(&profile.provider, Provider::ImageKit(ik) if ik.auth == ImageKitAuth::Remote)
}

/// The profiles `settings` serves out of `profiles`, in name order.
pub fn served_profiles<'a>(
    settings: &ServeSettings,
    profiles: &'a BTreeMap<String, Profile>,
) -> Vec<&'a Profile> {
    match &settings.profiles {
        Some(names) => names.iter().filter_map(|n| profiles.get(n)).collect(),
        None => profiles
            .values()
            .filter(|p| servable(p) && !p.builtin)
            .collect(),
    }
}

/// Validates the raw `[serve]` table against the resolved profiles.
pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    raw: Option<RawServe>,
    profiles: &BTreeMap<String, Profile>,
) -> Result<ServeSettings, ConfigError> {
    let mut settings = ServeSettings::default();
    let Some(raw) = raw else {
        return Ok(settings);
    };
    if let Some(listen) = &raw.listen {
        settings.listen = listen.get_ref().parse().map_err(|_| {
            ctx.error(
                listen.span(),
                "serve.listen",
                format!("`{}` is not an IP address and port", listen.get_ref()),
                "write it like \"127.0.0.1:8787\" (port 0 picks a free port)",
            )
        })?;
    }
    if let Some(origins) = raw.cors_origins {
        settings.cors_origins = cors_origins(ctx, origins)?;
    }
    if let Some(v) = &raw.rate_limit_per_minute {
        settings.rate_limit_per_minute = rate_limit(ctx, v, "serve.rate_limit_per_minute")?;
    }
    if let Some(v) = &raw.max_expire {
        settings.max_expire = expire(ctx, v, "serve.max_expire", MAX_EXPIRE)?;
    }
    if let Some(audit) = &raw.audit_log {
        let text = audit.get_ref().trim();
        settings.audit_log = Some(match text {
            "" => {
                return Err(ctx.error(
                    audit.span(),
                    "serve.audit_log",
                    "must not be empty",
                    "give a file path, or \"-\" for stderr, or remove the key for <data dir>/serve-audit.jsonl",
                ))
            }
            "-" => AuditTarget::Stderr,
            path => AuditTarget::File(PathBuf::from(path)),
        });
    }
    if let Some(v) = &raw.max_connections {
        let n = *v.get_ref();
        if !(1..=MAX_MAX_CONNECTIONS).contains(&n) {
            return Err(ctx.error(
                v.span(),
                "serve.max_connections",
                format!("{n} is out of range"),
                format!("use a whole number of connections from 1 to {MAX_MAX_CONNECTIONS}, below the process's open-file limit (ulimit -n)"),
            ));
        }
        settings.max_connections = n as usize;
    }
    if let Some(v) = &raw.header_timeout {
        settings.header_timeout = duration(ctx, v, "serve.header_timeout", HEADER_TIMEOUT_RANGE)?;
    }
    if let Some(v) = &raw.auth_failures_per_minute {
        settings.auth_failures_per_minute = rate_limit(ctx, v, "serve.auth_failures_per_minute")?;
    }
    if let Some(list) = &raw.trusted_proxies {
        for (index, entry) in list.get_ref().iter().enumerate() {
            let net = IpNet::parse(entry).map_err(|err| {
                ctx.error(
                    list.span(),
                    "serve.trusted_proxies",
                    format!("entry {} {err}", index + 1),
                    "list the load balancers' addresses or blocks, e.g. [\"10.0.0.5\", \"172.16.0.0/12\"] (no host names)",
                )
            })?;
            settings.trusted_proxies.push(net);
        }
    }
    if let Some(names) = &raw.profiles {
        for name in names.get_ref() {
            served_profile(ctx, names.span(), "serve.profiles", name, profiles, None)?;
        }
        settings.profiles = Some(names.get_ref().clone());
    }
    let served: Vec<String> = served_profiles(&settings, profiles)
        .iter()
        .map(|p| p.name.clone())
        .collect();
    for (name, table) in raw.tokens {
        let field = |key: &str| format!("serve.tokens.{}.{key}", name.get_ref());
        if !crate::config::valid_profile_name(name.get_ref()) {
            return Err(ctx.error(
                name.span(),
                format!("serve.tokens.{}", name.get_ref()),
                "a token name is 1 to 64 letters, digits, '-', '_' or '.'",
                "rename the table, e.g. [serve.tokens.web-app]",
            ));
        }
        let table = table.into_inner();
        let mut policy = TokenPolicyConfig::default();
        if let Some(names) = &table.profiles {
            for profile in names.get_ref() {
                served_profile(
                    ctx,
                    names.span(),
                    &field("profiles"),
                    profile,
                    profiles,
                    Some(&served),
                )?;
            }
            policy.profiles = Some(names.get_ref().clone());
        }
        if let Some(prefix) = &table.folder_prefix {
            let text = prefix.get_ref();
            if !valid_folder(text) {
                return Err(ctx.error(
                    prefix.span(),
                    field("folder_prefix"),
                    format!("`{text}` is not a valid remote folder"),
                    "use a path like \"/uploads/web\" without '..', backslashes or control characters",
                ));
            }
            policy.folder_prefix = Some(text.clone());
        }
        if let Some(v) = &table.max_expire {
            policy.max_expire = Some(expire(ctx, v, &field("max_expire"), settings.max_expire)?);
        }
        if let Some(params) = &table.allowed_params {
            for param in params.get_ref() {
                let valid = param
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                    && param.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(ctx.error(
                        params.span(),
                        field("allowed_params"),
                        format!("`{param}` is not a parameter name"),
                        "names are letters, digits and '_' and start with a letter, e.g. \"fileName\"",
                    ));
                }
                if NEVER_ALLOWED.contains(&param.as_str()) {
                    return Err(ctx.error(
                        params.span(),
                        field("allowed_params"),
                        format!("`{param}` is decided by the server, never by a client"),
                        "remove it: the signature scheme owns token/signature/expire/timestamp/api_key, folder_prefix governs folder, and a profile's `private` sets Cloudinary's type",
                    ));
                }
            }
            policy.allowed_params = Some(params.get_ref().clone());
        }
        policy.may_delete = table.may_delete.map(Spanned::into_inner).unwrap_or(false);
        if let Some(v) = &table.rate_limit_per_minute {
            policy.rate_limit_per_minute =
                Some(rate_limit(ctx, v, &field("rate_limit_per_minute"))?);
        }
        settings.tokens.insert(name.into_inner(), policy);
    }
    Ok(settings)
}

/// A remote folder as the config accepts it (the same rule as profiles' `folder`).
pub fn valid_folder(folder: &str) -> bool {
    !folder.contains("..") && !folder.contains('\\') && !folder.chars().any(char::is_control)
}

fn served_profile(
    ctx: &Ctx<'_>,
    span: std::ops::Range<usize>,
    field: &str,
    name: &str,
    profiles: &BTreeMap<String, Profile>,
    served: Option<&[String]>,
) -> Result<(), ConfigError> {
    let Some(profile) = profiles.get(name) else {
        return Err(ctx.error(
            span,
            field,
            format!("no profile named `{name}`"),
            format!(
                "use one of: {}",
                profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    if !servable(profile) {
        return Err(ctx.error(
            span,
            field,
            format!(
                "profile `{name}` uses auth = \"remote\": this machine holds no key to sign with"
            ),
            "serve only profiles whose key is here (auth = \"v2\"/\"v1\", or Cloudinary)",
        ));
    }
    if let Some(served) = served {
        if !served.iter().any(|s| s == name) {
            return Err(ctx.error(
                span,
                field,
                format!("profile `{name}` is not served (see serve.profiles)"),
                format!("add \"{name}\" to serve.profiles, or remove it here"),
            ));
        }
    }
    Ok(())
}

fn cors_origins(ctx: &Ctx<'_>, origins: Spanned<Vec<String>>) -> Result<CorsOrigins, ConfigError> {
    let span = origins.span();
    let origins = origins.into_inner();
    if origins.iter().any(|o| o == "*") {
        if origins.len() > 1 {
            return Err(ctx.error(
                span,
                "serve.cors_origins",
                "\"*\" already allows every origin",
                "write either [\"*\"] or a list of origins, not both",
            ));
        }
        return Ok(CorsOrigins::Any);
    }
    for origin in &origins {
        let valid = url::Url::parse(origin).ok().is_some_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.origin().ascii_serialization() == *origin
        });
        if !valid {
            return Err(ctx.error(
                span.clone(),
                "serve.cors_origins",
                format!("`{origin}` is not an origin"),
                "write each as scheme://host[:port] with no path or trailing slash, e.g. \"https://app.example.com\"",
            ));
        }
    }
    Ok(CorsOrigins::List(origins))
}

fn rate_limit(ctx: &Ctx<'_>, value: &Spanned<i64>, field: &str) -> Result<u32, ConfigError> {
    let v = *value.get_ref();
    if (1..=MAX_RATE_LIMIT_PER_MINUTE).contains(&v) {
        Ok(v as u32)
    } else {
        Err(ctx.error(
            value.span(),
            field,
            format!("{v} is out of range"),
            format!(
                "use a whole number of requests per minute from 1 to {MAX_RATE_LIMIT_PER_MINUTE}"
            ),
        ))
    }
}

/// A duration written as seconds (`10`) or with a unit (`"10s"`, `"500ms"`, `"2m"`).
fn duration(
    ctx: &Ctx<'_>,
    value: &Spanned<toml::Value>,
    field: &str,
    (min, max): (Duration, Duration),
) -> Result<Duration, ConfigError> {
    let range = format!("from {} to {}", humanize(min), humanize(max));
    let parsed = match value.get_ref() {
        toml::Value::Integer(secs) => u64::try_from(*secs).ok().map(Duration::from_secs),
        toml::Value::String(text) => parse_duration(text),
        _ => None,
    };
    match parsed {
        Some(d) if (min..=max).contains(&d) => Ok(d),
        Some(d) => Err(ctx.error(
            value.span(),
            field,
            format!("{} is out of range", humanize(d)),
            format!("use a duration {range}, e.g. \"10s\""),
        )),
        None => Err(ctx.error(
            value.span(),
            field,
            "is not a duration",
            format!(
                "write seconds (10) or a number with a unit: \"10s\", \"500ms\", \"2m\" ({range})"
            ),
        )),
    }
}

/// `"10s"`, `"10 s"`, `"500ms"`, `"2m"`, `"1.5s"`; `None` for anything else.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * scale).ok()
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn expire(ctx: &Ctx<'_>, value: &Spanned<i64>, field: &str, max: i64) -> Result<i64, ConfigError> {
    let v = *value.get_ref();
    if (1..=max).contains(&v) {
        Ok(v)
    } else {
        Err(ctx.error(
            value.span(),
            field,
            format!("{v} is out of range"),
            format!("use a number of seconds from 1 to {max} (ImageKit's Upload API V2 guide: a token lives at most 3600 s; a token's own max_expire cannot exceed serve.max_expire)"),
        ))
    }
}

/// A `trusted_proxies` entry: an address block, an IP and how many leading bits of it count (`10.0.0.0/8`,
/// `2001:db8::/32`; a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a `trusted_proxies` entry does not parse (the config turns it into a positioned error;
/// like every config error, it does not repeat the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    #[error("is not an IP address (host names are not accepted)")]
    Address,
    #[error("has a prefix length that is not a number from 0 to {max}")]
    Prefix { max: u8 },
    #[error("has address bits set below its /{prefix}: write the block's first address")]
    HostBits { prefix: u8 },
}

impl IpNet {
    /// Parses `ADDR` or `ADDR/LEN`. Host bits below the prefix are refused rather than
    /// silently cleared: `10.1.2.3/8` is far more likely a typo than a wish for all of 10/8.
    pub fn parse(text: &str) -> Result<Self, IpNetError> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| IpNetError::Address)?;
        let addr = addr.to_canonical();
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => max,
            Some(len) => match len.parse::<u8>() {
                Ok(len) if len <= max => len,
                _ => return Err(IpNetError::Prefix { max }),
            },
        };
        let net = Self { addr, prefix };
        if net.network() != addr {
            return Err(IpNetError::HostBits { prefix });
        }
        Ok(net)
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_u32(self.prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_u128(self.prefix))),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_u32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_u128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask_u32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_u128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn nets_parse_and_match() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.1.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        let one = IpNet::parse("192.168.1.7").unwrap();
        assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(matches!(
            IpNet::parse("10.1.2.3/8"),
            Err(IpNetError::HostBits { .. })
        ));
        assert!(matches!(
            IpNet::parse("10.0.0.0/33"),
            Err(IpNetError::Prefix { .. })
        ));
        assert!(matches!(
            IpNet::parse("proxy.local"),
            Err(IpNetError::Address)
        ));
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("10 s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        for bad in ["", "s", "soon", "10h", "-1s", "1e9s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_listener_keys_resolve_with_defaults() {
        let path = std::path::Path::new("c.toml");
        let defaults = Config::from_toml("", path).unwrap().serve;
        assert_eq!(defaults.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(defaults.header_timeout, DEFAULT_HEADER_TIMEOUT);
        assert_eq!(
            defaults.auth_failures_per_minute,
            DEFAULT_AUTH_FAILURES_PER_MINUTE
        );
        assert!(defaults.trusted_proxies.is_empty());
        let set = Config::from_toml(
            "[serve]\nmax_connections = 8\nheader_timeout = 3\nauth_failures_per_minute = 5\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
            path,
        )
        .unwrap()
        .serve;
        assert_eq!(set.max_connections, 8);
        assert_eq!(set.header_timeout, Duration::from_secs(3));
        assert_eq!(set.auth_failures_per_minute, 5);
        assert_eq!(set.trusted_proxies.len(), 2);
        let err = Config::from_toml("[serve]\nheader_timeout = \"50ms\"\n", path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("serve.header_timeout") && err.contains("out of range"),
            "{err}"
        );
    }
}
