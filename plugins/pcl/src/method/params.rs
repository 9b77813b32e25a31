//! Parameters of the `pcl` method: every size, the ablation switches and
//! the official code's quirks as options. Defaults are the paper's sizes;
//! small experiments override them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use visage_core::{Error, Result};

use crate::facecycle::{FACE, POSE};

/// What the decoder's tanh output is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecoderOutput {
    /// `(tanh(x) + 1) / 2`, in [0, 1] like the target images (the paper's
    /// intent: the decoder can reach every target value).
    Unit,
    /// The official code: the tanh output in [-1, 1] against targets in
    /// [0, 1], so that the negative half of the range is never a target.
    Tanh,
}

/// Dynamic Weight Averaging of the face-aware and pose contrastive losses
/// (Liu et al., "End-to-end multi-task learning with attention", 2019).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DwaParams {
    /// Softmax temperature T (PCL: 2).
    #[serde(default = "default_dwa_temperature")]
    pub temperature: f64,
    /// Training steps per averaging period, PCL's "epoch" (one pass over
    /// the VoxCeleb identities there).
    #[serde(default = "default_dwa_period")]
    pub period: u64,
}

fn default_dwa_temperature() -> f64 {
    2.0
}
fn default_dwa_period() -> u64 {
    100
}

impl Default for DwaParams {
    fn default() -> Self {
        DwaParams {
            temperature: default_dwa_temperature(),
            period: default_dwa_period(),
        }
    }
}

/// Parameters of `pcl`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PclParams {
    /// Backbone output of the face-aware head (flattened).
    #[serde(default = "default_face")]
    pub face_feature: String,
    /// Backbone output of the pose head (flattened).
    #[serde(default = "default_pose")]
    pub pose_feature: String,
    /// Hidden width of the projectors `exp_fc` and `pose_fc` (PCL: their
    /// input width, 2048); the input width when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projector_hidden: Option<i64>,
    /// Output width of the projectors (PCL: 512).
    #[serde(default = "default_projector_dim")]
    pub projector_dim: i64,
    /// Channels after the decoder's linear layer (PCL: 512); the stages
    /// then have half, and a quarter before the last.
    #[serde(default = "default_decoder_width")]
    pub decoder_width: i64,
    /// Upsampling stages of the decoder (PCL: 6, 1x1 to 64x64); the image
    /// side must be `2^decoder_depth`.
    #[serde(default = "default_decoder_depth")]
    pub decoder_depth: i64,
    /// InfoNCE temperature of both contrastive losses (PCL: 0.07).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Beta(alpha, alpha) of the negative mixing (PCL: 1.6).
    #[serde(default = "default_mix_alpha")]
    pub mix_alpha: f64,
    /// Augmented views of the flipped image per image, the pose negatives
    /// (PCL: 100); the last view group must hold this many.
    #[serde(default = "default_pose_negatives")]
    pub pose_negatives: usize,
    /// Images of the batch the pose step uses (PCL's pose loader has batch
    /// 10); the whole batch when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pose_batch: Option<i64>,
    /// Standard deviation of the Gaussian noise on the reconstruction
    /// step's encoder inputs; the targets stay clean (PCL: 0.4).
    #[serde(default = "default_input_noise")]
    pub input_noise: f64,
    /// How the decoder's output meets the [0, 1] targets.
    #[serde(default = "default_decoder_output")]
    pub decoder_output: DecoderOutput,
    /// The pose-disentangled decoder and its four reconstructions (ablation:
    /// false).
    #[serde(default = "yes")]
    pub decoder: bool,
    /// The orthogonal loss between face-aware and pose features (ablation:
    /// false).
    #[serde(default = "yes")]
    pub orthogonal: bool,
    /// Pose contrastive learning (ablation: false; no pose views then).
    #[serde(default = "yes")]
    pub pose: bool,
    /// Beta-mixed negatives (ablation: false, plain negatives).
    #[serde(default = "yes")]
    pub mix_negatives: bool,
    /// The official code's grouping of pose negatives: it chunks the
    /// negatives stacked view by view into per-image groups, so an anchor's
    /// negatives are flipped views of several images of the batch rather
    /// than of its own.
    #[serde(default)]
    pub official_negative_grouping: bool,
    /// One optimiser step on the sum of all losses instead of PCL's three.
    #[serde(default)]
    pub combined: bool,
    /// Reconstruction-only warm-up, the official `warm_up` (in epochs there,
    /// -1 in its VoxCeleb config; steps here): in the first `warmup_steps`
    /// steps only the reconstruction step runs, on three of the four cross
    /// reconstructions (not `e_f + p_f`) and without the orthogonal loss,
    /// as the official warm-up branch does; the contrastive steps rest.
    #[serde(default)]
    pub warmup_steps: u64,
    /// Dynamic Weight Averaging of the two contrastive losses; `null` keeps
    /// both weights at 1.
    #[serde(default = "default_dwa")]
    pub dwa: Option<DwaParams>,
}

fn default_face() -> String {
    FACE.into()
}
fn default_pose() -> String {
    POSE.into()
}
fn default_projector_dim() -> i64 {
    512
}
fn default_decoder_width() -> i64 {
    512
}
fn default_decoder_depth() -> i64 {
    6
}
fn default_temperature() -> f64 {
    0.07
}
fn default_mix_alpha() -> f64 {
    1.6
}
fn default_pose_negatives() -> usize {
    100
}
fn default_input_noise() -> f64 {
    0.4
}
fn default_decoder_output() -> DecoderOutput {
    DecoderOutput::Unit
}
fn yes() -> bool {
    true
}
fn default_dwa() -> Option<DwaParams> {
    Some(DwaParams::default())
}

/// Above zero (NaN is not).
fn positive(x: f64) -> bool {
    x > 0.0
}

impl Default for PclParams {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field of PclParams has a default")
    }
}

impl PclParams {
    /// Checks the values, naming the parameter at fault.
    pub fn check(&self) -> Result<()> {
        let bad = |name: &str, what: String| Err(Error::msg(format!("pcl: {name}: {what}")));
        if self.projector_dim < 1 || self.projector_hidden.is_some_and(|h| h < 1) {
            return bad("projector_dim/projector_hidden", "expected at least 1".into());
        }
        if self.decoder_width < 4 {
            return bad(
                "decoder_width",
                format!("expected at least 4, got {}", self.decoder_width),
            );
        }
        if !(2..=12).contains(&self.decoder_depth) {
            return bad("decoder_depth", format!("expected 2 to 12, got {}", self.decoder_depth));
        }
        if !positive(self.temperature) {
            return bad("temperature", format!("expected > 0, got {}", self.temperature));
        }
        if !positive(self.mix_alpha) {
            return bad("mix_alpha", format!("expected > 0, got {}", self.mix_alpha));
        }
        if self.pose && self.pose_negatives < 2 {
            return bad(
                "pose_negatives",
                format!("expected at least 2, got {}", self.pose_negatives),
            );
        }
        if self.pose_batch.is_some_and(|b| b < 1) {
            return bad("pose_batch", "expected at least 1".into());
        }
        if !(positive(self.input_noise) || self.input_noise == 0.0) {
            return bad("input_noise", format!("expected >= 0, got {}", self.input_noise));
        }
        if self.warmup_steps > 0 && !self.decoder {
            return bad(
                "warmup_steps",
                "the warm-up trains the reconstructions only, and `decoder: false` has none".into(),
            );
        }
        if let Some(d) = &self.dwa {
            if !positive(d.temperature) || d.period < 1 {
                return bad(
                    "dwa",
                    format!(
                        "expected temperature > 0 and period >= 1, got {} and {}",
                        d.temperature, d.period
                    ),
                );
            }
        }
        Ok(())
    }
}
