//! The engine's controls on a real store, with the engine started paused so that no upload
//! starts and every state is the test's to set.

use super::*;

#[tokio::test]
async fn retry_puts_back_only_stopped_or_paused_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml("", &dir.path().join("config.toml")).unwrap();
    let profile = config
        .profile(crate::config::SANDBOX_PROFILE)
        .unwrap()
        .clone();
    let mut settings = EngineSettings::new(dir.path(), &config.upload);
    settings.start_paused = true;
    let engine = Engine::start(config, Secrets::new(dir.path()), settings).unwrap();
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
        .with_store(|s| s.mark_done(done, "rid", "https://x/a.txt", &serde_json::json!({}), 1))
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
