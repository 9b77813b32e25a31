//! DINO's projection head (Caron et al., 2021), as LAFS uses it: an MLP of
//! `layers` linear layers with GELU between them (no batch norm) down to a
//! bottleneck, L2 normalisation, then a weight-normalised linear layer
//! without bias, `W = g v / |v|` row by row (`torch.nn.utils.weight_norm`
//! with `dim = 0`), whose norm `g` is fixed at 1 (`norm_last_layer`).
//!
//! Parameter names are DINO's (`mlp.0`, `mlp.2`, `mlp.4`,
//! `last_layer.weight_g`, `last_layer.weight_v`), so DINO and LAFS
//! checkpoints load by name. As in DINO, the MLP's weights start from
//! `N(0, 0.02^2)` (DINO truncates at +-2, a hundred standard deviations
//! away, which never bites) with zero biases, and the last layer's `v` from
//! PyTorch's default `Linear` initialisation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use visage_core::{Error, Result};

/// Sizes of the DINO head. LAFS: `hidden: 2048, bottleneck: 256,
/// out_dim: 100000, layers: 3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DinoHeadParams {
    /// Width of the hidden layers.
    #[serde(default = "default_hidden")]
    pub hidden: i64,
    /// Width of the bottleneck before the L2 normalisation.
    #[serde(default = "default_bottleneck")]
    pub bottleneck: i64,
    /// Output width `K` (the number of DINO "prototypes").
    #[serde(default = "default_out_dim")]
    pub out_dim: i64,
    /// Linear layers of the MLP (DINO: 3); 1 is a single linear layer.
    #[serde(default = "default_layers")]
    pub layers: i64,
    /// Keep the last layer's norm `g` fixed at 1 (DINO's
    /// `norm_last_layer`, LAFS: true); false trains it.
    #[serde(default = "default_norm_last_layer")]
    pub norm_last_layer: bool,
}

fn default_hidden() -> i64 {
    256
}
fn default_bottleneck() -> i64 {
    64
}
fn default_out_dim() -> i64 {
    1024
}
fn default_layers() -> i64 {
    3
}
fn default_norm_last_layer() -> bool {
    true
}

impl Default for DinoHeadParams {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

/// The head: MLP, L2 norm, weight-normalised last layer.
#[derive(Debug)]
pub struct DinoHead {
    mlp: Vec<nn::Linear>,
    weight_g: Tensor,
    weight_v: Tensor,
}

impl DinoHead {
    /// Builds the head under `p` for inputs of width `input`.
    pub fn new(p: &nn::Path<'_>, input: i64, params: &DinoHeadParams) -> Result<Self> {
        let sizes = [input, params.hidden, params.bottleneck, params.out_dim, params.layers];
        if sizes.iter().any(|&v| v < 1) {
            return Err(Error::msg(format!(
                "dino head: sizes must be positive, got input {input} and {params:?}"
            )));
        }
        let mut widths = vec![input];
        widths.extend(std::iter::repeat_n(params.hidden, (params.layers - 1) as usize));
        widths.push(params.bottleneck);
        let config = nn::LinearConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.02 },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let mlp_path = p / "mlp";
        let mlp = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                // One layer is `mlp` itself; more are `mlp.0`, `mlp.2`, ...
                // (GELUs at the odd indices).
                let path = if params.layers == 1 {
                    mlp_path.clone()
                } else {
                    &mlp_path / (2 * i).to_string()
                };
                nn::linear(path, w[0], w[1], config)
            })
            .collect();
        let last = p / "last_layer";
        // PyTorch's Linear default: U(-1/sqrt(in), 1/sqrt(in)).
        let bound = 1.0 / (params.bottleneck as f64).sqrt();
        let weight_v = last.var(
            "weight_v",
            &[params.out_dim, params.bottleneck],
            nn::Init::Uniform { lo: -bound, up: bound },
        );
        let weight_g = if params.norm_last_layer {
            last.ones_no_train("weight_g", &[params.out_dim, 1])
        } else {
            last.var("weight_g", &[params.out_dim, 1], nn::Init::Const(1.0))
        };
        Ok(DinoHead {
            mlp,
            weight_g,
            weight_v,
        })
    }

    /// The bottleneck features, L2-normalised `[N, bottleneck]`.
    pub fn bottleneck(&self, x: &Tensor) -> Tensor {
        let last = self.mlp.len() - 1;
        let mut x = x.shallow_clone();
        for (i, layer) in self.mlp.iter().enumerate() {
            x = x.apply(layer);
            if i < last {
                x = x.gelu("none");
            }
        }
        let norm = x.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12);
        x / norm
    }

    /// The last layer's weight `g v / |v|` (rows), `[out_dim, bottleneck]`;
    /// with `frozen`, cut from the graph so that no gradient reaches `v` or
    /// `g` (DINO's `cancel_gradients_last_layer`).
    pub fn last_weight(&self, frozen: bool) -> Tensor {
        let (g, v) = if frozen {
            (self.weight_g.detach(), self.weight_v.detach())
        } else {
            (self.weight_g.shallow_clone(), self.weight_v.shallow_clone())
        };
        let norm = v.norm_scalaropt_dim(2, [1], true);
        g * v / norm
    }

    /// The head's output `[N, out_dim]` for features `x` `[N, input]`;
    /// `freeze_last_layer` as in [`DinoHead::last_weight`].
    pub fn forward(&self, x: &Tensor, freeze_last_layer: bool) -> Tensor {
        self.bottleneck(x).matmul(&self.last_weight(freeze_last_layer).tr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn head(norm_last_layer: bool, layers: i64) -> (nn::VarStore, DinoHead) {
        let vs = nn::VarStore::new(Device::Cpu);
        let params = DinoHeadParams {
            hidden: 6,
            bottleneck: 3,
            out_dim: 5,
            layers,
            norm_last_layer,
        };
        let head = DinoHead::new(&(vs.root() / "head"), 4, &params).unwrap();
        (vs, head)
    }

    #[test]
    fn parameters_have_dinos_names_and_the_fixed_norm_is_not_trained() {
        let (vs, _) = head(true, 3);
        let vars = vs.variables();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "head.last_layer.weight_g",
                "head.last_layer.weight_v",
                "head.mlp.0.bias",
                "head.mlp.0.weight",
                "head.mlp.2.bias",
                "head.mlp.2.weight",
                "head.mlp.4.bias",
                "head.mlp.4.weight"
            ]
        );
        assert!(!vars["head.last_layer.weight_g"].requires_grad());
        assert_eq!(vars["head.last_layer.weight_g"].size(), [5, 1]);
        let (vs, _) = head(false, 1);
        let vars = vs.variables();
        assert!(vars["head.last_layer.weight_g"].requires_grad());
        assert!(vars.contains_key("head.mlp.weight"));
    }

    #[test]
    fn the_last_layer_has_unit_rows_and_a_frozen_layer_passes_no_gradient() {
        let (_, head) = head(true, 3);
        let w = head.last_weight(false);
        let norms = w.norm_scalaropt_dim(2, [1], false);
        assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-6);
        // With v = [[3, 4, 0], ...] row 0 of the weight is [0.6, 0.8, 0].
        tch::no_grad(|| {
            let v = head.weight_v.shallow_clone();
            v.narrow(0, 0, 1)
                .copy_(&Tensor::from_slice(&[3.0f32, 4.0, 0.0]).view([1, 3]));
        });
        let row: Vec<f32> = head.last_weight(false).get(0).try_into().unwrap();
        assert_eq!(row, [0.6, 0.8, 0.0]);
        let x = Tensor::randn([2, 4], (Kind::Float, Device::Cpu));
        head.forward(&x, true).sum(Kind::Float).backward();
        assert!(!head.weight_v.grad().defined());
        assert!(head.mlp[0].ws.grad().defined());
        head.forward(&x, false).sum(Kind::Float).backward();
        assert!(head.weight_v.grad().defined());
    }

    #[test]
    fn bad_sizes_are_refused() {
        let vs = nn::VarStore::new(Device::Cpu);
        let params = DinoHeadParams {
            out_dim: 0,
            ..Default::default()
        };
        let err = DinoHead::new(&vs.root(), 4, &params).unwrap_err().to_string();
        assert!(err.contains("dino head: sizes must be positive"), "{err}");
    }
}
