//! The network goes away and comes back: nothing is stranded. A watched folder keeps its files
//! while the provider is unreachable, says so on stderr, and uploads each exactly once within
//! seconds of the provider's return; transient failures end a job only when its time budget is
//! spent, never after a count of attempts. The sandbox stands in for the provider and its
//! ledger is the witness; tests wait on lines and events with deadlines, not on sleeps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use dropkey_sandbox::{self as sandbox, Faults, SandboxConfig, SandboxHandle};
use secrecy::SecretString;
use serde_json::Value;

const KEY: &str = "private_offline_test_key";
const DEADLINE: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn sandbox_at(rt: &tokio::runtime::Runtime, listen: SocketAddr, root: &Path) -> SandboxHandle {
    let config = SandboxConfig::builtin(listen, root.to_path_buf(), SecretString::from(KEY));
    rt.block_on(sandbox::start(config)).unwrap()
}

fn ledger(root: &Path) -> Vec<Value> {
    common::read_records(&root.join("ledger.jsonl"))
}

/// A loopback port nobody listens on (bound, read, released).
fn dead_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

fn dropkey(dir: &Path) -> Command {
    let mut cmd = common::isolated_dropkey();
    cmd.env("DROPKEY_SECRET_SANDBOX", KEY)
        .env("DROPKEY_SECRET_IK", KEY)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"));
    cmd
}

/// Lines of a child's pipe, as they come.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line {what} within {DEADLINE:?}"),
        }
    }
}

fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dropkey did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Finding 1 of the field report: a minute offline made watched files "give up after 6
/// attempts", and they stayed stranded after the provider came back.
#[test]
fn a_watched_folder_waits_out_an_outage_and_uploads_each_file_once() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sandbox");
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    let first = sandbox_at(&rt, "127.0.0.1:0".parse().unwrap(), &root);
    let addr = first.addr();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[sandbox]\nlisten = \"{addr}\"\n"),
    )
    .unwrap();

    let mut child = dropkey(dir.path())
        .args(["watch", "sandbox"])
        .arg(&inbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    wait_line(&err, "saying the watch started", |l| {
        l.contains(": watching")
    });

    // Online: one file lands.
    std::fs::write(inbox.join("before.txt"), b"before the outage").unwrap();
    let line = wait_line(&out, "for before.txt", |l| l.contains("before.txt"));
    assert!(line.contains("\"ok\":true"), "{line}");

    // The provider goes away; files keep arriving.
    rt.block_on(first.shutdown());
    let names: Vec<String> = (0..5).map(|i| format!("during-{i}.txt")).collect();
    for (i, name) in names.iter().enumerate() {
        std::fs::write(inbox.join(name), format!("written offline {i}")).unwrap();
    }
    // Stderr says so, with what waits and when the next try is.
    let status = wait_line(&err, "saying offline", |l| l.starts_with("offline — "));
    assert!(status.contains("waiting, next try in "), "{status}");
    assert!(status.contains(&format!("http://{addr}")), "{status}");
    // Probes back off to one every 5 s and no file gives up meanwhile (the old count-based
    // limit gave up after six attempts, about 15 s): three probes at the 5 s cadence are more
    // than 17 s offline.
    for _ in 0..3 {
        wait_line(&err, "for a probe at the 5 s cadence", |l| {
            l.starts_with("offline — ") && l.contains("next try in 5 s")
        });
    }
    assert!(
        out.try_recv().is_err(),
        "no upload line (no give-up) while offline"
    );

    // The provider returns at the same address, with its storage.
    let back = Instant::now();
    let second = sandbox_at(&rt, addr, &root);
    let mut landed = HashSet::new();
    while landed.len() < names.len() {
        let line = wait_line(&out, "for a file written offline", |_| true);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["ok"], true, "{line}");
        landed.insert(
            Path::new(value["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    let resumed_in = back.elapsed();
    wait_line(&err, "saying online again", |l| l.starts_with("online — "));
    assert!(
        resumed_in < Duration::from_secs(15),
        "the queue resumed {resumed_in:?} after the provider came back"
    );
    terminate(child);
    rt.block_on(second.shutdown());

    // Each file exactly once at the provider.
    let ledger = ledger(&root);
    let mut seen: Vec<String> = ledger
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    seen.sort();
    assert_eq!(ledger.len(), 6, "{seen:?}");
    for name in names
        .iter()
        .chain(std::iter::once(&"before.txt".to_owned()))
    {
        let stem = name.trim_end_matches(".txt");
        assert_eq!(
            seen.iter().filter(|s| s.starts_with(stem)).count(),
            1,
            "{name} landed once: {seen:?}"
        );
    }
}

fn ik_profile(upload_url: &str) -> String {
    format!(
        r#"[profiles.ik]
provider = "imagekit"
auth = "v1"
public_key = "public_sandbox"
url_endpoint = "https://ik.imagekit.io/acme"
upload_url = "{upload_url}"
"#
    )
}

/// `dropkey upload` keeps a bounded budget: `--max-wait` ends the wait for an unreachable host
/// with the reason, and exit 1.
#[test]
fn upload_gives_up_on_an_unreachable_host_only_after_max_wait() {
    let dir = tempfile::tempdir().unwrap();
    let addr = dead_port();
    std::fs::write(
        dir.path().join("config.toml"),
        ik_profile(&format!("http://{addr}/api/v1/files/upload")),
    )
    .unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, b"hello").unwrap();
    let started = Instant::now();
    let out = dropkey(dir.path())
        .args(["upload", "ik", "--max-wait", "3"])
        .arg(&file)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line: Value = serde_json::from_str(stdout.trim()).unwrap();
    let error = line["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("http://{addr} could not be reached for 3 s")),
        "{error}"
    );
    assert!(
        stderr.contains("offline — 1 waiting, next try in"),
        "{stderr}"
    );
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

/// The engine in this process, on a sandbox that fails most uploads with 5xx and resets: the
/// old policy (six attempts) left about a quarter of the files needing attention; a time
/// budget lands them all, each once, and a budget that runs out says so.
#[test]
fn heavy_transient_faults_end_no_job_within_the_budget() {
    use dropkey_core::config::{Config, Paths};
    use dropkey_core::engine::{Engine, EngineSettings, Finished, JobState};

    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let start = |fail_rate: f64, name: &str| {
        let mut config = SandboxConfig::builtin(
            "127.0.0.1:0".parse().unwrap(),
            dir.path().join(name),
            SecretString::from(KEY),
        );
        config.faults = Faults {
            fail_rate,
            latency_ms: 0,
            seed: Some(7),
        };
        rt.block_on(sandbox::start(config)).unwrap()
    };
    std::env::set_var("DROPKEY_SECRET_IK", KEY);
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let inputs: Vec<PathBuf> = (0..20)
        .map(|i| {
            let p = files.join(format!("f{i:02}.txt"));
            std::fs::write(&p, format!("file {i}")).unwrap();
            p
        })
        .collect();
    let run = |handle: &SandboxHandle, budget: Duration, inputs: &[PathBuf]| -> Vec<Finished> {
        let name = format!("data-{}", handle.addr().port());
        let config_file = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config_file,
            ik_profile(&format!("{}/api/v1/files/upload", handle.base_url())),
        )
        .unwrap();
        let paths = Paths::resolve(Some(config_file), Some(dir.path().join(name))).unwrap();
        let config = Config::load(&paths).unwrap();
        let profile = config.profile("ik").unwrap().clone();
        let mut settings = EngineSettings::new(&paths.data_dir, &config.upload);
        // Fast backoff so the test is quick; the budget is what is under test.
        settings.retry.base = Duration::from_millis(5);
        settings.retry.max_delay = Duration::from_millis(40);
        settings.retry.give_up_after = budget;
        rt.block_on(async {
            let engine = Engine::start(
                config,
                dropkey_core::secrets::Secrets::new(&paths.data_dir),
                settings,
            )
            .unwrap();
            let events = engine.subscribe();
            let jobs: Vec<_> = inputs
                .iter()
                .map(|p| {
                    engine
                        .prepare(
                            &profile,
                            p,
                            &Default::default(),
                            dropkey_core::engine::JobSource::Cli,
                        )
                        .unwrap()
                })
                .collect();
            let ids = engine.enqueue(&jobs).unwrap();
            let results = engine.wait_for(events, &ids, |_| {}).await;
            engine.shutdown().await;
            results
        })
    };

    let flaky = start(0.8, "flaky");
    let results = run(&flaky, Duration::from_secs(120), &inputs);
    for f in &results {
        assert_eq!(f.state, JobState::Done, "{:?}", f.error);
    }
    let mut landed: Vec<String> = ledger(flaky.root())
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    landed.sort();
    landed.dedup();
    assert_eq!(ledger(flaky.root()).len(), 20, "each file once: {landed:?}");
    rt.block_on(flaky.shutdown());

    // Every request fails: the budget, not a count, ends the job, and the reason says so.
    let down = start(1.0, "down");
    let started = Instant::now();
    let results = run(&down, Duration::from_millis(800), &inputs[..2]);
    assert!(started.elapsed() < Duration::from_secs(20));
    for f in &results {
        assert_eq!(f.state, JobState::NeedsAttention);
        let error = f.error.as_deref().unwrap();
        assert!(error.contains("the retry budget"), "{error}");
    }
    assert!(ledger(down.root()).is_empty());
    rt.block_on(down.shutdown());
}

/// `doctor` says when an upload host cannot be reached, and how many uploads wait for it.
#[test]
fn doctor_says_offline_with_what_waits() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_port();
    let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let live_addr = live.local_addr().unwrap();
    let config = format!(
        "{}\n[profiles.cl]\nprovider = \"cloudinary\"\ncloud_name = \"demo\"\napi_key = \"1\"\napi_url = \"http://{live_addr}\"\n",
        ik_profile(&format!("http://{dead}/api/v1/files/upload"))
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let out = dropkey(dir.path())
        .args(["doctor", "--json", "--network"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |origin: String| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == format!("network {origin}"))
            .cloned()
            .unwrap_or_else(|| panic!("no check for {origin}: {report}"))
    };
    let down = check(format!("http://{dead}"));
    assert_eq!(down["status"], "warn", "{down}");
    let detail = down["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "offline — 0 waiting: cannot reach http://{dead} (profile ik)"
        )),
        "{detail}"
    );
    let up = check(format!("http://{live_addr}"));
    assert_eq!(up["status"], "ok", "{up}");
    drop(live);
    // With nothing waiting and no --network, doctor sends nothing anywhere.
    let out = dropkey(dir.path())
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"].as_str().unwrap().starts_with("network")),
        "{report}"
    );
}
