//! Adam (L2 weight decay, as `torch.optim.Adam`) and AdamW (decoupled, as
//! `torch.optim.AdamW`).

use tch::Tensor;

use crate::optim::rule::{Rule, Stateful, Step};
use crate::optim::Buffers;
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

/// The optimiser: `Adam::new(config, groups)`.
pub type Adam = Stateful<AdamConfig>;

impl Rule for AdamConfig {
    fn update(&self, step: Step, buffers: &mut Buffers, name: &str, p: &mut Tensor, grad: Tensor) -> Result<()> {
        let [b1, b2] = self.betas;
        let lr = self.lr * step.lr_scale;
        let t = step.t as i32;
        let (correction1, correction2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let mut grad = grad;
        if step.weight_decay != 0.0 {
            if self.decoupled {
                let _ = p.f_mul_scalar_(1.0 - lr * step.weight_decay)?;
            } else {
                grad = grad.f_add(&(&*p * step.weight_decay))?;
            }
        }
        let m = buffers.get(name, "exp_avg", p);
        let _ = m.f_mul_scalar_(b1)?.f_add_(&(&grad * (1.0 - b1)))?;
        let m = m.shallow_clone();
        let v = buffers.get(name, "exp_avg_sq", p);
        let _ = v.f_mul_scalar_(b2)?.f_add_(&(&grad * &grad * (1.0 - b2)))?;
        let denom = v.sqrt() / correction2.sqrt() + self.eps;
        let _ = p.f_sub_(&(m / denom * (lr / correction1)))?;
        Ok(())
    }
}
