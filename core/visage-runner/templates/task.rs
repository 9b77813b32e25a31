//! Visage plugin `{{name}}`: a downstream task. Registered as `{{name}}`.
//!
//! The protocol below classifies frozen features by their nearest class
//! mean (computed on the train split) and scores the test split with the
//! experiment's metrics, passing negative distances as logits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::builtin::Accuracy;
use visage_core::dataset::DatasetInfo;
use visage_core::task::{EvalContext, Metrics, Protocol, Task, TaskContext};
use visage_core::tch::Tensor;
use visage_core::{declare_plugin, Error, Registry, Result};

/// Parameters, checked before anything is built.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Name of the class label.
    #[serde(default = "default_label")]
    pub label: String,
}

fn default_label() -> String {
    "class".into()
}

/// The task.
pub struct NearestMean(Params);

impl NearestMean {
    fn new(params: Params, _: &TaskContext) -> Result<Self> {
        Ok(NearestMean(params))
    }
}

impl Task for NearestMean {
    // Runs before pre-training: refuse a dataset without the label now,
    // not after an hour of training.
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        train.require("{{name}}", &[&self.0.label])?;
        test.require("{{name}}", &[&self.0.label])
    }

    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        let label = [self.0.label.as_str()];
        let (train, test) = (ctx.extract(&ctx.train, 256, &label)?, ctx.extract(&ctx.test, 256, &label)?);
        let (train_x, train_y) = (train.flat(), train.label(&self.0.label)?);
        let (test_x, test_y) = (test.flat(), test.label(&self.0.label)?);
        let classes = train_y.max().int64_value(&[]) + 1;
        let means: Vec<Tensor> = (0..classes)
            .map(|c| {
                let rows = train_x.index_select(0, &train_y.eq(c).nonzero().squeeze_dim(1));
                if rows.size()[0] == 0 {
                    Err(Error::msg(format!("class {c} has no training sample")))
                } else {
                    Ok(rows.mean_dim(0, false, rows.kind()))
                }
            })
            .collect::<Result<_>>()?;
        let logits = -Tensor::cdist(&test_x, &Tensor::stack(&means, 0), 2.0, None);
        let accuracy = Accuracy::of(&self.0.label);
        ctx.score(&logits, &test.labels, &[&accuracy])
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.task("{{name}}", &[Protocol::LinearProbe], NearestMean::new)
}

declare_plugin!(name: "{{name}}", register: register);
