//! # The PCL plugin
//!
//! PCL (Liu et al., "Pose-disentangled Contrastive Learning for
//! Self-supervised Facial Representation", CVPR 2023). It registers the
//! backbone PCL pre-trains, `facecycle` ([`facecycle::FaceCycle`], with the
//! official code's parameter names), and the method `pcl`
//! ([`method::Pcl`]: the pose-disentangled decoder, the orthogonal loss,
//! face-aware and pose contrastive learning with Beta-mixed negatives and
//! Dynamic Weight Averaging, in three optimiser steps per iteration).

#![warn(missing_docs)]

pub mod facecycle;
pub mod method;

pub use facecycle::{FaceCycle, FaceCycleParams};
pub use method::{Pcl, PclParams};

use visage_core::{declare_plugin, Registry, Result};

/// Registers the backbone `facecycle` and the method `pcl` in `registry`:
/// what the runner's plugin loading calls, and what benchmarks and tests
/// that link the crate directly call to build the same components.
pub fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the pcl plugin's components");
    registry.backbone("facecycle", |p: FaceCycleParams, ctx| {
        FaceCycle::new(&ctx.vs, ctx.in_channels, &p)
    })?;
    registry.method("pcl", Pcl::new)?;
    Ok(())
}

declare_plugin!(name: "pcl", register: register);
