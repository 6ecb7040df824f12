//! A test image set: JPEG, PNG and WebP files with GPS, serial numbers, owner, maker notes,
//! artist and copyright, as phones and cameras write them. Each policy's output is checked for
//! what is gone and what is kept, and decoded to compare its pixels with the original's.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::sync::Arc;

use super::tiff::tests::sample as exif_sample;
use super::*;

const W: u16 = 61;
const H: u16 = 37;
const XMP_GPS: &[u8] = b"<x:xmpmeta><rdf:Description exif:GPSLatitude=\"51,30.0N\" dc:rights=\"(c) Ada\"/></x:xmpmeta>";
const XMP_PLAIN: &[u8] =
    b"<x:xmpmeta><rdf:Description xmp:Rating=\"5\" dc:rights=\"(c) Ada\"/></x:xmpmeta>";

fn pixels() -> Vec<u8> {
    (0..u32::from(W) * u32::from(H))
        .flat_map(|i| {
            let (x, y) = (i % u32::from(W), i / u32::from(W));
            [(x * 4) as u8, (y * 6) as u8, ((x + y) * 3) as u8]
        })
        .collect()
}

fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A baseline JPEG with Exif (GPS, serials, owner, maker note, artist, copyright, orientation),
/// an XMP packet naming the location, IPTC and a comment, as a camera app writes them.
fn jpeg(little: bool) -> Vec<u8> {
    let mut encoded = Vec::new();
    jpeg_encoder::Encoder::new(&mut encoded, 90)
        .encode(&pixels(), W, H, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(&exif_sample(little));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(XMP_GPS);
    let mut iptc = b"Photoshop 3.0\0".to_vec();
    iptc.extend_from_slice(b"8BIM\x04\x04\0\0\0\0\0\x0a\x1c\x02\x50\0\x06Ada IP");
    let mut out = encoded[..2].to_vec();
    out.extend(segment(0xE1, &exif));
    out.extend(segment(0xE1, &xmp));
    out.extend(segment(0xED, &iptc));
    out.extend(segment(0xFE, b"a private comment"));
    out.extend_from_slice(&encoded[2..]);
    out
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    super::png::tests_chunk(kind, data)
}

/// A PNG with eXIf, an XMP iTXt naming the location, an ImageMagick GPS text tag, Author and
/// Copyright text and a tIME chunk.
fn png() -> Vec<u8> {
    let mut encoded = Vec::new();
    {
        let mut enc = ::png::Encoder::new(&mut encoded, u32::from(W), u32::from(H));
        enc.set_color(::png::ColorType::Rgb);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&pixels()).unwrap();
    }
    // After IHDR (8 + 25 bytes).
    let split = 8 + 25;
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend_from_slice(XMP_GPS);
    let mut out = encoded[..split].to_vec();
    out.extend(png_chunk(b"eXIf", &exif_sample(false)));
    out.extend(png_chunk(b"iTXt", &itxt));
    out.extend(png_chunk(b"tEXt", b"exif:GPSLatitude\x0051/1, 30/1"));
    out.extend(png_chunk(b"tEXt", b"Author\0Ada Artist"));
    out.extend(png_chunk(b"tEXt", b"Copyright\0(c) Ada 2026"));
    out.extend(png_chunk(b"tIME", &[7, 234, 12, 4, 10, 0, 0]));
    out.extend_from_slice(&encoded[split..]);
    out
}

/// A lossless WebP in the extended format with EXIF and XMP chunks.
fn webp(xmp: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image_webp::WebPEncoder::new(&mut out);
    enc.set_exif_metadata(exif_sample(true));
    enc.set_xmp_metadata(xmp.to_vec());
    enc.encode(
        &pixels(),
        u32::from(W),
        u32::from(H),
        image_webp::ColorType::Rgb8,
    )
    .unwrap();
    out
}

/// Plans `data` under `policy` and returns the bytes that would be sent.
fn sent(data: &[u8], policy: MetadataPolicy) -> (Vec<u8>, Report) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, data).unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    let plan = plan(&mut file, data.len() as u64, policy).unwrap();
    let report = plan.report.clone();
    let len = plan.len();
    let mut out = Vec::new();
    Arc::new(plan)
        .reader(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len() as u64, len, "the plan's length is what is read");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        data,
        "the original is never modified"
    );
    (out, report)
}

fn has(buf: &[u8], needle: &[u8]) -> bool {
    buf.windows(needle.len()).any(|w| w == needle)
}

fn decode_jpeg(data: &[u8]) -> Vec<u8> {
    zune_jpeg::JpegDecoder::new(zune_core::bytestream::ZCursor::new(data))
        .decode()
        .unwrap()
}

fn decode_png(data: &[u8]) -> Vec<u8> {
    let mut reader = ::png::Decoder::new(std::io::Cursor::new(data))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).unwrap();
    buf
}

fn decode_webp(data: &[u8]) -> Vec<u8> {
    let mut decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(data)).unwrap();
    let mut buf = vec![0; decoder.output_buffer_size().unwrap()];
    decoder.read_image(&mut buf).unwrap();
    buf
}

/// Location, private and descriptive markers in the test files.
const GPS: &[u8] = &[0, 0, 0, 51];
const GPS_LE: &[u8] = &[51, 0, 0, 0, 1, 0, 0, 0, 30];
const SERIAL: &[u8] = b"SN123456789";
const OWNER: &[u8] = b"Owner Person";
const MAKER: &[u8] = b"MAKERNOTE";
const ARTIST: &[u8] = b"Ada Artist";
const COPYRIGHT: &[u8] = b"(c) Ada 2026";

#[test]
fn jpeg_policies_remove_what_they_name_and_keep_the_pixels() {
    for little in [false, true] {
        let original = jpeg(little);
        let pixels = decode_jpeg(&original);
        let gps = if little { GPS_LE } else { GPS };
        assert!(has(&original, gps) && has(&original, b"GPSLatitude"));

        let (out, report) = sent(&original, MetadataPolicy::Keep);
        assert_eq!(out, original);
        assert!(report.is_empty());

        let (out, report) = sent(&original, MetadataPolicy::StripLocation);
        assert_eq!(report.removed, vec![Removed::Location, Removed::Xmp]);
        assert!(!has(&out, gps) && !has(&out, b"GPSLatitude"));
        for kept in [
            SERIAL,
            OWNER,
            MAKER,
            ARTIST,
            COPYRIGHT,
            b"Ada IP",
            b"a private comment",
        ] {
            assert!(has(&out, kept), "{}", String::from_utf8_lossy(kept));
        }
        assert_eq!(decode_jpeg(&out), pixels);

        let (out, report) = sent(&original, MetadataPolicy::StripPrivate);
        for what in [
            Removed::Location,
            Removed::SerialNumber,
            Removed::OwnerName,
            Removed::MakerNotes,
        ] {
            assert!(report.removed.contains(&what));
        }
        for gone in [SERIAL, OWNER, MAKER, b"GPSLatitude"] {
            assert!(!has(&out, gone));
        }
        assert!(has(&out, ARTIST) && has(&out, COPYRIGHT));
        assert_eq!(decode_jpeg(&out), pixels);

        let (out, report) = sent(&original, MetadataPolicy::StripAll);
        assert!(report.removed.contains(&Removed::Exif) && report.removed.contains(&Removed::Iptc));
        for gone in [
            SERIAL,
            OWNER,
            ARTIST,
            COPYRIGHT,
            b"Ada IP",
            b"a private comment",
            b"xmpmeta",
        ] {
            assert!(!has(&out, gone));
        }
        // The orientation (6: rotated) survives, so the photo still shows upright.
        let exif_at = out.windows(6).position(|w| w == b"Exif\0\0").unwrap();
        assert_eq!(tiff::orientation(&out[exif_at + 6..]), Some(6));
        assert_eq!(decode_jpeg(&out), pixels);
        assert!(out.len() < original.len());
    }
}

#[test]
fn png_policies_remove_what_they_name_and_keep_the_pixels() {
    let original = png();
    let pixels = decode_png(&original);
    let (out, report) = sent(&original, MetadataPolicy::StripLocation);
    assert_eq!(report.removed, vec![Removed::Location, Removed::Xmp]);
    assert!(!has(&out, GPS) && !has(&out, b"GPSLatitude"));
    for kept in [SERIAL, OWNER, ARTIST, COPYRIGHT] {
        assert!(has(&out, kept));
    }
    // Every chunk's CRC is right: the strict decoder accepts it.
    assert_eq!(decode_png(&out), pixels);

    let (out, _) = sent(&original, MetadataPolicy::StripPrivate);
    assert!(!has(&out, SERIAL) && !has(&out, OWNER) && has(&out, COPYRIGHT));
    assert_eq!(decode_png(&out), pixels);

    let (out, report) = sent(&original, MetadataPolicy::StripAll);
    assert!(
        report.removed.contains(&Removed::Timestamp) && report.removed.contains(&Removed::Text)
    );
    for gone in [ARTIST, COPYRIGHT, SERIAL, b"tIME", b"tEXt", b"iTXt"] {
        assert!(!has(&out, gone));
    }
    assert_eq!(decode_png(&out), pixels);
}

#[test]
fn webp_policies_remove_what_they_name_and_keep_the_pixels() {
    let original = webp(XMP_GPS);
    let pixels = decode_webp(&original);
    assert!(has(&original, GPS_LE));
    let (out, report) = sent(&original, MetadataPolicy::StripLocation);
    assert_eq!(report.removed, vec![Removed::Location, Removed::Xmp]);
    assert!(!has(&out, GPS_LE) && !has(&out, b"GPSLatitude") && has(&out, SERIAL));
    // The RIFF size and the VP8X flags follow the dropped XMP chunk.
    assert_eq!(
        u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize,
        out.len() - 8
    );
    assert_eq!(out[20] & 0x04, 0, "XMP flag cleared");
    assert_ne!(out[20] & 0x08, 0, "EXIF flag kept");
    assert_eq!(decode_webp(&out), pixels);

    let (out, _) = sent(&webp(XMP_PLAIN), MetadataPolicy::StripLocation);
    assert!(has(&out, b"xmp:Rating"), "XMP without location stays");

    let (out, report) = sent(&original, MetadataPolicy::StripAll);
    assert!(report.removed.contains(&Removed::Exif));
    assert!(!has(&out, SERIAL) && !has(&out, ARTIST) && !has(&out, b"xmpmeta"));
    assert_eq!(
        u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize,
        out.len() - 8
    );
    assert_eq!(decode_webp(&out), pixels);
}

/// An MP4 skeleton: ftyp, moov with udta/©xyz and QuickTime keys naming the location, mdat.
fn mp4() -> Vec<u8> {
    fn bx(kind: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }
    let xyz = bx(b"\xa9xyz", b"\0\x12\x15\xc7+51.5072-000.1276/");
    let udta = bx(b"udta", &xyz);
    let key = |name: &[u8]| {
        let mut k = ((name.len() + 8) as u32).to_be_bytes().to_vec();
        k.extend_from_slice(b"mdta");
        k.extend_from_slice(name);
        k
    };
    let mut keys = vec![0, 0, 0, 0, 0, 0, 0, 2];
    keys.extend(key(b"com.apple.quicktime.make"));
    keys.extend(key(b"com.apple.quicktime.location.ISO6709"));
    let item = |index: u32, value: &[u8]| bx(&index.to_be_bytes(), &bx(b"data", value));
    let mut ilst = item(1, b"\0\0\0\x01\0\0\0\0Apple");
    ilst.extend(item(2, b"\0\0\0\x01\0\0\0\0+48.8584+002.2945/"));
    let mut meta = bx(b"hdlr", &[0; 25]);
    meta.extend(bx(b"keys", &keys));
    meta.extend(bx(b"ilst", &ilst));
    let mut moov = bx(b"mvhd", &[0; 100]);
    moov.extend(udta);
    moov.extend(bx(b"meta", &meta));
    let mut out = bx(b"ftyp", b"qt  \0\0\0\0qt  ");
    out.extend(bx(b"moov", &moov));
    out.extend(bx(b"mdat", &[0xAB; 5000]));
    out
}

#[test]
fn video_location_boxes_become_free_boxes_of_the_same_size() {
    let original = mp4();
    let (out, report) = sent(&original, MetadataPolicy::StripLocation);
    assert_eq!(report.removed, vec![Removed::Location]);
    assert_eq!(out.len(), original.len(), "no box moves");
    assert!(!has(&out, b"+51.5072") && !has(&out, b"+48.8584"));
    assert!(has(&out, b"Apple") && has(&out, b"com.apple.quicktime.location.ISO6709"));
    assert_eq!(out[out.len() - 5000..], original[original.len() - 5000..]);
    assert_eq!(sent(&original, MetadataPolicy::Keep).0, original);
}

#[test]
fn unsupported_formats_are_sent_as_they_are_and_say_so() {
    let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    heic.extend_from_slice(&[0; 100]);
    let (out, report) = sent(&heic, MetadataPolicy::StripLocation);
    assert_eq!(out, heic);
    assert_eq!(
        report.kept.as_deref(),
        Some("location kept: HEIC/HEIF and AVIF are not supported")
    );
    assert_eq!(
        report.line(),
        "location kept: HEIC/HEIF and AVIF are not supported"
    );
    // Neither images nor videos: nothing to say.
    let (out, report) = sent(
        b"%PDF-1.7 a document of some length",
        MetadataPolicy::StripAll,
    );
    assert!(report.is_empty() && out.starts_with(b"%PDF"));
}

#[test]
fn files_without_metadata_are_sent_byte_for_byte() {
    let mut plain = Vec::new();
    jpeg_encoder::Encoder::new(&mut plain, 80)
        .encode(&pixels(), W, H, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    for policy in MetadataPolicy::ALL {
        let (out, report) = sent(&plain, policy);
        assert_eq!(out, plain, "{policy}");
        assert!(report.removed.is_empty());
    }
}

#[test]
fn truncated_and_corrupt_files_never_panic() {
    let files = [jpeg(false), png(), webp(XMP_GPS), mp4()];
    for file in &files {
        for cut in (0..file.len().min(400)).step_by(7) {
            for policy in MetadataPolicy::ALL {
                let _ = sent(&file[..cut], policy);
            }
        }
        for at in (0..file.len().min(600)).step_by(5) {
            let mut bad = file.clone();
            bad[at] ^= 0x5A;
            let _ = sent(&bad, MetadataPolicy::StripPrivate);
        }
    }
}

#[test]
fn the_reader_seeks_anywhere_in_the_output() {
    let original = jpeg(true);
    let (whole, _) = sent(&original, MetadataPolicy::StripAll);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, &original).unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    let plan = Arc::new(plan(&mut file, original.len() as u64, MetadataPolicy::StripAll).unwrap());
    for start in [0, 1, 5, 20, 100, 333, whole.len() - 3] {
        let mut reader = plan.clone().reader(std::fs::File::open(&path).unwrap());
        reader.seek(SeekFrom::Start(start as u64)).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, whole[start..]);
    }
}

#[test]
fn policies_read_back_as_written() {
    for policy in MetadataPolicy::ALL {
        assert_eq!(MetadataPolicy::parse(policy.as_str()), Some(policy));
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(json, format!("\"{policy}\""));
    }
    assert_eq!(MetadataPolicy::default(), MetadataPolicy::StripLocation);
    assert_eq!(MetadataPolicy::parse("strip"), None);
}
