//! The parameters of the `pose` task and its default training recipes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::task::Protocol;
use visage_tasks::training::{OptimizerKind, Training, TrainingParams};

/// Parameters of the `pose` task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoseParams {
    /// The label holding yaw, pitch and roll in degrees (`pose`, float `[3]`).
    #[serde(default = "default_label")]
    pub label: String,
    /// Leave out the samples of both splits with any |angle| above this many
    /// degrees. None by default; the 300W-LP / AFLW2000 protocol (PCL) sets
    /// 99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_angle: Option<f64>,
    /// The training recipe; each value given replaces the protocol's
    /// default ([`defaults`]).
    #[serde(default)]
    pub training: TrainingParams,
}

fn default_label() -> String {
    visage_core::labels::POSE.into()
}

/// The default recipe of each protocol. `linear_probe` is PCL's
/// (configs/remote_PCL_linear_eval_pose.yaml, main_pose.py): AdamW lr 1e-3
/// with PyTorch's weight decay 0.01, cosine over 300 epochs, batch 128.
/// PCL has no pose fine-tuning: `fine_tune` trains the backbone at a tenth
/// of the head's learning rate for 30 epochs.
pub fn defaults(protocol: Protocol) -> Training {
    let probe = Training {
        epochs: 300,
        batch_size: 128,
        optimizer: OptimizerKind::Adamw,
        lr: 1e-3,
        weight_decay: 0.01,
        ..Training::default()
    };
    match protocol {
        Protocol::LinearProbe => probe,
        Protocol::FineTune => Training {
            epochs: 30,
            backbone_lr: 1e-4,
            ..probe
        },
    }
}
