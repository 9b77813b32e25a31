//! The masked-image-modelling losses: MCF's, on a frozen teacher's
//! features of the pseudo image against those of the original, and MAE's
//! on normalised pixels (the `pixel_mim` ablation).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::tch::Tensor;
use visage_core::{Error, Result};

use crate::decoder::{masked, patchify};
use visage_core::nn::contrastive::l2_normalize;

/// Along which axis the teacher's tokens `[N, 1 + L, D]` are
/// L2-normalised before the MSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Normalise {
    /// Each token over its D channels (the paper's "L2-normalised
    /// features").
    Channels,
    /// Each channel over the tokens: the official `F.normalize(feat,
    /// dim=1)` on `[N, L, D]` tokens.
    Tokens,
}

impl Normalise {
    fn dim(self) -> i64 {
        match self {
            Normalise::Channels => 2,
            Normalise::Tokens => 1,
        }
    }
}

/// `L_MIM = sum_l MSE(norm(T_l(pseudo)), norm(T_l(original)))` over the
/// teacher's chosen blocks: `pseudo[l]` and `original[l]` are its tokens
/// `[N, 1 + L, D]` (class token included) on the two images; the mean runs
/// over every token of the whole image. The original's features are
/// targets (no gradient).
pub fn feature_mim(pseudo: &[Tensor], original: &[Tensor], normalise: Normalise) -> Result<Tensor> {
    if pseudo.is_empty() || pseudo.len() != original.len() {
        return Err(Error::msg(format!(
            "mcf: the MIM needs the same teacher blocks for both images, got {} and {}",
            pseudo.len(),
            original.len()
        )));
    }
    let mut total: Option<Tensor> = None;
    for (p, o) in pseudo.iter().zip(original) {
        if p.size() != o.size() || p.dim() != 3 {
            return Err(Error::msg(format!(
                "mcf: teacher tokens must be [N, 1 + L, D] on both images, got {:?} and {:?}",
                p.size(),
                o.size()
            )));
        }
        let d = normalise.dim();
        let mse = (l2_normalize(p, d) - l2_normalize(&o.detach(), d)).square().mean(None);
        total = Some(match total {
            Some(t) => t + mse,
            None => mse,
        });
    }
    total.ok_or_else(|| Error::msg("mcf: no teacher block"))
}

/// MAE's loss: the MSE between the predicted patches `pred`
/// `[N, L, p * p * C]` and the image's patches, averaged over the masked
/// patches only (those not in `keep` `[N, K]`); with `norm_pix` each
/// target patch is standardised by its own mean and variance (eps 1e-6).
pub fn pixel_mim(pred: &Tensor, images: &Tensor, keep: &Tensor, patch: i64, norm_pix: bool) -> Result<Tensor> {
    let mut target = patchify(images, patch)?;
    if target.size() != pred.size() {
        return Err(Error::msg(format!(
            "mcf: the decoder predicts patches {:?}, the images have {:?}",
            pred.size(),
            target.size()
        )));
    }
    if norm_pix {
        let mean = target.mean_dim(-1, true, None);
        let var = target.var_dim(-1, true, true);
        target = (target - mean) / (var + 1e-6).sqrt();
    }
    let per_patch = (pred - target).square().mean_dim(-1, false, None);
    let mask = masked(keep, pred.size()[1]);
    Ok((per_patch * &mask).sum(None) / mask.sum(None))
}

/// The teacher blocks of the MIM by default (1-based): a quarter, half,
/// three quarters and all of the teacher's depth, rounded (3, 6, 9, 12 of
/// 12; 1, 2, 3, 4 of 4), without repeats.
pub fn default_blocks(depth: usize) -> Vec<usize> {
    let mut blocks: Vec<usize> = (1..=4)
        .map(|k| ((k * depth) as f64 / 4.0).round().max(1.0) as usize)
        .collect();
    blocks.dedup();
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_core::tch::{Device, Kind};

    #[test]
    fn the_default_blocks_scale_with_the_teacher() {
        assert_eq!(default_blocks(12), [3, 6, 9, 12]);
        assert_eq!(default_blocks(4), [1, 2, 3, 4]);
        assert_eq!(default_blocks(6), [2, 3, 5, 6]);
        assert_eq!(default_blocks(2), [1, 2]);
    }

    /// One image, one block, two tokens of two channels. Pseudo tokens
    /// (3, 4) and (1, 0); original (0, 2) and (0, 1). Per token:
    /// (0.6, 0.8) vs (0, 1), (1, 0) vs (0, 1): squared errors
    /// 0.36 + 0.04 + 1 + 1 = 2.4 over 4 entries = 0.6; twice for two blocks.
    /// Over the tokens instead: channel 0 (3, 1) / sqrt(10) vs (0, 0), channel
    /// 1 (4, 0) / 4 vs (2, 1) / sqrt(5): (9 + 1) / 10 + (1 - 2/sqrt(5))^2
    /// + (1/sqrt(5))^2, over 4.
    #[test]
    fn the_feature_mim_is_computed_by_hand() {
        let p = Tensor::from_slice(&[3f32, 4., 1., 0.]).reshape([1, 2, 2]);
        let o = Tensor::from_slice(&[0f32, 2., 0., 1.]).reshape([1, 2, 2]);
        let one = feature_mim(&[p.shallow_clone()], &[o.shallow_clone()], Normalise::Channels).unwrap();
        assert!((one.double_value(&[]) - 0.6).abs() < 1e-6);
        let two = feature_mim(
            &[p.shallow_clone(), p.shallow_clone()],
            &[o.shallow_clone(), o.shallow_clone()],
            Normalise::Channels,
        )
        .unwrap();
        assert!((two.double_value(&[]) - 1.2).abs() < 1e-6);
        let s5 = 5f64.sqrt();
        let want = (1.0 + (1.0 - 2.0 / s5).powi(2) + 1.0 / 5.0) / 4.0;
        let tokens = feature_mim(&[p.shallow_clone()], &[o.shallow_clone()], Normalise::Tokens).unwrap();
        assert!(
            (tokens.double_value(&[]) - want).abs() < 1e-6,
            "{}",
            tokens.double_value(&[])
        );
        assert!(feature_mim(&[p], &[], Normalise::Channels).is_err());
    }

    /// 1 channel, 2x4 image, patch 2: patches (0, 1, 0, 1) and (2, 2, 2, 2)
    /// (row-major in the patch). Prediction 0 everywhere, patch 1 masked:
    /// raw loss = 4, normalised target (0, 0, 0, 0) -> 0; patch 0 masked:
    /// raw (0 + 1 + 0 + 1) / 4 = 0.5, normalised: mean 0.5, unbiased var
    /// 1/3, entries +-0.5 / sqrt(1/3 + 1e-6), squares 0.75 each.
    #[test]
    fn the_pixel_mim_counts_masked_patches_only() {
        let img = Tensor::from_slice(&[0f32, 1., 2., 2., 0., 1., 2., 2.]).reshape([1, 1, 2, 4]);
        let pred = Tensor::zeros([1, 2, 4], (Kind::Float, Device::Cpu));
        let keep0 = Tensor::from_slice(&[0i64]).reshape([1, 1]);
        let keep1 = Tensor::from_slice(&[1i64]).reshape([1, 1]);
        let v = |keep: &Tensor, norm: bool| pixel_mim(&pred, &img, keep, 2, norm).unwrap().double_value(&[]);
        assert!((v(&keep0, false) - 4.0).abs() < 1e-6);
        assert!(v(&keep0, true).abs() < 1e-6);
        assert!((v(&keep1, false) - 0.5).abs() < 1e-6);
        let want = 0.25 / (1.0 / 3.0 + 1e-6);
        assert!((v(&keep1, true) - want).abs() < 1e-5, "{}", v(&keep1, true));
    }
}
