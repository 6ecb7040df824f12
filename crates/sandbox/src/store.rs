//! The sandbox's disk and memory: stored files and their metadata, the in-memory index over
//! them, the used-token set, chunked-upload partials, and the ledger.
//!
//! Layout under the root:
//! - `files/<blob>`: file contents, one blob per stored version (`ik-<fileId>-v<n>`,
//!   `cl-<asset_id>-v<version>`), so a replacement never overwrites bytes someone may be reading.
//! - `meta/imagekit/<fileId>.json`, `meta/cloudinary/<asset_id>.json`: one record per file,
//!   written atomically (temp file + rename) and loaded into the [`Index`] at start.
//! - `tmp/`: uploads being received; emptied at start.
//! - `chunks/<key>.part` + `chunks/<key>.json`: chunked uploads in progress (data, and how much
//!   of it is committed), kept across restarts so a client can resume.
//! - `used-tokens`: `<SHA-256> <exp>` of every ImageKit token that verified and was presented,
//!   one per line, appended; entries past their `exp` are dropped (a token that has expired is
//!   refused as expired anyway), and the file is rewritten once most of its lines have expired.
//!   Only verified tokens are recorded, so forged ones cost neither memory nor disk.
//! - `ledger.jsonl`: one JSON line per accepted upload, appended before the success response.
//!
//! Writes are flushed to the OS before a response depends on them, but not fsynced: the
//! sandbox must survive its own restarts and crashes, not a power cut.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Mutex, RwLock};

use super::error::SandboxError;
use super::form::TempFile;

pub(crate) const LEDGER_FILE: &str = "ledger.jsonl";
const USED_TOKENS_FILE: &str = "used-tokens";

/// An ImageKit file, as stored and as its API describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IkFile {
    pub file_id: String,
    pub name: String,
    /// Normalised, with leading and trailing slash: `/uploads/chat/`.
    pub folder: String,
    /// `folder` + `name`.
    pub file_path: String,
    pub size: u64,
    pub sha256: String,
    pub mime: String,
    pub tags: Option<Vec<String>>,
    pub is_private: bool,
    pub is_published: bool,
    pub custom_coordinates: Option<String>,
    pub custom_metadata: serde_json::Map<String, serde_json::Value>,
    pub description: Option<String>,
    pub version: u32,
    pub version_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub blob: String,
}

/// A Cloudinary asset, as stored and as its API describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClAsset {
    pub asset_id: String,
    /// The full public id, folder included.
    pub public_id: String,
    pub resource_type: String,
    /// Cloudinary's `type`: upload, private or authenticated.
    pub delivery_type: String,
    pub version: i64,
    pub version_id: String,
    /// Lowercase extension; empty for raw files, whose public id carries it.
    pub format: String,
    pub bytes: u64,
    pub sha256: String,
    pub mime: String,
    pub tags: Vec<String>,
    pub folder: String,
    pub original_filename: String,
    pub context: Option<BTreeMap<String, String>>,
    pub created_at: String,
    pub blob: String,
}

/// Cloudinary public ids are unique per resource type and delivery type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClKey {
    pub resource_type: String,
    pub delivery_type: String,
    pub public_id: String,
}

impl ClAsset {
    pub fn key(&self) -> ClKey {
        ClKey {
            resource_type: self.resource_type.clone(),
            delivery_type: self.delivery_type.clone(),
            public_id: self.public_id.clone(),
        }
    }
}

/// Every stored file, by the ids and paths the APIs look them up by.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub ik: HashMap<String, IkFile>,
    /// `filePath` → `fileId`.
    pub ik_paths: HashMap<String, String>,
    pub cl: HashMap<ClKey, ClAsset>,
}

/// One accepted upload, as a line of `ledger.jsonl`.
#[derive(Debug, Serialize)]
pub(crate) struct LedgerEntry<'a> {
    pub provider: &'static str,
    pub id: &'a str,
    pub name: &'a str,
    pub folder: &'a str,
    pub tags: &'a [String],
    pub size: u64,
    pub sha256: &'a str,
    pub scheme: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<&'a str>,
    pub at: String,
}

/// Whether a token was new when presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenUse {
    Fresh,
    Reused,
}

/// Where a blob's bytes come from when it is committed.
#[derive(Debug)]
pub(crate) enum BlobSource {
    /// A single upload, received into `tmp/`.
    Temp(TempFile),
    /// An assembled chunked upload; on failure it is moved back so the client can retry.
    Partial(PathBuf),
}

/// The used tokens in memory: digest → the token's `exp` (Unix seconds).
#[derive(Debug)]
struct UsedTokens {
    by_digest: HashMap<String, i64>,
    /// When entries past their `exp` are next dropped.
    next_prune: i64,
}

/// How often, at most, expired tokens are dropped from memory.
const PRUNE_EVERY_SECS: i64 = 60;
/// The used-token file is rewritten when it has this many more lines than live entries, and
/// more than twice as many: compaction stays rare, and the file stays within a constant factor
/// of what is live.
const COMPACT_SLACK_LINES: usize = 1024;
/// `exp` of a line written before lines carried one: kept for good, since its real expiry is
/// unknown and forgetting a token early would let it be used twice.
const LEGACY_EXP: i64 = i64::MAX;

#[derive(Debug)]
struct TokenFile {
    file: tokio::fs::File,
    path: PathBuf,
    lines: usize,
}

#[derive(Debug)]
pub(crate) struct Store {
    files: PathBuf,
    ik_meta: PathBuf,
    cl_meta: PathBuf,
    tmp: PathBuf,
    chunks: PathBuf,
    pub index: RwLock<Index>,
    /// Synchronous, so a request can ask whether a token is spent while it parses its form.
    used: std::sync::Mutex<UsedTokens>,
    token_file: Mutex<TokenFile>,
    ledger: Mutex<tokio::fs::File>,
    /// One lock per chunked upload, so its chunks are committed one at a time. Entries stay for
    /// the process's life (one small entry per upload): dropping one while a chunk waits on it
    /// would let a newcomer take a fresh lock and commit beside the waiter.
    chunk_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl Store {
    /// Opens (creating) the storage under `root`: empties `tmp/`, loads the metadata, drops
    /// blobs no metadata names (left by a crash mid-commit), and loads the used tokens.
    /// Blocking: call it from `spawn_blocking`.
    pub fn open(root: &Path) -> Result<Self, SandboxError> {
        let storage = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SandboxError::Storage { path, source }
        };
        let files = root.join("files");
        let meta = root.join("meta");
        let ik_meta = meta.join("imagekit");
        let cl_meta = meta.join("cloudinary");
        let tmp = root.join("tmp");
        let chunks = root.join("chunks");
        for dir in [root, &files, &ik_meta, &cl_meta, &tmp, &chunks] {
            dropkey_core::private_fs::create_dir_all(dir).map_err(storage(dir))?;
        }
        // Copies of uploaded files: private, also those an older version left 0644.
        dropkey_core::private_fs::secure_tree(root).map_err(storage(root))?;
        for entry in std::fs::read_dir(&tmp).map_err(storage(&tmp))? {
            let path = entry.map_err(storage(&tmp))?.path();
            if path.is_file() {
                std::fs::remove_file(&path).map_err(storage(&path))?;
            }
        }

        let mut index = Index::default();
        for (path, file) in load_records::<IkFile>(&ik_meta)? {
            if let Some(other) = index
                .ik_paths
                .insert(file.file_path.clone(), file.file_id.clone())
            {
                return Err(SandboxError::Corrupt {
                    path,
                    detail: format!("file {other} already has the path {}", file.file_path),
                });
            }
            index.ik.insert(file.file_id.clone(), file);
        }
        for (path, asset) in load_records::<ClAsset>(&cl_meta)? {
            if index.cl.insert(asset.key(), asset).is_some() {
                return Err(SandboxError::Corrupt {
                    path,
                    detail: "another asset has the same public id and type".into(),
                });
            }
        }
        let referenced: HashSet<&str> = index
            .ik
            .values()
            .map(|f| f.blob.as_str())
            .chain(index.cl.values().map(|a| a.blob.as_str()))
            .collect();
        for entry in std::fs::read_dir(&files).map_err(storage(&files))? {
            let entry = entry.map_err(storage(&files))?;
            let name = entry.file_name();
            if !referenced.contains(name.to_string_lossy().as_ref()) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(storage(&path))?;
            }
        }

        let tokens_path = root.join(USED_TOKENS_FILE);
        let (by_digest, lines) = match std::fs::read_to_string(&tokens_path) {
            Ok(text) => parse_used_tokens(&text, dropkey_core::unix_now()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => (HashMap::new(), 0),
            Err(err) => return Err(storage(&tokens_path)(err)),
        };
        let tokens_file = open_append(&tokens_path).map_err(storage(&tokens_path))?;
        let ledger_path = root.join(LEDGER_FILE);
        let ledger = open_append(&ledger_path).map_err(storage(&ledger_path))?;

        Ok(Self {
            files,
            ik_meta,
            cl_meta,
            tmp,
            chunks,
            index: RwLock::new(index),
            used: std::sync::Mutex::new(UsedTokens {
                by_digest,
                next_prune: 0,
            }),
            token_file: Mutex::new(TokenFile {
                file: tokio::fs::File::from_std(tokens_file),
                path: tokens_path,
                lines,
            }),
            ledger: Mutex::new(tokio::fs::File::from_std(ledger)),
            chunk_locks: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn blob_path(&self, blob: &str) -> PathBuf {
        self.files.join(blob)
    }

    pub fn ik_meta_path(&self, file_id: &str) -> PathBuf {
        self.ik_meta.join(format!("{file_id}.json"))
    }

    pub fn cl_meta_path(&self, asset_id: &str) -> PathBuf {
        self.cl_meta.join(format!("{asset_id}.json"))
    }

    /// Whether `token` was already spent (and has not expired since).
    pub fn token_spent(&self, token: &str) -> bool {
        let digest = sha256_hex(token.as_bytes());
        self.used_tokens().by_digest.contains_key(&digest)
    }

    /// Marks `token`, which verified and expires at `exp`, used, persisting it before
    /// returning; says whether it was used before. Entries past their `exp` are dropped now and
    /// then (`now` is the caller's clock, so tests can move it).
    pub async fn consume_token(
        &self,
        token: &str,
        exp: i64,
        now: i64,
    ) -> std::io::Result<TokenUse> {
        let digest = sha256_hex(token.as_bytes());
        let live = {
            let mut used = self.used_tokens();
            if used.by_digest.contains_key(&digest) {
                return Ok(TokenUse::Reused);
            }
            if now >= used.next_prune {
                used.by_digest.retain(|_, e| *e > now);
                used.next_prune = now.saturating_add(PRUNE_EVERY_SECS);
            }
            // In memory first: should the disk fail, the token still counts as used (fail
            // closed).
            used.by_digest.insert(digest.clone(), exp);
            used.by_digest.len()
        };
        let mut file = self.token_file.lock().await;
        if file.lines > live.saturating_mul(2) && file.lines - live > COMPACT_SLACK_LINES {
            self.compact_tokens(&mut file, &digest).await?;
        }
        file.file
            .write_all(format!("{digest} {exp}\n").as_bytes())
            .await?;
        file.file.flush().await?;
        file.lines += 1;
        Ok(TokenUse::Fresh)
    }

    fn used_tokens(&self) -> std::sync::MutexGuard<'_, UsedTokens> {
        // The map is valid after any panic mid-update (an insert or a retain), so a poisoned
        // lock is simply used.
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rewrites the used-token file with the live entries only (atomically: a crash leaves the
    /// old file or the new one). The caller holds the file lock, so no line is appended to the
    /// old file meanwhile; an entry added to memory since the snapshot is appended afterwards,
    /// as is `adding`, the caller's.
    async fn compact_tokens(&self, file: &mut TokenFile, adding: &str) -> std::io::Result<()> {
        let text: String = {
            let used = self.used_tokens();
            used.by_digest
                .iter()
                .filter(|(digest, _)| digest.as_str() != adding)
                .map(|(digest, exp)| format!("{digest} {exp}\n"))
                .collect()
        };
        let lines = text.lines().count();
        let temp = TempFile::new_in(&self.tmp);
        let path = temp.path().to_owned();
        blocking(move || dropkey_core::private_fs::create(&path)?.write_all(text.as_bytes()))
            .await?;
        temp.persist(&file.path).await?;
        let path = file.path.clone();
        file.file = tokio::fs::File::from_std(blocking(move || open_append(&path)).await?);
        file.lines = lines;
        Ok(())
    }

    /// Appends one line to the ledger and waits until it is written.
    pub async fn append_ledger(&self, entry: &LedgerEntry<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut ledger = self.ledger.lock().await;
        ledger.write_all(&line).await?;
        ledger.flush().await
    }

    /// Stores a file version: moves its bytes to `files/<blob>`, writes its metadata to
    /// `meta_path`, appends `ledger`, and on success removes the version it replaces. Any
    /// failure undoes the earlier steps, so a file is either stored and in the ledger, or
    /// neither. The caller holds the index write lock and updates the index afterwards.
    pub async fn commit<T: Serialize>(
        &self,
        meta_path: &Path,
        record: &T,
        blob: &str,
        source: BlobSource,
        replaced: Option<(&T, &str)>,
        ledger: &LedgerEntry<'_>,
    ) -> std::io::Result<()> {
        let blob_path = self.blob_path(blob);
        let partial = match source {
            BlobSource::Temp(temp) => {
                temp.persist(&blob_path).await?;
                None
            }
            BlobSource::Partial(path) => {
                tokio::fs::rename(&path, &blob_path).await?;
                Some(path)
            }
        };
        let undo_blob = || async {
            let _ = match &partial {
                Some(path) => tokio::fs::rename(&blob_path, path).await,
                None => tokio::fs::remove_file(&blob_path).await,
            };
        };
        if let Err(err) = self.write_json_atomic(meta_path, record).await {
            undo_blob().await;
            return Err(err);
        }
        if let Err(err) = self.append_ledger(ledger).await {
            let _ = match replaced {
                Some((old, _)) => self.write_json_atomic(meta_path, old).await,
                None => tokio::fs::remove_file(meta_path).await,
            };
            undo_blob().await;
            return Err(err);
        }
        if let Some((_, old_blob)) = replaced {
            if old_blob != blob {
                remove_quietly(&self.blob_path(old_blob)).await;
            }
        }
        Ok(())
    }

    /// Deletes a stored file's metadata, then its blob.
    pub async fn remove(&self, meta_path: &Path, blob: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(meta_path).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        remove_quietly(&self.blob_path(blob)).await;
        Ok(())
    }

    /// Writes `value` as JSON to `dest` atomically: a reader sees the old file or the new one.
    pub async fn write_json_atomic<T: Serialize>(
        &self,
        dest: &Path,
        value: &T,
    ) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(value)?;
        let temp = TempFile::new_in(&self.tmp);
        let path = temp.path().to_owned();
        blocking(move || {
            use std::io::Write as _;
            dropkey_core::private_fs::create(&path)?.write_all(&bytes)
        })
        .await?;
        temp.persist(dest).await
    }

    // -- chunked uploads ------------------------------------------------------------------

    /// The on-disk name of a chunked upload: hashed, because the upload id is client-chosen.
    pub fn chunk_key(cloud: &str, upload_id: &str) -> String {
        sha256_hex(format!("{cloud}\0{upload_id}").as_bytes())
    }

    pub fn chunk_state_path(&self, key: &str) -> PathBuf {
        self.chunks.join(format!("{key}.json"))
    }

    pub fn chunk_part_path(&self, key: &str) -> PathBuf {
        self.chunks.join(format!("{key}.part"))
    }

    /// The lock that serialises the chunks of one upload.
    pub fn chunk_lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self
            .chunk_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        locks.entry(key.to_owned()).or_default().clone()
    }

    pub async fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
        match tokio::fs::read(path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|err| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not valid: {err}", path.display()),
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Appends the bytes of `chunk` to the partial file `part` after its first `committed`
    /// bytes, discarding anything beyond them (a crash between writing data and recording it).
    pub async fn append_chunk(
        part: PathBuf,
        chunk: PathBuf,
        committed: u64,
    ) -> std::io::Result<()> {
        blocking(move || {
            let mut out = dropkey_core::private_fs::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&part)?;
            let len = out.metadata()?.len();
            if len < committed {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "the partial upload holds {len} bytes but {committed} were acknowledged"
                    ),
                ));
            }
            out.set_len(committed)?;
            out.seek(std::io::SeekFrom::End(0))?;
            let mut input = std::fs::File::open(&chunk)?;
            // `std::io::copy` between files uses copy_file_range/sendfile where it can.
            std::io::copy(&mut input, &mut out)?;
            out.flush()
        })
        .await
    }

    /// SHA-256 of a file, read in large blocks off the async threads.
    pub async fn hash_file(path: PathBuf) -> std::io::Result<String> {
        blocking(move || {
            dropkey_core::engine::identity::sha256_of(&mut std::fs::File::open(&path)?)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|err| std::io::Error::other(format!("a blocking file task failed: {err}")))?
}

async fn remove_quietly(path: &Path) {
    if let Err(err) = tokio::fs::remove_file(path).await {
        if err.kind() != std::io::ErrorKind::NotFound {
            // Only a leak: unreferenced blobs are removed at the next start.
            tracing::warn!("cannot remove {}: {err}", path.display());
        }
    }
}

/// The live entries of a used-token file (`<digest> <exp>` lines, or a bare digest from before
/// lines carried an expiry), and how many lines it has. A digest seen twice keeps its latest
/// `exp`.
fn parse_used_tokens(text: &str, now: i64) -> (HashMap<String, i64>, usize) {
    let mut live = HashMap::new();
    let mut lines = 0;
    for line in text.split_inclusive('\n') {
        lines += 1;
        // A last line without its newline was torn by a crash mid-append: its expiry may be
        // cut short, so the token is kept rather than forgotten early.
        let torn = !line.ends_with('\n');
        let mut words = line.split_whitespace();
        let Some(digest) = words
            .next()
            .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            continue;
        };
        let exp = match words.next().map(str::parse::<i64>) {
            Some(Ok(exp)) if !torn => exp,
            _ => LEGACY_EXP,
        };
        if exp > now {
            let entry = live.entry(digest.to_owned()).or_insert(exp);
            *entry = (*entry).max(exp);
        }
    }
    (live, lines)
}

/// Opens `path` for appending, first ending a torn last line (a crash mid-append) so the next
/// line starts on its own.
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut file = dropkey_core::private_fs::options()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(std::io::SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(file)
}

fn load_records<T: DeserializeOwned>(dir: &Path) -> Result<Vec<(PathBuf, T)>, SandboxError> {
    let storage = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SandboxError::Storage { path, source }
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(storage(dir))? {
        let path = entry.map_err(storage(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(storage(&path))?;
        let record = serde_json::from_slice(&bytes).map_err(|err| SandboxError::Corrupt {
            path: path.clone(),
            detail: err.to_string(),
        })?;
        out.push((path, record));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_used_once_and_remembered_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let now = dropkey_core::unix_now();
        let exp = now + 600;
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.token_spent("t1"));
        assert_eq!(
            store.consume_token("t1", exp, now).await.unwrap(),
            TokenUse::Fresh
        );
        assert!(store.token_spent("t1"));
        assert_eq!(
            store.consume_token("t1", exp, now).await.unwrap(),
            TokenUse::Reused
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.token_spent("t1"));
        assert_eq!(
            store.consume_token("t1", exp, now).await.unwrap(),
            TokenUse::Reused
        );
        assert_eq!(
            store.consume_token("t2", exp, now).await.unwrap(),
            TokenUse::Fresh
        );
        let text = std::fs::read_to_string(dir.path().join(USED_TOKENS_FILE)).unwrap();
        assert!(!text.contains("t1"), "tokens are stored hashed");
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines().all(|l| l.ends_with(&format!(" {exp}"))),
            "{text}"
        );
    }

    #[tokio::test]
    async fn expired_tokens_leave_memory_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let now = dropkey_core::unix_now();
        let store = Store::open(dir.path()).unwrap();
        let count = COMPACT_SLACK_LINES + 10;
        for i in 0..count {
            let token = format!("short-{i}");
            store.consume_token(&token, now + 5, now).await.unwrap();
        }
        let lines = || {
            std::fs::read_to_string(dir.path().join(USED_TOKENS_FILE))
                .unwrap()
                .lines()
                .count()
        };
        assert_eq!(lines(), count);
        // Past their exp, the next use prunes memory and rewrites the file with what is live.
        let later = now + 5 + PRUNE_EVERY_SECS;
        store
            .consume_token("long", later + 600, later)
            .await
            .unwrap();
        assert!(!store.token_spent("short-0"));
        assert!(store.token_spent("long"));
        assert_eq!(store.used_tokens().by_digest.len(), 1);
        assert_eq!(lines(), 1);
        drop(store);
        // Expired lines are not loaded; a line without an expiry (an older sandbox's) is kept.
        let legacy = sha256_hex(b"legacy");
        let expired = sha256_hex(b"expired");
        let torn = sha256_hex(b"torn");
        std::fs::write(
            dir.path().join(USED_TOKENS_FILE),
            format!("{legacy}\n{expired} {}\n{torn} 1", now - 1),
        )
        .unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.token_spent("legacy"));
        assert!(!store.token_spent("expired"));
        assert!(store.token_spent("torn"), "a torn expiry is not trusted");
    }

    #[tokio::test]
    async fn open_empties_tmp_drops_orphan_blobs_and_mends_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        std::fs::write(dir.path().join("tmp/leftover.tmp"), b"x").unwrap();
        std::fs::write(dir.path().join("files/orphan"), b"x").unwrap();
        std::fs::write(dir.path().join(LEDGER_FILE), b"{\"torn\":").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(!dir.path().join("tmp/leftover.tmp").exists());
        assert!(!dir.path().join("files/orphan").exists());
        store
            .append_ledger(&LedgerEntry {
                provider: "imagekit",
                id: "a",
                name: "n",
                folder: "/",
                tags: &[],
                size: 1,
                sha256: "h",
                scheme: "v2",
                token_sha256: None,
                upload_id: None,
                at: "now".into(),
            })
            .await
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(LEDGER_FILE)).unwrap();
        let last = text.lines().last().unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(last).is_ok());
    }

    #[tokio::test]
    async fn append_chunk_discards_uncommitted_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("p");
        let chunk = dir.path().join("c");
        std::fs::write(&part, b"abcXX").unwrap();
        std::fs::write(&chunk, b"def").unwrap();
        Store::append_chunk(part.clone(), chunk.clone(), 3)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&part).unwrap(), b"abcdef");
        assert!(Store::append_chunk(part, chunk, 10).await.is_err());
    }
}
