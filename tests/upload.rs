//! The upload engine end to end: the real `dropkey` binary uploading to the embedded sandbox
//! over real HTTP, with the sandbox's ledger as the witness of what landed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::rig::Rig;
use dropkey_sandbox::{self as sandbox, Faults};
use serde_json::Value;

const KEY: &str = "private_upload_test_key";

/// Two profiles beside the built-in `sandbox` one (ImageKit V2), both on the sandbox at `base`.
fn profiles(base: &str) -> String {
    format!(
        r#"
[upload]
# Chunk Cloudinary uploads over 5 MiB, in 5 MiB chunks (Cloudinary's minimum), to test chunking.
chunk_threshold = 5242880
chunk_size = 5242880

[profiles.ikv1]
provider = "imagekit"
auth = "v1"
public_key = "public_sandbox"
url_endpoint = "{base}/ik/sandbox"
upload_url = "{base}/api/v1/files/upload"
api_url = "{base}"
folder = "/v1-uploads"

[profiles.cl]
provider = "cloudinary"
cloud_name = "{cloud}"
api_key = "{api_key}"
api_url = "{base}"
folder = "kyc/1"
tags = ["kyc"]
"#,
        cloud = sandbox::CLOUDINARY_CLOUD,
        api_key = sandbox::CLOUDINARY_API_KEY,
    )
}

impl Rig {
    fn new(faults: Faults) -> Self {
        Rig::builder(KEY)
            .faults(faults)
            .config(|sandbox, _| profiles(&sandbox.base_url()))
            .secrets_for(&["ikv1", "cl"])
            .start()
    }
}

fn write(path: &Path, len: usize, seed: u8) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(path, data).unwrap();
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Asserts every file in `paths` landed at least once (by content, per the ledger) and returns
/// how many extra copies landed.
fn duplicates_after_all_landed(rig: &Rig, paths: &[PathBuf], what: &str) -> usize {
    let mut landed: HashMap<String, usize> = HashMap::new();
    for entry in rig.ledger() {
        *landed
            .entry(entry["sha256"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    paths
        .iter()
        .map(|p| {
            let n = landed.get(&sha256_file(p)).copied().unwrap_or(0);
            assert!(n >= 1, "{what}: {} never landed", p.display());
            n - 1
        })
        .sum()
}

fn fetch(url: &str) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::get(url)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    })
}

#[test]
fn every_scheme_uploads_end_to_end_and_links_work() {
    let rig = Rig::new(Faults::default());
    let files = rig.files();
    let photo = files.join("photo.jpg");
    write(&photo, 300_000, 1);
    let empty = files.join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let unicode = files.join("été 😀 résumé.pdf");
    write(&unicode, 1234, 2);

    // V2 (the built-in sandbox profile), with the upload-token guide's defaults and per-upload overrides.
    let (code, lines, stderr) = rig.run(&[
        "upload",
        "sandbox",
        photo.to_str().unwrap(),
        empty.to_str().unwrap(),
        unicode.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(line["ok"], true, "{line}");
        let path = PathBuf::from(line["path"].as_str().unwrap());
        assert_eq!(
            fetch(line["url"].as_str().unwrap()),
            std::fs::read(&path).unwrap()
        );
        assert!(line["response"]["filePath"]
            .as_str()
            .unwrap()
            .starts_with("/uploads/chat/"));
        assert_eq!(
            line["response"]["tags"],
            serde_json::json!(["chat", "media"])
        );
    }
    let (code, lines, stderr) = rig.run(&[
        "upload",
        "sandbox",
        photo.to_str().unwrap(),
        "--folder",
        "/custom",
        "--tag",
        "a",
        "--tag",
        "b",
        "--param",
        "isPrivateFile=false",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(lines[0]["response"]["filePath"]
        .as_str()
        .unwrap()
        .starts_with("/custom/"));
    assert_eq!(lines[0]["response"]["tags"], serde_json::json!(["a", "b"]));

    // V1 and Cloudinary.
    let (code, lines, stderr) = rig.run(&["upload", "ikv1", photo.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(lines[0]["response"]["filePath"]
        .as_str()
        .unwrap()
        .starts_with("/v1-uploads/"));
    let (code, lines, stderr) = rig.run(&[
        "upload",
        "cl",
        photo.to_str().unwrap(),
        unicode.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    for line in &lines {
        assert!(line["id"].as_str().unwrap().starts_with("kyc/1/"), "{line}");
        assert_eq!(line["response"]["tags"], serde_json::json!(["kyc"]));
        let path = PathBuf::from(line["path"].as_str().unwrap());
        assert_eq!(
            fetch(line["url"].as_str().unwrap()),
            std::fs::read(&path).unwrap()
        );
    }

    // The ledger saw each accepted upload once, with the right content.
    let ledger = rig.ledger();
    assert_eq!(ledger.len(), 7);
    assert!(ledger.iter().any(|l| l["sha256"] == sha256_file(&unicode)));

    // History, verify, delete.
    let (code, history, _) = rig.run(&["history", "--limit", "100"]);
    assert_eq!(code, Some(0));
    assert_eq!(history.len(), 7);
    let (code, _, stderr) = rig.run(&["verify"]);
    assert_eq!(code, Some(0), "{stderr}");
    let ik_id = history.iter().find(|h| h["profile"] == "sandbox").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cl_url = history.iter().find(|h| h["profile"] == "cl").unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, lines, stderr) = rig.run(&["delete", "sandbox", &ik_id]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines[0]["deleted"], true);
    let (code, lines, stderr) = rig.run(&["delete", "cl", &cl_url]);
    assert_eq!(code, Some(0), "{stderr} {lines:?}");
    assert_eq!(lines[0]["deleted"], true);
    // Deleting again: gone already, still ok.
    let (_, lines, _) = rig.run(&["delete", "sandbox", &ik_id]);
    assert_eq!(lines[0]["deleted"], false);
    // A URL on another host is refused before any request.
    let (code, lines, _) = rig.run(&[
        "delete",
        "cl",
        "https://evil.example/res/sandbox/image/upload/v1/a.jpg",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(lines[0]["ok"], false);
}

#[test]
fn failed_files_are_reported_per_file_with_exit_1() {
    let rig = Rig::new(Faults::default());
    let files = rig.files();
    let good = files.join("good.png");
    write(&good, 10, 3);
    let missing = files.join("missing.png");
    // A folder without -r fails its pre-check, as the contract says; with -r its files are
    // uploaded (tests/scale.rs covers the walk).
    let folder = files.join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    let inner = folder.join("inner.png");
    write(&inner, 10, 4);
    let (code, lines, _) = rig.run(&[
        "upload",
        "sandbox",
        good.to_str().unwrap(),
        missing.to_str().unwrap(),
        folder.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(lines.len(), 3);
    let by_path: HashMap<String, &Value> = lines
        .iter()
        .map(|l| (l["path"].as_str().unwrap().to_owned(), l))
        .collect();
    assert_eq!(by_path[good.to_str().unwrap()]["ok"], true);
    assert!(by_path[missing.to_str().unwrap()]["error"]
        .as_str()
        .unwrap()
        .contains("no such file"));
    let error = by_path[folder.to_str().unwrap()]["error"].as_str().unwrap();
    assert!(
        error.contains("is a directory") && error.contains("--recursive"),
        "{error}"
    );
    let (code, lines, _) = rig.run(&["upload", "sandbox", "-r", folder.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["path"], inner.to_str().unwrap());
    assert_eq!(lines[0]["ok"], true);
    // A provider rejection (bad params) is permanent: reported with the provider's message.
    let (code, lines, _) = rig.run(&[
        "upload",
        "sandbox",
        good.to_str().unwrap(),
        "--param",
        "customMetadata=not-json",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(lines[0]["ok"], false);
    assert!(
        lines[0]["error"].as_str().unwrap().starts_with("400"),
        "{}",
        lines[0]
    );
}

#[test]
fn thirty_percent_faults_every_file_lands_exactly_once_and_no_token_is_reused() {
    let rig = Rig::new(Faults {
        fail_rate: 0.3,
        latency_ms: 0,
        seed: Some(7),
    });
    let files = rig.files();
    let mut paths = Vec::new();
    for i in 0..60 {
        let p = files.join(format!("f{i:03}.bin"));
        write(&p, 2_000 + i * 37, i as u8);
        paths.push(p);
    }
    let mut args = vec![
        "upload".to_owned(),
        "sandbox".to_owned(),
        "--concurrency".into(),
        "8".into(),
    ];
    args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Retries back off for real; the default policy (6 attempts) is enough at 30%.
    let (code, lines, stderr) = rig.run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(lines.iter().all(|l| l["ok"] == true));
    let ledger = rig.ledger();
    let mut per_file: HashMap<String, usize> = HashMap::new();
    for entry in &ledger {
        *per_file
            .entry(entry["sha256"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for p in &paths {
        assert_eq!(
            per_file.get(&sha256_file(p)),
            Some(&1),
            "{} landed once",
            p.display()
        );
    }
    let mut tokens: Vec<&str> = ledger
        .iter()
        .filter_map(|l| l["token_sha256"].as_str())
        .collect();
    let before = tokens.len();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), before, "a token was reused");
}

#[test]
fn chunked_cloudinary_upload_assembles_the_file() {
    let rig = Rig::new(Faults::default());
    let big = rig.files().join("video.mp4");
    write(&big, 12 * 1024 * 1024 + 77, 9);
    let (code, lines, stderr) = rig.run(&["upload", "cl", big.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        fetch(lines[0]["url"].as_str().unwrap()),
        std::fs::read(&big).unwrap()
    );
    assert_eq!(rig.ledger().len(), 1);
}

#[test]
fn kill_9_mid_batch_then_resume_lands_all_with_duplicates_only_in_flight() {
    // Latency keeps uploads in flight long enough for the kill to land mid-batch.
    let rig = Rig::new(Faults {
        fail_rate: 0.0,
        latency_ms: 2,
        seed: None,
    });
    let files = rig.files();
    let paths: Vec<PathBuf> = (0..1000)
        .map(|i| {
            let p = files.join(format!("n{i:04}.txt"));
            std::fs::write(&p, format!("file number {i}\n")).unwrap();
            p
        })
        .collect();
    // Watch the sandbox's ledger and kill once about a third has landed.
    let mut args = vec!["upload".to_owned(), "sandbox".to_owned()];
    args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = rig
        .dropkey(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ledger_path = rig.sandbox().ledger_path();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let landed = std::fs::read_to_string(&ledger_path)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if landed >= 300 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "uploads did not progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "upload finished before the kill"
        );
        std::thread::yield_now();
    }
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let before = rig.ledger().len();
    assert!(before < 1000, "killed mid-batch");

    let (code, _, stderr) = rig.run(&["resume"]);
    assert_eq!(code, Some(0), "{stderr}");
    // Only jobs in flight at the kill (at most the concurrency, 4) can land twice.
    let duplicates = duplicates_after_all_landed(&rig, &paths, "kill -9");
    assert!(duplicates <= 4, "{duplicates} duplicates");
    let (_, again, _) = rig.run(&["resume"]);
    assert!(again.is_empty(), "nothing left to resume");
}

#[cfg(feature = "fault-points")]
#[test]
fn a_crash_at_every_state_transition_loses_nothing() {
    for point in dropkey_core::engine::fault::POINTS
        .iter()
        .filter(|p| **p != "chunk-acknowledged")
    {
        let rig = Rig::new(Faults::default());
        let files = rig.files();
        let paths: Vec<PathBuf> = (0..12)
            .map(|i| {
                let p = files.join(format!("{point}-{i}.txt"));
                std::fs::write(&p, format!("{point} {i}")).unwrap();
                p
            })
            .collect();
        let mut args = vec!["upload".to_owned(), "sandbox".to_owned()];
        args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let nth = if *point == "enqueued" { "1" } else { "5" };
        let out = rig
            .dropkey(&args)
            .env("DROPKEY_FAULT_POINT", format!("{point}:{nth}"))
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{point}: the process must have crashed"
        );
        let (code, _, stderr) = rig.run(&["resume"]);
        assert_eq!(code, Some(0), "{point}: {stderr}");
        let duplicates = duplicates_after_all_landed(&rig, &paths, point);
        assert!(duplicates <= 4, "{point}: {duplicates} duplicates");
    }
}

#[cfg(feature = "fault-points")]
#[test]
fn a_crash_mid_chunked_upload_resumes_from_the_last_acknowledged_chunk() {
    let rig = Rig::new(Faults::default());
    let big = rig.files().join("big.mov");
    write(&big, 16 * 1024 * 1024 + 5, 4);
    let out = rig
        .dropkey(&["upload", "cl", big.to_str().unwrap()])
        .env("DROPKEY_FAULT_POINT", "chunk-acknowledged:2")
        .output()
        .unwrap();
    assert!(!out.status.success(), "crashed after the second chunk");
    let out = rig.dropkey(&["resume"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(
        fetch(line["url"].as_str().unwrap()),
        std::fs::read(&big).unwrap()
    );
    assert_eq!(rig.ledger().len(), 1, "the file landed once");
}

/// Settings change the number of uploads in flight on the running engine: going down stops no
/// running job but starts none until the running ones fit; going up starts more at once.
#[test]
fn concurrency_changes_apply_to_the_running_engine() {
    use dropkey_core::engine::{Event, JobId};
    use std::collections::HashSet;

    /// Keeps `running` current; true when a job finished.
    fn track(running: &mut HashSet<JobId>, event: Event) -> bool {
        match event {
            Event::Started { job, .. } => {
                running.insert(job);
                false
            }
            Event::Finished(f) => {
                assert!(f.uploaded.is_some(), "{:?}", f.error);
                running.remove(&f.job);
                true
            }
            _ => false,
        }
    }

    let rig = Rig::new(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    // The engine runs in this process; the key comes the way CI passes keys.
    std::env::set_var("DROPKEY_SECRET_IKV1", KEY);
    let files = rig.files();
    let (engine, config) = rig.start_engine(&rig.dir.path().join("engine-data"), |settings| {
        settings.concurrency = 4;
    });
    let profile = config.profile("ikv1").unwrap().clone();

    rig.runtime.block_on(async {
        let mut events = engine.subscribe();
        let jobs: Vec<_> = (0..20u8)
            .map(|i| {
                let path = files.join(format!("slot-{i:02}.bin"));
                write(&path, 4096, i);
                engine
                    .prepare(
                        &profile,
                        &path,
                        &Default::default(),
                        dropkey_core::engine::JobSource::Cli,
                    )
                    .unwrap()
            })
            .collect();
        let ids = engine.enqueue(&jobs).unwrap();

        let mut running = HashSet::new();
        let mut finished = 0;
        // The next event, counting finished jobs; a phase that runs out of jobs has failed.
        let mut track = |running: &mut HashSet<JobId>, event: Event| {
            let ended = track(running, event);
            finished += usize::from(ended);
            assert!(
                finished < ids.len(),
                "every job finished before the phase's condition held"
            );
            ended
        };

        // Phase 1: four at once.
        while running.len() < 4 {
            track(&mut running, events.recv().await.unwrap());
        }

        // Phase 2: down to one. The four running finish; none starts until one is left.
        engine.set_concurrency(1);
        assert_eq!(engine.concurrency(), 1);
        let mut fitted = running.len() <= 1;
        let mut finished_at_one = 0;
        while finished_at_one < 3 {
            let ended = track(&mut running, events.recv().await.unwrap());
            if fitted {
                assert!(
                    running.len() <= 1,
                    "{} running after the limit went to 1",
                    running.len()
                );
                finished_at_one += usize::from(ended);
            }
            fitted |= running.len() <= 1;
        }

        // Phase 3: up to three; three run at once again.
        engine.set_concurrency(3);
        while running.len() < 3 {
            track(&mut running, events.recv().await.unwrap());
        }
        let results = engine.wait_for(events, &ids, |_| {}).await;
        assert_eq!(results.len(), ids.len());
        assert!(results.iter().all(|f| f.uploaded.is_some()));
        engine.shutdown().await;
    });
    assert_eq!(rig.ledger().len(), 20);
}
