//! Metrics: scores of a task's outputs against the test split's labels.

use std::collections::BTreeMap;

use tch::Tensor;

use crate::guard::Guarded;
use crate::{Error, Result};

/// Metric values by name (`accuracy`, `f1/AU12`, `nme_inter_ocular`, ...).
pub type Metrics = BTreeMap<String, f64>;

/// Labels of the scored samples by name (`crate::labels`), each `[N, ...]`.
pub type Labels = BTreeMap<String, Tensor>;

/// A score of `outputs` (e.g. logits `[N, C]`) against the labels of the
/// same `N` samples. One metric may give several values (per-class F1 and
/// their mean). The task decides what it passes as `outputs`; the metric
/// documents what it expects and reads the labels it needs by name.
pub trait Metric {
    /// Computes the values.
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics>;
}

/// Label `name` of `labels`, with an error naming `metric` and the labels
/// that are there.
pub fn label<'a>(labels: &'a Labels, name: &str, metric: &str) -> Result<&'a Tensor> {
    labels.get(name).ok_or_else(|| {
        let present: Vec<&str> = labels.keys().map(String::as_str).collect();
        Error::msg(format!(
            "metric `{metric}` needs label `{name}`, but the task passed only [{}]",
            present.join(", ")
        ))
    })
}

impl<M: Metric> Metric for Guarded<M> {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        self.run(|m| m.compute(outputs, labels))
    }
}
