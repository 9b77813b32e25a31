//! `example_convnet`: three 3x3 convolutions with stride 2, batch norm and
//! ReLU, then a global average pool. Outputs `trunk` (the last feature map)
//! and `pooled`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::{Backbone, BackboneContext, FeatureSpec, Features, POOLED};
use visage_core::tch::{nn, nn::ModuleT, Tensor};
use visage_core::{Error, Result};

/// Parameters of `example_convnet`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvNetParams {
    /// Channels of the first block; each block doubles them.
    #[serde(default = "default_width")]
    pub width: i64,
}

fn default_width() -> i64 {
    16
}

/// The network.
pub struct ConvNet {
    blocks: nn::SequentialT,
    dim: i64,
}

impl ConvNet {
    /// Creates the parameters under `ctx.vs`.
    pub fn new(params: ConvNetParams, ctx: &BackboneContext<'_>) -> Result<Self> {
        if params.width < 1 {
            return Err(Error::msg(format!("width must be at least 1, got {}", params.width)));
        }
        let conv = nn::ConvConfig {
            stride: 2,
            padding: 1,
            bias: false,
            ..Default::default()
        };
        let mut blocks = nn::seq_t();
        let mut channels = ctx.in_channels;
        for i in 0..3 {
            let out = params.width << i;
            let path = &ctx.vs / format!("block{i}");
            blocks = blocks
                .add(nn::conv2d(&path / "conv", channels, out, 3, conv))
                .add(nn::batch_norm2d(&path / "bn", out, Default::default()))
                .add_fn(|x| x.relu());
            channels = out;
        }
        Ok(ConvNet { blocks, dim: channels })
    }
}

impl Backbone for ConvNet {
    fn outputs(&self) -> Vec<FeatureSpec> {
        vec![
            FeatureSpec {
                name: "trunk".into(),
                dim: self.dim,
            },
            FeatureSpec {
                name: POOLED.into(),
                dim: self.dim,
            },
        ]
    }

    fn forward(&self, images: &Tensor, train: bool) -> Result<Features> {
        let trunk = self.blocks.forward_t(images, train);
        let pooled = trunk.mean_dim(&[2i64, 3][..], false, trunk.kind());
        Ok(Features::from([
            ("trunk".to_string(), trunk),
            (POOLED.to_string(), pooled),
        ]))
    }
}
