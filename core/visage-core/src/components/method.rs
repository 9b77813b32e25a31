//! Methods: the self-supervised pretext that trains a backbone.

use tch::{nn, Tensor};

use crate::backbone::{Backbone, FeatureSpec};
use crate::guard::Guarded;
use crate::sample::Batch;
use crate::Result;

/// Named loss terms of one training step; their sum is minimised.
#[derive(Debug, Default)]
pub struct Losses(pub Vec<(String, Tensor)>);

impl Losses {
    /// Adds a named term.
    pub fn push(&mut self, name: impl Into<String>, value: Tensor) {
        self.0.push((name.into(), value));
    }

    /// The sum of all terms.
    pub fn total(&self) -> Result<Tensor> {
        let mut terms = self.0.iter().map(|(_, t)| t.shallow_clone());
        let first = terms
            .next()
            .ok_or_else(|| crate::Error::msg("a training step returned no loss terms"))?;
        Ok(terms.fold(first, |acc, t| acc + t))
    }
}

/// A self-supervised pretext.
pub trait Method {
    /// Called before the step's first [`Method::training_step`] with the
    /// optimiser step (0-based) and the run's total, so that schedules
    /// ([`crate::schedule::Schedule`]) of momentum or temperature can be read.
    fn begin_step(&mut self, step: u64, total: u64) -> Result<()> {
        let _ = (step, total);
        Ok(())
    }
    /// Computes the losses of one step on `batch`. The engine sums them,
    /// back-propagates and steps the optimiser. With gradient accumulation
    /// it is called once per micro-batch of the step.
    fn training_step(&mut self, backbone: &dyn Backbone, batch: &Batch) -> Result<Losses>;
    /// Called after the optimiser step: the place for momentum-encoder
    /// (EMA) updates and queues.
    fn end_step(&mut self, step: u64, total: u64) -> Result<()> {
        let _ = (step, total);
        Ok(())
    }
}

/// What a method constructor receives.
pub struct MethodContext<'a> {
    /// Where to create the method's own modules (heads, decoders, ...); they
    /// are trained together with the backbone.
    pub vs: nn::Path<'a>,
    /// The backbone's outputs.
    pub backbone_outputs: Vec<FeatureSpec>,
}

impl<M: Method> Method for Guarded<M> {
    fn begin_step(&mut self, step: u64, total: u64) -> Result<()> {
        self.run_mut(|m| m.begin_step(step, total))
    }
    fn training_step(&mut self, backbone: &dyn Backbone, batch: &Batch) -> Result<Losses> {
        self.run_mut(|m| m.training_step(backbone, batch))
    }
    fn end_step(&mut self, step: u64, total: u64) -> Result<()> {
        self.run_mut(|m| m.end_step(step, total))
    }
}
