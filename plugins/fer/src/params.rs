//! The parameters of the `fer` task and its training defaults per protocol.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::task::Protocol;
use visage_tasks::training::{OptimizerKind, Training, TrainingParams};

/// Parameters of the `fer` task. Every field is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FerParams {
    /// The expression label: an int64 class index per sample, naming one
    /// of the dataset's `classes`.
    #[serde(default = "expression_label")]
    pub label: String,
    /// The head on the backbone's (flattened) feature.
    #[serde(default)]
    pub head: HeadKind,
    /// Training recipe; each value given replaces the protocol's default
    /// ([`defaults`]).
    #[serde(default)]
    pub training: TrainingParams,
}

impl Default for FerParams {
    fn default() -> Self {
        FerParams {
            label: expression_label(),
            head: HeadKind::default(),
            training: TrainingParams::default(),
        }
    }
}

fn expression_label() -> String {
    visage_core::labels::EXPRESSION.into()
}

/// The classifier on the flattened feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// PCL's probe: `Linear(feature -> classes)`, weights `N(0, 0.01)`, bias 0.
    #[default]
    Linear,
    /// `BatchNorm1d` then `Linear` (PyTorch's default initialisation).
    BnLinear,
}

/// The training defaults of `protocol`.
///
/// - `linear_probe`: PCL's FER probe (DreamMr/PCL): Adam, lr 1e-2, no
///   weight decay, cosine over 300 epochs to 0, batch 256.
/// - `fine_tune`: PCL publishes no FER fine-tuning recipe; Visage's is the
///   usual one for fine-tuning a self-supervised backbone (BEiT, MAE):
///   AdamW, head lr 1e-3, backbone lr 1e-4 with layer-wise decay 0.75,
///   weight decay 0.05, 5 warm-up epochs then cosine to 0 over 50 epochs,
///   batch 64.
pub fn defaults(protocol: Protocol) -> Training {
    match protocol {
        Protocol::LinearProbe => Training {
            epochs: 300,
            batch_size: 256,
            optimizer: OptimizerKind::Adam,
            lr: 1e-2,
            weight_decay: 0.0,
            warmup_epochs: 0,
            final_lr_factor: 0.0,
            ..Training::default()
        },
        Protocol::FineTune => Training {
            epochs: 50,
            batch_size: 64,
            optimizer: OptimizerKind::Adamw,
            lr: 1e-3,
            backbone_lr: 1e-4,
            weight_decay: 0.05,
            layer_decay: 0.75,
            warmup_epochs: 5,
            final_lr_factor: 0.0,
            ..Training::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_and_given_values_replace_them() {
        let p: FerParams = serde_json::from_str(r#"{"training": {"epochs": 3}}"#).unwrap();
        assert_eq!(p.label, "expression");
        assert_eq!(p.head, HeadKind::Linear);
        let probe = p.training.over(defaults(Protocol::LinearProbe)).unwrap();
        assert_eq!(
            (probe.epochs, probe.batch_size, probe.optimizer, probe.lr),
            (3, 256, OptimizerKind::Adam, 1e-2)
        );
        let tune = FerParams::default()
            .training
            .over(defaults(Protocol::FineTune))
            .unwrap();
        assert_eq!(
            (tune.lr, tune.backbone_lr, tune.layer_decay, tune.warmup_epochs),
            (1e-3, 1e-4, 0.75, 5)
        );
        assert!(serde_json::from_str::<FerParams>(r#"{"lable": "x"}"#).is_err());
        let bn: FerParams = serde_json::from_str(r#"{"head": "bn_linear"}"#).unwrap();
        assert_eq!(bn.head, HeadKind::BnLinear);
    }
}
