//! # The LAFS plugin
//!
//! LAFS (Sun et al., "LAFS: Landmark-based Facial Self-supervised
//! Learning for Face Recognition", CVPR 2024). For now it registers the
//! backbones LAFS pre-trains: `fvit` ([`fvit::Fvit`], a ViT on patches
//! sampled at landmarks) and `mobilenet_v3` ([`mobilenet_v3::MobileNetV3`],
//! its landmark network), with LAFS's parameter names; the method itself
//! comes in a later issue.

#![warn(missing_docs)]

pub mod fvit;
pub mod mobilenet_v3;

pub use fvit::{Fvit, FvitParams};
pub use mobilenet_v3::{MobileNetV3, MobileNetV3Params};

use visage_core::{declare_plugin, Registry, Result};

fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the lafs plugin's components");
    registry.backbone("fvit", |p: FvitParams, ctx| Fvit::new(&ctx.vs, ctx.in_channels, &p))?;
    registry.backbone("mobilenet_v3", |p: MobileNetV3Params, ctx| {
        MobileNetV3::new(&ctx.vs, ctx.in_channels, &p)
    })?;
    Ok(())
}

declare_plugin!(name: "lafs", register: register);
