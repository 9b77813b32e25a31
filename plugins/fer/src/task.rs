//! The `fer` task: trains a classifier of the expression label on the
//! backbone (frozen or fine-tuned, through [`visage_tasks::fit`]), scores
//! the last epoch on the test split, and saves the confusion matrix.

use tch::{Device, Kind, Tensor};
use visage_core::builtin::Accuracy;
use visage_core::dataset::DatasetInfo;
use visage_core::metric::Labels;
use visage_core::task::{EvalContext, Metrics, Task, TaskContext};
use visage_core::{Error, Result};
use visage_tasks::fit::{fit, Recipe, Selection};
use visage_tasks::heads::Head;
use visage_tasks::labels::read_label;
use visage_tasks::metrics::classification::{MeanClassAccuracy, MeanClassAccuracyParams};
use visage_tasks::training::Training;

use crate::confusion::ConfusionMatrix;
use crate::head;
use crate::params::{defaults, FerParams};

/// The FER task, its recipe resolved for the protocol.
#[derive(Debug)]
pub struct Fer {
    params: FerParams,
    training: Training,
}

impl Fer {
    /// Resolves the training recipe of `ctx.protocol` (refusing bad values).
    pub fn new(params: FerParams, ctx: &TaskContext) -> Result<Self> {
        let training = params.training.over(defaults(ctx.protocol))?;
        Ok(Fer { params, training })
    }

    /// The recipe this task trains with.
    pub fn training(&self) -> &Training {
        &self.training
    }

    /// The class names of the label, after checking that both splits carry
    /// it and agree on its classes.
    fn classes(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<Vec<String>> {
        let label = self.params.label.as_str();
        train.require("fer", &[label])?;
        test.require("fer", &[label])?;
        let classes = train.classes.clone().ok_or_else(|| {
            Error::msg(format!(
                "fer needs the class names of label `{label}` (the dataset's `classes`), but the dataset gives none"
            ))
        })?;
        if classes.len() < 2 {
            return Err(Error::msg(format!(
                "fer needs at least 2 classes of label `{label}`, the dataset names {classes:?}"
            )));
        }
        if let Some(other) = test.classes.as_ref().filter(|c| **c != classes) {
            return Err(Error::msg(format!(
                "fer: the train split's classes {classes:?} differ from the test split's {other:?}"
            )));
        }
        Ok(classes)
    }
}

impl Fer {
    /// The experiment's metrics (or accuracy and mean class accuracy) of
    /// `logits` against `labels`.
    fn score(&self, ctx: &EvalContext<'_>, logits: &Tensor, labels: &Labels) -> Result<Metrics> {
        let label = self.params.label.as_str();
        let accuracy = Accuracy::of(label);
        let per_class = MeanClassAccuracy(MeanClassAccuracyParams { label: label.into() });
        ctx.score(logits, labels, &[&accuracy, &per_class])
    }
}

impl Task for Fer {
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        self.classes(train, test).map(|_| ())
    }

    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        let classes = self.classes(&ctx.train.dataset.info(), &ctx.test.dataset.info())?;
        let (label, count) = (self.params.label.as_str(), classes.len() as i64);
        let score = |outputs: &Tensor, labels: &Labels| self.score(ctx, outputs, labels);
        let loss = |logits: &Tensor, labels: &Labels| head::cross_entropy(logits, labels, label, count);
        let kind = self.params.head;
        let build = |path: tch::nn::Path<'_>, shapes: &[Vec<i64>]| -> Result<Box<dyn Head>> {
            head::build(kind, path, shapes, count)
        };
        let recipe = Recipe {
            name: "fer head",
            labels: &[label],
            training: &self.training,
            selection: Selection {
                metric: "accuracy".into(),
                higher_is_better: true,
            },
        };
        let fitted = fit(ctx, &recipe, &build, &loss, &score)?;
        let target = visage_core::metric::label(&fitted.labels, label, "confusion matrix")?;
        let matrix = ConfusionMatrix::of_logits(&fitted.outputs, target, &classes)?;
        match &ctx.dir {
            Some(dir) => matrix.save(dir)?,
            None => tracing::debug!("no evaluation folder: the confusion matrix is not saved"),
        }
        Ok(fitted.metrics)
    }

    /// The train split's majority class, predicted for every test face.
    fn constant(&self, ctx: &EvalContext<'_>) -> Result<Option<Metrics>> {
        let classes = self.classes(&ctx.train.dataset.info(), &ctx.test.dataset.info())?;
        let label = self.params.label.as_str();
        let train = read_label(ctx, &ctx.train, label)?.f_flatten(0, -1)?;
        let test = read_label(ctx, &ctx.test, label)?;
        let counts = train.f_bincount(None::<Tensor>, classes.len() as i64)?;
        let majority = counts.f_argmax(0, false)?.int64_value(&[]);
        let logits = Tensor::zeros([test.size()[0], classes.len() as i64], (Kind::Float, Device::Cpu));
        let _ = logits.narrow(1, majority, 1).fill_(1.0);
        let labels = Labels::from([(label.to_string(), test)]);
        self.score(ctx, &logits, &labels).map(Some)
    }
}
