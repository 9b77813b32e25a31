//! Schedulers: the learning-rate multiplier as a function of the step.

use crate::guard::Guarded;
use crate::Result;

/// A per-step multiplier of the base learning rate.
pub trait Scheduler {
    /// The multiplier at `step` (0-based) of `total` steps.
    fn factor(&self, step: u64, total: u64) -> Result<f64>;
}

impl<S: Scheduler> Scheduler for Guarded<S> {
    fn factor(&self, step: u64, total: u64) -> Result<f64> {
        self.run(|s| s.factor(step, total))
    }
}
