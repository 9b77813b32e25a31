//! Exponential moving averages of weights: momentum encoders (MoCo, BYOL,
//! PCL) and EMA teachers.

use tch::nn;

use crate::{Error, Result};

/// `target <- momentum * target + (1 - momentum) * online`, for every
/// variable of `target`, matched by name in `online` (buffers such as
/// batch-norm running statistics included).
pub fn ema_update(target: &nn::VarStore, online: &nn::VarStore, momentum: f64) -> Result<()> {
    let sources = online.variables();
    let _no_grad = tch::no_grad_guard();
    for (name, mut t) in target.variables() {
        let o = sources.get(&name).ok_or_else(|| {
            Error::msg(format!(
                "momentum encoder: variable `{name}` has no counterpart in the online network"
            ))
        })?;
        if o.size() != t.size() {
            return Err(Error::msg(format!(
                "momentum encoder: `{name}` has shape {:?} online and {:?} in the target",
                o.size(),
                t.size()
            )));
        }
        let _ = t.f_mul_scalar_(momentum)?.f_add_(&(o * (1.0 - momentum)))?;
    }
    Ok(())
}

/// BYOL's schedule of the momentum: from `base` at step 0 to 1 at the last
/// step, `1 - (1 - base) * (cos(pi * step / total) + 1) / 2`.
pub fn cosine_momentum(base: f64, step: u64, total: u64) -> f64 {
    let progress = step as f64 / total.max(1) as f64;
    1.0 - (1.0 - base) * ((std::f64::consts::PI * progress).cos() + 1.0) / 2.0
}
