//! Head pose (PCL): mean absolute error in degrees of yaw, pitch and roll,
//! and their mean, on samples whose three angles lie within +-99 degrees.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};
use visage_core::metric::{label, Labels, Metric, Metrics};
use visage_core::{Registry, Result};

use super::{doubles, shape};

/// The angle limit of the head-pose protocol, degrees: both 300W-LP and
/// AFLW2000 keep only samples whose three angles lie within it.
pub const LIMIT: f64 = 99.0;

/// Mean absolute errors, degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoseMae {
    /// Yaw.
    pub yaw: f64,
    /// Pitch.
    pub pitch: f64,
    /// Roll.
    pub roll: f64,
    /// Mean of the three.
    pub mean: f64,
}

/// The mean absolute error per angle of predicted poses `[N, 3]` against
/// true ones `[N, 3]`, both yaw, pitch, roll in degrees.
pub fn mae(predicted: &Tensor, target: &Tensor) -> Result<PoseMae> {
    let n = shape(target, &[None, Some(3)], "pose targets [N, 3]")?[0];
    shape(predicted, &[Some(n), Some(3)], "pose predictions [N, 3]")?;
    let error = doubles(&(predicted.f_to_kind(Kind::Double)? - target.f_to_kind(Kind::Double)?).f_abs()?)?;
    let column = |j: usize| error.iter().skip(j).step_by(3).sum::<f64>() / n.max(1) as f64;
    let (yaw, pitch, roll) = (column(0), column(1), column(2));
    Ok(PoseMae {
        yaw,
        pitch,
        roll,
        mean: (yaw + pitch + roll) / 3.0,
    })
}

/// Which poses `[N, 3]` have all three angles within `[-limit, limit]`
/// degrees: a boolean mask `[N]` (the protocol's filter uses [`LIMIT`]).
pub fn within(pose: &Tensor, limit: f64) -> Result<Tensor> {
    shape(pose, &[None, Some(3)], "poses [N, 3]")?;
    Ok(pose.f_abs()?.f_le(limit)?.f_all_dim(1, false)?)
}

/// Parameters of `pose_mae`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoseMaeParams {
    /// The label holding the true poses `[N, 3]`.
    #[serde(default = "pose_label")]
    pub label: String,
}

impl Default for PoseMaeParams {
    fn default() -> Self {
        Self { label: pose_label() }
    }
}

fn pose_label() -> String {
    visage_core::labels::POSE.into()
}

/// Head-pose errors of predictions `[N, 3]` (yaw, pitch, roll, degrees):
/// the values `mae_yaw`, `mae_pitch`, `mae_roll` and `mae_mean`, degrees.
pub struct PoseMaeMetric(pub PoseMaeParams);

impl Metric for PoseMaeMetric {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let m = mae(outputs, label(labels, &self.0.label, "pose_mae")?)?;
        Ok([
            ("mae_yaw".to_string(), m.yaw),
            ("mae_pitch".to_string(), m.pitch),
            ("mae_roll".to_string(), m.roll),
            ("mae_mean".to_string(), m.mean),
        ]
        .into())
    }
}

/// Registers `pose_mae`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("pose_mae", |p: PoseMaeParams, _| Ok(PoseMaeMetric(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mae_per_angle_and_their_mean() {
        let predicted = Tensor::from_slice2(&[[10.0f32, 0.0, -5.0], [0.0, 4.0, 5.0]]);
        let target = Tensor::from_slice2(&[[0.0f32, 2.0, -5.0], [-10.0, 0.0, 1.0]]);
        // Yaw |10|, |10| -> 10; pitch |-2|, |4| -> 3; roll 0, |4| -> 2; mean 5.
        let m = mae(&predicted, &target).unwrap();
        assert_eq!(
            m,
            PoseMae {
                yaw: 10.0,
                pitch: 3.0,
                roll: 2.0,
                mean: 5.0
            }
        );
        let labels: Labels = [("pose".to_string(), target.shallow_clone())].into();
        let v = PoseMaeMetric(PoseMaeParams::default())
            .compute(&predicted, &labels)
            .unwrap();
        assert_eq!(
            (v["mae_yaw"], v["mae_pitch"], v["mae_roll"], v["mae_mean"]),
            (10.0, 3.0, 2.0, 5.0)
        );
        assert!(mae(&predicted.narrow(1, 0, 2), &target).is_err());
    }

    #[test]
    fn within_keeps_poses_whose_three_angles_are_inside_the_limit() {
        let pose = Tensor::from_slice2(&[[99.0f32, -99.0, 0.0], [0.0, 99.5, 0.0], [-120.0, 0.0, 0.0]]);
        let keep = Vec::<bool>::try_from(within(&pose, LIMIT).unwrap()).unwrap();
        assert_eq!(keep, [true, false, false]);
    }
}
