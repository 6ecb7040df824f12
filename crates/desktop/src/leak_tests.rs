//! The secret never reaches the webview: every command's answer and every event the window
//! receives is serialised here, as IPC would send it, and searched for the known keys. The
//! commands are thin wrappers over these `Backend` calls (see the app crate's `commands/`), so
//! this covers what they return; `set_secret`'s input is the one place a key crosses IPC,
//! inward.

use std::path::Path;

use secrecy::SecretString;
use serde::Serialize;

use crate::backend::Backend;
use crate::events::Batcher;
use crate::models::{Destination, EnqueueRequest};

const SANDBOX_KEY: &str = "leaktest-sandbox-private-key-4f1d";
const CL_KEY: &str = "leaktest-cloudinary-secret-9a2e";
const TYPED_KEY: &str = "leaktest-typed-in-settings-77c3";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add<T: Serialize>(&mut self, what: &str, value: &T) {
        self.0
            .push((what.to_owned(), serde_json::to_string(value).unwrap()));
    }

    fn assert_clean(&self) {
        assert!(
            self.0.len() >= 15,
            "too few outputs checked: {}",
            self.0.len()
        );
        for (what, json) in &self.0 {
            for key in [SANDBOX_KEY, CL_KEY, TYPED_KEY] {
                assert!(!json.contains(key), "{what} carries a secret: {json}");
            }
        }
    }
}

fn config(dir: &Path, port: u16) -> String {
    format!(
        "[sandbox]\nlisten = \"127.0.0.1:{port}\"\n\n[[watch]]\npath = \"{}\"\nprofile = \"sandbox\"\n\n\
         [profiles.ik]\nprovider = \"imagekit\"\nauth = \"v2\"\npublic_key = \"public_leak\"\n\
         url_endpoint = \"https://ik.imagekit.io/leak\"\n\n\
         [profiles.cl]\nprovider = \"cloudinary\"\ncloud_name = \"demo\"\napi_key = \"1234\"\n",
        dir.join("watched").display()
    )
}

#[test]
fn no_command_output_or_event_carries_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("watched")).unwrap();
    let config_file = dir.path().join("config.toml");
    std::fs::write(&config_file, config(dir.path(), free_port())).unwrap();
    let file = dir.path().join("photo.png");
    std::fs::write(&file, b"not really a png, but bytes").unwrap();
    // Only this test in this binary touches these variables.
    std::env::set_var("DROPKEY_SECRET_SANDBOX", SANDBOX_KEY);
    std::env::set_var("DROPKEY_SECRET_CL", CL_KEY);
    std::env::remove_var("DROPKEY_SECRET_IK");

    // A multi-threaded runtime, as the app's (Tauri's) is.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let paths =
            dropkey_core::config::Paths::resolve(Some(config_file), Some(dir.path().join("data")))
                .unwrap();
        let backend = Backend::start(paths).await.unwrap();
        let mut out = Outputs(Vec::new());
        let mut batcher = Batcher::default();
        let events = backend.engine.subscribe();

        out.add("list_profiles", &backend.list_profiles());
        let enqueued = backend
            .enqueue_files(EnqueueRequest {
                paths: vec![file.display().to_string(), "relative/path".into()],
                destination: Destination {
                    profile: "sandbox".into(),
                    folder: Some("/leak".into()),
                    tags: Some(vec!["a".into()]),
                },
                keep_structure: false,
            })
            .await;
        out.add("enqueue_files", &enqueued);
        let queue = backend.queue_page(0, 100).unwrap().jobs;
        out.add("queue", &queue);
        let ids: Vec<_> = queue
            .iter()
            .map(|j| crate::models::core_job_id(j.id).unwrap())
            .collect();
        let finished = backend
            .engine
            .wait_for(events, &ids, |event| batcher.add(event))
            .await;
        assert!(
            finished
                .iter()
                .all(|f| f.state == dropkey_core::engine::JobState::Done),
            "{finished:?}"
        );
        out.add("events", &batcher.flush(&backend).events);
        out.add("queue after", &backend.queue_page(0, 100).unwrap());
        let history = backend.history(first_history_page()).unwrap().entries;
        assert_eq!(history.len(), 1);
        out.add("history", &history);
        let id = history[0].id;
        out.add("signed_link", &backend.signed_link(id, 3600).await);
        out.add("signed_link bad", &backend.signed_link(id, 1).await);
        out.add(
            "test_connection sandbox",
            &backend.test_connection("sandbox").await,
        );
        out.add("test_connection cl", &backend.test_connection("cl").await);
        out.add("test_connection ik", &backend.test_connection("ik").await);
        out.add("status", &backend.status());
        out.add("watches", &backend.watches());
        out.add("last_url", &backend.last_url());
        out.add("retry", &backend.retry(id));
        out.add("cancel", &backend.cancel(id));
        out.add(
            "set_secret builtin",
            &backend.set_secret("sandbox", SecretString::from(TYPED_KEY)),
        );
        out.add(
            "set_secret bad",
            &backend.set_secret("ik", SecretString::from(format!("{TYPED_KEY}\n"))),
        );
        // With a Secret Service this stores the key; without one it fails: neither answer
        // may echo it.
        out.add(
            "set_secret ik",
            &backend.set_secret("ik", SecretString::from(TYPED_KEY)),
        );
        out.add("list_profiles after", &backend.list_profiles());
        let settings = backend.profile_settings("cl");
        out.add("profile_settings cl", &settings);
        out.add("profile_settings ik", &backend.profile_settings("ik"));
        out.add(
            "profile_settings sandbox",
            &backend.profile_settings("sandbox"),
        );
        let mut edited = settings.unwrap();
        edited.folder = Some("/edited".into());
        let saved = backend.save_profile(edited);
        assert!(saved.is_ok(), "{saved:?}");
        out.add("save_profile cl", &saved);
        let added = backend.add_watch(crate::models::WatchInput {
            path: dir.path().join("watched").display().to_string(),
            profile: "cl".into(),
            folder: None,
            tags: None,
            recursive: true,
        });
        assert!(added.is_ok(), "{added:?}");
        out.add("add_watch", &added);
        out.add("watches after add", &backend.watches());
        // The edited config file is an output too.
        out.add(
            "config.toml",
            &std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
        );
        out.add("delete_secret ik", &backend.delete_secret("ik"));
        out.add("delete_upload", &backend.delete_upload(id).await);
        out.add(
            "history after delete",
            &backend.history(first_history_page()).unwrap(),
        );
        backend.shutdown().await;
        out.assert_clean();
    });
}

fn first_history_page() -> crate::models::HistoryQuery {
    crate::models::HistoryQuery {
        text: String::new(),
        profile: None,
        kind: crate::models::HistoryKind::All,
        offset: 0,
        limit: 100,
    }
}
