//! # The `parsing` task plugin
//!
//! Face parsing as FaRL evaluates it (FacePerceiver/FaRL,
//! farl/experiments/face_parsing; `shared/design/tasks.md`): FaRL's dense
//! head (an FPN over ViT blocks, or the stages of a conv backbone, into
//! UPerNet) predicts one logit map per class, upsampled to the input size;
//! the loss is the pixel cross-entropy.
//!
//! - Protocols: `fine_tune` (FaRL's `refine_backbone`: backbone at 1e-4,
//!   head at 1e-3) and `linear_probe` (FaRL's `freeze_backbone`: the same
//!   head on the frozen backbone).
//! - Reads the evaluation's `feature: {blocks: [...]}` maps and the
//!   dataset's class names (`DatasetInfo::parsing_classes`); a dataset
//!   without a `parsing` label is refused.
//! - Metrics (`parsing_f1` of `visage_tasks::metrics::parsing`, registered
//!   here), on the predicted class maps of the whole test split, one
//!   confusion matrix: `f1/<class>`, `fg_mean` (mean F1 of every class but
//!   background), `miou`.
//!
//! Modules: [`params`], [`head`], [`task`].

#![warn(missing_docs)]

pub mod head;
pub mod params;
pub mod task;

pub use params::ParsingParams;
pub use task::Parsing;

use visage_core::task::Protocol;
use visage_core::{Registry, Result};

/// Registers the task `parsing` and the parsing metric.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.task("parsing", &[Protocol::LinearProbe, Protocol::FineTune], Parsing::new)?;
    visage_tasks::metrics::parsing::register(registry)
}

visage_core::declare_plugin!(name: "parsing", register: register);
