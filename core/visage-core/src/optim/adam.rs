//! Adam (L2 weight decay, as `torch.optim.Adam`) and AdamW (decoupled, as
//! `torch.optim.AdamW`).

use crate::optim::{zero_grads, Buffers, OptimizerState, ParamGroup};
use crate::optimizer::Optimizer;
use crate::Result;

/// Adam hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    /// Base learning rate.
    pub lr: f64,
    /// (beta1, beta2).
    pub betas: [f64; 2],
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay (AdamW) instead of L2 (Adam).
    pub decoupled: bool,
}

/// The optimiser.
pub struct Adam {
    config: AdamConfig,
    groups: Vec<ParamGroup>,
    buffers: Buffers,
    step: u64,
}

impl Adam {
    /// Adam or AdamW over `groups`.
    pub fn new(config: AdamConfig, groups: Vec<ParamGroup>) -> Self {
        Adam {
            config,
            groups,
            buffers: Buffers::default(),
            step: 0,
        }
    }
}

impl Optimizer for Adam {
    fn zero_grad(&mut self) -> Result<()> {
        zero_grads(&mut self.groups);
        Ok(())
    }

    fn step(&mut self, lr_scale: f64) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        let AdamConfig {
            lr,
            betas: [b1, b2],
            eps,
            decoupled,
        } = self.config;
        self.step += 1;
        let t = self.step as i32;
        let (correction1, correction2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for group in &mut self.groups {
            let lr = lr * lr_scale * group.lr_scale;
            for (name, p) in &mut group.params {
                let mut grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                if group.weight_decay != 0.0 {
                    if decoupled {
                        let _ = p.f_mul_scalar_(1.0 - lr * group.weight_decay)?;
                    } else {
                        grad = grad.f_add(&(&*p * group.weight_decay))?;
                    }
                }
                let m = self.buffers.get(name, "exp_avg", p);
                let _ = m.f_mul_scalar_(b1)?.f_add_(&(&grad * (1.0 - b1)))?;
                let m = m.shallow_clone();
                let v = self.buffers.get(name, "exp_avg_sq", p);
                let _ = v.f_mul_scalar_(b2)?.f_add_(&(&grad * &grad * (1.0 - b2)))?;
                let denom = v.sqrt() / correction2.sqrt() + eps;
                let _ = p.f_sub_(&(m / denom * (lr / correction1)))?;
            }
        }
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
