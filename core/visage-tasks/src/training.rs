//! How a task trains its head (and, under `fine_tune`, its copy of the
//! backbone): the `training` parameters every task takes, over defaults
//! that each task sets from its paper.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::optim::{build_groups, Adam, AdamConfig, BackboneLayers, GroupSpec, Sgd, SgdConfig};
use visage_core::optimizer::Optimizer;
use visage_core::schedule::{Schedule, Shape};
use visage_core::scheduler::Scheduler;
use visage_core::tch::nn;
use visage_core::{Error, Result};

/// The optimiser of a task's training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam, L2 weight decay.
    Adam,
    /// AdamW, decoupled weight decay.
    Adamw,
    /// SGD with momentum.
    Sgd,
}

/// A task's training recipe, every value set (see [`TrainingParams`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Training {
    /// Passes over the training split.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// Learning rate of the head.
    pub lr: f64,
    /// Learning rate of the backbone under `fine_tune`.
    pub backbone_lr: f64,
    /// Weight decay (not of biases and normalisation parameters).
    pub weight_decay: f64,
    /// Layer-wise learning-rate decay of the backbone under `fine_tune`
    /// (BEiT): layer `i` of `L` gets `decay^(L + 1 - i)`; 1 turns it off.
    pub layer_decay: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Epochs of linear warm-up before the cosine decay.
    pub warmup_epochs: usize,
    /// The learning rate's factor at the end of the cosine decay.
    pub final_lr_factor: f64,
    /// Fraction of the training split held out (seeded) as a validation
    /// split; with one, `selected_by_val/...` reports the test metrics of
    /// the epoch that scored best on it. 0: none.
    pub validation: f64,
    /// Also score the test split after every epoch and report the best
    /// epoch's metrics as `best_on_test/...` (what PCL and FaRL report;
    /// the result stays the last epoch's).
    pub best_on_test: bool,
    /// Under `linear_probe` without train augmentations, extract the frozen
    /// features once and train the head on them; `false` re-runs the frozen
    /// backbone every epoch, as the papers' code does (same result, slower).
    pub cache_features: bool,
}

impl Default for Training {
    fn default() -> Self {
        Training {
            epochs: 30,
            batch_size: 128,
            optimizer: OptimizerKind::Adamw,
            lr: 1e-3,
            backbone_lr: 1e-4,
            weight_decay: 1e-4,
            layer_decay: 1.0,
            momentum: 0.9,
            warmup_epochs: 0,
            final_lr_factor: 0.0,
            validation: 0.0,
            best_on_test: false,
            cache_features: true,
        }
    }
}

/// The `training` parameters of a task: each value given replaces the
/// task's default (its paper's recipe, in the task's README).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingParams {
    /// Passes over the training split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Samples per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// `adam`, `adamw` or `sgd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate of the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Learning rate of the backbone under `fine_tune`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_lr: Option<f64>,
    /// Weight decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Layer-wise learning-rate decay of the backbone (1: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_decay: Option<f64>,
    /// SGD momentum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// Epochs of linear warm-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_epochs: Option<usize>,
    /// The learning rate's factor at the end of the cosine decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_lr_factor: Option<f64>,
    /// Fraction of train held out for epoch selection (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<f64>,
    /// Also report the best epoch on the test split, as `best_on_test/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_on_test: Option<bool>,
    /// Train a frozen probe on features extracted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_features: Option<bool>,
}

impl TrainingParams {
    /// The recipe: `defaults` with every given value replaced, checked.
    pub fn over(&self, defaults: Training) -> Result<Training> {
        let d = defaults;
        let t = Training {
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            optimizer: self.optimizer.unwrap_or(d.optimizer),
            lr: self.lr.unwrap_or(d.lr),
            backbone_lr: self.backbone_lr.unwrap_or(d.backbone_lr),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            layer_decay: self.layer_decay.unwrap_or(d.layer_decay),
            momentum: self.momentum.unwrap_or(d.momentum),
            warmup_epochs: self.warmup_epochs.unwrap_or(d.warmup_epochs),
            final_lr_factor: self.final_lr_factor.unwrap_or(d.final_lr_factor),
            validation: self.validation.unwrap_or(d.validation),
            best_on_test: self.best_on_test.unwrap_or(d.best_on_test),
            cache_features: self.cache_features.unwrap_or(d.cache_features),
        };
        t.check()?;
        Ok(t)
    }
}

impl Training {
    /// Refuses values no training can use, naming the key.
    pub fn check(&self) -> Result<()> {
        let bad = |key: &str, expected: &str, got: String| {
            Err(Error::msg(format!("training.{key}: expected {expected}, got {got}")))
        };
        if self.epochs == 0 {
            return bad("epochs", "at least 1", "0".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "at least 1", "0".into());
        }
        for (key, value) in [("lr", self.lr), ("backbone_lr", self.backbone_lr)] {
            if !(value.is_finite() && value > 0.0) {
                return bad(key, "a positive number", value.to_string());
            }
        }
        for (key, value) in [("weight_decay", self.weight_decay), ("momentum", self.momentum)] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(key, "a non-negative number", value.to_string());
            }
        }
        if !(self.layer_decay > 0.0 && self.layer_decay <= 1.0) {
            return bad("layer_decay", "a number in (0, 1]", self.layer_decay.to_string());
        }
        if !(0.0..=1.0).contains(&self.final_lr_factor) {
            return bad(
                "final_lr_factor",
                "a number in [0, 1]",
                self.final_lr_factor.to_string(),
            );
        }
        if !(0.0..0.9).contains(&self.validation) {
            return bad("validation", "a fraction in [0, 0.9)", self.validation.to_string());
        }
        if self.warmup_epochs >= self.epochs {
            return bad(
                "warmup_epochs",
                &format!("fewer than epochs ({})", self.epochs),
                self.warmup_epochs.to_string(),
            );
        }
        Ok(())
    }

    /// The optimiser of the trainable variables of `vs`. With `backbone`
    /// (its var-store prefix and the backbone), that part learns at
    /// `backbone_lr` with layer-wise decay; the rest (the head) at `lr`.
    pub fn optimizer(
        &self,
        vs: &nn::VarStore,
        backbone: Option<(&str, &dyn visage_core::backbone::Backbone)>,
    ) -> Result<Box<dyn Optimizer>> {
        let mut spec = GroupSpec {
            weight_decay: self.weight_decay,
            decay_norm_and_bias: false,
            layer_decay: None,
            lr_multipliers: Default::default(),
        };
        let layers = backbone.map(|(prefix, backbone)| {
            spec.lr_multipliers
                .insert(prefix.to_string(), self.backbone_lr / self.lr);
            spec.layer_decay = (self.layer_decay < 1.0).then_some(self.layer_decay);
            BackboneLayers {
                prefix,
                layers: backbone.layers(),
            }
        });
        let groups = build_groups(vs, &spec, layers)?;
        Ok(match self.optimizer {
            OptimizerKind::Sgd => Box::new(Sgd::new(
                SgdConfig {
                    lr: self.lr,
                    momentum: self.momentum,
                    nesterov: false,
                },
                groups,
            )),
            kind => Box::new(Adam::new(
                AdamConfig {
                    lr: self.lr,
                    betas: [0.9, 0.999],
                    eps: 1e-8,
                    decoupled: kind == OptimizerKind::Adamw,
                },
                groups,
            )),
        })
    }

    /// Warm-up then cosine decay to `final_lr_factor`, over `steps_per_epoch`
    /// steps an epoch.
    pub fn scheduler(&self, steps_per_epoch: u64) -> Box<dyn Scheduler> {
        Box::new(CosineLr(Schedule::Shaped(Shape::Cosine {
            start: 1.0,
            end: self.final_lr_factor,
            warmup_steps: self.warmup_epochs as u64 * steps_per_epoch,
        })))
    }
}

/// The learning-rate factor of a [`Schedule`].
struct CosineLr(Schedule);

impl Scheduler for CosineLr {
    fn factor(&self, step: u64, total: u64) -> Result<f64> {
        Ok(self.0.value(step, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_replace_the_task_defaults_and_bad_ones_name_their_key() {
        let params: TrainingParams = serde_json::from_str(r#"{"epochs": 5, "lr": 0.01}"#).unwrap();
        let defaults = Training {
            batch_size: 256,
            ..Training::default()
        };
        let t = params.over(defaults).unwrap();
        assert_eq!((t.epochs, t.lr, t.batch_size), (5, 0.01, 256));
        let bad: TrainingParams = serde_json::from_str(r#"{"layer_decay": 1.5}"#).unwrap();
        let err = bad.over(Training::default()).unwrap_err().to_string();
        assert_eq!(err, "training.layer_decay: expected a number in (0, 1], got 1.5");
        let warm: TrainingParams = serde_json::from_str(r#"{"epochs": 2, "warmup_epochs": 2}"#).unwrap();
        assert!(warm
            .over(Training::default())
            .unwrap_err()
            .to_string()
            .contains("fewer than epochs (2)"));
        assert!(serde_json::from_str::<TrainingParams>(r#"{"epoch": 5}"#).is_err());
    }

    #[test]
    fn the_schedule_warms_up_then_decays_to_the_final_factor() {
        let t = Training {
            epochs: 4,
            warmup_epochs: 1,
            final_lr_factor: 0.1,
            ..Training::default()
        };
        let s = t.scheduler(10);
        assert!((s.factor(0, 40).unwrap() - 0.1).abs() < 1e-12);
        assert!((s.factor(9, 40).unwrap() - 1.0).abs() < 1e-12);
        assert!((s.factor(40, 40).unwrap() - 0.1).abs() < 1e-12);
    }
}
