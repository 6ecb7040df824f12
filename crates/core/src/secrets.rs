//! The provider private keys. They live in the OS keychain (service `dropkey`, account = the
//! profile name) through the `keyring` crate: the Secret Service on Linux (never the kernel
//! keyutils store, which a reboot wipes), the macOS Keychain, the Windows Credential Manager.
//!
//! `DROPKEY_SECRET_<PROFILE>` overrides the keychain for headless use (CI, servers). The built-in
//! sandbox profile's key guards only the local sandbox: it is generated on first use and kept in
//! the keychain when one is reachable, else in `<data dir>/sandbox.key` (mode 0600).
//!
//! A secret is only ever held as a [`SecretString`]: it is never logged, printed, serialised or
//! written anywhere but the keychain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::config::Profile;

/// The keychain service name every Dropkey secret is filed under.
pub const KEYCHAIN_SERVICE: &str = "dropkey";
/// Longer than any provider's private key by far; a longer input is a pasted file, not a key.
pub const MAX_SECRET_LEN: usize = 4_096;
const SANDBOX_KEY_FILE: &str = "sandbox.key";

/// Where a profile's secret comes from. Front ends show this, never the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Keychain,
    Env,
    /// Only the sandbox profile, when no keychain is reachable.
    File,
    Missing,
}

impl SecretSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keychain => "keychain",
            Self::Env => "env",
            Self::File => "file",
            Self::Missing => "missing",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no keychain service is reachable ({detail}): start a Secret Service such as gnome-keyring (e.g. `gnome-keyring-daemon --start --components=secrets` in your D-Bus session) or KeePassXC, or set {env_var} for headless use")]
    NoService { detail: String, env_var: String },
    #[error("the keychain refused access to the secret of profile `{profile}` ({detail}): unlock your keyring and try again, or set {env_var}")]
    Locked {
        profile: String,
        detail: String,
        env_var: String,
    },
    #[error("profile `{profile}` has no secret: run `dropkey key set {profile}` (it reads the private key from stdin) or set {env_var}")]
    Missing { profile: String, env_var: String },
    #[error("the secret of profile `{profile}` in the keychain is not valid UTF-8 text: run `dropkey key set {profile}` again")]
    Corrupt { profile: String },
    #[error("the key given is empty: paste the private key (or pipe it on stdin, e.g. `printf %s \"$KEY\" | dropkey key set PROFILE`)")]
    Empty,
    #[error("that does not look like a private key (it is over {MAX_SECRET_LEN} characters, or has line breaks or control characters): copy the key alone, from the provider's dashboard")]
    Malformed,
    #[error("cannot use the sandbox key file {path}: {source}; check the data directory's permissions (--data-dir)")]
    SandboxFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The name of the env variable that overrides the keychain for `profile`: upper-cased, every
/// character other than ASCII letters and digits replaced by `_`.
pub fn env_var_name(profile: &str) -> String {
    let suffix: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("DROPKEY_SECRET_{suffix}")
}

/// Access to every profile's secret. Cheap to create; holds no secret itself.
#[derive(Debug, Clone)]
pub struct Secrets {
    data_dir: PathBuf,
}

impl Secrets {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// Where `profile`'s secret would come from right now.
    pub fn status(&self, profile: &Profile) -> Result<SecretSource, SecretError> {
        if env_secret(&profile.name).is_some() {
            return Ok(SecretSource::Env);
        }
        match keychain_get(&profile.name) {
            Ok(Some(_)) => Ok(SecretSource::Keychain),
            Ok(None) if profile.builtin && self.sandbox_file().exists() => Ok(SecretSource::File),
            Ok(None) => Ok(SecretSource::Missing),
            Err(SecretError::NoService { .. }) if profile.builtin => {
                Ok(if self.sandbox_file().exists() {
                    SecretSource::File
                } else {
                    SecretSource::Missing
                })
            }
            Err(err) => Err(err),
        }
    }

    /// The secret of `profile`. The built-in sandbox profile gets one generated on first use.
    pub fn get(&self, profile: &Profile) -> Result<(SecretString, SecretSource), SecretError> {
        if let Some(secret) = env_secret(&profile.name) {
            return Ok((secret, SecretSource::Env));
        }
        let from_keychain = keychain_get(&profile.name);
        if profile.builtin {
            return self.sandbox_secret(profile, from_keychain);
        }
        match from_keychain? {
            Some(secret) => Ok((secret, SecretSource::Keychain)),
            None => Err(SecretError::Missing {
                profile: profile.name.clone(),
                env_var: env_var_name(&profile.name),
            }),
        }
    }

    /// Stores `secret` for `profile` in the keychain, once [`check_secret_shape`] accepts it.
    pub fn set(&self, profile: &Profile, secret: &SecretString) -> Result<(), SecretError> {
        check_secret_shape(secret)?;
        let entry = entry(&profile.name)?;
        entry
            .set_password(secret.expose_secret())
            .map_err(|err| map_keyring_error(&profile.name, err))
    }

    /// Removes `profile`'s secret from the keychain (and the sandbox key file). Returns whether
    /// there was one.
    pub fn delete(&self, profile: &Profile) -> Result<bool, SecretError> {
        let mut deleted = false;
        if profile.builtin {
            let path = self.sandbox_file();
            match std::fs::remove_file(&path) {
                Ok(()) => deleted = true,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(SecretError::SandboxFile { path, source }),
            }
        }
        let result = entry(&profile.name).and_then(|entry| {
            entry
                .delete_credential()
                .map_err(|err| map_keyring_error(&profile.name, err))
        });
        match result {
            Ok(()) => Ok(true),
            Err(SecretError::Missing { .. }) => Ok(deleted),
            Err(SecretError::NoService { .. }) if deleted => Ok(true),
            Err(err) => Err(err),
        }
    }

    /// Whether a keychain service answers (for `dropkey doctor`).
    pub fn probe_keychain(&self) -> Result<(), SecretError> {
        keychain_get("__dropkey_doctor_probe__")
            .map(|_| ())
            .map_err(|err| match err {
                SecretError::NoService { detail, .. } => SecretError::NoService {
                    detail,
                    env_var: "DROPKEY_SECRET_<PROFILE>".into(),
                },
                other => other,
            })
    }

    fn sandbox_file(&self) -> PathBuf {
        self.data_dir.join(SANDBOX_KEY_FILE)
    }

    fn sandbox_secret(
        &self,
        profile: &Profile,
        from_keychain: Result<Option<SecretString>, SecretError>,
    ) -> Result<(SecretString, SecretSource), SecretError> {
        let path = self.sandbox_file();
        match from_keychain {
            Ok(Some(secret)) => return Ok((secret, SecretSource::Keychain)),
            Ok(None) if !path.exists() => {
                let secret = generate_sandbox_key();
                if self.set(profile, &secret).is_ok() {
                    return Ok((secret, SecretSource::Keychain));
                }
                tracing::warn!("the keychain refused the sandbox key; keeping it in the data dir");
            }
            Ok(None) | Err(SecretError::NoService { .. }) => {}
            Err(err) => return Err(err),
        }
        read_or_create_key_file(&path).map(|secret| (secret, SecretSource::File))
    }
}

const ENV_PREFIX: &str = "DROPKEY_SECRET_";

/// The `DROPKEY_SECRET_*` values [`capture_env`] took out of the environment.
static CAPTURED_ENV: std::sync::OnceLock<BTreeMap<String, SecretString>> =
    std::sync::OnceLock::new();

/// Moves every `DROPKEY_SECRET_*` variable out of the process environment into memory, so that
/// no child process (WebKit's, xdg-open, a browser, anything spawned later) inherits a key.
/// Call it first thing in `main`, before any thread starts: changing the environment while
/// another thread reads it is undefined behaviour in libc. Later calls change nothing.
pub fn capture_env() {
    let taken = take_env_secrets();
    let _ = CAPTURED_ENV.set(taken);
}

/// Removes the `DROPKEY_SECRET_*` variables from the environment and returns the non-empty ones.
fn take_env_secrets() -> BTreeMap<String, SecretString> {
    let mut taken = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
            continue;
        };
        std::env::remove_var(name);
        // A value that is not UTF-8 cannot be a key; it is dropped, as an empty one is.
        if let Ok(value) = value.into_string() {
            let value = Zeroizing::new(value);
            if !value.is_empty() {
                taken.insert(name.to_owned(), SecretString::from(value.as_str()));
            }
        }
    }
    taken
}

fn env_secret(profile: &str) -> Option<SecretString> {
    let name = env_var_name(profile);
    match CAPTURED_ENV.get() {
        Some(captured) => captured.get(&name).cloned(),
        // A library user that never captured: the environment is still where the key is.
        None => std::env::var(name)
            .ok()
            .map(Zeroizing::new)
            .filter(|v| !v.is_empty())
            .map(|v| SecretString::from(v.as_str())),
    }
}

/// Whether `DROPKEY_SECRET_<PROFILE>` is set (it then wins over the keychain).
pub fn env_override_set(profile: &str) -> bool {
    env_secret(profile).is_some()
}

fn entry(profile: &str) -> Result<keyring::Entry, SecretError> {
    keyring::Entry::new(KEYCHAIN_SERVICE, profile).map_err(|err| map_keyring_error(profile, err))
}

fn keychain_get(profile: &str) -> Result<Option<SecretString>, SecretError> {
    match entry(profile)?.get_password() {
        Ok(secret) => Ok(Some(into_secret(secret))),
        Err(err) => match map_keyring_error(profile, err) {
            SecretError::Missing { .. } => Ok(None),
            other => Err(other),
        },
    }
}

fn map_keyring_error(profile: &str, err: keyring::Error) -> SecretError {
    let env_var = env_var_name(profile);
    match err {
        keyring::Error::NoEntry => SecretError::Missing {
            profile: profile.to_owned(),
            env_var,
        },
        keyring::Error::BadEncoding(_) => SecretError::Corrupt {
            profile: profile.to_owned(),
        },
        keyring::Error::NoStorageAccess(inner) => SecretError::Locked {
            profile: profile.to_owned(),
            detail: first_line(&inner.to_string()),
            env_var,
        },
        // Platform failures are D-Bus or OS errors: keep one short line of their text instead
        // of the whole chain, and say how to get a working service.
        other => SecretError::NoService {
            detail: first_line(&other.to_string()),
            env_var,
        },
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let mut short: String = line.chars().take(160).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

/// `text` as a [`SecretString`], with `text`'s own buffer wiped. `SecretString::from(String)`
/// shrinks the string to fit, which moves it when it has spare capacity and frees the old buffer
/// as it was; a copy of exactly its length never moves.
pub fn into_secret(text: String) -> SecretString {
    let text = Zeroizing::new(text);
    SecretString::from(text.as_str())
}

fn generate_sandbox_key() -> SecretString {
    use rand::RngCore;
    let mut bytes = Zeroizing::new([0u8; 24]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    into_secret(format!(
        "private_sandbox_{}",
        Zeroizing::new(hex::encode(bytes.as_ref())).as_str()
    ))
}

fn read_or_create_key_file(path: &Path) -> Result<SecretString, SecretError> {
    let io_err = |source| SecretError::SandboxFile {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path).map(Zeroizing::new) {
        Ok(text) if !text.trim().is_empty() => return Ok(SecretString::from(text.trim())),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_err(err)),
    }
    if let Some(parent) = path.parent() {
        crate::private_fs::create_dir_all(parent).map_err(io_err)?;
    }
    let secret = generate_sandbox_key();
    write_private_file(path, secret.expose_secret().as_bytes()).map_err(io_err)?;
    Ok(secret)
}

/// Writes `bytes` to a file only its owner can read, created that way (no window in which it is
/// world-readable).
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The rules every front end applies to a key before it is stored: not blank, at most
/// [`MAX_SECRET_LEN`] characters, no control characters (a line break means more than the key
/// was pasted, and the provider would reject every signature made with it).
pub fn check_secret_shape(secret: &SecretString) -> Result<(), SecretError> {
    let text = secret.expose_secret();
    if text.trim().is_empty() {
        return Err(SecretError::Empty);
    }
    if text.chars().count() > MAX_SECRET_LEN || text.chars().any(char::is_control) {
        return Err(SecretError::Malformed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_upper_case_and_replace_non_alphanumerics() {
        assert_eq!(env_var_name("ik"), "DROPKEY_SECRET_IK");
        assert_eq!(env_var_name("my-cl.prod_2"), "DROPKEY_SECRET_MY_CL_PROD_2");
    }

    #[test]
    fn sandbox_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(SANDBOX_KEY_FILE);
        let first = read_or_create_key_file(&path).unwrap();
        let second = read_or_create_key_file(&path).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert!(first.expose_secret().starts_with("private_sandbox_"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn captured_env_secrets_leave_the_environment_and_children_never_see_them() {
        // The only test here that touches DROPKEY_SECRET_* variables, so no other test races it.
        std::env::set_var("DROPKEY_SECRET_CAPTURE_TEST", "private_capture_test_value");
        std::env::set_var("DROPKEY_SECRET_CAPTURE_EMPTY", "");
        let taken = take_env_secrets();
        assert_eq!(
            taken["DROPKEY_SECRET_CAPTURE_TEST"].expose_secret(),
            "private_capture_test_value"
        );
        assert!(!taken.contains_key("DROPKEY_SECRET_CAPTURE_EMPTY"));
        assert!(std::env::var_os("DROPKEY_SECRET_CAPTURE_TEST").is_none());
        assert!(std::env::var_os("DROPKEY_SECRET_CAPTURE_EMPTY").is_none());
        let child = std::process::Command::new("env").output().unwrap();
        let seen = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success());
        assert!(seen.contains("PATH="), "env printed the environment");
        assert!(!seen.contains("DROPKEY_SECRET_"), "{seen}");
        assert!(!seen.contains("private_capture_test_value"));
    }

    #[test]
    fn a_key_is_refused_blank_overlong_or_with_control_characters() {
        let shape = |text: &str| check_secret_shape(&SecretString::from(text));
        assert!(shape("private_abc123+/=").is_ok());
        assert!(shape(&"k".repeat(MAX_SECRET_LEN)).is_ok());
        assert!(matches!(shape(""), Err(SecretError::Empty)));
        assert!(matches!(shape("  \t "), Err(SecretError::Empty)));
        assert!(matches!(
            shape(&"k".repeat(MAX_SECRET_LEN + 1)),
            Err(SecretError::Malformed)
        ));
        for bad in [
            "private_a\nprivate_b",
            "private_a\r",
            "private\u{7f}x",
            "a\0b",
        ] {
            let err = shape(bad).unwrap_err();
            assert!(matches!(err, SecretError::Malformed), "{bad:?}");
            // The message names the rule, never the input.
            assert!(!err.to_string().contains("private_a"), "{err}");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let secret = SecretString::from("hunter2-super-secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
