//! The coordinate convention of FaRL's alignment (farl/network/geometry.py):
//! in pixel coordinates, pixel `(i, j)` (column `i`, row `j`) has its
//! centre at `(i, j)` and covers `[i - 0.5, i + 0.5)`; in normalised
//! coordinates the image spans `[0, 1]` edge to edge, so that a pixel
//! coordinate `x` of a `w`-wide image is `(x + 0.5) / w`. Points are
//! `[..., 2]` tensors, `(x, y)` last.

use tch::Tensor;

/// Pixel coordinates of an `h` x `w` image to `[0, 1]` units.
pub fn normalize_points(points: &Tensor, h: i64, w: i64) -> Tensor {
    (points + 0.5) / scale(points, h, w)
}

/// `[0, 1]` units back to pixel coordinates of an `h` x `w` image.
pub fn denormalize_points(points: &Tensor, h: i64, w: i64) -> Tensor {
    points * scale(points, h, w) - 0.5
}

/// `(w, h)` on the points' device and dtype.
fn scale(points: &Tensor, h: i64, w: i64) -> Tensor {
    Tensor::from_slice(&[w as f64, h as f64])
        .to_kind(points.kind())
        .to_device(points.device())
}
