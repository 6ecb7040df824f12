//! The types that cross IPC, and how core values map to them. None has a field that could hold
//! a secret. specta refuses 64-bit integers (JavaScript numbers are doubles), so: ids and counts
//! are `u32` (checked conversions), byte sizes, speeds and times are `f64` (exact up to 2^53),
//! declared to specta as a plain number (`#[specta(type = u32)]`: specta would add `| null`
//! for a NaN these values never hold).
//!
//! By concern: `profiles.rs` (profiles, keys, the connection test), `queue.rs` (jobs, drops,
//! progress, the queue view), `history.rs` (History's search and entries) and `app.rs` (watched
//! folders, status, settings, and the events pushed to the window) and `shortcuts.rs` (global
//! shortcuts in Settings). Each is re-exported here.

mod app;
mod history;
mod profiles;
mod queue;
mod shortcuts;

pub use app::*;
pub use history::*;
pub use profiles::*;
pub use queue::*;
pub use shortcuts::*;
