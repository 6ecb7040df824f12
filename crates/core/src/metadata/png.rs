//! PNG: chunks are walked by their headers (image data is never read). `eXIf` is edited in
//! place (and its CRC recomputed); text chunks (`tEXt`, `zTXt`, `iTXt`, XMP included) and
//! `tIME` go as the policy says. Colour chunks (`iCCP`, `sRGB`, `gAMA`, `cHRM`) always stay.

use super::{tiff, xmp_removed, Builder, Edit, MetadataPolicy, Plan, Removed, Source, MAX_EDIT};

/// Text keywords that carry location or whole Exif blocks (ImageMagick's hex "raw profiles").
fn keyword_has_location(keyword: &[u8]) -> bool {
    let k = String::from_utf8_lossy(keyword).to_ascii_lowercase();
    k.contains("gps") || k.contains("location") || k.starts_with("raw profile type")
}

fn keyword_is_private(keyword: &[u8]) -> bool {
    let k = String::from_utf8_lossy(keyword).to_ascii_lowercase();
    k.contains("serial") || k.contains("owner")
}

pub(super) fn plan(src: &mut Source<'_>, policy: MetadataPolicy) -> Result<Plan, Edit> {
    let size = src.size;
    let mut out = Builder::new();
    let mut at = 8u64;
    let mut orientation_kept = false;
    while at < size {
        let head = src.read_at(at, 8)?;
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let start = at;
        let end = at + 12 + len;
        if end > size {
            return Err(Edit::Malformed(format!(
                "a PNG chunk at byte {at} runs past the end of the file"
            )));
        }
        match &kind {
            b"IEND" => break,
            b"eXIf" if policy.all() || len > MAX_EDIT => {
                let exif = if len <= MAX_EDIT {
                    src.read_at(at + 8, len)?
                } else {
                    Vec::new()
                };
                match tiff::orientation(&exif).filter(|_| !orientation_kept && policy.all()) {
                    Some(value) => {
                        orientation_kept = true;
                        out.replace(start, end, chunk(b"eXIf", &tiff::orientation_only(value)));
                    }
                    None => out.drop_range(start, end),
                }
                out.report.add(if policy.all() {
                    Removed::Exif
                } else {
                    Removed::Location
                });
            }
            b"eXIf" => {
                let mut exif = src.read_at(at + 8, len)?;
                let removed = tiff::strip(&mut exif, policy)
                    .map_err(|tiff::Malformed(why)| Edit::Malformed(why.into()))?;
                if !removed.is_empty() {
                    removed.into_iter().for_each(|r| out.report.add(r));
                    out.replace(start, end, chunk(b"eXIf", &exif));
                }
            }
            b"tEXt" | b"zTXt" | b"iTXt" => {
                // The keyword is at most 79 bytes and ends with a NUL.
                let peek = src.read_at(at + 8, len.min(80))?;
                let keyword = peek.split(|b| *b == 0).next().unwrap_or_default();
                let is_xmp = &kind == b"iTXt" && keyword == b"XML:com.adobe.xmp";
                let remove = if policy.all() {
                    true
                } else if is_xmp {
                    len > MAX_EDIT || xmp_removed(&src.read_at(at + 8, len)?, policy)
                } else {
                    keyword_has_location(keyword)
                        || (policy.private() && keyword_is_private(keyword))
                };
                if remove {
                    out.drop_range(start, end);
                    out.report.add(if is_xmp {
                        Removed::Xmp
                    } else if policy.all() {
                        Removed::Text
                    } else if keyword_has_location(keyword) {
                        Removed::Location
                    } else {
                        Removed::SerialNumber
                    });
                }
            }
            b"tIME" if policy.all() => {
                out.drop_range(start, end);
                out.report.add(Removed::Timestamp);
            }
            _ => {}
        }
        at = end;
    }
    Ok(out.finish(size))
}

/// A chunk of `kind` holding `data`, with its CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

#[cfg(test)]
pub(super) fn tests_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    chunk(kind, data)
}
