//! Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_`.

use tch::{nn, Kind, Tensor};

/// Scales the gradients of every trainable variable of `vs` so that their
/// joint L2 norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(vs: &nn::VarStore, max_norm: f64) -> f64 {
    let grads: Vec<Tensor> = vs
        .trainable_variables()
        .iter()
        .map(|v| v.grad())
        .filter(|g| g.defined())
        .collect();
    if grads.is_empty() {
        return 0.0;
    }
    let norms: Vec<Tensor> = grads.iter().map(|g| g.norm().to_kind(Kind::Double)).collect();
    let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
    let scale = max_norm / (total + 1e-6);
    if scale < 1.0 {
        let _no_grad = tch::no_grad_guard();
        for mut g in grads {
            let _ = g.f_mul_scalar_(scale);
        }
    }
    total
}
