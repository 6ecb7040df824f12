//! The typed IPC surface: which commands exist, and the generated TypeScript bindings
//! (`ui/src/lib/bindings.ts`) that keep the UI and these Rust types from drifting apart.
//! Adding a command: list it here, in `build.rs` (COMMANDS) and in `capabilities/default.json`.

use tauri_specta::{collect_commands, Builder};

use crate::commands::{app, history, profiles, shortcuts, uploads, watches};

pub fn builder() -> Builder<tauri::Wry> {
    Builder::<tauri::Wry>::new().commands(collect_commands![
        profiles::list_profiles,
        profiles::profile_settings,
        profiles::save_profile,
        profiles::remove_profile,
        profiles::set_secret,
        profiles::delete_secret,
        profiles::test_connection,
        uploads::subscribe,
        uploads::next_events,
        uploads::queue_page,
        uploads::cancel_intake,
        uploads::retry_failed,
        uploads::enqueue_files,
        uploads::upload_clipboard,
        uploads::pick_files,
        uploads::pick_folder,
        uploads::cancel_job,
        uploads::retry_job,
        uploads::upload_anyway,
        uploads::set_uploads_paused,
        uploads::clear_finished,
        history::history,
        history::signed_link,
        history::delete_upload,
        history::copy_last_url,
        history::copy_text,
        watches::list_watches,
        watches::set_watch_paused,
        watches::set_watching_paused,
        watches::add_watch,
        watches::remove_watch,
        watches::edit_watch,
        watches::retry_watch_failed,
        watches::open_watch_folder,
        shortcuts::get_shortcuts,
        shortcuts::set_shortcut,
        app::app_status,
        app::get_settings,
        app::set_settings,
        app::set_launch_at_login,
        app::app_ready,
    ])
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

    /// Every command is declared for the ACL (build.rs) and granted to the window, and the
    /// window is granted nothing else of Dropkey's.
    #[test]
    fn every_command_is_declared_and_granted() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let build = std::fs::read_to_string(dir.join("build.rs")).unwrap();
        let caps = std::fs::read_to_string(dir.join("capabilities/default.json")).unwrap();
        let ipc = std::fs::read_to_string(dir.join("src/ipc.rs")).unwrap();
        let listed: Vec<&str> = ipc
            .lines()
            .filter_map(|l| l.trim().strip_suffix(','))
            .filter_map(|l| l.split_once("::").map(|(_, name)| name))
            .filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        assert!(listed.len() >= 20, "{listed:?}");
        for name in &listed {
            assert!(
                build.contains(&format!("\"{name}\"")),
                "{name} is not in build.rs"
            );
            let grant = format!("\"allow-{}\"", name.replace('_', "-"));
            assert!(
                caps.contains(&grant),
                "{name} is not granted in capabilities/default.json"
            );
        }
    }
}
