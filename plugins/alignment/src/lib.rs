//! # The `alignment` task plugin
//!
//! Face alignment as FaRL evaluates it (FacePerceiver/FaRL,
//! farl/experiments/face_alignment; `shared/design/tasks.md`): FaRL's dense
//! head (an FPN over ViT blocks, or the stages of a conv backbone, into
//! UPerNet) predicts one heatmap per landmark; the soft-argmax of its
//! sigmoid is the landmark. The loss is heatmap BCE against Gaussian
//! targets (radius 5 on 128 x 128) plus the mean Euclidean point error in
//! `[0, 1]` units, 1:1.
//!
//! - Protocols: `fine_tune` (FaRL's `refine_backbone`: backbone at 1e-4,
//!   head at 1e-2) and `linear_probe` (FaRL's `freeze_backbone`: the same
//!   head on the frozen backbone).
//! - Reads the evaluation's `feature: {blocks: [...]}` maps and the
//!   dataset's landmark layout (`DatasetInfo::landmarks`); a dataset without
//!   one is refused.
//! - Metrics (`nme`, `failure_rate` of `visage_tasks::metrics::alignment`,
//!   registered here): `nme_inter_ocular`, `nme_inter_pupil`, `nme_box`,
//!   `nme_diag`, and `failure_rate_<unit>`, `auc_<unit>` at the dataset's
//!   threshold, on predictions in the images' pixels.
//!
//! Modules: [`params`], [`head`], [`points`], [`units`], [`task`].

#![warn(missing_docs)]

pub mod head;
pub mod params;
pub mod points;
pub mod task;
pub mod units;

pub use params::AlignmentParams;
pub use task::Alignment;

use visage_core::task::Protocol;
use visage_core::{Registry, Result};

/// Registers the task `alignment` and the alignment metrics.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.task(
        "alignment",
        &[Protocol::LinearProbe, Protocol::FineTune],
        Alignment::new,
    )?;
    visage_tasks::metrics::alignment::register(registry)
}

visage_core::declare_plugin!(name: "alignment", register: register);
