//! Where a view's tokens are sampled, and LAFS's two landmark
//! augmentations: Gaussian jitter of every landmark (`N(0, sigma^2)` pixels
//! on each coordinate; LAFS: sigma 5 at 112 x 112) and a random subset of
//! the landmarks for local views (LAFS: 36 of 196). Points are `[N, K, 2]`,
//! `(x, y)` in pixels ([`visage_core::labels`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};
use visage_core::teacher::TeacherSource;
use visage_core::{Error, Result};

/// Where the tokens of a view come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointSource {
    /// The dataset's landmarks (label `landmarks`), moved with each view's
    /// pixels by the view's augmentations.
    #[default]
    GroundTruth,
    /// The fViT's own landmark network, frozen (LAFS).
    Network,
    /// Ablation: a regular grid of patch centres instead of landmarks.
    Grid,
    /// No points: the backbone's own forward places its tokens (a plain
    /// `vit` its patches, so this is DINO on a plain ViT). LAFS's two
    /// landmark augmentations do not apply: `jitter` must be 0 and
    /// `local_subset` false.
    Backbone,
    /// An external landmark network, frozen: a backbone with a landmark
    /// predictor (`fvit`, `mobilenet_v3` with `landmarks`) loaded from a
    /// Visage run (`{external: {from_run: DIR}}`) or from weights
    /// (`{external: {weights: {path: FILE}, backbone: {name, params}}}`),
    /// built as the teacher `landmarks` and never trained.
    External(TeacherSource),
}

/// The centres of the `patch x patch` patches tiling an `height x width`
/// image, row by row, `[N, (height / patch) * (width / patch), 2]`: each
/// patch covers pixels `patch*i .. patch*i + patch - 1` exactly when
/// sampled at offsets `-patch/2 .. patch/2 - 1` from its centre (pixel
/// `j`'s centre is `j + 0.5`).
pub fn grid_points(n: i64, height: i64, width: i64, patch: i64, device: tch::Device) -> Result<Tensor> {
    let (rows, cols) = (height / patch.max(1), width / patch.max(1));
    if patch < 1 || rows < 1 || cols < 1 {
        return Err(Error::msg(format!(
            "grid patches: a {height} x {width} view holds no {patch} x {patch} patch"
        )));
    }
    let options = (Kind::Float, device);
    let centre = |count: i64| Tensor::arange(count, options) * patch as f64 + (patch / 2) as f64 + 0.5;
    let (y, x) = (centre(rows), centre(cols));
    let xs = x.view([1, cols]).expand([rows, cols], true);
    let ys = y.view([rows, 1]).expand([rows, cols], true);
    let grid = Tensor::stack(&[xs, ys], -1).view([1, rows * cols, 2]);
    Ok(grid.expand([n, rows * cols, 2], true).contiguous())
}

/// `points` plus independent `N(0, sigma^2)` noise on every coordinate;
/// `points` unchanged when `sigma` is 0.
pub fn jitter(points: &Tensor, sigma: f64) -> Tensor {
    if sigma == 0.0 {
        return points.shallow_clone();
    }
    points + points.randn_like() * sigma
}

/// `keep` of the `K` points of each image, drawn independently per image:
/// without replacement (a random subset, the paper's wording) or, with
/// `with_replacement`, `keep` independent uniform indices (LAFS's code,
/// `torch.randint`, may repeat a landmark).
pub fn subset(points: &Tensor, keep: i64, with_replacement: bool) -> Result<Tensor> {
    let size = points.size();
    let (n, k) = match size.as_slice() {
        [n, k, 2] => (*n, *k),
        _ => {
            return Err(Error::msg(format!(
                "landmark subset: points must be [N, K, 2], got {size:?}"
            )))
        }
    };
    if keep < 1 || (keep > k && !with_replacement) {
        return Err(Error::msg(format!(
            "landmark subset: cannot keep {keep} of {k} landmarks (local_tokens must be 1 to {k})"
        )));
    }
    let device = points.device();
    let index = if with_replacement {
        Tensor::randint(k, [n, keep], (Kind::Int64, device))
    } else {
        // The first `keep` of a random permutation per image.
        Tensor::rand([n, k], (Kind::Float, device))
            .argsort(1, false)
            .narrow(1, 0, keep)
    };
    Ok(points.gather(1, &index.unsqueeze(-1).expand([n, keep, 2], true), false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn grid_points_are_patch_centres_row_by_row() {
        let grid = grid_points(2, 16, 24, 8, Device::Cpu).unwrap();
        assert_eq!(grid.size(), [2, 6, 2]);
        let first: Vec<f32> = grid.get(1).view([-1]).try_into().unwrap();
        assert_eq!(
            first,
            [4.5, 4.5, 12.5, 4.5, 20.5, 4.5, 4.5, 12.5, 12.5, 12.5, 20.5, 12.5]
        );
        assert!(grid_points(1, 4, 4, 8, Device::Cpu).is_err());
    }

    #[test]
    fn jitter_has_the_asked_spread_and_zero_is_the_identity() {
        tch::manual_seed(3);
        let points = Tensor::full([4, 5000, 2], 50.0, (Kind::Float, Device::Cpu));
        assert!(jitter(&points, 0.0).equal(&points));
        let moved = jitter(&points, 5.0) - 50.0;
        let std = moved.std(true).double_value(&[]);
        let mean = moved.mean(Kind::Float).double_value(&[]);
        assert!((std - 5.0).abs() < 0.1 && mean.abs() < 0.1, "std {std}, mean {mean}");
    }

    #[test]
    fn a_subset_without_replacement_keeps_distinct_points_of_the_same_image() {
        tch::manual_seed(4);
        // Image i's point j is (j, 100 i).
        let j = Tensor::arange(10, (Kind::Float, Device::Cpu))
            .view([1, 10])
            .expand([3, 10], true);
        let i = Tensor::arange(3, (Kind::Float, Device::Cpu))
            .view([3, 1])
            .expand([3, 10], true)
            * 100.0;
        let points = Tensor::stack(&[j, i], -1);
        let kept = subset(&points, 4, false).unwrap();
        assert_eq!(kept.size(), [3, 4, 2]);
        for img in 0..3 {
            let xs: Vec<f32> = kept.get(img).select(1, 0).try_into().unwrap();
            let ys: Vec<f32> = kept.get(img).select(1, 1).try_into().unwrap();
            assert!(ys.iter().all(|&y| y == 100.0 * img as f32));
            let mut distinct = xs.clone();
            distinct.sort_by(f32::total_cmp);
            distinct.dedup();
            assert_eq!(distinct.len(), 4, "{xs:?}");
        }
        assert_eq!(subset(&points, 12, true).unwrap().size(), [3, 12, 2]);
        let err = subset(&points, 11, false).unwrap_err().to_string();
        assert!(err.contains("cannot keep 11 of 10"), "{err}");
    }
}
