//! Which file a job is about, and opening exactly that file again.
//!
//! A job records the identity of its file when it is queued (device, inode, size, mtime, and
//! for watched files the SHA-256 the watcher took). Every attempt opens the path once, checks
//! the open handle against that identity and streams from the same handle, so a file swapped in
//! at the same path (another inode, a symlink, other bytes) is never uploaded as the old job.
//! The watcher checks the same identity before `after_upload` deletes or moves a file.
//!
//! On Windows there is no stable device/inode in `std`: size, mtime and the hash remain.

use std::fs::File;
use std::io::Seek as _;
use std::path::Path;
use std::time::SystemTime;

/// What a queued file looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    /// SHA-256 (hex) of the content, when it was hashed at queue time (watched files).
    pub sha256: Option<String>,
    /// Open without following a symlink at the path (watched files: a link placed there later
    /// must not lead the upload out of the watched folder).
    pub no_follow: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot open it: {0}")]
    Io(#[from] std::io::Error),
    #[error("it is no longer the file that was queued ({0}), so it is not uploaded as this job; upload it again (a watched folder queues it again by itself)")]
    Changed(String),
}

impl FileIdentity {
    /// The identity in `meta` (no hash).
    pub fn of(meta: &std::fs::Metadata, no_follow: bool) -> Self {
        let (dev, ino) = dev_ino(meta);
        Self {
            dev,
            ino,
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            sha256: None,
            no_follow,
        }
    }

    /// How `meta` differs from this identity (device, inode, size, mtime), if it does.
    pub fn difference(&self, meta: &std::fs::Metadata) -> Option<String> {
        if !meta.is_file() {
            return Some("not a regular file any more".into());
        }
        if dev_ino(meta) != (self.dev, self.ino) {
            return Some("another file was put at its path".into());
        }
        if meta.len() != self.size {
            return Some(format!("{} bytes, {} when queued", meta.len(), self.size));
        }
        if mtime_ns(meta) != self.mtime_ns {
            return Some("modified since it was queued".into());
        }
        None
    }
}

/// Opens `path` for reading. Never blocks on a FIFO or device swapped in at the path
/// (`O_NONBLOCK`, harmless for regular files); with `no_follow`, refuses a symlink.
pub fn open_file(path: &Path, no_follow: bool) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut flags = OFlags::NONBLOCK;
        if no_follow {
            flags |= OFlags::NOFOLLOW;
        }
        options.custom_flags(flags.bits() as i32);
    }
    #[cfg(not(unix))]
    if no_follow && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(std::io::Error::other("it is a symbolic link"));
    }
    options.open(path)
}

/// Opens the job's file and checks the open handle against `expected` (when the job has one):
/// device, inode, size and mtime always, the SHA-256 too when `hash` is set and one was taken.
/// The handle is returned at offset 0, ready to stream.
pub fn open_verified(
    path: &Path,
    expected: Option<&FileIdentity>,
    hash: bool,
) -> Result<File, IdentityError> {
    let mut file = open_file(path, expected.is_some_and(|e| e.no_follow))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(IdentityError::Changed("not a regular file".into()));
    }
    let Some(expected) = expected else {
        return Ok(file);
    };
    if let Some(why) = expected.difference(&meta) {
        return Err(IdentityError::Changed(why));
    }
    if let (true, Some(sha)) = (hash, &expected.sha256) {
        if &sha256_of(&mut file)? != sha {
            return Err(IdentityError::Changed(
                "its content differs from what was checked when it was queued".into(),
            ));
        }
        file.rewind()?;
    }
    Ok(file)
}

/// SHA-256 (hex) of what is left to read in `file`, in 1 MiB reads.
pub fn sha256_of(file: &mut File) -> std::io::Result<String> {
    sha256_of_reader(file)
}

/// SHA-256 (hex) of everything `reader` yields.
pub fn sha256_of_reader(reader: &mut impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Opens the file at `rel` (`/`-separated) below `root` without following a symlink anywhere
/// below `root`: each folder is opened relative to the previous one with `O_NOFOLLOW`, so a
/// folder swapped for a link meanwhile cannot lead outside `root`.
pub fn open_beneath(root: &Path, rel: &str) -> std::io::Result<File> {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a plain relative path",
        ));
    }
    #[cfg(unix)]
    {
        use rustix::fs::{openat, Mode, OFlags};
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir = openat(
            rustix::fs::CWD,
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let (name, folders) = parts
            .split_last()
            .ok_or_else(|| std::io::Error::other("empty path"))?;
        for folder in folders {
            dir = openat(&dir, *folder, dir_flags, Mode::empty())?;
        }
        let file = openat(
            &dir,
            *name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(file))
    }
    #[cfg(not(unix))]
    {
        // No openat: check each component, then open. A swap between the two is caught later
        // by the identity check of the upload.
        let mut path = root.to_path_buf();
        for part in &parts {
            path.push(part);
            if std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
                return Err(std::io::Error::other("a symbolic link is on the path"));
            }
        }
        open_file(&path, true)
    }
}

/// Renames `from` to `to` unless something exists at `to` (then `AlreadyExists`), atomically:
/// `renameat2(RENAME_NOREPLACE)` (Linux) / `renamex_np(RENAME_EXCL)` (macOS), else a hard link
/// (which fails on an existing name) and an unlink.
pub fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // A file system without the flag: fall back to link + unlink.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

/// Whether `meta` is the inode `expected` names (device and inode; always true on Windows).
pub fn same_inode_as(expected: &FileIdentity, meta: &std::fs::Metadata) -> bool {
    dev_ino(meta) == (expected.dev, expected.ino)
}

/// Whether `a` and `b` are the same inode (always true on Windows).
pub fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    dev_ino(a) == dev_ino(b)
}

pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Device and inode of `meta` (`(0, 0)` on Windows).
pub fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        (meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swapped_or_rewritten_file_is_refused_on_the_open_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"first").unwrap();
        let mut file = open_file(&path, true).unwrap();
        let mut id = FileIdentity::of(&file.metadata().unwrap(), true);
        id.sha256 = Some(sha256_of(&mut file).unwrap());
        assert!(open_verified(&path, Some(&id), true).is_ok());

        // Same size and mtime, other inode.
        let other = dir.path().join("b.txt");
        std::fs::write(&other, b"secnd").unwrap();
        let f = File::options().write(true).open(&other).unwrap();
        f.set_modified(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(id.mtime_ns as u64),
        )
        .unwrap();
        drop(f);
        std::fs::rename(&other, &path).unwrap();
        assert!(matches!(
            open_verified(&path, Some(&id), true),
            Err(IdentityError::Changed(_))
        ));

        // Same inode, size and mtime, other bytes: only the hash tells.
        let mut file = open_file(&path, true).unwrap();
        let mut id = FileIdentity::of(&file.metadata().unwrap(), true);
        id.sha256 = Some(sha256_of(&mut file).unwrap());
        let f = File::options().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut &f, b"SECND").unwrap();
        f.set_modified(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(id.mtime_ns as u64),
        )
        .unwrap();
        drop(f);
        assert!(open_verified(&path, Some(&id), false).is_ok());
        assert!(matches!(
            open_verified(&path, Some(&id), true),
            Err(IdentityError::Changed(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_below_the_root_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), b"secret").unwrap();
        std::fs::write(root.join("sub/ok.txt"), b"ok").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linkdir")).unwrap();
        assert!(open_beneath(&root, "sub/ok.txt").is_ok());
        assert!(open_beneath(&root, "link.txt").is_err());
        assert!(open_beneath(&root, "linkdir/secret.txt").is_err());
        assert!(open_beneath(&root, "../outside/secret.txt").is_err());
        assert!(open_file(&root.join("link.txt"), true).is_err());
        assert!(open_file(&root.join("link.txt"), false).is_ok());
    }

    #[test]
    fn rename_no_replace_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let err = rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        let c = dir.path().join("c");
        rename_no_replace(&a, &c).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(&c).unwrap(), b"a");
    }
}
