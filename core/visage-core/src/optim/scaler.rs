//! Dynamic loss scaling for fp16 training, as `torch.cuda.amp.GradScaler`:
//! the loss is multiplied by `scale` before backward; gradients are divided
//! by it before the step; a step whose gradients overflowed is skipped and
//! the scale halved; after `growth_interval` good steps the scale doubles.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// A loss scaler and its state (saved in checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradScaler {
    /// The current scale.
    pub scale: f64,
    /// Steps without overflow since the scale last changed.
    pub good_steps: u64,
    /// Factor applied after `growth_interval` good steps.
    pub growth_factor: f64,
    /// Factor applied after an overflow.
    pub backoff_factor: f64,
    /// Good steps before the scale grows.
    pub growth_interval: u64,
}

impl Default for GradScaler {
    /// PyTorch's defaults: scale 2^16, growth 2 every 2000 steps, backoff 0.5.
    fn default() -> Self {
        GradScaler {
            scale: 65536.0,
            good_steps: 0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

impl GradScaler {
    /// The loss to back-propagate.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Divides the gradients of `vs` by the scale; returns whether they are
    /// all finite (when not, the step must be skipped).
    pub fn unscale(&self, vs: &nn::VarStore) -> bool {
        let _no_grad = tch::no_grad_guard();
        let mut finite = true;
        for var in vs.trainable_variables() {
            let mut grad = var.grad();
            if !grad.defined() {
                continue;
            }
            let _ = grad.f_mul_scalar_(1.0 / self.scale);
            if finite && !bool::try_from(grad.isfinite().all()).unwrap_or(false) {
                finite = false;
            }
        }
        finite
    }

    /// Updates the scale after a step whose gradients were `finite` or not.
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.good_steps += 1;
            if self.good_steps >= self.growth_interval {
                self.scale *= self.growth_factor;
                self.good_steps = 0;
            }
        } else {
            self.scale *= self.backoff_factor;
            self.good_steps = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn overflow_skips_and_backs_off_good_steps_grow() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[3], nn::Init::Const(1.0));
        let mut scaler = GradScaler {
            growth_interval: 2,
            ..Default::default()
        };
        // A normal step: the unscaled gradient is the true one.
        let loss = (&w * Tensor::from_slice(&[1.0f32, 2.0, 3.0])).sum(Kind::Float);
        scaler.scale_loss(&loss).backward();
        assert!(scaler.unscale(&vs));
        assert_eq!(Vec::<f32>::try_from(w.grad()).unwrap(), vec![1.0, 2.0, 3.0]);
        scaler.update(true);
        scaler.update(true);
        assert_eq!((scaler.scale, scaler.good_steps), (131072.0, 0));
        // An overflowing gradient: reported, and the scale halves.
        let mut g = w.grad();
        let _ = g.zero_();
        let huge = (&w * Tensor::from_slice(&[f32::MAX, 1.0, 1.0])).sum(Kind::Float);
        scaler.scale_loss(&huge).backward();
        assert!(!scaler.unscale(&vs));
        scaler.update(false);
        assert_eq!((scaler.scale, scaler.good_steps), (65536.0, 0));
    }
}
