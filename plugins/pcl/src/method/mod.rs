//! The PCL method (`pcl`): its parts, one per file.
//!
//! - [`params`]: sizes, ablation switches and the official code's quirks;
//! - [`projector`]: `exp_fc` and `pose_fc`;
//! - [`decoder`]: the pose-disentangled decoder;
//! - [`mixing`], [`contrastive`]: InfoNCE with Beta-mixed negatives;
//! - [`orthogonal`]: the orthogonal loss;
//! - [`dwa`]: Dynamic Weight Averaging;
//! - [`pcl`]: the method and its three optimiser steps.

pub mod contrastive;
pub mod decoder;
pub mod dwa;
pub mod mixing;
pub mod orthogonal;
pub mod params;
pub mod pcl;
pub mod projector;

pub use params::{DecoderOutput, DwaParams, PclParams};
pub use pcl::{Pcl, Phase};
