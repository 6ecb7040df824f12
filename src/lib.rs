//! Dropkey's command line: the `dropkey` binary's argument parsing, dispatch and JSON output,
//! over the workspace's library crates. It owns no behaviour of its own beyond presenting it.
//!
//! # Layout
//! - [`cli`]: the `dropkey` command line: argument parsing and dispatch, JSON on stdout.
//! - [`error`]: the top-level error, which gathers the crates' errors and knows the exit code
//!   each deserves.
//!
//! # Dependencies
//! The top of the graph: it uses `dropkey-core` (config, secrets, signing, the engine, watched
//! folders), `dropkey-sandbox` (the local sandbox, `dropkey sandbox`) and `dropkey-serve` (the
//! token server, `dropkey serve`). No other crate of the workspace depends on this one.

pub mod cli;
pub mod error;

pub use error::Error;
