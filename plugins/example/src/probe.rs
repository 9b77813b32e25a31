//! `example_classification`: a linear probe. Features of the frozen backbone
//! are extracted once, standardised with the training split's statistics, and
//! a linear classifier is trained on them with full-batch Adam.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::feature;
use visage_core::task::{EvalContext, EvalSplit, Metrics, Task, TaskContext};
use visage_core::tch::{nn, nn::Module, nn::OptimizerConfig, Device, Tensor};
use visage_core::{Error, Result};

/// Parameters of `example_classification`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeParams {
    /// Name of the class label in the dataset.
    #[serde(default = "default_label")]
    pub label: String,
    /// Full-batch optimisation steps of the linear head.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Learning rate of the linear head.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Images per forward pass during feature extraction.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

fn default_label() -> String {
    "class".into()
}
fn default_epochs() -> usize {
    200
}
fn default_lr() -> f64 {
    0.05
}
fn default_batch() -> usize {
    128
}

/// The linear-probe task.
pub struct LinearProbe(ProbeParams);

impl LinearProbe {
    /// Checks the parameters.
    pub fn new(params: ProbeParams, _: &TaskContext) -> Result<Self> {
        if params.batch_size == 0 || params.epochs == 0 {
            return Err(Error::msg("batch_size and epochs must be positive"));
        }
        Ok(LinearProbe(params))
    }

    fn extract(&self, ctx: &EvalContext<'_>, split: &EvalSplit) -> Result<(Tensor, Tensor)> {
        let _no_grad = visage_core::tch::no_grad_guard();
        let (mut feats, mut labels) = (vec![], vec![]);
        for batch in ctx.batches(split, self.0.batch_size, None)? {
            let batch = batch?.to_device(ctx.device);
            let out = ctx.backbone.forward(&batch.images, false)?;
            feats.push(feature(&out, ctx.feature)?.flatten(1, -1).to_device(Device::Cpu));
            labels.push(batch.label(&self.0.label)?.to_device(Device::Cpu));
        }
        if feats.is_empty() {
            return Err(Error::msg("the evaluation dataset is empty"));
        }
        Ok((Tensor::cat(&feats, 0), Tensor::cat(&labels, 0)))
    }
}

impl Task for LinearProbe {
    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        let (train_x, train_y) = self.extract(ctx, &ctx.train)?;
        let (test_x, test_y) = self.extract(ctx, &ctx.test)?;
        let mean = train_x.mean_dim(0, true, train_x.kind());
        let std = train_x.std_dim(0, false, true) + 1e-6;
        let (train_x, test_x) = ((&train_x - &mean) / &std, (&test_x - &mean) / &std);
        let classes = train_y.max().int64_value(&[]).max(test_y.max().int64_value(&[])) + 1;
        tracing::info!(
            train = train_x.size()[0],
            test = test_x.size()[0],
            dim = train_x.size()[1],
            classes,
            "linear probe on frozen features"
        );

        visage_core::tch::manual_seed(ctx.seed as i64);
        let vs = nn::VarStore::new(Device::Cpu);
        let head = nn::linear(vs.root(), train_x.size()[1], classes, Default::default());
        let mut opt = nn::Adam::default().build(&vs, self.0.lr)?;
        for _ in 0..self.0.epochs {
            let loss = head.forward(&train_x).cross_entropy_for_logits(&train_y);
            opt.backward_step(&loss);
        }
        let logits = visage_core::tch::no_grad(|| head.forward(&test_x));
        let mut metrics = Metrics::new();
        for (name, metric) in ctx.metrics {
            metrics.insert(name.clone(), metric.compute(&logits, &test_y)?);
        }
        Ok(metrics)
    }
}
