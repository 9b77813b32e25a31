//! Optimisers: parameter update rules.

use tch::nn;

use crate::guard::Guarded;
use crate::optim::OptimizerState;
use crate::Result;

/// Updates the trainable variables of a var store from their gradients.
pub trait Optimizer {
    /// Clears the gradients.
    fn zero_grad(&mut self) -> Result<()>;
    /// One update with the base learning rate multiplied by `lr_scale` (the
    /// scheduler's value for this step).
    fn step(&mut self, lr_scale: f64) -> Result<()>;
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

/// What an optimiser constructor receives.
pub struct OptimizerContext<'a> {
    /// The variables to optimise (backbone and method modules).
    pub vs: &'a nn::VarStore,
    /// Optimiser steps the run will take (for per-step schedules).
    pub total_steps: u64,
}

impl<O: Optimizer> Optimizer for Guarded<O> {
    fn zero_grad(&mut self) -> Result<()> {
        self.run_mut(|o| o.zero_grad())
    }
    fn step(&mut self, lr_scale: f64) -> Result<()> {
        self.run_mut(|o| o.step(lr_scale))
    }
    fn state(&self) -> Result<OptimizerState> {
        self.run(|o| o.state())
    }
    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        self.run_mut(|o| o.load_state(state))
    }
}
