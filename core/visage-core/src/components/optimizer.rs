//! Optimisers: parameter update rules.

use tch::nn;

use crate::guard::Guarded;
use crate::optim::{BackboneLayers, OptimizerState};
use crate::Result;

/// Updates the trainable variables of a var store from their gradients.
pub trait Optimizer {
    /// Clears the gradients.
    fn zero_grad(&mut self) -> Result<()>;
    /// One update at training step `at.step` of `at.total`, with the base
    /// learning rate multiplied by `at.lr_scale` (the scheduler's value for
    /// this step). A method with several optimiser steps per iteration
    /// (PCL) calls this several times with the same `at`.
    fn step(&mut self, at: StepInfo) -> Result<()>;
    /// The state needed to resume exactly (step count and buffers).
    fn state(&self) -> Result<OptimizerState> {
        Err(crate::Error::NotImplemented(
            "this optimiser cannot export its state".into(),
        ))
    }
    /// Restores a state from [`Optimizer::state`].
    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        let _ = state;
        Err(crate::Error::NotImplemented(
            "this optimiser cannot restore a state".into(),
        ))
    }
}

/// Where training stands when the optimiser steps: schedules of weight
/// decay read `step` of `total`, as the learning-rate scheduler does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// The training step (0-based).
    pub step: u64,
    /// Training steps of the run.
    pub total: u64,
    /// Multiplier of the base learning rate.
    pub lr_scale: f64,
}

/// What an optimiser constructor receives.
pub struct OptimizerContext<'a> {
    /// The variables to optimise (backbone and method modules); variables
    /// that do not require gradients (frozen teachers, EMA copies) are not.
    pub vs: &'a nn::VarStore,
    /// Optimiser steps the run will take (for per-step schedules).
    pub total_steps: u64,
    /// Where the backbone lives in `vs` and the layers it reports, for
    /// layer-wise decay and no-decay parameters
    /// ([`crate::optim::build_groups`]).
    pub backbone: Option<BackboneLayers<'a>>,
}

impl<O: Optimizer> Optimizer for Guarded<O> {
    fn zero_grad(&mut self) -> Result<()> {
        self.run_mut(|o| o.zero_grad())
    }
    fn step(&mut self, at: StepInfo) -> Result<()> {
        self.run_mut(|o| o.step(at))
    }
    fn state(&self) -> Result<OptimizerState> {
        self.run(|o| o.state())
    }
    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        self.run_mut(|o| o.load_state(state))
    }
}
