//! Task heads: the [`Head`] trait every task trains through
//! [`crate::fit`], the vector heads of PCL ([`vector`]: linear, BatchNorm +
//! linear), and FaRL's dense head for face alignment and face parsing
//! (FacePerceiver/FaRL, farl/network and farl/experiments): the backbone's
//! maps made a pyramid ([`fpn`]), UPerNet ([`uper`]) to one map per
//! landmark or class ([`dense`]), sigmoid heatmaps and soft-argmax for
//! landmarks ([`heatmap`], in the coordinates of [`coords`]) and upsampled
//! logits with pixel cross-entropy for parsing ([`parsing`]).
//!
//! Deviations from FaRL, all deliberate:
//! - batch norm is per process (FaRL: `SyncBatchNorm` over its GPUs);
//! - only the patch-16/14 ViT pyramid (FaRL also has one for patch 8);
//! - the Gaussian targets are computed with tensors instead of FaRL's CUDA
//!   `p2i` kernel (same values: truncated at the radius, sigma = radius/4,
//!   max over points, which for one point per map is the point's own);
//! - conv backbones take the same head on their stages (FaRL has no conv
//!   backbone), with the identity as pyramid.

use visage_core::tch::Tensor;

/// A task head: what the task trains on the tensors the backbone gives
/// ([`visage_core::features::Feature::read`]: one output, or one map per
/// block).
pub trait Head {
    /// The head's outputs (logits, angles, heatmaps...) for a batch.
    fn forward(&self, inputs: &[Tensor], train: bool) -> Tensor;
}

mod conv_module;
pub mod coords;
pub mod dense;
pub mod fpn;
pub mod heatmap;
pub mod parsing;
pub mod uper;
pub mod vector;

pub use conv_module::ConvBnRelu;
pub use dense::{channels_at, pyramid, DenseHead};
pub use fpn::{vit_block_indices, Pyramid, VitFpn};
pub use heatmap::{gaussian_heatmaps, heatmap_points, soft_argmax, AlignmentLoss, AlignmentLosses};
pub use parsing::{pixel_cross_entropy, upsample_logits};
pub use uper::UperHead;
pub use vector::{flat_dim, BnLinearHead, LinearHead};
