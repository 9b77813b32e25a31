//! SGD with momentum and Nesterov, as `torch.optim.SGD` (dampening 0).

use crate::optim::{zero_grads, Buffers, OptimizerState, ParamGroup};
use crate::optimizer::Optimizer;
use crate::Result;

/// SGD hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct SgdConfig {
    /// Base learning rate.
    pub lr: f64,
    /// Momentum (0 for none).
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// The optimiser.
pub struct Sgd {
    config: SgdConfig,
    groups: Vec<ParamGroup>,
    buffers: Buffers,
    step: u64,
}

impl Sgd {
    /// SGD over `groups`.
    pub fn new(config: SgdConfig, groups: Vec<ParamGroup>) -> Self {
        Sgd {
            config,
            groups,
            buffers: Buffers::default(),
            step: 0,
        }
    }
}

impl Optimizer for Sgd {
    fn zero_grad(&mut self) -> Result<()> {
        zero_grads(&mut self.groups);
        Ok(())
    }

    fn step(&mut self, lr_scale: f64) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        let SgdConfig { lr, momentum, nesterov } = self.config;
        for group in &mut self.groups {
            let lr = lr * lr_scale * group.lr_scale;
            for (name, p) in &mut group.params {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let mut d = if group.weight_decay != 0.0 {
                    &grad + &*p * group.weight_decay
                } else {
                    grad
                };
                if momentum != 0.0 {
                    let fresh = !self.buffers.has(name, "momentum_buffer");
                    let buf = self.buffers.get(name, "momentum_buffer", p);
                    if fresh {
                        buf.copy_(&d);
                    } else {
                        let _ = buf.f_mul_scalar_(momentum)?.f_add_(&d)?;
                    }
                    d = if nesterov {
                        d + &*buf * momentum
                    } else {
                        buf.shallow_clone()
                    };
                }
                let _ = p.f_sub_(&(d * lr))?;
            }
        }
        self.step += 1;
        Ok(())
    }

    fn state(&self) -> Result<OptimizerState> {
        Ok(self.buffers.export(self.step))
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        self.step = self.buffers.restore(state, &self.groups)?;
        Ok(())
    }
}
