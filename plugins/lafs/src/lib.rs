//! # The LAFS plugin
//!
//! LAFS (Sun et al., "LAFS: Landmark-based Facial Self-supervised
//! Learning for Face Recognition", CVPR 2024). It registers the backbones
//! LAFS pre-trains, `fvit` ([`fvit::Fvit`], a ViT on patches sampled at
//! landmarks) and `mobilenet_v3` ([`mobilenet_v3::MobileNetV3`], its
//! landmark network), with LAFS's parameter names, and the method `lafs`
//! ([`method::Lafs`]: DINO on the fViT's landmark tokens, with landmark
//! jitter and landmark subsets for local views).

#![warn(missing_docs)]

pub mod fvit;
pub mod method;
pub mod mobilenet_v3;

pub use fvit::{Fvit, FvitParams};
pub use method::{Lafs, LafsParams};
pub use mobilenet_v3::{MobileNetV3, MobileNetV3Params};

use visage_core::{declare_plugin, Registry, Result};

/// Registers the backbones `fvit` and `mobilenet_v3` and the method `lafs` in `registry`:
/// what the runner's plugin loading calls, and what benchmarks and tests
/// that link the crate directly call to build the same components.
pub fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the lafs plugin's components");
    registry.backbone("fvit", |p: FvitParams, ctx| Fvit::new(&ctx.vs, ctx.in_channels, &p))?;
    registry.backbone("mobilenet_v3", |p: MobileNetV3Params, ctx| {
        MobileNetV3::new(&ctx.vs, ctx.in_channels, &p)
    })?;
    registry.method("lafs", Lafs::new)?;
    Ok(())
}

declare_plugin!(name: "lafs", register: register);
