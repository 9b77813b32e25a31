//! `example_classification`: a linear probe. Features of the frozen backbone
//! are extracted once, standardised with the training split's statistics, and
//! a linear classifier is trained on them with full-batch Adam, through the
//! training engine ([`visage_core::train`]): its losses go to the
//! evaluation's own `metrics.jsonl`, and a resumed run resumes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::builtin::Accuracy;
use visage_core::method::Losses;
use visage_core::optim::{single_group, Adam, AdamConfig};
use visage_core::scheduler::Scheduler;
use visage_core::task::{EvalContext, Metrics, Task, TaskContext};
use visage_core::tch::{nn, nn::Module, Device};
use visage_core::train::{Learner, TrainConfig, Trainer};
use visage_core::{Batch, Error, Result};

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
}

impl Task for LinearProbe {
    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        let label = [self.0.label.as_str()];
        let train = ctx.extract(&ctx.train, self.0.batch_size, &label)?;
        let test = ctx.extract(&ctx.test, self.0.batch_size, &label)?;
        let (train_x, train_y) = (train.flat(), train.label(&self.0.label)?);
        let (test_x, test_y) = (test.flat(), test.label(&self.0.label)?);
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
        let mut vs = nn::VarStore::new(Device::Cpu);
        let head = Head(nn::linear(vs.root(), train_x.size()[1], classes, Default::default()));
        let adam = AdamConfig {
            lr: self.0.lr,
            betas: [0.9, 0.999],
            eps: 1e-8,
            decoupled: false,
        };
        let optimizer = Adam::new(adam, single_group(&vs, 0.0));
        let config = TrainConfig {
            steps: self.0.epochs as u64,
            seed: ctx.seed,
            label: "linear probe".into(),
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(config, &mut vs, Box::new(optimizer), Box::new(ConstantLr));
        if let Some(dir) = &ctx.dir {
            trainer = trainer.with_dir(dir, ctx.resume)?;
        }
        let mut head = head;
        trainer.restore(&mut head)?;
        // Full batch: every step sees the whole training split.
        let full = || {
            let labels = [(self.0.label.clone(), train_y.shallow_clone())].into();
            Ok(Batch {
                images: train_x.shallow_clone(),
                labels,
                views: vec![],
            })
        };
        trainer.fit(&mut head, &mut std::iter::repeat_with(full), &mut |_| Ok(vec![]))?;
        let logits = visage_core::tch::no_grad(|| head.0.forward(&test_x));
        let accuracy = Accuracy::of(&self.0.label);
        ctx.score(&logits, &test.labels, &[&accuracy])
    }
}

/// The linear head on cached features, as the engine trains it.
struct Head(nn::Linear);

impl Learner for Head {
    fn losses(&mut self, batch: &Batch, _step: u64, _phase: usize) -> Result<Losses> {
        let (features, labels) = (&batch.images, batch.labels.values().next());
        let labels = labels.ok_or_else(|| Error::msg("the probe's batch has no label"))?;
        let mut losses = Losses::default();
        losses.push(
            "cross_entropy",
            self.0.forward(features).cross_entropy_for_logits(labels),
        );
        Ok(losses)
    }
}

/// The full learning rate at every step.
struct ConstantLr;

impl Scheduler for ConstantLr {
    fn factor(&self, _step: u64, _total: u64) -> Result<f64> {
        Ok(1.0)
    }
}
