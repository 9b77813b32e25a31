//! The parameters of the `parsing` task and its defaults, FaRL's recipe
//! (FacePerceiver/FaRL, farl/experiments/face_parsing: trainers/lapa_farl.yaml,
//! optimizers/refine_backbone.yaml and freeze_backbone.yaml).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::task::Protocol;
use visage_core::{Error, Result};
use visage_tasks::training::{OptimizerKind, Training, TrainingParams};

use crate::head::HeadConfig;

/// Parameters of `parsing`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParsingParams {
    /// The label holding the class map `[H, W]` (int64 class ids).
    #[serde(default = "parsing_label")]
    pub label: String,
    /// Channels inside UPerNet (FaRL: 768, ViT-B's width).
    #[serde(default = "channels")]
    pub channels: i64,
    /// Channel dropout before the classifier (FaRL: 0.1).
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// How the head (and under `fine_tune` the backbone) trains; each value
    /// given replaces FaRL's (see the README).
    #[serde(default)]
    pub training: TrainingParams,
}

fn parsing_label() -> String {
    visage_core::labels::PARSING.into()
}
fn channels() -> i64 {
    768
}
fn dropout() -> f64 {
    0.1
}

impl ParsingParams {
    /// Refuses values no head can use, naming the key.
    pub fn check(&self) -> Result<()> {
        if self.channels < 1 {
            return Err(Error::msg(format!(
                "parsing: `channels` must be at least 1, got {}",
                self.channels
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::msg(format!(
                "parsing: `dropout` must lie in [0, 1), got {}",
                self.dropout
            )));
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

/// FaRL's LaPa parsing recipe: AdamW, weight decay 1e-5, head (FPN and
/// UPerNet) at 1e-3, backbone at 1e-4 (`refine_backbone`; frozen under
/// `freeze_backbone`, Visage's `linear_probe`), 300 epochs, and a
/// MultiStepLR whose only milestone (200 epochs) divides the rate by 10:
/// here a cosine decay to 0.1 instead (`final_lr_factor`). FaRL's batch is
/// 5 per GPU on several GPUs with synchronised batch norm; Visage takes 32
/// on one.
pub fn farl_training(_protocol: Protocol) -> Training {
    Training {
        epochs: 300,
        batch_size: 32,
        optimizer: OptimizerKind::Adamw,
        lr: 1e-3,
        backbone_lr: 1e-4,
        weight_decay: 1e-5,
        layer_decay: 1.0,
        warmup_epochs: 0,
        final_lr_factor: 0.1,
        ..Training::default()
    }
}
