//! MAE's decoder (He et al. 2022, as MCF uses it): the encoder's visible
//! tokens (class token first) are embedded to the decoder's width, a
//! shared learned mask token fills every masked patch, fixed 2-D sin-cos
//! positions are added, transformer blocks and a layer norm follow, and a
//! linear layer predicts each patch's pixels; [`unpatchify`] lays the
//! predictions out as a full "pseudo image".

use visage_core::nn::vit::{sincos_2d, Block};
use visage_core::tch::nn::{self, Module};
use visage_core::tch::{Kind, Tensor};
use visage_core::{Error, Result};

/// Sizes of the decoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecoderShape {
    /// Width of the encoder's tokens.
    pub input: i64,
    /// Width of the decoder (MAE and MCF: 512).
    pub width: i64,
    /// Transformer blocks (MCF's ViT-B: 8).
    pub depth: i64,
    /// Attention heads (16).
    pub heads: i64,
    /// MLP hidden width over `width` (4).
    pub mlp_ratio: f64,
    /// Layer-norm epsilon (1e-6).
    pub ln_eps: f64,
    /// Patch side in pixels.
    pub patch: i64,
    /// Patches per image side.
    pub grid: i64,
    /// Image channels.
    pub channels: i64,
}

/// The decoder; modules named as MAE's (`decoder_embed`, `mask_token`,
/// `decoder_pos_embed`, `decoder_blocks.i`, `decoder_norm`,
/// `decoder_pred`).
#[derive(Debug)]
pub struct MaeDecoder {
    embed: nn::Linear,
    mask_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    pred: nn::Linear,
    shape: DecoderShape,
}

impl MaeDecoder {
    /// Builds the decoder under `p` with MAE's initialisation: Xavier
    /// uniform linear weights, zero biases, a N(0, 0.02) mask token.
    pub fn new(p: &nn::Path, shape: DecoderShape) -> Result<Self> {
        let s = shape;
        let positive = [s.input, s.width, s.depth, s.heads, s.patch, s.grid, s.channels];
        if positive.iter().any(|&v| v <= 0) || s.width % s.heads != 0 || s.width % 4 != 0 {
            return Err(Error::msg(format!(
                "mcf decoder: sizes must be positive, heads must divide the width and the width be a multiple of 4 (sin-cos positions), got {s:?}"
            )));
        }
        let pos_embed = p.zeros_no_train("decoder_pos_embed", &[1, 1 + s.grid * s.grid, s.width]);
        visage_core::tch::no_grad(|| pos_embed.shallow_clone().copy_(&sincos_2d(s.width, s.grid)));
        let blocks = (0..s.depth)
            .map(|i| {
                Block::new(
                    &(p / "decoder_blocks" / i),
                    s.width,
                    s.heads,
                    s.mlp_ratio,
                    true,
                    s.ln_eps,
                    0.0,
                )
            })
            .collect();
        let norm_config = nn::LayerNormConfig {
            eps: s.ln_eps,
            ..Default::default()
        };
        Ok(MaeDecoder {
            embed: xavier_linear(p / "decoder_embed", s.input, s.width),
            mask_token: p.var(
                "mask_token",
                &[1, 1, s.width],
                nn::Init::Randn { mean: 0.0, stdev: 0.02 },
            ),
            pos_embed,
            blocks,
            norm: nn::layer_norm(p / "decoder_norm", vec![s.width], norm_config),
            pred: xavier_linear(p / "decoder_pred", s.width, s.patch * s.patch * s.channels),
            shape,
        })
    }

    /// Patches per image.
    pub fn num_patches(&self) -> i64 {
        self.shape.grid * self.shape.grid
    }

    /// Predicts every patch's pixels `[N, L, patch^2 * channels]` from the
    /// encoder's output `latent` `[N, 1 + K, D]` (class token first, then
    /// the K visible patches `keep` `[N, K]`, row-major indices).
    pub fn forward(&self, latent: &Tensor, keep: &Tensor, train: bool) -> Result<Tensor> {
        let (n, l) = (latent.size()[0], self.num_patches());
        let k = keep.size();
        if latent.dim() != 3 || k.len() != 2 || k[0] != n || latent.size()[1] != 1 + k[1] || k[1] > l {
            return Err(Error::msg(format!(
                "mcf decoder: latent [N, 1 + K, D] and keep [N, K] with K <= {l}, got {:?} and {k:?}",
                latent.size()
            )));
        }
        let x = self.embed.forward(latent);
        let width = self.shape.width;
        let visible = x.narrow(1, 1, k[1]);
        let index = keep.unsqueeze(-1).expand([n, k[1], width], true);
        let full = self.mask_token.expand([n, l, width], true).scatter(1, &index, &visible);
        let mut x = Tensor::cat(&[x.narrow(1, 0, 1), full], 1) + &self.pos_embed;
        for block in &self.blocks {
            x = block.forward(&x, train);
        }
        Ok(self.pred.forward(&self.norm.forward(&x)).narrow(1, 1, l))
    }
}

/// Images `[N, C, H, W]` as patches `[N, L, p * p * C]`: row-major over
/// the grid, each patch's pixels row by row with channels innermost (MAE's
/// `patchify`).
pub fn patchify(images: &Tensor, patch: i64) -> Result<Tensor> {
    let s = images.size();
    if s.len() != 4 || patch <= 0 || s[2] % patch != 0 || s[3] % patch != 0 {
        return Err(Error::msg(format!(
            "mcf: images [N, C, H, W] with sides multiple of the patch {patch}, got {s:?}"
        )));
    }
    let (n, c, h, w) = (s[0], s[1], s[2] / patch, s[3] / patch);
    Ok(images
        .reshape([n, c, h, patch, w, patch])
        .permute([0, 2, 4, 3, 5, 1])
        .reshape([n, h * w, patch * patch * c]))
}

/// The inverse of [`patchify`] for a square grid: patches
/// `[N, L, p * p * C]` as images `[N, C, H, W]`.
pub fn unpatchify(patches: &Tensor, patch: i64, channels: i64) -> Result<Tensor> {
    let s = patches.size();
    let grid = (s.get(1).copied().unwrap_or(0) as f64).sqrt().round() as i64;
    if s.len() != 3 || grid * grid != s[1] || s[2] != patch * patch * channels {
        return Err(Error::msg(format!(
            "mcf: patches [N, L, {}] on a square grid, got {s:?}",
            patch * patch * channels
        )));
    }
    Ok(patches
        .reshape([s[0], grid, grid, patch, patch, channels])
        .permute([0, 5, 1, 3, 2, 4])
        .reshape([s[0], channels, grid * patch, grid * patch]))
}

/// The binary mask of MAE `[N, L]`: 1 for a masked patch, 0 for the kept
/// patches `keep` `[N, K]`.
pub fn masked(keep: &Tensor, num_patches: i64) -> Tensor {
    let n = keep.size()[0];
    Tensor::ones([n, num_patches], (Kind::Float, keep.device())).scatter_value(1, keep, 0.0)
}

/// A linear layer with MAE's initialisation: Xavier uniform weights, zero
/// bias.
fn xavier_linear(p: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    let bound = (6.0 / (c_in + c_out) as f64).sqrt();
    let config = nn::LinearConfig {
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(p, c_in, c_out, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_core::tch::Device;

    /// A 1-channel 4x4 image with pixel value 10 * row + column, patch 2:
    /// patch 1 (top right) holds rows 0-1, columns 2-3: 2, 3, 12, 13.
    #[test]
    fn patches_are_row_major_and_unpatchify_inverts() {
        let img = Tensor::from_slice(&[
            0f32, 1., 2., 3., 10., 11., 12., 13., 20., 21., 22., 23., 30., 31., 32., 33.,
        ])
        .reshape([1, 1, 4, 4]);
        let p = patchify(&img, 2).unwrap();
        assert_eq!(p.size(), [1, 4, 4]);
        let patch1: Vec<f32> = Vec::try_from(p.get(0).get(1)).unwrap();
        assert_eq!(patch1, [2., 3., 12., 13.]);
        let rgb = Tensor::rand([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        assert!(unpatchify(&patchify(&rgb, 4).unwrap(), 4, 3).unwrap().equal(&rgb));
        // Channels innermost: pixel (0, 1) of patch 0 is entries 3..6.
        let first: Vec<f32> = Vec::try_from(patchify(&rgb, 4).unwrap().get(0).get(0).narrow(0, 3, 3)).unwrap();
        let want: Vec<f32> = Vec::try_from(rgb.get(0).select(1, 0).select(1, 1)).unwrap();
        assert_eq!(first, want);
        assert!(patchify(&rgb, 3).is_err());
    }

    /// Masked patches are those not kept; the decoder's masked positions
    /// all start from the same mask token, so two images that differ only
    /// in their visible tokens' values differ in their predictions.
    #[test]
    fn the_decoder_fills_masked_patches_and_predicts_every_patch() {
        let keep = Tensor::from_slice(&[0i64, 3, 1, 2]).reshape([2, 2]);
        let m = masked(&keep, 4);
        let rows: Vec<f32> = Vec::try_from(m.flatten(0, 1)).unwrap();
        assert_eq!(rows, [0., 1., 1., 0., 1., 0., 0., 1.]);
        let vs = nn::VarStore::new(Device::Cpu);
        let shape = DecoderShape {
            input: 8,
            width: 16,
            depth: 1,
            heads: 2,
            mlp_ratio: 2.0,
            ln_eps: 1e-6,
            patch: 2,
            grid: 2,
            channels: 3,
        };
        let decoder = MaeDecoder::new(&(vs.root() / "d"), shape).unwrap();
        let latent = Tensor::randn([2, 3, 8], (Kind::Float, Device::Cpu));
        let out = decoder.forward(&latent, &keep, false).unwrap();
        assert_eq!(out.size(), [2, 4, 12]);
        assert!(decoder.forward(&latent, &keep.narrow(1, 0, 1), false).is_err());
        // The positions are fixed, the mask token is trained.
        let trainable: Vec<i64> = vs.trainable_variables().iter().map(|t| t.numel() as i64).collect();
        assert!(!trainable.contains(&(5 * 16)), "positions are not trained");
        assert!(vs.variables().contains_key("d.mask_token"));
        let bad = DecoderShape { heads: 3, ..shape };
        assert!(MaeDecoder::new(&(vs.root() / "e"), bad).is_err());
    }
}
