//! Watched folders end to end: the real `dropkey watch` binary, real files, real inotify
//! events, the embedded sandbox's ledger as the witness. Tests wait on the upload lines the
//! watcher prints (with a deadline), never on sleeps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::read_records;
use common::rig::Rig;

use serde_json::Value;

const KEY: &str = "private_watch_test_key";
const DEADLINE: Duration = Duration::from_secs(60);

impl Rig {
    /// A rig whose config has `watch_toml`, with `{IN}` standing for the inbox's path.
    fn new(watch_toml: &str) -> Self {
        Rig::builder(KEY)
            .config(|_, dir| {
                std::fs::create_dir_all(dir.join("in")).unwrap();
                watch_toml.replace("{IN}", &dir.join("in").display().to_string())
            })
            .start()
    }

    fn inbox(&self) -> PathBuf {
        self.dir.path().join("in")
    }

    fn spawn(&self, args: &[&str], envs: &[(&str, &str)]) -> (Child, mpsc::Receiver<Value>) {
        self.spawn_with_log(args, envs, None)
    }

    /// [`Rig::spawn`], with the watcher's info log written to `log` (to wait on its scans).
    fn spawn_logged(
        &self,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &std::path::Path,
    ) -> (Child, mpsc::Receiver<Value>) {
        self.spawn_with_log(args, envs, Some(log))
    }

    fn spawn_with_log(
        &self,
        args: &[&str],
        envs: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> (Child, mpsc::Receiver<Value>) {
        let mut cmd = self.dropkey(args);
        cmd.stdout(Stdio::piped()).stderr(if let Some(log) = log {
            Stdio::from(std::fs::File::create(log).unwrap())
        } else if std::env::var_os("WATCH_TEST_STDERR").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        // Debugging aid: WATCH_TEST_STDERR=1 shows the watcher's debug log.
        if std::env::var_os("WATCH_TEST_STDERR").is_some() {
            cmd.env("DROPKEY_LOG", "dropkey=debug");
        } else if log.is_some() {
            cmd.env("DROPKEY_LOG", "dropkey=info");
        }
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

    fn data_db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir().join("dropkey.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    /// Paths of every job in the data dir's database.
    fn job_paths(&self) -> Vec<String> {
        let db = self.data_db();
        let mut stmt = db.prepare("SELECT path FROM jobs").unwrap();
        let paths = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        paths
    }
}

fn next(rx: &mpsc::Receiver<Value>) -> Value {
    rx.recv_timeout(DEADLINE)
        .expect("an upload line within the deadline")
}

/// Waits until `child` exits by itself (a fault point aborted it).
#[cfg(feature = "fault-points")]
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the process did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let year = 1970 + dropkey_core::unix_now() / 31_556_952;
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

#[test]
fn a_half_written_ledger_line_is_not_read() {
    // What the kill -9 test saw beside another build: the sandbox mid-append.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    std::fs::write(
        &path,
        "{\"name\":\"a\"}\n{\"name\":\"b\"}\n{\"name\":\"c\",\"sha2",
    )
    .unwrap();
    let records = read_records(&path);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["name"], "b");
    std::fs::write(&path, "{\"name\":").unwrap();
    assert!(read_records(&path).is_empty());
}

/// Links into a shared drop folder must not make the owner upload files from elsewhere: not
/// through the catch-up scan, not through events, not through a linked folder, and a link to a
/// file inside the folder is not a second copy either.
#[cfg(unix)]
#[test]
fn symlinks_are_never_followed_out_of_the_root_or_inside_it() {
    use std::os::unix::fs::symlink;
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    let outside = rig.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = b"the owner's private file".to_vec();
    std::fs::write(outside.join("secret.txt"), &secret).unwrap();
    // Present before the start: for the catch-up scan.
    std::fs::write(inbox.join("real.txt"), b"a real file").unwrap();
    symlink(outside.join("secret.txt"), inbox.join("pre-link.txt")).unwrap();
    symlink(&outside, inbox.join("pre-linkdir")).unwrap();
    symlink(inbox.join("real.txt"), inbox.join("alias.txt")).unwrap();

    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("/real.txt"),
        "{line}"
    );
    // While watching: links renamed into place (a finished-file signal), a linked folder, and
    // a file written into the folder behind that link.
    symlink(outside.join("secret.txt"), inbox.join("link.tmp")).unwrap();
    std::fs::rename(inbox.join("link.tmp"), inbox.join("link.txt")).unwrap();
    symlink(&outside, inbox.join("linkdir.tmp")).unwrap();
    std::fs::rename(inbox.join("linkdir.tmp"), inbox.join("linkdir")).unwrap();
    let more_secret = b"written behind the linked folder".to_vec();
    std::fs::write(outside.join("more.txt"), &more_secret).unwrap();
    // A marker kept open (no close event) is finished only once it held still: later than any
    // of the above would have been.
    let mut marker = std::fs::File::create(inbox.join("marker.txt")).unwrap();
    marker.write_all(b"marker").unwrap();
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("/marker.txt"),
        "{line}"
    );
    drop(marker);
    stop(child);

    let shas: Vec<String> = rig
        .ledger()
        .iter()
        .map(|l| l["sha256"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !shas.contains(&sha(&secret)),
        "a file outside the root was uploaded"
    );
    assert!(
        !shas.contains(&sha(&more_secret)),
        "a file behind a linked folder was uploaded"
    );
    assert_eq!(
        shas.iter().filter(|s| **s == sha(b"a real file")).count(),
        1,
        "the link inside the root is not a second copy"
    );
    let jobs = rig.job_paths();
    assert!(
        jobs.iter()
            .all(|p| !p.contains("link") && !p.contains("alias")),
        "a link was queued: {jobs:?}"
    );
}

#[test]
fn after_delete_a_new_file_with_the_same_name_is_uploaded() {
    let rig = Rig::new(
        r#"
[[watch]]
path = "{IN}"
profile = "sandbox"
after_upload = "delete"
"#,
    );
    let inbox = rig.inbox();
    let (child, rx) = rig.spawn(&["watch"], &[]);
    std::fs::write(inbox.join("scan.pdf"), b"first scan").unwrap();
    assert!(next(&rx)["path"].as_str().unwrap().ends_with("/scan.pdf"));
    wait_until("the first scan is deleted", || {
        !inbox.join("scan.pdf").exists()
    });
    std::fs::write(inbox.join("scan.pdf"), b"the second scan").unwrap();
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("/scan.pdf"),
        "{line}"
    );
    assert_eq!(line["response"]["size"], b"the second scan".len());
    wait_until("the second scan is deleted", || {
        !inbox.join("scan.pdf").exists()
    });
    stop(child);
    let shas: Vec<Value> = rig.ledger().iter().map(|l| l["sha256"].clone()).collect();
    assert_eq!(shas, vec![sha(b"first scan"), sha(b"the second scan")]);
}

#[test]
fn move_never_overwrites_an_archived_file() {
    let rig = Rig::new(
        r#"
[[watch]]
path = "{IN}"
profile = "sandbox"
after_upload = "move:done"
on_change = "upload"
"#,
    );
    let inbox = rig.inbox();
    let (child, rx) = rig.spawn(&["watch"], &[]);
    std::fs::write(inbox.join("a.jpg"), b"version one").unwrap();
    assert!(next(&rx)["path"].as_str().unwrap().ends_with("/a.jpg"));
    wait_until("a.jpg is archived", || inbox.join("done/a.jpg").exists());
    std::fs::write(inbox.join("a.jpg"), b"version two").unwrap();
    assert!(next(&rx)["path"].as_str().unwrap().ends_with("/a.jpg"));
    wait_until("the second a.jpg is archived", || {
        inbox.join("done/a (1).jpg").exists()
    });
    stop(child);
    assert_eq!(
        std::fs::read(inbox.join("done/a.jpg")).unwrap(),
        b"version one"
    );
    assert_eq!(
        std::fs::read(inbox.join("done/a (1).jpg")).unwrap(),
        b"version two"
    );
    assert!(!inbox.join("a.jpg").exists());
    assert_eq!(rig.ledger().len(), 2);
}

/// The file is hashed when queued; another file put at its path before the upload starts is
/// not sent as the old job. The watcher queues it as the new file it is.
#[test]
fn a_file_swapped_after_queueing_is_not_uploaded_as_the_old_job() {
    use dropkey_core::engine::{Event, JobState};
    use dropkey_core::watch::Watcher;

    let rig = Rig::new(
        r#"
[[watch]]
path = "{IN}"
profile = "sandbox"
"#,
    );
    let inbox = rig.inbox();
    // The engine runs in this process; the key comes the way CI passes keys.
    std::env::set_var("DROPKEY_SECRET_SANDBOX", KEY);
    let (engine, config) = rig.start_engine(&rig.data_dir(), |_| {});
    let watches = config.watches;
    rig.runtime.block_on(async {
        // Nothing starts uploading until the swap is done.
        engine.pause_all();
        let mut events = engine.subscribe();
        let watcher = Watcher::start(engine.clone(), watches);
        std::fs::write(inbox.join("photo.jpg"), b"the photo that was checked").unwrap();
        let first = loop {
            if let Event::Queued { job, .. } = next_event(&mut events).await {
                break job;
            }
        };
        // Another file (another inode) renamed over it, as a sync tool or an attacker would.
        std::fs::write(inbox.join(".photo.new"), b"a different photo!").unwrap();
        std::fs::rename(inbox.join(".photo.new"), inbox.join("photo.jpg")).unwrap();
        engine.resume_all();
        let mut first_outcome = None;
        let mut second = None;
        while second.is_none() {
            if let Event::Finished(f) = next_event(&mut events).await {
                if f.job == first {
                    first_outcome = Some(f);
                } else {
                    assert_eq!(f.state, JobState::Done, "{:?}", f.error);
                    second = Some(f);
                }
            }
        }
        let first_outcome = first_outcome.expect("the first job finished before the second");
        assert_eq!(first_outcome.state, JobState::Failed);
        let error = first_outcome.error.unwrap();
        assert!(
            error.contains("no longer the file that was queued"),
            "{error}"
        );
        watcher.shutdown().await;
        engine.shutdown().await;
    });
    let shas: Vec<Value> = rig.ledger().iter().map(|l| l["sha256"].clone()).collect();
    assert_eq!(
        shas,
        vec![sha(b"a different photo!")],
        "only the file now there, once"
    );
}

async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<dropkey_core::engine::Event>,
) -> dropkey_core::engine::Event {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("an engine event within the deadline")
        .unwrap()
}

/// A crash between the upload and `after_upload`: the action runs at the next start, and only
/// on the file that was uploaded. One swapped in with the same size and mtime is not deleted
/// unseen: it is a new file, uploaded (and then deleted) in its own right.
#[cfg(feature = "fault-points")]
#[test]
fn after_upload_never_deletes_a_file_swapped_in_before_it_acts() {
    let rig = Rig::new(
        r#"
[[watch]]
path = "{IN}"
profile = "sandbox"
after_upload = "delete"
"#,
    );
    let inbox = rig.inbox();
    let doc = inbox.join("doc.txt");
    std::fs::write(&doc, b"uploaded text!").unwrap();
    let (mut child, _rx) = rig.spawn(&["watch"], &[("DROPKEY_FAULT_POINT", "done")]);
    assert!(
        !wait_exit(&mut child).success(),
        "crashed after marking the job done"
    );
    assert_eq!(rig.ledger().len(), 1);
    assert!(doc.exists(), "the crash came before the delete");
    // Same size, same mtime, another inode and other bytes.
    let mtime = std::fs::metadata(&doc).unwrap().modified().unwrap();
    let swapped = inbox.join(".doc.new");
    std::fs::write(&swapped, b"someone's text").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&swapped)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&swapped, &doc).unwrap();
    let (child, rx) = rig.spawn(&["watch"], &[]);
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("/doc.txt"),
        "{line}"
    );
    wait_until("the new doc.txt is deleted after its upload", || {
        !doc.exists()
    });
    stop(child);
    let shas: Vec<Value> = rig.ledger().iter().map(|l| l["sha256"].clone()).collect();
    assert_eq!(shas, vec![sha(b"uploaded text!"), sha(b"someone's text")]);
}

/// kill -9 at every transition of a watched file: the database is intact and says exactly
/// what happened, and a restart finishes the work (after_upload included) without losing the
/// file or sending it more than the in-flight resend.
#[cfg(feature = "fault-points")]
#[test]
fn a_kill_at_each_transition_leaves_the_database_telling_the_truth() {
    for (point, state, landed) in [
        ("enqueued", "queued", 0),
        ("claimed", "running", 0),
        ("acknowledged", "running", 1),
        ("done", "done", 1),
    ] {
        let rig = Rig::new(
            r#"
[[watch]]
path = "{IN}"
profile = "sandbox"
after_upload = "delete"
"#,
        );
        let inbox = rig.inbox();
        let file = inbox.join("f.txt");
        let body = format!("killed at {point}");
        std::fs::write(&file, &body).unwrap();
        let (mut child, _rx) = rig.spawn(&["watch"], &[("DROPKEY_FAULT_POINT", point)]);
        assert!(
            !wait_exit(&mut child).success(),
            "{point}: the process crashed"
        );

        let db = rig.data_db();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "{point}");
        let (job, got_state, url): (i64, String, Option<String>) = db
            .query_row("SELECT id, state, url FROM jobs", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(got_state, state, "{point}");
        assert_eq!(url.is_some(), state == "done", "{point}");
        let (job_id, sha256, action_done): (i64, String, bool) = db
            .query_row(
                "SELECT job_id, sha256, action_done FROM watch_journal WHERE rel_path = 'f.txt'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (job_id, sha256.as_str(), action_done),
            (job, sha(body.as_bytes()).as_str(), false),
            "{point}"
        );
        drop(db);
        assert_eq!(rig.ledger().len(), landed, "{point}");

        let (child, _rx) = rig.spawn(&["watch"], &[]);
        wait_until("the file is uploaded and deleted", || !file.exists());
        stop(child);
        let ledger = rig.ledger();
        assert!(
            (1..=2).contains(&ledger.len()) && (point == "acknowledged" || ledger.len() == 1),
            "{point}: {} uploads",
            ledger.len()
        );
        let db = rig.data_db();
        let states: Vec<String> = db
            .prepare("SELECT state FROM jobs")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(states, vec!["done".to_owned()], "{point}");
        let left: i64 = db
            .query_row("SELECT COUNT(*) FROM watch_journal", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "{point}: a deleted file leaves the journal");
    }
}

/// Files written into folders the moment they are created: notify adds its inotify watch on a
/// new folder only after it forwarded the folder's event, and a file written in between must
/// still be found.
#[test]
fn files_in_a_burst_of_new_folders_all_upload() {
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &[]);
    std::fs::write(inbox.join("marker.txt"), b"ready").unwrap();
    assert_eq!(next(&rx)["ok"], true);
    let n = 150;
    for i in 0..n {
        let dir = inbox.join(format!("d{i:03}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("f.txt"), format!("file in folder {i}")).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        let line = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("{} of {n} files uploaded", seen.len()));
        assert_eq!(line["ok"], true, "{line}");
        seen.insert(line["path"].as_str().unwrap().to_owned());
    }
    stop(child);
}

/// The pending cap the scale tests give the watcher (the real one is 10,000), so that a tree
/// of a few hundred files is many times larger than it.
const SMALL_CAP: &str = "40";

/// The first full-scan summary line in `log` once it is there: "... done: N files in S s, C new
/// or changed, at most P waiting at once".
fn scan_summary(log: &std::path::Path) -> Option<(u64, u64, usize)> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text
        .lines()
        .find(|l| l.contains(" done: ") && l.contains("scan of"))?;
    let number_before = |word: &str| -> Option<u64> {
        let end = line.find(word)?;
        line[..end].split_whitespace().last()?.parse().ok()
    };
    Some((
        number_before(" files in")?,
        number_before(" new or changed")?,
        number_before(" waiting at once")? as usize,
    ))
}

/// A catch-up scan of a tree many times the pending cap uploads every file exactly once while
/// never letting more than the cap wait at once (it stops walking until those are done and then
/// resumes where it was); a restart over the journaled tree finds nothing to do.
#[test]
fn a_tree_larger_than_the_pending_cap_uploads_whole_and_once() {
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    let n = 300;
    let mut contents = HashMap::new();
    for i in 0..n {
        let dir = inbox
            .join(format!("d{}", i % 7))
            .join(format!("e{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        let body = format!("tree file {i}");
        std::fs::write(dir.join(format!("f{i}.txt")), &body).unwrap();
        contents.insert(sha(body.as_bytes()), i);
    }
    let cap = [("DROPKEY_WATCH_PENDING_CAP", SMALL_CAP)];
    let log = rig.dir.path().join("first.log");
    let (child, rx) = rig.spawn_logged(&["watch", "sandbox", inbox.to_str().unwrap()], &cap, &log);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        let line = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("{} of {n} files uploaded", seen.len()));
        assert_eq!(line["ok"], true, "{line}");
        assert!(
            seen.insert(line["path"].as_str().unwrap().to_owned()),
            "uploaded twice: {line}"
        );
    }
    wait_until("the scan reported", || scan_summary(&log).is_some());
    let (files, candidates, peak) = scan_summary(&log).unwrap();
    assert_eq!((files, candidates), (n as u64, n as u64));
    let limit: usize = SMALL_CAP.parse().unwrap();
    assert!(
        peak <= limit,
        "{peak} candidates waited at once, over the cap of {limit}"
    );
    stop(child);
    let mut per: HashMap<String, usize> = HashMap::new();
    for l in rig.ledger() {
        *per.entry(l["sha256"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for (sha, i) in &contents {
        assert_eq!(per.get(sha), Some(&1), "file {i}");
    }

    // A restart: the scan compares the whole tree with the journal and queues nothing.
    let log = rig.dir.path().join("restart.log");
    let (child, rx) = rig.spawn_logged(&["watch", "sandbox", inbox.to_str().unwrap()], &cap, &log);
    wait_until("the restart's scan reported", || {
        scan_summary(&log).is_some()
    });
    assert_eq!(scan_summary(&log).unwrap(), (n as u64, 0, 0));
    std::fs::write(inbox.join("later.txt"), b"later").unwrap();
    let line = next(&rx);
    assert!(
        line["path"].as_str().unwrap().ends_with("later.txt"),
        "{line}"
    );
    stop(child);
    assert_eq!(rig.ledger().len(), n + 1);
    assert_eq!(rig.job_paths().len(), n + 1);
}

/// A folder of many files moved in whole (one rename, no events for its files) is walked as a
/// stream under the same cap: every file in it uploads, once.
#[test]
fn a_big_folder_moved_in_uploads_every_file_once() {
    let rig = Rig::new(AD_HOC);
    let inbox = rig.inbox();
    let staging = rig.dir.path().join("staging/shoot");
    let n = 150;
    for i in 0..n {
        let dir = staging.join(format!("roll{}", i % 4));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("p{i}.jpg")), format!("photo {i}")).unwrap();
    }
    let cap = [("DROPKEY_WATCH_PENDING_CAP", SMALL_CAP)];
    let (child, rx) = rig.spawn(&["watch", "sandbox", inbox.to_str().unwrap()], &cap);
    std::fs::write(inbox.join("marker.txt"), b"ready").unwrap();
    assert_eq!(next(&rx)["ok"], true);
    std::fs::rename(&staging, inbox.join("shoot")).unwrap();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        let line = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("{} of {n} files uploaded", seen.len()));
        assert_eq!(line["ok"], true, "{line}");
        let path = line["path"].as_str().unwrap().to_owned();
        assert!(path.contains("/shoot/roll"), "{path}");
        assert!(seen.insert(path.clone()), "uploaded twice: {path}");
    }
    stop(child);
    assert_eq!(rig.ledger().len(), n + 1);
}

#[test]
fn a_watch_follows_its_duplicate_and_metadata_settings() {
    let rig = Rig::new(
        r#"
[[watch]]
path = "{IN}"
profile = "sandbox"
metadata = "strip-all"
"#,
    );
    let inbox = rig.inbox();
    let (child, rx) = rig.spawn(&["watch"], &[]);
    // A PNG with a text tag: strip-all drops it.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc = crc32(kind);
        crc = crc32_more(crc, data);
        c.extend_from_slice(&(!crc).to_be_bytes());
        c
    };
    png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
    png.extend(chunk(b"tEXt", b"Author\0Someone Private"));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    std::fs::write(inbox.join("a.png"), &png).unwrap();
    let first = next(&rx);
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(
        first["metadata"]["removed"],
        serde_json::json!(["text"]),
        "{first}"
    );
    // The same picture saved again under another name: not uploaded twice.
    std::fs::write(inbox.join("a copy.png"), &png).unwrap();
    let second = next(&rx);
    assert_eq!(second["url"], first["url"], "{second}");
    assert!(second["duplicate_of"]["job"].as_i64().is_some(), "{second}");
    stop(child);
    assert_eq!(rig.ledger().len(), 1);
}

/// CRC-32 (PNG's), bit by bit: the test's PNG chunks need one and this file has no crate for it.
fn crc32(data: &[u8]) -> u32 {
    crc32_more(0xFFFF_FFFF, data)
}

fn crc32_more(mut crc: u32, data: &[u8]) -> u32 {
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}
