//! Landmarks between the dataset's pixels and the head's `[0, 1]` units.
//!
//! Visage's labels put pixel `(i, j)` over `[j, j + 1) x [i, i + 1)`
//! (`visage_core::labels`): the image spans `[0, W] x [0, H]` edge to edge.
//! The heatmap coordinates of [`visage_tasks::heads::coords`] span `[0, 1]`
//! edge to edge too (a pixel centre at `(i + 0.5) / w`), so the two differ
//! by the scale `(W, H)` alone: `u = x / W`, `x = u W`.

use visage_core::tch::Tensor;

/// Points `[..., 2]` in pixels of an `height` x `width` image to `[0, 1]`
/// units.
pub fn to_units(pixels: &Tensor, height: i64, width: i64) -> Tensor {
    pixels / scale(pixels, height, width)
}

/// Points `[..., 2]` in `[0, 1]` units to pixels of an `height` x `width`
/// image.
pub fn to_pixels(units: &Tensor, height: i64, width: i64) -> Tensor {
    units * scale(units, height, width)
}

/// `(W, H)` on the points' device, in their kind.
fn scale(points: &Tensor, height: i64, width: i64) -> Tensor {
    Tensor::from_slice(&[width as f64, height as f64])
        .to_kind(points.kind())
        .to_device(points.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_scale_by_the_image_side_to_units_and_back() {
        // A 40 wide, 20 high image: (10, 5) is a quarter of each side.
        let px = Tensor::from_slice(&[10.0f32, 5.0, 40.0, 0.0]).view([1, 2, 2]);
        let units = to_units(&px, 20, 40);
        assert_eq!(
            Vec::<f32>::try_from(units.flatten(0, -1)).unwrap(),
            [0.25, 0.25, 1.0, 0.0]
        );
        assert!(to_pixels(&units, 20, 40).equal(&px));
    }
}
