//! What a local user or process could take without asking: the sandbox's address (another
//! process listening there first), the data dir under a 022 umask, a profile name that shares
//! another's DROPKEY_SECRET_ variable, and values echoed by config errors. Over real HTTP and
//! through the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dropkey_sandbox::{self as sandbox, SandboxConfig};
use secrecy::SecretString;
use serde_json::Value;

const KEY: &str = "private_local_trust_key_7c1e";
const FILE_BODY: &[u8] = b"TOP-SECRET-FILE-CONTENT-4b9d";

fn dropkey(config: &Path, data: &Path) -> Command {
    let mut cmd = common::isolated_dropkey();
    cmd.env("DROPKEY_SECRET_SANDBOX", KEY)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data);
    cmd
}

/// `dropkey ARGS` run by a shell whose umask is 022, the common default that makes new files
/// world-readable unless the program says otherwise.
fn dropkey_umask_022(config: &Path, data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    for (key, _) in std::env::vars() {
        if key.starts_with("DROPKEY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("DROPKEY_SECRET_SANDBOX", KEY)
        .args(["-c", "umask 022; exec \"$0\" \"$@\""])
        .arg(assert_cmd::cargo::cargo_bin("dropkey"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(args);
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The sandbox proves who it is

/// A listener on the sandbox's address that is not the sandbox: it records every byte it is
/// sent and answers every request with a well-formed but wrong identity proof.
struct Impostor {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<Mutex<usize>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Impostor {
    fn start() -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap())
    }

    fn start_at(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (received, connections, stop) =
                (received.clone(), connections.clone(), stop.clone());
            std::thread::spawn(move || {
                // Bounded: a handful of connections, each read for at most 2 s.
                for stream in listener.incoming().take(16) {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut stream) = stream else { continue };
                    *connections.lock().unwrap() += 1;
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut request = Vec::new();
                    let mut buf = [0u8; 8192];
                    // Everything up to the end of the head (and whatever body comes with it).
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    received.lock().unwrap().extend_from_slice(&request);
                    let proof = "0".repeat(64);
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{proof}",
                        proof.len()
                    );
                    // Drain what else the client sends before it sees the answer (a body it
                    // might stream right after the head), then close.
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        received.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                }
            })
        };
        Self {
            addr,
            received,
            connections,
            thread: Some(thread),
            stop,
        }
    }

    /// Stops the accept loop and returns everything it was sent.
    fn finish(mut self) -> (Vec<u8>, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        let received = self.received.lock().unwrap().clone();
        let connections = *self.connections.lock().unwrap();
        (received, connections)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_impostor_on_the_sandbox_address_gets_no_file_and_the_cli_says_how_to_fix_it() {
    let impostor = Impostor::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[sandbox]\nlisten = \"{}\"\n", impostor.addr),
    )
    .unwrap();
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, FILE_BODY).unwrap();

    let upload = dropkey(&config, &dir.path().join("data"))
        .args(["upload", "sandbox"])
        .arg(&file)
        .output()
        .unwrap();
    let delete = dropkey(&config, &dir.path().join("data"))
        .args(["delete", "sandbox", "0123456789abcdef01234567"])
        .output()
        .unwrap();
    let (received, connections) = impostor.finish();

    for out in [&upload, &delete] {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&impostor_addr(&config)), "{err}");
        assert!(
            err.contains("not your Dropkey sandbox")
                || err.contains("other than your Dropkey sandbox"),
            "{err}"
        );
        assert!(
            err.contains("stop the process") && err.contains("[sandbox] listen"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!err.contains(KEY));
    }
    // It was asked who it is, and got nothing else: no upload, no file bytes, no key.
    assert!(connections >= 2, "the identity check reached it");
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("GET /_dropkey/identity?nonce="), "{text}");
    assert!(!contains(&received, FILE_BODY), "{text}");
    for forbidden in [
        "POST",
        "multipart",
        "Content-Disposition",
        "Authorization",
        "upload",
        KEY,
    ] {
        assert!(
            !text.contains(forbidden),
            "`{forbidden}` reached the impostor: {text}"
        );
    }
}

/// The check at start is not enough for a long-running process: the sandbox it checked may
/// stop and something else take its port. The engine asks again before every request.
#[test]
fn an_impostor_that_takes_the_port_later_gets_nothing_from_a_running_watch() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let handle = runtime
        .block_on(sandbox::start(SandboxConfig::builtin(
            "127.0.0.1:0".parse().unwrap(),
            dir.path().join("sandbox"),
            SecretString::from(KEY),
        )))
        .unwrap();
    let addr = handle.addr();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("[sandbox]\nlisten = \"{addr}\"\n")).unwrap();
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();

    let mut watch = dropkey(&config, &dir.path().join("data"))
        .args(["watch", "sandbox"])
        .arg(&inbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<Value>();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line) {
                if tx.send(value).is_err() {
                    return;
                }
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a JSON line from `dropkey watch`")
    };

    std::fs::write(inbox.join("first.txt"), b"the real sandbox gets this").unwrap();
    let first = next_line();
    assert_eq!(first["ok"], true, "{first}");

    runtime.block_on(handle.shutdown());
    let impostor = Impostor::start_at(addr);
    std::fs::write(inbox.join("second.txt"), FILE_BODY).unwrap();
    let second = next_line();
    let _ = watch.kill();
    let _ = watch.wait();
    let (received, _) = impostor.finish();

    assert_eq!(second["ok"], false, "{second}");
    let error = second["error"].as_str().unwrap();
    assert!(error.contains("other than your Dropkey sandbox"), "{error}");
    assert!(error.contains(&addr.to_string()), "{error}");
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("GET /_dropkey/identity?nonce="), "{text}");
    assert!(!contains(&received, FILE_BODY), "{text}");
    for forbidden in ["POST", "multipart", "Authorization", KEY] {
        assert!(
            !text.contains(forbidden),
            "`{forbidden}` reached the impostor: {text}"
        );
    }
}

fn impostor_addr(config: &Path) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    text.split('"').nth(1).unwrap().to_owned()
}

#[test]
fn the_real_sandbox_proves_itself_and_refuses_to_answer_for_a_bad_nonce() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let handle = runtime
        .block_on(sandbox::start(SandboxConfig::builtin(
            "127.0.0.1:0".parse().unwrap(),
            dir.path().join("sandbox"),
            SecretString::from(KEY),
        )))
        .unwrap();
    let addr = handle.addr();
    let check = |key: &str| {
        runtime.block_on(dropkey_core::sandbox_identity::check_identity(
            addr,
            &SecretString::from(key),
        ))
    };
    assert_eq!(check(KEY), Ok(()));
    let wrong = check("private_someone_else").unwrap_err().to_string();
    assert!(wrong.contains("does not hold"), "{wrong}");
    for query in [
        "",
        "?nonce=",
        "?nonce=abc",
        "?nonce=zz",
        &format!("?nonce={}", "a".repeat(200)),
    ] {
        let (status, _) = http_get(addr, &format!("/_dropkey/identity{query}"), None);
        assert_eq!(status, 400, "{query}");
    }

    // Through the binary: the sandbox answers, so the upload goes to it.
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("[sandbox]\nlisten = \"{addr}\"\n")).unwrap();
    let file = dir.path().join("photo.txt");
    std::fs::write(&file, FILE_BODY).unwrap();
    let out = dropkey(&config, &dir.path().join("data"))
        .args(["upload", "sandbox"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let ledger = std::fs::read_to_string(handle.ledger_path()).unwrap();
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
    runtime.block_on(handle.shutdown());
}

/// One HTTP/1.1 request over a plain socket: (status, body).
fn http_get(addr: SocketAddr, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

// ---------------------------------------------------------------------------------------------
// Files at rest

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every directory and file under `root`, `root` included.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[cfg(unix)]
fn assert_private(root: &Path) {
    for path in tree(root) {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            mode(&path),
            want,
            "{} is {:o}, not {want:o}",
            path.display(),
            mode(&path)
        );
    }
}

#[cfg(unix)]
#[test]
fn files_at_rest_are_private_under_umask_022() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.toml");
    // Served profile for `serve`; the sandbox on a free port, started in-process by the upload.
    std::fs::write(
        &config,
        format!(
            r#"[sandbox]
listen = "127.0.0.1:{port}"

[profiles.ik]
provider = "imagekit"
auth = "v2"
public_key = "public_sandbox"
url_endpoint = "http://127.0.0.1:9/ik/sandbox"
upload_url = "http://127.0.0.1:9/api/v2/files/upload"
api_url = "http://127.0.0.1:9"

[serve.tokens.web]
profiles = ["ik"]
"#,
            port = free_port()
        ),
    )
    .unwrap();
    let file = dir.path().join("photo.txt");
    std::fs::write(&file, FILE_BODY).unwrap();

    // No keychain answers (a bus that does not exist): the sandbox key goes to its file.
    let no_bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let out = dropkey_umask_022(&config, &data, &["upload", "sandbox"])
        .arg(&file)
        .env_remove("DROPKEY_SECRET_SANDBOX")
        .env("DBUS_SESSION_BUS_ADDRESS", &no_bus)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = dropkey_umask_022(&config, &data, &["serve", "token", "add", "web"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    // `serve` until it has answered one signed request (an audit line), then SIGTERM.
    let mut serve = dropkey_umask_022(&config, &data, &["serve", "--listen", "127.0.0.1:0"])
        .env("DROPKEY_SECRET_IK", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let first: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("`{line}`"));
    let addr: SocketAddr = first["listen"].as_str().unwrap().parse().unwrap();
    let (status, body) = http_get(
        addr,
        "/api/media/get-upload-token?profile=ik&fileName=a.jpg",
        Some(&token),
    );
    assert_eq!(status, 200, "{body}");
    assert!(Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(serve.wait().unwrap().success());

    #[cfg(target_os = "linux")]
    assert!(data.join("sandbox.key").exists());
    for expected in [
        "dropkey.db",
        "serve-tokens.json",
        "serve-audit.jsonl",
        "sandbox/ledger.jsonl",
    ] {
        assert!(data.join(expected).exists(), "{expected} was written");
    }
    assert!(
        std::fs::read_dir(data.join("sandbox/files"))
            .unwrap()
            .count()
            >= 1
    );
    assert_private(&data);

    // What an older version (or another tool) left open is tightened at the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for loose in ["dropkey.db", "sandbox/ledger.jsonl"] {
        std::fs::set_permissions(data.join(loose), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = dropkey_umask_022(&config, &data, &["history"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_private(&data);

    // A config dir Dropkey creates is private too.
    let new_config = dir.path().join("fresh").join("config.toml");
    let out = dropkey_umask_022(
        &new_config,
        &data,
        &[
            "profile",
            "set",
            "cl",
            "--provider",
            "cloudinary",
            "--cloud-name",
            "demo",
            "--api-key",
            "1234",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&dir.path().join("fresh")), 0o700);
    assert_eq!(mode(&new_config) & 0o077, 0);
}

// ---------------------------------------------------------------------------------------------
// Secret variables and config errors

#[test]
fn profiles_that_share_a_secret_variable_are_a_config_error() {
    let env = common::Env::with_config(
        r#"
[profiles.prod-ik]
provider = "imagekit"
public_key = "public_a"
url_endpoint = "https://ik.imagekit.io/a"

[profiles.PROD_IK]
provider = "imagekit"
public_key = "public_b"
url_endpoint = "https://ik.imagekit.io/b"
"#,
    );
    let out = env.run(&["sign", "prod-ik"], &[("DROPKEY_SECRET_PROD_IK", KEY)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in [
        "prod-ik",
        "PROD_IK",
        "DROPKEY_SECRET_PROD_IK",
        "config.toml:",
    ] {
        assert!(err.contains(needle), "`{needle}` in {err}");
    }
    assert!(out.stdout.is_empty());

    // A file profile whose variable is the built-in sandbox's.
    let env = common::Env::with_config(
        "[profiles.SANDBOX]\nprovider = \"imagekit\"\npublic_key = \"p\"\nurl_endpoint = \"https://ik.imagekit.io/a\"\n",
    );
    let out = env.run(&["profile", "list"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("DROPKEY_SECRET_SANDBOX"), "{err}");
}

#[test]
fn config_errors_name_the_place_but_never_the_value() {
    const PASTED: &str = "private_PastedKey+9f3a/Zq=";
    let profile = |field: &str| {
        format!(
            "[profiles.ik]\nprovider = \"imagekit\"\npublic_key = \"public_a\"\nurl_endpoint = \"https://ik.imagekit.io/a\"\n{field}\n"
        )
    };
    let cases = [
        // A string where a boolean belongs (serde's invalid type).
        (
            profile(&format!("use_unique_file_name = \"{PASTED}\"")),
            "use_unique_file_name",
            5,
        ),
        // A string where a list belongs.
        (profile(&format!("tags = \"{PASTED}\"")), "tags", 5),
        // An enum field (serde's unknown variant).
        (profile(&format!("auth = \"{PASTED}\"")), "auth", 5),
        // A string that fails Dropkey's own checks.
        (profile(&format!("api_url = \"{PASTED}\"")), "api_url", 5),
        (profile(&format!("folder = \"{PASTED}/../x\"")), "folder", 5),
        (
            format!("[sandbox]\nlisten = \"{PASTED}\"\n"),
            "sandbox.listen",
            2,
        ),
    ];
    for (config, field, line) in cases {
        let env = common::Env::with_config(&config);
        let out = env.run(&["profile", "list"], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{config}: {err}");
        assert!(
            err.contains(&format!("config.toml:{line}:")),
            "{config}: {err}"
        );
        assert!(err.contains(field), "{config}: {err}");
        assert!(!err.contains("PastedKey"), "the value leaked: {err}");
    }
}
