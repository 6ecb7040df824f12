//! JPEG: the segments before the first scan (SOS). Exif (APP1) is edited in place, XMP (APP1),
//! IPTC (APP13) and comments (COM) are dropped as the policy says; JFIF, colour profiles
//! (APP2) and Adobe's APP14, which decoding depends on, always stay. Everything from the first
//! scan on is copied as it is.

use super::{tiff, xmp_removed, Builder, Edit, MetadataPolicy, Plan, Removed, Source};

const EXIF: &[u8] = b"Exif\0\0";
const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_EXTENSION: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
const IPTC: &[u8] = b"Photoshop 3.0\0";

pub(super) fn plan(src: &mut Source<'_>, policy: MetadataPolicy) -> Result<Plan, Edit> {
    let size = src.size;
    let mut out = Builder::new();
    let mut at = 2u64;
    // `strip-all` keeps the orientation, in the first Exif segment's place.
    let mut orientation_kept = false;
    let mut xmp_dropped = false;
    loop {
        let head = src.read_at(at, 4.min(size.saturating_sub(at)))?;
        if head.len() < 2 || head[0] != 0xFF {
            return Err(Edit::Malformed(format!(
                "no JPEG marker at byte {at} before the image data"
            )));
        }
        let marker = head[1];
        match marker {
            // Fill bytes before a marker.
            0xFF => {
                at += 1;
                continue;
            }
            // The image data (or its end) starts: nothing after it is metadata.
            0xDA | 0xD9 => break,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                at += 2;
                continue;
            }
            _ => {}
        }
        if head.len() < 4 {
            return Err(Edit::Malformed("the file ends inside a JPEG marker".into()));
        }
        let len = u64::from(u16::from_be_bytes([head[2], head[3]]));
        if len < 2 {
            return Err(Edit::Malformed(format!(
                "a JPEG segment at byte {at} has length {len}"
            )));
        }
        let start = at;
        let end = at + 2 + len;
        if end > size {
            return Err(Edit::Malformed(format!(
                "a JPEG segment at byte {at} runs past the end of the file"
            )));
        }
        let body = at + 4;
        let peek = |src: &mut Source<'_>, n: u64| src.read_at(body, n.min(len - 2));
        match marker {
            0xE1 => {
                let sig = peek(src, 35)?;
                if sig.starts_with(EXIF) {
                    let mut segment = src.read_at(start, end - start)?;
                    let tiff_block = &mut segment[4 + EXIF.len()..];
                    if policy.all() {
                        match tiff::orientation(tiff_block).filter(|_| !orientation_kept) {
                            Some(value) => {
                                orientation_kept = true;
                                out.replace(start, end, orientation_segment(value));
                            }
                            None => out.drop_range(start, end),
                        }
                        out.report.add(Removed::Exif);
                    } else {
                        let removed = tiff::strip(tiff_block, policy)
                            .map_err(|tiff::Malformed(why)| Edit::Malformed(why.into()))?;
                        if !removed.is_empty() {
                            removed.into_iter().for_each(|r| out.report.add(r));
                            out.replace(start, end, segment);
                        }
                    }
                } else if sig.starts_with(XMP) {
                    let packet = src.read_at(body, len - 2)?;
                    if xmp_removed(&packet, policy) {
                        xmp_dropped = true;
                        out.drop_range(start, end);
                        out.report.add(Removed::Xmp);
                    }
                } else if sig.starts_with(XMP_EXTENSION) && (xmp_dropped || policy.all()) {
                    // The rest of a packet too big for one segment goes with it.
                    out.drop_range(start, end);
                }
            }
            0xED if policy.all() && peek(src, 14)?.starts_with(IPTC) => {
                out.drop_range(start, end);
                out.report.add(Removed::Iptc);
            }
            0xFE if policy.all() => {
                out.drop_range(start, end);
                out.report.add(Removed::Comment);
            }
            _ => {}
        }
        at = end;
    }
    Ok(out.finish(size))
}

/// An APP1 segment holding only the orientation.
fn orientation_segment(value: u16) -> Vec<u8> {
    let block = tiff::orientation_only(value);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&((2 + EXIF.len() + block.len()) as u16).to_be_bytes());
    segment.extend_from_slice(EXIF);
    segment.extend_from_slice(&block);
    segment
}
