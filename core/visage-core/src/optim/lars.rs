//! LARS (You, Gitman and Ginsburg, 2017) as the official MoCo v3 and BYOL
//! code apply it: weight decay and the trust ratio only on parameters of
//! dimension 2 and more; biases and normalisation parameters take plain
//! momentum SGD.

use crate::optim::{zero_grads, Buffers, OptimizerState, ParamGroup};
use crate::optimizer::Optimizer;
use crate::Result;

/// LARS hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct LarsConfig {
    /// Base learning rate.
    pub lr: f64,
    /// Momentum.
    pub momentum: f64,
    /// Trust coefficient (eta).
    pub trust_coefficient: f64,
}

/// The optimiser.
pub struct Lars {
    config: LarsConfig,
    groups: Vec<ParamGroup>,
    buffers: Buffers,
    step: u64,
}

impl Lars {
    /// LARS over `groups`.
    pub fn new(config: LarsConfig, groups: Vec<ParamGroup>) -> Self {
        Lars {
            config,
            groups,
            buffers: Buffers::default(),
            step: 0,
        }
    }
}

impl Optimizer for Lars {
    fn zero_grad(&mut self) -> Result<()> {
        zero_grads(&mut self.groups);
        Ok(())
    }

    fn step(&mut self, lr_scale: f64) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        let LarsConfig {
            lr,
            momentum,
            trust_coefficient,
        } = self.config;
        for group in &mut self.groups {
            let lr = lr * lr_scale * group.lr_scale;
            for (name, p) in &mut group.params {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let mut d = grad;
                if p.dim() > 1 {
                    d = d.f_add(&(&*p * group.weight_decay))?; // not in place: d is the gradient
                    let (param_norm, update_norm) = (p.norm().double_value(&[]), d.norm().double_value(&[]));
                    if param_norm > 0.0 && update_norm > 0.0 {
                        d = d.f_mul_scalar(trust_coefficient * param_norm / update_norm)?;
                    }
                }
                let mu = self.buffers.get(name, "mu", p);
                let _ = mu.f_mul_scalar_(momentum)?.f_add_(&d)?;
                let _ = p.f_sub_(&(&*mu * lr))?;
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
