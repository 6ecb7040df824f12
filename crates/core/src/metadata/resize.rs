//! `max_dimension`: an image larger than N pixels on its long side is scaled down and
//! re-encoded before upload (for plans with per-file limits). Off unless configured.
//!
//! Unlike the metadata edit this decodes the image: it holds the decoded pixels (3 or 4 bytes
//! per pixel, 36 MiB for 12 megapixels) while it works, so at most one image is resized at a
//! time, whatever the upload concurrency. The result is written to a file in the data
//! directory and streamed from there like any upload; the original is only read. The metadata
//! the policy keeps (Exif without what it removes, the colour profile) goes into the new file.
//! JPEG (quality as configured) and PNG (lossless) are resized; other formats are sent as they
//! are and the report says so.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{Edit, MetadataPolicy, Report};

/// What a profile or watch asks: scale down to this many pixels on the long side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resize {
    pub max_dimension: u32,
    /// JPEG quality, 1 to 100.
    pub quality: u8,
}

impl Resize {
    pub const DEFAULT_QUALITY: u8 = 85;

    /// `2560:85`, as stored with a job.
    pub fn to_text(self) -> String {
        format!("{}:{}", self.max_dimension, self.quality)
    }

    pub fn from_text(text: &str) -> Option<Self> {
        let (max, quality) = text.split_once(':')?;
        Some(Self {
            max_dimension: max.parse().ok().filter(|m| *m > 0)?,
            quality: quality.parse().ok().filter(|q| (1..=100).contains(q))?,
        })
    }
}

/// An image that was scaled down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resized {
    pub from: (u32, u32),
    pub to: (u32, u32),
}

/// One decoded image at a time (see the module docs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Scales the image in `file` down to `resize` when it is larger, writing the result (with the
/// metadata `policy` keeps) to `out`. `None` when it is not larger, or not an image this
/// resizes; then the caller sends the file as usual.
pub(super) fn resize(
    file: &mut std::fs::File,
    size: u64,
    policy: MetadataPolicy,
    resize: Resize,
    out: &Path,
) -> Result<Option<(u64, Report)>, Edit> {
    let mut head = [0u8; 8];
    file.seek(SeekFrom::Start(0))?;
    let n = super::read_up_to(file, &mut head)?;
    let kind = super::sniff(&head[..n]);
    if !matches!(kind, super::Kind::Jpeg | super::Kind::Png) {
        return Ok(None);
    }
    // The metadata to carry over, after the policy: read from the plan's output.
    let plan = std::sync::Arc::new(super::plan(file, size, policy)?);
    let mut report = plan.report.clone();
    let mut reader = plan.clone().reader(file.try_clone()?);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut data = Vec::with_capacity(size as usize);
    reader.read_to_end(&mut data)?;
    let encoded = match kind {
        super::Kind::Jpeg => jpeg(&data, resize)?,
        _ => png(&data, resize)?,
    };
    drop(data);
    let Some((bytes, resized)) = encoded else {
        return Ok(None);
    };
    if let Some(dir) = out.parent() {
        crate::private_fs::create_dir_all(dir)?;
    }
    let mut out_file = crate::private_fs::create(out)?;
    out_file.write_all(&bytes)?;
    out_file.sync_all()?;
    report.resized = Some(resized);
    Ok(Some((bytes.len() as u64, report)))
}

/// The largest image decoded to be resized: its pixels are held in memory.
const MAX_PIXELS: u64 = 150_000_000;

fn check_pixels(width: u32, height: u32) -> Result<(), Edit> {
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Edit::Malformed(format!(
            "{width}×{height} is over {} megapixels",
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

/// The long side scaled to `max`, keeping the aspect ratio; `None` when it fits already.
fn target(width: u32, height: u32, max: u32) -> Option<(u32, u32)> {
    let long = width.max(height);
    if long <= max || width == 0 || height == 0 {
        return None;
    }
    let scale = f64::from(max) / f64::from(long);
    let w = ((f64::from(width) * scale).round() as u32).clamp(1, max);
    let h = ((f64::from(height) * scale).round() as u32).clamp(1, max);
    Some((w, h))
}

fn jpeg(data: &[u8], resize: Resize) -> Result<Option<(Vec<u8>, Resized)>, Edit> {
    let malformed = |why: &dyn std::fmt::Display| {
        Edit::Malformed(format!("cannot decode the JPEG to resize it: {why}"))
    };
    let options = zune_jpeg::zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(zune_jpeg::zune_core::colorspace::ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_jpeg::zune_core::bytestream::ZCursor::new(data),
        options,
    );
    decoder.decode_headers().map_err(|e| malformed(&e))?;
    let (width, height) = decoder
        .dimensions()
        .map(|(w, h)| (w as u32, h as u32))
        .ok_or_else(|| malformed(&"no dimensions"))?;
    let Some((w, h)) = target(width, height, resize.max_dimension) else {
        return Ok(None);
    };
    check_pixels(width, height)?;
    let pixels = decoder.decode().map_err(|e| malformed(&e))?;
    let small = scale(&pixels, width, height, 3, w, h);
    drop(pixels);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, resize.quality);
    // The kept APPn segments (Exif after the policy, ICC, XMP the policy kept), in order.
    for (marker, body) in jpeg_segments(data) {
        if (0xE1..=0xEF).contains(&marker) {
            encoder
                .add_app_segment(marker - 0xE0, body)
                .map_err(|e| malformed(&e))?;
        }
    }
    let (w16, h16) = (u16::try_from(w), u16::try_from(h));
    let (Ok(w16), Ok(h16)) = (w16, h16) else {
        return Err(malformed(&"the target is over 65,535 pixels"));
    };
    encoder
        .encode(&small, w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| malformed(&e))?;
    Ok(Some((
        out,
        Resized {
            from: (width, height),
            to: (w, h),
        },
    )))
}

/// The (marker, body) of each segment before the first scan.
fn jpeg_segments(data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut at = 2;
    while at + 4 <= data.len() && data[at] == 0xFF {
        let marker = data[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        let Some(body) = data.get(at + 4..at + 2 + len) else {
            break;
        };
        out.push((marker, body));
        at += 2 + len;
    }
    out
}

fn png(data: &[u8], resize: Resize) -> Result<Option<(Vec<u8>, Resized)>, Edit> {
    let malformed = |why: &dyn std::fmt::Display| {
        Edit::Malformed(format!("cannot decode the PNG to resize it: {why}"))
    };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| malformed(&e))?;
    let (width, height) = (reader.info().width, reader.info().height);
    let Some((w, h)) = target(width, height, resize.max_dimension) else {
        return Ok(None);
    };
    check_pixels(width, height)?;
    let animated = reader.info().animation_control.is_some();
    if animated {
        return Ok(None);
    }
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let mut pixels = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| malformed(&"too large"))?
    ];
    reader.next_frame(&mut pixels).map_err(|e| malformed(&e))?;
    let small = scale(&pixels, width, height, channels, w, h);
    drop(pixels);
    // The kept ancillary chunks go with it (colour, Exif after the policy, text the policy kept).
    let kept: Vec<([u8; 4], Vec<u8>)> = png_chunks(data)
        .into_iter()
        .filter(|(kind, _)| {
            matches!(
                *kind,
                b"iCCP"
                    | b"sRGB"
                    | b"gAMA"
                    | b"cHRM"
                    | b"pHYs"
                    | b"eXIf"
                    | b"tEXt"
                    | b"zTXt"
                    | b"iTXt"
            )
        })
        .map(|(kind, body)| (*kind, body.to_vec()))
        .collect();
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| malformed(&e))?;
        for (kind, body) in &kept {
            writer
                .write_chunk(png::chunk::ChunkType(*kind), body)
                .map_err(|e| malformed(&e))?;
        }
        writer.write_image_data(&small).map_err(|e| malformed(&e))?;
        writer.finish().map_err(|e| malformed(&e))?;
    }
    Ok(Some((
        out,
        Resized {
            from: (width, height),
            to: (w, h),
        },
    )))
}

/// The (type, data) of each chunk.
fn png_chunks(data: &[u8]) -> Vec<(&[u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let Some(kind) = data
            .get(at + 4..at + 8)
            .and_then(|k| <&[u8; 4]>::try_from(k).ok())
        else {
            break;
        };
        let Some(body) = data.get(at + 8..at + 8 + len) else {
            break;
        };
        out.push((kind, body));
        at += 12 + len;
    }
    out
}

/// Area-average downscaling (each output pixel the mean of the source pixels it covers), one
/// axis at a time: sharp and alias-free for the large reductions this is for.
fn scale(src: &[u8], sw: u32, sh: u32, channels: usize, dw: u32, dh: u32) -> Vec<u8> {
    let wide = axis(src, sw as usize, sh as usize, channels, dw as usize, true);
    axis(
        &wide,
        dw as usize,
        sh as usize,
        channels,
        dh as usize,
        false,
    )
}

/// Resamples rows (`horizontal`) or columns of a `w`×`h` image to `to` samples.
fn axis(src: &[u8], w: usize, h: usize, c: usize, to: usize, horizontal: bool) -> Vec<u8> {
    let from = if horizontal { w } else { h };
    let (ow, oh) = if horizontal { (to, h) } else { (w, to) };
    let mut out = vec![0u8; ow * oh * c];
    let ratio = from as f64 / to as f64;
    // For each output sample: the source samples it covers and their weights.
    let taps: Vec<Vec<(usize, f32)>> = (0..to)
        .map(|i| {
            let start = i as f64 * ratio;
            let end = (start + ratio).min(from as f64);
            let mut taps = Vec::new();
            let mut s = start.floor() as usize;
            while (s as f64) < end && s < from {
                let lo = start.max(s as f64);
                let hi = end.min(s as f64 + 1.0);
                if hi > lo {
                    taps.push((s, ((hi - lo) / ratio) as f32));
                }
                s += 1;
            }
            taps
        })
        .collect();
    let lines = if horizontal { h } else { w };
    let mut acc = vec![0f32; c];
    for line in 0..lines {
        for (i, taps) in taps.iter().enumerate() {
            acc.iter_mut().for_each(|a| *a = 0.0);
            for &(s, weight) in taps {
                let at = if horizontal {
                    (line * w + s) * c
                } else {
                    (s * w + line) * c
                };
                for (k, a) in acc.iter_mut().enumerate() {
                    *a += f32::from(src[at + k]) * weight;
                }
            }
            let at = if horizontal {
                (line * ow + i) * c
            } else {
                (i * ow + line) * c
            };
            for (k, a) in acc.iter().enumerate() {
                out[at + k] = a.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_side_is_scaled_to_the_limit_keeping_the_aspect_ratio() {
        assert_eq!(target(4000, 3000, 2000), Some((2000, 1500)));
        assert_eq!(target(3000, 4000, 2000), Some((1500, 2000)));
        assert_eq!(target(2000, 1000, 2000), None);
        assert_eq!(target(10_000, 3, 100), Some((100, 1)));
    }

    #[test]
    fn area_averaging_keeps_flat_colour_and_averages_detail() {
        let flat = vec![200u8; 10 * 6 * 3];
        assert!(scale(&flat, 10, 6, 3, 5, 3).iter().all(|v| *v == 200));
        // A 1-pixel checkerboard halves to grey.
        let checker: Vec<u8> = (0..8 * 8)
            .map(|i| if (i % 8 + i / 8) % 2 == 0 { 0 } else { 255 })
            .collect();
        let half = scale(&checker, 8, 8, 1, 4, 4);
        assert!(half.iter().all(|v| (127..=128).contains(v)), "{half:?}");
        // Non-integer ratios cover every source pixel once.
        let ramp: Vec<u8> = (0..9).map(|i| (i * 10) as u8).collect();
        let third = scale(&ramp, 9, 1, 1, 4, 1);
        assert_eq!(third.len(), 4);
        assert!(third.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_png_is_scaled_losslessly_with_its_kept_chunks() {
        let (w, h) = (40u32, 20u32);
        let pixels: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % 40) as u8 * 6, 10, 200, 255])
            .collect();
        let mut data = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut data, w, h);
            enc.set_color(png::ColorType::Rgba);
            let mut writer = enc.write_header().unwrap();
            writer
                .write_chunk(png::chunk::ChunkType(*b"tEXt"), b"Copyright\0(c) Ada")
                .unwrap();
            writer.write_image_data(&pixels).unwrap();
        }
        let limit = Resize {
            max_dimension: 10,
            quality: 85,
        };
        let (out, resized) = png(&data, limit).unwrap().unwrap();
        assert_eq!(
            resized,
            Resized {
                from: (40, 20),
                to: (10, 5)
            }
        );
        let mut reader = png::Decoder::new(std::io::Cursor::new(&out))
            .read_info()
            .unwrap();
        assert_eq!((reader.info().width, reader.info().height), (10, 5));
        assert_eq!(reader.output_color_type().0, png::ColorType::Rgba);
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        // Each output pixel averages four columns of the ramp: 0,6,12,18 -> 9.
        assert_eq!(&buf[..4], &[9, 10, 200, 255]);
        assert!(out.windows(9).any(|w| w == b"Copyright"));
        assert!(png(
            &data,
            Resize {
                max_dimension: 40,
                quality: 85
            }
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn settings_read_back_as_stored() {
        let r = Resize {
            max_dimension: 2560,
            quality: 85,
        };
        assert_eq!(Resize::from_text(&r.to_text()), Some(r));
        assert_eq!(Resize::from_text("0:85"), None);
        assert_eq!(Resize::from_text("100:0"), None);
        assert_eq!(Resize::from_text("garbage"), None);
    }
}
