//! Landmarks as heatmaps, as FaRL trains them (farl/network/geometry.py,
//! farl/experiments/face_alignment/task.py): one sigmoid heatmap per
//! landmark, whose soft-argmax (the weighted mean of the pixel positions)
//! is the landmark; the targets are truncated Gaussians painted at the
//! landmarks; the loss is heatmap BCE plus the mean point distance, 1:1.
//! Coordinates follow [`super::coords`]: `[0, 1]` units of the image,
//! pixel centres at `(i + 0.5) / w`.

use tch::{Reduction, Tensor};

use visage_core::{Error, Result};

use super::coords::{denormalize_points, normalize_points};

/// FaRL's target heatmap side (`heatmap_size`), whatever the head's grid.
pub const FARL_HEATMAP_SIZE: i64 = 128;

/// FaRL's target radius in pixels of the target heatmap
/// (`heatmap_radius`); the Gaussian's sigma is a quarter of it.
pub const FARL_HEATMAP_RADIUS: f64 = 5.0;

/// The `(h, w)` of a `[N, K, h, w]` heatmap tensor, or an error naming
/// `what`.
fn grid(heatmaps: &Tensor, what: &str) -> Result<(i64, i64)> {
    match heatmaps.size()[..] {
        [_, _, h, w] if h > 0 && w > 0 => Ok((h, w)),
        ref size => Err(Error::msg(format!(
            "{what}: expected heatmaps [N, K, H, W], got {size:?}"
        ))),
    }
}

/// Points `[N, K, 2]` in `[0, 1]` units from non-negative heatmaps
/// `[N, K, h, w]` (after the sigmoid): the mean pixel centre weighted by
/// the heatmap (sums clamped at 1e-6, as FaRL). Differentiable.
pub fn soft_argmax(heatmaps: &Tensor) -> Result<Tensor> {
    let (h, w) = grid(heatmaps, "soft-argmax")?;
    let options = (heatmaps.kind(), heatmaps.device());
    let xs = Tensor::arange(w, options).view([1, 1, 1, w]);
    let ys = Tensor::arange(h, options).view([1, 1, h, 1]);
    let total = heatmaps.sum_dim_intlist(&[2i64, 3][..], false, None).clamp_min(1e-6);
    let x = (heatmaps * xs).sum_dim_intlist(&[2i64, 3][..], false, None) / &total;
    let y = (heatmaps * ys).sum_dim_intlist(&[2i64, 3][..], false, None) / &total;
    Ok(normalize_points(&Tensor::stack(&[x, y], -1), h, w))
}

/// Points `[N, K, 2]` in `[0, 1]` units from heatmap logits: the
/// soft-argmax of their sigmoid (FaRL's `heatmap_act: sigmoid`).
pub fn heatmap_points(logits: &Tensor) -> Result<Tensor> {
    soft_argmax(&logits.sigmoid())
}

/// Target heatmaps `[N, K, h, w]` for points `[N, K, 2]` in `[0, 1]`
/// units: at pixel distance `r` from the point (in pixels of the `h` x `w`
/// grid, pixel centres at integers), `exp(-r^2 / (2 sigma^2))` with
/// `sigma = radius / 4` where `r <= radius`, 0 beyond (FaRL's
/// `gaussian_awing` kernel). Not differentiable (the points are detached).
pub fn gaussian_heatmaps(points: &Tensor, h: i64, w: i64, radius: f64) -> Result<Tensor> {
    let size = points.size();
    if size.len() != 3 || size[2] != 2 {
        return Err(Error::msg(format!(
            "Gaussian heatmaps: expected points [N, K, 2], got {size:?}"
        )));
    }
    if h < 1 || w < 1 || radius.is_nan() || radius <= 0.0 {
        return Err(Error::msg(format!(
            "Gaussian heatmaps: expected a positive size and radius, got {h}x{w} and {radius}"
        )));
    }
    let pixels = denormalize_points(&points.detach(), h, w);
    let options = (points.kind(), points.device());
    let dx = Tensor::arange(w, options).view([1, 1, 1, w]) - pixels.select(2, 0).view([size[0], size[1], 1, 1]);
    let dy = Tensor::arange(h, options).view([1, 1, h, 1]) - pixels.select(2, 1).view([size[0], size[1], 1, 1]);
    let r2 = dx.square() + dy.square();
    let sigma = radius / 4.0;
    let inside = r2.le(radius * radius).to_kind(points.kind());
    Ok((r2 / (-2.0 * sigma * sigma)).exp() * inside)
}

/// The parts of the alignment loss, each a scalar averaged over the batch.
#[derive(Debug)]
pub struct AlignmentLosses {
    /// `heatmap_bce + coord`, what is minimised.
    pub total: Tensor,
    /// BCE of the logits (resized to the target size) against the Gaussian
    /// targets, averaged over pixels, landmarks and images (FaRL's
    /// `heatmap_ce_loss`).
    pub heatmap_bce: Tensor,
    /// Euclidean distance between predicted and true points in `[0, 1]`
    /// units, averaged over landmarks and images (FaRL's `coord_l1_loss`).
    pub coord: Tensor,
    /// The predicted points `[N, K, 2]` in `[0, 1]` units.
    pub points: Tensor,
}

/// FaRL's alignment loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignmentLoss {
    /// Side of the target heatmaps the logits are resized to (bilinear,
    /// align_corners false) for the BCE.
    pub heatmap_size: i64,
    /// Radius of the Gaussian targets in pixels of the target heatmaps.
    pub radius: f64,
}

impl Default for AlignmentLoss {
    /// FaRL's 128 x 128 targets of radius 5.
    fn default() -> Self {
        AlignmentLoss {
            heatmap_size: FARL_HEATMAP_SIZE,
            radius: FARL_HEATMAP_RADIUS,
        }
    }
}

impl AlignmentLoss {
    /// The loss of heatmap logits `[N, K, h, w]` (the dense head's output)
    /// against true points `[N, K, 2]` in `[0, 1]` units. The points are
    /// predicted on the logits' own grid; the BCE is taken on the target
    /// grid.
    pub fn compute(&self, logits: &Tensor, targets: &Tensor) -> Result<AlignmentLosses> {
        grid(logits, "alignment loss")?;
        let (n, k) = (logits.size()[0], logits.size()[1]);
        if targets.size() != [n, k, 2] {
            return Err(Error::msg(format!(
                "alignment loss: expected target points [{n}, {k}, 2] for heatmaps {:?}, got {:?}",
                logits.size(),
                targets.size()
            )));
        }
        let points = heatmap_points(logits)?;
        let coord = (targets - &points)
            .norm_scalaropt_dim(2.0, &[2i64][..], false)
            .mean(logits.kind());
        let side = self.heatmap_size;
        let resized = logits.upsample_bilinear2d([side, side], false, None, None);
        let gaussians = gaussian_heatmaps(targets, side, side, self.radius)?;
        let heatmap_bce = resized.binary_cross_entropy_with_logits::<Tensor>(&gaussians, None, None, Reduction::Mean);
        Ok(AlignmentLosses {
            total: &heatmap_bce + &coord,
            heatmap_bce,
            coord,
            points,
        })
    }
}
