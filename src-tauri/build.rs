/// Every command of `src/ipc.rs`. Declaring them makes Tauri generate an `allow-<command>`
/// permission for each and deny every command that a capability does not grant: the UI gets
/// only what `capabilities/default.json` lists.
const COMMANDS: &[&str] = &[
    "list_profiles",
    "profile_settings",
    "save_profile",
    "remove_profile",
    "set_secret",
    "delete_secret",
    "test_connection",
    "subscribe",
    "next_events",
    "queue_page",
    "cancel_intake",
    "retry_failed",
    "enqueue_files",
    "upload_clipboard",
    "pick_files",
    "pick_folder",
    "cancel_job",
    "retry_job",
    "upload_anyway",
    "set_uploads_paused",
    "clear_finished",
    "history",
    "signed_link",
    "delete_upload",
    "copy_last_url",
    "copy_text",
    "list_watches",
    "set_watch_paused",
    "set_watching_paused",
    "add_watch",
    "remove_watch",
    "edit_watch",
    "retry_watch_failed",
    "open_watch_folder",
    "get_shortcuts",
    "set_shortcut",
    "app_status",
    "get_settings",
    "set_settings",
    "set_launch_at_login",
    "app_ready",
];

// A build script reports to cargo on stderr.
#[allow(clippy::print_stderr)]
fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    if let Err(err) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
    {
        eprintln!("tauri build script failed: {err:#}");
        std::process::exit(1);
    }
}
