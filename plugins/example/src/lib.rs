//! # The example plugin
//!
//! A complete, small plugin, kept as the template for plugin authors. It
//! registers one component of each kind that a pretrain-then-evaluate run
//! needs, small enough to train on a CPU in seconds:
//!
//! - dataset `example_shapes`: procedurally drawn shapes (disk, square,
//!   triangle, ring) on noisy backgrounds, labelled `class`;
//! - backbone `example_convnet`: three strided convolutions and a global
//!   average pool;
//! - method `example_rotation`: RotNet's pretext (Gidaris et al., 2018),
//!   predicting which multiple of 90 degrees an image was rotated by;
//! - method `example_byol`: BYOL (Grill et al., 2020), the example of a
//!   method with momentum copies (teachers) and two extra views;
//! - augmentations `example_flip` and `example_noise`;
//! - task `example_classification`: a linear probe on frozen features.

mod augment;
mod byol;
mod convnet;
mod probe;
mod rotation;
mod shapes;

use visage_core::task::Protocol;
use visage_core::{declare_plugin, Registry, Result};

fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the example plugin's components");
    registry.dataset("example_shapes", shapes::Shapes::new)?;
    registry.backbone("example_convnet", convnet::ConvNet::new)?;
    registry.method("example_rotation", rotation::Rotation::new)?;
    registry.method("example_byol", byol::Byol::new)?;
    registry.augmentation("example_flip", augment::Flip::new)?;
    registry.augmentation("example_noise", augment::Noise::new)?;
    registry.task(
        "example_classification",
        &[Protocol::LinearProbe],
        probe::LinearProbe::new,
    )?;
    Ok(())
}

declare_plugin!(name: "example", register: register);
