//! Privacy before upload: what the bytes sent for a file leave out of its metadata.
//!
//! Photos and videos carry where they were taken (GPS), the camera's serial number and often the
//! owner's name, and the original is downloadable from the CDN once uploaded. A
//! [`MetadataPolicy`] says what goes; [`plan`] reads a file's metadata (a few small reads, never
//! its pixels) and returns a [`Plan`]: the output as pieces, copied ranges of the file and a few
//! rewritten segments, that [`PlannedReader`] streams. So the edit is:
//! - **lossless**: pixel and sample data is copied byte for byte, only metadata segments are
//!   dropped or rewritten (Exif tags are removed in place, so no offset inside it moves);
//! - **memory-bounded**: a plan holds at most a few rewritten segments of at most
//!   [`MAX_EDIT`] bytes each, whatever the file's size;
//! - **non-destructive**: the file on disk is only ever read.
//!
//! A file with nothing to remove is sent as it is (the plan is one copied range). Formats that
//! can carry location but that this module cannot edit losslessly (HEIC/HEIF, TIFF and raw
//! files) are sent as they are and the [`Report`] says so.

mod isobmff;
mod jpeg;
mod png;
pub mod resize;
mod tiff;
mod webp;

use std::io::{Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

/// The largest metadata segment read into memory to be rewritten. Larger ones (rare: a JPEG
/// segment is at most 64 KiB) are dropped whole when the policy touches them.
pub const MAX_EDIT: u64 = 1024 * 1024;

/// What is removed from a file's metadata before it is uploaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataPolicy {
    /// Send the file as it is.
    Keep,
    /// Remove where it was taken: the Exif GPS block, location in XMP, PNG text and video
    /// metadata.
    #[default]
    StripLocation,
    /// Also remove what identifies the camera and its owner: serial numbers, owner name,
    /// maker notes, unique image ids. Copyright and artist stay.
    StripPrivate,
    /// Remove all descriptive metadata, copyright and artist included. What decoding needs
    /// stays: colour profiles, and the orientation, so the picture is shown the right way up.
    StripAll,
}

impl MetadataPolicy {
    pub const ALL: [Self; 4] = [
        Self::Keep,
        Self::StripLocation,
        Self::StripPrivate,
        Self::StripAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::StripLocation => "strip-location",
            Self::StripPrivate => "strip-private",
            Self::StripAll => "strip-all",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    fn location(self) -> bool {
        self != Self::Keep
    }

    fn private(self) -> bool {
        matches!(self, Self::StripPrivate | Self::StripAll)
    }

    fn all(self) -> bool {
        self == Self::StripAll
    }
}

impl std::fmt::Display for MetadataPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind of metadata that was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removed {
    Location,
    SerialNumber,
    OwnerName,
    MakerNotes,
    UniqueId,
    Xmp,
    Iptc,
    Comment,
    Exif,
    Text,
    Timestamp,
}

impl Removed {
    /// How the queue and history name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Location => "location",
            Self::SerialNumber => "serial numbers",
            Self::OwnerName => "owner name",
            Self::MakerNotes => "maker notes",
            Self::UniqueId => "image id",
            Self::Xmp => "XMP",
            Self::Iptc => "IPTC",
            Self::Comment => "comments",
            Self::Exif => "Exif",
            Self::Text => "text tags",
            Self::Timestamp => "timestamps",
        }
    }
}

/// What a plan removes, and what it had to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Sorted, without repeats.
    pub removed: Vec<Removed>,
    /// Why something the policy names was left in the file, e.g. "location kept: HEIC is not
    /// supported".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
    /// Set when the image was scaled down (`max_dimension`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resized: Option<resize::Resized>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.kept.is_none() && self.resized.is_none()
    }

    fn add(&mut self, what: Removed) {
        if let Err(at) = self.removed.binary_search(&what) {
            self.removed.insert(at, what);
        }
    }

    /// One line for people: "removed location, serial numbers" / "location kept: ...".
    pub fn line(&self) -> String {
        let removed = (!self.removed.is_empty()).then(|| {
            let names: Vec<_> = self.removed.iter().map(|r| r.label()).collect();
            format!("removed {}", names.join(", "))
        });
        let resized = self.resized.map(|r| {
            format!(
                "resized from {}×{} to {}×{}",
                r.from.0, r.from.1, r.to.0, r.to.1
            )
        });
        [removed, self.kept.clone(), resized]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A piece of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// `len` bytes of the file from `offset`.
    Copy { offset: u64, len: u64 },
    /// Rewritten bytes (a segment header, an edited Exif block).
    Bytes(Vec<u8>),
    /// Zero bytes (the body of a video box retyped to `free`).
    Zeros(u64),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Self::Copy { len, .. } | Self::Zeros(len) => *len,
            Self::Bytes(bytes) => bytes.len() as u64,
        }
    }
}

/// The bytes to send for a file: its pieces in order, and what they leave out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pieces: Vec<Piece>,
    /// Output offset where each piece starts.
    starts: Vec<u64>,
    len: u64,
    pub report: Report,
}

impl Plan {
    /// The file as it is.
    pub fn unchanged(size: u64) -> Self {
        Self::from_pieces(vec![Piece::Copy {
            offset: 0,
            len: size,
        }])
    }

    fn from_pieces(pieces: Vec<Piece>) -> Self {
        let mut merged: Vec<Piece> = Vec::with_capacity(pieces.len());
        for piece in pieces.into_iter().filter(|p| p.len() > 0) {
            if let (
                Some(Piece::Copy { offset, len }),
                Piece::Copy {
                    offset: next,
                    len: n,
                },
            ) = (merged.last_mut(), &piece)
            {
                if *offset + *len == *next {
                    *len += n;
                    continue;
                }
            }
            merged.push(piece);
        }
        let mut starts = Vec::with_capacity(merged.len());
        let mut len = 0;
        for piece in &merged {
            starts.push(len);
            len += piece.len();
        }
        Self {
            pieces: merged,
            starts,
            len,
            report: Report::default(),
        }
    }

    /// Bytes sent.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the output is the file's bytes unchanged.
    pub fn is_unchanged(&self) -> bool {
        matches!(self.pieces.as_slice(), [] | [Piece::Copy { offset: 0, .. }])
    }

    /// A reader of the output over `file` (the file the plan was made from).
    pub fn reader(self: std::sync::Arc<Self>, file: std::fs::File) -> PlannedReader {
        PlannedReader {
            file,
            plan: self,
            pos: 0,
            file_pos: None,
        }
    }
}

/// Reads a [`Plan`]'s output. Seeks are cheap: the pieces are few.
pub struct PlannedReader {
    file: std::fs::File,
    plan: std::sync::Arc<Plan>,
    pos: u64,
    /// Where the file's cursor is, when known (to skip redundant seeks).
    file_pos: Option<u64>,
}

impl Read for PlannedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.plan.len || buf.is_empty() {
            return Ok(0);
        }
        let index = match self.plan.starts.binary_search(&self.pos) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let within = self.pos - self.plan.starts[index];
        let piece = &self.plan.pieces[index];
        let room = (piece.len() - within).min(buf.len() as u64) as usize;
        let n = match piece {
            Piece::Copy { offset, .. } => {
                let at = offset + within;
                if self.file_pos != Some(at) {
                    self.file.seek(SeekFrom::Start(at))?;
                }
                let n = self.file.read(&mut buf[..room])?;
                self.file_pos = Some(at + n as u64);
                n
            }
            Piece::Bytes(bytes) => {
                let start = within as usize;
                buf[..room].copy_from_slice(&bytes[start..start + room]);
                room
            }
            Piece::Zeros(_) => {
                buf[..room].fill(0);
                room
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PlannedReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.plan.len.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

/// The file's kind, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jpeg,
    Png,
    Webp,
    /// MP4, MOV, 3GP: boxes this module edits.
    Video,
    /// A format that carries location that is not edited here.
    Unsupported(&'static str),
    Other,
}

fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Kind::Jpeg;
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Kind::Png;
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Kind::Webp;
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return Kind::Unsupported("TIFF and camera raw files are");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return match &head[8..12] {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1"
            | b"avif" | b"avis" => Kind::Unsupported("HEIC/HEIF and AVIF are"),
            _ => Kind::Video,
        };
    }
    if head.len() >= 8 && &head[4..8] == b"moov" || head.len() >= 8 && &head[4..8] == b"wide" {
        return Kind::Video;
    }
    Kind::Other
}

/// What to send for `file` (of `size` bytes) under `policy`. Reads only metadata. A file whose
/// structure cannot be followed is sent as it is, with the reason in the report: decoders
/// would not read it either, and refusing it would strand an upload over a format quirk.
pub fn plan(file: &mut std::fs::File, size: u64, policy: MetadataPolicy) -> std::io::Result<Plan> {
    if policy == MetadataPolicy::Keep || size < 12 {
        return Ok(Plan::unchanged(size));
    }
    let mut head = [0u8; 16];
    file.seek(SeekFrom::Start(0))?;
    let n = read_up_to(file, &mut head)?;
    let kind = sniff(&head[..n]);
    let mut source = Source::new(file, size);
    let result = match kind {
        Kind::Jpeg => jpeg::plan(&mut source, policy),
        Kind::Png => png::plan(&mut source, policy),
        Kind::Webp => webp::plan(&mut source, policy),
        Kind::Video => isobmff::plan(&mut source, policy),
        Kind::Unsupported(what) => {
            let mut plan = Plan::unchanged(size);
            plan.report.kept = Some(format!("location kept: {what} not supported"));
            return Ok(plan);
        }
        Kind::Other => return Ok(Plan::unchanged(size)),
    };
    match result {
        Ok(plan) => Ok(plan),
        Err(Edit::Io(err)) => Err(err),
        Err(Edit::Malformed(why)) => {
            let mut plan = Plan::unchanged(size);
            plan.report.kept = Some(format!("metadata kept: {why}"));
            Ok(plan)
        }
    }
}

/// An image scaled down under `max_dimension` (see [`resize`]): the plan of the new file written
/// to `out`; `Ok(None)` when the image is within the limit or not one that is resized;
/// `Err` with the reason when it could not be resized (it is then sent as usual).
pub fn resized(
    file: &mut std::fs::File,
    size: u64,
    policy: MetadataPolicy,
    limit: resize::Resize,
    out: &std::path::Path,
) -> Result<Option<Plan>, String> {
    match resize::resize(file, size, policy, limit, out) {
        Ok(Some((len, report))) => {
            let mut plan = Plan::unchanged(len);
            plan.report = report;
            Ok(Some(plan))
        }
        Ok(None) => Ok(None),
        Err(Edit::Io(err)) => Err(format!("not resized: {err}")),
        Err(Edit::Malformed(why)) => Err(format!("not resized: {why}")),
    }
}

fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Why a plan could not be made.
#[derive(Debug)]
enum Edit {
    Io(std::io::Error),
    /// The file does not follow its format: the text says where.
    Malformed(String),
}

impl From<std::io::Error> for Edit {
    fn from(err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            Edit::Malformed("the file ends inside a metadata segment".into())
        } else {
            Edit::Io(err)
        }
    }
}

/// Random access to the file being planned, with bounds.
struct Source<'a> {
    file: &'a mut std::fs::File,
    size: u64,
}

impl<'a> Source<'a> {
    fn new(file: &'a mut std::fs::File, size: u64) -> Self {
        Self { file, size }
    }

    /// `len` bytes at `offset`; the range must be inside the file.
    fn read_at(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, Edit> {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(Edit::Malformed(format!(
                "a segment at byte {offset} runs past the end of the file"
            )));
        }
        if len > MAX_EDIT {
            return Err(Edit::Malformed(format!(
                "a metadata segment at byte {offset} is over {MAX_EDIT} bytes"
            )));
        }
        self.file.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0; len as usize];
        self.file.read_exact(&mut buf)?;
        Ok(buf)
    }
}

/// Builds a plan from kept ranges and replacements, in file order.
struct Builder {
    pieces: Vec<Piece>,
    /// The file offset up to which pieces have been laid down.
    done: u64,
    report: Report,
}

impl Builder {
    fn new() -> Self {
        Self {
            pieces: Vec::new(),
            done: 0,
            report: Report::default(),
        }
    }

    /// Copies the file up to `offset`.
    fn keep_to(&mut self, offset: u64) {
        if offset > self.done {
            self.pieces.push(Piece::Copy {
                offset: self.done,
                len: offset - self.done,
            });
            self.done = offset;
        }
    }

    /// Skips the file's `range` (copying what came before it).
    fn drop_range(&mut self, start: u64, end: u64) {
        self.keep_to(start);
        self.done = self.done.max(end);
    }

    /// Puts `bytes` where the file's `start..end` was.
    fn replace(&mut self, start: u64, end: u64, bytes: Vec<u8>) {
        self.keep_to(start);
        self.pieces.push(Piece::Bytes(bytes));
        self.done = self.done.max(end);
    }

    fn finish(mut self, size: u64) -> Plan {
        if self.report.removed.is_empty() {
            // Nothing was removed: send the file itself, whatever was rewritten.
            let mut plan = Plan::unchanged(size);
            plan.report = self.report;
            return plan;
        }
        self.keep_to(size);
        let mut plan = Plan::from_pieces(self.pieces);
        plan.report = self.report;
        plan
    }
}

/// Whether an XMP packet (or text tag) carries what `policy` removes: XMP has no fixed place
/// for location or serials (exif:, aux:, photoshop:, Iptc4xmpCore: all hold some), so a packet
/// that mentions them goes whole. A packet without them (edit history, ratings, copyright)
/// stays unless the policy removes everything.
fn xmp_removed(xmp: &[u8], policy: MetadataPolicy) -> bool {
    const LOCATION: &[&str] = &[
        "GPS",
        "LocationCreated",
        "LocationShown",
        "Iptc4xmpCore:Location",
    ];
    const PRIVATE: &[&str] = &["SerialNumber", "OwnerName", "ImageUniqueID", "CameraOwner"];
    if policy.all() {
        return true;
    }
    let text = String::from_utf8_lossy(xmp);
    let mentions = |words: &[&str]| words.iter().any(|w| text.contains(w));
    (policy.location() && mentions(LOCATION)) || (policy.private() && mentions(PRIVATE))
}

#[cfg(test)]
mod tests;
