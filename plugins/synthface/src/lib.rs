//! # The synthface plugin
//!
//! Registers the dataset `synthface`: procedurally rendered faces with exact
//! ground truth for identity, expression, action units, head pose,
//! iBUG-68 landmarks with visibility, and LaPa parsing. The renderer is pure
//! Rust and deterministic; [`render::render`] is a pure function of
//! `(params, seed, split, index)` that exporters can call without tch.
//!
//! Modules, one concept each: [`params`], [`identity`], [`action_units`],
//! [`expression`], [`pose`], [`face_model`], [`furrows`], [`shading`], [`nuisance`],
//! [`raster`], [`render`], [`dataset`]; [`math`] holds the small
//! platform-independent numerics.

#![warn(missing_docs)]

pub mod action_units;
pub mod dataset;
pub mod expression;
pub mod face_model;
pub mod furrows;
pub mod identity;
pub mod learnability;
pub mod math;
pub mod nuisance;
pub mod params;
pub mod pose;
pub mod raster;
pub mod render;
pub mod shading;

#[cfg(test)]
mod tests;

pub use params::SynthFaceParams;
pub use render::{render, Face, Scene};

use visage_core::{declare_plugin, Registry, Result};

fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the synthface plugin's components");
    registry.dataset("synthface", dataset::SynthFace::new)?;
    Ok(())
}

declare_plugin!(name: "synthface", register: register);
