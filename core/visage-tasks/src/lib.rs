//! The task toolkit: what every downstream face task shares. The task
//! plugins (`plugins/fer`, `au`, `pose`, `fr`, `alignment`, `parsing`) are
//! short because the protocols, heads and metrics live here once.
//!
//! - [`training`]: the `training` parameters (epochs, optimiser, learning
//!   rates, layer decay, validation split, `best_on_test`) over a task's
//!   paper defaults.
//! - [`heads`]: the [`heads::Head`] trait, the vector heads (linear,
//!   BatchNorm + linear) and FaRL's dense head (FPN + UPerNet) for
//!   alignment and parsing, heatmaps with soft-argmax, and their losses.
//! - [`split`]: the seeded validation split.
//! - [`fit`]: the two protocols, `linear_probe` (frozen backbone, cached
//!   features) and `fine_tune` (the task's own copy of the backbone),
//!   honest last-epoch metrics.
//! - [`metrics`]: the papers' metrics, as functions and as registrable
//!   [`visage_core::metric::Metric`] components.

#![warn(missing_docs)]

pub mod fit;
pub mod heads;
pub mod image_size;
pub mod labels;
pub mod metrics;
pub mod split;
pub mod training;
