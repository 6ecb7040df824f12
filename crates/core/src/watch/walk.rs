//! The streaming walk of a watched tree: its regular files a batch at a time, never a list of
//! the whole tree, so a scan of a million files holds what one batch holds.
//!
//! Open folders are kept on a stack (deepest last), so memory and descriptors grow with the
//! depth of the tree, not with its size or width. Symbolic links are never followed: an entry's
//! type comes from the folder listing (`lstat`-like), so a link to a folder is not entered and a
//! link to a file is not a file.

use std::fs::{Metadata, ReadDir};
use std::path::{Path, PathBuf};

/// Folders open at once at most. A folder found below this depth waits in
/// [`Walk::deferred`] (a path, not a descriptor) until the open ones are done, so an
/// absurdly deep tree cannot run the process out of descriptors.
const MAX_OPEN: usize = 64;

/// The files below a root, depth first, as [`Walk::next_batch`] asks for them.
pub struct Walk {
    recursive: bool,
    open: Vec<ReadDir>,
    deferred: Vec<PathBuf>,
}

impl Walk {
    /// A walk of `root`'s files, and with `recursive` of its subfolders' too.
    pub fn new(root: &Path, recursive: bool) -> Self {
        Self {
            recursive,
            open: Vec::new(),
            deferred: vec![root.to_path_buf()],
        }
    }

    /// Up to `max` more files with their (not followed) metadata; empty once the walk is over.
    /// A folder or entry that cannot be read is skipped: the next scan tries again.
    pub fn next_batch(&mut self, max: usize) -> Vec<(PathBuf, Metadata)> {
        let mut out = Vec::with_capacity(max.min(1024));
        while out.len() < max.max(1) {
            let Some(dir) = self.open.last_mut() else {
                let Some(path) = self.deferred.pop() else {
                    break;
                };
                if let Ok(dir) = std::fs::read_dir(&path) {
                    self.open.push(dir);
                }
                continue;
            };
            let entry = match dir.next() {
                Some(Ok(entry)) => entry,
                // An error mid-listing may repeat: leave the folder rather than spin on it.
                None | Some(Err(_)) => {
                    self.open.pop();
                    continue;
                }
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !self.recursive {
                    continue;
                }
                let path = entry.path();
                if self.open.len() < MAX_OPEN {
                    if let Ok(dir) = std::fs::read_dir(&path) {
                        self.open.push(dir);
                    }
                } else {
                    self.deferred.push(path);
                }
            } else if kind.is_file() {
                if let Ok(meta) = entry.metadata() {
                    out.push((entry.path(), meta));
                }
            }
        }
        out
    }

    /// Folders held open or waiting (for tests: the walk's memory).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.open.len() + self.deferred.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn drain(walk: &mut Walk, max: usize) -> Vec<PathBuf> {
        let mut all = Vec::new();
        loop {
            let batch = walk.next_batch(max);
            assert!(batch.len() <= max);
            if batch.is_empty() {
                return all;
            }
            all.extend(batch.into_iter().map(|(p, _)| p));
        }
    }

    #[test]
    fn files_come_a_batch_at_a_time_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = HashSet::new();
        for d in 0..20 {
            let sub = dir.path().join(format!("d{d}")).join("inner");
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..25 {
                let path = sub.join(format!("f{f}"));
                std::fs::write(&path, b"x").unwrap();
                expected.insert(path);
            }
        }
        let mut walk = Walk::new(dir.path(), true);
        // The first batch comes before the tree is read: only the folders on the way to it
        // are held, not the other 19 subtrees.
        let first = walk.next_batch(10);
        assert_eq!(first.len(), 10);
        assert!(walk.held() <= 3, "holds {} folders", walk.held());
        let mut seen: Vec<PathBuf> = first.into_iter().map(|(p, _)| p).collect();
        seen.extend(drain(&mut walk, 7));
        assert_eq!(seen.len(), expected.len(), "each file once");
        assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
        assert!(walk.next_batch(10).is_empty());
    }

    #[test]
    fn not_recursive_lists_the_top_folder_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/deep"), b"x").unwrap();
        std::fs::write(dir.path().join("top"), b"x").unwrap();
        let found = drain(&mut Walk::new(dir.path(), false), 100);
        assert_eq!(found, vec![dir.path().join("top")]);
    }

    #[cfg(unix)]
    #[test]
    fn links_are_neither_entered_nor_listed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/file"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("loop")).unwrap();
        std::os::unix::fs::symlink(root.join("real/file"), root.join("alias")).unwrap();
        let found = drain(&mut Walk::new(root, true), 100);
        assert_eq!(found, vec![root.join("real/file")]);
    }

    #[test]
    fn a_tree_deeper_than_the_open_limit_is_walked_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut path = dir.path().to_path_buf();
        let mut expected = HashSet::new();
        for depth in 0..(MAX_OPEN + 20) {
            path.push("d");
            std::fs::create_dir(&path).unwrap();
            let file = path.join(format!("f{depth}"));
            std::fs::write(&file, b"x").unwrap();
            expected.insert(file);
        }
        let mut walk = Walk::new(dir.path(), true);
        let mut seen = HashSet::new();
        loop {
            let batch = walk.next_batch(3);
            assert!(walk.open.len() <= MAX_OPEN);
            if batch.is_empty() {
                break;
            }
            seen.extend(batch.into_iter().map(|(p, _)| p));
        }
        assert_eq!(seen, expected);
    }
}
