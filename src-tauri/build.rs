fn main() {
    // Declaring the app's commands makes Tauri generate an `allow-<command>` permission for each
    // and deny every command that a capability does not grant: the UI gets only what it uses.
    let manifest = tauri_build::AppManifest::new().commands(&["list_profiles"]);
    if let Err(err) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
    {
        eprintln!("tauri build script failed: {err:#}");
        std::process::exit(1);
    }
}
