//! Methods: the self-supervised pretext that trains a backbone.

use tch::{nn, Tensor};

use crate::backbone::{Backbone, FeatureSpec};
use crate::guard::Guarded;
use crate::sample::Batch;
use crate::scalars::Scalars;
use crate::teacher::Teachers;
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

/// What one call of [`Method::training_step`] is about.
pub struct StepContext<'a> {
    /// The backbone being trained.
    pub backbone: &'a dyn Backbone,
    /// The training step (0-based).
    pub step: u64,
    /// Steps of the run.
    pub total: u64,
    /// Which of the method's [`Method::phases`] this is (0-based).
    pub phase: usize,
}

/// How many views a group of `pretrain.views` must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewCount {
    /// Exactly this many.
    Exactly(usize),
    /// This many or more.
    AtLeast(usize),
}

/// One group of extra views a method reads from [`Batch::views`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewGroup {
    /// What the views are for (`global crops`, `distance crop A`).
    pub role: String,
    /// How many views the group must hold.
    pub count: ViewCount,
}

impl ViewGroup {
    /// A group of exactly `count` views.
    pub fn exactly(role: &str, count: usize) -> Self {
        ViewGroup {
            role: role.into(),
            count: ViewCount::Exactly(count),
        }
    }

    /// A group of `count` views or more.
    pub fn at_least(role: &str, count: usize) -> Self {
        ViewGroup {
            role: role.into(),
            count: ViewCount::AtLeast(count),
        }
    }

    fn admits(&self, n: usize) -> bool {
        match self.count {
            ViewCount::Exactly(c) => n == c,
            ViewCount::AtLeast(c) => n >= c,
        }
    }
}

/// Checks the configured view groups (their counts, in order) against what
/// the method declares, with a message naming `pretrain.views`.
pub fn check_views(method: &str, needed: &[ViewGroup], configured: &[usize]) -> Result<()> {
    let describe = |g: &ViewGroup| match g.count {
        ViewCount::Exactly(c) => format!("{} ({c} views)", g.role),
        ViewCount::AtLeast(c) => format!("{} ({c} or more views)", g.role),
    };
    let wanted: Vec<String> = needed.iter().map(describe).collect();
    let fits = needed.len() == configured.len() && needed.iter().zip(configured).all(|(g, &n)| g.admits(n));
    if fits {
        return Ok(());
    }
    let wanted = if wanted.is_empty() {
        "no extra views".to_string()
    } else {
        format!("{} group(s): {}", wanted.len(), wanted.join(", "))
    };
    let have: Vec<String> = configured.iter().map(|n| n.to_string()).collect();
    Err(crate::Error::msg(format!(
        "pretrain.views: method `{method}` reads {wanted}; the experiment configures {} group(s) of [{}] views",
        configured.len(),
        have.join(", ")
    )))
}

/// A self-supervised pretext.
pub trait Method {
    /// The extra view groups it reads from [`Batch::views`], in order; a
    /// run whose `pretrain.views` differ is refused before training.
    fn views(&self) -> Vec<ViewGroup> {
        vec![]
    }
    /// Optimiser steps per training step, each on its own losses (PCL's
    /// reconstruction, face and pose steps: 3). Phase `k` gets its own
    /// `zero_grad`, backward pass and optimiser step.
    fn phases(&self) -> usize {
        1
    }
    /// Called before the step's first [`Method::training_step`] with the
    /// training step (0-based) and the run's total, so that schedules
    /// ([`crate::schedule::Schedule`]) of temperature or loss weights can be
    /// read.
    fn begin_step(&mut self, step: u64, total: u64) -> Result<()> {
        let _ = (step, total);
        Ok(())
    }
    /// Computes the losses of phase `ctx.phase` of one step on `batch`. The
    /// engine sums them, back-propagates and steps the optimiser. With
    /// gradient accumulation it is called once per micro-batch. No terms
    /// (an empty [`Losses`]) rest the phase this step: no backward pass and
    /// no optimiser step (PCL's reconstruction-only warm-up rests its
    /// contrastive steps).
    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses>;
    /// Called after the step's optimiser steps and EMA updates: the place
    /// for queues.
    fn end_step(&mut self, step: u64, total: u64) -> Result<()> {
        let _ = (step, total);
        Ok(())
    }
    /// State outside the var store that exact resumption needs (PCL's
    /// loss history for Dynamic Weight Averaging); saved in checkpoints.
    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    /// Restores what [`Method::state`] returned.
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        let _ = state;
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
    /// Views per group of `pretrain.views`.
    pub views: Vec<usize>,
    /// Copies of the backbone, frozen backbones and EMA pairs.
    pub teachers: &'a Teachers<'a>,
    /// Values to log that are not losses (temperature, centre norm).
    pub log: Scalars,
}

impl MethodContext<'_> {
    /// The channel dimension of backbone output `name`, with an error
    /// listing the outputs the backbone offers.
    pub fn output_dim(&self, name: &str) -> Result<i64> {
        match self.backbone_outputs.iter().find(|o| o.name == name) {
            Some(spec) => Ok(spec.dim),
            None => {
                let offered: Vec<&str> = self.backbone_outputs.iter().map(|o| o.name.as_str()).collect();
                Err(crate::Error::msg(format!(
                    "the backbone has no output `{name}` (it offers: {})",
                    offered.join(", ")
                )))
            }
        }
    }
}

impl<M: Method> Method for Guarded<M> {
    fn views(&self) -> Vec<ViewGroup> {
        self.run(|m| Ok(m.views())).unwrap_or_default()
    }
    fn phases(&self) -> usize {
        self.run(|m| Ok(m.phases())).unwrap_or(1)
    }
    fn begin_step(&mut self, step: u64, total: u64) -> Result<()> {
        self.run_mut(|m| m.begin_step(step, total))
    }
    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses> {
        self.run_mut(|m| m.training_step(ctx, batch))
    }
    fn end_step(&mut self, step: u64, total: u64) -> Result<()> {
        self.run_mut(|m| m.end_step(step, total))
    }
    fn state(&self) -> Result<serde_json::Value> {
        self.run(|m| m.state())
    }
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        self.run_mut(|m| m.load_state(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_groups_are_checked_in_order_with_the_key_named() {
        let dino = [
            ViewGroup::exactly("global crops", 2),
            ViewGroup::at_least("local crops", 1),
        ];
        assert!(check_views("dino", &dino, &[2, 8]).is_ok());
        let err = check_views("dino", &dino, &[2]).unwrap_err().to_string();
        assert_eq!(
            err,
            "pretrain.views: method `dino` reads 2 group(s): global crops (2 views), local crops (1 or more views); \
             the experiment configures 1 group(s) of [2] views"
        );
        assert!(check_views("dino", &dino, &[3, 8]).is_err());
        let none = check_views("rotation", &[], &[1]).unwrap_err().to_string();
        assert!(none.contains("reads no extra views"), "{none}");
    }

    #[test]
    fn an_output_dimension_is_looked_up_by_name() {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let registry = crate::Registry::new();
        let spec = crate::teacher::BackboneSpec {
            name: "none".into(),
            params: serde_json::Value::Null,
        };
        let teachers = Teachers::new(&registry, &vs, spec, "backbone", 3);
        let ctx = MethodContext {
            vs: vs.root(),
            backbone_outputs: vec![FeatureSpec {
                name: "pooled".into(),
                dim: 64,
            }],
            views: vec![],
            teachers: &teachers,
            log: Scalars::default(),
        };
        assert_eq!(ctx.output_dim("pooled").unwrap(), 64);
        let err = ctx.output_dim("cls").unwrap_err().to_string();
        assert_eq!(err, "the backbone has no output `cls` (it offers: pooled)");
    }
}
