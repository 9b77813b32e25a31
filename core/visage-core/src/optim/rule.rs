//! The part every optimiser shares: parameter groups, per-parameter buffers,
//! the step count, saving and restoring them. An optimiser is an update
//! [`Rule`] for one parameter; [`Stateful`] applies it to all of them.

use tch::Tensor;

use crate::optim::{Buffers, OptimizerState, ParamGroup};
use crate::optimizer::{Optimizer, StepInfo};
use crate::schedule::Schedule;
use crate::Result;

/// What one update of one parameter may use.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Multiplier of the rule's base learning rate: the scheduler's factor
    /// times the group's `lr_scale`.
    pub lr_scale: f64,
    /// Weight decay of the group.
    pub weight_decay: f64,
    /// 1-based index of this step.
    pub t: u64,
}

/// An update rule: changes `param` in place from its `grad` (never modify
/// `grad` in place: it is the parameter's gradient) and its buffers.
pub trait Rule {
    /// Updates one parameter named `name`.
    fn update(&self, step: Step, buffers: &mut Buffers, name: &str, param: &mut Tensor, grad: Tensor) -> Result<()>;
}

/// An optimiser: a rule applied to parameter groups, with exportable state.
pub struct Stateful<R> {
    rule: R,
    groups: Vec<ParamGroup>,
    buffers: Buffers,
    step: u64,
    weight_decay_end: Option<f64>,
}

impl<R: Rule> Stateful<R> {
    /// The rule over `groups`.
    pub fn new(rule: R, groups: Vec<ParamGroup>) -> Self {
        Stateful {
            rule,
            groups,
            buffers: Buffers::default(),
            step: 0,
            weight_decay_end: None,
        }
    }

    /// Moves the weight decay of every decayed group from its value to `end`
    /// along half a cosine over the run (DINO's schedule; the convention of
    /// [`Schedule`]).
    pub fn with_weight_decay_end(mut self, end: f64) -> Self {
        self.weight_decay_end = Some(end);
        self
    }

    /// The weight decay of a group with base decay `base` at `at`.
    fn weight_decay(&self, base: f64, at: StepInfo) -> f64 {
        match self.weight_decay_end {
            Some(end) if base != 0.0 => Schedule::cosine(base, end).value(at.step, at.total),
            _ => base,
        }
    }
}

impl<R: Rule> Optimizer for Stateful<R> {
    fn zero_grad(&mut self) -> Result<()> {
        for group in &mut self.groups {
            for (_, p) in &mut group.params {
                p.zero_grad();
            }
        }
        Ok(())
    }

    fn step(&mut self, at: StepInfo) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        self.step += 1;
        let decays: Vec<f64> = self
            .groups
            .iter()
            .map(|g| self.weight_decay(g.weight_decay, at))
            .collect();
        for (group, weight_decay) in self.groups.iter_mut().zip(decays) {
            let step = Step {
                lr_scale: at.lr_scale * group.lr_scale,
                weight_decay,
                t: self.step,
            };
            for (name, param) in &mut group.params {
                let grad = param.grad();
                if grad.defined() {
                    self.rule.update(step, &mut self.buffers, name, param, grad)?;
                }
            }
        }
        Ok(())
    }

    fn state(&self) -> Result<OptimizerState> {
        Ok(self.buffers.export(self.step))
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        self.step = self.buffers.restore(state, &self.groups)?;
        Ok(())
    }
}
