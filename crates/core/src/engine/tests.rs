//! The engine's controls and its dispatcher on a real store. The controls' tests start the
//! engine paused, so that no upload starts and every state is the test's to set; the
//! dispatcher's run it against a sandbox that never answers an upload, so that every slot it
//! fills stays filled until the test frees it.

use super::*;

/// An engine on `config_toml`, started paused with `limit` slots, and its built-in profile.
fn paused_engine(
    dir: &Path,
    config_toml: &str,
    secrets: Secrets,
    limit: Option<usize>,
) -> (Engine, Profile) {
    let config = Config::from_toml(config_toml, &dir.join("config.toml")).unwrap();
    let profile = config
        .profile(crate::config::SANDBOX_PROFILE)
        .unwrap()
        .clone();
    let mut settings = EngineSettings::new(dir, &config.upload);
    settings.start_paused = true;
    if let Some(limit) = limit {
        settings.concurrency = limit;
    }
    (Engine::start(config, secrets, settings).unwrap(), profile)
}

#[tokio::test]
async fn retry_puts_back_only_stopped_or_paused_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, profile) = paused_engine(dir.path(), "", Secrets::new(dir.path()), None);
    let file = dir.path().join("a.txt");
    std::fs::write(&file, b"a").unwrap();
    let job = |engine: &Engine| {
        let job = engine
            .prepare(&profile, &file, &Params::default(), JobSource::Cli)
            .unwrap();
        engine.enqueue(&[job]).unwrap()[0]
    };
    let refused = |id, state| {
        let err = engine.retry(id).unwrap_err();
        assert!(
            matches!(err, EngineError::NotRetryable { state: s, .. } if s == state),
            "{err}"
        );
    };

    let queued = job(&engine);
    refused(queued, JobState::Queued);
    engine.cancel(queued).unwrap();
    engine.retry(queued).unwrap();
    assert_eq!(engine.job(queued).unwrap().state, JobState::Queued);

    // A paused job is resumed, and the dispatcher no longer passes it over.
    engine.pause(queued).unwrap();
    assert_eq!(engine.job(queued).unwrap().state, JobState::Paused);
    engine.retry(queued).unwrap();
    assert_eq!(engine.job(queued).unwrap().state, JobState::Queued);
    assert!(!lock(&engine.shared.held).contains(&queued));

    // Retrying a done upload would send the file twice.
    let done = job(&engine);
    engine
        .with_store(|s| {
            s.mark_done(
                done,
                "rid",
                "https://x/a.txt",
                &serde_json::json!({}),
                None,
                1,
            )
        })
        .unwrap();
    refused(done, JobState::Done);
    assert_eq!(
        engine.retry(done).unwrap_err().to_string(),
        format!(
            "upload {done} is done: only failed, stuck, cancelled or paused uploads can be retried"
        )
    );
    assert!(matches!(
        engine.retry(JobId(999)),
        Err(EngineError::Store(StoreError::NoSuchJob(_)))
    ));
    engine.shutdown().await;
}

/// A stand-in for the built-in sandbox that proves its identity (it holds the sandbox profile's
/// key) and then holds every upload open without ever answering: a job it receives stays
/// running until the test cancels it, so the dispatcher's slots are the test's to fill and free.
async fn stalling_sandbox(key: SecretString) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let key = key.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&head).into_owned();
                let identity = format!("GET {}?nonce=", crate::sandbox_identity::IDENTITY_PATH);
                if let Some(rest) = request.strip_prefix(&identity) {
                    let nonce = rest.split(' ').next().unwrap_or("");
                    let proof = crate::sandbox_identity::identity_proof(&key, nonce);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{proof}",
                        proof.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    return;
                }
                // An upload: take its bytes, so the client's writes never block, and say nothing.
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// An engine whose built-in sandbox profile points at a [`stalling_sandbox`], with `limit`
/// upload slots, started paused with `files` files queued (ids in queue order).
async fn stalling_engine(
    limit: usize,
    files: usize,
) -> (
    tempfile::TempDir,
    Engine,
    Vec<JobId>,
    broadcast::Receiver<Event>,
) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Secrets::new(dir.path());
    let builtin = Config::from_toml("", &dir.path().join("config.toml")).unwrap();
    let builtin = builtin.profile(crate::config::SANDBOX_PROFILE).unwrap();
    // The sandbox key is generated on first use into the keychain, which every test shares:
    // two tests generating it at once would each hold a key the other overwrote.
    static FIRST_USE: Mutex<()> = Mutex::new(());
    let (key, _) = {
        let _first = lock(&FIRST_USE);
        secrets.get(builtin).unwrap()
    };
    let addr = stalling_sandbox(key).await;
    let (engine, profile) = paused_engine(
        dir.path(),
        &format!("[sandbox]\nlisten = \"{addr}\"\n"),
        secrets,
        Some(limit),
    );
    let events = engine.subscribe();
    let jobs: Vec<NewJob> = (0..files)
        .map(|i| {
            let file = dir.path().join(format!("f{i}.txt"));
            std::fs::write(&file, b"x").unwrap();
            engine
                .prepare(&profile, &file, &Params::default(), JobSource::Cli)
                .unwrap()
        })
        .collect();
    let ids = engine.enqueue(&jobs).unwrap();
    (dir, engine, ids, events)
}

#[derive(Debug, PartialEq, Eq)]
enum Change {
    Started(JobId),
    Finished(JobId),
}

/// The next job start or end, with `running` kept current. Every start is checked against
/// `limit`: the dispatcher must never run more than it allows.
async fn next_change(
    events: &mut broadcast::Receiver<Event>,
    running: &mut HashSet<JobId>,
    limit: usize,
) -> Change {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("a job start or end within 30 s")
            .unwrap();
        match event {
            Event::Started { job, .. } => {
                assert!(
                    running.len() < limit,
                    "{job} started with {running:?} running and {limit} slots"
                );
                assert!(running.insert(job), "{job} started twice");
                return Change::Started(job);
            }
            Event::Finished(finished) => {
                assert!(
                    running.remove(&finished.job),
                    "{finished:?} was not running"
                );
                return Change::Finished(finished.job);
            }
            _ => {}
        }
    }
}

/// The next `n` changes, which must all be starts; their jobs, in any order.
async fn starts(
    events: &mut broadcast::Receiver<Event>,
    running: &mut HashSet<JobId>,
    limit: usize,
    n: usize,
) -> HashSet<JobId> {
    let mut started = HashSet::new();
    for _ in 0..n {
        match next_change(events, running, limit).await {
            Change::Started(job) => started.insert(job),
            other => panic!("expected a start, got {other:?}"),
        };
    }
    started
}

/// Cancels the running `job` and checks that its slot goes to `next`, and to nothing else.
async fn hand_over(
    engine: &Engine,
    events: &mut broadcast::Receiver<Event>,
    running: &mut HashSet<JobId>,
    limit: usize,
    (job, next): (JobId, JobId),
) {
    engine.cancel(job).unwrap();
    assert_eq!(
        next_change(events, running, limit).await,
        Change::Finished(job)
    );
    assert_eq!(
        starts(events, running, limit, 1).await,
        HashSet::from([next])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_fills_the_slots_in_queue_order_and_follows_a_changed_limit() {
    let (_dir, engine, ids, mut events) = stalling_engine(2, 6).await;
    let mut running = HashSet::new();
    engine.resume_all();
    assert_eq!(
        starts(&mut events, &mut running, 2, 2).await,
        HashSet::from([ids[0], ids[1]])
    );

    // A freed slot goes to the next job in the queue.
    hand_over(&engine, &mut events, &mut running, 2, (ids[0], ids[2])).await;

    // More slots start more jobs at once.
    engine.set_concurrency(4);
    assert_eq!(
        starts(&mut events, &mut running, 4, 2).await,
        HashSet::from([ids[3], ids[4]])
    );

    // Fewer slots stop no running job, and nothing starts until the running ones fit.
    engine.set_concurrency(1);
    for &id in &ids[1..4] {
        engine.cancel(id).unwrap();
        assert_eq!(
            next_change(&mut events, &mut running, 1).await,
            Change::Finished(id),
            "a job started while more ran than the lowered limit allows"
        );
    }
    assert_eq!(running, HashSet::from([ids[4]]));
    hand_over(&engine, &mut events, &mut running, 1, (ids[4], ids[5])).await;
    engine.shutdown().await;
    // Shutdown leaves the stalled upload queued for the next start, not failed.
    assert_eq!(engine.job(ids[5]).unwrap().state, JobState::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_passes_over_a_paused_job_and_takes_it_first_once_resumed() {
    let (_dir, engine, ids, mut events) = stalling_engine(1, 3).await;
    let mut running = HashSet::new();
    engine.pause(ids[0]).unwrap();
    engine.resume_all();
    assert_eq!(
        starts(&mut events, &mut running, 1, 1).await,
        HashSet::from([ids[1]])
    );
    hand_over(&engine, &mut events, &mut running, 1, (ids[1], ids[2])).await;
    // Resumed while the one slot is busy: it waits, and is next once the slot frees.
    engine.resume(ids[0]).unwrap();
    assert_eq!(engine.job(ids[0]).unwrap().state, JobState::Queued);
    hand_over(&engine, &mut events, &mut running, 1, (ids[2], ids[0])).await;
    engine.shutdown().await;
}
