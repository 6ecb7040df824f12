//! Environment checks behind `dropkey doctor` (and, later, the app's status view): is a
//! keychain service reachable, does the config load, where does each profile's secret come
//! from, and is the clock plausible. Each check says what to fix.

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

pub fn check(paths: &Paths, config: Result<&Config, &ConfigError>, now: i64) -> Report {
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
