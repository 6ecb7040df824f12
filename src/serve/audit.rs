//! The audit log: one JSON line per authenticated-endpoint request, saying who (the bearer
//! token's name, never the token), what (endpoint, profile, the file name and folder asked for,
//! the outcome) and when. No field can hold a secret: records are built from names, statuses and
//! client-chosen upload parameters only.
//!
//! Requests hand records to a channel; one thread writes them in batches and flushes after each
//! batch, so logging costs a request one channel send. The thread ends when the last sender is
//! dropped (the server has stopped), after writing everything queued.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::sync::mpsc;

use super::config::AuditTarget;
use super::ServeError;

/// The audit file's name inside the data directory, unless `[serve] audit_log` says otherwise.
pub const AUDIT_FILE: &str = "serve-audit.jsonl";
/// Records queued before requests wait for the writer.
const QUEUE: usize = 16_384;
/// Longest client-chosen text kept in a record.
const MAX_TEXT: usize = 256;

/// One audit line.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339 UTC time, milliseconds.
    pub time: String,
    /// The token name; `None` when authentication failed.
    pub who: Option<String>,
    pub ip: String,
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

/// The sending side, cloned into the server's state.
#[derive(Debug, Clone)]
pub struct Audit {
    tx: mpsc::Sender<Record>,
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
        crate::private_fs::create_dir_all(dir).map_err(err)?;
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

fn write_loop(mut rx: mpsc::Receiver<Record>, sink: Box<dyn std::io::Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
    let mut failed = false;
    while let Some(first) = rx.blocking_recv() {
        let mut result = write_record(&mut out, &first);
        // Drain what else is queued before flushing: one write per batch under load.
        while let Ok(next) = rx.try_recv() {
            result = result.and_then(|()| write_record(&mut out, &next));
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
    let _ = out.flush();
}

fn write_record(out: &mut impl std::io::Write, record: &Record) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

impl Audit {
    /// Queues a record; waits only when the writer is 16,384 records behind.
    pub async fn log(
        &self,
        who: Option<&str>,
        peer: Option<SocketAddr>,
        method: &str,
        path: &str,
        status: u16,
        note: Note,
    ) {
        let record = Record {
            time: rfc3339_now(),
            who: who.map(str::to_owned),
            ip: peer.map(|p| p.ip().to_string()).unwrap_or_default(),
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            note,
        };
        // A closed channel means the server is stopping; the record has nowhere to go.
        let _ = self.tx.send(record).await;
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

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("a.jpg"), "a.jpg");
        let long = "é".repeat(300);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_TEXT + "…".len());
        assert!(clipped.ends_with('…'));
    }
}
