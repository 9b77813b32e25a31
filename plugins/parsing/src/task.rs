//! The `parsing` task: the dense head trained with the pixel cross-entropy
//! through [`visage_tasks::fit::fit`], scored on its predicted class maps
//! with one confusion matrix over the whole test split.

use visage_core::dataset::DatasetInfo;
use visage_core::metric::{Labels, Metric, Metrics};
use visage_core::task::{EvalContext, Task, TaskContext};
use visage_core::tch::{nn, Kind, Tensor};
use visage_core::{Error, Result};
use visage_tasks::fit::{fit, Fitted, Recipe, Selection};
use visage_tasks::heads::{pixel_cross_entropy, Head};
use visage_tasks::metrics::parsing::{ParsingF1, ParsingParams as F1Params};
use visage_tasks::training::Training;

use crate::head::ParsingHead;
use crate::params::ParsingParams;
use visage_tasks::image_size::image_size;
use visage_tasks::labels::read_label;

/// The face-parsing task.
pub struct Parsing {
    params: ParsingParams,
    training: Training,
}

impl Parsing {
    /// Checks the parameters and sets the training recipe of the protocol.
    pub fn new(params: ParsingParams, ctx: &TaskContext) -> Result<Self> {
        params.check()?;
        let training = params.training(ctx.protocol)?;
        Ok(Parsing { params, training })
    }

    /// The recipe this task trains with.
    pub fn recipe(&self) -> &Training {
        &self.training
    }

    /// Trains and scores; also returns the head's test outputs (logits
    /// `[N, C, H, W]`) and labels, for inspection.
    pub fn fit(&self, ctx: &EvalContext<'_>) -> Result<Fitted> {
        let classes = self.classes(&ctx.train.dataset.info(), &ctx.test.dataset.info())?;
        let label = self.params.label.as_str();
        let size = image_size(ctx, &ctx.train, "train")?;
        let test_size = image_size(ctx, &ctx.test, "test")?;
        if test_size != size {
            return Err(Error::msg(format!(
                "parsing: train images are {}x{} but test images {}x{} \
                 (give both splits one size with the evaluation's augmentations)",
                size.0, size.1, test_size.0, test_size.1
            )));
        }
        let f1 = ParsingF1(F1Params {
            label: label.to_string(),
            classes: classes.clone(),
        });
        let count = classes.len() as i64;
        let config = self.params.head();
        let build = |path: nn::Path<'_>, shapes: &[Vec<i64>]| -> Result<Box<dyn Head>> {
            Ok(Box::new(ParsingHead::new(path, shapes, count, size, config)?))
        };
        let loss = |outputs: &Tensor, labels: &Labels| -> Result<Tensor> {
            let truth = labels
                .get(label)
                .ok_or_else(|| Error::msg(format!("parsing: the batch lacks label `{label}`")))?;
            pixel_cross_entropy(outputs, truth)
        };
        // Metrics see predicted class maps [N, H, W] (int64), not logits.
        let score = |outputs: &Tensor, labels: &Labels| -> Result<Metrics> {
            ctx.score(&outputs.argmax(1, false), labels, &[&f1 as &dyn Metric])
        };
        let recipe = Recipe {
            name: "parsing head",
            labels: &[label],
            training: &self.training,
            selection: Selection {
                metric: "fg_mean".into(),
                higher_is_better: true,
            },
        };
        fit(ctx, &recipe, &build, &loss, &score)
    }

    /// The parsing class names of the train and test splits, or an error
    /// naming what is missing.
    fn classes(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<Vec<String>> {
        let label = self.params.label.as_str();
        let read = |info: &DatasetInfo, what: &str| -> Result<Vec<String>> {
            info.require("parsing", &[label])
                .map_err(|e| Error::msg(format!("{e} (its {what} split)")))?;
            let classes = info.parsing_classes.clone().ok_or_else(|| {
                Error::msg(format!(
                    "parsing needs the class names (`parsing_classes` in the dataset's info), \
                     but the {what} split's dataset gives none"
                ))
            })?;
            if classes.len() < 2 {
                return Err(Error::msg(format!(
                    "parsing needs at least 2 classes, background first; the {what} split's dataset names {}",
                    classes.len()
                )));
            }
            Ok(classes)
        };
        let (train, test) = (read(train, "train")?, read(test, "test")?);
        if train != test {
            return Err(Error::msg(format!(
                "parsing: the train split's classes [{}] differ from the test split's [{}]",
                train.join(", "),
                test.join(", ")
            )));
        }
        Ok(train)
    }
}

impl Task for Parsing {
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        self.classes(train, test).map(|_| ())
    }

    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        Ok(self.fit(ctx)?.metrics)
    }

    /// The mean mask: at each pixel the class most frequent there over the
    /// train split, predicted for every test face and scored like the
    /// head's class maps.
    fn constant(&self, ctx: &EvalContext<'_>) -> Result<Option<Metrics>> {
        let classes = self.classes(&ctx.train.dataset.info(), &ctx.test.dataset.info())?;
        let label = self.params.label.as_str();
        let train = read_label(ctx, &ctx.train, label)?.f_to_kind(Kind::Int64)?;
        let test = read_label(ctx, &ctx.test, label)?;
        if train.dim() != 3 || train.size()[1..] != test.size()[1..] {
            return Err(Error::msg(format!(
                "parsing: the constant needs masks [N, H, W] of one size, got {:?} (train) and {:?} (test)",
                train.size(),
                test.size()
            )));
        }
        let counts: Vec<Tensor> = (0..classes.len() as i64)
            .map(|c| train.eq(c).sum_dim_intlist(0, false, Kind::Int64))
            .collect();
        let mean_mask = Tensor::f_stack(&counts, 0)?.f_argmax(0, false)?;
        let predicted = mean_mask.f_unsqueeze(0)?.f_expand([test.size()[0], -1, -1], false)?;
        let f1 = ParsingF1(F1Params {
            label: label.to_string(),
            classes,
        });
        let labels = Labels::from([(label.to_string(), test)]);
        ctx.score(&predicted, &labels, &[&f1 as &dyn Metric]).map(Some)
    }
}
