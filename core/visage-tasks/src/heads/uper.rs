//! UPerNet's decoder (Xiao et al., 2018) as mmsegmentation's `UPerHead`,
//! which FaRL wraps (farl/network/mmseg.py), with mmseg's parameter names:
//!
//! - pyramid pooling on the top level (`psp_modules.{i}.1`): adaptive
//!   average pooling to 1x1, 2x2, 3x3 and 6x6, each a 1x1 conv-BN-ReLU to
//!   `channels`, upsampled back (bilinear, align_corners false); the top
//!   level and the four pooled maps concatenated, 3x3 conv-BN-ReLU
//!   (`bottleneck`);
//! - lateral 1x1 conv-BN-ReLU on the other levels (`lateral_convs.{i}`);
//! - top-down pathway: each level plus its coarser neighbour upsampled;
//! - 3x3 conv-BN-ReLU on each but the top level (`fpn_convs.{i}`);
//! - every level upsampled to the finest, concatenated, 3x3 conv-BN-ReLU
//!   (`fpn_bottleneck`);
//! - channel dropout (mmseg's `Dropout2d`, FaRL 0.1) and a 1x1 classifier
//!   with bias to `out_channels` (`conv_seg`, normal std 0.01, bias 0).
//!
//! The output lies on the finest level's grid.

use tch::nn;
use tch::Tensor;

use visage_core::{Error, Result};

use super::conv_module::ConvBnRelu;

/// The pyramid pooling bins (PSPNet's, mmseg's and FaRL's).
pub const POOL_SCALES: [i64; 4] = [1, 2, 3, 6];

/// Channel dropout before the classifier in FaRL's head (mmseg's
/// `dropout_ratio`).
pub const FARL_DROPOUT: f64 = 0.1;

/// mmseg's `UPerHead`.
#[derive(Debug)]
pub struct UperHead {
    in_channels: Vec<i64>,
    psp_modules: Vec<(i64, ConvBnRelu)>,
    bottleneck: ConvBnRelu,
    lateral_convs: Vec<ConvBnRelu>,
    fpn_convs: Vec<ConvBnRelu>,
    fpn_bottleneck: ConvBnRelu,
    conv_seg: nn::Conv2D,
    dropout: f64,
}

/// Bilinear resize to `like`'s spatial size (align_corners false), skipped
/// when the sizes agree (where it is the identity).
fn resize_like(x: &Tensor, like: &Tensor) -> Tensor {
    let (size, target) = (x.size(), like.size());
    if size[2..] == target[2..] {
        return x.shallow_clone();
    }
    x.upsample_bilinear2d([target[2], target[3]], false, None, None)
}

impl UperHead {
    /// The head for levels of `in_channels` (finest first; at least one),
    /// with `channels` inside and `out_channels` outputs, under `p` (FaRL:
    /// `head`). Dropout is [`FARL_DROPOUT`].
    pub fn new(p: &nn::Path, in_channels: &[i64], channels: i64, out_channels: i64) -> Result<Self> {
        let Some((&top, lower)) = in_channels.split_last() else {
            return Err(Error::msg("a UPerNet head needs at least one input level, got none"));
        };
        if channels < 1 || out_channels < 1 || in_channels.iter().any(|&c| c < 1) {
            return Err(Error::msg(format!(
                "a UPerNet head needs positive channel counts, got inputs {in_channels:?}, \
                 channels {channels}, outputs {out_channels}"
            )));
        }
        let psp = p / "psp_modules";
        let psp_modules = POOL_SCALES
            .iter()
            .enumerate()
            .map(|(i, &bins)| (bins, ConvBnRelu::new(&(&psp / i / "1"), top, channels, 1)))
            .collect();
        let pooled = top + POOL_SCALES.len() as i64 * channels;
        let bottleneck = ConvBnRelu::new(&(p / "bottleneck"), pooled, channels, 3);
        let lateral_convs = (lower.iter().enumerate())
            .map(|(i, &c)| ConvBnRelu::new(&(p / "lateral_convs" / i), c, channels, 1))
            .collect();
        let fpn_convs = (0..lower.len())
            .map(|i| ConvBnRelu::new(&(p / "fpn_convs" / i), channels, channels, 3))
            .collect();
        let levels = in_channels.len() as i64;
        let fpn_bottleneck = ConvBnRelu::new(&(p / "fpn_bottleneck"), levels * channels, channels, 3);
        let seg = nn::ConvConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.01 },
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let conv_seg = nn::conv2d(p / "conv_seg", channels, out_channels, 1, seg);
        Ok(UperHead {
            in_channels: in_channels.to_vec(),
            psp_modules,
            bottleneck,
            lateral_convs,
            fpn_convs,
            fpn_bottleneck,
            conv_seg,
            dropout: FARL_DROPOUT,
        })
    }

    /// The same head with channel dropout `p` before the classifier (0
    /// turns it off).
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Channels of the levels the head reads, finest first.
    pub fn in_channels(&self) -> &[i64] {
        &self.in_channels
    }

    /// Pyramid pooling on the top level and the bottleneck over it.
    fn psp_forward(&self, top: &Tensor, train: bool) -> Tensor {
        let mut branches = vec![top.shallow_clone()];
        for (bins, conv) in &self.psp_modules {
            let pooled = conv.forward(&top.adaptive_avg_pool2d([*bins, *bins]), train);
            branches.push(resize_like(&pooled, top));
        }
        self.bottleneck.forward(&Tensor::cat(&branches, 1), train)
    }

    /// Logits `[N, out_channels, h0, w0]` on the grid of `levels[0]`, from
    /// the levels `[N, in_channels[i], h_i, w_i]`, finest first.
    pub fn forward(&self, levels: &[Tensor], train: bool) -> Result<Tensor> {
        self.check(levels)?;
        let top = levels.len() - 1;
        let mut laterals: Vec<Tensor> = (self.lateral_convs.iter().zip(levels))
            .map(|(conv, x)| conv.forward(x, train))
            .collect();
        laterals.push(self.psp_forward(&levels[top], train));
        for i in (1..laterals.len()).rev() {
            let coarser = resize_like(&laterals[i], &laterals[i - 1]);
            laterals[i - 1] = &laterals[i - 1] + coarser;
        }
        let mut outs: Vec<Tensor> = (self.fpn_convs.iter().zip(&laterals))
            .map(|(conv, x)| conv.forward(x, train))
            .collect();
        outs.push(laterals[top].shallow_clone());
        let outs: Vec<Tensor> = outs.iter().map(|x| resize_like(x, &outs[0])).collect();
        let fused = self.fpn_bottleneck.forward(&Tensor::cat(&outs, 1), train);
        Ok(fused.feature_dropout(self.dropout, train).apply(&self.conv_seg))
    }

    /// The levels' count, rank and channels are the head's.
    fn check(&self, levels: &[Tensor]) -> Result<()> {
        if levels.len() != self.in_channels.len() {
            return Err(Error::msg(format!(
                "the UPerNet head was built for {} levels, got {}",
                self.in_channels.len(),
                levels.len()
            )));
        }
        for (i, (x, &c)) in levels.iter().zip(&self.in_channels).enumerate() {
            let size = x.size();
            if size.len() != 4 || size[1] != c {
                return Err(Error::msg(format!(
                    "UPerNet level {i}: expected a map [N, {c}, H, W], got {size:?}"
                )));
            }
        }
        Ok(())
    }
}
