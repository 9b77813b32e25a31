//! Components every host registers under the plugin name `builtin`:
//! optimisers (`sgd`, `adam`, `adamw`), schedulers (`constant`, `cosine`) and
//! the metric `accuracy`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};
use tch::Tensor;

use crate::metric::Metric;
use crate::optimizer::{Optimizer, OptimizerContext};
use crate::scheduler::Scheduler;
use crate::{Error, NoParams, Registry, Result};

/// Name under which these components are registered.
pub const PLUGIN: &str = "builtin";

/// Registers the built-in components.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.set_plugin(PLUGIN);
    registry.optimizer("sgd", |p: SgdParams, ctx| {
        TchOptimizer::new(
            ctx,
            p.lr,
            nn::Sgd {
                momentum: p.momentum,
                dampening: 0.0,
                wd: p.weight_decay,
                nesterov: p.nesterov,
            },
        )
    })?;
    registry.optimizer("adam", |p: AdamParams, ctx| {
        TchOptimizer::new(
            ctx,
            p.lr,
            nn::Adam {
                beta1: p.betas[0],
                beta2: p.betas[1],
                wd: p.weight_decay,
                eps: p.eps,
                amsgrad: false,
            },
        )
    })?;
    registry.optimizer("adamw", |p: AdamParams, ctx| {
        TchOptimizer::new(
            ctx,
            p.lr,
            nn::AdamW {
                beta1: p.betas[0],
                beta2: p.betas[1],
                wd: p.weight_decay,
                eps: p.eps,
                amsgrad: false,
            },
        )
    })?;
    registry.scheduler("constant", |_: NoParams, _| Ok(Constant))?;
    registry.scheduler("cosine", |p: CosineParams, _| Ok(p))?;
    registry.metric("accuracy", |_: NoParams, _| Ok(Accuracy))?;
    Ok(())
}

/// Parameters of `sgd`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SgdParams {
    /// Base learning rate.
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
}

/// Parameters of `adam` and `adamw`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdamParams {
    /// Base learning rate.
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
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}

/// An optimiser backed by tch's `nn::Optimizer`. Its state cannot be
/// exported, so runs that use it cannot yet resume exactly.
struct TchOptimizer {
    inner: nn::Optimizer,
    lr: f64,
}

impl TchOptimizer {
    fn new(ctx: &OptimizerContext<'_>, lr: f64, config: impl OptimizerConfig) -> Result<Self> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::msg(format!("lr must be a positive number, got {lr}")));
        }
        Ok(TchOptimizer {
            inner: config.build(ctx.vs, lr)?,
            lr,
        })
    }
}

impl Optimizer for TchOptimizer {
    fn zero_grad(&mut self) -> Result<()> {
        self.inner.zero_grad();
        Ok(())
    }
    fn step(&mut self, lr_scale: f64) -> Result<()> {
        self.inner.set_lr(self.lr * lr_scale);
        self.inner.step();
        Ok(())
    }
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

impl Scheduler for CosineParams {
    fn factor(&self, step: u64, total: u64) -> Result<f64> {
        if step < self.warmup_steps {
            return Ok((step + 1) as f64 / self.warmup_steps as f64);
        }
        let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        Ok(self.final_factor + (1.0 - self.final_factor) * cosine)
    }
}

/// Top-1 accuracy of logits `[N, C]` against class ids `[N]`, in percent.
struct Accuracy;

impl Metric for Accuracy {
    fn compute(&self, outputs: &Tensor, targets: &Tensor) -> Result<f64> {
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
        Ok(100.0 * correct.double_value(&[]) / n.max(1) as f64)
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
        let targets = Tensor::from_slice(&[0i64, 1, 1, 1]);
        assert_eq!(Accuracy.compute(&logits, &targets).unwrap(), 75.0);
        assert!(Accuracy.compute(&targets, &targets).is_err());
    }

    #[test]
    fn builtins_register_and_reject_bad_params() {
        let mut r = Registry::new();
        register(&mut r).unwrap();
        assert_eq!(r.names(crate::Kind::Optimizer), vec!["adam", "adamw", "sgd"]);
        let err = r
            .info(crate::Kind::Optimizer, "sgd")
            .unwrap()
            .normalize(r#"{"lr": 0.1, "momentun": 0.9}"#)
            .unwrap_err();
        assert_eq!(err.path, vec!["momentun"]);
        let again = register(&mut r).unwrap_err().to_string();
        assert_eq!(
            again,
            "optimizer `sgd` is registered twice: by plugin `builtin` and by plugin `builtin`"
        );
    }
}
