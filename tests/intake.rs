//! Intakes (what the app does with a drop): a folder walked in the background and queued in
//! batches, against the embedded sandbox over real HTTP; cancelling one; the queue view's bulk
//! actions over thousands of jobs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::rig::Rig;
use dropkey_core::config::Config;
use dropkey_core::engine::intake::{Destination, IntakeRequest};
use dropkey_core::engine::{Engine, Event};
use serde_json::Value;

const KEY: &str = "private_intake_test_key";

impl Rig {
    fn new() -> Self {
        let rig = Rig::builder(KEY).start();
        std::env::set_var("DROPKEY_SECRET_SANDBOX", KEY);
        rig
    }

    fn engine(&self, paused: bool) -> (Engine, Config) {
        self.start_engine(&self.data_dir(), |settings| settings.start_paused = paused)
    }

    /// `remote folder/name` of every file the sandbox stored (without the unique suffix
    /// ImageKit adds to a name already taken).
    fn landed(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ledger()
            .iter()
            .map(|e: &Value| {
                let name = e["name"].as_str().unwrap_or_default();
                let name = match name.rsplit_once('.') {
                    Some((stem, ext)) => match stem.rsplit_once('_') {
                        Some((base, suffix)) if suffix.len() == 8 => format!("{base}.{ext}"),
                        _ => name.to_owned(),
                    },
                    None => name.to_owned(),
                };
                format!(
                    "{}/{name}",
                    e["folder"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_end_matches('/'),
                )
            })
            .collect();
        names.sort();
        names
    }
}

fn write(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn request(config: &Config, paths: Vec<PathBuf>, destination: Destination) -> IntakeRequest {
    IntakeRequest {
        profile: config.profile("sandbox").unwrap().clone(),
        paths,
        destination,
        source: dropkey_core::engine::JobSource::App,
    }
}

/// Waits until every job of the queue view ended, on the engine's events.
async fn all_ended(engine: &Engine) {
    let mut events = engine.subscribe();
    loop {
        let counts = engine.queue_counts().unwrap();
        if counts.queued + counts.running + counts.paused == 0 {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
    }
}

#[test]
fn a_dropped_tree_is_queued_in_batches_and_lands_once_with_its_structure() {
    let rig = Rig::new();
    let drop = rig.dir.path().join("Shoot");
    let mut expected = Vec::new();
    for d in 0..6 {
        for f in 0..200 {
            let rel = if d == 0 {
                format!("img-{f:03}.jpg")
            } else {
                format!("day-{d}/img-{f:03}.jpg")
            };
            write(&drop.join(&rel), &format!("{d}/{f}"));
            let folder = rel.rsplit_once('/').map_or("", |(dir, _)| dir);
            let sub = if folder.is_empty() {
                String::new()
            } else {
                format!("/{folder}")
            };
            expected.push(format!(
                "/clients/Shoot{sub}/{}",
                rel.rsplit('/').next().unwrap()
            ));
        }
    }
    // What a walk leaves out, as the CLI and watches do: hidden files and folders, temp files,
    // links (a link to a file outside, and one looping back up).
    write(&drop.join(".DS_Store"), "x");
    write(&drop.join(".git/config"), "x");
    write(&drop.join("day-1/upload.jpg.part"), "x");
    let outside = rig.dir.path().join("secret.txt");
    write(&outside, "not yours");
    std::os::unix::fs::symlink(&outside, drop.join("day-2/link.txt")).unwrap();
    std::os::unix::fs::symlink(&drop, drop.join("day-3/loop")).unwrap();
    let empty = rig.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    // A file inside the dropped folder, dropped too: queued once.
    let again = drop.join("day-4/img-000.jpg");

    let (engine, config) = rig.engine(false);
    let progress = rig.runtime.block_on(async {
        let mut events = engine.subscribe();
        let intake = engine
            .start_intake(request(
                &config,
                vec![drop.clone(), again, empty.clone(), PathBuf::from("relative.jpg")],
                Destination {
                    folder: Some("/clients".into()),
                    tags: Some(vec!["shoot".into()]),
                    keep_structure: true,
                },
            ))
            .unwrap();
        // Queued in several transactions: a small first batch, so uploads start early.
        let mut queued_batches = 0;
        let mut last_was_queued = false;
        let progress = loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(Event::Queued { .. }) => {
                        if !last_was_queued { queued_batches += 1; }
                        last_was_queued = true;
                    }
                    Ok(_) => last_was_queued = false,
                    Err(_) => {}
                },
                progress = intake.wait(Duration::from_millis(50)) => if progress.finished { break progress; },
            }
        };
        assert!(queued_batches >= 2, "{queued_batches} batches");
        all_ended(&engine).await;
        engine.shutdown().await;
        progress
    });
    assert_eq!(progress.queued, 1_200, "{progress:?}");
    assert!(!progress.cancelled && progress.error.is_none());
    let reasons: HashMap<String, String> = progress
        .rejections
        .iter()
        .map(|r| (r.path.clone(), r.reason.clone()))
        .collect();
    assert_eq!(progress.rejected, 2, "{reasons:?}");
    assert_eq!(
        reasons[&empty.display().to_string()],
        "the folder has no files"
    );
    assert_eq!(reasons["relative.jpg"], "not an absolute path");
    expected.sort();
    assert_eq!(rig.landed(), expected);
}

#[test]
fn cancelling_an_intake_stops_its_walk_and_cancels_what_it_queued() {
    let rig = Rig::new();
    let drop = rig.dir.path().join("archive");
    const FILES: usize = 20_000;
    for f in 0..FILES {
        write(
            &drop.join(format!("{:02}/{f:05}.txt", f / 1000)),
            &f.to_string(),
        );
    }
    // Uploads paused: nothing can finish before the cancel, so every job it queued must end
    // cancelled.
    let (engine, config) = rig.engine(true);
    let (progress, counts) = rig.runtime.block_on(async {
        let intake = engine
            .start_intake(request(&config, vec![drop.clone()], Destination::default()))
            .unwrap();
        let watch = intake.clone();
        while intake.progress().queued == 0 {
            watch.wait(Duration::from_millis(5)).await;
        }
        intake.stop();
        let progress = intake.wait(Duration::from_secs(60)).await;
        let cancelled = engine.cancel_intake(intake.id).unwrap();
        assert_eq!(cancelled as u64, progress.queued);
        engine.resume_all();
        all_ended(&engine).await;
        let counts = engine.queue_counts().unwrap();
        engine.shutdown().await;
        (progress, counts)
    });
    assert!(progress.finished);
    // The walk stopped early (or, on a machine fast enough to finish first, found all).
    assert!(
        progress.cancelled && progress.queued < FILES as u64 || progress.queued == FILES as u64,
        "{progress:?}"
    );
    assert_eq!(counts.cancelled, progress.queued);
    assert_eq!(counts.done, 0);
    assert!(rig.landed().is_empty());
}

#[test]
fn retry_failed_and_clear_finished_work_on_thousands_at_once() {
    let rig = Rig::new();
    let drop = rig.dir.path().join("batch");
    const FILES: usize = 2_000;
    for f in 0..FILES {
        write(&drop.join(format!("{f:04}.txt")), &f.to_string());
    }
    let away = rig.dir.path().join("away");
    std::fs::create_dir_all(&away).unwrap();
    let (engine, config) = rig.engine(true);
    rig.runtime.block_on(async {
        let intake = engine
            .start_intake(request(&config, vec![drop.clone()], Destination::default()))
            .unwrap();
        assert_eq!(
            intake.wait(Duration::from_secs(60)).await.queued,
            FILES as u64
        );
        // Every tenth file moves away before its turn (same inode when it comes back).
        for f in (0..FILES).step_by(10) {
            let name = format!("{f:04}.txt");
            std::fs::rename(drop.join(&name), away.join(&name)).unwrap();
        }
        engine.resume_all();
        all_ended(&engine).await;
        let counts = engine.queue_counts().unwrap();
        assert_eq!((counts.done, counts.failed), (1_800, 200), "{counts:?}");
        for f in (0..FILES).step_by(10) {
            let name = format!("{f:04}.txt");
            std::fs::rename(away.join(&name), drop.join(&name)).unwrap();
        }
        assert_eq!(engine.retry_failed().unwrap(), 200);
        all_ended(&engine).await;
        let counts = engine.queue_counts().unwrap();
        assert_eq!((counts.done, counts.failed), (FILES as u64, 0));
        assert_eq!(engine.dismiss_finished().unwrap(), FILES);
        assert_eq!(engine.queue_counts().unwrap().total(), 0);
        engine.shutdown().await;
    });
    assert_eq!(rig.landed().len(), FILES);
}
