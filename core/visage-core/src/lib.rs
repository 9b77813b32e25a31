//! # visage-core
//!
//! The plugin API of Visage: the component kinds a plugin can register
//! (backbones, methods, tasks, datasets, augmentations, metrics, optimisers,
//! schedulers), the [`Registry`] they go into, and the versioned
//! [`plugin::PluginDeclaration`] every plugin exports.
//!
//! A plugin is a `cdylib` crate:
//!
//! ```ignore
//! use visage_core::{declare_plugin, Registry, Result, NoParams};
//!
//! fn register(registry: &mut Registry) -> Result<()> {
//!     registry.backbone("tiny", |p: TinyParams, ctx| Tiny::new(&ctx.vs, ctx.in_channels, &p))?;
//!     Ok(())
//! }
//!
//! declare_plugin!(name: "tiny", register: register);
//! ```
//!
//! See `plugins/example` for a complete one.

#![warn(missing_docs)]

pub mod abi;
pub mod amp;
pub mod augment;
pub mod builtin;
pub mod components;
pub mod data;
pub mod error;
pub mod features;
pub mod fs;
pub mod guard;
pub mod labels;
pub mod nn;
pub mod optim;
pub mod params;
mod pixels;
pub mod plugin;
pub mod registry;
pub mod rng;
pub mod sample;
pub mod scalars;
pub mod schedule;
pub mod teacher;
pub mod train;
mod version;

pub use abi::{AbiFingerprint, ABI};
pub use components::{augmentation, backbone, dataset, method, metric, optimizer, scheduler, task, Kind};
pub use error::{Error, ParamsError, Result};
pub use params::{NoParams, Params};
pub use registry::{ComponentInfo, Registry};
pub use sample::{Batch, Sample};
pub use version::{CORE_VERSION, DECLARATION_VERSION, RUSTC_VERSION, TCH_VERSION, TORCH_VERSION};

/// Re-exported so that plugins use exactly the host's tch.
pub use tch;
/// Re-exported so that plugins log through the host's subscriber.
pub use tracing;
