//! The desktop app's core, without Tauri: what `dropkey-app` holds while it runs and every
//! operation its window, tray and shortcuts share, so the app crate only adapts them to Tauri
//! (commands, events, tray, plugins) and tests drive all of it without a window.
//!
//! # Layout
//! - [`backend`]: the running state (config, secrets, engine, watchers, the local sandbox) and
//!   the operations, by concern; the rules they apply live in `dropkey-core`.
//! - [`models`]: every type that crosses IPC (specta-derived; the shell exports them to
//!   TypeScript); [`error`]: `AppError { kind, message }`, the one error commands return.
//! - [`events`]: engine events coalesced into batches for the window, and the loop that hands
//!   them, with the tray's status and per-batch notifications, to a [`events::Shell`] the app
//!   supplies; [`pull`]: the queue the window long-polls them from.
//! - [`prefs`]: the app's own preferences; [`grants`]: the paths the user chose in the window;
//!   [`shortcut_rules`]: what a global shortcut may be.

pub mod backend;
pub mod error;
pub mod events;
pub mod grants;
pub mod models;
pub mod prefs;
pub mod pull;
pub mod shortcut_rules;

#[cfg(test)]
mod leak_tests;
