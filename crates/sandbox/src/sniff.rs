//! What a file is, from its first bytes (magic numbers), as ImageKit and Cloudinary decide it:
//! both read the content, so a PNG sent as `file` with no extension (a stream, a buffer, a
//! temp file of an upload middleware) is still an image. The file name is the caller's
//! fallback when the bytes say nothing (text, archives, formats not listed here).
//!
//! Only the first [`SNIFF_LEN`] bytes are looked at: `form` keeps them while it streams the
//! file to disk, so nothing is buffered beyond them.

/// How many leading bytes [`sniff`] needs.
pub(crate) const SNIFF_LEN: usize = 4096;

/// The broad class a provider stores a file as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    /// Video, and audio, which both providers keep with video.
    Video,
    /// A PDF: Cloudinary stores it as an image, ImageKit as a non-image file.
    Pdf,
}

/// A recognised format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sniffed {
    pub kind: Kind,
    /// The extension the providers report, lowercase (`jpg`, not `jpeg`).
    pub format: &'static str,
    pub mime: &'static str,
}

const fn found(kind: Kind, format: &'static str, mime: &'static str) -> Option<Sniffed> {
    Some(Sniffed { kind, format, mime })
}

/// The format of a file that starts with `head`, if it is one the providers recognise.
pub(crate) fn sniff(head: &[u8]) -> Option<Sniffed> {
    use Kind::{Image, Pdf, Video};
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return found(Image, "png", "image/png");
    }
    if at(0, b"\xff\xd8\xff") {
        return found(Image, "jpg", "image/jpeg");
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return found(Image, "gif", "image/gif");
    }
    if at(0, b"RIFF") {
        if at(8, b"WEBP") {
            return found(Image, "webp", "image/webp");
        }
        if at(8, b"AVI ") {
            return found(Video, "avi", "video/x-msvideo");
        }
        if at(8, b"WAVE") {
            return found(Video, "wav", "audio/wav");
        }
    }
    if at(0, b"II*\0") || at(0, b"MM\0*") {
        return found(Image, "tiff", "image/tiff");
    }
    if at(0, b"BM") && is_bmp(head) {
        return found(Image, "bmp", "image/bmp");
    }
    if at(0, b"8BPS") {
        return found(Image, "psd", "image/vnd.adobe.photoshop");
    }
    if at(0, b"%PDF-") {
        return found(Pdf, "pdf", "application/pdf");
    }
    if at(4, b"ftyp") {
        return iso_media(head);
    }
    if at(0, b"\x1a\x45\xdf\xa3") {
        // EBML: Matroska, or WebM when the document type says so.
        let webm = head.windows(4).any(|w| w == b"webm");
        return if webm {
            found(Video, "webm", "video/webm")
        } else {
            found(Video, "mkv", "video/x-matroska")
        };
    }
    if at(0, b"OggS") {
        return found(Video, "ogg", "audio/ogg");
    }
    if at(0, b"FLV\x01") {
        return found(Video, "flv", "video/x-flv");
    }
    if at(0, b"ID3")
        || (head.len() >= 2 && head[0] == 0xff && matches!(head[1], 0xfb | 0xf3 | 0xf2))
    {
        return found(Video, "mp3", "audio/mpeg");
    }
    if is_svg(head) {
        return found(Image, "svg", "image/svg+xml");
    }
    None
}

/// `BM` alone is two letters a text file may start with: a BMP also has a known DIB header size.
fn is_bmp(head: &[u8]) -> bool {
    head.get(14..18)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .is_some_and(|size| matches!(size, 12 | 40 | 52 | 56 | 64 | 108 | 124))
}

/// ISO base media files (`ftyp` box): HEIC/AVIF images, MP4/MOV/3GP video, M4A audio, told
/// apart by the major brand and, for the generic HEIF brands, the compatible ones.
fn iso_media(head: &[u8]) -> Option<Sniffed> {
    use Kind::{Image, Video};
    let major = head.get(8..12)?;
    let box_len = head
        .get(0..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
    let compatible: Vec<&[u8]> = head
        .get(16..box_len.min(head.len()))
        .unwrap_or_default()
        .chunks_exact(4)
        .collect();
    let has = |brand: &[u8]| major == brand || compatible.contains(&brand);
    if has(b"avif") || has(b"avis") {
        return found(Image, "avif", "image/avif");
    }
    if [
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
    ]
    .iter()
    .any(|brand| major == *brand)
    {
        return found(Image, "heic", "image/heic");
    }
    match major {
        b"qt  " => found(Video, "mov", "video/quicktime"),
        b"M4A " | b"M4B " => found(Video, "m4a", "audio/mp4"),
        b"3gp4" | b"3gp5" | b"3gp6" | b"3g2a" => found(Video, "3gp", "video/3gpp"),
        _ => found(Video, "mp4", "video/mp4"),
    }
}

/// An SVG document: markup (after an optional BOM, whitespace, XML declaration, comments or
/// doctype) whose first bytes include an `<svg` element.
fn is_svg(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_none_or(|i| text[i] != b'<') {
        return false;
    }
    text.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(head: &[u8]) -> Option<&'static str> {
        sniff(head).map(|s| s.format)
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(format(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("png"));
        assert_eq!(format(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some("jpg"));
        assert_eq!(format(b"GIF89a\x01\0"), Some("gif"));
        assert_eq!(format(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(format(b"RIFF\0\0\0\0AVI LIST"), Some("avi"));
        assert_eq!(format(b"II*\0\x08\0\0\0"), Some("tiff"));
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        assert_eq!(format(&bmp), Some("bmp"));
        assert_eq!(format(b"BM is how this note starts"), None);
        assert_eq!(sniff(b"%PDF-1.7\n").map(|s| s.kind), Some(Kind::Pdf));
        assert_eq!(
            format(b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm"),
            Some("webm")
        );
        assert_eq!(
            format(b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska"),
            Some("mkv")
        );
        assert_eq!(format(b"ID3\x04\0"), Some("mp3"));
        assert_eq!(
            format(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Some("svg")
        );
        assert_eq!(format(b"plain text, <svg> mentioned"), None);
        assert_eq!(format(b""), None);
        assert_eq!(format(b"\x89PN"), None);
    }

    #[test]
    fn iso_media_brands() {
        let ftyp = |major: &[u8; 4], compatible: &[&[u8; 4]]| {
            let len = 16 + 4 * compatible.len();
            let mut b = (len as u32).to_be_bytes().to_vec();
            b.extend_from_slice(b"ftyp");
            b.extend_from_slice(major);
            b.extend_from_slice(&[0; 4]);
            for brand in compatible {
                b.extend_from_slice(*brand);
            }
            b
        };
        assert_eq!(format(&ftyp(b"heic", &[b"mif1"])), Some("heic"));
        assert_eq!(format(&ftyp(b"mif1", &[b"avif", b"miaf"])), Some("avif"));
        assert_eq!(format(&ftyp(b"avif", &[])), Some("avif"));
        assert_eq!(format(&ftyp(b"isom", &[b"iso2", b"mp41"])), Some("mp4"));
        assert_eq!(format(&ftyp(b"qt  ", &[])), Some("mov"));
        assert_eq!(
            sniff(&ftyp(b"mp42", &[])).map(|s| s.kind),
            Some(Kind::Video)
        );
        assert_eq!(
            sniff(&ftyp(b"heic", &[])).map(|s| s.kind),
            Some(Kind::Image)
        );
    }
}
