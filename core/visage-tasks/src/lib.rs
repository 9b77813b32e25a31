//! The task toolkit: what every downstream face task shares. The task
//! plugins (`plugins/fer`, `au`, `pose`, `fr`, `alignment`, `parsing`) are
//! short because the protocols, heads and metrics live here once.
//!
//! - [`metrics`]: the papers' metrics, as functions and as registrable
//!   [`visage_core::metric::Metric`] components.

#![warn(missing_docs)]

pub mod metrics;
