//! # The PCL plugin
//!
//! PCL (Liu et al., "Pose-disentangled Contrastive Learning for
//! Self-supervised Facial Representation", CVPR 2023). For now it registers
//! the backbone PCL pre-trains, `facecycle` ([`facecycle::FaceCycle`], with
//! the official code's parameter names); the method itself comes in a later
//! issue.

#![warn(missing_docs)]

pub mod facecycle;

pub use facecycle::{FaceCycle, FaceCycleParams};

use visage_core::{declare_plugin, Registry, Result};

fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the pcl plugin's components");
    registry.backbone("facecycle", |p: FaceCycleParams, ctx| {
        FaceCycle::new(&ctx.vs, ctx.in_channels, &p)
    })?;
    Ok(())
}

declare_plugin!(name: "pcl", register: register);
