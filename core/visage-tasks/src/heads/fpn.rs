//! FaRL's small feature pyramid for a plain ViT, whose blocks all give maps
//! on one grid (1/16 of the image for patch 16): four chosen blocks become
//! four levels at 1/4, 1/8, 1/16 and 1/32 (the strides of a ResNet's
//! stages), so that one UPerNet head serves both kinds of backbone.
//!
//! As FaRL's `_make_fpns` for patches 16 and 14 (farl/network/transformers.py),
//! with its parameter names under `fpns`:
//! - level 0 (`fpns.0`): deconv 2x2 stride 2, batch norm, GELU (exact erf),
//!   deconv 2x2 stride 2: x4;
//! - level 1 (`fpns.1`): deconv 2x2 stride 2: x2;
//! - level 2: identity;
//! - level 3: max-pool 2x2 stride 2: x0.5.
//!
//! The deconvolutions keep the channels of their level. Conv backbones, whose
//! stage outputs are a pyramid already, take [`Pyramid::Stages`]: the
//! identity on the stages.

use tch::nn;
use tch::Tensor;

use visage_core::{Error, Result};

use super::conv_module::batch_norm_config;

/// How the backbone's maps become the pyramid the head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pyramid {
    /// Four maps on one grid (ViT blocks), turned into four levels by
    /// [`VitFpn`].
    Vit,
    /// Maps that are a pyramid already (ResNet stages, finest first): used
    /// as they are.
    Stages,
}

/// FaRL's blocks as 0-based indices for a ViT of `depth` blocks: the
/// blocks (1-based) at 1/3, 1/2, 2/3 and all of the depth, rounded down and
/// at least the first block, which are FaRL's choices for ViT-B (4, 6, 8,
/// 12) and ViT-L (8, 12, 16, 24); ViT-H (32 blocks) takes FaRL's own
/// 9, 15, 21, 32.
pub fn vit_block_indices(depth: usize) -> Result<[usize; 4]> {
    match depth {
        0 => Err(Error::msg(
            "a dense head needs a ViT with at least one block, got depth 0",
        )),
        32 => Ok([8, 14, 20, 31]),
        d => Ok([d / 3, d / 2, 2 * d / 3, d].map(|b| b.max(1) - 1)),
    }
}

/// Level 0's two deconvolutions with batch norm and GELU between them.
#[derive(Debug)]
struct UpFour {
    deconv1: nn::ConvTranspose2D,
    bn: nn::BatchNorm,
    deconv2: nn::ConvTranspose2D,
}

/// FaRL's pyramid from four same-grid ViT maps.
#[derive(Debug)]
pub struct VitFpn {
    up4: UpFour,
    up2: nn::ConvTranspose2D,
}

/// A 2x2 stride-2 transposed convolution keeping `c` channels, initialised
/// as PyTorch's `ConvTranspose2d` (weight and bias uniform in
/// +-1/sqrt(fan_in), fan_in = c * 2 * 2 as PyTorch counts it).
fn deconv(p: nn::Path, c: i64) -> nn::ConvTranspose2D {
    let bound = 1.0 / ((c * 4) as f64).sqrt();
    let uniform = nn::Init::Uniform { lo: -bound, up: bound };
    let config = nn::ConvTransposeConfig {
        stride: 2,
        ws_init: uniform,
        bs_init: uniform,
        ..Default::default()
    };
    nn::conv_transpose2d(p, c, c, 2, config)
}

impl VitFpn {
    /// The pyramid for four maps of `channels[i]` channels (FaRL: all the
    /// ViT's width), under `p` (FaRL: `fpns`).
    pub fn new(p: &nn::Path, channels: &[i64]) -> Result<Self> {
        let [c0, c1, _, _] = channels else {
            return Err(Error::msg(format!(
                "the ViT pyramid takes 4 maps (FaRL: blocks 4, 6, 8, 12), got {} channel counts {channels:?}",
                channels.len()
            )));
        };
        let level0 = p / "0";
        let up4 = UpFour {
            deconv1: deconv(&level0 / "0", *c0),
            bn: nn::batch_norm2d(&level0 / "1", *c0, batch_norm_config()),
            deconv2: deconv(&level0 / "3", *c0),
        };
        let up2 = deconv(p / "1", *c1);
        Ok(VitFpn { up4, up2 })
    }

    /// The four levels `[x4, x2, x1, x0.5]` of the four maps, in order.
    pub fn forward(&self, maps: &[Tensor], train: bool) -> Result<Vec<Tensor>> {
        let [m0, m1, m2, m3] = maps else {
            return Err(Error::msg(format!("the ViT pyramid takes 4 maps, got {}", maps.len())));
        };
        let up = &self.up4;
        let level0 = m0
            .apply(&up.deconv1)
            .apply_t(&up.bn, train)
            .gelu("none")
            .apply(&up.deconv2);
        let level1 = m1.apply(&self.up2);
        let level3 = m3.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        Ok(vec![level0, level1, m2.shallow_clone(), level3])
    }
}
