//! Components every host registers under the plugin name `builtin`:
//! backbones (`resnet` with torchvision's names, `vit` with timm's and
//! MAE's; paper-specific backbones are in their paper's plugin),
//! optimisers (`sgd`, `adam`, `adamw`, `lars`, with exportable state),
//! schedulers (`constant`, `cosine`), the metric `accuracy`, and the
//! augmentations of [`crate::augment`] (`resize`, `center_crop`,
//! `random_resized_crop`, `distance_crop`, `hflip`, `rotate`, `affine`,
//! `color_jitter`, `grayscale`, `gaussian_blur`, `solarize`, `sobel`,
//! `gaussian_noise`, `random_erasing`, `normalize`), and the datasets of
//! [`crate::data::sources`] (`image_folder`, `file_list`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::metric::{Labels, Metric, Metrics};
use crate::nn::{ResNet, ResNetParams, VisionTransformer, VitParams};

use crate::optim::{build_groups, Adam, AdamConfig, GroupSpec, Lars, LarsConfig, Rule, Sgd, SgdConfig, Stateful};
use crate::optimizer::OptimizerContext;
use crate::schedule::{Schedule, Shape};
use crate::scheduler::Scheduler;
use crate::{Error, NoParams, Registry, Result};

/// The [`Grouping`] of an optimiser's parameters.
macro_rules! grouping {
    ($p:expr) => {
        Grouping {
            layer_decay: $p.layer_decay,
            lr_multipliers: &$p.lr_multipliers,
            weight_decay_end: $p.weight_decay_end,
        }
    };
}

/// Name under which these components are registered.
pub const PLUGIN: &str = "builtin";

/// Registers the built-in components.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.set_plugin(PLUGIN);
    registry.backbone("resnet", |p: ResNetParams, ctx| {
        ResNet::new(&ctx.vs, ctx.in_channels, &p)
    })?;
    registry.backbone("vit", |p: VitParams, ctx| {
        VisionTransformer::new(&ctx.vs, ctx.in_channels, &p)
    })?;
    registry.optimizer("sgd", |p: SgdParams, ctx| {
        let config = SgdConfig {
            lr: positive_lr(p.lr)?,
            momentum: p.momentum,
            nesterov: p.nesterov,
        };
        let grouping = grouping!(p);
        let g = grouping.spec(p.weight_decay, p.decay_norm_and_bias);
        scheduled(Sgd::new(config, build_groups(ctx.vs, &g, ctx.backbone)?), &grouping)
    })?;
    registry.optimizer("adam", |p: AdamParams, ctx| adam(p, ctx, false))?;
    registry.optimizer("adamw", |p: AdamParams, ctx| adam(p, ctx, true))?;
    registry.optimizer("lars", |p: LarsParams, ctx| {
        let config = LarsConfig {
            lr: positive_lr(p.lr)?,
            momentum: p.momentum,
            trust_coefficient: p.trust_coefficient,
        };
        // LARS itself leaves weights of dimension < 2 undecayed.
        let grouping = grouping!(p);
        let g = grouping.spec(p.weight_decay, true);
        scheduled(Lars::new(config, build_groups(ctx.vs, &g, ctx.backbone)?), &grouping)
    })?;
    registry.scheduler("constant", |_: NoParams, _| Ok(Constant))?;
    registry.scheduler("cosine", |p: CosineParams, _| Ok(p))?;
    registry.metric("accuracy", |p: AccuracyParams, _| Ok(Accuracy(p)))?;
    crate::augment::register(registry)?;
    crate::data::sources::register(registry)?;
    Ok(())
}

/// Parameters of `sgd`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SgdParams {
    /// Base learning rate (positive).
    #[serde(deserialize_with = "crate::params::check::positive_finite")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub lr: f64,
    /// Momentum.
    #[serde(default)]
    pub momentum: f64,
    /// L2 weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// Also decay biases and normalisation parameters (off: the SSL convention).
    #[serde(default)]
    pub decay_norm_and_bias: bool,
    /// Layer-wise learning-rate decay (e.g. 0.65 for ViT-B fine-tuning):
    /// layer `i` of `L` gets `layer_decay^(L + 1 - i)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_decay: Option<f64>,
    /// Learning-rate multipliers by variable-name prefix, e.g.
    /// `{method.predictor: 10}`; the longest matching prefix applies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lr_multipliers: BTreeMap<String, f64>,
    /// Weight decay at the last step: decayed groups move from
    /// `weight_decay` to this along half a cosine (DINO: 0.04 -> 0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay_end: Option<f64>,
}

/// Parameters of `adam` and `adamw`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdamParams {
    /// Base learning rate (positive).
    #[serde(deserialize_with = "crate::params::check::positive_finite")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub lr: f64,
    /// (beta1, beta2).
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Weight decay (L2 for adam, decoupled for adamw).
    #[serde(default)]
    pub weight_decay: f64,
    /// Denominator epsilon.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Also decay biases and normalisation parameters (off: the SSL convention).
    #[serde(default)]
    pub decay_norm_and_bias: bool,
    /// Layer-wise learning-rate decay (e.g. 0.65 for ViT-B fine-tuning):
    /// layer `i` of `L` gets `layer_decay^(L + 1 - i)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_decay: Option<f64>,
    /// Learning-rate multipliers by variable-name prefix, e.g.
    /// `{method.predictor: 10}`; the longest matching prefix applies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lr_multipliers: BTreeMap<String, f64>,
    /// Weight decay at the last step: decayed groups move from
    /// `weight_decay` to this along half a cosine (DINO: 0.04 -> 0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay_end: Option<f64>,
}

/// Parameters of `lars` (weight decay and trust ratio apply to weights of
/// dimension 2 and more only, as in MoCo v3 and BYOL).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LarsParams {
    /// Base learning rate (positive).
    #[serde(deserialize_with = "crate::params::check::positive_finite")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub lr: f64,
    /// Momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Trust coefficient (eta).
    #[serde(default = "default_trust")]
    pub trust_coefficient: f64,
    /// Layer-wise learning-rate decay (e.g. 0.65 for ViT-B fine-tuning):
    /// layer `i` of `L` gets `layer_decay^(L + 1 - i)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_decay: Option<f64>,
    /// Learning-rate multipliers by variable-name prefix, e.g.
    /// `{method.predictor: 10}`; the longest matching prefix applies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lr_multipliers: BTreeMap<String, f64>,
    /// Weight decay at the last step: decayed groups move from
    /// `weight_decay` to this along half a cosine (DINO: 0.04 -> 0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay_end: Option<f64>,
}

fn default_momentum() -> f64 {
    0.9
}
fn default_trust() -> f64 {
    0.001
}

fn positive_lr(lr: f64) -> Result<f64> {
    if lr.is_finite() && lr > 0.0 {
        Ok(lr)
    } else {
        Err(Error::msg(format!("lr must be a positive number, got {lr}")))
    }
}

/// The grouping options every built-in optimiser's parameters carry.
struct Grouping<'p> {
    layer_decay: Option<f64>,
    lr_multipliers: &'p BTreeMap<String, f64>,
    weight_decay_end: Option<f64>,
}

impl Grouping<'_> {
    fn spec(&self, weight_decay: f64, decay_norm_and_bias: bool) -> GroupSpec {
        GroupSpec {
            weight_decay,
            decay_norm_and_bias,
            layer_decay: self.layer_decay,
            lr_multipliers: self.lr_multipliers.clone(),
        }
    }
}

/// Applies the weight-decay schedule of `groups`, if any.
fn scheduled<R: Rule>(optimizer: Stateful<R>, groups: &Grouping<'_>) -> Result<Stateful<R>> {
    Ok(match groups.weight_decay_end {
        Some(end) if end.is_finite() && end >= 0.0 => optimizer.with_weight_decay_end(end),
        Some(end) => {
            return Err(Error::msg(format!(
                "weight_decay_end: expected a non-negative number, got {end}"
            )))
        }
        None => optimizer,
    })
}

fn adam(p: AdamParams, ctx: &OptimizerContext<'_>, decoupled: bool) -> Result<Adam> {
    let config = AdamConfig {
        lr: positive_lr(p.lr)?,
        betas: p.betas,
        eps: p.eps,
        decoupled,
    };
    let grouping = grouping!(p);
    let g = grouping.spec(p.weight_decay, p.decay_norm_and_bias);
    scheduled(Adam::new(config, build_groups(ctx.vs, &g, ctx.backbone)?), &grouping)
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}

struct Constant;

impl Scheduler for Constant {
    fn factor(&self, _step: u64, _total: u64) -> Result<f64> {
        Ok(1.0)
    }
}

/// Parameters of `cosine`: linear warm-up, then half a cosine down to
/// `final_factor`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CosineParams {
    /// Steps of linear warm-up from 0.
    #[serde(default)]
    pub warmup_steps: u64,
    /// Multiplier reached at the last step.
    #[serde(default)]
    pub final_factor: f64,
}

/// The [`Schedule`] from 1 to `final_factor`.
impl Scheduler for CosineParams {
    fn factor(&self, step: u64, total: u64) -> Result<f64> {
        let schedule = Schedule::Shaped(Shape::Cosine {
            start: 1.0,
            end: self.final_factor,
            warmup_steps: self.warmup_steps,
        });
        Ok(schedule.value(step, total))
    }
}

/// Parameters of `accuracy`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccuracyParams {
    /// The class label scored.
    #[serde(default = "class_label")]
    pub label: String,
}

fn class_label() -> String {
    crate::labels::CLASS.into()
}

/// Top-1 accuracy of logits `[N, C]` against the class ids `[N]` of label
/// `label`, in percent, as `accuracy`.
pub struct Accuracy(pub AccuracyParams);

impl Accuracy {
    /// The accuracy of label `label`.
    pub fn of(label: &str) -> Self {
        Accuracy(AccuracyParams { label: label.into() })
    }
}

impl Metric for Accuracy {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let targets = crate::metric::label(labels, &self.0.label, "accuracy")?;
        let (n, dims) = (targets.size1()?, outputs.dim());
        if dims != 2 || outputs.size()[0] != n {
            return Err(Error::msg(format!(
                "accuracy expects logits [N, C] and targets [N], got {:?} and [{n}]",
                outputs.size()
            )));
        }
        let correct = outputs
            .argmax(1, false)
            .eq_tensor(targets)
            .to_kind(tch::Kind::Double)
            .sum(tch::Kind::Double);
        let value = 100.0 * correct.double_value(&[]) / n.max(1) as f64;
        Ok([("accuracy".to_string(), value)].into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_the_final_factor() {
        let s = CosineParams {
            warmup_steps: 4,
            final_factor: 0.1,
        };
        let f: Vec<f64> = (0..14).map(|i| s.factor(i, 14).unwrap()).collect();
        assert_eq!(&f[..4], &[0.25, 0.5, 0.75, 1.0]);
        assert!((f[4] - 1.0).abs() < 1e-12);
        assert!(f.windows(2).skip(4).all(|w| w[1] <= w[0]));
        assert!((s.factor(14, 14).unwrap() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn accuracy_counts_argmax_hits() {
        let logits = Tensor::from_slice2(&[[2.0f32, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 1.0]]);
        let labels: Labels = [("class".to_string(), Tensor::from_slice(&[0i64, 1, 1, 1]))].into();
        let accuracy = Accuracy(AccuracyParams { label: "class".into() });
        assert_eq!(accuracy.compute(&logits, &labels).unwrap()["accuracy"], 75.0);
        assert!(accuracy.compute(&labels["class"], &labels).is_err());
        let err = Accuracy(AccuracyParams {
            label: "expression".into(),
        })
        .compute(&logits, &labels)
        .unwrap_err();
        assert!(err.to_string().contains("needs label `expression`"), "{err}");
    }

    #[test]
    fn builtins_register_and_reject_bad_params() {
        let mut r = Registry::new();
        register(&mut r).unwrap();
        assert_eq!(r.names(crate::Kind::Optimizer), vec!["adam", "adamw", "lars", "sgd"]);
        assert_eq!(r.names(crate::Kind::Backbone), vec!["resnet", "vit"]);
        let err = r
            .info(crate::Kind::Optimizer, "sgd")
            .unwrap()
            .normalize(r#"{"lr": 0.1, "momentun": 0.9}"#)
            .unwrap_err();
        assert_eq!(err.path, vec!["momentun"]);
        let again = register(&mut r).unwrap_err().to_string();
        assert_eq!(
            again,
            "backbone `resnet` is registered twice: by plugin `builtin` and by plugin `builtin`"
        );
    }
}
