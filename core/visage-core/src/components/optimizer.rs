//! Optimisers: parameter update rules.

use tch::nn;

use crate::guard::Guarded;
use crate::Result;

/// Updates the trainable variables of a var store from their gradients.
pub trait Optimizer {
    /// Clears the gradients.
    fn zero_grad(&mut self) -> Result<()>;
    /// One update with the base learning rate multiplied by `lr_scale` (the
    /// scheduler's value for this step).
    fn step(&mut self, lr_scale: f64) -> Result<()>;
}

/// What an optimiser constructor receives.
pub struct OptimizerContext<'a> {
    /// The variables to optimise (backbone and method modules).
    pub vs: &'a nn::VarStore,
}

impl<O: Optimizer> Optimizer for Guarded<O> {
    fn zero_grad(&mut self) -> Result<()> {
        self.run_mut(|o| o.zero_grad())
    }
    fn step(&mut self, lr_scale: f64) -> Result<()> {
        self.run_mut(|o| o.step(lr_scale))
    }
}
