//! The files a request names, streamed one at a time: the CLI's arguments, folders (walked as
//! they are listed) and the lines of `--files-from`; the app's dropped and picked folders. Both
//! front ends walk folders with [`walk_folder`], so they upload the same files of a tree.
//! Nothing here holds more than one open listing per folder level, so a tree of a million
//! files costs no more than a tree of ten.

use std::io::BufRead as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::watch::filter::skipped_by_name;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "cannot read the list of files {name}: {source}; check that it exists and is readable"
    )]
    FilesFrom {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// What the walk found.
#[derive(Debug)]
pub enum Found {
    File(PathBuf),
    /// A folder that could not be listed: reported like a file that failed its pre-check, so
    /// the user learns which part of the tree was not uploaded.
    Unlisted {
        path: PathBuf,
        why: String,
    },
}

/// Calls `each` for every file that `args` then the lines of `files_from` (a file, or `-` for
/// stdin) name, in that order, until `each` breaks. Blank lines are ignored. Folders are walked
/// only when `recursive` (`-r`); otherwise a folder is handed on like a file, and fails its
/// pre-check as "is a directory", as `upload` always did.
pub fn walk_inputs(
    args: &[PathBuf],
    files_from: Option<&Path>,
    recursive: bool,
    each: &mut dyn FnMut(Found) -> ControlFlow<()>,
) -> Result<(), InputError> {
    for arg in args {
        if visit(arg, recursive, each).is_break() {
            return Ok(());
        }
    }
    let Some(list) = files_from else {
        return Ok(());
    };
    let (name, mut reader): (String, Box<dyn std::io::BufRead>) = if list == Path::new("-") {
        ("on stdin".into(), Box::new(std::io::stdin().lock()))
    } else {
        let file = std::fs::File::open(list).map_err(|source| InputError::FilesFrom {
            name: list.display().to_string(),
            source,
        })?;
        (
            list.display().to_string(),
            Box::new(std::io::BufReader::new(file)),
        )
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| InputError::FilesFrom {
                name: name.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        // Lists written on Windows end their lines with CRLF; no real path ends with a CR.
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if visit(&path_from_bytes(&line), recursive, each).is_break() {
            return Ok(());
        }
    }
}

#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    // Paths are bytes on Unix: a list from `find` may hold names that are not UTF-8.
    use std::os::unix::ffi::OsStrExt as _;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

fn visit(
    path: &Path,
    recursive: bool,
    each: &mut dyn FnMut(Found) -> ControlFlow<()>,
) -> ControlFlow<()> {
    // A folder the user names is walked even when the name is a link to it (they chose it);
    // links inside it are never followed, so a walk cannot leave the tree or loop.
    if recursive && std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        walk_folder(path, each)
    } else {
        each(Found::File(path.to_path_buf()))
    }
}

fn unlisted(path: PathBuf, err: &std::io::Error) -> Found {
    Found::Unlisted {
        path,
        why: format!("cannot list this folder ({err}): check its permissions"),
    }
}

/// A folder's entries are listed in name order when it has at most this many (what a user
/// expects to see upload first); a larger folder is listed in the file system's order, so a
/// folder of a million files never holds a million names.
pub const SORTED_UP_TO: usize = 10_000;

/// One folder being listed: sorted when small, streamed when large.
struct Listing {
    read: Vec<std::fs::DirEntry>,
    /// Entries still to come from the file system (none once a small folder was read whole).
    rest: Option<std::fs::ReadDir>,
}

impl Listing {
    fn open(path: &Path) -> std::io::Result<Self> {
        let mut listing = std::fs::read_dir(path)?;
        let mut read = Vec::new();
        for entry in listing.by_ref() {
            read.push(entry?);
            if read.len() > SORTED_UP_TO {
                // Too many to sort: what was read goes first, as listed, then the rest.
                read.reverse();
                return Ok(Self {
                    read,
                    rest: Some(listing),
                });
            }
        }
        // Popped from the end: sorted backwards.
        read.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
        Ok(Self { read, rest: None })
    }

    fn next(&mut self) -> Option<std::io::Result<std::fs::DirEntry>> {
        match self.read.pop() {
            Some(entry) => Some(Ok(entry)),
            None => self.rest.as_mut()?.next(),
        }
    }
}

/// The files below `root`, depth-first, one open listing per level; hidden entries and temp
/// files are skipped, as a watch skips them, and links are never followed.
pub fn walk_folder(root: &Path, each: &mut dyn FnMut(Found) -> ControlFlow<()>) -> ControlFlow<()> {
    let mut stack = match Listing::open(root) {
        Ok(listing) => vec![listing],
        Err(err) => return each(unlisted(root.to_path_buf(), &err)),
    };
    while let Some(listing) = stack.last_mut() {
        let entry = match listing.next() {
            None => {
                stack.pop();
                continue;
            }
            Some(Ok(entry)) => entry,
            Some(Err(err)) => {
                // A listing that errs once may keep erring: give up on this folder only.
                stack.pop();
                each(Found::Unlisted {
                    path: root.to_path_buf(),
                    why: format!("a folder under it could not be listed to the end ({err}): check its permissions"),
                })?;
                continue;
            }
        };
        // `DirEntry::file_type` does not follow links, so a link is seen as one and skipped.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if skipped_by_name(&name, false) {
                continue;
            }
            let path = entry.path();
            match Listing::open(&path) {
                Ok(listing) => stack.push(listing),
                Err(err) => each(unlisted(path, &err))?,
            }
        } else if kind.is_file() && !skipped_by_name(&name, true) {
            each(Found::File(entry.path()))?;
        }
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(args: &[PathBuf], files_from: Option<&Path>) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk_inputs(args, files_from, true, &mut |f| {
            if let Found::File(p) = f {
                found.push(p);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        found.sort();
        found
    }

    #[test]
    fn folders_are_walked_without_links_hidden_or_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for f in [
            "top.jpg",
            "a/one.png",
            "a/b/two.gif",
            "a/b/x.jpg.part",
            ".hidden.jpg",
            ".git/c",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("top.jpg"), root.join("a/link.jpg")).unwrap();
            std::os::unix::fs::symlink(root.join("a"), root.join("a/b/loop")).unwrap();
        }
        let found = collect(&[root.to_path_buf()], None);
        assert_eq!(
            found,
            vec![
                root.join("a/b/two.gif"),
                root.join("a/one.png"),
                root.join("top.jpg")
            ]
        );
    }

    #[test]
    fn small_folders_are_walked_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..300).rev().map(|i| format!("f{i:04}.jpg")).collect();
        for name in &names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let mut found = Vec::new();
        let _ = walk_folder(dir.path(), &mut |f| {
            if let Found::File(p) = f {
                found.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
            ControlFlow::Continue(())
        });
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(found, sorted);
    }

    #[test]
    fn files_from_skips_blank_lines_and_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list");
        std::fs::write(&list, "a.jpg\r\n\n   \nb c.png\nlast").unwrap();
        let found = collect(&[PathBuf::from("first")], Some(&list));
        assert_eq!(
            found,
            ["a.jpg", "b c.png", "first", "last"]
                .map(PathBuf::from)
                .to_vec()
        );
        let missing = walk_inputs(&[], Some(&dir.path().join("nope")), true, &mut |_| {
            ControlFlow::Continue(())
        });
        assert!(missing.is_err());
    }
}
