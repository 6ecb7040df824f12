//! The audit log: one JSON line per authenticated-endpoint request, saying who (the bearer
//! token's name, never the token), what (endpoint, profile, the file name and folder asked for,
//! the outcome) and when. No field can hold a secret: records are built from names, statuses and
//! client-chosen upload parameters only.
//!
//! Requests hand records to a channel; one thread writes them in batches and flushes after each
//! batch, so logging costs a request one channel send. The thread ends when the last sender is
//! dropped (the server has stopped), after writing everything queued.
//!
//! Requests that can be repeated at will are summed up: those without a valid token per client
//! IP (an IPv6 client per /64), since anyone who can reach the server can send them, and a
//! token's requests over its rate limit, per token. The first of a minute is written as a
//! normal record; the rest of that minute become one summary line (`"event": "auth_failures"`
//! or `"rate_limited"`, with their `count`, the `since` and `until` times and the count per
//! status), written when the minute is over or the server stops. So each adds at most two lines
//! a minute however fast it comes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use super::proxy::Client;
use super::ServeError;
use dropkey_core::serve_config::AuditTarget;

/// The audit file's name inside the data directory, unless `[serve] audit_log` says otherwise.
pub const AUDIT_FILE: &str = "serve-audit.jsonl";
/// Records queued before requests wait for the writer.
const QUEUE: usize = 16_384;
/// Longest client-chosen text kept in a record.
const MAX_TEXT: usize = 256;
/// How long failed authentication from one client IP is summed up into one line.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Client IPs whose failures are being summed up at once; past this every open summary is
/// written, so a flood from made-up addresses costs lines, not memory.
const MAX_WINDOWS: usize = 16_384;

/// One audit line.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339 UTC time, milliseconds.
    pub time: String,
    /// The token name; `None` when authentication failed.
    pub who: Option<String>,
    /// The client: the TCP peer, or the address a trusted proxy forwarded for.
    pub ip: String,
    /// The trusted proxy the request came through, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    #[serde(flatten)]
    pub note: Note,
}

/// What a handler adds to its request's record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Note {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// Public ids (Cloudinary download and delete).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Token expiry (Unix time) of what was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire: Option<i64>,
    /// Why the request was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Note {
    pub fn profile(profile: &str) -> Self {
        Self {
            profile: Some(profile.to_owned()),
            ..Self::default()
        }
    }
}

/// Truncates client-chosen text so one request cannot write an arbitrarily long line.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// What a run of summed-up requests has in common: the event, and whose they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SumKey {
    /// `auth_failures` (no valid token, per client IP) or `rate_limited` (a token over its
    /// limit, per token).
    pub event: &'static str,
    pub who: Option<String>,
    /// The client IP, or for IPv6 its /64.
    pub ip: Option<String>,
}

impl SumKey {
    /// Requests without a valid token from `group` (an address, or an IPv6 /64).
    pub fn auth_failures(group: String) -> Self {
        Self {
            event: "auth_failures",
            who: None,
            ip: Some(group),
        }
    }

    /// Requests refused because `token` is over its rate limit.
    pub fn rate_limited(token: &str) -> Self {
        Self {
            event: "rate_limited",
            who: Some(token.to_owned()),
            ip: None,
        }
    }
}

/// The requests of one [`SumKey`] after its first of a minute.
#[derive(Debug, Clone, Serialize)]
struct Summary {
    time: String,
    who: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    event: &'static str,
    /// Requests summed up here (not written one by one).
    count: u64,
    since: String,
    until: String,
    /// How many got each status (e.g. 401, then 429 once over the per-IP limit).
    statuses: BTreeMap<u16, u64>,
}

#[derive(Debug)]
enum Entry {
    Record(Record),
    Summed(SumKey, Record),
    /// Write the summaries whose minute is over.
    Tick,
}

/// The sending side, cloned into the server's state.
#[derive(Debug, Clone)]
pub struct Audit {
    tx: mpsc::Sender<Entry>,
}

/// The writer thread; join it after the server has stopped.
#[derive(Debug)]
pub struct AuditWriter {
    thread: std::thread::JoinHandle<()>,
}

impl AuditWriter {
    /// Waits until every queued record is written. Blocking: call from a blocking context.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the audit writer thread panicked; some records may be missing");
        }
    }
}

/// Opens the audit log (appending; created 0600) and starts its writer.
pub fn open(target: &AuditTarget) -> Result<(Audit, AuditWriter), ServeError> {
    let sink: Box<dyn std::io::Write + Send> = match target {
        AuditTarget::Stderr => Box::new(std::io::stderr()),
        AuditTarget::File(path) => Box::new(open_file(path)?),
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("dropkey-audit".into())
        .spawn(move || write_loop(rx, sink))
        .map_err(|source| ServeError::Audit {
            path: PathBuf::from("(audit writer thread)"),
            source,
        })?;
    Ok((Audit { tx }, AuditWriter { thread }))
}

fn open_file(path: &Path) -> Result<std::fs::File, ServeError> {
    let err = |source| ServeError::Audit {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        dropkey_core::private_fs::create_dir_all(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path).map_err(err)
}

/// One key's requests in the current minute.
#[derive(Debug)]
struct Window {
    started: Instant,
    count: u64,
    since: String,
    until: String,
    statuses: BTreeMap<u16, u64>,
}

impl Window {
    fn summary(self, key: SumKey) -> Option<Summary> {
        (self.count > 0).then(|| Summary {
            time: rfc3339_now(),
            who: key.who,
            ip: key.ip,
            event: key.event,
            count: self.count,
            since: self.since,
            until: self.until,
            statuses: self.statuses,
        })
    }
}

/// Decides which records of a [`SumKey`] are written and which are summed up.
#[derive(Debug, Default)]
struct Aggregator {
    windows: HashMap<SumKey, Window>,
}

impl Aggregator {
    /// The record to write now, if any, and a summary to write before it.
    fn add(
        &mut self,
        key: SumKey,
        record: Record,
        now: Instant,
    ) -> (Option<Summary>, Option<Record>) {
        let mut closed = None;
        if let Some(window) = self.windows.get_mut(&key) {
            if now.saturating_duration_since(window.started) < FAILURE_WINDOW {
                window.count += 1;
                *window.statuses.entry(record.status).or_default() += 1;
                window.until.clone_from(&record.time);
                return (None, None);
            }
            closed = self
                .windows
                .remove(&key)
                .and_then(|w| w.summary(key.clone()));
        }
        self.windows.insert(
            key,
            Window {
                started: now,
                count: 0,
                since: record.time.clone(),
                until: record.time.clone(),
                statuses: BTreeMap::new(),
            },
        );
        (closed, Some(record))
    }

    /// Summaries of the windows that are over (all of them with `all`, or when there are too
    /// many open).
    fn expired(&mut self, now: Instant, all: bool) -> Vec<Summary> {
        let all = all || self.windows.len() > MAX_WINDOWS;
        let done: Vec<SumKey> = self
            .windows
            .iter()
            .filter(|(_, w)| all || now.saturating_duration_since(w.started) >= FAILURE_WINDOW)
            .map(|(key, _)| key.clone())
            .collect();
        let mut summaries: Vec<Summary> = done
            .into_iter()
            .filter_map(|key| {
                let window = self.windows.remove(&key)?;
                window.summary(key)
            })
            .collect();
        summaries.sort_by(|a, b| a.since.cmp(&b.since));
        summaries
    }
}

fn write_entry(
    out: &mut impl std::io::Write,
    aggregator: &mut Aggregator,
    entry: Entry,
) -> std::io::Result<()> {
    match entry {
        Entry::Record(record) => write_record(out, &record),
        Entry::Summed(key, record) => {
            let (summary, record) = aggregator.add(key, record, Instant::now());
            if let Some(summary) = summary {
                write_record(out, &summary)?;
            }
            match record {
                Some(record) => write_record(out, &record),
                None => Ok(()),
            }
        }
        Entry::Tick => {
            for summary in aggregator.expired(Instant::now(), false) {
                write_record(out, &summary)?;
            }
            Ok(())
        }
    }
}

fn write_loop(mut rx: mpsc::Receiver<Entry>, sink: Box<dyn std::io::Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
    let mut aggregator = Aggregator::default();
    let mut failed = false;
    while let Some(first) = rx.blocking_recv() {
        let mut result = write_entry(&mut out, &mut aggregator, first);
        // Drain what else is queued before flushing: one write per batch under load.
        while let Ok(next) = rx.try_recv() {
            result = result.and_then(|()| write_entry(&mut out, &mut aggregator, next));
        }
        result = result.and_then(|()| out.flush());
        match result {
            Err(err) if !failed => {
                failed = true;
                tracing::error!("cannot write the audit log: {err}; requests are still served");
            }
            Ok(()) => failed = false,
            Err(_) => {}
        }
    }
    for summary in aggregator.expired(Instant::now(), true) {
        let _ = write_record(&mut out, &summary);
    }
    let _ = out.flush();
}

fn write_record(out: &mut impl std::io::Write, record: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

impl Audit {
    /// Queues a record of an authenticated request; waits only when the writer is 16,384
    /// records behind.
    pub async fn log(
        &self,
        who: &str,
        client: Option<Client>,
        method: &str,
        path: &str,
        status: u16,
        note: Note,
    ) {
        let record = Self::record(Some(who), client, method, path, status, note);
        // A closed channel means the server is stopping; the record has nowhere to go.
        let _ = self.tx.send(Entry::Record(record)).await;
    }

    /// Queues a request that anyone could repeat at will (no valid token, or a token over its
    /// limit): written, or summed up with the others of `key` in the minute.
    /// The record names `key`'s token, if it has one.
    pub async fn summed(
        &self,
        key: SumKey,
        client: Option<Client>,
        method: &str,
        path: &str,
        status: u16,
        note: Note,
    ) {
        let record = Self::record(key.who.as_deref(), client, method, path, status, note);
        let _ = self.tx.send(Entry::Summed(key, record)).await;
    }

    /// Asks the writer to write the failure summaries whose minute is over. Never waits: a
    /// busy writer looks at the summaries soon anyway.
    pub fn tick(&self) {
        let _ = self.tx.try_send(Entry::Tick);
    }

    fn record(
        who: Option<&str>,
        client: Option<Client>,
        method: &str,
        path: &str,
        status: u16,
        note: Note,
    ) -> Record {
        Record {
            time: rfc3339_now(),
            who: who.map(str::to_owned),
            ip: client.map(|c| c.ip.to_string()).unwrap_or_default(),
            via: client.and_then(|c| c.via).map(|ip: IpAddr| ip.to_string()),
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            note,
        }
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_millis())
}

fn rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_714_557_600, 7), "2024-05-01T10:00:00.007Z");
        assert_eq!(rfc3339(951_782_400, 999), "2000-02-29T00:00:00.999Z");
    }

    fn failure(ip: &str, status: u16) -> Record {
        Record {
            time: rfc3339_now(),
            who: None,
            ip: ip.to_owned(),
            via: None,
            method: "GET".into(),
            path: "/upload-signature".into(),
            status,
            note: Note::default(),
        }
    }

    fn key(ip: &str) -> SumKey {
        SumKey::auth_failures(ip.to_owned())
    }

    #[test]
    fn failures_are_one_record_and_one_summary_per_key_and_minute() {
        let mut agg = Aggregator::default();
        let t0 = Instant::now();
        let (summary, first) = agg.add(key("1.1.1.1"), failure("1.1.1.1", 401), t0);
        assert!(summary.is_none() && first.is_some());
        for i in 0..999 {
            let status = if i < 29 { 401 } else { 429 };
            let (s, r) = agg.add(
                key("1.1.1.1"),
                failure("1.1.1.1", status),
                t0 + Duration::from_millis(i),
            );
            assert!(s.is_none() && r.is_none());
        }
        // Another key has its own window.
        assert!(agg
            .add(key("2.2.2.2"), failure("2.2.2.2", 401), t0)
            .1
            .is_some());
        let token = SumKey::rate_limited("slow");
        assert!(agg
            .add(token.clone(), failure("1.1.1.1", 429), t0)
            .1
            .is_some());
        assert!(agg.add(token, failure("3.3.3.3", 429), t0).1.is_none());
        assert!(agg.expired(t0 + Duration::from_secs(59), false).is_empty());
        // A request after the minute closes the window with its summary and starts another.
        let (summary, record) =
            agg.add(key("1.1.1.1"), failure("1.1.1.1", 401), t0 + FAILURE_WINDOW);
        let summary = summary.unwrap();
        assert_eq!(summary.count, 999);
        assert_eq!(summary.statuses[&401], 29);
        assert_eq!(summary.statuses[&429], 970);
        assert!(record.is_some());
        // 2.2.2.2 failed once: nothing to sum up; the token's window is over.
        let over = agg.expired(t0 + FAILURE_WINDOW, false);
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].who.as_deref(), Some("slow"));
        assert_eq!(over[0].ip, None);
        // The rest is written at the end.
        agg.add(key("1.1.1.1"), failure("1.1.1.1", 401), t0 + FAILURE_WINDOW);
        let rest = agg.expired(t0 + FAILURE_WINDOW, true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].count, 1);
        assert!(agg.windows.is_empty());
    }

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("a.jpg"), "a.jpg");
        let long = "é".repeat(300);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_TEXT + "…".len());
        assert!(clipped.ends_with('…'));
    }
}
