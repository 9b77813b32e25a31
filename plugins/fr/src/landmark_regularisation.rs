//! LAFS's landmark-position regularisation of fine-tuning (Sun et al.,
//! CVPR 2024, `train_largescale.py`): the fine-tuned backbone's landmark
//! network (trained with it) is pulled towards the frozen pre-trained one,
//!
//! `w(epoch) * MSE(reference / (S - 1), tuned / (S - 1))`,
//!
//! the mean over every coordinate of every point of every image, points
//! scaled to [0, 1] by the image side minus one (LAFS's `/ 111.0` at 112
//! px), with a weight that steps down over the epochs (LAFS: 1000 for
//! epochs 0-7, 100 for 8-13, 1 for 14-20, 0.11 for 21-27, then 0).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::Backbone;
use visage_core::tch::{self, Kind, Tensor};
use visage_core::{Error, Result};

/// The weight schedule: stage `i` starts at epoch `from_epochs[i]`
/// (0-based) and weighs `weights[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LandmarkRegularisationParams {
    /// The weight of each stage (LAFS: 1000, 100, 1, 0.11, 0).
    #[serde(default = "default_weights")]
    pub weights: Vec<f64>,
    /// The first epoch of each stage, from 0, increasing (LAFS: 0, 8, 14,
    /// 21, 28).
    #[serde(default = "default_from_epochs")]
    pub from_epochs: Vec<u64>,
}

fn default_weights() -> Vec<f64> {
    vec![1000.0, 100.0, 1.0, 0.11, 0.0]
}
fn default_from_epochs() -> Vec<u64> {
    vec![0, 8, 14, 21, 28]
}

impl Default for LandmarkRegularisationParams {
    fn default() -> Self {
        LandmarkRegularisationParams {
            weights: default_weights(),
            from_epochs: default_from_epochs(),
        }
    }
}

impl LandmarkRegularisationParams {
    /// Refuses schedules that do not start at epoch 0, do not increase, or
    /// have negative or non-finite weights, naming the key.
    pub fn check(&self) -> Result<()> {
        let (w, e) = (&self.weights, &self.from_epochs);
        if w.is_empty() || w.len() != e.len() {
            return Err(Error::msg(format!(
                "fr.landmark_regularisation: expected as many `weights` as `from_epochs` (at least one), got {} and {}",
                w.len(),
                e.len()
            )));
        }
        if e[0] != 0 || e.windows(2).any(|p| p[1] <= p[0]) {
            return Err(Error::msg(format!(
                "fr.landmark_regularisation.from_epochs: expected increasing epochs from 0, got {e:?}"
            )));
        }
        if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::msg(format!(
                "fr.landmark_regularisation.weights: expected non-negative numbers, got {w:?}"
            )));
        }
        Ok(())
    }

    /// The weight in `epoch` (0-based): that of the last stage started.
    pub fn weight(&self, epoch: u64) -> f64 {
        self.from_epochs
            .iter()
            .zip(&self.weights)
            .take_while(|(from, _)| **from <= epoch)
            .last()
            .map_or(0.0, |(_, w)| *w)
    }

    /// The weighted term on `images` in `epoch`: `None` when the weight is
    /// 0 (nothing is computed). `reference` is the frozen pre-trained
    /// backbone, `tuned` the one fine-tuned, whose landmark network must
    /// pass gradients (fvit: `train_landmarks: true`).
    pub fn term(
        &self,
        reference: &dyn Backbone,
        tuned: &dyn Backbone,
        images: &Tensor,
        epoch: u64,
    ) -> Result<Option<Tensor>> {
        let weight = self.weight(epoch);
        if weight == 0.0 {
            return Ok(None);
        }
        let target = tch::no_grad(|| reference.landmark_network()?.landmarks(images, false))?;
        let points = tuned.landmark_network()?.landmarks(images, true)?;
        if !points.requires_grad() {
            return Err(Error::msg(
                "fr.landmark_regularisation: the fine-tuned backbone's landmark network is frozen, so the \
                 regulariser has nothing to train (fvit: set `train_landmarks: true`)",
            ));
        }
        let size = images.size();
        Ok(Some(landmark_mse(&target, &points, size[3], size[2])? * weight))
    }
}

/// `MSE(reference / (S - 1), points / (S - 1))` of two `[N, L, 2]` point
/// sets `(x, y)` in pixels of a `width` x `height` image: x is divided by
/// `width - 1`, y by `height - 1`, the mean taken over every coordinate.
pub fn landmark_mse(reference: &Tensor, points: &Tensor, width: i64, height: i64) -> Result<Tensor> {
    let (r, p) = (reference.size(), points.size());
    if r != p || r.len() != 3 || r[2] != 2 || width < 2 || height < 2 {
        return Err(Error::msg(format!(
            "landmark regularisation: expected two [N, L, 2] point sets of one shape and an image of 2 px or more, \
             got {r:?}, {p:?} and {width} x {height}"
        )));
    }
    let scale = Tensor::from_slice(&[1.0 / (width - 1) as f64, 1.0 / (height - 1) as f64])
        .to_kind(points.kind())
        .to_device(points.device());
    let diff = (points - reference.to_kind(points.kind())) * scale;
    Ok((&diff * &diff).mean(Kind::Float))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weight_steps_down_at_lafs_epochs() {
        let p = LandmarkRegularisationParams::default();
        let got: Vec<f64> = [0, 7, 8, 13, 14, 20, 21, 27, 28, 40]
            .iter()
            .map(|&e| p.weight(e))
            .collect();
        assert_eq!(got, [1000.0, 1000.0, 100.0, 100.0, 1.0, 1.0, 0.11, 0.11, 0.0, 0.0]);
        p.check().unwrap();
        let bad = LandmarkRegularisationParams {
            weights: vec![1.0, 2.0],
            from_epochs: vec![0, 0],
        };
        assert!(bad.check().unwrap_err().to_string().contains("from_epochs"));
        let late = LandmarkRegularisationParams {
            weights: vec![1.0],
            from_epochs: vec![3],
        };
        assert!(late.check().is_err());
    }

    #[test]
    fn points_are_scaled_by_the_side_minus_one() {
        // One image of 11 x 21 px, two points. Differences (x, y):
        // (5, 10) -> (0.5, 0.5); (0, 20) -> (0, 1). MSE = (0.25 + 0.25 + 0 + 1) / 4.
        let reference = Tensor::from_slice(&[0.0f32, 0.0, 3.0, 0.0]).view([1, 2, 2]);
        let points = Tensor::from_slice(&[5.0f32, 10.0, 3.0, 20.0]).view([1, 2, 2]);
        let value = landmark_mse(&reference, &points, 11, 21).unwrap().double_value(&[]);
        assert!((value - 1.5 / 4.0).abs() < 1e-7, "{value}");
        assert!(landmark_mse(&reference, &points.narrow(1, 0, 1), 11, 21).is_err());
    }
}
