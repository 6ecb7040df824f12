//! Environment checks behind `dropkey doctor` (and, later, the app's status view): is a
//! keychain service reachable, does the config load, where does each profile's secret come
//! from, can the hosts uploads go to be reached, and is the clock plausible. Each check says
//! what to fix.

use serde::Serialize;

use crate::config::{Config, ConfigError, Paths};
use crate::secrets::{SecretError, SecretSource, Secrets};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// False when any check failed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// 2024-01-01: a clock before this is certainly wrong, and every signature made with it is
/// rejected as expired.
const PLAUSIBLE_EPOCH: i64 = 1_704_067_200;

/// `network`: probe every profile's upload host even when no upload waits.
pub fn check(
    paths: &Paths,
    config: Result<&Config, &ConfigError>,
    now: i64,
    network: bool,
) -> Report {
    let mut checks = Vec::new();
    let secrets = Secrets::new(&paths.data_dir);

    let keychain = secrets.probe_keychain();
    checks.push(match &keychain {
        Ok(()) => ok("keychain", "a keychain service answers"),
        Err(err) => Check {
            name: "keychain".into(),
            status: Status::Warn,
            detail: err.to_string(),
            fix: Some("start a Secret Service (gnome-keyring, KeePassXC) or use DROPKEY_SECRET_<PROFILE> variables".into()),
        },
    });

    match config {
        Ok(config) => {
            checks.push(ok(
                "config",
                &match &config.source {
                    Some(path) => format!("{} loads", path.display()),
                    None => format!(
                        "no config file at {}: using the built-in sandbox profile",
                        paths.config_file.display()
                    ),
                },
            ));
            for profile in config.profiles.values() {
                let name = format!("profile {}", profile.name);
                checks.push(match secrets.status(profile) {
                    Ok(SecretSource::Missing) if profile.builtin => {
                        ok(&name, "the sandbox key is generated on first use")
                    }
                    Ok(SecretSource::Missing) => Check {
                        name,
                        status: Status::Warn,
                        detail: "no private key is set".into(),
                        fix: Some(format!(
                            "run `dropkey key set {}` (reads the key from stdin) or set {}",
                            profile.name,
                            crate::secrets::env_var_name(&profile.name)
                        )),
                    },
                    Ok(source) => ok(&name, &format!("private key from {}", source.as_str())),
                    Err(err @ SecretError::NoService { .. }) => Check {
                        name,
                        status: Status::Fail,
                        detail: err.to_string(),
                        fix: Some(format!(
                            "set {} or start a keychain service",
                            crate::secrets::env_var_name(&profile.name)
                        )),
                    },
                    Err(err) => Check {
                        name,
                        status: Status::Fail,
                        detail: err.to_string(),
                        fix: None,
                    },
                });
            }
        }
        Err(err) => checks.push(Check {
            name: "config".into(),
            status: Status::Fail,
            detail: err.to_string(),
            fix: Some("edit the file at the line named above".into()),
        }),
    }

    // The network is asked only when it matters (uploads wait) or when asked to: a plain
    // `doctor` on a fresh machine sends nothing anywhere.
    let waiting = crate::engine::store::Store::count_waiting(&paths.data_dir).unwrap_or(0);
    if let (Ok(config), true) = (config, network || waiting > 0) {
        checks.extend(reach_checks(config, waiting));
    }

    checks.push(if now < PLAUSIBLE_EPOCH {
        Check {
            name: "clock".into(),
            status: Status::Fail,
            detail: format!("the system clock says Unix time {now}, before 2024"),
            fix: Some("set the system clock (enable NTP, e.g. `timedatectl set-ntp true`): providers reject signatures made with a wrong clock".into()),
        }
    } else {
        ok("clock", &format!("system time is Unix {now}"))
    });

    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report { ok, checks }
}

fn ok(name: &str, detail: &str) -> Check {
    Check {
        name: name.into(),
        status: Status::Ok,
        detail: detail.into(),
        fix: None,
    }
}

/// How long `doctor` waits for all upload hosts together.
const REACH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

/// Where each configured profile's uploads go first: the upload host, or the token server of a
/// remote profile. The built-in sandbox is left out: Dropkey starts it on demand.
fn upload_origins(config: &Config) -> Vec<(String, url::Url)> {
    use crate::config::{ImageKitAuth, Provider};
    let mut origins: Vec<(String, url::Url)> = Vec::new();
    for profile in config.profiles.values().filter(|p| !p.builtin) {
        let url = match &profile.provider {
            Provider::ImageKit(ik) if ik.auth == ImageKitAuth::Remote => ik.token_url.clone(),
            Provider::ImageKit(ik) => Some(ik.upload_url.clone()),
            Provider::Cloudinary(cl) => Some(cl.api_url.clone()),
        };
        if let Some(url) = url {
            if !origins.iter().any(|(_, u)| u.origin() == url.origin()) {
                origins.push((profile.name.clone(), url));
            }
        }
    }
    origins
}

/// One TCP connection to each upload host, all at once, within [`REACH_DEADLINE`]: a host that
/// cannot be reached is a warning (uploads wait for it and go on by themselves), with how many
/// uploads wait.
fn reach_checks(config: &Config, waiting: u64) -> Vec<Check> {
    use std::net::{TcpStream, ToSocketAddrs as _};
    let origins = upload_origins(config);
    if origins.is_empty() {
        return Vec::new();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, (_, url)) in origins.iter().enumerate() {
        let (host, port) = (
            url.host_str()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_owned(),
            url.port_or_known_default().unwrap_or(443),
        );
        let tx = tx.clone();
        // Detached: a resolver that hangs must not hold doctor past its deadline.
        std::thread::spawn(move || {
            let answer = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {host}: {e}"))
                .and_then(|addrs| {
                    let mut last = format!("{host} has no address");
                    for addr in addrs {
                        match TcpStream::connect_timeout(&addr, REACH_DEADLINE) {
                            Ok(_) => return Ok(()),
                            Err(e) => last = format!("{addr}: {e}"),
                        }
                    }
                    Err(last)
                });
            let _ = tx.send((i, answer));
        });
    }
    drop(tx);
    let deadline = std::time::Instant::now() + REACH_DEADLINE;
    let mut answers: Vec<Option<Result<(), String>>> = vec![None; origins.len()];
    while let Ok((i, answer)) =
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        answers[i] = Some(answer);
    }
    origins
        .iter()
        .zip(answers)
        .map(|((profile, url), answer)| {
            // Named as `watch`, `upload` and the window name it (`scheme://host:port`).
            let origin = crate::engine::reach::origin(url)
                .unwrap_or_else(|| url.origin().ascii_serialization());
            let name = format!("network {origin}");
            match answer {
                Some(Ok(())) => ok(&name, &format!("reachable (profile {profile})")),
                failed => Check {
                    name,
                    status: Status::Warn,
                    detail: format!(
                        "offline — {waiting} waiting: cannot reach {origin} (profile {profile}): {}",
                        match failed {
                            Some(Err(e)) => e,
                            _ => format!("no answer within {} s", REACH_DEADLINE.as_secs()),
                        }
                    ),
                    fix: Some(
                        "check the network or the profile's address; queued uploads go on by themselves when it answers (`dropkey watch`, `dropkey resume` or the app)".into(),
                    ),
                },
            }
        })
        .collect()
}
