//! The parameters of the `alignment` task and its defaults, FaRL's recipe
//! (FacePerceiver/FaRL, farl/experiments/face_alignment: trainers/*.yaml,
//! optimizers/refine_backbone.yaml and freeze_backbone.yaml).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::task::Protocol;
use visage_core::{Error, Result};
use visage_tasks::metrics::alignment::Unit;
use visage_tasks::training::{OptimizerKind, Training, TrainingParams};

use crate::head::HeadConfig;

/// Parameters of `alignment`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlignmentParams {
    /// The label holding the landmarks `[K, 2]` in pixels.
    #[serde(default = "landmarks_label")]
    pub label: String,
    /// The label holding the face box `[4]` (`x0, y0, x1, y1`) for the
    /// `box` and `diag` units; a dataset without it is scored with the box
    /// spanned by the true landmarks.
    #[serde(default = "box_label", rename = "box")]
    pub box_label: String,
    /// A label of per-point visibility `[K]`: when set, only visible points
    /// are scored. FaRL scores every point (none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<String>,
    /// Failure threshold on the per-image NME, a fraction; default 0.07 for
    /// the AFLW-19 layout, 0.1 otherwise (WFLW).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The unit of the failure rate and AUC; default `box` for AFLW-19,
    /// else `inter_ocular` (or `box` when the layout has no eye corners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_unit: Option<Unit>,
    /// Channels inside UPerNet (FaRL: 768, ViT-B's width).
    #[serde(default = "channels")]
    pub channels: i64,
    /// Channel dropout before the heatmap classifier (FaRL: 0.1).
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// Side of the target heatmaps the BCE is taken on (FaRL: 128).
    #[serde(default = "heatmap_size")]
    pub heatmap_size: i64,
    /// Radius of the Gaussian targets in target-heatmap pixels (FaRL: 5).
    #[serde(default = "heatmap_radius")]
    pub heatmap_radius: f64,
    /// How the head (and under `fine_tune` the backbone) trains; each value
    /// given replaces FaRL's (see the README).
    #[serde(default)]
    pub training: TrainingParams,
}

fn landmarks_label() -> String {
    visage_core::labels::LANDMARKS.into()
}
fn box_label() -> String {
    visage_core::labels::BOX.into()
}
fn channels() -> i64 {
    768
}
fn dropout() -> f64 {
    0.1
}
fn heatmap_size() -> i64 {
    visage_tasks::heads::heatmap::FARL_HEATMAP_SIZE
}
fn heatmap_radius() -> f64 {
    visage_tasks::heads::heatmap::FARL_HEATMAP_RADIUS
}

impl AlignmentParams {
    /// Refuses values no head can use, naming the key.
    pub fn check(&self) -> Result<()> {
        if self.channels < 1 {
            return Err(Error::msg(format!(
                "alignment: `channels` must be at least 1, got {}",
                self.channels
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::msg(format!(
                "alignment: `dropout` must lie in [0, 1), got {}",
                self.dropout
            )));
        }
        if self.heatmap_size < 1 || self.heatmap_radius.is_nan() || self.heatmap_radius <= 0.0 {
            return Err(Error::msg(format!(
                "alignment: `heatmap_size` and `heatmap_radius` must be positive, got {} and {}",
                self.heatmap_size, self.heatmap_radius
            )));
        }
        if self.threshold.is_some_and(|t| t.is_nan() || t <= 0.0) {
            return Err(Error::msg(
                "alignment: `threshold` must be a positive fraction such as 0.07",
            ));
        }
        Ok(())
    }

    /// The head's configuration.
    pub fn head(&self) -> HeadConfig {
        HeadConfig {
            channels: self.channels,
            dropout: self.dropout,
        }
    }

    /// The training recipe: FaRL's for `protocol` with the given values.
    pub fn training(&self, protocol: Protocol) -> Result<Training> {
        self.training.over(farl_training(protocol))
    }
}

/// FaRL's alignment recipe: AdamW, weight decay 1e-5, head (FPN and
/// UPerNet) at 1e-2, backbone at 1e-4 (`refine_backbone`; frozen under
/// `freeze_backbone`, Visage's `linear_probe`), 150 epochs, and a
/// MultiStepLR whose only milestone (200) lies past the last epoch: a
/// constant rate (`final_lr_factor` 1). FaRL's batch is 5 per GPU on
/// several GPUs with synchronised batch norm; Visage takes 32 on one.
pub fn farl_training(_protocol: Protocol) -> Training {
    Training {
        epochs: 150,
        batch_size: 32,
        optimizer: OptimizerKind::Adamw,
        lr: 1e-2,
        backbone_lr: 1e-4,
        weight_decay: 1e-5,
        layer_decay: 1.0,
        warmup_epochs: 0,
        final_lr_factor: 1.0,
        ..Training::default()
    }
}
