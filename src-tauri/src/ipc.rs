//! The typed IPC surface: which commands exist, and the generated TypeScript bindings
//! (`ui/src/lib/bindings.ts`) that keep the UI and these Rust types from drifting apart.

use tauri_specta::{collect_commands, Builder};

use crate::commands;

pub fn builder() -> Builder<tauri::Wry> {
    Builder::<tauri::Wry>::new().commands(collect_commands![commands::list_profiles])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Where the generated bindings live, relative to this crate.
    const BINDINGS_PATH: &str = "../ui/src/lib/bindings.ts";

    fn render(path: &Path) {
        super::builder()
            .export(specta_typescript::Typescript::default(), path)
            .unwrap();
    }

    /// The committed bindings must equal what the Rust types generate. Run with
    /// `UPDATE_BINDINGS=1` (or `make bindings`) to rewrite them after changing a command.
    #[test]
    fn bindings_are_up_to_date() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join(BINDINGS_PATH);
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            render(&committed);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("bindings.ts");
        render(&fresh);
        let expected = std::fs::read_to_string(&fresh).unwrap();
        let actual = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            expected == actual,
            "ui/src/lib/bindings.ts is stale: run `make bindings` and commit the result"
        );
    }
}
