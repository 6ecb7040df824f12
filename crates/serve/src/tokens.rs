//! Bearer tokens: the credentials callers present to `dropkey serve`.
//!
//! `dropkey serve token add NAME` makes 256 random bits, prints them once and stores only their
//! SHA-256 in `<data dir>/serve-tokens.json` (mode 0600, replaced atomically). The server checks
//! a presented token by hashing it and comparing with every stored hash in constant time, so
//! neither the file nor the timing tells anything about a valid token. A running server
//! re-reads the file when it changes, so `add` and `remove` take effect without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use super::ServeError;

/// The token file's name inside the data directory.
pub const TOKENS_FILE: &str = "serve-tokens.json";
/// Every token starts with this, so a leaked one is easy to recognise (and to grep for).
const TOKEN_PREFIX: &str = "dk_";
/// How often a running server looks for changes to the token file.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// One token as stored: its name and hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredToken {
    pub name: String,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    /// Unix time of `token add`.
    pub created: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<StoredToken>,
}

/// Where the token file of `data_dir` is.
pub fn tokens_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKENS_FILE)
}

/// The tokens stored at `path`; none when the file does not exist.
pub fn list(path: &Path) -> Result<Vec<StoredToken>, ServeError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ServeError::TokenFile {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let file: TokenFile =
        serde_json::from_str(&text).map_err(|err| ServeError::TokenFileCorrupt {
            path: path.to_path_buf(),
            detail: err.to_string(),
        })?;
    for token in &file.tokens {
        if !dropkey_core::config::valid_profile_name(&token.name)
            || decode_hash(&token.sha256).is_none()
        {
            return Err(ServeError::TokenFileCorrupt {
                path: path.to_path_buf(),
                detail: format!("the entry `{}` has a bad name or hash", token.name),
            });
        }
    }
    Ok(file.tokens)
}

/// Creates a token called `name`, stores its hash and returns the token itself: the only time
/// it exists in clear outside the caller's hands.
pub fn add(path: &Path, name: &str) -> Result<SecretString, ServeError> {
    if !dropkey_core::config::valid_profile_name(name) {
        return Err(ServeError::BadTokenName {
            name: name.to_owned(),
        });
    }
    let mut tokens = list(path)?;
    if tokens.iter().any(|t| t.name == name) {
        return Err(ServeError::TokenExists {
            name: name.to_owned(),
        });
    }
    let token = generate();
    tokens.push(StoredToken {
        name: name.to_owned(),
        sha256: hex::encode(hash(token.expose_secret())),
        created: dropkey_core::unix_now(),
    });
    write(path, &tokens)?;
    Ok(token)
}

/// Removes the token called `name`. Returns whether there was one.
pub fn remove(path: &Path, name: &str) -> Result<bool, ServeError> {
    let mut tokens = list(path)?;
    let before = tokens.len();
    tokens.retain(|t| t.name != name);
    if tokens.len() == before {
        return Ok(false);
    }
    write(path, &tokens)?;
    Ok(true)
}

fn generate() -> SecretString {
    use rand::RngCore as _;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let encoded = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()));
    dropkey_core::secrets::into_secret(format!("{TOKEN_PREFIX}{}", encoded.as_str()))
}

fn hash(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

/// Writes the token list through a private temporary file renamed over the old one, so a
/// reader never sees half a file and the file is never readable by others.
fn write(path: &Path, tokens: &[StoredToken]) -> Result<(), ServeError> {
    use std::io::Write as _;
    let io_err = |source| ServeError::TokenFile {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    dropkey_core::private_fs::create_dir_all(dir).map_err(io_err)?;
    let file = TokenFile {
        tokens: tokens.to_vec(),
    };
    let mut text = serde_json::to_vec_pretty(&file)
        .unwrap_or_else(|_| unreachable!("plain strings and integers serialise"));
    text.push(b'\n');
    let tmp = dir.join(format!(".{TOKENS_FILE}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = options.open(&tmp).and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    });
    if let Err(err) = result.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(err));
    }
    Ok(())
}

/// The hashes a running server accepts, kept current with the token file.
#[derive(Debug, Clone)]
pub struct TokenSet {
    inner: Arc<RwLock<Arc<Vec<Entry>>>>,
}

#[derive(Debug)]
struct Entry {
    name: Arc<str>,
    hash: [u8; 32],
}

impl TokenSet {
    pub fn new(tokens: &[StoredToken]) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(entries(tokens)))),
        }
    }

    fn replace(&self, tokens: &[StoredToken]) {
        let fresh = Arc::new(entries(tokens));
        match self.inner.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    fn snapshot(&self) -> Arc<Vec<Entry>> {
        match self.inner.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The name of the token `presented` is, if it is one. Every stored hash is compared, in
    /// constant time, whatever matches.
    pub fn verify(&self, presented: &str) -> Option<Arc<str>> {
        let digest = hash(presented);
        let entries = self.snapshot();
        let mut found: Option<&Entry> = None;
        for entry in entries.iter() {
            if bool::from(entry.hash.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        found.map(|e| e.name.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    /// Re-reads `path` whenever its size or modification time changes, until `cancel`. A file
    /// that cannot be read or parsed empties the set: failing closed beats honouring a token
    /// that may have been removed.
    pub async fn watch(self, path: PathBuf, cancel: tokio_util::sync::CancellationToken) {
        let stamp = |path: &Path| -> Option<(SystemTime, u64)> {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        let mut last = stamp(&path);
        let mut interval = tokio::time::interval(RELOAD_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = interval.tick() => {}
            }
            let now = stamp(&path);
            if now == last {
                continue;
            }
            last = now;
            match list(&path) {
                Ok(tokens) => {
                    tracing::info!("token file changed: {} token(s)", tokens.len());
                    self.replace(&tokens);
                }
                Err(err) => {
                    tracing::error!("{err}; refusing every token until it is fixed");
                    self.replace(&[]);
                }
            }
        }
    }
}

fn entries(tokens: &[StoredToken]) -> Vec<Entry> {
    tokens
        .iter()
        .filter_map(|t| {
            Some(Entry {
                name: Arc::from(t.name.as_str()),
                hash: decode_hash(&t.sha256)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_verify_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = tokens_path(dir.path());
        let alice = add(&path, "alice").unwrap();
        let bob = add(&path, "bob").unwrap();
        assert!(alice.expose_secret().starts_with("dk_"));
        assert_ne!(alice.expose_secret(), bob.expose_secret());
        assert!(matches!(
            add(&path, "alice"),
            Err(ServeError::TokenExists { .. })
        ));
        assert!(matches!(
            add(&path, "no spaces"),
            Err(ServeError::BadTokenName { .. })
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(alice.expose_secret()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let set = TokenSet::new(&list(&path).unwrap());
        assert_eq!(set.verify(alice.expose_secret()).as_deref(), Some("alice"));
        assert_eq!(set.verify(bob.expose_secret()).as_deref(), Some("bob"));
        assert_eq!(set.verify("dk_nope"), None);
        assert!(remove(&path, "alice").unwrap());
        assert!(!remove(&path, "alice").unwrap());
        let set = TokenSet::new(&list(&path).unwrap());
        assert_eq!(set.verify(alice.expose_secret()), None);
    }

    #[test]
    fn corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = tokens_path(dir.path());
        std::fs::write(
            &path,
            "{\"tokens\":[{\"name\":\"a\",\"sha256\":\"xyz\",\"created\":1}]}",
        )
        .unwrap();
        assert!(matches!(
            list(&path),
            Err(ServeError::TokenFileCorrupt { .. })
        ));
        assert!(list(&dir.path().join("absent.json")).unwrap().is_empty());
    }
}
