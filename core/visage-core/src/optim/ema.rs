//! Exponential moving averages of weights: momentum encoders (MoCo, BYOL,
//! PCL), EMA teachers (DINO, MCF's target) and their momentum copies of
//! projectors and predictors.

use tch::{nn, Tensor};

use crate::nn::weights::variables_under;
use crate::schedule::Schedule;
use crate::{Error, Result};

/// A target module that follows an online one in the same var store:
/// `target <- m * target + (1 - m) * online` after every optimiser step,
/// with `m` read from a [`Schedule`]. As in MoCo, BYOL and DINO, only the
/// online module's trainable parameters are averaged; the target's buffers
/// (batch-norm statistics) are its own, updated by its own forward passes.
#[derive(Debug)]
pub struct Ema {
    name: String,
    momentum: Schedule,
    /// (target, online) parameter pairs.
    pairs: Vec<(Tensor, Tensor)>,
}

impl Ema {
    /// Pairs the variables under `target` with those under `online` by
    /// their names below the two prefixes, copies every online variable
    /// (buffers included) into its target, and freezes the target (no
    /// gradient, so no optimiser trains it). Every variable must have a
    /// counterpart of the same shape.
    pub fn new(name: &str, vs: &nn::VarStore, online: &str, target: &str, momentum: Schedule) -> Result<Ema> {
        momentum.check(&format!("momentum of `{name}`"))?;
        let sources = variables_under(vs, online);
        let targets = variables_under(vs, target);
        if targets.is_empty() {
            return Err(Error::msg(format!(
                "momentum copy `{name}`: no variables under `{target}`"
            )));
        }
        let mut pairs = vec![];
        let _no_grad = tch::no_grad_guard();
        for (key, t) in &targets {
            let o = sources.get(key).ok_or_else(|| {
                Error::msg(format!(
                    "momentum copy `{name}`: `{target}.{key}` has no counterpart under `{online}`"
                ))
            })?;
            if o.size() != t.size() {
                return Err(Error::msg(format!(
                    "momentum copy `{name}`: `{key}` has shape {:?} under `{online}` and {:?} under `{target}`",
                    o.size(),
                    t.size()
                )));
            }
            t.shallow_clone().f_copy_(o)?;
            if o.requires_grad() {
                pairs.push((t.shallow_clone(), o.shallow_clone()));
            }
            let _ = t.set_requires_grad(false);
        }
        if let Some(extra) = sources.keys().find(|k| !targets.contains_key(*k)) {
            return Err(Error::msg(format!(
                "momentum copy `{name}`: `{online}.{extra}` has no counterpart under `{target}`"
            )));
        }
        Ok(Ema {
            name: name.to_string(),
            momentum,
            pairs,
        })
    }

    /// Its name (`momentum/<name>` in the metrics).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The momentum at `step` of `total`.
    pub fn momentum(&self, step: u64, total: u64) -> f64 {
        self.momentum.value(step, total)
    }

    /// One update at `step` of `total`; returns the momentum used.
    pub fn update(&self, step: u64, total: u64) -> Result<f64> {
        let m = self.momentum(step, total);
        let _no_grad = tch::no_grad_guard();
        for (target, online) in &self.pairs {
            // lerp: t + (1 - m) (o - t) = m t + (1 - m) o.
            let _ = target.shallow_clone().f_lerp_(online, 1.0 - m)?;
        }
        Ok(m)
    }
}
