//! WebP: metadata lives only in the extended format (a `VP8X` chunk first), in `EXIF` and
//! `XMP ` chunks. `EXIF` is edited in place; a dropped chunk also clears its flag in `VP8X`
//! and shrinks the RIFF size. The bitstream chunks (`VP8 `, `VP8L`, `ALPH`, `ANIM`/`ANMF`) and
//! `ICCP` are copied as they are.

use super::{tiff, xmp_removed, Builder, Edit, MetadataPolicy, Piece, Plan, Removed, Source};

const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;

pub(super) fn plan(src: &mut Source<'_>, policy: MetadataPolicy) -> Result<Plan, Edit> {
    let size = src.size;
    let riff = src.read_at(0, 12)?;
    let declared = u64::from(u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]])) + 8;
    // Bytes after the RIFF (rare, but seen) are copied as they are.
    let end_of_riff = declared.min(size);
    let mut out = Builder::new();
    let mut at = 12u64;
    let mut vp8x: Option<(u64, Vec<u8>)> = None;
    let mut dropped = 0u64;
    let mut flags_cleared = 0u8;
    let mut orientation_kept = false;
    while at + 8 <= end_of_riff {
        let head = src.read_at(at, 8)?;
        let kind: [u8; 4] = [head[0], head[1], head[2], head[3]];
        let len = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        let start = at;
        // Chunks are padded to an even length.
        let end = at + 8 + len + (len & 1);
        if end > end_of_riff {
            return Err(Edit::Malformed(format!(
                "a WebP chunk at byte {at} runs past the end of the file"
            )));
        }
        match &kind {
            b"VP8X" if at == 12 && len >= 10 => {
                vp8x = Some((start, src.read_at(start, end - start)?));
            }
            b"EXIF" => {
                let mut exif = src.read_at(at + 8, len)?;
                // Some writers keep JPEG's "Exif\0\0" in front of the TIFF block.
                let skip = if exif.starts_with(b"Exif\0\0") { 6 } else { 0 };
                if policy.all() {
                    match tiff::orientation(&exif[skip..]).filter(|_| !orientation_kept) {
                        Some(value) => {
                            orientation_kept = true;
                            let block = tiff::orientation_only(value);
                            dropped += (end - start) - (8 + block.len() as u64);
                            out.replace(start, end, webp_chunk(b"EXIF", &block));
                        }
                        None => {
                            dropped += end - start;
                            flags_cleared |= FLAG_EXIF;
                            out.drop_range(start, end);
                        }
                    }
                    out.report.add(Removed::Exif);
                } else {
                    let removed = tiff::strip(&mut exif[skip..], policy)
                        .map_err(|tiff::Malformed(why)| Edit::Malformed(why.into()))?;
                    if !removed.is_empty() {
                        removed.into_iter().for_each(|r| out.report.add(r));
                        out.replace(start, end, webp_chunk(b"EXIF", &exif));
                    }
                }
            }
            b"XMP " if xmp_removed(&src.read_at(at + 8, len)?, policy) => {
                dropped += end - start;
                flags_cleared |= FLAG_XMP;
                out.drop_range(start, end);
                out.report.add(Removed::Xmp);
            }
            _ => {}
        }
        at = end;
    }
    let mut plan = out.finish(size);
    if plan.is_unchanged() {
        return Ok(plan);
    }
    let Some((vp8x_at, mut vp8x)) = vp8x else {
        return Err(Edit::Malformed(
            "a WebP file with metadata has no VP8X chunk".into(),
        ));
    };
    // The header and VP8X come first in the plan, unedited: replace them.
    let riff_size = (declared - 8 - dropped) as u32;
    let mut header = b"RIFF".to_vec();
    header.extend_from_slice(&riff_size.to_le_bytes());
    header.extend_from_slice(b"WEBP");
    vp8x[8] &= !flags_cleared;
    header.extend_from_slice(&vp8x);
    let skip = vp8x_at + vp8x.len() as u64;
    let mut pieces = vec![Piece::Bytes(header)];
    let mut cut = skip;
    for piece in plan.pieces.drain(..) {
        match piece {
            Piece::Copy { offset, len } if offset < cut => {
                let end = offset + len;
                if end > cut {
                    pieces.push(Piece::Copy {
                        offset: cut,
                        len: end - cut,
                    });
                }
                cut = 0;
            }
            other => pieces.push(other),
        }
    }
    let report = std::mem::take(&mut plan.report);
    let mut plan = Plan::from_pieces(pieces);
    plan.report = report;
    Ok(plan)
}

fn webp_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 9);
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}
