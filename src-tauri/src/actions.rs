//! What the tray, the single-instance hand-over and the window's commands share: window
//! visibility, the clipboard, watching on/off, notifications. One function per action, so a
//! tray click and a button run exactly the same code.

use std::path::PathBuf;
use std::sync::Arc;

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tauri_plugin_notification::NotificationExt as _;

use crate::backend::{lock, AppState, Backend, Batch};
use crate::error::AppError;
use crate::models::{Destination, EnqueueRequest, EnqueueResult, UiEvent};

pub const MAIN_WINDOW: &str = "main";

pub async fn backend<R: Runtime>(app: &AppHandle<R>) -> Result<Arc<Backend>, AppError> {
    app.state::<AppState>().backend().await
}

pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

pub fn toggle_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        if window.is_visible().unwrap_or(false) && !window.is_minimized().unwrap_or(false) {
            let _ = window.hide();
        } else {
            show_window(app);
        }
    }
    crate::tray::refresh_menu(app);
}

/// Pauses or resumes every watched folder.
pub async fn set_watching_paused<R: Runtime>(
    app: &AppHandle<R>,
    paused: bool,
) -> Result<(), AppError> {
    let backend = backend(app).await?;
    backend.set_watch_paused(None, paused)?;
    crate::tray::refresh_menu(app);
    Ok(())
}

/// Copies the newest upload's URL; `None` when nothing was uploaded yet.
pub async fn copy_last_url<R: Runtime>(app: &AppHandle<R>) -> Result<Option<String>, AppError> {
    let backend = backend(app).await?;
    let url = tauri::async_runtime::spawn_blocking(move || backend.last_url())
        .await
        .map_err(AppError::internal)??;
    if let Some(url) = &url {
        copy_text(app, url)?;
    }
    Ok(url)
}

pub fn copy_text<R: Runtime>(app: &AppHandle<R>, text: &str) -> Result<(), AppError> {
    app.clipboard()
        .write_text(text.to_owned())
        .map_err(|err| AppError::internal(format!("cannot write the clipboard: {err}")))
}

/// File paths in clipboard text: `file://` URIs (text/uri-list, file managers) or absolute
/// paths, one per line. Lines that are neither (e.g. GNOME's leading `copy`) are ignored.
pub fn paths_in_text(text: &str) -> Vec<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            if line.starts_with("file://") {
                url::Url::parse(line).ok()?.to_file_path().ok()
            } else {
                let path = PathBuf::from(line);
                path.is_absolute().then_some(path)
            }
        })
        .collect()
}

/// Uploads what the clipboard holds: the files it names, else its image (saved as a PNG).
/// `destination` defaults to the last profile used, with its defaults.
///
/// From the tray (`confirm`), the files named in clipboard text are listed in a native dialog
/// first: text anyone can put on the clipboard (a web page, a chat) must not upload a file
/// while the user is not looking at Dropkey.
pub async fn upload_clipboard<R: Runtime>(
    app: &AppHandle<R>,
    destination: Option<Destination>,
    confirm: bool,
) -> Result<EnqueueResult, AppError> {
    let backend = backend(app).await?;
    let destination = match destination {
        Some(d) => d,
        None => Destination {
            profile: backend.default_profile()?.name.clone(),
            folder: None,
            tags: None,
        },
    };
    let text = app.clipboard().read_text().unwrap_or_default();
    let mut paths: Vec<String> = paths_in_text(&text)
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if confirm && !paths.is_empty() {
        let message = format!(
            "Upload {} from the clipboard to profile \u{201c}{}\u{201d}?\n\n{}",
            if paths.len() == 1 {
                "this file".to_owned()
            } else {
                format!("these {} files", paths.len())
            },
            destination.profile,
            crate::native::list_files(&paths)
        );
        if !crate::native::confirm(app, "Upload from the clipboard?", message, "Upload").await? {
            return Ok(EnqueueResult::default());
        }
    }
    if paths.is_empty() {
        match app.clipboard().read_image() {
            Ok(image) => {
                let (rgba, width, height) = (image.rgba().to_vec(), image.width(), image.height());
                let saver = backend.clone();
                let path = tauri::async_runtime::spawn_blocking(move || {
                    saver.save_image(&rgba, width, height)
                })
                .await
                .map_err(AppError::internal)??;
                paths.push(path.display().to_string());
            }
            Err(_) if !text.trim().is_empty() => {
                return Err(AppError::input(
                    "the clipboard holds text, not files or an image: copy files in your file manager, or an image",
                ))
            }
            Err(_) => return Err(AppError::input("the clipboard is empty")),
        }
    }
    let request = EnqueueRequest {
        paths,
        destination,
        keep_structure: false,
    };
    backend.enqueue_files(request).await
}

/// Files given on the command line (first launch, or a second launch handing over).
pub async fn open_files<R: Runtime>(app: &AppHandle<R>, args: Vec<String>, cwd: PathBuf) {
    let paths: Vec<String> = args
        .into_iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| {
            let path = PathBuf::from(&a);
            if path.is_absolute() {
                path
            } else {
                cwd.join(path)
            }
        })
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if paths.is_empty() {
        return;
    }
    let outcome = async {
        let backend = backend(app).await?;
        let request = EnqueueRequest {
            destination: Destination {
                profile: backend.default_profile()?.name.clone(),
                folder: None,
                tags: None,
            },
            paths,
            keep_structure: true,
        };
        backend.enqueue_files(request).await
    }
    .await;
    let notice = match outcome {
        Ok(result) => UiEvent::Notice {
            message: format!("{} file(s) from another launch queued", result.queued),
            error: false,
        },
        Err(err) => UiEvent::Notice {
            message: err.message,
            error: true,
        },
    };
    crate::events::send(
        app,
        vec![
            notice,
            UiEvent::Navigate {
                screen: "upload".into(),
            },
        ],
    );
}

/// One notification per batch: how many uploaded, and separately how many failed.
pub fn notify_batch<R: Runtime>(app: &AppHandle<R>, backend: &Backend, batch: Batch) {
    if !lock(&backend.prefs).notifications {
        return;
    }
    let mut notes = Vec::new();
    if batch.done > 0 {
        notes.push((
            "Uploads finished".to_owned(),
            format!("{} file(s) uploaded", batch.done),
        ));
    }
    if batch.failed > 0 {
        notes.push((
            "Uploads failed".to_owned(),
            format!(
                "{} file(s) could not be uploaded: see the queue",
                batch.failed
            ),
        ));
    }
    let app = app.clone();
    // The notification daemon is asked over D-Bus: never on the event loop.
    tauri::async_runtime::spawn_blocking(move || {
        for (title, body) in notes {
            if let Err(err) = app.notification().builder().title(title).body(body).show() {
                tracing::info!("no notification shown: {err}");
            }
        }
    });
}

/// Stops the backend (in-flight uploads go back to the queue) and exits.
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Some(backend) = app.state::<AppState>().ready() {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), backend.shutdown()).await;
        }
        app.exit(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipboard_text_names_files_by_uri_or_path() {
        let text =
            "copy\nfile:///tmp/a%20b.png\r\n/home/u/c.jpg\nrelative.txt\n# comment\nhttps://x/y\n";
        assert_eq!(
            paths_in_text(text),
            vec![
                PathBuf::from("/tmp/a b.png"),
                PathBuf::from("/home/u/c.jpg")
            ]
        );
        assert!(paths_in_text("just words").is_empty());
    }
}
