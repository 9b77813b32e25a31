//! # The MCF plugin
//!
//! Mask Contrastive Face (Wang et al., "Toward High Quality Facial
//! Representation Learning", ACM MM 2023). It registers one method, `mcf`
//! ([`Mcf`]): a ViT online encoder on 25% of the patches, MAE's decoder
//! ([`decoder`]) whose pseudo image a frozen teacher compares with the
//! original at four depths ([`mim`]), and a mask-contrastive InfoNCE
//! between two random masks of one image against an EMA target
//! ([`visage_core::nn::contrastive`], with MoCo v3's MLPs, [`visage_core::nn::mlp`]).

#![warn(missing_docs)]

pub mod decoder;
pub mod method;
pub mod mim;

pub use method::{Masks, Mcf, McfParams, Mode};

use visage_core::{declare_plugin, Registry, Result};

/// Registers the method `mcf` in `registry`:
/// what the runner's plugin loading calls, and what benchmarks and tests
/// that link the crate directly call to build the same components.
pub fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the mcf plugin's components");
    registry.method("mcf", Mcf::new)?;
    Ok(())
}

declare_plugin!(name: "mcf", register: register);
