//! Visage plugin `{{name}}`: a metric. Registered as `{{name}}`.
//!
//! Mean absolute error between the task's outputs and a label of the same
//! shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::metric::{label, Labels, Metric, Metrics};
use visage_core::tch::{Kind, Tensor};
use visage_core::{declare_plugin, Error, Registry, Result};

/// Parameters of `{{name}}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The label the outputs are compared with.
    pub label: String,
}

/// The metric.
pub struct MeanAbsoluteError(Params);

impl Metric for MeanAbsoluteError {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let targets = label(labels, &self.0.label, "{{name}}")?;
        if outputs.size() != targets.size() {
            return Err(Error::msg(format!("{{name}} needs outputs and targets of one shape, got {:?} and {:?}", outputs.size(), targets.size())));
        }
        let diff = outputs.to_kind(Kind::Double) - targets.to_kind(Kind::Double);
        Ok([("{{name}}".to_string(), diff.abs().mean(Kind::Double).double_value(&[]))].into())
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("{{name}}", |p: Params, _| Ok(MeanAbsoluteError(p)))
}

declare_plugin!(name: "{{name}}", register: register);
