//! Reading 8-bit grey PNG masks (label maps and part masks).

use std::path::Path;

use visage_core::data::decode::decode_rgb8;
use visage_core::Result;

use crate::error::bail;
use crate::files::read_bytes;

/// A decoded grey mask: `(height, width, values)`, row-major.
pub fn read_grey(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let bytes = read_bytes(path)?;
    let rgb = match decode_rgb8(&bytes, None) {
        Ok(rgb) => rgb,
        Err(e) => bail!("{}: {e}", path.display()),
    };
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let values = rgb.as_raw().chunks(3).map(|px| px[0]).collect();
    Ok((h, w, values))
}

/// A label map whose ids must lie in `0..classes`: the first pixel that
/// does not is an error naming the file, the pixel and the id.
pub fn read_label_map(path: &Path, classes: usize) -> Result<(usize, usize, Vec<u8>)> {
    let (h, w, ids) = read_grey(path)?;
    if let Some(p) = ids.iter().position(|&c| c as usize >= classes) {
        bail!(
            "{}: pixel (row {}, column {}) has class id {}, expected 0..{classes}",
            path.display(),
            p / w,
            p % w,
            ids[p]
        );
    }
    Ok((h, w, ids))
}
