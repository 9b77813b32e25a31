//! PCL's projectors `exp_fc` and `pose_fc`: Linear, ReLU, Linear,
//! BatchNorm1d, numbered as the official `nn.Sequential` (`0`, `2`, `3`).

use visage_core::tch::nn::{self, ModuleT};
use visage_core::tch::Tensor;

/// A projector head.
#[derive(Debug)]
pub struct Projector {
    first: nn::Linear,
    second: nn::Linear,
    norm: nn::BatchNorm,
}

impl Projector {
    /// `input -> hidden -> output` under `p`, PyTorch's default
    /// initialisation (as the official code, which leaves these modules
    /// to their defaults).
    pub fn new(p: nn::Path, input: i64, hidden: i64, output: i64) -> Self {
        Projector {
            first: nn::linear(&p / 0, input, hidden, Default::default()),
            second: nn::linear(&p / 2, hidden, output, Default::default()),
            norm: nn::batch_norm1d(&p / 3, output, Default::default()),
        }
    }

    /// Projects `x` `[N, input]`; batch statistics are those of `x`, so
    /// views that the official code projects apart are projected apart
    /// here too.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = x.apply(&self.first).relu().apply(&self.second);
        self.norm.forward_t(&h, true)
    }
}
