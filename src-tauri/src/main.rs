//! The Dropkey desktop app: a thin Tauri shell. Every capability lives in the `dropkey` core;
//! this crate only adapts it to commands ([`commands`]), their errors ([`error`]) and the
//! window. The UI's TypeScript types are generated from these Rust types ([`ipc`]).

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod error;
mod ipc;

fn main() {
    let ipc = ipc::builder();
    let result = tauri::Builder::default()
        .invoke_handler(ipc.invoke_handler())
        .setup(move |app| {
            ipc.mount_events(app);
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(err) = result {
        eprintln!("error: Dropkey could not start its window: {err}");
        std::process::exit(1);
    }
}
