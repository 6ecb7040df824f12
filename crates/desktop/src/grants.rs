//! Which local paths the window may ask Dropkey to upload or watch: only paths the user chose
//! through something the page cannot fake. A native drop (GTK hands the paths to Rust before the
//! page sees them), the native pickers (`pick_files`, `pick_folder`, run from Rust) and the
//! command line grant paths; the clipboard is read in Rust (`upload_clipboard`), so its paths
//! never pass through the page. A compromised page can still hold and send these paths, but a
//! path it makes up (`~/.ssh/id_ed25519`) is refused by `enqueue_files` and `add_watch`.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Granted paths kept at most; the oldest go first (a drop of a million files keeps the latest).
const MAX_GRANTS: usize = 100_000;

#[derive(Default)]
pub struct Grants(Mutex<Granted>);

#[derive(Default)]
struct Granted {
    set: HashSet<PathBuf>,
    order: VecDeque<PathBuf>,
}

impl Grants {
    pub fn grant(&self, paths: impl IntoIterator<Item = PathBuf>) {
        let mut granted = crate::backend::lock(&self.0);
        for path in paths {
            if granted.set.insert(path.clone()) {
                granted.order.push_back(path);
            }
        }
        while granted.order.len() > MAX_GRANTS {
            if let Some(old) = granted.order.pop_front() {
                granted.set.remove(&old);
            }
        }
    }

    pub fn allows(&self, path: &Path) -> bool {
        crate::backend::lock(&self.0).set.contains(path)
    }

    /// The first of `paths` the user did not choose, if any.
    pub fn first_refused<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let granted = crate::backend::lock(&self.0);
        paths
            .into_iter()
            .find(|p| !granted.set.contains(Path::new(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_paths_pass_and_the_oldest_go_first() {
        let grants = Grants::default();
        grants.grant([PathBuf::from("/home/u/a.png"), PathBuf::from("/home/u/dir")]);
        assert!(grants.allows(Path::new("/home/u/a.png")));
        assert_eq!(grants.first_refused(["/home/u/a.png", "/home/u/dir"]), None);
        assert_eq!(
            grants.first_refused(["/home/u/a.png", "/home/u/.ssh/id_ed25519"]),
            Some("/home/u/.ssh/id_ed25519")
        );
        // Inside a granted folder is not granted: folders are walked by Rust, not the page.
        assert!(!grants.allows(Path::new("/home/u/dir/b.png")));
        grants.grant((0..MAX_GRANTS).map(|i| PathBuf::from(format!("/f/{i}"))));
        assert!(!grants.allows(Path::new("/home/u/a.png")));
        assert!(grants.allows(Path::new(&format!("/f/{}", MAX_GRANTS - 1))));
    }
}
