//! History search at a million uploads (issue 16): fills a fresh job database with
//! `DROPKEY_BENCH_ROWS` (default 1,000,000) finished uploads with realistic names, folders,
//! tags and profiles, lets the store index them (the path an existing database takes on its
//! first open by this version), then times `Store::history_search` for the queries the History
//! screen and `dropkey history` make, `DROPKEY_BENCH_RUNS` (default 60) runs each, and prints
//! p50/p99 per query as a Markdown table. Exits 1 when a p99 misses the 100 ms target.
//! Run with `bench/history.sh` (or `cargo bench -p dropkey-core --bench history`).

// A benchmark program: its output is the table, and a failed setup may panic.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::time::{Duration, Instant};

use dropkey_core::engine::store::{HistoryKind, HistoryQuery, Store};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

const TARGET: Duration = Duration::from_millis(100);
/// Rows the History screen asks for at a time.
const PAGE: usize = 200;

const ADJECTIVES: &[&str] = &[
    "golden", "misty", "quiet", "bright", "frozen", "urban", "wild", "amber", "coastal", "dusty",
    "early", "late", "hidden", "northern", "southern", "rainy", "sunny", "vintage", "candid",
    "final", "draft", "signed", "scanned", "blurry", "sharp", "wide", "macro", "aerial", "night",
    "summer", "winter", "spring", "autumn", "family", "team", "product", "launch", "office",
    "garden", "harbour",
];
const NOUNS: &[&str] = &[
    "sunset",
    "sunrise",
    "beach",
    "mountain",
    "forest",
    "river",
    "city",
    "street",
    "portrait",
    "invoice",
    "receipt",
    "contract",
    "report",
    "slides",
    "mockup",
    "banner",
    "logo",
    "hero",
    "screenshot",
    "diagram",
    "whiteboard",
    "menu",
    "ticket",
    "passport",
    "recording",
    "demo",
    "lagoon",
    "harbor",
    "bridge",
    "cathedral",
    "market",
    "festival",
    "wedding",
    "birthday",
    "kitchen",
    "desk",
    "poster",
    "flyer",
    "badge",
    "avatar",
];
const EXTENSIONS: &[(&str, bool)] = &[
    ("jpg", true),
    ("jpeg", true),
    ("png", true),
    ("heic", true),
    ("webp", true),
    ("pdf", false),
    ("mp4", false),
    ("docx", false),
    ("txt", false),
    ("zip", false),
];
const TAGS: &[&str] = &[
    "chat", "media", "kyc", "holiday", "work", "press", "blog", "docs", "social", "archive",
    "clients", "legal", "design", "ops", "hr", "finance", "travel", "events", "team", "misc",
];
const PROFILES: &[&str] = &["sandbox", "marketing", "cl-prod", "archive-ik"];

fn main() {
    if let Err(err) = run() {
        eprintln!("history bench: {err}");
        std::process::exit(2);
    }
}

fn env_number(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(text) => text
            .replace(['_', ','], "")
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let rows = env_number("DROPKEY_BENCH_ROWS", 1_000_000)?;
    let runs = env_number("DROPKEY_BENCH_RUNS", 60)?.max(2);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");

    let started = Instant::now();
    fill(&data, rows)?;
    let filled = started.elapsed();
    let started = Instant::now();
    let store = Store::open(&data)?;
    let indexed = started.elapsed();
    let size: u64 = std::fs::read_dir(&data)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{rows} finished uploads: inserted in {:.1} s, numbered, classified and indexed by the \
         first open in {:.1} s; database {:.0} MiB\n",
        filled.as_secs_f64(),
        indexed.as_secs_f64(),
        size as f64 / (1024.0 * 1024.0)
    );

    let query =
        |text: &str, profile: Option<&str>, kind: HistoryKind, offset: usize| HistoryQuery {
            text: text.into(),
            profile: profile.map(str::to_owned),
            kind,
            limit: PAGE,
            offset,
        };
    let all = HistoryKind::All;
    let cases: Vec<(&str, HistoryQuery)> = vec![
        ("empty query, first page", query("", None, all, 0)),
        ("one word (`sunset`)", query("sunset", None, all, 0)),
        ("prefix (`sunse`)", query("sunse", None, all, 0)),
        ("one letter (`s`)", query("s", None, all, 0)),
        (
            "two words (`golden sunset`)",
            query("golden sunset", None, all, 0),
        ),
        (
            "two words, rare (`harbour poster 77`)",
            query("harbour poster 77", None, all, 0),
        ),
        ("no match (`zzzz`)", query("zzzz", None, all, 0)),
        (
            "profile filter (`marketing`)",
            query("", Some("marketing"), all, 0),
        ),
        (
            "kind filter (images)",
            query("", None, HistoryKind::Images, 0),
        ),
        (
            "kind filter (private)",
            query("", None, HistoryKind::Private, 0),
        ),
        (
            "word + profile + kind",
            query("beach", Some("sandbox"), HistoryKind::Images, 0),
        ),
        ("deep page: offset 10,000", query("", None, all, 10_000)),
        ("deep page: offset 500,000", query("", None, all, rows / 2)),
        (
            "word, offset 10,000 (`jpg`)",
            query("jpg", None, all, 10_000),
        ),
    ];

    println!("| query | matches | rows | p50 ms | p99 ms | < 100 ms |");
    println!("|---|---:|---:|---:|---:|:---:|");
    let mut missed = Vec::new();
    for (name, q) in &cases {
        let mut times = Vec::with_capacity(runs);
        let mut last = None;
        for _ in 0..runs {
            let started = Instant::now();
            let page = store.history_search(q)?;
            times.push(started.elapsed());
            last = Some(page);
        }
        times.sort();
        let p50 = percentile(&times, 50);
        let p99 = percentile(&times, 99);
        let (total, shown) = last.map_or((0, 0), |p| (p.total, p.records.len()));
        let ok = p99 < TARGET;
        if !ok {
            missed.push(*name);
        }
        println!(
            "| {name} | {total} | {shown} | {:.1} | {:.1} | {} |",
            ms(p50),
            ms(p99),
            if ok { "yes" } else { "NO" }
        );
    }
    println!();
    if missed.is_empty() {
        println!("every query answered in < 100 ms at p99 ({runs} runs each, {rows} rows)");
        Ok(())
    } else {
        println!("missed the 100 ms target at p99: {}", missed.join(", "));
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p`th percentile of sorted samples (nearest rank).
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Writes `rows` finished uploads as a version before the search index left them: the store's
/// first open then numbers, classifies and indexes them (its upgrade path, timed above). One
/// transaction, one prepared statement.
fn fill(data: &std::path::Path, rows: usize) -> Result<(), Box<dyn std::error::Error>> {
    drop(Store::open(data)?);
    let mut conn = rusqlite::Connection::open(data.join("dropkey.db"))?;
    conn.execute_batch(
        "DROP TRIGGER history_fts_done; DROP TRIGGER history_fts_undone;
         DROP TRIGGER history_fts_gone; DROP TABLE history_fts; PRAGMA synchronous = OFF;",
    )?;
    let mut rng = StdRng::seed_from_u64(16);
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO jobs (profile, path, file_name, size, params, state, attempts, remote_id,
                 url, response, source, created_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'done', 1, ?6, ?7, ?8, 'cli', ?9, ?9)",
        )?;
        let start = 1_600_000_000_i64;
        for i in 0..rows {
            let adjective = ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())];
            let noun = NOUNS[rng.gen_range(0..NOUNS.len())];
            let (ext, image) = EXTENSIONS[rng.gen_range(0..EXTENSIONS.len())];
            let name = format!("{adjective}-{noun}-{}.{ext}", rng.gen_range(1..10_000));
            let profile = PROFILES[rng.gen_range(0..PROFILES.len())];
            let year = 2020 + i * 7 / rows.max(1);
            let folder = format!("/uploads/{}/{year}", TAGS[rng.gen_range(0..TAGS.len())]);
            let tags: Vec<&str> = (0..rng.gen_range(0..3))
                .map(|_| TAGS[rng.gen_range(0..TAGS.len())])
                .collect();
            let private = rng.gen_ratio(1, 20);
            let mut params = serde_json::json!({ "folder": folder, "fileName": name });
            if !tags.is_empty() {
                params["tags"] = tags.join(",").into();
            }
            let response = serde_json::json!({
                "fileId": format!("f{i:08x}"),
                "fileType": if image { "image" } else { "non-image" },
                "isPrivateFile": private,
                "size": 1000 + i % 5000,
            });
            insert.execute(rusqlite::params![
                profile,
                format!(
                    "/home/me/{}/{name}",
                    if image { "Pictures" } else { "Documents" }
                ),
                name,
                (1000 + i % 5000) as i64,
                params.to_string(),
                format!("f{i:08x}"),
                format!("https://ik.imagekit.io/acme{folder}/{name}"),
                response.to_string(),
                start + i as i64,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}
