//! The two vector heads of the papers, on flattened backbone outputs.

use visage_core::tch::nn::{self, Module, ModuleT};
use visage_core::tch::Tensor;

use super::Head;

/// A linear layer on the flattened input (PCL's FER probe: weights
/// `N(0, 0.01)`, bias 0).
#[derive(Debug)]
pub struct LinearHead(nn::Linear);

impl LinearHead {
    /// `Linear(in_dim -> out)` under `path`.
    pub fn new(path: nn::Path<'_>, in_dim: i64, out: i64) -> Self {
        let config = nn::LinearConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.01 },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        LinearHead(nn::linear(path, in_dim, out, config))
    }
}

impl Head for LinearHead {
    fn forward(&self, inputs: &[Tensor], _train: bool) -> Tensor {
        self.0.forward(&inputs[0].flatten(1, -1))
    }
}

/// `BatchNorm1d` then a linear layer, on the flattened input (PCL's pose
/// and AU heads).
#[derive(Debug)]
pub struct BnLinearHead {
    norm: nn::BatchNorm,
    linear: nn::Linear,
}

impl BnLinearHead {
    /// `BatchNorm1d(in_dim)` and `Linear(in_dim -> out)` under `path`
    /// (PyTorch's default initialisation).
    pub fn new(path: nn::Path<'_>, in_dim: i64, out: i64) -> Self {
        BnLinearHead {
            norm: nn::batch_norm1d(&path / "norm", in_dim, Default::default()),
            linear: nn::linear(&path / "linear", in_dim, out, Default::default()),
        }
    }
}

impl Head for BnLinearHead {
    fn forward(&self, inputs: &[Tensor], train: bool) -> Tensor {
        let x = self.norm.forward_t(&inputs[0].flatten(1, -1), train);
        self.linear.forward(&x)
    }
}

/// Elements of one input row: the flattened size of `shape` (without the
/// batch dimension).
pub fn flat_dim(shape: &[i64]) -> i64 {
    shape.iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_core::tch::{Device, Kind};

    #[test]
    fn heads_flatten_maps_and_the_linear_probe_starts_near_zero() {
        let vs = nn::VarStore::new(Device::Cpu);
        let x = Tensor::randn([4, 2, 3, 3], (Kind::Float, Device::Cpu));
        let linear = LinearHead::new(vs.root() / "a", 18, 7);
        assert_eq!(linear.forward(&[x.shallow_clone()], false).size(), [4, 7]);
        let std = linear.0.ws.std(true).double_value(&[]);
        assert!((0.005..0.02).contains(&std), "weights N(0, 0.01): std {std}");
        assert_eq!(
            linear.0.bs.as_ref().unwrap().abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        let bn = BnLinearHead::new(vs.root() / "b", 18, 3);
        // In training mode the batch is normalised: its features have mean 0.
        let normed = bn.norm.forward_t(&x.flatten(1, -1), true);
        assert!(normed.mean_dim(0, false, Kind::Float).abs().max().double_value(&[]) < 1e-5);
        assert_eq!(bn.forward(&[x], true).size(), [4, 3]);
        assert_eq!(flat_dim(&[128, 7, 7]), 6272);
    }
}
