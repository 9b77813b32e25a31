//! Visage plugin `{{name}}`: an optimiser. Registered as `{{name}}`.
//!
//! Plain stochastic gradient descent, written out: p <- p - lr * grad.
//! `state`/`load_state` let checkpoints resume it exactly; an optimiser
//! with buffers (momentum, moments) returns them there by parameter name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::optim::OptimizerState;
use visage_core::optimizer::{Optimizer, OptimizerContext, StepInfo};
use visage_core::tch::Tensor;
use visage_core::{declare_plugin, Error, Registry, Result};

/// Parameters, checked before anything is built.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Base learning rate.
    pub lr: f64,
}

/// The optimiser.
pub struct Sgd {
    variables: Vec<Tensor>,
    lr: f64,
    step: u64,
}

impl Sgd {
    fn new(params: Params, ctx: &OptimizerContext<'_>) -> Result<Self> {
        if params.lr.is_nan() || params.lr <= 0.0 {
            return Err(Error::msg(format!("lr must be positive, got {}", params.lr)));
        }
        Ok(Sgd { variables: ctx.vs.trainable_variables(), lr: params.lr, step: 0 })
    }
}

impl Optimizer for Sgd {
    fn zero_grad(&mut self) -> Result<()> {
        for v in &mut self.variables {
            v.zero_grad();
        }
        Ok(())
    }

    fn step(&mut self, at: StepInfo) -> Result<()> {
        let _no_grad = visage_core::tch::no_grad_guard();
        for v in &mut self.variables {
            let grad = v.grad();
            if grad.defined() {
                let _ = v.f_sub_(&(grad * (self.lr * at.lr_scale)))?;
            }
        }
        self.step += 1;
        Ok(())
    }

    fn state(&self) -> Result<OptimizerState> {
        Ok(OptimizerState { step: self.step, buffers: Default::default() })
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        if !state.buffers.is_empty() {
            return Err(Error::msg("{{name}} keeps no buffers, but the state has some"));
        }
        self.step = state.step;
        Ok(())
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.optimizer("{{name}}", Sgd::new)
}

declare_plugin!(name: "{{name}}", register: register);
