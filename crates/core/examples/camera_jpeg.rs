//! Writes a camera-like JPEG for the metadata benchmark (`bench/metadata.sh`): noise pixels
//! (so the file is as large as a phone's 12 MP photo at high quality) behind an Exif block with
//! GPS, a body serial number and a copyright.
//! Usage: cargo run --release -p dropkey-core --example camera_jpeg -- OUT.jpg [MEGAPIXELS]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .expect("usage: camera_jpeg OUT.jpg [MEGAPIXELS]");
    let megapixels: f64 = args.next().map(|m| m.parse().unwrap()).unwrap_or(12.0);
    let width = ((megapixels * 1e6 * 4.0 / 3.0).sqrt()) as u16;
    let height = (f64::from(width) * 3.0 / 4.0) as u16;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height) * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    let mut encoded = Vec::new();
    jpeg_encoder::Encoder::new(&mut encoded, 100)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&exif());
    let mut file = encoded[..2].to_vec();
    file.extend_from_slice(&[0xFF, 0xE1]);
    file.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    file.extend_from_slice(&app1);
    file.extend_from_slice(&encoded[2..]);
    std::fs::write(&out, &file).unwrap();
    eprintln!("{out}: {width}x{height}, {} bytes", file.len());
}

/// IFD0: Copyright, Exif IFD (BodySerialNumber), GPS IFD (latitude), big-endian.
fn exif() -> Vec<u8> {
    const COPYRIGHT: &[u8] = b"(c) Bench 2026\0";
    const SERIAL: &[u8] = b"SN-BENCH-0001\0";
    let mut t = b"MM\0*".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        for part in [
            &tag.to_be_bytes()[..],
            &kind.to_be_bytes(),
            &count.to_be_bytes(),
            &value.to_be_bytes(),
        ] {
            t.extend_from_slice(part);
        }
    };
    let exif_ifd = 8 + 2 + 3 * 12 + 4;
    let gps_ifd = exif_ifd + 2 + 12 + 4;
    let data = gps_ifd + 2 + 2 * 12 + 4;
    let serial_at = data + COPYRIGHT.len() as u32;
    let lat_at = serial_at + SERIAL.len() as u32;
    t.extend_from_slice(&3u16.to_be_bytes());
    entry(&mut t, 0x8298, 2, COPYRIGHT.len() as u32, data);
    entry(&mut t, 0x8769, 4, 1, exif_ifd);
    entry(&mut t, 0x8825, 4, 1, gps_ifd);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&1u16.to_be_bytes());
    entry(&mut t, 0xA431, 2, SERIAL.len() as u32, serial_at);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&2u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_be_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, lat_at);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(COPYRIGHT);
    t.extend_from_slice(SERIAL);
    for v in [51u32, 1, 30, 1, 0, 1] {
        t.extend_from_slice(&v.to_be_bytes());
    }
    t
}
