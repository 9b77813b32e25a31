//! Visage plugin `{{name}}`: a metric. Registered as `{{name}}`.
//!
//! Mean absolute error between outputs and targets of the same shape.

use visage_core::metric::Metric;
use visage_core::tch::{Kind, Tensor};
use visage_core::{declare_plugin, Error, NoParams, Registry, Result};

/// The metric.
pub struct MeanAbsoluteError;

impl Metric for MeanAbsoluteError {
    fn compute(&self, outputs: &Tensor, targets: &Tensor) -> Result<f64> {
        if outputs.size() != targets.size() {
            return Err(Error::msg(format!("{{name}} needs outputs and targets of one shape, got {:?} and {:?}", outputs.size(), targets.size())));
        }
        let diff = outputs.to_kind(Kind::Double) - targets.to_kind(Kind::Double);
        Ok(diff.abs().mean(Kind::Double).double_value(&[]))
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("{{name}}", |_: NoParams, _| Ok(MeanAbsoluteError))
}

declare_plugin!(name: "{{name}}", register: register);
