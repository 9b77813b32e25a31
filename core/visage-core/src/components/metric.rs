//! Metrics: scores of predictions against targets.

use tch::Tensor;

use crate::guard::Guarded;
use crate::Result;

/// A score of `outputs` (e.g. logits `[N, C]`) against `targets` (e.g. class
/// ids `[N]`). The task decides what it passes; the metric documents what it
/// expects.
pub trait Metric {
    /// Computes the score.
    fn compute(&self, outputs: &Tensor, targets: &Tensor) -> Result<f64>;
}

impl<M: Metric> Metric for Guarded<M> {
    fn compute(&self, outputs: &Tensor, targets: &Tensor) -> Result<f64> {
        self.run(|m| m.compute(outputs, targets))
    }
}
