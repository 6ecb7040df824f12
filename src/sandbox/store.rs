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
//! - `used-tokens`: SHA-256 of every ImageKit token ever presented, one per line, append-only.
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

#[derive(Debug)]
struct TokenLog {
    used: HashSet<String>,
    file: tokio::fs::File,
}

#[derive(Debug)]
pub(crate) struct Store {
    files: PathBuf,
    ik_meta: PathBuf,
    cl_meta: PathBuf,
    tmp: PathBuf,
    chunks: PathBuf,
    pub index: RwLock<Index>,
    tokens: Mutex<TokenLog>,
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
            crate::private_fs::create_dir_all(dir).map_err(storage(dir))?;
        }
        // Copies of uploaded files: private, also those an older version left 0644.
        crate::private_fs::secure_tree(root).map_err(storage(root))?;
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
        let used = match std::fs::read_to_string(&tokens_path) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned)
                .collect(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
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
            tokens: Mutex::new(TokenLog {
                used,
                file: tokio::fs::File::from_std(tokens_file),
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

    /// Marks `token` used, persisting it before returning; says whether it was used before.
    pub async fn consume_token(&self, token: &str) -> std::io::Result<TokenUse> {
        let digest = sha256_hex(token.as_bytes());
        let mut log = self.tokens.lock().await;
        if log.used.contains(&digest) {
            return Ok(TokenUse::Reused);
        }
        // In memory first: should the disk fail, the token still counts as used (fail closed).
        log.used.insert(digest.clone());
        log.file.write_all(format!("{digest}\n").as_bytes()).await?;
        log.file.flush().await?;
        Ok(TokenUse::Fresh)
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
            crate::private_fs::create(&path)?.write_all(&bytes)
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
            let mut out = crate::private_fs::options()
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
            let mut file = std::fs::File::open(&path)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1024 * 1024];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Ok(hex::encode(hasher.finalize()))
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

/// Opens `path` for appending, first ending a torn last line (a crash mid-append) so the next
/// line starts on its own.
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut file = crate::private_fs::options()
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
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.consume_token("t1").await.unwrap(), TokenUse::Fresh);
        assert_eq!(store.consume_token("t1").await.unwrap(), TokenUse::Reused);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.consume_token("t1").await.unwrap(), TokenUse::Reused);
        assert_eq!(store.consume_token("t2").await.unwrap(), TokenUse::Fresh);
        let text = std::fs::read_to_string(dir.path().join(USED_TOKENS_FILE)).unwrap();
        assert!(!text.contains("t1"), "tokens are stored hashed");
        assert_eq!(text.lines().count(), 2);
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
