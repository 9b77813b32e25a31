//! Parameters of the `lafs` method. Defaults are CPU-sized where a size is
//! concerned (the head) and LAFS's elsewhere; experiments/paper keeps
//! LAFS's sizes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::schedule::{Schedule, Shape};
use visage_core::{Error, Result};

use super::head::DinoHeadParams;
use super::points::PointSource;
use crate::fvit::CLS;

/// Parameters of `lafs`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LafsParams {
    /// Backbone output the head reads (fViT's class token).
    #[serde(default = "default_feature")]
    pub feature: String,
    /// The DINO head's sizes (LAFS: hidden 2048, bottleneck 256, out_dim
    /// 100000).
    #[serde(default)]
    pub head: DinoHeadParams,
    /// Student temperature (DINO, LAFS: 0.1).
    #[serde(default = "default_student_temperature")]
    pub student_temperature: f64,
    /// Teacher temperature per step (LAFS: 0.07 warming to 0.04 over 30
    /// epochs, then 0.04; default: linearly over the whole run).
    #[serde(default = "default_teacher_temperature")]
    pub teacher_temperature: Schedule,
    /// Momentum of the centre's EMA (0.9).
    #[serde(default = "default_center_momentum")]
    pub center_momentum: f64,
    /// EMA momentum of the teacher, backbone and head (0.996 -> 1, cosine).
    #[serde(default = "default_momentum")]
    pub momentum: Schedule,
    /// Steps at the start during which the head's last layer gets no
    /// gradient (LAFS: one epoch's steps).
    #[serde(default)]
    pub freeze_last_layer_steps: u64,
    /// Where tokens are sampled: `ground_truth` landmarks, the fViT's own
    /// frozen landmark `network`, or the `grid` ablation.
    #[serde(default)]
    pub points: PointSource,
    /// Patch side of the `grid` ablation (the fViT's `patch`).
    #[serde(default = "default_grid_patch")]
    pub grid_patch: i64,
    /// Standard deviation in pixels of the Gaussian landmark jitter applied
    /// to every point of every view (LAFS: 5); 0 disables it.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// Give local views a random subset of `local_tokens` points (LAFS);
    /// false gives them every point (the "no subset" ablation).
    #[serde(default = "default_true")]
    pub local_subset: bool,
    /// Points kept in a local view (LAFS: 36 of 196).
    #[serde(default = "default_local_tokens")]
    pub local_tokens: i64,
    /// Draw the subset with replacement, as LAFS's code does
    /// (`torch.randint`); default: a subset of distinct points.
    #[serde(default)]
    pub subset_with_replacement: bool,
}

fn default_feature() -> String {
    CLS.into()
}
fn default_student_temperature() -> f64 {
    0.1
}
fn default_teacher_temperature() -> Schedule {
    Schedule::Shaped(Shape::Linear {
        start: 0.07,
        end: 0.04,
        steps: None,
    })
}
fn default_center_momentum() -> f64 {
    0.9
}
fn default_momentum() -> Schedule {
    Schedule::cosine(0.996, 1.0)
}
fn default_grid_patch() -> i64 {
    8
}
fn default_jitter() -> f64 {
    5.0
}
fn default_true() -> bool {
    true
}
fn default_local_tokens() -> i64 {
    36
}

impl Default for LafsParams {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl LafsParams {
    /// Checks the numbers, naming the offending key.
    pub fn check(&self) -> Result<()> {
        self.teacher_temperature.check("lafs.teacher_temperature")?;
        self.momentum.check("lafs.momentum")?;
        let bad =
            |key: &str, value: String, want: &str| Err(Error::msg(format!("lafs.{key}: expected {want}, got {value}")));
        if self.student_temperature.is_nan() || self.student_temperature <= 0.0 {
            return bad(
                "student_temperature",
                self.student_temperature.to_string(),
                "a positive number",
            );
        }
        if !(0.0..=1.0).contains(&self.center_momentum) {
            return bad(
                "center_momentum",
                self.center_momentum.to_string(),
                "a number in [0, 1]",
            );
        }
        if !(self.jitter >= 0.0 && self.jitter.is_finite()) {
            return bad("jitter", self.jitter.to_string(), "a finite number >= 0 (pixels)");
        }
        if self.local_tokens < 1 {
            return bad("local_tokens", self.local_tokens.to_string(), "at least 1");
        }
        if self.grid_patch < 1 {
            return bad("grid_patch", self.grid_patch.to_string(), "at least 1");
        }
        if self.points == PointSource::Backbone && (self.jitter != 0.0 || self.local_subset) {
            return Err(Error::msg(format!(
                "lafs.points: `backbone` runs the backbone's own forward, where the landmark augmentations \
                 cannot apply: set `jitter: 0` and `local_subset: false` (got jitter {}, local_subset {})",
                self.jitter, self.local_subset
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_lafss_and_bad_numbers_are_named() {
        let p = LafsParams::default();
        assert_eq!(p.teacher_temperature.value(0, 10), 0.07);
        assert!((p.teacher_temperature.value(5, 10) - 0.055).abs() < 1e-12);
        assert_eq!(p.momentum.value(0, 10), 0.996);
        assert_eq!(
            (p.student_temperature, p.center_momentum, p.jitter, p.local_tokens),
            (0.1, 0.9, 5.0, 36)
        );
        assert!(p.check().is_ok());
        let err = LafsParams {
            jitter: -1.0,
            ..p.clone()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert_eq!(err, "lafs.jitter: expected a finite number >= 0 (pixels), got -1");
        let p: LafsParams = serde_json::from_str(r#"{"points": "grid", "teacher_temperature": 0.04}"#).unwrap();
        assert_eq!(p.points, PointSource::Grid);
        assert!(serde_json::from_str::<LafsParams>(r#"{"jiter": 1}"#).is_err());
    }
}
