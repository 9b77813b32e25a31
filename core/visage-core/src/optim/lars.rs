//! LARS (You, Gitman and Ginsburg, 2017) as the official MoCo v3 and BYOL
//! code apply it: weight decay and the trust ratio only on parameters of
//! dimension 2 and more; biases and normalisation parameters take plain
//! momentum SGD.

use tch::Tensor;

use crate::optim::rule::{Rule, Stateful, Step};
use crate::optim::Buffers;
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

/// The optimiser: `Lars::new(config, groups)`.
pub type Lars = Stateful<LarsConfig>;

impl Rule for LarsConfig {
    fn update(&self, step: Step, buffers: &mut Buffers, name: &str, p: &mut Tensor, grad: Tensor) -> Result<()> {
        let mut d = grad;
        if p.dim() > 1 {
            d = d.f_add(&(&*p * step.weight_decay))?; // not in place: d is the gradient
            let (param_norm, update_norm) = (p.norm().double_value(&[]), d.norm().double_value(&[]));
            if param_norm > 0.0 && update_norm > 0.0 {
                d = d.f_mul_scalar(self.trust_coefficient * param_norm / update_norm)?;
            }
        }
        let mu = buffers.get(name, "mu", p);
        let _ = mu.f_mul_scalar_(self.momentum)?.f_add_(&d)?;
        let _ = p.f_sub_(&(&*mu * (self.lr * step.lr_scale)))?;
        Ok(())
    }
}
