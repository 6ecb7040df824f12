//! Exif blocks (a TIFF structure: a header, then IFDs of 12-byte entries) edited in place.
//!
//! Removing a tag never moves anything: the entry is taken out of its IFD (the entries after it
//! shift up and the freed slot at the end is zeroed) and its out-of-line value is zeroed. Every
//! offset in the block, maker notes and the thumbnail included, stays valid, so the block keeps
//! its length and the segment around it needs no other change.

use super::{MetadataPolicy, Removed};

const GPS_IFD: u16 = 0x8825;
const EXIF_IFD: u16 = 0x8769;
const ORIENTATION: u16 = 0x0112;
/// Exif IFD tags that identify the camera or its owner.
const PRIVATE_EXIF: &[(u16, Removed)] = &[
    (0xA430, Removed::OwnerName),    // CameraOwnerName
    (0xA431, Removed::SerialNumber), // BodySerialNumber
    (0xA435, Removed::SerialNumber), // LensSerialNumber
    (0x927C, Removed::MakerNotes),   // MakerNote: holds serials in most makers' formats
    (0xA420, Removed::UniqueId),     // ImageUniqueID
];
/// IFD0 tags that identify the camera (DNG's CameraSerialNumber).
const PRIVATE_IFD0: &[(u16, Removed)] = &[(0xC62F, Removed::SerialNumber)];

#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

struct Tiff<'a> {
    buf: &'a mut [u8],
    little: bool,
}

impl Tiff<'_> {
    fn u16_at(&self, at: usize) -> Result<u16, Malformed> {
        let b = self
            .buf
            .get(at..at + 2)
            .ok_or(Malformed("an Exif offset points outside the block"))?;
        Ok(if self.little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    }

    fn u32_at(&self, at: usize) -> Result<u32, Malformed> {
        let b = self
            .buf
            .get(at..at + 4)
            .ok_or(Malformed("an Exif offset points outside the block"))?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn put_u16(&mut self, at: usize, v: u16) {
        let bytes = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.buf[at..at + 2].copy_from_slice(&bytes);
    }

    /// The IFD at `at`: its entry count, checked to fit.
    fn ifd(&self, at: usize) -> Result<usize, Malformed> {
        let count = self.u16_at(at)? as usize;
        if at + 2 + count * 12 + 4 > self.buf.len() {
            return Err(Malformed(
                "an Exif directory runs past the end of the block",
            ));
        }
        Ok(count)
    }

    fn entry(&self, ifd: usize, index: usize) -> Result<Entry, Malformed> {
        let at = ifd + 2 + index * 12;
        Ok(Entry {
            tag: self.u16_at(at)?,
            kind: self.u16_at(at + 2)?,
            count: self.u32_at(at + 4)?,
            value: self.u32_at(at + 8)?,
        })
    }

    fn find(&self, ifd: usize, tag: u16) -> Result<Option<(usize, Entry)>, Malformed> {
        for index in 0..self.ifd(ifd)? {
            let entry = self.entry(ifd, index)?;
            if entry.tag == tag {
                return Ok(Some((index, entry)));
            }
        }
        Ok(None)
    }

    /// Zeroes `entry`'s value when it is stored outside the entry.
    fn zero_value(&mut self, entry: &Entry) {
        let len = entry.value_len();
        if len > 4 {
            let start = entry.value as usize;
            let end = start.saturating_add(len as usize).min(self.buf.len());
            if start < end {
                self.buf[start..end].fill(0);
            }
        }
    }

    /// Takes entry `index` out of the IFD at `ifd`, zeroing its value.
    fn remove(&mut self, ifd: usize, index: usize) -> Result<(), Malformed> {
        let count = self.ifd(ifd)?;
        if index >= count {
            // Only when a zeroed block overlapped this directory (a malformed file).
            return Err(Malformed("Exif directories overlap"));
        }
        let entry = self.entry(ifd, index)?;
        self.zero_value(&entry);
        let at = ifd + 2 + index * 12;
        // The entries after it and the next-IFD offset move up one slot.
        let end = ifd + 2 + count * 12 + 4;
        self.buf.copy_within(at + 12..end, at);
        self.buf[end - 12..end].fill(0);
        self.put_u16(ifd, (count - 1) as u16);
        Ok(())
    }

    /// Zeroes the IFD at `at` and every value it points to (the GPS block).
    fn zero_ifd(&mut self, at: usize) -> Result<(), Malformed> {
        let count = self.ifd(at)?;
        for index in 0..count {
            let entry = self.entry(at, index)?;
            self.zero_value(&entry);
        }
        self.buf[at..at + 2 + count * 12 + 4].fill(0);
        Ok(())
    }
}

struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    value: u32,
}

impl Entry {
    fn value_len(&self) -> u64 {
        let unit: u64 = match self.kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 => 8,
            _ => 0,
        };
        unit * u64::from(self.count)
    }
}

fn open(buf: &mut [u8]) -> Result<(Tiff<'_>, usize), Malformed> {
    let little = match buf.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return Err(Malformed("the Exif block has no TIFF header")),
    };
    let tiff = Tiff { buf, little };
    let ifd0 = tiff.u32_at(4)? as usize;
    tiff.ifd(ifd0)?;
    Ok((tiff, ifd0))
}

/// Removes from the Exif block `buf` what `policy` names (location; with `strip-private` also
/// serials, owner name, maker notes and image id), in place. Returns what was removed.
pub fn strip(buf: &mut [u8], policy: MetadataPolicy) -> Result<Vec<Removed>, Malformed> {
    let mut removed = Vec::new();
    let (mut tiff, ifd0) = open(buf)?;
    if policy.location() {
        if let Some((index, entry)) = tiff.find(ifd0, GPS_IFD)? {
            let gps = entry.value as usize;
            if gps != 0 && gps < tiff.buf.len() {
                tiff.zero_ifd(gps)?;
            }
            tiff.remove(ifd0, index)?;
            removed.push(Removed::Location);
        }
    }
    if policy.private() {
        for &(tag, what) in PRIVATE_IFD0 {
            if let Some((index, _)) = tiff.find(ifd0, tag)? {
                tiff.remove(ifd0, index)?;
                removed.push(what);
            }
        }
        if let Some((_, entry)) = tiff.find(ifd0, EXIF_IFD)? {
            let exif = entry.value as usize;
            for &(tag, what) in PRIVATE_EXIF {
                if let Some((index, _)) = tiff.find(exif, tag)? {
                    tiff.remove(exif, index)?;
                    removed.push(what);
                }
            }
        }
    }
    Ok(removed)
}

/// The orientation tag of IFD0 (1 to 8), when the block has one.
pub fn orientation(buf: &[u8]) -> Option<u16> {
    let mut copy = buf.get(..buf.len().min(64 * 1024))?.to_vec();
    let (tiff, ifd0) = open(&mut copy).ok()?;
    let (index, entry) = tiff.find(ifd0, ORIENTATION).ok()??;
    // A SHORT stored in the entry: the first two bytes of the value field.
    let value = tiff.u16_at(ifd0 + 2 + index * 12 + 8).ok()?;
    (entry.kind == 3 && (1..=8).contains(&value)).then_some(value)
}

/// A minimal Exif block holding only `orientation`: what `strip-all` leaves, so that a
/// rotated photo is still shown the right way up.
pub fn orientation_only(orientation: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(26);
    out.extend_from_slice(b"MM\0*");
    out.extend_from_slice(&8u32.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ORIENTATION.to_be_bytes());
    out.extend_from_slice(&3u16.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&orientation.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An Exif block with GPS, serial, owner, maker note, artist and copyright, in either byte
    /// order: what phones and cameras write, small.
    pub fn sample(little: bool) -> Vec<u8> {
        let mut w = Writer {
            buf: Vec::new(),
            little,
        };
        w.buf
            .extend_from_slice(if little { b"II*\0" } else { b"MM\0*" });
        w.u32(8);
        // IFD0 at 8: Orientation, Artist, Copyright, ExifIFD, GPSIFD (5 entries).
        let ifd0 = 8;
        let ifd0_len = 2 + 5 * 12 + 4;
        let exif_at = ifd0 + ifd0_len;
        let exif_len = 2 + 4 * 12 + 4;
        let gps_at = exif_at + exif_len;
        let gps_len = 2 + 2 * 12 + 4;
        let data = gps_at + gps_len;
        let artist = b"Ada Artist\0";
        let copyright = b"(c) Ada 2026\0";
        let owner = b"Owner Person\0";
        let serial = b"SN123456789\0";
        let maker = b"MAKERNOTE-SERIAL-42";
        let lat = [51u32, 1, 30, 1, 0, 1];
        let mut at = data;
        let mut place = |len: usize| {
            let here = at;
            at += len;
            here as u32
        };
        let artist_at = place(artist.len());
        let copyright_at = place(copyright.len());
        let owner_at = place(owner.len());
        let serial_at = place(serial.len());
        let maker_at = place(maker.len());
        let lat_at = place(24);
        w.u16(5);
        w.entry(0x0112, 3, 1, w.short_value(6));
        w.entry(0x013B, 2, artist.len() as u32, artist_at);
        w.entry(0x8298, 2, copyright.len() as u32, copyright_at);
        w.entry(EXIF_IFD, 4, 1, exif_at as u32);
        w.entry(GPS_IFD, 4, 1, gps_at as u32);
        w.u32(0);
        w.u16(4);
        w.entry(0xA430, 2, owner.len() as u32, owner_at);
        w.entry(0xA431, 2, serial.len() as u32, serial_at);
        w.entry(0x927C, 7, maker.len() as u32, maker_at);
        w.entry(0x9000, 7, 4, u32::from_be_bytes(*b"0232"));
        w.u32(0);
        w.u16(2);
        w.entry(0x0001, 2, 2, w.ascii2(b"N\0"));
        w.entry(0x0002, 5, 3, lat_at);
        w.u32(0);
        assert_eq!(w.buf.len(), data);
        w.buf.extend_from_slice(artist);
        w.buf.extend_from_slice(copyright);
        w.buf.extend_from_slice(owner);
        w.buf.extend_from_slice(serial);
        w.buf.extend_from_slice(maker);
        for v in lat {
            w.u32(v);
        }
        w.buf
    }

    struct Writer {
        buf: Vec<u8>,
        little: bool,
    }

    impl Writer {
        fn u16(&mut self, v: u16) {
            let b = if self.little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            self.buf.extend_from_slice(&b);
        }
        fn u32(&mut self, v: u32) {
            let b = if self.little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            self.buf.extend_from_slice(&b);
        }
        /// The value field of an inline SHORT, read back as the u32 `entry` writes.
        fn short_value(&self, v: u16) -> u32 {
            let mut b = [0u8; 4];
            if self.little {
                b[..2].copy_from_slice(&v.to_le_bytes());
                u32::from_le_bytes(b)
            } else {
                b[..2].copy_from_slice(&v.to_be_bytes());
                u32::from_be_bytes(b)
            }
        }
        fn ascii2(&self, v: &[u8; 2]) -> u32 {
            let b = [v[0], v[1], 0, 0];
            if self.little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        }
        fn entry(&mut self, tag: u16, kind: u16, count: u32, value: u32) {
            self.u16(tag);
            self.u16(kind);
            self.u32(count);
            self.u32(value);
        }
    }

    fn has(buf: &[u8], needle: &[u8]) -> bool {
        buf.windows(needle.len()).any(|w| w == needle)
    }

    fn tags(buf: &mut [u8]) -> Vec<u16> {
        let (tiff, ifd0) = open(buf).unwrap();
        let mut out = Vec::new();
        for i in 0..tiff.ifd(ifd0).unwrap() {
            out.push(tiff.entry(ifd0, i).unwrap().tag);
        }
        if let Some((_, e)) = tiff.find(ifd0, EXIF_IFD).unwrap() {
            for i in 0..tiff.ifd(e.value as usize).unwrap() {
                out.push(tiff.entry(e.value as usize, i).unwrap().tag);
            }
        }
        out
    }

    #[test]
    fn strip_location_takes_the_gps_block_and_nothing_else() {
        for little in [true, false] {
            let original = sample(little);
            let mut buf = original.clone();
            let removed = strip(&mut buf, MetadataPolicy::StripLocation).unwrap();
            assert_eq!(removed, vec![Removed::Location]);
            assert_eq!(buf.len(), original.len(), "edited in place");
            let tags = tags(&mut buf);
            assert!(!tags.contains(&GPS_IFD));
            for kept in [0x0112, 0x013B, 0x8298, 0xA430, 0xA431, 0x927C, 0x9000] {
                assert!(tags.contains(&kept), "{kept:#x} kept");
            }
            // The latitude's rationals are gone from the bytes, not only unlinked.
            let lat = if little {
                51u32.to_le_bytes()
            } else {
                51u32.to_be_bytes()
            };
            assert!(has(&original, &lat) && !has(&buf, &lat));
            assert!(has(&buf, b"Ada Artist") && has(&buf, b"SN123456789"));
            assert_eq!(orientation(&buf), Some(6));
        }
    }

    #[test]
    fn strip_private_also_takes_serials_owner_and_maker_notes() {
        for little in [true, false] {
            let mut buf = sample(little);
            let removed = strip(&mut buf, MetadataPolicy::StripPrivate).unwrap();
            for what in [
                Removed::Location,
                Removed::OwnerName,
                Removed::SerialNumber,
                Removed::MakerNotes,
            ] {
                assert!(removed.contains(&what), "{what:?}");
            }
            for gone in [&b"SN123456789"[..], b"Owner Person", b"MAKERNOTE"] {
                assert!(!has(&buf, gone));
            }
            let tags = tags(&mut buf);
            assert_eq!(tags, vec![0x0112, 0x013B, 0x8298, EXIF_IFD, 0x9000]);
            assert!(has(&buf, b"Ada Artist") && has(&buf, b"(c) Ada 2026"));
        }
    }

    #[test]
    fn a_block_without_what_the_policy_names_is_left_alone() {
        let mut buf = sample(true);
        strip(&mut buf, MetadataPolicy::StripLocation).unwrap();
        let once = buf.clone();
        assert!(strip(&mut buf, MetadataPolicy::StripLocation)
            .unwrap()
            .is_empty());
        assert_eq!(buf, once);
    }

    #[test]
    fn broken_blocks_are_errors_not_panics() {
        let sample = sample(false);
        for cut in [0, 3, 8, 20, 70, 100] {
            let mut buf = sample[..cut].to_vec();
            let _ = strip(&mut buf, MetadataPolicy::StripPrivate);
        }
        // Offsets pointing anywhere.
        for at in (0..sample.len()).step_by(3) {
            let mut buf = sample.clone();
            buf[at] ^= 0xFF;
            let _ = strip(&mut buf, MetadataPolicy::StripPrivate);
            let _ = orientation(&buf);
        }
        assert_eq!(
            strip(&mut b"nope".to_vec(), MetadataPolicy::StripAll),
            Err(Malformed("the Exif block has no TIFF header"))
        );
    }

    #[test]
    fn the_orientation_only_block_reads_back() {
        assert_eq!(orientation(&orientation_only(8)), Some(8));
        assert_eq!(orientation(&orientation_only(0)), None);
    }
}
