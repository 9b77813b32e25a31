//! # The FER plugin: facial expression recognition
//!
//! Registers the task `fer`: classify each face's expression (RAF-DB basic,
//! FER-2013, AffectNet, synthface) from a backbone's representation.
//!
//! - Protocols: `linear_probe` (PCL's: frozen backbone, a linear layer on
//!   the flattened feature, Adam lr 1e-2, cosine over 300 epochs, batch
//!   256) and `fine_tune` (the backbone's own copy trained with the head:
//!   AdamW, backbone lr 1e-4 with layer-wise decay, head lr 1e-3, warm-up
//!   then cosine); defaults in [`params::defaults`], every value
//!   overridable under `training`.
//! - Heads ([`head`]): `linear` (PCL's probe, weights `N(0, 0.01)`, bias 0)
//!   or `bn_linear`, trained with cross-entropy.
//! - Metrics (the defaults unless the experiment names its own): top-1
//!   `accuracy` (core's built-in) and `mean_class_accuracy` (the mean of
//!   per-class recalls, `visage_tasks::metrics::classification`), both of
//!   the last epoch, in percent. The confusion matrix (rows = true class)
//!   goes to the evaluation's folder as `confusion_matrix.json` and
//!   `confusion_matrix.png` ([`confusion`], [`plot`]).
//! - The dataset must carry the label (`expression` by default) and name
//!   its classes (`DatasetInfo::classes`); the task refuses it otherwise.
//!
//! See README.md for the paper sources and deviations.

#![warn(missing_docs)]

pub mod confusion;
pub mod head;
pub mod params;
pub mod plot;
pub mod task;

pub use confusion::ConfusionMatrix;
pub use params::{FerParams, HeadKind};
pub use task::Fer;

use visage_core::task::Protocol;
use visage_core::{declare_plugin, Registry, Result};

/// Registers the task `fer` and the classification metrics
/// (`mean_class_accuracy`; top-1 `accuracy` is core's).
pub fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the fer plugin's components");
    registry.task("fer", &[Protocol::LinearProbe, Protocol::FineTune], Fer::new)?;
    visage_tasks::metrics::classification::register(registry)
}

declare_plugin!(name: "fer", register: register);
