//! The pose-disentangled decoder (PDD): a linear layer to a `width x 1 x 1`
//! map, then `depth` stages of ReLU, 2x bilinear upsampling and a 3x3
//! convolution, batch norm after every convolution but the last, and tanh.
//! Channels (PCL, width 512, depth 6): 512-256-256-256-256-128-3.
//!
//! Parameter names are the official `Generator`'s: `fc`, then the
//! convolutions and norms at their places in its `nn.Sequential` `model`
//! (stage `i` has its convolution at `4i + 2`, its norm at `4i + 3`).

use visage_core::tch::nn::{self, ModuleT};
use visage_core::tch::Tensor;
use visage_core::{Error, Result};

/// One stage: upsampled, convolved and (but the last) normalised.
#[derive(Debug)]
struct Stage {
    conv: nn::Conv2D,
    norm: Option<nn::BatchNorm>,
}

/// The decoder.
#[derive(Debug)]
pub struct Decoder {
    fc: nn::Linear,
    stages: Vec<Stage>,
    width: i64,
}

/// Output channels of stage `i` of `depth`: half the width, a quarter
/// before the last stage, then the image's channels.
fn stage_channels(i: i64, depth: i64, width: i64, image_channels: i64) -> i64 {
    if i == depth - 1 {
        image_channels
    } else if i == depth - 2 {
        width / 4
    } else {
        width / 2
    }
}

impl Decoder {
    /// A decoder from `input`-d codes to `image_channels x 2^depth x
    /// 2^depth` images under `p`, PyTorch's default initialisation.
    pub fn new(p: nn::Path, input: i64, width: i64, depth: i64, image_channels: i64) -> Self {
        let model = &p / "model";
        let mut channels = width;
        let stages = (0..depth)
            .map(|i| {
                let out = stage_channels(i, depth, width, image_channels);
                let config = nn::ConvConfig {
                    padding: 1,
                    ..Default::default()
                };
                let conv = nn::conv2d(&model / (4 * i + 2), channels, out, 3, config);
                let norm = (i < depth - 1).then(|| nn::batch_norm2d(&model / (4 * i + 3), out, Default::default()));
                channels = out;
                Stage { conv, norm }
            })
            .collect();
        Decoder {
            fc: nn::linear(&p / "fc", input, width, Default::default()),
            stages,
            width,
        }
    }

    /// The side of the images it makes.
    pub fn side(&self) -> i64 {
        1 << self.stages.len()
    }

    /// Decodes `codes` `[N, input]` into tanh images `[N, C, side, side]`
    /// (batch statistics in training mode).
    pub fn forward(&self, codes: &Tensor) -> Tensor {
        let n = codes.size()[0];
        let mut x = codes.apply(&self.fc).view([n, self.width, 1, 1]);
        for stage in &self.stages {
            let (h, w) = (x.size()[2], x.size()[3]);
            x = x.relu().upsample_bilinear2d([2 * h, 2 * w], false, 2.0, 2.0);
            x = x.apply(&stage.conv);
            if let Some(norm) = &stage.norm {
                x = norm.forward_t(&x, true);
            }
        }
        x.tanh()
    }

    /// An error unless the decoder makes `side x side` images.
    pub fn check_side(&self, side: i64, channels: i64) -> Result<()> {
        let own = self.side();
        let out = self.stages.last().map(|s| s.conv.ws.size()[0]).unwrap_or(0);
        if side != own || channels != out {
            return Err(Error::msg(format!(
                "pcl: the decoder makes {out}x{own}x{own} images (decoder_depth {}), the batch has {channels}x{side}x{side}; \
                 set decoder_depth so that 2^decoder_depth is the image side",
                self.stages.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_core::tch::{Device, Kind};

    #[test]
    fn pcl_sizes_and_official_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let d = Decoder::new(vs.root() / "decoder", 2048, 512, 6, 3);
        let out = d.forward(&Tensor::randn([2, 2048], (Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), vec![2, 3, 64, 64]);
        assert!(out.abs().max().double_value(&[]) <= 1.0);
        let vars = vs.variables();
        let shape = |n: &str| vars.get(n).unwrap_or_else(|| panic!("{n} missing")).size();
        assert_eq!(shape("decoder.fc.weight"), vec![512, 2048]);
        assert_eq!(shape("decoder.model.2.weight"), vec![256, 512, 3, 3]);
        assert_eq!(shape("decoder.model.15.running_mean"), vec![256]);
        assert_eq!(shape("decoder.model.18.weight"), vec![128, 256, 3, 3]);
        assert_eq!(shape("decoder.model.19.weight"), vec![128]);
        assert_eq!(shape("decoder.model.22.weight"), vec![3, 128, 3, 3]);
        assert!(!vars.contains_key("decoder.model.23.weight"));
        assert!(d.check_side(64, 3).is_ok());
        let err = d.check_side(32, 3).unwrap_err().to_string();
        assert!(err.contains("3x64x64") && err.contains("3x32x32"), "{err}");
    }
}
