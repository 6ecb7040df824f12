//! MP4 / MOV: location is a `©xyz` box under `moov/udta` (cameras, Android) or an item of the
//! QuickTime metadata (`moov/meta` keys `com.apple.quicktime.location.*`, iPhones). Such a box
//! is retyped to `free` and its body zeroed: no box changes size, so no sample offset (`stco`,
//! `co64`) moves and the media data is untouched. `strip-all` does the same to the whole of
//! `udta` and `meta`. Only box headers are read, never the media.

use super::{Builder, Edit, MetadataPolicy, Plan, Removed, Source, MAX_EDIT};

const LOCATION_KEY: &[u8] = b"com.apple.quicktime.location";
/// Nesting levels followed (moov/udta/meta/ilst is four).
const MAX_DEPTH: usize = 4;

struct Box {
    start: u64,
    /// Where the body starts (after the 8- or 16-byte header).
    body: u64,
    end: u64,
    kind: [u8; 4],
}

fn boxes(src: &mut Source<'_>, from: u64, to: u64) -> Result<Vec<Box>, Edit> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let head = src.read_at(at, 8)?;
        let small = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = [head[4], head[5], head[6], head[7]];
        let (body, len) = match small {
            0 => (at + 8, to - at),
            1 => {
                let large = src.read_at(at + 8, 8)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&large);
                (at + 16, u64::from_be_bytes(b))
            }
            n => (at + 8, n),
        };
        let end = at.checked_add(len).filter(|end| *end <= to && *end >= body);
        let Some(end) = end else {
            return Err(Edit::Malformed(format!(
                "a box at byte {at} runs past its container"
            )));
        };
        out.push(Box {
            start: at,
            body,
            end,
            kind,
        });
        at = end;
    }
    Ok(out)
}

pub(super) fn plan(src: &mut Source<'_>, policy: MetadataPolicy) -> Result<Plan, Edit> {
    let size = src.size;
    let mut found: Vec<(u64, u64, Removed)> = Vec::new();
    for top in boxes(src, 0, size)? {
        if &top.kind == b"moov" {
            walk(src, &top, policy, 1, &mut found)?;
        }
    }
    found.sort_by_key(|(start, ..)| *start);
    let mut out = Builder::new();
    for (start, end, what) in found {
        if start < out.done {
            continue; // inside a box already freed
        }
        // A free box of the same size: the header says `free`, the body is zeros.
        let mut header = Vec::with_capacity(16);
        let len = end - start;
        if len <= u64::from(u32::MAX) {
            header.extend_from_slice(&(len as u32).to_be_bytes());
            header.extend_from_slice(b"free");
        } else {
            header.extend_from_slice(&1u32.to_be_bytes());
            header.extend_from_slice(b"free");
            header.extend_from_slice(&len.to_be_bytes());
        }
        let zeros = len - header.len() as u64;
        out.keep_to(start);
        out.pieces.push(super::Piece::Bytes(header));
        out.pieces.push(super::Piece::Zeros(zeros));
        out.done = end;
        out.report.add(what);
    }
    Ok(out.finish(size))
}

fn walk(
    src: &mut Source<'_>,
    parent: &Box,
    policy: MetadataPolicy,
    depth: usize,
    found: &mut Vec<(u64, u64, Removed)>,
) -> Result<(), Edit> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let children = boxes(src, parent.body, parent.end)?;
    for child in &children {
        match &child.kind {
            b"udta" if policy.all() => found.push((child.start, child.end, Removed::Text)),
            b"meta" if policy.all() => found.push((child.start, child.end, Removed::Text)),
            b"udta" => walk(src, child, policy, depth + 1, found)?,
            b"meta" => meta(src, child, found)?,
            [0xA9, b'x', b'y', b'z'] => found.push((child.start, child.end, Removed::Location)),
            _ => {}
        }
    }
    Ok(())
}

/// A `meta` box: QuickTime's (keys + ilst, items named by key index) or iTunes-style (ilst
/// items named by four characters, `©xyz` among them).
fn meta(
    src: &mut Source<'_>,
    meta: &Box,
    found: &mut Vec<(u64, u64, Removed)>,
) -> Result<(), Edit> {
    // ISO `meta` is a full box (4 bytes of version and flags first); QuickTime's is not.
    let peek = src.read_at(meta.body, 8.min(meta.end - meta.body))?;
    let body = if peek.len() == 8 && &peek[4..8] == b"hdlr" {
        meta.body
    } else {
        meta.body + 4
    };
    let inner = Box {
        start: meta.start,
        body,
        end: meta.end,
        kind: meta.kind,
    };
    let children = boxes(src, inner.body, inner.end)?;
    let mut location_keys = Vec::new();
    for child in children.iter().filter(|c| &c.kind == b"keys") {
        if child.end - child.body > MAX_EDIT {
            continue;
        }
        let keys = src.read_at(child.body, child.end - child.body)?;
        // version/flags, count, then (size, namespace, name) entries.
        let mut at = 8usize;
        let mut index = 1u32;
        while at + 8 <= keys.len() {
            let len = u32::from_be_bytes([keys[at], keys[at + 1], keys[at + 2], keys[at + 3]]);
            let len = len as usize;
            if len < 8 || at + len > keys.len() {
                break;
            }
            let name = &keys[at + 8..at + len];
            if name.starts_with(LOCATION_KEY) {
                location_keys.push(index);
            }
            at += len;
            index += 1;
        }
    }
    for list in children.iter().filter(|c| &c.kind == b"ilst") {
        for item in boxes(src, list.body, list.end)? {
            let index = u32::from_be_bytes(item.kind);
            if item.kind == [0xA9, b'x', b'y', b'z'] || location_keys.contains(&index) {
                found.push((item.start, item.end, Removed::Location));
            }
        }
    }
    Ok(())
}
