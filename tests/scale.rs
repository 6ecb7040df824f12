//! `dropkey upload` and `resume` at scale, end to end: the real binary, streamed inputs
//! (arguments, folders, `--files-from`), real HTTP to the embedded sandbox, and paging through
//! the store (`resume`, `history --offset`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::rig::{json_lines, Rig};
use serde_json::Value;

const KEY: &str = "private_scale_test_key";

impl Rig {
    fn new() -> Self {
        Rig::builder(KEY).start()
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> (Option<i32>, Vec<Value>, String) {
        let mut child = self
            .dropkey(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let text = stdin.to_owned();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(text.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        json_lines(out)
    }
}

fn write(path: &Path, seed: usize) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, format!("file {seed}\n")).unwrap();
}

/// Every line's path, checking that each appears once and that every upload succeeded.
fn paths_once_all_ok(lines: &[Value]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in lines {
        assert_eq!(line["ok"], true, "{line}");
        *seen
            .entry(line["path"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "a path printed twice");
    let mut paths: Vec<String> = seen.into_keys().collect();
    paths.sort();
    paths
}

fn s(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_folder_is_walked_recursively_without_temp_hidden_files_or_symlinks() {
    let rig = Rig::new();
    let root = rig.files().join("shoot");
    let wanted = [
        root.join("a.jpg"),
        root.join("day1/b.png"),
        root.join("day1/raw/c.gif"),
    ];
    for (i, path) in wanted.iter().enumerate() {
        write(path, i);
    }
    write(&root.join("day1/d.jpg.part"), 10);
    write(&root.join("day1/~$lock.docx"), 11);
    write(&root.join(".hidden.jpg"), 12);
    write(&root.join(".cache/e.jpg"), 13);
    let outside = rig.dir.path().join("outside");
    write(&outside.join("secret.jpg"), 14);
    std::os::unix::fs::symlink(outside.join("secret.jpg"), root.join("link.jpg")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("day1/linked-dir")).unwrap();

    let (code, lines, stderr) = rig.run(&["upload", "sandbox", "-r", &s(&root)]);
    assert_eq!(code, Some(0), "{stderr}");
    let mut expected: Vec<String> = wanted.iter().map(|p| s(p)).collect();
    expected.sort();
    assert_eq!(paths_once_all_ok(&lines), expected);
    assert_eq!(rig.ledger().len(), 3);
}

#[test]
fn files_from_stdin_reads_one_path_per_line() {
    let rig = Rig::new();
    let files = rig.files();
    let paths: Vec<PathBuf> = (0..5).map(|i| files.join(format!("in {i}.txt"))).collect();
    for (i, p) in paths.iter().enumerate() {
        write(p, i);
    }
    // Blank lines are ignored; CRLF lists work too.
    let stdin = format!(
        "{}\n\n{}\r\n   \n{}\n{}\n{}",
        s(&paths[0]),
        s(&paths[1]),
        s(&paths[2]),
        s(&paths[3]),
        s(&paths[4])
    );
    let (code, lines, stderr) =
        rig.run_with_stdin(&["upload", "sandbox", "--files-from", "-"], &stdin);
    assert_eq!(code, Some(0), "{stderr}");
    let mut expected: Vec<String> = paths.iter().map(|p| s(p)).collect();
    expected.sort();
    assert_eq!(paths_once_all_ok(&lines), expected);

    // No input at all is a usage error, with one line on stderr.
    let (code, lines, stderr) = rig.run(&["upload", "sandbox"]);
    assert_eq!(code, Some(2));
    assert!(lines.is_empty());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // So is a list that cannot be read.
    let missing = s(&files.join("no-such-list"));
    let (code, _, stderr) = rig.run(&["upload", "sandbox", "--files-from", &missing]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read the list of files"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn arguments_folders_and_a_files_from_list_mix_and_failures_count() {
    let rig = Rig::new();
    let files = rig.files();
    let single = files.join("single.png");
    write(&single, 1);
    let folder = files.join("folder");
    write(&folder.join("x.txt"), 2);
    write(&folder.join("sub/y.txt"), 3);
    let listed = files.join("listed.txt");
    write(&listed, 4);
    let listed_dir = files.join("listed-dir");
    write(&listed_dir.join("z.txt"), 5);
    let missing = files.join("missing.png");
    let list = files.join("list.txt");
    std::fs::write(
        &list,
        format!("{}\n{}\n{}\n", s(&listed), s(&listed_dir), s(&missing)),
    )
    .unwrap();

    let (code, lines, stderr) = rig.run(&[
        "upload",
        "sandbox",
        "--recursive",
        &s(&single),
        &s(&folder),
        "--files-from",
        &s(&list),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("1 of 6 uploads failed"), "{stderr}");
    assert_eq!(lines.len(), 6);
    let (bad, good): (Vec<&Value>, Vec<&Value>) = lines.iter().partition(|l| l["ok"] == false);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["path"], s(&missing));
    assert!(bad[0]["error"].as_str().unwrap().contains("no such file"));
    let good: Vec<Value> = good.into_iter().cloned().collect();
    let mut expected = vec![
        s(&single),
        s(&folder.join("x.txt")),
        s(&folder.join("sub/y.txt")),
        s(&listed),
        s(&listed_dir.join("z.txt")),
    ];
    expected.sort();
    assert_eq!(paths_once_all_ok(&good), expected);
    for line in &good {
        assert!(line["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"));
        assert!(line["id"].is_string());
    }
}

#[test]
fn three_thousand_files_each_reported_once() {
    let rig = Rig::new();
    let root = rig.files().join("many");
    let mut expected = Vec::new();
    for i in 0..3_000 {
        let path = root.join(format!("d{}/f{i}.txt", i % 7));
        write(&path, i);
        expected.push(s(&path));
    }
    expected.sort();
    let (code, lines, stderr) =
        rig.run(&["upload", "sandbox", "--concurrency", "8", "-r", &s(&root)]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines.len(), 3_000);
    assert_eq!(paths_once_all_ok(&lines), expected);
    assert_eq!(rig.ledger().len(), 3_000);
    // `verify` pages through all three thousand (three pages) and finds every one in place.
    let (code, lines, stderr) = rig.run(&["verify"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(lines.is_empty(), "{lines:?}");
}

#[test]
fn resume_pages_through_more_unfinished_jobs_than_one_page() {
    let rig = Rig::new();
    let root = rig.files().join("queued");
    let config = dropkey_core::config::Config::from_toml(
        &std::fs::read_to_string(rig.dir.path().join("config.toml")).unwrap(),
        &rig.dir.path().join("config.toml"),
    )
    .unwrap();
    let profile = config.profile("sandbox").unwrap().clone();
    // Queued straight into the store, as a killed `upload` leaves them: more than two pages.
    let mut jobs = Vec::new();
    let mut expected = Vec::new();
    for i in 0..2_300 {
        let path = root.join(format!("q{i}.txt"));
        write(&path, i);
        jobs.push(
            dropkey_core::engine::prepare_job(
                &profile,
                &path,
                &Default::default(),
                dropkey_core::engine::JobSource::Cli,
                u64::MAX,
            )
            .unwrap(),
        );
        expected.push(s(&path));
    }
    expected.sort();
    std::fs::create_dir_all(rig.data_dir()).unwrap();
    {
        let mut store = dropkey_core::engine::store::Store::open(&rig.data_dir()).unwrap();
        store.enqueue(&jobs, 1).unwrap();
    }
    let (code, lines, stderr) = rig.run(&["resume", "--concurrency", "8"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines.len(), 2_300);
    assert_eq!(paths_once_all_ok(&lines), expected);
    assert_eq!(rig.ledger().len(), 2_300);
    // Nothing left: a second resume prints nothing.
    let (code, lines, _) = rig.run(&["resume"]);
    assert_eq!(code, Some(0));
    assert!(lines.is_empty());
}

#[test]
fn history_pages_with_limit_and_offset() {
    let rig = Rig::new();
    let root = rig.files().join("hist");
    for i in 0..5 {
        write(&root.join(format!("h{i}.txt")), i);
    }
    let (code, _, stderr) = rig.run(&["upload", "sandbox", "-r", &s(&root)]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, all, _) = rig.run(&["history", "--limit", "10"]);
    assert_eq!(code, Some(0));
    assert_eq!(all.len(), 5);
    let (_, page, _) = rig.run(&["history", "--limit", "2", "--offset", "1"]);
    assert_eq!(page, all[1..3].to_vec());
    let (_, tail, _) = rig.run(&["history", "--limit", "10", "--offset", "3"]);
    assert_eq!(tail, all[3..].to_vec());
    let (code, none, _) = rig.run(&["history", "--offset", "5"]);
    assert_eq!(code, Some(0));
    assert!(none.is_empty());
}

#[test]
fn history_searches_by_word_prefixes_filters_and_pages() {
    let rig = Rig::new();
    let root = rig.files().join("trip");
    let names = [
        "sunset-beach.jpg",
        "sunrise.png",
        "sunset-city.jpg",
        "report.pdf",
        "notes.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        write(&root.join(name), i);
    }
    let (code, _, stderr) = rig.run(&["upload", "sandbox", "-r", &s(&root)]);
    assert_eq!(code, Some(0), "{stderr}");
    let file_names = |lines: &[Value]| -> Vec<String> {
        let mut out: Vec<String> = lines
            .iter()
            .map(|l| {
                Path::new(l["path"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        out.sort();
        out
    };
    let history = |args: &[&str]| {
        let mut full = vec!["history"];
        full.extend_from_slice(args);
        let (code, lines, stderr) = rig.run(&full);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        lines
    };

    // A word's prefix, words in any order, every word needed.
    let sunset = history(&["--search", "sunse"]);
    assert_eq!(file_names(&sunset), ["sunset-beach.jpg", "sunset-city.jpg"]);
    assert_eq!(
        file_names(&history(&["--search", "BEACH sunse"])),
        ["sunset-beach.jpg"]
    );
    assert_eq!(history(&["--search", "sunset pdf"]).len(), 0);
    // The folder and profile are searched too.
    assert_eq!(history(&["--search", "trip sandbox"]).len(), 5);
    // Paging a search: the same lines as one page, in the same order.
    assert_eq!(
        history(&["--search", "sunse", "--limit", "1", "--offset", "1"]),
        sunset[1..].to_vec()
    );
    // Text that is FTS syntax is just text.
    for hostile in ["\"", "*", "NEAR(", "a OR b", "{name}:x"] {
        history(&["--search", hostile]);
    }
    // Filters: profile and kind (the sandbox says image for .jpg and .png).
    assert_eq!(history(&["--profile", "sandbox"]).len(), 5);
    assert_eq!(history(&["--profile", "nope"]).len(), 0);
    assert_eq!(
        file_names(&history(&["--kind", "images"])),
        ["sunrise.png", "sunset-beach.jpg", "sunset-city.jpg"]
    );
    assert_eq!(
        file_names(&history(&["--kind", "other", "--search", "re"])),
        ["report.pdf"]
    );
    let (code, _, stderr) = rig.run(&["history", "--kind", "movies"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("use all, images, other or private"),
        "{stderr}"
    );
}
