//! Images pasted from a clipboard, which front ends hand over as raw RGBA pixels: each becomes a
//! PNG file under `<data dir>/pasted` (owner-only, like everything there), so that its upload,
//! queued by path, survives a restart (`/tmp` may be emptied by one).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PasteError {
    #[error("the clipboard image is empty or malformed ({width}×{height} pixels in {bytes} bytes of RGBA): copy the image again")]
    Malformed {
        width: u32,
        height: u32,
        bytes: usize,
    },
    #[error("cannot save the pasted image as {}: {source}; check that the data directory is writable", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the pasted image as a PNG file: {0}")]
    Encode(#[from] png::EncodingError),
}

/// Saves `rgba` (`width` × `height` pixels, 8 bits per channel) as a new PNG file under
/// `data_dir` and answers its path.
pub fn save_png(
    data_dir: &Path,
    rgba: &[u8],
    width: u32,
    height: u32,
) -> Result<PathBuf, PasteError> {
    let expected = (width as usize)
        .checked_mul(height as usize)
        .and_then(|pixels| pixels.checked_mul(4));
    if width == 0 || height == 0 || expected != Some(rgba.len()) {
        return Err(PasteError::Malformed {
            width,
            height,
            bytes: rgba.len(),
        });
    }
    let dir = data_dir.join("pasted");
    crate::private_fs::create_dir_all(&dir).map_err(|source| PasteError::Write {
        path: dir.clone(),
        source,
    })?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let path = dir.join(format!("pasted-{stamp}.png"));
    let file = crate::private_fs::create(&path).map_err(|source| PasteError::Write {
        path: path.clone(),
        source,
    })?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgba)?;
    writer.finish()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_image_is_a_private_png_under_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let rgba: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let path = save_png(dir.path(), &rgba, 2, 3).unwrap();
        assert!(path.starts_with(dir.path().join("pasted")), "{path:?}");
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (2, 3));
        assert_eq!(frame.color_type, png::ColorType::Rgba);
        assert_eq!(&pixels[..frame.buffer_size()], &rgba[..]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn images_whose_pixels_do_not_fill_their_size_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (rgba, width, height) in [
            (vec![], 0, 0),
            (vec![0; 4], 0, 1),
            (vec![0; 7], 1, 2),
            (vec![0; 4], u32::MAX, u32::MAX),
        ] {
            assert!(matches!(
                save_png(dir.path(), &rgba, width, height),
                Err(PasteError::Malformed { .. })
            ));
        }
        assert!(!dir.path().join("pasted").exists());
    }
}
