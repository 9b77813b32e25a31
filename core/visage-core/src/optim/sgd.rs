//! SGD with momentum and Nesterov, as `torch.optim.SGD` (dampening 0).

use tch::Tensor;

use crate::optim::rule::{Rule, Stateful, Step};
use crate::optim::Buffers;
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

/// The optimiser: `Sgd::new(config, groups)`.
pub type Sgd = Stateful<SgdConfig>;

impl Rule for SgdConfig {
    fn update(&self, step: Step, buffers: &mut Buffers, name: &str, p: &mut Tensor, grad: Tensor) -> Result<()> {
        let mut d = if step.weight_decay != 0.0 {
            &grad + &*p * step.weight_decay
        } else {
            grad
        };
        if self.momentum != 0.0 {
            let fresh = !buffers.has(name, "momentum_buffer");
            let buf = buffers.get(name, "momentum_buffer", p);
            if fresh {
                buf.copy_(&d);
            } else {
                let _ = buf.f_mul_scalar_(self.momentum)?.f_add_(&d)?;
            }
            d = if self.nesterov {
                d + &*buf * self.momentum
            } else {
                buf.shallow_clone()
            };
        }
        let _ = p.f_sub_(&(d * (self.lr * step.lr_scale)))?;
        Ok(())
    }
}
