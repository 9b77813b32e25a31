//! Image encoding and atomic file writes shared by the formats.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use tch::{Kind, Tensor};
use visage_core::Result;

use crate::error::{ensure, io_error, Context};

/// A float image `[C, H, W]` in 0..1 (C = 1 or 3) as uint8 `[3, H, W]`:
/// non-finite values become 0, the rest is clamped to 0..1, scaled by 255
/// and rounded.
pub fn to_u8(image: &Tensor) -> Result<Tensor> {
    let shape = image.size();
    ensure!(
        shape.len() == 3 && (shape[0] == 1 || shape[0] == 3) && shape[1] > 0 && shape[2] > 0,
        "expected an image of shape [3, H, W] or [1, H, W], got {shape:?}"
    );
    let t = image
        .f_to_kind(Kind::Float)?
        .f_nan_to_num(0.0, 0.0, 0.0)?
        .f_clamp(0.0, 1.0)?
        .f_mul_scalar(255.0)?
        .f_round()?
        .f_to_kind(Kind::Uint8)?;
    Ok(if shape[0] == 1 { t.f_repeat([3, 1, 1])? } else { t })
}

/// A temporary path beside `path` with the same extension (the encoder
/// picks the format from it).
fn temp_beside(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?
        .to_string_lossy();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(path.with_file_name(format!(".{name}.tmp{}-{n}.{ext}", std::process::id())))
}

/// Creates the parent folder of `path`.
fn parent_dir(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, "cannot create the folder", e))?;
    }
    Ok(())
}

/// Encodes a uint8 `[C, H, W]` tensor to `path` (JPEG quality 90 for `.jpg`,
/// PNG for `.png`) without renaming.
fn encode_to(pixels: &Tensor, path: &Path) -> Result<()> {
    tch::vision::image::save(pixels, path).with_context(|| format!("{}: cannot encode the image", path.display()))?;
    // The encoder does not report failures: check that a file came out.
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    ensure!(len > 0, "{}: the image encoder wrote nothing", path.display());
    Ok(())
}

/// Writes a uint8 image `[C, H, W]` atomically; the extension (`.jpg` or
/// `.png`) picks the format.
pub fn save_image(path: &Path, pixels: &Tensor) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    ensure!(
        ext == "jpg" || ext == "png",
        "{}: images are written as .jpg or .png",
        path.display()
    );
    parent_dir(path)?;
    let tmp = temp_beside(path)?;
    let result = encode_to(pixels, &tmp)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io_error(path, "cannot rename into place", e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The bytes of a uint8 image `[C, H, W]` encoded as JPEG (`ext` = `jpg`) or
/// PNG, through a temporary file in `dir`.
pub fn encode(pixels: &Tensor, dir: &Path, ext: &str) -> Result<Vec<u8>> {
    let tmp = temp_beside(&dir.join(format!("encode.{ext}")))?;
    let result =
        encode_to(pixels, &tmp).and_then(|()| std::fs::read(&tmp).map_err(|e| io_error(&tmp, "cannot read back", e)));
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Writes a single-channel 8-bit PNG of `h x w` values atomically (lossless:
/// the values are exactly `values`).
pub fn save_grey_png(path: &Path, h: usize, w: usize, values: &[u8]) -> Result<()> {
    ensure!(
        values.len() == h * w,
        "{}: {} values for {h}x{w}",
        path.display(),
        values.len()
    );
    let pixels = Tensor::from_slice(values).view([1, h as i64, w as i64]);
    save_image(path, &pixels)
}

/// Writes a text file atomically, creating its folder.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

/// Writes a file atomically, creating its folder.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    parent_dir(path)?;
    visage_core::fs::write_atomic(path, bytes)?;
    Ok(())
}
