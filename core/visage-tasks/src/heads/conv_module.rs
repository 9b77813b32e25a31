//! mmcv's `ConvModule` as UPerNet uses it: a bias-free convolution, batch
//! norm and ReLU, with mmcv's parameter names (`conv.weight`, `bn.*`) and
//! initialisation (Kaiming normal, fan-out, ReLU gain; norm weight 1, bias 0).

use tch::nn;
use tch::Tensor;

/// Convolution (no bias), batch norm, ReLU.
#[derive(Debug)]
pub struct ConvBnRelu {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBnRelu {
    /// A `kernel` x `kernel` convolution from `c_in` to `c_out` channels,
    /// stride 1, padded to keep the size (`kernel / 2`), under `p.conv` and
    /// `p.bn`.
    pub fn new(p: &nn::Path, c_in: i64, c_out: i64, kernel: i64) -> Self {
        let config = nn::ConvConfig {
            padding: kernel / 2,
            bias: false,
            ws_init: nn::Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanOut,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
            ..Default::default()
        };
        let conv = nn::conv2d(p / "conv", c_in, c_out, kernel, config);
        let bn = nn::batch_norm2d(p / "bn", c_out, batch_norm_config());
        ConvBnRelu { conv, bn }
    }

    /// `relu(bn(conv(x)))`; `train` uses and updates the batch statistics.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train).relu()
    }
}

/// PyTorch's batch norm defaults (eps 1e-5, momentum 0.1) with the affine
/// weight at 1 (tch draws it uniformly in [0, 1] by default).
pub(crate) fn batch_norm_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    }
}
