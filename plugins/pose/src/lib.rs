//! # The `pose` task plugin: head pose estimation
//!
//! Regresses the head's yaw, pitch and roll in degrees, as PCL evaluates
//! it (train 300W-LP, test AFLW2000): a `BatchNorm1d` + linear head (to 3
//! values) on the backbone's flattened output, trained with an L1 loss in
//! degrees.
//!
//! - Protocols: `linear_probe` (PCL's: frozen backbone, AdamW lr 1e-3,
//!   cosine over 300 epochs, batch 128) and `fine_tune` (the task's own
//!   copy of the backbone), through [`visage_tasks::fit`]; the result is
//!   the last epoch's.
//! - `max_angle`: leaves out the samples of either split with any |angle|
//!   above it (the AFLW2000 protocol sets 99; no filter by default).
//! - Metrics (defaults, `visage_tasks::metrics::pose`): the mean absolute
//!   error in degrees of yaw, pitch and roll (`mae_yaw`, `mae_pitch`,
//!   `mae_roll`) and their mean `mae_mean` (the headline; lower is better).

#![warn(missing_docs)]

pub mod filter;
pub mod params;
pub mod task;

pub use params::PoseParams;
pub use task::PoseTask;

use visage_core::task::Protocol;
use visage_core::{declare_plugin, Registry, Result};

/// Registers the task `pose` and the metric `pose_mae`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.task("pose", &[Protocol::LinearProbe, Protocol::FineTune], PoseTask::new)?;
    visage_tasks::metrics::pose::register(registry)
}

declare_plugin!(name: "pose", register: register);
