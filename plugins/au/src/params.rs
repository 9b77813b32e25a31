//! The parameters of the `au` task and its default training recipes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::task::Protocol;
use visage_tasks::training::{OptimizerKind, Training, TrainingParams};

/// Parameters of the `au` task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuParams {
    /// The label holding the 0/1 occurrence of each action unit (`au`,
    /// float `[K]`, named by the dataset's `action_units`).
    #[serde(default = "default_label")]
    pub label: String,
    /// Subject-exclusive cross-validation folds over the train split, for
    /// datasets whose samples carry a `subject` label (the DISFA and BP4D
    /// convention is 3, the default for such datasets). 1 trains on the
    /// train split and scores the test split; without subjects only 1 is
    /// possible, and it is the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub folds: Option<usize>,
    /// The training recipe; each value given replaces the protocol's
    /// default ([`defaults`]).
    #[serde(default)]
    pub training: TrainingParams,
}

fn default_label() -> String {
    visage_core::labels::AU.into()
}

/// The folds of a dataset with subjects when `folds` is not given.
pub const DEFAULT_FOLDS: usize = 3;

/// The default recipe of each protocol. No official AU code exists in the
/// three papers: the linear probe follows PCL's BatchNorm + linear head
/// recipe for pose (AdamW lr 1e-3, PyTorch's weight decay 0.01, cosine
/// over 300 epochs, batch 128); fine-tuning trains the backbone at a tenth
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
