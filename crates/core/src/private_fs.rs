//! Files only their owner can read. Dropkey's data dir holds the queue and history (paths,
//! URLs), copies of uploaded files (the sandbox), the sandbox key, bearer-token hashes and logs:
//! none of it is for other local users. Everything Dropkey creates there is made private
//! explicitly (directories 0700, files 0600), so the result does not depend on the umask, and
//! [`secure_tree`] tightens what an older version or another tool left more open.
//!
//! On non-Unix systems these are plain creates: the per-user profile directory's ACL applies.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

/// Mode of every directory Dropkey creates in its data and config dirs.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Dropkey creates in its data dir.
pub const FILE_MODE: u32 = 0o600;

/// `create_dir_all` with every directory it creates 0700. Directories that already existed are
/// left alone: they may be the user's (`~/.local/share`, the folder of a `--config` file); the
/// data dir itself is tightened by [`secure_tree`].
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(DIR_MODE);
    }
    builder.create(path)
}

/// Options that create files 0600 (the umask can only remove bits, never add them).
pub fn options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE);
    }
    options
}

/// Creates (or truncates) `path` as a private file.
pub fn create(path: &Path) -> io::Result<std::fs::File> {
    options().write(true).create(true).truncate(true).open(path)
}

/// Removes group and other bits from `path` (not following a symlink); a missing path is fine.
pub fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let current = meta.permissions().mode() & 0o7777;
        // Only take away: a file the user made read-only stays read-only.
        let wanted = current & mode;
        if wanted != current {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Makes `root` and everything under it private: directories 0700, files 0600 at most. Symlinks
/// are neither followed nor changed. A missing `root` is fine. Cheap enough for every start: one
/// `lstat` per entry, a `chmod` only where something is too open.
pub fn secure_tree(root: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(root) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if meta.is_dir() {
        tighten(root, DIR_MODE)?;
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    tighten(&entry.path(), DIR_MODE)?;
                    stack.push(entry.path());
                } else if kind.is_file() {
                    tighten(&entry.path(), FILE_MODE)?;
                }
            }
        }
    } else if meta.is_file() {
        tighten(root, FILE_MODE)?;
    }
    Ok(())
}

/// Creates the data dir (0700) if needed, then [`secure_existing`]: what a front end calls at
/// start before it opens anything in the data dir.
pub fn secure_paths(paths: &crate::config::Paths) -> io::Result<()> {
    create_dir_all(&paths.data_dir)?;
    secure_existing(paths)
}

/// Tightens the data dir's tree and, when it is the platform default (not a file the user named,
/// whose folder may be shared with other things), the config dir and file. Creates nothing.
pub fn secure_existing(paths: &crate::config::Paths) -> io::Result<()> {
    secure_tree(&paths.data_dir)?;
    if !paths.config_explicit {
        if let Some(dir) = paths.config_file.parent() {
            tighten(dir, DIR_MODE)?;
        }
        tighten(&paths.config_file, FILE_MODE)?;
    }
    Ok(())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn creates_private_whatever_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        let file = nested.join("f");
        create(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn secure_tree_only_takes_bits_away() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let open = root.join("sub/open");
        let readonly = root.join("readonly");
        std::fs::write(&open, b"x").unwrap();
        std::fs::write(&readonly, b"x").unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o444)).unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();

        secure_tree(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("sub")), 0o700);
        assert_eq!(mode(&open), 0o600);
        assert_eq!(mode(&readonly), 0o400);
        assert_eq!(mode(&outside), 0o644, "a symlink's target is not Dropkey's");
    }
}
