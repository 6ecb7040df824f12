//! Which files in a watched folder are candidates: the watch's include/exclude globs, and the
//! temp files that apps write before the real one (never uploaded).

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::{AfterUpload, Watch};

/// Name patterns of files that are not finished yet or not meant to leave the machine:
/// partial downloads, editor swap files, Office lock files.
const TEMP_SUFFIXES: &[&str] = &[
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".tmp",
    ".temp",
    ".swp",
    ".swx",
    ".swo",
    "~",
];
/// `.dropkey-`: the name a file has for an instant while `after_upload = "delete"` checks it.
const TEMP_PREFIXES: &[&str] = &["~$", ".#", ".~lock.", ".dropkey-"];

#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
    include_hidden: bool,
    /// The after-upload "move" folder: files there are already uploaded.
    moved_dir: Option<String>,
}

fn build(globs: &[String]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        // Validated when the config was loaded.
        if let Ok(glob) = Glob::new(glob) {
            builder.add(glob);
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

impl Filter {
    pub fn new(watch: &Watch) -> Self {
        Self {
            include: (!watch.include.is_empty()).then(|| build(&watch.include)),
            exclude: build(&watch.exclude),
            include_hidden: watch.include_hidden,
            moved_dir: match &watch.after_upload {
                AfterUpload::Move(dir) => Some(dir.trim_matches('/').to_owned()),
                _ => None,
            },
        }
    }

    /// Whether the file at `rel` (relative, `/`-separated) should be uploaded.
    pub fn accepts(&self, rel: &str) -> bool {
        let mut components = rel.split('/').peekable();
        if let Some(moved) = &self.moved_dir {
            if rel == moved || rel.starts_with(&format!("{moved}/")) {
                return false;
            }
        }
        while let Some(part) = components.next() {
            let is_file = components.peek().is_none();
            if part.is_empty() {
                return false;
            }
            if part.starts_with('.') && !self.include_hidden {
                return false;
            }
            if is_file && is_temp(part) {
                return false;
            }
        }
        if self.exclude.is_match(rel) {
            return false;
        }
        match &self.include {
            Some(include) => {
                let name = rel.rsplit('/').next().unwrap_or(rel);
                include.is_match(rel) || include.is_match(name)
            }
            None => true,
        }
    }
}

/// Whether a walk of a folder with no include/exclude globs (`dropkey upload DIR`) skips an
/// entry by its name alone: hidden entries, as a watch without `include_hidden`, and temp files.
pub fn skipped_by_name(name: &str, is_file: bool) -> bool {
    name.starts_with('.') || (is_file && is_temp(name))
}

fn is_temp(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TEMP_SUFFIXES.iter().any(|s| lower.ends_with(s))
        || TEMP_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OnChange;

    fn watch(include: &[&str], exclude: &[&str]) -> Watch {
        Watch {
            path: "/w".into(),
            profile: "p".into(),
            folder: None,
            tags: None,
            recursive: true,
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            remote_path: None,
            after_upload: AfterUpload::Move("done".into()),
            on_change: OnChange::Ignore,
            scan_interval: None,
            include_hidden: false,
            metadata: None,
            on_duplicate: None,
            resize: None,
        }
    }

    #[test]
    fn temp_hidden_and_moved_files_are_skipped() {
        let f = Filter::new(&watch(&[], &[]));
        for ok in ["a.jpg", "shoot/b.png", "x.partners.txt"] {
            assert!(f.accepts(ok), "{ok}");
        }
        for skip in [
            "a.jpg.part",
            "b.crdownload",
            "c.tmp",
            "~$doc.docx",
            ".hidden.jpg",
            ".git/x.png",
            "notes.txt.swp",
            "done/a.jpg",
            "done",
            "a.jpg~",
            ".~lock.a.odt#",
        ] {
            assert!(!f.accepts(skip), "{skip}");
        }
    }

    #[test]
    fn include_and_exclude_globs() {
        let f = Filter::new(&watch(&["*.jpg", "raw/**"], &["**/private/**"]));
        assert!(f.accepts("a.jpg"));
        assert!(f.accepts("deep/dir/a.jpg"));
        assert!(f.accepts("raw/x.cr2"));
        assert!(!f.accepts("a.png"));
        assert!(!f.accepts("x/private/a.jpg"));
    }
}
