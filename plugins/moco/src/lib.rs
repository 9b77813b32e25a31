//! # The MoCo v3 plugin
//!
//! MoCo v3 (Chen, Xie and He, "An Empirical Study of Training
//! Self-Supervised Vision Transformers", ICCV 2021). It registers the
//! method `moco_v3` ([`MocoV3`]): a projector and a predictor MLP with
//! batch norm ([`visage_core::nn::mlp`]), a momentum encoder (backbone and projector,
//! updated by EMA at a cosine momentum schedule), and the symmetric InfoNCE
//! loss at temperature 0.2 scaled by `2 tau` ([`loss`]), with the frozen
//! random patch projection of the paper as an option for ViTs.

#![warn(missing_docs)]

pub mod loss;
pub mod method;

pub use method::{MocoV3, MocoV3Params};

use visage_core::{declare_plugin, Registry, Result};

fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the moco plugin's components");
    registry.method("moco_v3", MocoV3::new)?;
    Ok(())
}

declare_plugin!(name: "moco", register: register);
