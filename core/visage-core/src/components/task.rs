//! Tasks: downstream evaluations of a backbone's representation.

use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::augmentation::Augmentation;
use crate::backbone::Backbone;
use crate::data::{Loader, LoaderConfig, Sampling};
use crate::dataset::{Dataset, DatasetInfo};
use crate::features::{extract, extract_inputs, Extracted, ExtractedInputs, Feature};
use crate::guard::Guarded;
use crate::metric::Metric;
pub use crate::metric::{Labels, Metrics};
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

/// A downstream evaluation.
pub trait Task {
    /// Checks, before anything runs, that the evaluation's train and test
    /// splits carry what the task needs (labels, classes, landmark layout,
    /// verification pairs): the runner calls it on every evaluation before
    /// it creates the run directory, so that an experiment that would fail
    /// after an hour of pre-training fails at once. The default accepts
    /// anything; [`Task::evaluate`] should run the same checks.
    ///
    /// ```
    /// # use visage_core::dataset::DatasetInfo;
    /// # use visage_core::Result;
    /// // A task that reads the label `class` from both splits.
    /// fn check(train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
    ///     train.require("my_task", &["class"])?;
    ///     test.require("my_task", &["class"])
    /// }
    /// ```
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        let _ = (train, test);
        Ok(())
    }

    /// Evaluates the backbone under `ctx.protocol` and returns its metrics.
    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics>;

    /// The metrics of the best constant prediction on `ctx.test`, chosen
    /// from the train split's labels alone (the majority class, the median
    /// pose): the floor a representation is read against, beside the
    /// random-init and supervised twins. The backbone is not used. The
    /// default, `None`, says the task has none.
    fn constant(&self, ctx: &EvalContext<'_>) -> Result<Option<Metrics>> {
        let _ = ctx;
        Ok(None)
    }
}

/// What a task constructor receives.
pub struct TaskContext {
    /// The protocol the experiment asks for (one the task registered).
    pub protocol: Protocol,
}

/// One split of the evaluation data, and the augmentations applied to it
/// when it is read through [`EvalContext::batches`].
pub struct EvalSplit {
    /// The samples.
    pub dataset: Arc<dyn Dataset>,
    /// Applied in order to every sample (e.g. fine-tuning's flips on the
    /// train split, a centre crop on the test split).
    pub augmentations: Arc<[Box<dyn Augmentation>]>,
}

/// Builds a trainable copy of the evaluated backbone in a var store under
/// a path prefix ([`EvalContext::copy_backbone`]).
pub type CopyBackbone<'a> = dyn Fn(&mut tch::nn::VarStore, &str) -> Result<Box<dyn Backbone>> + 'a;

/// Everything one evaluation needs.
pub struct EvalContext<'a> {
    /// The representation under test.
    pub backbone: &'a dyn Backbone,
    /// What the task's head reads (`pooled` unless the experiment says).
    pub feature: &'a Feature,
    /// Builds a trainable copy of [`EvalContext::backbone`] (the same
    /// architecture and weights) in `vs` under the path `prefix`, for
    /// fine-tuning: the copy is the task's own and is never shared with
    /// another evaluation.
    pub copy_backbone: &'a CopyBackbone<'a>,
    /// The protocol.
    pub protocol: Protocol,
    /// Training split of the evaluation dataset.
    pub train: EvalSplit,
    /// Test split of the evaluation dataset.
    pub test: EvalSplit,
    /// Metrics to report, by name.
    pub metrics: &'a [(String, Box<dyn Metric>)],
    /// Where to compute.
    pub device: Device,
    /// Seed for the head's initialisation and data order.
    pub seed: u64,
    /// Loader threads that decode and augment batches (0: the calling
    /// thread); the batches are the same for any value.
    pub workers: usize,
    /// A folder of this evaluation's own (`<run>/evaluations/<i>-<task>/
    /// pretrained` or `random_init`) where a [`Trainer`](crate::train::Trainer)
    /// fine-tuning a backbone or training a head writes its checkpoints,
    /// `metrics.jsonl` and TensorBoard files; `None` when nothing is written.
    pub dir: Option<PathBuf>,
    /// Whether the run is being resumed: a trainer in `dir` continues from
    /// its newest checkpoint.
    pub resume: bool,
}

impl EvalContext<'_> {
    /// One pass over `split` in batches of `batch_size`, decoded and
    /// augmented on the evaluation's loader threads: in index order with
    /// the last batch short when `epoch` is `None` (feature extraction,
    /// scoring), else shuffled with the permutation of `(seed, epoch)`,
    /// the last partial batch dropped (training a head). Augmentations draw
    /// from `(seed, epoch, index)`, as in pre-training.
    ///
    /// ```no_run
    /// # fn f(ctx: &visage_core::task::EvalContext<'_>) -> visage_core::Result<()> {
    /// for batch in ctx.batches(&ctx.test, 256, None)? {
    ///     let batch = batch?.to_device(ctx.device);
    ///     let _features = ctx.backbone.forward(&batch.images, false)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn batches(&self, split: &EvalSplit, batch_size: usize, epoch: Option<u64>) -> Result<Loader> {
        let mut config = LoaderConfig::in_order(batch_size, self.workers, self.seed, self.device);
        if let Some(epoch) = epoch {
            config.sampling = Sampling::Epoch {
                epoch,
                shuffle: true,
                drop_last: true,
            };
        }
        Loader::new(split.dataset.clone(), split.augmentations.clone(), config)
    }
}

impl EvalContext<'_> {
    /// The experiment's metrics of `outputs` against `labels`, or, when the
    /// experiment names none, the task's own `defaults`.
    pub fn score(&self, outputs: &tch::Tensor, labels: &Labels, defaults: &[&dyn Metric]) -> Result<Metrics> {
        let mut metrics = Metrics::new();
        if self.metrics.is_empty() {
            for metric in defaults {
                metrics.extend(metric.compute(outputs, labels)?);
            }
        }
        for (_, metric) in self.metrics {
            metrics.extend(metric.compute(outputs, labels)?);
        }
        Ok(metrics)
    }

    /// The frozen backbone's `feature` output and the labels `labels` of
    /// every sample of `split`, in order ([`crate::features::extract`] over
    /// [`EvalContext::batches`]).
    pub fn extract(&self, split: &EvalSplit, batch_size: usize, labels: &[&str]) -> Result<Extracted> {
        let Feature::Output(output) = self.feature else {
            return Err(crate::Error::msg(format!(
                "this task reads one backbone output, but `feature` is {}",
                self.feature
            )));
        };
        let batches = self.batches(split, batch_size, None)?;
        extract(self.backbone, batches, output, labels, self.device)
    }

    /// Every tensor of [`EvalContext::feature`] and the labels `labels` of
    /// every sample of `split`, in order ([`crate::features::extract_inputs`]).
    pub fn extract_inputs(&self, split: &EvalSplit, batch_size: usize, labels: &[&str]) -> Result<ExtractedInputs> {
        let batches = self.batches(split, batch_size, None)?;
        extract_inputs(self.backbone, batches, self.feature, labels, self.device)
    }
}

impl<T: Task> Task for Guarded<T> {
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        self.run(|t| t.check(train, test))
    }

    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        self.run_mut(|t| t.evaluate(ctx))
    }

    fn constant(&self, ctx: &EvalContext<'_>) -> Result<Option<Metrics>> {
        self.run(|t| t.constant(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Registry, Sample};
    use tch::{nn, Kind, Tensor};

    /// Sample `i` is an image of value `i / len` with label `class = i`.
    struct Ramp(usize);

    impl Dataset for Ramp {
        fn len(&self) -> usize {
            self.0
        }
        fn get(&self, i: usize) -> Result<Sample> {
            let image = Tensor::full([3, 8, 8], i as f64 / self.0 as f64, (Kind::Float, Device::Cpu));
            Ok(Sample::new(image).with_label("class", Tensor::from(i as i64)))
        }
    }

    fn classes(loader: Loader) -> Vec<Vec<i64>> {
        loader
            .map(|b| Vec::<i64>::try_from(b.unwrap().label("class").unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn batches_read_the_splits_in_order_or_shuffled_with_their_augmentations() {
        let mut registry = Registry::new();
        crate::builtin::register(&mut registry).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let backbone = registry
            .build_backbone(
                "resnet",
                r#"{"width": 4, "small_stem": true}"#,
                &crate::backbone::BackboneContext {
                    vs: vs.root(),
                    in_channels: 3,
                },
            )
            .unwrap();
        let invert = || {
            registry
                .build_augmentation("solarize", r#"{"threshold": 0.0, "p": 1}"#)
                .unwrap()
        };
        let pooled = Feature::Output("pooled".into());
        let no_copy =
            |_: &mut nn::VarStore, _: &str| -> Result<Box<dyn Backbone>> { Err(crate::Error::msg("no copy")) };
        let ctx = |workers| EvalContext {
            backbone: backbone.as_ref(),
            feature: &pooled,
            copy_backbone: &no_copy,
            protocol: Protocol::LinearProbe,
            train: EvalSplit {
                dataset: Arc::new(Ramp(10)),
                augmentations: Arc::from(vec![]),
            },
            test: EvalSplit {
                dataset: Arc::new(Ramp(10)),
                augmentations: Arc::from(vec![invert()]),
            },
            metrics: &[],
            device: Device::Cpu,
            seed: 3,
            workers,
            dir: None,
            resume: false,
        };
        let (inline, threaded) = (ctx(0), ctx(3));
        // In order, every sample once, the last batch short.
        let ordered = classes(inline.batches(&inline.train, 4, None).unwrap());
        assert_eq!(ordered, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        // Shuffled per epoch, the partial batch dropped, the same for any workers.
        let epoch = |c: &EvalContext<'_>, e| classes(c.batches(&c.train, 4, Some(e)).unwrap());
        assert_eq!(epoch(&inline, 1), epoch(&threaded, 1));
        assert_ne!(epoch(&inline, 1), epoch(&inline, 2));
        assert_eq!(epoch(&inline, 1).len(), 2);
        // Each split has its own augmentations: solarize at 0 inverts the test images.
        let first = |c: &EvalContext<'_>, split: &EvalSplit| {
            c.batches(split, 10, None)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .images
                .double_value(&[9, 0, 0, 0])
        };
        assert!((first(&inline, &inline.train) - 0.9).abs() < 1e-6);
        assert!((first(&threaded, &threaded.test) - 0.1).abs() < 1e-6);
    }
}
