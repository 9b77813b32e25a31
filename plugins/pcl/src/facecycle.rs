//! The FaceCycle encoder that PCL (Liu et al., CVPR 2023) pre-trains, with
//! the official code's parameter names (`conv1.0`, `layer1.2.theta`,
//! `resblock1.conv1`, `layer3_2_exp.0`, ...), so that PCL's released
//! checkpoints load by name (under `module.encoder.`).
//!
//! At 64x64 input: a shared trunk (`layer3_1`, PCL's "fea", 128x4x4) and two
//! heads of two 3x3 convolutions, face-aware (`layer3_2_exp`) and pose
//! (`layer3_2_pose`). Convolutions have biases; activations are
//! LeakyReLU(0.1).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

use visage_core::backbone::{Backbone, FeatureSpec, Features, ParameterLayers, POOLED};
use visage_core::{Error, Result};

/// The trunk feature map `[N, 2w, h, w]`.
pub const TRUNK: &str = "trunk";
/// The face-aware (expression) head, flattened.
pub const FACE: &str = "face";
/// The pose head, flattened.
pub const POSE: &str = "pose";

/// Parameters of the `facecycle` backbone.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaceCycleParams {
    /// Channels of the first stage (PCL: 64); later stages have 2x and 4x.
    #[serde(default = "default_width")]
    pub width: i64,
    /// Input side in pixels, at least 16, that the declared output widths
    /// refer to (PCL: 64). Other sides are read too: PCL evaluates FER at
    /// 100, where the maps are 7x7.
    #[serde(default = "default_image_size")]
    pub image_size: i64,
}

fn default_width() -> i64 {
    64
}

fn default_image_size() -> i64 {
    64
}

impl Default for FaceCycleParams {
    fn default() -> Self {
        FaceCycleParams {
            width: default_width(),
            image_size: default_image_size(),
        }
    }
}

/// PCL's initialisation: weights N(0, sqrt(2 / (k k out))), biases 0.
fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> nn::Conv2D {
    let std = (2.0 / (k * k * c_out) as f64).sqrt();
    let config = nn::ConvConfig {
        stride,
        padding: k / 2,
        ws_init: nn::Init::Randn { mean: 0.0, stdev: std },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, config)
}

/// Self-attention over channels: `out = lrelu(x + (phi softmax_N(theta)^T)
/// softmax_C(g))`.
#[derive(Debug)]
struct SelfAttention {
    g: nn::Conv2D,
    theta: nn::Conv2D,
    phi: nn::Conv2D,
}

impl SelfAttention {
    fn new(p: nn::Path, c: i64) -> Self {
        SelfAttention {
            g: conv(&p / "g", c, c, 1, 1),
            theta: conv(&p / "theta", c, c, 1, 1),
            phi: conv(&p / "phi", c, c, 1, 1),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, c, h, w) = x.size4().expect("feature maps are [N, C, H, W]");
        let flat = |t: Tensor| t.view([b, c, h * w]);
        let g = flat(self.g.forward(x)).softmax(1, None);
        let theta = flat(self.theta.forward(x)).softmax(-1, None).permute([0, 2, 1]);
        let phi = flat(self.phi.forward(x));
        let attention = phi.bmm(&theta).bmm(&g).view([b, c, h, w]);
        leaky(x + attention)
    }
}

/// LeakyReLU with PCL's slope 0.1. tch's `leaky_relu` has no slope
/// argument (0.01), so this is a PReLU with the fixed weight 0.1: one kernel
/// forward and one backward, as PyTorch's `LeakyReLU(0.1)`, where
/// `maximum(x, 0.1 x)` took a product and, backward, a handful of
/// comparison and masking passes (a quarter of a PCL iteration's time).
fn leaky(x: Tensor) -> Tensor {
    let slope = Tensor::full([1], 0.1, (x.kind(), x.device()));
    x.prelu(&slope)
}

/// Convolutions (with LeakyReLU after each) and optional self-attention,
/// in an `nn.Sequential`'s numbering: conv at 0, attention at 2, conv at 3.
#[derive(Debug)]
struct Stage {
    first: nn::Conv2D,
    attention: Option<SelfAttention>,
    second: nn::Conv2D,
}

impl Stage {
    fn new(p: nn::Path, c_in: i64, mid: i64, c_out: i64, stride: i64, attention: bool) -> Self {
        let first = conv(&p / 0, c_in, mid, 3, stride);
        let (attention, second_index) = if attention {
            (Some(SelfAttention::new(&p / 2, mid)), 3)
        } else {
            (None, 2)
        };
        Stage {
            first,
            attention,
            second: conv(&p / second_index, mid, c_out, 3, 1),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = leaky(self.first.forward(x));
        if let Some(a) = &self.attention {
            y = a.forward(&y);
        }
        leaky(self.second.forward(&y))
    }
}

/// conv-lrelu-conv plus identity, then lrelu.
#[derive(Debug)]
struct ResBlock {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
}

impl ResBlock {
    fn new(p: nn::Path, c: i64) -> Self {
        ResBlock {
            conv1: conv(&p / "conv1", c, c, 3, 1),
            conv2: conv(&p / "conv2", c, c, 3, 1),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        leaky(self.conv2.forward(&leaky(self.conv1.forward(x))) + x)
    }
}

/// The FaceCycle encoder.
#[derive(Debug)]
pub struct FaceCycle {
    stem: (nn::Conv2D, nn::Conv2D),
    layer1: Stage,
    layer2_1: Stage,
    resblocks: [ResBlock; 2],
    layer2_2: Stage,
    layer3_1: Stage,
    face: Stage,
    pose: Stage,
    dims: (i64, i64),
    image_size: i64,
    in_channels: i64,
}

impl FaceCycle {
    /// Builds the encoder under `vs`.
    pub fn new(vs: &nn::Path, in_channels: i64, params: &FaceCycleParams) -> Result<Self> {
        let w = params.width;
        if w < 1 {
            return Err(Error::msg(format!("width: expected at least 1, got {w}")));
        }
        if params.image_size < 16 {
            return Err(Error::msg(format!(
                "image_size: expected at least 16 pixels, got {}",
                params.image_size
            )));
        }
        // Four stride-2 convolutions padded by half their kernel: each
        // halves the side, rounding up (100 -> 50 -> 25 -> 13 -> 7).
        let side = (0..4).fold(params.image_size, |s, _| (s + 1) / 2);
        let trunk = 2 * w;
        Ok(FaceCycle {
            stem: (
                conv(vs / "conv1" / 0, in_channels, w, 7, 2),
                conv(vs / "conv1" / 2, w, w, 3, 1),
            ),
            layer1: Stage::new(vs / "layer1", w, w, w, 1, true),
            layer2_1: Stage::new(vs / "layer2_1", w, 2 * w, 2 * w, 2, true),
            resblocks: [
                ResBlock::new(vs / "resblock1", 2 * w),
                ResBlock::new(vs / "resblock2", 2 * w),
            ],
            layer2_2: Stage::new(vs / "layer2_2", 2 * w, 2 * w, 2 * w, 2, false),
            layer3_1: Stage::new(vs / "layer3_1", 2 * w, 4 * w, trunk, 2, false),
            face: Stage::new(vs / "layer3_2_exp", trunk, trunk, trunk, 1, false),
            pose: Stage::new(vs / "layer3_2_pose", trunk, trunk, trunk, 1, false),
            dims: (trunk, trunk * side * side),
            image_size: params.image_size,
            in_channels,
        })
    }

    /// The shared trunk map ("fea" in PCL).
    pub fn trunk(&self, images: &Tensor) -> Result<Tensor> {
        let size = images.size();
        // Fully convolutional: any side from 16 up is read (PCL trains at
        // 64 and evaluates FER at 100, pose at 256); `image_size` fixes
        // the output widths the backbone declares.
        if size.len() != 4 || size[1] != self.in_channels || size[2] < 16 || size[3] < 16 {
            return Err(Error::msg(format!(
                "facecycle reads [N, {c}, H, W] images with sides of at least 16 (built for {s}x{s}, image_size), \
                 got a batch of shape {size:?}",
                c = self.in_channels,
                s = self.image_size
            )));
        }
        let x = leaky(self.stem.1.forward(&leaky(self.stem.0.forward(images))));
        let x = self.layer1.forward(&x);
        let mut x = self.layer2_1.forward(&x);
        for block in &self.resblocks {
            x = block.forward(&x);
        }
        let x = self.layer2_2.forward(&x);
        Ok(self.layer3_1.forward(&x))
    }
}

impl Backbone for FaceCycle {
    fn outputs(&self) -> Vec<FeatureSpec> {
        let (channels, flat) = self.dims;
        [(POOLED, flat), (TRUNK, channels), (FACE, flat), (POSE, flat)]
            .iter()
            .map(|(name, dim)| FeatureSpec {
                name: name.to_string(),
                dim: *dim,
            })
            .collect()
    }

    fn forward(&self, images: &Tensor, _train: bool) -> Result<Features> {
        let trunk = self.trunk(images)?;
        let face = self.face.forward(&trunk).flatten(1, -1);
        let pose = self.pose.forward(&trunk).flatten(1, -1);
        Ok(Features::from([
            (POOLED.to_string(), trunk.flatten(1, -1)),
            (TRUNK.to_string(), trunk),
            (FACE.to_string(), face),
            (POSE.to_string(), pose),
        ]))
    }

    fn layers(&self) -> Option<&dyn ParameterLayers> {
        Some(self)
    }
}

/// The modules in the order the image goes through them: the stem is
/// layer 0, then `layer1`, `layer2_1`, the two residual blocks, `layer2_2`
/// and `layer3_1`; the face-aware and pose heads come last.
impl ParameterLayers for FaceCycle {
    fn num_layers(&self) -> usize {
        STAGES.len()
    }
    fn layer_of(&self, name: &str) -> usize {
        let module = name.split('.').next().unwrap_or_default();
        match STAGES.iter().position(|s| *s == module) {
            Some(i) => i + 1,
            None if module == "conv1" => 0,
            None => STAGES.len() + 1,
        }
    }
}

/// The trunk's modules after the stem, in order.
const STAGES: [&str; 6] = ["layer1", "layer2_1", "resblock1", "resblock2", "layer2_2", "layer3_1"];

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn outputs_have_pcls_sizes_at_64() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = FaceCycle::new(&vs.root(), 3, &FaceCycleParams::default()).unwrap();
        let x = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward(&x, false).unwrap();
        assert_eq!(out[TRUNK].size(), vec![2, 128, 4, 4]);
        for name in [POOLED, FACE, POSE] {
            assert_eq!(out[name].size(), vec![2, 2048], "{name}");
        }
        let names: Vec<String> = vs.variables().into_keys().collect();
        for n in [
            "conv1.2.weight",
            "layer1.2.theta.weight",
            "layer1.3.bias",
            "layer3_2_pose.2.weight",
        ] {
            assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
        }
        let err = model.forward(&Tensor::rand([1, 3, 8, 32], (Kind::Float, Device::Cpu)), false);
        assert!(err.unwrap_err().to_string().contains("sides of at least 16"));
        assert!(FaceCycle::new(
            &vs.root(),
            3,
            &FaceCycleParams {
                width: 8,
                image_size: 8
            }
        )
        .is_err());
        // PCL's FER evaluation size: 7x7 maps, its `linear_dim` 6272 at width 64.
        let vs = nn::VarStore::new(Device::Cpu);
        let params = FaceCycleParams {
            width: 64,
            image_size: 100,
        };
        let model = FaceCycle::new(&vs.root(), 3, &params).unwrap();
        let out = model
            .forward(&Tensor::rand([1, 3, 100, 100], (Kind::Float, Device::Cpu)), false)
            .unwrap();
        assert_eq!(out[FACE].size(), [1, 6272]);
    }
}
