//! The confusion matrix as a heatmap PNG: one square block of
//! [`CELL`] pixels per (true, predicted) class pair, rows the true classes
//! from the top, columns the predicted classes from the left, both in
//! label order. A cell's shade is its row-normalised rate (the fraction of
//! the true class predicted as that column), from white (0) to dark blue
//! (1); a true class without samples is a white row. No text is drawn:
//! the class names are in `confusion_matrix.json`, in the same order.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};
use visage_core::{Error, Result};

/// Side of one cell block, in pixels.
pub const CELL: u32 = 32;

/// The colour of rate 0.
const EMPTY: [u8; 3] = [255, 255, 255];
/// The colour of rate 1 (matplotlib's darkest `Blues`).
const FULL: [u8; 3] = [8, 48, 107];

/// The colour of a row-normalised rate in `[0, 1]`.
pub fn shade(rate: f64) -> [u8; 3] {
    let r = rate.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * r).round() as u8;
    [mix(EMPTY[0], FULL[0]), mix(EMPTY[1], FULL[1]), mix(EMPTY[2], FULL[2])]
}

/// Row-normalised rates of square `counts` (rows = true class); a row
/// without samples gives zeros.
pub fn row_rates(counts: &[Vec<i64>]) -> Vec<Vec<f64>> {
    counts
        .iter()
        .map(|row| {
            let total: i64 = row.iter().sum();
            row.iter()
                .map(|&c| if total > 0 { c as f64 / total as f64 } else { 0.0 })
                .collect()
        })
        .collect()
}

/// The heatmap of square `counts` (rows = true class), PNG-encoded:
/// `classes * CELL` pixels on each side.
pub fn heatmap_png(counts: &[Vec<i64>]) -> Result<Vec<u8>> {
    let n = counts.len();
    if n == 0 || counts.iter().any(|row| row.len() != n) {
        return Err(Error::msg(format!(
            "confusion plot: expected a square matrix of counts, got {n} rows of lengths {:?}",
            counts.iter().map(Vec::len).collect::<Vec<_>>()
        )));
    }
    let rates = row_rates(counts);
    let side = n as u32 * CELL;
    let image = RgbImage::from_fn(side, side, |x, y| {
        let (row, col) = ((y / CELL) as usize, (x / CELL) as usize);
        Rgb(shade(rates[row][col]))
    });
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|e| Error::msg(format!("confusion plot: PNG encoding failed: {e}")))?;
    Ok(bytes.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_true_class_and_shades_run_from_white_to_blue() {
        // True class 0: 3 right, 1 wrong; class 1 has no samples.
        let rates = row_rates(&[vec![3, 1], vec![0, 0]]);
        assert_eq!(rates, vec![vec![0.75, 0.25], vec![0.0, 0.0]]);
        assert_eq!(shade(0.0), [255, 255, 255]);
        assert_eq!(shade(1.0), [8, 48, 107]);
        // Half way: (255 + 8) / 2 = 131.5 -> 132, (255 + 48) / 2 = 151.5 -> 152, 181.
        assert_eq!(shade(0.5), [132, 152, 181]);
        assert!(heatmap_png(&[vec![1, 2]]).is_err());
        assert!(heatmap_png(&[]).is_err());
    }
}
