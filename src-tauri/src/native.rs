//! Questions only the user can answer, asked in native dialogs the page cannot draw, click or
//! read: where a profile's key may go, which clipboard files to upload, which files to pick.
//! Each blocks its own thread (GTK runs the dialog on the main loop meanwhile).

use std::path::PathBuf;

use tauri::{AppHandle, Manager as _, Runtime};
use tauri_plugin_dialog::{DialogExt as _, MessageDialogButtons, MessageDialogKind};

use crate::error::AppError;

/// Asks a yes/no question; `true` only when the user chose `yes`.
pub async fn confirm<R: Runtime>(
    app: &AppHandle<R>,
    title: &str,
    message: String,
    yes: &str,
) -> Result<bool, AppError> {
    let mut builder = app
        .dialog()
        .message(message)
        .title(title)
        .kind(MessageDialogKind::Warning)
        .buttons(MessageDialogButtons::OkCancelCustom(
            yes.to_owned(),
            "Cancel".to_owned(),
        ));
    // Over Dropkey's window (the window manager keeps it on top), when the window exists.
    if let Some(window) = app.get_webview_window("main") {
        builder = builder.parent(&window);
    }
    tauri::async_runtime::spawn_blocking(move || builder.blocking_show())
        .await
        .map_err(AppError::internal)
}

/// The system file picker, for files (`folder` false, several) or one folder.
pub async fn pick<R: Runtime>(app: &AppHandle<R>, folder: bool) -> Result<Vec<PathBuf>, AppError> {
    let builder = app.dialog().file();
    let picked = tauri::async_runtime::spawn_blocking(move || {
        if folder {
            builder
                .set_title("Choose a folder")
                .blocking_pick_folder()
                .map(|p| vec![p])
        } else {
            builder
                .set_title("Choose files to upload")
                .blocking_pick_files()
        }
    })
    .await
    .map_err(AppError::internal)?;
    Ok(picked
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.into_path().ok())
        .collect())
}

/// The clipboard's files, listed for a confirmation: the first few, then how many more.
pub fn list_files(paths: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text: Vec<String> = paths.iter().take(SHOWN).cloned().collect();
    if paths.len() > SHOWN {
        text.push(format!("… and {} more", paths.len() - SHOWN));
    }
    text.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_file_lists_are_cut_with_a_count() {
        let paths: Vec<String> = (0..11).map(|i| format!("/in/{i}.png")).collect();
        let listed = list_files(&paths);
        assert_eq!(listed.lines().count(), 9);
        assert!(listed.starts_with("/in/0.png\n"));
        assert!(listed.ends_with("… and 3 more"));
        assert_eq!(list_files(&paths[..1]), "/in/0.png");
    }
}
