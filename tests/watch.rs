//! Watched folders end to end: the real `dropkey watch` binary, real files, real inotify
//! events, the embedded sandbox's ledger as the witness. Tests wait on the upload lines the
//! watcher prints (with a deadline), never on sleeps.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dropkey::sandbox::{self, SandboxConfig, SandboxHandle};
use secrecy::SecretString;
use serde_json::Value;

const KEY: &str = "private_watch_test_key";
const DEADLINE: Duration = Duration::from_secs(60);

struct Rig {
    dir: tempfile::TempDir,
    sandbox: Option<SandboxHandle>,
    runtime: tokio::runtime::Runtime,
}

impl Rig {
    fn new(watch_toml: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = SandboxConfig::builtin(
            "127.0.0.1:0".parse().unwrap(),
            dir.path().join("sandbox"),
            SecretString::from(KEY),
        );
        let handle = runtime.block_on(sandbox::start(config)).unwrap();
        std::fs::create_dir_all(dir.path().join("in")).unwrap();
        let watch_toml = watch_toml.replace("{IN}", &dir.path().join("in").display().to_string());
        let cfg = format!("[sandbox]\nlisten = \"{}\"\n\n{watch_toml}", handle.addr());
        std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
        Self {
            dir,
            sandbox: Some(handle),
            runtime,
        }
    }

    fn inbox(&self) -> PathBuf {
        self.dir.path().join("in")
    }

    fn spawn(&self, args: &[&str], envs: &[(&str, &str)]) -> (Child, mpsc::Receiver<Value>) {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("dropkey"));
        for (key, _) in std::env::vars() {
            if key.starts_with("DROPKEY_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("DROPKEY_SECRET_SANDBOX", KEY)
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(value) = serde_json::from_str(&line) {
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        (child, rx)
    }

    fn ledger(&self) -> Vec<Value> {
        std::fs::read_to_string(self.sandbox.as_ref().unwrap().ledger_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(handle) = self.sandbox.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

fn next(rx: &mpsc::Receiver<Value>) -> Value {
    rx.recv_timeout(DEADLINE)
        .expect("an upload line within the deadline")
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "watch exits cleanly on SIGTERM: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "watch did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const AD_HOC: &str = "";

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn a_slow_copy_uploads_once_complete() {
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    // Wait until the watch is up: a marker file comes back first.
    std::fs::write(inbox.join("marker.txt"), b"ready").unwrap();
    assert_eq!(next(&rx)["ok"], true);

    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut file = std::fs::File::create(inbox.join("slow.mov")).unwrap();
    for chunk in data.chunks(200_000) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        // The copy itself is slow; this is the scenario, not synchronisation.
        std::thread::sleep(Duration::from_millis(120));
    }
    drop(file);
    let line = next(&rx);
    assert_eq!(line["ok"], true, "{line}");
    assert!(line["path"].as_str().unwrap().ends_with("slow.mov"));
    assert_eq!(line["response"]["size"], data.len());
    stop(child);
    let ledger = rig.ledger();
    let slow: Vec<_> = ledger
        .iter()
        .filter(|l| l["name"].as_str().unwrap().starts_with("slow"))
        .collect();
    assert_eq!(slow.len(), 1, "uploaded once");
    assert_eq!(slow[0]["sha256"], sha(&data), "complete");
}

#[test]
fn temp_file_saves_and_renames_upload_the_final_file_once() {
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    std::fs::write(inbox.join("marker.txt"), b"ready").unwrap();
    assert_eq!(next(&rx)["ok"], true);

    // A browser download: .crdownload, then renamed.
    std::fs::write(inbox.join("photo.jpg.crdownload"), b"partial").unwrap();
    std::fs::write(inbox.join("photo.jpg.crdownload"), b"the whole photo").unwrap();
    std::fs::rename(inbox.join("photo.jpg.crdownload"), inbox.join("photo.jpg")).unwrap();
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("/photo.jpg"),
        "{line}"
    );
    // An editor's save: write a temp file elsewhere in the folder, then rename over the target.
    std::fs::write(inbox.join(".doc.txt.swp"), b"swap").unwrap();
    std::fs::write(inbox.join("doc.txt.tmp"), b"final text").unwrap();
    std::fs::rename(inbox.join("doc.txt.tmp"), inbox.join("doc.txt")).unwrap();
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("/doc.txt"),
        "{line}"
    );
    // A subfolder renamed: its files are not uploaded again.
    std::fs::create_dir(inbox.join("shoot")).unwrap();
    std::fs::write(inbox.join("shoot/a.png"), b"png bytes").unwrap();
    assert!(next(&rx)["path"].as_str().unwrap().ends_with("shoot/a.png"));
    std::fs::rename(inbox.join("shoot"), inbox.join("shoot-2024")).unwrap();
    std::fs::write(inbox.join("after.txt"), b"after the rename").unwrap();
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("/after.txt"),
        "the renamed folder did not upload again: {line}"
    );
    stop(child);
    let names: Vec<String> = rig
        .ledger()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("photo")).count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("doc")).count(),
        1,
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("crdownload") || n.contains("swp") || n.contains(".tmp")),
        "{names:?}"
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("a_") || *n == "a.png")
            .count(),
        1,
        "{names:?}"
    );
}

#[test]
fn files_created_while_not_running_are_caught_up_and_restarts_do_not_reupload() {
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    for i in 0..5 {
        std::fs::write(inbox.join(format!("early{i}.txt")), format!("early {i}")).unwrap();
    }
    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&rx)["path"].as_str().unwrap().to_owned());
    }
    seen.sort();
    assert!(seen[0].ends_with("early0.txt"));
    stop(child);
    // A restart: nothing new, nothing re-uploaded; a new file is.
    std::fs::write(inbox.join("later.txt"), b"later").unwrap();
    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    assert!(next(&rx)["path"].as_str().unwrap().ends_with("later.txt"));
    stop(child);
    assert_eq!(rig.ledger().len(), 6);
}

#[test]
fn after_upload_actions_tags_and_folder_templates() {
    let rig = Rig::new(
        r#"
[[watch]]
path = "{IN}"
profile = "sandbox"
folder = "/watched"
tags = ["watched", "camera"]
remote_path = "{folder}/{yyyy}/{dir}"
after_upload = "move:uploaded"
"#,
    );
    let inbox = rig.inbox();
    let (child, rx) = rig.spawn(&["watch"], &[]);
    std::fs::create_dir_all(inbox.join("day1")).unwrap();
    std::fs::write(inbox.join("day1/a.jpg"), b"jpeg").unwrap();
    let line = next(&rx);
    assert_eq!(line["ok"], true, "{line}");
    let year = 1970 + dropkey::unix_now() / 31_556_952;
    let file_path = line["response"]["filePath"].as_str().unwrap();
    assert!(
        file_path.starts_with(&format!("/watched/{year}/day1/")),
        "{file_path}"
    );
    assert_eq!(
        line["response"]["tags"],
        serde_json::json!(["watched", "camera"])
    );
    // Moved once the provider confirmed; the moved copy is not uploaded again.
    let moved = inbox.join("uploaded/day1/a.jpg");
    let deadline = Instant::now() + DEADLINE;
    while !moved.exists() {
        assert!(Instant::now() < deadline, "the file was not moved");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!inbox.join("day1/a.jpg").exists());
    std::fs::write(inbox.join("b.jpg"), b"second").unwrap();
    assert!(next(&rx)["path"].as_str().unwrap().ends_with("b.jpg"));
    stop(child);
    assert_eq!(rig.ledger().len(), 2);
}

#[test]
fn kill_9_mid_burst_then_restart_uploads_each_file_exactly_once() {
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    let (mut child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    std::fs::write(inbox.join("marker.txt"), b"ready").unwrap();
    assert_eq!(next(&rx)["ok"], true);
    let mut contents = HashMap::new();
    for i in 0..400 {
        let body = format!("burst file {i}");
        std::fs::write(inbox.join(format!("b{i:03}.txt")), &body).unwrap();
        contents.insert(sha(body.as_bytes()), i);
    }
    for _ in 0..100 {
        next(&rx);
    }
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    // Everything lands: wait until the ledger holds each burst file at least once.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ledger = rig.ledger();
        let landed: std::collections::HashSet<&str> = ledger
            .iter()
            .filter_map(|l| l["sha256"].as_str())
            .filter(|s| contents.contains_key(*s))
            .collect();
        if landed.len() == contents.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} landed",
            landed.len(),
            contents.len()
        );
        let _ = rx.recv_timeout(Duration::from_secs(5));
    }
    stop(child);
    let mut per: HashMap<String, usize> = HashMap::new();
    for l in rig.ledger() {
        *per.entry(l["sha256"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let duplicates: usize = contents.keys().map(|k| per[k] - 1).sum();
    assert!(
        duplicates <= 4,
        "{duplicates} duplicates: only in-flight uploads may repeat"
    );
}

#[test]
fn a_folder_deleted_and_recreated_is_watched_again() {
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    std::fs::write(inbox.join("first.txt"), b"first").unwrap();
    assert!(next(&rx)["path"].as_str().unwrap().ends_with("first.txt"));
    std::fs::remove_dir_all(&inbox).unwrap();
    std::fs::create_dir(&inbox).unwrap();
    // Written right after the folder came back: the catch-up scan on re-watch finds it even if
    // it was written before the new inotify watch existed.
    std::fs::write(inbox.join("second.txt"), b"second").unwrap();
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("second.txt"),
        "{line}"
    );
    stop(child);
}
