//! Optimisers, gradient clipping and momentum encoders.
//!
//! Optimisers are written out in Rust, so that their state can be saved and
//! restored (tch's optimiser wrapper cannot export its state).
//!
//! Each follows PyTorch's update rule for the same hyper-parameters
//! (`torch.optim.SGD`, `Adam`, `AdamW`) or the LARS used by the official
//! MoCo v3 / BYOL code; the tests compare against libtorch's own SGD, Adam
//! and AdamW step by step.

mod adam;
mod clip;
mod ema;
mod groups;
mod lars;
mod rule;
mod scaler;
mod sgd;

use std::collections::BTreeMap;

use tch::Tensor;

pub use adam::{Adam, AdamConfig};
pub use clip::{clip_grad_norm, grad_norm};
pub use ema::Ema;
pub use groups::{build_groups, decay_groups, single_group, BackboneLayers, GroupSpec, ParamGroup};
pub use lars::{Lars, LarsConfig};
pub use rule::{Rule, Stateful, Step};
pub use scaler::GradScaler;
pub use sgd::{Sgd, SgdConfig};

use crate::{Error, Result};

/// An optimiser's state: the step count and its per-parameter buffers, named
/// `<parameter>.<buffer>` (e.g. `backbone.block0.conv.weight.exp_avg`).
#[derive(Debug, Default)]
pub struct OptimizerState {
    /// Steps taken.
    pub step: u64,
    /// Buffers by name.
    pub buffers: BTreeMap<String, Tensor>,
}

impl OptimizerState {
    /// A deep copy (buffers are copied, not shared).
    pub fn copy(&self) -> Self {
        OptimizerState {
            step: self.step,
            buffers: self.buffers.iter().map(|(k, v)| (k.clone(), v.copy())).collect(),
        }
    }
}

/// Per-parameter buffers of an optimiser, created lazily, saved and
/// restored by name.
#[derive(Debug, Default)]
pub struct Buffers(BTreeMap<String, Tensor>);

impl Buffers {
    /// The buffer `slot` of parameter `param`, zero-initialised like `like`.
    pub fn get(&mut self, param: &str, slot: &str, like: &Tensor) -> &mut Tensor {
        self.0
            .entry(format!("{param}.{slot}"))
            .or_insert_with(|| like.zeros_like())
    }

    /// Whether the buffer exists yet.
    pub fn has(&self, param: &str, slot: &str) -> bool {
        self.0.contains_key(&format!("{param}.{slot}"))
    }

    pub(crate) fn export(&self, step: u64) -> OptimizerState {
        OptimizerState {
            step,
            buffers: self.0.iter().map(|(k, v)| (k.clone(), v.copy())).collect(),
        }
    }

    /// Replaces the buffers after checking that each belongs to a known
    /// parameter and has its shape.
    pub(crate) fn restore(&mut self, state: OptimizerState, groups: &[ParamGroup]) -> Result<u64> {
        for (name, buffer) in &state.buffers {
            let param = groups
                .iter()
                .flat_map(|g| g.params.iter())
                .find(|(p, _)| name.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('.')))
                .ok_or_else(|| {
                    Error::msg(format!(
                        "optimizer state has buffer `{name}` for no parameter of this model"
                    ))
                })?;
            if buffer.size() != param.1.size() {
                return Err(Error::msg(format!(
                    "optimizer state buffer `{name}` has shape {:?}, the parameter has {:?}",
                    buffer.size(),
                    param.1.size()
                )));
            }
        }
        self.0 = state
            .buffers
            .into_iter()
            .map(|(k, v)| (k, v.to_device(device_of(groups))))
            .collect();
        Ok(state.step)
    }
}

fn device_of(groups: &[ParamGroup]) -> tch::Device {
    groups
        .iter()
        .flat_map(|g| g.params.first())
        .map(|(_, t)| t.device())
        .next()
        .unwrap_or(tch::Device::Cpu)
}

#[cfg(test)]
mod tests;
