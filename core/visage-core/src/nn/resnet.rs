//! ResNet (He et al., 2016) with torchvision's parameter names, so that a
//! torchvision state dict loads as it is (`conv1.weight`, `layer1.0.bn1.*`,
//! `layer2.0.downsample.0.weight`, ...). ResNet v1.5: the stride of a
//! bottleneck sits in its 3x3 convolution, as in torchvision.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::backbone::{Backbone, FeatureSpec, Features, Intermediate, Intermediates, ParameterLayers, POOLED};
use crate::{Error, Result};

/// Name of the last stage's feature map `[N, C, h, w]`.
pub const TRUNK: &str = "trunk";

/// Parameters of the `resnet` backbones.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResNetParams {
    /// 18, 34 (basic blocks), 50, 101 or 152 (bottlenecks).
    #[serde(default = "default_depth")]
    pub depth: u32,
    /// Channels of the stem and first stage (torchvision: 64); the stages
    /// have `width * [1, 2, 4, 8]` (times 4 for bottlenecks).
    #[serde(default = "default_width")]
    pub width: i64,
    /// A 3x3 stride-1 stem without max-pool, for small images (CIFAR-style).
    /// Parameter names stay torchvision's; shapes differ from its 7x7 stem.
    #[serde(default)]
    pub small_stem: bool,
    /// Initialise the last batch norm of each block to zero (Goyal et al.).
    #[serde(default)]
    pub zero_init_residual: bool,
}

fn default_depth() -> u32 {
    18
}

fn default_width() -> i64 {
    64
}

impl Default for ResNetParams {
    fn default() -> Self {
        ResNetParams {
            depth: default_depth(),
            width: default_width(),
            small_stem: false,
            zero_init_residual: false,
        }
    }
}

/// A ResNet trunk (no classifier).
#[derive(Debug)]
pub struct ResNet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    small_stem: bool,
    layers: Vec<Vec<Block>>,
    out_dim: i64,
}

#[derive(Debug)]
struct Block {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias: false,
        // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu").
        ws_init: nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Normal,
            fan: nn::init::FanInOut::FanOut,
            non_linearity: nn::init::NonLinearity::ReLU,
        },
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, config)
}

fn bn(p: nn::Path, c: i64, zero: bool) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        ws_init: nn::Init::Const(if zero { 0.0 } else { 1.0 }),
        ..Default::default()
    };
    nn::batch_norm2d(p, c, config)
}

impl Block {
    fn new(p: nn::Path, c_in: i64, planes: i64, stride: i64, bottleneck: bool, zero_last: bool) -> (Block, i64) {
        let expansion = if bottleneck { 4 } else { 1 };
        let c_out = planes * expansion;
        // (kernel, in, out, stride) of each convolution, torchvision's order.
        let shapes: Vec<(i64, i64, i64, i64)> = if bottleneck {
            vec![(1, c_in, planes, 1), (3, planes, planes, stride), (1, planes, c_out, 1)]
        } else {
            vec![(3, c_in, planes, stride), (3, planes, c_out, 1)]
        };
        let last = shapes.len() - 1;
        let convs = shapes
            .iter()
            .enumerate()
            .map(|(i, &(k, a, b, s))| {
                (
                    conv(&p / format!("conv{}", i + 1), a, b, k, s),
                    bn(&p / format!("bn{}", i + 1), b, zero_last && i == last),
                )
            })
            .collect();
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            (
                conv(&p / "downsample" / 0, c_in, c_out, 1, stride),
                bn(&p / "downsample" / 1, c_out, false),
            )
        });
        (Block { convs, downsample }, c_out)
    }

    fn out_channels(&self) -> i64 {
        self.convs.last().map_or(0, |(c, _)| c.ws.size()[0])
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        for (i, (c, b)) in self.convs.iter().enumerate() {
            y = y.apply(c).apply_t(b, train);
            if i != last {
                // In place, as torchvision's ReLU(inplace=True): batch norm's
                // backward needs its input, not its output.
                y = y.relu_();
            }
        }
        let identity = match &self.downsample {
            Some((c, b)) => x.apply(c).apply_t(b, train),
            None => x.shallow_clone(),
        };
        (y + identity).relu_()
    }
}

impl ResNet {
    /// Builds the trunk under `vs` for `in_channels`-channel images.
    pub fn new(vs: &nn::Path, in_channels: i64, params: &ResNetParams) -> Result<ResNet> {
        let (blocks, bottleneck) = match params.depth {
            18 => ([2, 2, 2, 2], false),
            34 => ([3, 4, 6, 3], false),
            50 => ([3, 4, 6, 3], true),
            101 => ([3, 4, 23, 3], true),
            152 => ([3, 8, 36, 3], true),
            d => return Err(Error::msg(format!("depth: expected 18, 34, 50, 101 or 152, got {d}"))),
        };
        if params.width < 1 {
            return Err(Error::msg(format!("width: expected at least 1, got {}", params.width)));
        }
        let w = params.width;
        let (k, s) = if params.small_stem { (3, 1) } else { (7, 2) };
        let conv1 = conv(vs / "conv1", in_channels, w, k, s);
        let bn1 = bn(vs / "bn1", w, false);
        let mut c_in = w;
        let mut layers = vec![];
        for (stage, &n) in blocks.iter().enumerate() {
            let planes = w << stage;
            let p = vs / format!("layer{}", stage + 1);
            let mut layer = vec![];
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let (block, c_out) = Block::new(&p / i, c_in, planes, stride, bottleneck, params.zero_init_residual);
                layer.push(block);
                c_in = c_out;
            }
            layers.push(layer);
        }
        Ok(ResNet {
            conv1,
            bn1,
            small_stem: params.small_stem,
            layers,
            out_dim: c_in,
        })
    }

    /// The last stage's feature map `[N, C, h, w]`.
    pub fn trunk(&self, images: &Tensor, train: bool) -> Tensor {
        let mut x = self.stem(images, train);
        for stage in 0..self.layers.len() {
            x = self.stage(stage, x, train);
        }
        x
    }

    /// Convolution, batch norm, ReLU and (unless `small_stem`) max-pool.
    fn stem(&self, images: &Tensor, train: bool) -> Tensor {
        let x = images.apply(&self.conv1).apply_t(&self.bn1, train).relu_();
        if self.small_stem {
            x
        } else {
            x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
        }
    }

    /// Stage `stage` (0-based: torchvision's `layer{stage + 1}`) on `x`.
    fn stage(&self, stage: usize, mut x: Tensor, train: bool) -> Tensor {
        for block in &self.layers[stage] {
            x = block.forward(&x, train);
        }
        x
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.trunk(xs, train).mean_dim(&[-2i64, -1][..], false, None)
    }
}

/// Stem = layer 0, `layerK` = layer K.
impl ParameterLayers for ResNet {
    fn num_layers(&self) -> usize {
        self.layers.len()
    }
    fn layer_of(&self, name: &str) -> usize {
        let stage = name
            .strip_prefix("layer")
            .and_then(|rest| rest.split('.').next())
            .and_then(|k| k.parse::<usize>().ok());
        match stage {
            Some(k) => k,
            None if name.starts_with("conv1.") || name.starts_with("bn1.") => 0,
            None => self.layers.len() + 1,
        }
    }
}

/// The outputs of the four stages.
impl Intermediates for ResNet {
    fn count(&self) -> usize {
        self.layers.len()
    }
    fn channels(&self) -> Vec<i64> {
        let last = |layer: &Vec<Block>| layer.last().map_or(0, |b| b.out_channels());
        self.layers.iter().map(last).collect()
    }
    fn forward_intermediates(&self, images: &Tensor, indices: &[usize], train: bool) -> Result<Vec<Intermediate>> {
        check_indices(indices, self.layers.len(), "ResNet stages")?;
        let deepest = indices.iter().copied().max().unwrap_or(0);
        let mut x = self.stem(images, train);
        let mut outputs = Vec::with_capacity(deepest + 1);
        for stage in 0..=deepest {
            x = self.stage(stage, x, train);
            outputs.push(x.shallow_clone());
        }
        Ok(indices
            .iter()
            .map(|&i| Intermediate {
                map: outputs[i].shallow_clone(),
                prefix: None,
            })
            .collect())
    }
}

/// Refuses an empty list or an index past `count` blocks or stages.
pub(crate) fn check_indices(indices: &[usize], count: usize, what: &str) -> Result<()> {
    match indices.iter().find(|&&i| i >= count) {
        _ if indices.is_empty() => Err(Error::msg(format!("no intermediate {what} asked for"))),
        Some(i) => Err(Error::msg(format!(
            "intermediate output {i} asked for, but there are {count} {what} (0..{count})"
        ))),
        None => Ok(()),
    }
}

impl Backbone for ResNet {
    fn outputs(&self) -> Vec<FeatureSpec> {
        vec![
            FeatureSpec {
                name: POOLED.into(),
                dim: self.out_dim,
            },
            FeatureSpec {
                name: TRUNK.into(),
                dim: self.out_dim,
            },
        ]
    }

    fn forward(&self, images: &Tensor, train: bool) -> Result<Features> {
        let trunk = self.trunk(images, train);
        let pooled = trunk.mean_dim(&[-2i64, -1][..], false, None);
        Ok(Features::from([
            (POOLED.to_string(), pooled),
            (TRUNK.to_string(), trunk),
        ]))
    }
    fn layers(&self) -> Option<&dyn ParameterLayers> {
        Some(self)
    }
    fn intermediates(&self) -> Option<&dyn Intermediates> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn build(params: ResNetParams) -> Result<(nn::VarStore, ResNet)> {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = ResNet::new(&vs.root(), 3, &params)?;
        Ok((vs, model))
    }

    #[test]
    fn widths_and_outputs_follow_the_parameters() {
        let (vs, model) = build(ResNetParams {
            depth: 50,
            width: 8,
            ..Default::default()
        })
        .unwrap();
        let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward(&x, false).unwrap();
        assert_eq!(out[POOLED].size(), vec![2, 8 * 8 * 4]);
        assert_eq!(out[TRUNK].size(), vec![2, 256, 2, 2]);
        assert_eq!(model.outputs()[0].dim, 256);
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(names.contains(&"layer4.0.downsample.1.running_var".to_string()));
        assert!(names.contains(&"layer1.2.conv3.weight".to_string()));
    }

    #[test]
    fn small_stem_keeps_resolution_and_zero_init_makes_blocks_identity() {
        let (_vs, model) = build(ResNetParams {
            width: 4,
            small_stem: true,
            zero_init_residual: true,
            ..Default::default()
        })
        .unwrap();
        let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(model.trunk(&x, false).size(), vec![1, 32, 4, 4]);
        let block = &model.layers[0][0];
        let h = Tensor::randn([1, 4, 8, 8], (Kind::Float, Device::Cpu)).relu();
        // With the last BN at zero a block without downsample is relu(x) = x.
        let y = block.forward(&h, false);
        assert!((y - &h).abs().max().double_value(&[]) < 1e-6);
    }

    #[test]
    fn bad_depth_and_width_are_named() {
        let err = build(ResNetParams {
            depth: 20,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("depth:"), "{err}");
        let err = build(ResNetParams {
            width: 0,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("width:"), "{err}");
    }
}
