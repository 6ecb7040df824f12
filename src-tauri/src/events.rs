//! The window's and the tray's end of `dropkey_desktop::events`: sends events to the queue the
//! window pulls (in Tauri's managed state), and runs the forwarding loop with this app's
//! clipboard, tray and notifications as its [`Shell`].

use std::sync::Arc;

use tauri::{AppHandle, Manager, Runtime};

use dropkey_desktop::backend::{Backend, Batch};
use dropkey_desktop::events::Shell;
use dropkey_desktop::models::{AppStatus, UiEvent};
pub use dropkey_desktop::pull::UiEvents;

/// Sends `events` to the window, if it listens.
pub fn send<R: Runtime>(app: &AppHandle<R>, events: Vec<UiEvent>) {
    if let Some(queue) = app.try_state::<UiEvents>() {
        queue.send(events);
    }
}

struct TauriShell<R: Runtime>(AppHandle<R>);

impl<R: Runtime> Shell for TauriShell<R> {
    fn send(&self, events: Vec<UiEvent>) {
        send(&self.0, events);
    }

    fn copy_text(&self, text: &str) -> bool {
        crate::actions::copy_text(&self.0, text).is_ok()
    }

    fn set_status(&self, status: &AppStatus) {
        crate::tray::set_status(&self.0, status);
    }

    fn refresh_menu(&self) {
        crate::tray::refresh_menu(&self.0);
    }

    fn notify_batch(&self, backend: &Backend, batch: Batch) {
        crate::actions::notify_batch(&self.0, backend, batch);
    }
}

/// Runs until the engine stops: forwards its events and keeps the tray current.
pub async fn forward<R: Runtime>(app: AppHandle<R>, backend: Arc<Backend>) {
    dropkey_desktop::events::forward(TauriShell(app), backend).await;
}
