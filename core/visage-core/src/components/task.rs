//! Tasks: downstream evaluations of a backbone's representation.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::backbone::Backbone;
use crate::dataset::Dataset;
use crate::guard::Guarded;
use crate::metric::Metric;
use crate::Result;

/// How a task uses the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Frozen backbone, a linear head trained on its features.
    LinearProbe,
    /// Backbone and head trained together.
    FineTune,
}

impl Protocol {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::LinearProbe => "linear_probe",
            Protocol::FineTune => "fine_tune",
        }
    }
}

/// Metric values by name.
pub type Metrics = BTreeMap<String, f64>;

/// A downstream evaluation.
pub trait Task {
    /// Evaluates the backbone under `ctx.protocol` and returns its metrics.
    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics>;
}

/// What a task constructor receives.
pub struct TaskContext {
    /// The protocol the experiment asks for (one the task registered).
    pub protocol: Protocol,
}

/// Everything one evaluation needs.
pub struct EvalContext<'a> {
    /// The representation under test.
    pub backbone: &'a dyn Backbone,
    /// The backbone output to read (`pooled` unless the experiment says).
    pub feature: &'a str,
    /// The protocol.
    pub protocol: Protocol,
    /// Training split of the evaluation dataset.
    pub train: &'a dyn Dataset,
    /// Test split of the evaluation dataset.
    pub test: &'a dyn Dataset,
    /// Metrics to report, by name.
    pub metrics: &'a [(String, Box<dyn Metric>)],
    /// Where to compute.
    pub device: Device,
    /// Seed for the head's initialisation and data order.
    pub seed: u64,
}

impl<T: Task> Task for Guarded<T> {
    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        self.run_mut(|t| t.evaluate(ctx))
    }
}
