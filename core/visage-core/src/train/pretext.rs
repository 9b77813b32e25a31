//! A self-supervised method's pretext as the engine's [`Learner`]: the one
//! wrapper that the runner's pre-training and the methods' benchmarks share.

use crate::backbone::Backbone;
use crate::method::{Losses, Method, StepContext};
use crate::train::Learner;
use crate::{Batch, Result};

/// `method` training `backbone`: each step's losses are the method's
/// [`Method::training_step`] with the step, the run's length and the phase;
/// the method's own state rides in the checkpoints.
///
/// ```ignore
/// let mut pretext = Pretext::new(method, backbone.as_ref());
/// trainer.fit(&mut pretext, &mut loader, &mut |_| Ok(vec![]))?;
/// ```
pub struct Pretext<'b> {
    method: Box<dyn Method>,
    backbone: &'b dyn Backbone,
    total: u64,
}

impl<'b> Pretext<'b> {
    /// `method` on `backbone`; the run's length comes with the first step.
    pub fn new(method: Box<dyn Method>, backbone: &'b dyn Backbone) -> Self {
        Pretext {
            method,
            backbone,
            total: 0,
        }
    }

    /// The method, to read its state after training.
    pub fn method(&self) -> &dyn Method {
        self.method.as_ref()
    }
}

impl Learner for Pretext<'_> {
    fn phases(&self) -> usize {
        self.method.phases()
    }
    fn begin_step(&mut self, step: u64, total: u64) -> Result<()> {
        self.total = total;
        self.method.begin_step(step, total)
    }
    fn losses(&mut self, batch: &Batch, step: u64, phase: usize) -> Result<Losses> {
        let ctx = StepContext {
            backbone: self.backbone,
            step,
            total: self.total,
            phase,
        };
        self.method.training_step(&ctx, batch)
    }
    fn end_step(&mut self, step: u64, total: u64) -> Result<()> {
        self.method.end_step(step, total)
    }
    fn state(&self) -> Result<serde_json::Value> {
        self.method.state()
    }
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        self.method.load_state(state)
    }
}
