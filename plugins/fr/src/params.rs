//! The parameters of the `fr` task and its per-protocol paper defaults.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::labels;
use visage_core::task::Protocol;
use visage_core::{Error, Result};
use visage_tasks::training::{OptimizerKind, Training, TrainingParams};

use crate::landmark_regularisation::LandmarkRegularisationParams;
use crate::margin::MarginKind;
use crate::mixup::MixupParams;
use crate::templates::TemplateParams;

/// Parameters of the `fr` task. Every key is optional.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrParams {
    /// The identity label (fine-tuning's classes; the pairs built on a
    /// dataset without verification pairs).
    #[serde(default = "identity_label")]
    pub identity: String,
    /// The pair label (1 = same identity) of a verification dataset.
    #[serde(default = "same_label")]
    pub same: String,
    /// The fold label of a verification dataset.
    #[serde(default = "fold_label")]
    pub fold: String,
    /// Pairs built from the test split's identities when the dataset has
    /// no verification pairs: cut into 10 folds, each half same, half
    /// different (LFW's 6000 by default).
    #[serde(default = "default_pairs")]
    pub pairs: usize,
    /// Also report `accuracy_cosine`, PCL's fixed-threshold evaluation:
    /// "same" when the cosine similarity exceeds this threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Fine-tuning's margin classifier: `cosface` (LAFS's default) or
    /// `arcface`.
    #[serde(default)]
    pub margin_loss: MarginKind,
    /// The margin classifier's scale `s` (LAFS: 64).
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// The margin `m`; default 0.4 for CosFace (LAFS), 0.5 for ArcFace
    /// (its paper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    /// Width of the embedding layer trained under `fine_tune` (512, the
    /// usual face embedding).
    #[serde(default = "default_embedding")]
    pub embedding_dim: i64,
    /// Few-shot fine-tuning: keep the first `shots` images (in index
    /// order) of each identity of the train split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shots: Option<usize>,
    /// Few-shot fine-tuning: keep the first fraction of the train split's
    /// identities (by identity index), in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<f64>,
    /// Images per forward pass when embedding the test split under
    /// `linear_probe` (under `fine_tune`, `training.batch_size`).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Fine-tuning's recipe over LAFS's defaults (see the README).
    #[serde(default)]
    pub training: TrainingParams,
    /// Mixup of fine-tuning's batches (LAFS: `{alpha: 0.2, prob: 0.1}`);
    /// none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixup: Option<MixupParams>,
    /// LAFS's landmark-position regularisation of fine-tuning (`{}` for
    /// LAFS's schedule); none by default. The backbone needs a landmark
    /// network that fine-tuning trains (fvit: `train_landmarks: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmark_regularisation: Option<LandmarkRegularisationParams>,
    /// IJB-B/C template verification (LAFS): the test split is an `ijb`
    /// set (labels `template`, `media`, `faceness`), scored on the template
    /// pairs of `pairs`; the metrics are TAR at FAR 1e-6 ... 1e-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<TemplateParams>,
}

fn identity_label() -> String {
    labels::IDENTITY.into()
}
fn same_label() -> String {
    labels::SAME.into()
}
fn fold_label() -> String {
    labels::FOLD.into()
}
fn default_pairs() -> usize {
    6000
}
fn default_scale() -> f64 {
    64.0
}
fn default_embedding() -> i64 {
    512
}
fn default_batch() -> usize {
    256
}

impl FrParams {
    /// The margin `m`: the given one, else the margin loss's default.
    pub fn margin(&self) -> f64 {
        self.margin.unwrap_or(self.margin_loss.default_margin())
    }

    /// Refuses values no evaluation can use, naming the key; `protocol`
    /// decides whether the few-shot keys mean anything.
    pub fn check(&self, protocol: Protocol) -> Result<()> {
        let bad = |key: &str, expected: &str, got: String| {
            Err(Error::msg(format!("fr.{key}: expected {expected}, got {got}")))
        };
        if self.pairs < 20 {
            return bad(
                "pairs",
                "at least 20 (10 folds, each half same, half different)",
                self.pairs.to_string(),
            );
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return bad("scale", "a positive number", self.scale.to_string());
        }
        let m = self.margin();
        if !(m.is_finite() && (0.0..std::f64::consts::FRAC_PI_2).contains(&m)) {
            return bad("margin", "a number in [0, pi/2)", m.to_string());
        }
        if self.embedding_dim < 1 {
            return bad("embedding_dim", "at least 1", self.embedding_dim.to_string());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "at least 1", "0".into());
        }
        if self.shots == Some(0) {
            return bad("shots", "at least 1", "0".into());
        }
        if let Some(p) = self.identities {
            if !(p > 0.0 && p <= 1.0) {
                return bad("identities", "a fraction in (0, 1]", p.to_string());
            }
        }
        if let Some(mixup) = &self.mixup {
            mixup.check()?;
        }
        if let Some(landmarks) = &self.landmark_regularisation {
            landmarks.check()?;
        }
        let tuning_only = self.mixup.is_some() || self.landmark_regularisation.is_some();
        if protocol == Protocol::LinearProbe && tuning_only {
            return Err(Error::msg(
                "fr: `mixup` and `landmark_regularisation` change the training of `fine_tune`; \
                 `linear_probe` trains nothing",
            ));
        }
        if protocol == Protocol::LinearProbe && (self.shots.is_some() || self.identities.is_some()) {
            return Err(Error::msg(
                "fr: `shots` and `identities` select the training data of `fine_tune`; \
                 `linear_probe` scores the frozen embedding and trains nothing",
            ));
        }
        Ok(())
    }
}

/// LAFS's fine-tuning recipe (`tasks.md`, `train_largescale.py`): 34
/// epochs of batch 200, AdamW at 1e-3 (before LAFS's batch-size scaling),
/// weight decay 0.1, 5 warm-up epochs then cosine to 1e-6, layer-wise
/// decay 0.58 (which LAFS computes but never applies; Visage applies it).
pub fn fine_tune_defaults() -> Training {
    Training {
        epochs: 34,
        batch_size: 200,
        optimizer: OptimizerKind::Adamw,
        lr: 1e-3,
        backbone_lr: 1e-3,
        weight_decay: 0.1,
        layer_decay: 0.58,
        warmup_epochs: 5,
        final_lr_factor: 1e-6 / 1e-3,
        ..Training::default()
    }
}
