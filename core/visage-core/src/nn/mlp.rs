//! The projector and predictor MLPs of MoCo v3 (the paper's Sec. 3 and
//! Appendix; `_build_mlp` of the official code), which MCF reuses:
//! `layers` linear layers without bias, each but the last followed by batch
//! norm and ReLU; the last optionally followed by a batch norm without
//! affine parameters (SimCLR's design, "we further removed gamma in BN").
//! Modules are numbered as in a PyTorch `nn.Sequential` (`0` linear, `1`
//! batch norm, `2` ReLU, `3` linear, ...), so that the official
//! checkpoints' `head.*`/`fc.*` and `predictor.*` names load by index.
//!
//! ```
//! use visage_core::nn::mlp::{LinearInit, Mlp, MlpShape};
//! use tch::{nn, Device, Kind, Tensor};
//! let vs = nn::VarStore::new(Device::Cpu);
//! let shape = MlpShape { layers: 3, input: 8, hidden: 16, output: 4, last_bn: true, init: LinearInit::Torch };
//! let projector = Mlp::new(&(vs.root() / "projector"), shape)?;
//! let z = projector.forward(&Tensor::randn([32, 8], (Kind::Float, Device::Cpu)), true);
//! assert_eq!(z.size(), [32, 4]);
//! # Ok::<(), visage_core::Error>(())
//! ```

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::{Error, Result};

/// How the linear layers' weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearInit {
    /// PyTorch's `nn.Linear(bias=False)`: uniform in `+-1/sqrt(fan_in)`
    /// (MoCo v3's official MLPs).
    Torch,
    /// Xavier uniform, bound `sqrt(6 / (fan_in + fan_out))` (MCF's
    /// official `_init_weights`).
    Xavier,
}

/// Shape of one MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MlpShape {
    /// Linear layers (at least 1).
    pub layers: usize,
    /// Input width.
    pub input: i64,
    /// Width of the hidden layers (the paper: 4096).
    pub hidden: i64,
    /// Output width (the paper: 256).
    pub output: i64,
    /// A batch norm without affine parameters after the last linear layer.
    pub last_bn: bool,
    /// The linear layers' initialisation.
    pub init: LinearInit,
}

/// The MLP: a sequence of linear, batch-norm and ReLU modules.
#[derive(Debug)]
pub struct Mlp {
    seq: nn::SequentialT,
}

impl Mlp {
    /// Builds the MLP under `p` (modules `p.0`, `p.1`, ...).
    pub fn new(p: &nn::Path, shape: MlpShape) -> Result<Self> {
        if shape.layers == 0 || shape.input <= 0 || shape.hidden <= 0 || shape.output <= 0 {
            return Err(Error::msg(format!(
                "an MLP needs at least one layer and positive widths, got {shape:?}"
            )));
        }
        let mut seq = nn::seq_t();
        let mut index = 0usize;
        let mut next = || {
            index += 1;
            index - 1
        };
        for l in 0..shape.layers {
            let last = l + 1 == shape.layers;
            let c_in = if l == 0 { shape.input } else { shape.hidden };
            let c_out = if last { shape.output } else { shape.hidden };
            seq = seq.add(nn::linear(
                p / next(),
                c_in,
                c_out,
                linear_config(shape.init, c_in, c_out),
            ));
            if !last {
                seq = seq
                    .add(nn::batch_norm1d(p / next(), c_out, Default::default()))
                    .add_fn(|x| x.relu());
                next();
            } else if shape.last_bn {
                let affine_free = nn::BatchNormConfig {
                    affine: false,
                    ..Default::default()
                };
                seq = seq.add(nn::batch_norm1d(p / next(), c_out, affine_free));
            }
        }
        Ok(Mlp { seq })
    }

    /// Runs the MLP on `[N, input]`; batch norms use the batch's
    /// statistics when `train`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.seq.forward_t(x, train)
    }
}

/// A bias-free linear layer initialised by `init`.
fn linear_config(init: LinearInit, c_in: i64, c_out: i64) -> nn::LinearConfig {
    let ws_init = match init {
        LinearInit::Torch => nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Uniform,
            fan: nn::init::FanInOut::FanIn,
            non_linearity: nn::init::NonLinearity::ExplicitGain(1.0 / 3f64.sqrt()),
        },
        LinearInit::Xavier => {
            let bound = (6.0 / (c_in + c_out) as f64).sqrt();
            nn::Init::Uniform { lo: -bound, up: bound }
        }
    };
    nn::LinearConfig {
        ws_init,
        bs_init: None,
        bias: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn names(vs: &nn::VarStore) -> Vec<String> {
        let mut n: Vec<String> = vs.variables().into_keys().collect();
        n.sort();
        n
    }

    /// The ViT projector of the official code: Linear-BN-ReLU twice, then
    /// Linear and an affine-free BN; indices as nn.Sequential's.
    #[test]
    fn the_three_layer_projector_has_the_official_names_and_no_biases() {
        let vs = nn::VarStore::new(Device::Cpu);
        let shape = MlpShape {
            layers: 3,
            input: 8,
            hidden: 16,
            output: 4,
            last_bn: true,
            init: LinearInit::Torch,
        };
        let mlp = Mlp::new(&(vs.root() / "projector"), shape).unwrap();
        let want = [
            "projector.0.weight",
            "projector.1.bias",
            "projector.1.running_mean",
            "projector.1.running_var",
            "projector.1.weight",
            "projector.3.weight",
            "projector.4.bias",
            "projector.4.running_mean",
            "projector.4.running_var",
            "projector.4.weight",
            "projector.6.weight",
            "projector.7.running_mean",
            "projector.7.running_var",
        ];
        assert_eq!(names(&vs), want);
        // The final BN standardises each output channel over the batch.
        let x = Tensor::randn([32, 8], (Kind::Float, Device::Cpu));
        let y = mlp.forward(&x, true);
        assert_eq!(y.size(), [32, 4]);
        let mean = y.mean_dim(0, false, None).abs().max().double_value(&[]);
        let var = y.var_dim(0, false, false);
        assert!(mean < 1e-5, "{mean}");
        assert!((var - 1.0).abs().max().double_value(&[]) < 1e-3);
    }

    /// The ResNet predictor: Linear-BN-ReLU-Linear, nothing after.
    #[test]
    fn the_predictor_without_last_bn_ends_in_a_linear_layer() {
        let vs = nn::VarStore::new(Device::Cpu);
        let shape = MlpShape {
            layers: 2,
            input: 4,
            hidden: 16,
            output: 4,
            last_bn: false,
            init: LinearInit::Torch,
        };
        Mlp::new(&(vs.root() / "predictor"), shape).unwrap();
        let n = names(&vs);
        assert_eq!(n.last().unwrap(), "predictor.3.weight");
        assert_eq!(n.len(), 6, "{n:?}");
        let bound = 1.0 / 16f64.sqrt();
        let w = vs.variables()["predictor.3.weight"].abs().max().double_value(&[]);
        assert!(w <= bound && w > 0.5 * bound, "{w}");
        let zero = MlpShape { layers: 0, ..shape };
        assert!(Mlp::new(&(vs.root() / "x"), zero).is_err());
    }

    /// MCF's Xavier bound: sqrt(6 / (16 + 4)).
    #[test]
    fn xavier_weights_stay_within_their_bound() {
        let vs = nn::VarStore::new(Device::Cpu);
        let shape = MlpShape {
            layers: 2,
            input: 4,
            hidden: 16,
            output: 4,
            last_bn: false,
            init: LinearInit::Xavier,
        };
        Mlp::new(&(vs.root() / "predictor"), shape).unwrap();
        let bound = (6.0f64 / 20.0).sqrt();
        let w = vs.variables()["predictor.3.weight"].abs().max().double_value(&[]);
        assert!(w <= bound && w > 0.5 * bound, "{w}");
    }
}
